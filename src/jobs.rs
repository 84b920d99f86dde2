//! The jobs the queue carries: a versioned, tagged serde enum. A new job shape gets a
//! new variant (`shop_event.v2`), so jobs queued by an older release still decode.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::webshop::IncomingEvent;

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
    ShopWriteBackV1(crate::writeback::WriteBackJob),
}

impl Job {
    pub fn to_payload(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn from_payload(payload: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(payload)
    }
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
}
