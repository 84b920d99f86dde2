//! The integration tests, one binary: every module drives the real service (actix on a
//! free port, a real Redis, the Minimax sandbox over HTTP) through `helpers`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fake_shop;
mod helpers;
mod shop;
mod shop_arithmetic;

mod admin;
mod admin_views;
mod attempt_stops;
mod binary;
mod booking;
mod cluster;
mod customers;
mod fuzz;
mod generated_orders;
mod health;
mod intake_cache;
mod intake_trust;
mod layout;
mod lock_waits;
mod mapping;
mod minimax_client;
mod queue;
mod rate_limit;
mod reconcile;
mod recovery;
mod sandbox_mount;
mod ui;
mod ui_browser;
mod webhooks;
mod webshop_parsing;
mod webshop_proptest;
mod webshop_signatures;
