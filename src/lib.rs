//! minimax-connector: books webshop sales (WooCommerce, Shopify, custom plugins) into
//! the Minimax accounting API. See README.md for the service and `docs/` for the
//! guarantees and the design.

pub mod alerts;
pub mod booking;
pub mod config;
pub mod crypto;
pub mod http;
pub mod jobs;
pub mod mapping;
pub mod metrics;
pub mod minimax;
pub mod private_redis;
pub mod queue;
pub mod reconcile;
pub mod redis_conn;
pub mod sandbox;
pub mod shop_api;
pub mod startup;
pub mod telemetry;
pub mod tenant_cache;
pub mod tenants;
pub mod webshop;
pub mod worker;
pub mod writeback;
