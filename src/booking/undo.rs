//! Cancellations: a cancelled shop order undoes what was booked. A draft invoice is
//! deleted (unless the accountant issued it meanwhile), an issued one credited in full
//! through `copytocreditnote` (once, adopted after a lost answer), a received order
//! invalidated. A cancellation before anything was booked leaves a marker, so a late
//! "paid" delivery books nothing.

use serde_json::Value;

use crate::mapping::CancelAction;
use crate::minimax::{InvoiceAction, MinimaxError, OrderAction};
use crate::webshop::Order;

use super::create::{BookingOutcome, DocumentName, DocumentOutcome, DocumentStatus};
use super::error::{BookingError, Result};
use super::records::{Doc, Record, RecordState};
use super::{today, Ctx};

impl Ctx<'_> {
    pub(super) async fn cancel(&self, order: &Order) -> Result<BookingOutcome> {
        let tenant = &self.tenant.id;
        let doc = self.main_doc();
        let (rec, _) = self.settled(&doc).await?;
        let rec = match rec {
            None => {
                // A late "paid" delivery of a cancelled order must book nothing.
                let marker = Record::marker(RecordState::Cancelled, order.number.clone());
                self.records
                    .put(tenant, self.order_id, &doc, &marker)
                    .await?;
                return Ok(BookingOutcome::skipped(
                    "cancelled before it was booked; nothing to undo",
                ));
            }
            Some(rec) => rec,
        };
        if self.settings().cancel_action == CancelAction::Ignore {
            return Ok(BookingOutcome::Skipped {
                skipped: "cancellations are not booked (settings.cancel_action = ignore)".into(),
                minimax_id: rec.minimax_id,
                earlier_refunds: Vec::new(),
            });
        }
        match rec.state {
            RecordState::Cancelled | RecordState::Deleted => {
                Ok(BookingOutcome::skipped("already cancelled"))
            }
            RecordState::Intent => {
                // `settled` found nothing: the unconfirmed create never happened.
                let marker = Record {
                    state: RecordState::Cancelled,
                    ..rec
                };
                self.records
                    .put(tenant, self.order_id, &doc, &marker)
                    .await?;
                Ok(BookingOutcome::skipped(
                    "the unconfirmed booking was never created; nothing to undo",
                ))
            }
            RecordState::Created | RecordState::Issued => match doc {
                Doc::ReceivedOrder => self.invalidate_order(rec).await,
                _ => self.undo_invoice(rec, "cancel").await,
            },
        }
    }

    /// A cancelled shop order invalidates its received order in Minimax.
    async fn invalidate_order(&self, rec: Record) -> Result<BookingOutcome> {
        let Some(id) = rec.minimax_id else {
            return Err(BookingError::record_without_id());
        };
        self.hold().await?;
        match self
            .client
            .order_action(id, OrderAction::Invalidate, None)
            .await
        {
            Ok(_) => {}
            // Already invalidated (an earlier attempt whose answer was lost).
            Err(MinimaxError::Validation { status: 409, .. })
                if self.client.get_order(id).await?.status.as_deref() == Some("R") => {}
            Err(e) => return Err(e.into()),
        }
        let rec = Record {
            state: RecordState::Deleted,
            ..rec
        };
        self.records
            .put(&self.tenant.id, self.order_id, &Doc::ReceivedOrder, &rec)
            .await?;
        Ok(BookingOutcome::Document(DocumentOutcome {
            status: DocumentStatus::Invalidated,
            ..self.outcome(DocumentName::ReceivedOrder, &rec, false)
        }))
    }

    /// Undoes a booked invoice: a draft is deleted, an issued one credited in full.
    async fn undo_invoice(&self, rec: Record, key: &str) -> Result<BookingOutcome> {
        let tenant = &self.tenant.id;
        let Some(id) = rec.minimax_id else {
            return Err(BookingError::record_without_id());
        };
        if rec.state == RecordState::Issued {
            return self.credit_in_full(&rec, key).await;
        }
        // The accountant may have issued the draft since we created it.
        let current = self.client.get_issued_invoice(id).await?;
        if current.status.as_deref() == Some("I") {
            let rec = Record {
                state: RecordState::Issued,
                ..rec
            };
            self.records
                .put(tenant, self.order_id, &Doc::Invoice, &rec)
                .await?;
            return self.credit_in_full(&rec, key).await;
        }
        self.hold().await?;
        self.client.delete_issued_invoice(id).await?;
        let rec = Record {
            state: RecordState::Deleted,
            ..rec
        };
        self.records
            .put(tenant, self.order_id, &Doc::Invoice, &rec)
            .await?;
        Ok(BookingOutcome::Document(self.outcome(
            DocumentName::IssuedInvoice,
            &rec,
            false,
        )))
    }

    /// A credit note of the whole invoice through `copytocreditnote`, once.
    pub(super) async fn credit_in_full(
        &self,
        invoice: &Record,
        key: &str,
    ) -> Result<BookingOutcome> {
        let tenant = &self.tenant.id;
        let doc = Doc::CreditNote(key.to_owned());
        let earlier = self.records.get(tenant, self.order_id, &doc).await?;
        if let Some(done) = &earlier {
            if matches!(done.state, RecordState::Created | RecordState::Issued) {
                return Ok(BookingOutcome::Document(
                    self.finish(&doc, done.clone(), false).await?,
                ));
            }
        }
        let Some(id) = invoice.minimax_id else {
            return Err(BookingError::record_without_id());
        };
        if let Some(intent) = earlier {
            // An earlier `copytocreditnote` may have worked unheard.
            if let Some(found) = self.find_full_credit(id, &intent).await? {
                let rec = self.adopt(&doc, intent, found).await?;
                return Ok(BookingOutcome::Document(
                    self.finish(&doc, rec, true).await?,
                ));
            }
        }
        let reference = format!(
            "{}/{}",
            invoice.reference.as_deref().unwrap_or(self.order_id),
            key
        );
        let mut rec = Record::intent(reference, invoice.customer_id, today(), None);
        self.hold().await?;
        self.records.put(tenant, self.order_id, &doc, &rec).await?;
        let result = self
            .client
            .issued_invoice_action(id, InvoiceAction::CopyToCreditNote, None)
            .await?;
        let new_id = result
            .data
            .as_ref()
            .and_then(|d| d.get("IssuedInvoiceId"))
            .and_then(Value::as_i64);
        rec.state = RecordState::Created;
        rec.minimax_id = new_id;
        self.records.put(tenant, self.order_id, &doc, &rec).await?;
        if new_id.is_none() {
            return Ok(BookingOutcome::Document(self.outcome(
                DocumentName::CreditNote,
                &rec,
                false,
            )));
        }
        Ok(BookingOutcome::Document(
            self.finish(&doc, rec, false).await?,
        ))
    }
}
