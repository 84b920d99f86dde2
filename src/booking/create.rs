//! Booking an order: plan the whole document first, write master data, create the
//! document once, issue it when the settings ask; and [`BookingOutcome`], the typed
//! job result (the admin API and operators read it by key: `document`, `minimax_id`,
//! `number`, `status`, `reference`, `shop_order_id`, `adopted`, `pdf`, `warning`,
//! `earlier_refunds`, `skipped`, `customer`).
//!
//! Guarantees: nothing is written to Minimax for an order whose document would not
//! equal the shop's (it is planned and reconciled with placeholder ids, which do not
//! change totals); an intent is on record before every create and the id after it; a
//! create Minimax refused outright leaves no intent behind.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::mapping::{self, DocumentKind, InvoicePlan, OrgData};
use crate::minimax::models;
use crate::minimax::{InvoiceAction, MinimaxError};
use crate::webshop::Order;

use super::customers::CustomerOutcome;
use super::error::{BookingError, Result};
use super::masters::placeholder_ids;
use super::records::{Doc, Record, RecordState};
use super::{today, Ctx};

/// What a job did, stored as its result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum BookingOutcome {
    /// Nothing to do, and why (the reason names the setting or state responsible).
    Skipped {
        skipped: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        minimax_id: Option<i64>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        earlier_refunds: Vec<BookingOutcome>,
    },
    Document(DocumentOutcome),
    Customer(CustomerOutcome),
}

impl BookingOutcome {
    pub fn skipped(reason: impl Into<String>) -> Self {
        BookingOutcome::Skipped {
            skipped: reason.into(),
            minimax_id: None,
            earlier_refunds: Vec::new(),
        }
    }
}

