//! Shopify webhooks: `orders/*`, `refunds/create` and `customers/*` bodies (bare REST
//! resources) into canonical events.
//!
//! Guarantees: amounts are read from one money bag for the whole order — what the
//! customer paid (`*_set.presentment_money`, the default) or the shop currency
//! (`*_set.shop_money`, `ParseSettings::booking_currency`), else from the plain field
//! (shop currency) only when the order has no money sets at all — so one order never
//! mixes currencies, and it carries the shop's exchange rate between the two; ids are
//! kept as exact text (they exceed 2^53); the event kind and the dedupe key come from the
//! signed body only (Shopify signs nothing else), so a replay with a rewritten topic,
//! event id or shop domain books nothing. A retry resends the same body, so it is the
//! same key.//!
//! `order`, `refund` and `customer` read those resources; `money_bag` picks the money
//! set every amount of one order comes from.

mod customer;
mod money_bag;
mod order;
mod refund;

pub use order::{parse_order, parse_order_with};

use customer::customer_from;
use money_bag::Money;
use order::order_from;
use refund::refund_from;

use actix_web::http::header::HeaderMap;

use super::event::{Customer, Order, ShopEvent};
use super::reader::Obj;
use super::{
    body_digest, first_header, parse_json, IncomingEvent, Intake, ParseSettings, Platform, Source,
    WebshopError,
};

/// Signature header names: classic webhooks, then the newer un-prefixed "Events" delivery.
pub const SIGNATURE_HEADERS: [&str; 2] = ["x-shopify-hmac-sha256", "shopify-hmac-sha256"];
const TOPIC_HEADERS: [&str; 2] = ["x-shopify-topic", "shopify-topic"];
const DOMAIN_HEADERS: [&str; 2] = ["x-shopify-shop-domain", "shopify-shop-domain"];

/// The Shopify topics we book, as constants (a topic in an error is never caller text).
const HANDLED_TOPICS: [&str; 8] = [
    "orders/create",
    "orders/paid",
    "orders/updated",
    "orders/cancelled",
    "refunds/create",
    "customers/create",
    "customers/update",
    "customers/delete",
];

/// What a body is, judged from its members alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Order,
    Refund,
    Customer,
    Unknown,
}

fn shape(root: &Obj<'_>) -> Shape {
    if root.has("line_items") || root.has("total_price") {
        Shape::Order
    } else if root.has("refund_line_items") || root.has("order_id") {
        Shape::Refund
    } else if root.has("orders_count") || root.has("addresses") || root.has("email") {
        Shape::Customer
    } else {
        Shape::Unknown
    }
}

/// Parses a verified Shopify body.
///
/// Only the body is signed, so the body decides: the event kind comes from the order's
/// `cancelled_at` and `financial_status`, the dedupe key from the resource id and a digest
/// of the exact body. The topic header only routes, and must agree with the body (an
/// order body is never a customer, `orders/cancelled` needs a cancelled order) or the
/// delivery is refused with `topic_conflict`. Event, webhook id and shop domain headers
/// change nothing: a replay with new ones is the same key, so a duplicate.
pub fn parse(
    body: &[u8],
    headers: &HeaderMap,
    settings: &ParseSettings,
) -> Result<Intake, WebshopError> {
    let m = Money::of(settings);
    let sent = first_header(headers, &TOPIC_HEADERS)?
        .ok_or(WebshopError::MissingHeader(TOPIC_HEADERS[0]))?;
    let Some(topic) = HANDLED_TOPICS.iter().copied().find(|t| *t == sent) else {
        return Ok(Intake::Ignored {
            topic: sent.to_owned(),
        });
    };
    let domain = first_header(headers, &DOMAIN_HEADERS)?
        .ok_or(WebshopError::MissingHeader(DOMAIN_HEADERS[0]))?;

    let json = parse_json(body)?;
    let root = Obj::root(&json)?;
    let conflict = |reason: &'static str| WebshopError::TopicConflict {
        header: TOPIC_HEADERS[0],
        topic,
        reason,
    };
    let shape = shape(&root);
    let (resource, event) = match topic {
        "refunds/create" => {
            if matches!(shape, Shape::Order | Shape::Customer) {
                return Err(conflict("the body is not a refund"));
            }
            let refund = refund_from(&root, None, m)?;
            (
                "refund",
                ShopEvent::OrderRefunded {
                    refund,
                    order: None,
                },
            )
        }
        "customers/create" | "customers/update" => {
            if matches!(shape, Shape::Order | Shape::Refund) {
                return Err(conflict("the body is not a customer"));
            }
            (
                "customer",
                ShopEvent::CustomerUpserted(customer_from(&root)?),
            )
        }
        "customers/delete" => {
            // Shopify's deletion body carries little more than the id.
            if matches!(shape, Shape::Order | Shape::Refund) {
                return Err(conflict("the body is not a customer"));
            }
            (
                "customer",
                ShopEvent::CustomerDeleted(Customer::deleted(root.req_id("id")?)),
            )
        }
        _ => {
            if shape != Shape::Order {
                return Err(conflict("the body is not an order"));
            }
            let event = order_event(order_from(&root, m)?);
            match (topic, &event) {
                ("orders/cancelled", ShopEvent::OrderCancelled(_)) => {}
                ("orders/cancelled", _) => {
                    return Err(conflict(
                        "the body is not cancelled (cancelled_at is empty)",
                    ))
                }
                ("orders/paid", ShopEvent::OrderCancelled(_)) => {
                    return Err(conflict(
                        "the body is a cancelled order (cancelled_at is set)",
                    ))
                }
                ("orders/paid", ShopEvent::OrderUpdated(_)) => {
                    return Err(conflict("the body is not paid (financial_status)"))
                }
                _ => {}
            }
            ("order", event)
        }
    };
    let id = root.opt_id("id")?.unwrap_or_default();
    // An order version is its id, `updated_at` and bytes; a refund never changes, so its
    // id is its key (the same key as the reconciliation poll's).
    let updated_at = root.opt_str("updated_at")?;
    let dedupe_key = match (resource, updated_at) {
        ("order", Some(at)) => order_version_key(&id, &at, body),
        ("refund", _) if !id.is_empty() => refund_key(&id),
        _ => format!("shopify:{resource}:{id}:{}", body_digest(body)),
    };
    Ok(Intake::Event(Box::new(IncomingEvent {
        dedupe_key,
        event,
        topic: topic.to_owned(),
        source: Source {
            platform: Platform::Shopify,
            shop: Some(domain.to_owned()),
        },
    })))
}

