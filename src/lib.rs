//! minimax-connector: books webshop sales into Minimax accounting.
//!
//! The library holds everything; `main.rs` stays thin so tests build the real parts.

pub mod minimax;
pub mod sandbox;
