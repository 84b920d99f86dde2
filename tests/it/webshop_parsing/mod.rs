//! Every WooCommerce and Shopify fixture goes through verify + parse and must produce the
//! expected event, with amounts compared against values read from the fixture JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::*;
use minimax_connector::webshop::event::EventKind;
use minimax_connector::webshop::{
    shopify, woocommerce, Customer, DiscountKind, Intake, Order, ParseSettings, Platform, ShopEvent,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};

mod generic_events;
mod shopify_events;
mod woocommerce_events;

const WOO: &str = "woocommerce";
const SHOP: &str = "shopify";

fn order_of(event: &ShopEvent) -> &Order {
    event.order().expect("event carries the order")
}

/// Lines + shipping + fees + tax must equal the order total (true for unscrambled fixtures).
fn assert_adds_up(order: &Order) {
    let sum: Decimal = order.lines.iter().map(|l| l.total).sum::<Decimal>()
        + order
            .shipping_lines
            .iter()
            .map(|l| l.total)
            .sum::<Decimal>()
        + order.fees.iter().map(|f| f.total).sum::<Decimal>()
        + if order.amounts_include_tax {
            Decimal::ZERO
        } else {
            order.total_tax
        };
    assert_eq!(
        sum, order.total,
        "order {} does not add up",
        order.shop_order_id
    );
}

/// The digest part of a dedupe key, computed independently of the parser.
fn body_digest(body: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