/// Chooses the event for an order body from what it says. Refunds are not derived from
/// order bodies: Shopify sends `refunds/create` for each, and deriving them here would
/// book them twice.
fn order_event(order: Order) -> ShopEvent {
    if order.cancelled_at.is_some() {
        return ShopEvent::OrderCancelled(order);
    }
    let paid = matches!(
        order.status.as_str(),
        "paid" | "partially_refunded" | "refunded"
    );
    if paid {
        ShopEvent::OrderPaid(order)
    } else {
        ShopEvent::OrderUpdated(order)
    }
}

/// The dedupe key of one version of a Shopify order: order id, `updated_at` (normalised
/// to UTC, so `-04:00` and `Z` spellings of one instant agree) and a digest of the body.
/// All of it is signed data (keys are per tenant, so no shop domain). The digest keeps
/// two different bodies of one second apart (an order created and paid within the same
/// second must not be a duplicate); a retry or a replay resends the same bytes, and a
/// re-poll of an unchanged order reads the same bytes, so both stay duplicates.
pub fn order_version_key(order_id: &str, updated_at: &str, body: &[u8]) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(updated_at)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        })
        .unwrap_or_else(|_| updated_at.to_owned());
    format!("shopify:order:{order_id}:{at}:{}", body_digest(body))
}

/// The dedupe key of a Shopify refund (refunds never change once created).
pub fn refund_key(refund_id: &str) -> String {
    format!("shopify:refund:{refund_id}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::webshop::BookingCurrency;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn presentment_money_is_booked_and_rates_become_percent() {
        let v = json!({
            "id": 1, "currency": "USD", "financial_status": "paid",
            "total_price": "10.00",
            "total_price_set": {"shop_money": {"amount": "10.00", "currency_code": "USD"},
                                "presentment_money": {"amount": "9.10", "currency_code": "EUR"}},
            "line_items": [{"id": 2, "name": "A", "quantity": 2, "price": "5.00",
                "tax_lines": [{"title": "VAT", "rate": 0.095, "price": "0.87"}]}],
            "total_tip_received": "1.50"
        });
        let o = parse_order(&serde_json::to_vec(&v).unwrap()).unwrap();
        // The customer paid 9.10 EUR; the shop's books are in USD.
        assert_eq!(o.total, dec!(9.10));
        assert_eq!(o.currency, "EUR");
        assert_eq!(o.shop_currency.as_deref(), Some("USD"));
        assert_eq!(o.exchange_rate, Some(dec!(1.098901)));
        let settings = ParseSettings {
            booking_currency: BookingCurrency::Shop,
            ..ParseSettings::default()
        };
        let shop = parse_order_with(&serde_json::to_vec(&v).unwrap(), &settings).unwrap();
        assert_eq!((shop.total, shop.currency.as_str()), (dec!(10.00), "USD"));
        assert_eq!(shop.shop_currency, None);
        assert_eq!(o.lines[0].subtotal, dec!(10.00));
        assert_eq!(o.lines[0].tax_rate_percent, Some(dec!(9.5)));
        assert_eq!(o.fees[0].total, dec!(1.50), "tips are kept as a fee");
        assert!(matches!(order_event(o), ShopEvent::OrderPaid(_)));
    }

    #[test]
    fn removed_shipping_lines_are_skipped() {
        let v = json!({
            "id": 1, "currency": "USD", "total_price": "5.00",
            "shipping_lines": [
                {"id": 1, "title": "Old", "price": "9.00", "is_removed": true},
                {"id": 2, "title": "New", "price": "5.00", "discounted_price": "4.00"}
            ]
        });
        let o = parse_order(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(o.shipping_lines.len(), 1);
        assert_eq!(o.shipping_lines[0].discount, dec!(1.00));
        assert_eq!(o.shipping_total, dec!(4.00));
    }

    #[test]
    fn one_order_version_has_one_key_whatever_the_offset_spelling() {
        let a = order_version_key("1073459981", "2025-04-02T11:31:38-05:00", b"{}");
        let b = order_version_key("1073459981", "2025-04-02T16:31:38Z", b"{}");
        assert_eq!(a, b);
        assert!(
            a.starts_with("shopify:order:1073459981:2025-04-02T16:31:38Z:"),
            "{a}"
        );
        assert_ne!(
            a,
            order_version_key("1073459981", "2025-04-02T16:31:39Z", b"{}")
        );
        assert_ne!(
            a,
            order_version_key("1073459981", "2025-04-02T16:31:38Z", b"{ }")
        );
    }
}
