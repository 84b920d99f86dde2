//! What to do with an event, from the tenant's booking trigger and document settings.
//! Pure: the orchestrator applies the decision (and its own idempotency records, so a
//! repeated `Book` for an order already booked is a no-op there).

use crate::webshop::ShopEvent;

use super::settings::{BookingSettings, BookingTrigger, CancelAction, CustomerSync, DocumentKind};

/// What the orchestrator should do with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create the configured document for the order (unless already booked).
    Book,
    /// Undo what was booked for the order (delete a draft, credit an issued invoice,
    /// invalidate a received order).
    Cancel,
    /// Book a credit note for the refund (or copy the invoice to one for a full refund).
    Refund,
    /// Create or update the shop customer's Minimax customer (a customer event).
    SyncCustomer,
    /// The shop deleted a customer: recorded; the Minimax customer stays.
    CustomerDeleted,
    /// Nothing to book; the reason is recorded with the job.
    Skip { reason: String },
}

fn skip(reason: impl Into<String>) -> Decision {
    Decision::Skip {
        reason: reason.into(),
    }
}

/// Decides from the event kind, the trigger, the document kind and the test flag.
pub fn decide(event: &ShopEvent, settings: &BookingSettings) -> Decision {
    if let Some(order) = event.order() {
        if order.test && !settings.book_test_orders {
            return skip(format!(
                "order {} is a test order; set settings.book_test_orders to book test orders",
                order.shop_order_id
            ));
        }
    }
    match event {
        ShopEvent::OrderPaid(_) => Decision::Book,
        ShopEvent::OrderUpdated(order) => match settings.trigger {
            BookingTrigger::OnCreated => Decision::Book,
            BookingTrigger::OnPaid => skip(format!(
                "order {} is not paid yet (status '{}'); the booking trigger is on_paid",
                order.shop_order_id, order.status
            )),
        },
        ShopEvent::OrderCancelled(order) => match settings.cancel_action {
            CancelAction::DeleteDraftOrCredit => Decision::Cancel,
            CancelAction::Ignore => skip(format!(
                "order {} was cancelled; settings.cancel_action is ignore",
                order.shop_order_id
            )),
        },
        ShopEvent::OrderRefunded { refund, .. } => match settings.document {
            // A received order is not a fiscal document: the accountant handles the refund
            // when invoicing from it.
            DocumentKind::ReceivedOrder => skip(format!(
                "refund of order {} is not booked: settings.document is received_order",
                refund.shop_order_id
            )),
            _ => Decision::Refund,
        },
        ShopEvent::CustomerUpserted(_) => match settings.customer_sync {
            CustomerSync::OnCustomerEvents => Decision::SyncCustomer,
            CustomerSync::WithOrders => skip(
                "customers are created or updated when their order is booked (settings.customer_sync = with_orders)",
            ),
        },
        ShopEvent::CustomerDeleted(_) => Decision::CustomerDeleted,
    }
}
