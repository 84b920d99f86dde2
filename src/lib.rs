pub mod webshop;
