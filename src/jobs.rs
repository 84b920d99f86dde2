//! The jobs the queue carries: a versioned, tagged serde enum. A new job shape gets a
//! new variant (`shop_event.v2`), so jobs queued by an older release still decode.
//! [`summarize`] gives the operator's view of a job's event, which a finished job
//! keeps in the queue after its payload is dropped and the admin API shows.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::webshop::{IncomingEvent, ShopEvent};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Job {
    /// A verified webhook event to book.
    #[serde(rename = "shop_event.v1")]
    ShopEventV1 {
        received_at: DateTime<Utc>,
        incoming: Box<IncomingEvent>,
    },
    /// Writes a booked document's number back to the shop order (`crate::writeback`).
    #[serde(rename = "shop_write_back.v1")]
    ShopWriteBackV1(WriteBackJob),
}

impl Job {
    pub fn to_payload(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn from_payload(payload: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(payload)
    }
}

/// The payload of a `shop_write_back.v1` job (run by `crate::writeback`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteBackJob {
    pub shop_order_id: String,
    /// `issued_invoice`, `received_order`, `credit_note`.
    pub document: String,
    pub minimax_id: Option<i64>,
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
}

/// What an operator sees of a job's event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventSummary {
    /// The job's type tag (`shop_event.v1`).
    pub job_type: &'static str,
    pub received_at: DateTime<Utc>,
    pub platform: String,
    /// The shop's site URL or domain, as the webhook named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop: Option<String>,
    pub topic: String,
    pub kind: &'static str,
    pub dedupe_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop_order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tax: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_count: Option<usize>,
    /// The payment gateway id (`bacs`, `stripe`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<Decimal>,
    /// For customer events: the shop's customer id only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop_customer_id: Option<String>,
}

/// The operator's summary of a job payload; `None` when it is not a known job type.
pub fn summarize(payload: &str) -> Option<EventSummary> {
    let Job::ShopEventV1 {
        received_at,
        incoming,
    } = Job::from_payload(payload).ok()?
    else {
        return None;
    };
    let event = &incoming.event;
    let order = event.order();
    let mut s = EventSummary {
        job_type: "shop_event.v1",
        received_at,
        platform: incoming.source.platform.as_str().to_owned(),
        shop: incoming.source.shop.clone(),
        topic: incoming.topic.clone(),
        kind: event.kind().as_str(),
        dedupe_key: incoming.dedupe_key.clone(),
        shop_order_id: event.shop_order_id().map(str::to_owned),
        order_number: order.and_then(|o| o.number.clone()),
        order_status: order.map(|o| o.status.clone()),
        currency: order.map(|o| o.currency.clone()),
        total: order.map(|o| o.total),
        total_tax: order.map(|o| o.total_tax),
        line_count: order.map(|o| o.lines.len()),
        payment_method: order
            .and_then(|o| o.payment_method.as_ref())
            .and_then(|p| p.id.clone()),
        refund_id: None,
        refund_amount: None,
        shop_customer_id: None,
    };
    match event {
        ShopEvent::OrderRefunded { refund, .. } => {
            s.refund_id = refund.shop_refund_id.clone();
            s.refund_amount = Some(refund.amount);
            if s.currency.is_none() {
                s.currency = refund.currency.clone();
            }
        }
        ShopEvent::CustomerUpserted(c) | ShopEvent::CustomerDeleted(c) => {
            s.shop_customer_id = c.shop_customer_id.clone()
        }
        _ => {}
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn jobs_carry_their_type_and_version_tag() {
        let event: crate::webshop::ShopEvent =
            serde_json::from_str(include_str!("../docs/examples/generic-order-paid.json")).unwrap();
        let job = Job::ShopEventV1 {
            received_at: Utc::now(),
            incoming: Box::new(IncomingEvent {
                dedupe_key: "generic:msg_1".into(),
                event,
                topic: "order_paid".into(),
                source: crate::webshop::Source {
                    platform: crate::webshop::Platform::Generic,
                    shop: None,
                },
            }),
        };
        let payload = job.to_payload().unwrap();
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v["type"], "shop_event.v1");
        assert_eq!(Job::from_payload(&payload).unwrap(), job);
        // An unknown version is an error, not a silent misread.
        let future = payload.replace("shop_event.v1", "shop_event.v9");
        assert!(Job::from_payload(&future).is_err());
    }

    #[test]
    fn summary_keeps_order_facts_and_drops_personal_data() {
        let event: ShopEvent =
            serde_json::from_str(include_str!("../docs/examples/generic-order-paid.json")).unwrap();
        let job = Job::ShopEventV1 {
            received_at: Utc::now(),
            incoming: Box::new(crate::webshop::IncomingEvent {
                dedupe_key: "generic:msg_1".into(),
                event: event.clone(),
                topic: "order_paid".into(),
                source: crate::webshop::Source {
                    platform: crate::webshop::Platform::Generic,
                    shop: None,
                },
            }),
        };
        let s = summarize(&job.to_payload().unwrap()).unwrap();
        let order = event.order().unwrap();
        assert_eq!(s.kind, "order_paid");
        assert_eq!(s.total, Some(order.total));
        assert_eq!(s.line_count, Some(order.lines.len()));
        let text = serde_json::to_string(&s).unwrap();
        if let Some(c) = &order.customer {
            for personal in [&c.email, &c.first_name, &c.last_name, &c.phone]
                .into_iter()
                .flatten()
            {
                assert!(!text.contains(personal.as_str()), "{personal} in {text}");
            }
        }
        assert!(summarize("{\"type\":\"shop_event.v9\"}").is_none());
    }
}
