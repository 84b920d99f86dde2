//! minimax-connector: books webshop sales (WooCommerce, Shopify, custom plugins) into
//! the Minimax accounting API. See README.md for the service and ARCHITECTURE notes in
//! `docs/` for the guarantees and the design.

pub mod config;
pub mod crypto;
pub mod http;
pub mod metrics;
pub mod queue;
pub mod startup;
pub mod telemetry;
pub mod worker;
