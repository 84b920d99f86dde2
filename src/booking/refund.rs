//! Refunds: each shop refund becomes one credit note of exactly the refunded amount
//! (a full refund of an issued invoice is a `copytocreditnote`). A refund whose invoice
//! is not booked yet waits for it (WooCommerce refunds carry the order, which is then
//! booked first); a refund without its order is mapped against the order kept when it
//! was booked. Like an order, the credit note is planned and reconciled before an item
//! is written.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::mapping;
use crate::webshop::{Order, Refund};

use super::create::BookingOutcome;
use super::error::{BookingError, Result};
use super::masters::placeholder_ids;
use super::records::{Doc, Record, RecordState};
use super::{today, Ctx};

/// How long a refund waits for its invoice before it gives up.
const REFUND_WAIT_LIMIT: chrono::Duration = chrono::Duration::days(7);

impl Ctx<'_> {
    /// Credits the event's refund and, when the event carries the order (WooCommerce),
    /// every earlier refund of it not credited yet, oldest first: a refund is never
    /// missed because its own delivery was skipped or merged into a later one.
    pub(super) async fn refund(
        &self,
        refund: &Refund,
        order: Option<&Order>,
    ) -> Result<BookingOutcome> {
        let key = refund.key();
        let mut earlier: Vec<&Refund> = order
            .map(|o| o.refunds.iter().filter(|r| r.key() != key).collect())
            .unwrap_or_default();
        earlier.sort_by_key(|r| {
            (
                r.shop_refund_id
                    .as_deref()
                    .and_then(|id| id.parse::<u64>().ok()),
                r.created_at,
            )
        });
        let mut credited = Vec::new();
        for r in earlier {
            credited.push(self.refund_one(r, order).await?);
        }
        let mut last = self.refund_one(refund, order).await?;
        match &mut last {
            BookingOutcome::Document(d) => d.earlier_refunds = credited,
            BookingOutcome::Skipped {
                earlier_refunds, ..
            } => *earlier_refunds = credited,
            BookingOutcome::Customer(_) => {}
        }
        Ok(last)
    }

    async fn refund_one(&self, refund: &Refund, order: Option<&Order>) -> Result<BookingOutcome> {
        let tenant = &self.tenant.id;
        let refund_key = refund.key();
        let doc = Doc::CreditNote(refund_key.clone());
        let (existing, adopted) = self.settled(&doc).await?;
        if let Some(done) = &existing {
            if matches!(done.state, RecordState::Created | RecordState::Issued) {
                return Ok(BookingOutcome::Document(
                    self.finish(&doc, done.clone(), adopted).await?,
                ));
            }
        }
        let (mut invoice, _) = self.settled(&Doc::Invoice).await?;
        // The first news of an order may be its refund (WooCommerce sends the whole
        // order with it): the paid order is booked first, then credited.
        let unbooked = matches!(
            &invoice,
            None | Some(Record {
                state: RecordState::Intent,
                ..
            })
        );
        if let (true, Some(order)) = (unbooked, order) {
            self.book(order).await?;
            invoice = self
                .records
                .get(tenant, self.order_id, &Doc::Invoice)
                .await?;
        }
        let invoice = match invoice {
            Some(r) if matches!(r.state, RecordState::Created | RecordState::Issued) => r,
            Some(r) if matches!(r.state, RecordState::Deleted | RecordState::Cancelled) => {
                return Ok(BookingOutcome::skipped(
                    "the order's invoice was cancelled; nothing to credit",
                ))
            }
            _ => return Err(self.wait_for_invoice()),
        };
        let snapshot;
        let order = match order {
            Some(o) => o,
            None => {
                snapshot = self.records.snapshot(tenant, self.order_id).await?;
                snapshot.as_ref().ok_or_else(|| {
                    BookingError::Permanent(format!(
                        "refund of order {} arrived without the order, and the booked order was not kept",
                        self.order_id
                    ))
                })?
            }
        };
        if mapping::is_full_refund(refund, order) && invoice.state == RecordState::Issued {
            return self.credit_in_full(&invoice, &refund_key).await;
        }
        let Some(customer_id) = invoice.customer_id else {
            return Err(BookingError::Permanent(
                "invoice record without a customer".into(),
            ));
        };
        let date = today();
        let org = self.org_data(order, date).await?;
        let settings = self.settings();
        let needs = mapping::credit_note_item_needs(refund, Some(order), settings, &org)?;
        let plan_with = |item_ids: &BTreeMap<String, i64>| {
            mapping::credit_note_plan(
                refund,
                Some(order),
                settings,
                &org,
                customer_id,
                item_ids,
                date,
            )
        };
        let masters = self.masters();
        let known = masters.existing_items(&needs).await?;
        // Refused before any item is written (ids do not change totals).
        plan_with(&placeholder_ids(&needs))?;
        self.hold().await?;
        let item_ids = masters.create_missing_items(needs, known, &org).await?;
        let plan = plan_with(&item_ids)?;
        let reference = plan
            .invoice
            .document_reference
            .clone()
            .unwrap_or_else(|| format!("{}/R{}", self.order_id, refund_key));
        let intent = Record::intent(reference, Some(customer_id), date, Some(-refund.amount));
        Ok(BookingOutcome::Document(
            self.create_credit_note(&doc, intent, plan).await?,
        ))
    }

    /// Waits for the invoice (its job may be queued behind this refund), for at most
    /// [`REFUND_WAIT_LIMIT`] after the refund arrived.
    fn wait_for_invoice(&self) -> BookingError {
        if Utc::now() - self.job.created_at > REFUND_WAIT_LIMIT {
            return BookingError::Permanent(format!(
                "order {} was never booked; its refund has nothing to credit",
                self.order_id
            ));
        }
        BookingError::Wait {
            reason: format!(
                "waiting for the invoice of order {} to be booked",
                self.order_id
            ),
            until: Utc::now() + chrono::Duration::seconds(30),
        }
    }
}
