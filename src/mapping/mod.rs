//! Pure mapping from canonical shop events to Minimax documents (no I/O): everything
//! it needs — tenant settings and looked-up Minimax ids — is passed in.

pub mod settings;

pub use settings::BookingSettings;