/// A document booked (or undone) in Minimax.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentOutcome {
    pub document: DocumentName,
    pub minimax_id: Option<i64>,
    pub number: Option<String>,
    pub status: DocumentStatus,
    pub reference: Option<String>,
    pub shop_order_id: String,
    /// True when an earlier attempt had created it and this one found it.
    pub adopted: bool,
    /// The attachment of the PDF Minimax generated on issuing (the PDF stays there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdf: Option<PdfOutcome>,
    /// For the accountant: the shop changed the order after it was booked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// A refund event that also credited earlier refunds of the order: their outcomes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub earlier_refunds: Vec<BookingOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentName {
    IssuedInvoice,
    CreditNote,
    ReceivedOrder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatus {
    Draft,
    Issued,
    Deleted,
    Invalidated,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PdfOutcome {
    pub attachment_id: Option<i64>,
    pub file_name: Option<String>,
}

/// A document about to be created.
enum Planned {
    Invoice(Box<InvoicePlan>),
    Order(Box<models::Order>),
}

impl Ctx<'_> {
    pub(super) async fn book(&self, order: &Order) -> Result<BookingOutcome> {
        let doc = self.main_doc();
        let (existing, adopted) = self.settled(&doc).await?;
        if let Some(rec) = &existing {
            match rec.state {
                RecordState::Cancelled => {
                    return Ok(BookingOutcome::skipped(
                        "the order was cancelled before it was booked",
                    ))
                }
                RecordState::Deleted => {
                    return Ok(BookingOutcome::skipped(
                        "the booked document was withdrawn after a cancellation",
                    ))
                }
                RecordState::Created | RecordState::Issued => {
                    let mut out = self.finish(&doc, rec.clone(), adopted).await?;
                    // Shops send updates of booked orders; a changed total is not
                    // re-booked silently but shown with the job for the accountant.
                    if let Some(booked) = rec.value.filter(|v| *v != order.total) {
                        tracing::warn!(booked = %booked, now = %order.total, "booked order changed in the shop");
                        out.warning = Some(format!(
                            "the order changed after it was booked (total {} → {}); the booked document was left as it is",
                            booked, order.total
                        ));
                    }
                    return Ok(BookingOutcome::Document(out));
                }
                RecordState::Intent => {}
            }
        }
        let date = today();
        let org = self.org_data(order, date).await?;
        let settings = self.settings();
        let customer = mapping::customer_plan(order, settings, &org)?;
        let needs = mapping::item_needs(order, settings, &org)?;
        let masters = self.masters();
        let known = masters.existing_items(&needs).await?;
        // The whole document before any write, with placeholder ids (ids do not change
        // totals): an order that would be refused writes nothing.
        self.plan(&doc, order, &org, 0, &placeholder_ids(&needs), date)?;
        self.hold().await?;
        let customer_id = masters.ensure_customer(&customer).await?.id;
        let item_ids = masters.create_missing_items(needs, known, &org).await?;
        let planned = self.plan(&doc, order, &org, customer_id, &item_ids, date)?;
        let reference = match &planned {
            Planned::Order(o) => o.reference.clone(),
            Planned::Invoice(plan) => plan.invoice.document_reference.clone(),
        }
        .unwrap_or_else(|| self.order_id.to_owned());
        if let Planned::Invoice(_) = planned {
            // Kept for refunds that arrive without their order (Shopify).
            self.records
                .put_snapshot(&self.tenant.id, self.order_id, order)
                .await?;
        }
        let intent = Record::intent(reference, Some(customer_id), date, Some(order.total));
        let rec = self.create_once(&doc, intent, &planned).await?;
        Ok(BookingOutcome::Document(
            self.finish(&doc, rec, false).await?,
        ))
    }

    /// The document of `order` for `customer_id` and `item_ids`, reconciled.
    fn plan(
        &self,
        doc: &Doc,
        order: &Order,
        org: &OrgData,
        customer_id: i64,
        item_ids: &BTreeMap<String, i64>,
        date: NaiveDate,
    ) -> Result<Planned> {
        let s = self.settings();
        Ok(match doc {
            Doc::ReceivedOrder => Planned::Order(Box::new(mapping::order_plan(
                order,
                s,
                org,
                customer_id,
                item_ids,
                date,
            )?)),
            _ => Planned::Invoice(Box::new(mapping::invoice_plan(
                order,
                s,
                org,
                customer_id,
                item_ids,
                date,
            )?)),
        })
    }

    /// Creates the credit note `plan` for refund record `doc`, once.
    pub(super) async fn create_credit_note(
        &self,
        doc: &Doc,
        intent: Record,
        plan: InvoicePlan,
    ) -> Result<DocumentOutcome> {
        let rec = self
            .create_once(doc, intent, &Planned::Invoice(Box::new(plan)))
            .await?;
        self.finish(doc, rec, false).await
    }

    /// Writes the intent, creates the document, records its id. A create Minimax
    /// refused (400/409, 429) or that was never sent (budget, pause, open circuit)
    /// created nothing: its intent is forgotten, so the retry does not search.
    async fn create_once(&self, doc: &Doc, mut rec: Record, planned: &Planned) -> Result<Record> {
        self.hold().await?;
        self.records
            .put(&self.tenant.id, self.order_id, doc, &rec)
            .await?;
        let created = match planned {
            Planned::Invoice(plan) => self.client.create_issued_invoice(&plan.invoice).await,
            Planned::Order(order) => self.client.create_order(order).await,
        };
        let id = match created {
            Ok(id) => id,
            // Refused outright, or never sent / answered 429 (budget spent, paused, circuit
            // open): nothing was created, so the retry must not search (with the budget
            // spent, searches would eat the freed calls instead of bookings).
            Err(
                e @ (MinimaxError::Validation { .. }
                | MinimaxError::BudgetExhausted { .. }
                | MinimaxError::TenantPaused { .. }
                | MinimaxError::CircuitOpen { .. }),
            ) => {
                self.records
                    .delete(&self.tenant.id, self.order_id, doc)
                    .await?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        rec.state = RecordState::Created;
        rec.minimax_id = Some(id);
        self.records
            .put(&self.tenant.id, self.order_id, doc, &rec)
            .await?;
        tracing::info!(minimax_id = id, "document created");
        Ok(rec)
    }

    /// After the create: issue (and make the PDF) when the settings ask for it.
    pub(super) async fn finish(
        &self,
        doc: &Doc,
        mut rec: Record,
        adopted: bool,
    ) -> Result<DocumentOutcome> {
        let name = match doc {
            Doc::ReceivedOrder => {
                return Ok(self.outcome(DocumentName::ReceivedOrder, &rec, adopted))
            }
            Doc::CreditNote(_) => DocumentName::CreditNote,
            Doc::Invoice => DocumentName::IssuedInvoice,
        };
        let want = self.settings().document;
        let issue = matches!(
            want,
            DocumentKind::InvoiceIssued | DocumentKind::InvoiceIssuedWithPdf
        );
        if !issue || rec.state == RecordState::Issued {
            return Ok(self.outcome(name, &rec, adopted));
        }
        let Some(id) = rec.minimax_id else {
            return Err(BookingError::record_without_id());
        };
        // One read gives the fresh RowVersion and tells whether an earlier attempt
        // already issued it (its answer may have been lost).
        let current = self.client.get_issued_invoice(id).await?;
        let mut pdf = None;
        if current.status.as_deref() != Some("I") {
            self.hold().await?;
            let action = if want == DocumentKind::InvoiceIssuedWithPdf {
                InvoiceAction::IssueAndGeneratePdf
            } else {
                InvoiceAction::Issue
            };
            let result = self
                .client
                .issued_invoice_action(id, action, current.row_version.as_deref())
                .await?;
            if action == InvoiceAction::IssueAndGeneratePdf {
                pdf = result
                    .attachment()
                    .filter(|a| a.attachment_id.is_some() || a.attachment_file_name.is_some())
                    .map(|a| PdfOutcome {
                        attachment_id: a.attachment_id,
                        file_name: a.attachment_file_name.clone(),
                    });
            }
        }
        // The number is assigned on issuing.
        let issued = self.client.get_issued_invoice(id).await?;
        rec.state = RecordState::Issued;
        rec.number = match (issued.year, issued.invoice_number) {
            (Some(y), Some(n)) => Some(format!("{y}-{n}")),
            (_, Some(n)) => Some(n.to_string()),
            _ => None,
        };
        self.records
            .put(&self.tenant.id, self.order_id, doc, &rec)
            .await?;
        Ok(DocumentOutcome {
            pdf,
            ..self.outcome(name, &rec, adopted)
        })
    }

    /// The job result for the document `rec` records.
    pub(super) fn outcome(
        &self,
        document: DocumentName,
        rec: &Record,
        adopted: bool,
    ) -> DocumentOutcome {
        DocumentOutcome {
            document,
            minimax_id: rec.minimax_id,
            number: rec.number.clone(),
            status: match rec.state {
                RecordState::Issued => DocumentStatus::Issued,
                RecordState::Deleted => DocumentStatus::Deleted,
                _ => DocumentStatus::Draft,
            },
            reference: rec.reference.clone(),
            shop_order_id: self.order_id.to_owned(),
            adopted,
            pdf: None,
            warning: None,
            earlier_refunds: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The job result keeps the keys the admin API's readers and operators use.
    #[test]
    fn outcomes_serialise_to_the_documented_keys() {
        let credit = DocumentOutcome {
            document: DocumentName::CreditNote,
            minimax_id: Some(7),
            number: Some("2026-3".into()),
            status: DocumentStatus::Issued,
            reference: Some("727/R1".into()),
            shop_order_id: "727".into(),
            adopted: false,
            pdf: None,
            warning: None,
            earlier_refunds: vec![BookingOutcome::skipped("the order's invoice was cancelled")],
        };
        let v = serde_json::to_value(BookingOutcome::Document(credit)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "document": "credit_note", "minimax_id": 7, "number": "2026-3",
                "status": "issued", "reference": "727/R1", "shop_order_id": "727",
                "adopted": false,
                "earlier_refunds": [{"skipped": "the order's invoice was cancelled"}],
            })
        );
        let ignored = BookingOutcome::Skipped {
            skipped: "cancellations are not booked".into(),
            minimax_id: Some(9),
            earlier_refunds: Vec::new(),
        };
        assert_eq!(
            serde_json::to_value(ignored).unwrap(),
            serde_json::json!({"skipped": "cancellations are not booked", "minimax_id": 9})
        );
    }
}
