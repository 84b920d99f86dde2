//! The integration tests, one binary: every module drives the real service (actix on a
//! free port, a real Redis, the Minimax sandbox over HTTP) through `helpers`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod shop;

mod admin;
mod binary;
mod booking;
mod cluster;
mod customers;
mod health;
mod mapping;
mod minimax_client;
mod queue;
mod recovery;
mod sandbox_mount;
mod webhooks;
mod webshop_parsing;
mod webshop_proptest;
mod webshop_signatures;
