//! The `generic` platform: custom shop plugins post the canonical [`ShopEvent`] JSON
//! directly, signed with the Standard Webhooks scheme (see `docs/webhooks-generic.md`).
//!
//! Guarantees: the body must be a version-1 event whose order ids and currency are
//! non-empty; the dedupe key is the sender's `webhook-id`, which Standard Webhooks keeps
//! identical across retries of one message.

use actix_web::http::header::HeaderMap;

use super::event::ShopEvent;
use super::signature::STD_ID_HEADER;
use super::{json_error, required_header, IncomingEvent, Intake, Platform, Source, WebshopError};

/// Parses a verified generic body.
pub fn parse(body: &[u8], headers: &HeaderMap) -> Result<Intake, WebshopError> {
    let id = required_header(headers, STD_ID_HEADER)?;
    let event: ShopEvent = serde_json::from_slice(body).map_err(|e| json_error(&e, body))?;
    validate(&event)?;
    Ok(Intake::Event(Box::new(IncomingEvent {
        dedupe_key: format!("generic:{id}"),
        topic: event.kind().as_str().to_owned(),
        event,
        source: Source {
            platform: Platform::Generic,
            shop: None,
        },
    })))
}

/// Checks what serde cannot express: identifiers and currency must not be blank.
fn validate(event: &ShopEvent) -> Result<(), WebshopError> {
    if let Some(order) = event.order() {
        if order.shop_order_id.trim().is_empty() {
            return Err(WebshopError::invalid(
                "order.shop_order_id",
                "must not be empty",
            ));
        }
        if order.currency.trim().is_empty() {
            return Err(WebshopError::invalid("order.currency", "must not be empty"));
        }
    }
    if let ShopEvent::OrderRefunded { refund, order } = event {
        if refund.shop_order_id.trim().is_empty() {
            return Err(WebshopError::invalid(
                "refund.shop_order_id",
                "must not be empty",
            ));
        }
        if let Some(order) = order {
            if order.shop_order_id != refund.shop_order_id {
                return Err(WebshopError::invalid(
                    "refund.shop_order_id",
                    "differs from order.shop_order_id",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn with_id() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("webhook-id"),
            HeaderValue::from_static("msg_1"),
        );
        h
    }

    #[test]
    fn refund_must_name_the_same_order() {
        let body = br#"{"version":1,"kind":"order_refunded",
            "refund":{"shop_order_id":"1","amount":"2.00"},
            "order":{"shop_order_id":"2","currency":"EUR","status":"paid","subtotal":"0",
                     "discount_total":"0","shipping_total":"0","total_tax":"0","total":"0"}}"#;
        let err = parse(body, &with_id()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refund.shop_order_id: differs from order.shop_order_id"
        );
    }

    #[test]
    fn blank_currency_is_rejected() {
        let body = br#"{"version":1,"kind":"order_paid",
            "order":{"shop_order_id":"2","currency":" ","status":"paid","subtotal":"0",
                     "discount_total":"0","shipping_total":"0","total_tax":"0","total":"0"}}"#;
        assert_eq!(parse(body, &with_id()).unwrap_err().status(), 422);
    }
}
