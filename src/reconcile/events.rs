//! A polled order resource as the events its webhooks would carry.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::shop_api::ShopConnection;
use crate::webshop::{self, IncomingEvent, Intake, ParseSettings, Platform};

fn header_map(pairs: &[(&'static str, &str)]) -> Result<HeaderMap, webshop::WebshopError> {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        let value = HeaderValue::from_str(v)
            .map_err(|_| webshop::WebshopError::invalid(*k, "cannot be sent as a header"))?;
        h.insert(HeaderName::from_static(k), value);
    }
    Ok(h)
}

/// Keeps a parsed event, with `key` as its dedupe key when one is given (Shopify: the
/// order version or refund, see [`webshop::shopify::order_version_key`]).
fn push_intake(out: &mut Vec<IncomingEvent>, intake: Intake, key: String) {
    if let Intake::Event(mut e) = intake {
        if !key.is_empty() {
            e.dedupe_key = key;
        }
        out.push(*e);
    }
}

/// A polled resource as the body its webhook would carry.
fn to_body(v: &Value) -> Result<Vec<u8>, webshop::WebshopError> {
    serde_json::to_vec(v).map_err(|_| webshop::WebshopError::MalformedJson {
        path: webshop::ROOT_PATH.to_owned(),
        reason: "the resource cannot be serialised".to_owned(),
    })
}

/// An id as text: JSON numbers as written, strings without their quotes.
fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The events one polled order resource stands for, parsed by the platform's webhook
/// parser with the headers its webhook would carry.
pub fn events_of(
    conn: &ShopConnection,
    order: &Value,
    parse: &ParseSettings,
) -> Result<Vec<IncomingEvent>, webshop::WebshopError> {
    let source = conn.webhook_source();
    let body = to_body(order)?;
    let mut out = Vec::new();
    match conn.platform {
        Platform::Shopify => {
            let id = order.get("id").map(id_text).unwrap_or_default();
            let updated = order
                .get("updated_at")
                .and_then(Value::as_str)
                .unwrap_or("");
            let key = webshop::shopify::order_version_key(&id, updated, &body);
            let h = header_map(&[
                ("x-shopify-topic", "orders/updated"),
                ("x-shopify-shop-domain", &source),
                ("x-shopify-event-id", &key),
            ])?;
            push_intake(&mut out, webshop::shopify::parse(&body, &h, parse)?, key);
            // Shopify books refunds from `refunds/create` only; a polled order carries
            // its refunds in that very shape.
            for r in order
                .get("refunds")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let rid = r.get("id").map(id_text).unwrap_or_default();
                let key = webshop::shopify::refund_key(&rid);
                let h = header_map(&[
                    ("x-shopify-topic", "refunds/create"),
                    ("x-shopify-shop-domain", &source),
                    ("x-shopify-event-id", &key),
                ])?;
                let rbody = to_body(r)?;
                push_intake(&mut out, webshop::shopify::parse(&rbody, &h, parse)?, key);
            }
        }
        _ => {
            let h = header_map(&[
                ("x-wc-webhook-topic", "order.updated"),
                ("x-wc-webhook-source", &source),
            ])?;
            // The webhook's own key (site, order, topic, modification time).
            push_intake(
                &mut out,
                webshop::woocommerce::parse(&body, &h, parse)?,
                String::new(),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::Utc;

    #[test]
    fn a_polled_shopify_order_has_the_key_of_its_version_and_refunds_theirs() {
        let conn = ShopConnection {
            platform: Platform::Shopify,
            url: "https://s.myshopify.com".into(),
            consumer_key: None,
            secret: secrecy::SecretString::from("shpat_x".to_owned()),
            api_version: None,
            write_back: false,
            updated_at: Utc::now(),
        };
        let order = serde_json::json!({
            "id": 1073459981u64, "updated_at": "2025-04-02T11:31:38-05:00", "name": "#1",
            "currency": "USD", "total_price": "0.00", "financial_status": "refunded",
            "line_items": [], "refunds": [{"id": 77, "order_id": 1073459981u64,
                "transactions": [{"kind": "refund", "status": "success", "amount": "0.00"}]}]
        });
        let events = events_of(&conn, &order, &ParseSettings::default()).unwrap();
        let keys: Vec<&str> = events.iter().map(|e| e.dedupe_key.as_str()).collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(
            keys[0].starts_with("shopify:order:1073459981:2025-04-02T16:31:38Z:"),
            "{keys:?}"
        );
        assert_eq!(keys[1], "shopify:refund:77");
        // Polled again unchanged: the same keys (a duplicate, nothing enqueued twice).
        let again = events_of(&conn, &order, &ParseSettings::default()).unwrap();
        assert_eq!(again[0].dedupe_key, events[0].dedupe_key);
    }
}
