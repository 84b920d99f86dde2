//! The `seen` markers webhook intake leaves per order version, which tell the poll
//! whether a webhook delivered what it found.

use crate::webshop::ShopEvent;

/// How long webhook `seen` markers live (longer than any overlap window or backfill).
const SEEN_TTL_SECS: u64 = 40 * 24 * 3600;

/// The marker key and version of an event: orders by id and modification time (ms),
/// refunds without their order (Shopify `refunds/create`) by refund key.
pub(super) fn seen_marker(event: &ShopEvent) -> Option<(String, i64)> {
    if let Some(order) = event.order() {
        let v = order.updated_at.map(|t| t.timestamp_millis()).unwrap_or(0);
        return Some((format!("seen:order:{}", order.shop_order_id), v));
    }
    match event {
        ShopEvent::OrderRefunded { refund, .. } => {
            Some((format!("seen:refund:{}", refund.key()), 0))
        }
        _ => None,
    }
}

/// What webhook intake records for the poll: the marker of an event (computed before
/// the event moves into its job, so nothing is cloned on the hot path).
pub struct Delivered {
    what: String,
    version: i64,
}

/// The marker of `event`; `None` for events the poll never sees.
pub fn delivered(event: &ShopEvent) -> Option<Delivered> {
    seen_marker(event).map(|(what, version)| Delivered { what, version })
}

impl Delivered {
    /// The enqueue mark that records this delivery with a new job, in the enqueue's
    /// own script (a duplicate adds nothing: the first delivery or the poll decided).
    pub fn mark(&self) -> crate::queue::Mark<'_> {
        crate::queue::Mark {
            key: &self.what,
            value: self.version,
            ttl_secs: SEEN_TTL_SECS,
        }
    }
}
