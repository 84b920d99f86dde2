//! Finding a document after an ambiguous create: a create (or `copytocreditnote`) whose
//! answer was lost may have worked. Before anything else, a retry looks for it and
//! adopts what it finds, so it costs the search and nothing else, and never a second
//! document.
//!
//! Received orders are found by `orders?Reference=`; issued invoices and credit notes,
//! which have no documented `DocumentReference` filter, among the customer's invoices
//! of the document date (docs/minimax-client.md, "Finding documents again").

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::minimax::models::IssuedInvoiceFilter;

use super::error::Result;
use super::records::{Doc, Record, RecordState};
use super::Ctx;

impl Ctx<'_> {
    /// The record of `doc`, with an unconfirmed intent settled first: adopted when
    /// Minimax has the document, else left as an intent (nothing was created).
    /// Also says whether it adopted.
    pub(super) async fn settled(&self, doc: &Doc) -> Result<(Option<Record>, bool)> {
        let rec = self
            .records
            .get(&self.tenant.id, self.order_id, doc)
            .await?;
        let rec = match rec {
            Some(r) if r.state == RecordState::Intent => r,
            other => return Ok((other, false)),
        };
        let Some(reference) = rec.reference.clone() else {
            return Ok((Some(rec), false));
        };
        let found = match doc {
            Doc::ReceivedOrder => self.find_order(&reference).await?,
            Doc::Invoice | Doc::CreditNote(_) => match (rec.customer_id, rec.document_date) {
                (Some(customer), Some(date)) => {
                    self.find_invoice(&reference, customer, date, rec.value)
                        .await?
                }
                _ => None,
            },
        };
        let Some(id) = found else {
            return Ok((Some(rec), false));
        };
        Ok((Some(self.adopt(doc, rec, id).await?), true))
    }

    /// Records document `id`, found in Minimax, as the one `intent` was about.
    pub(super) async fn adopt(&self, doc: &Doc, intent: Record, id: i64) -> Result<Record> {
        tracing::warn!(
            minimax_id = id,
            "adopting the document an earlier attempt created"
        );
        let adopted = Record {
            state: RecordState::Created,
            minimax_id: Some(id),
            ..intent
        };
        self.records
            .put(&self.tenant.id, self.order_id, doc, &adopted)
            .await?;
        Ok(adopted)
    }

    /// Looks for an invoice an earlier attempt created: among the customer's invoices
    /// around the document date (the API has no `DocumentReference` filter), reading
    /// first those worth the planned `value`, newest first, through every page. A
    /// catch-all customer can have many invoices a day; the value keeps the reads few.
    async fn find_invoice(
        &self,
        reference: &str,
        customer_id: i64,
        date: NaiveDate,
        value: Option<Decimal>,
    ) -> Result<Option<i64>> {
        let mut candidates = Vec::new();
        let mut page_no = 1;
        loop {
            let filter = IssuedInvoiceFilter {
                current_page: Some(page_no),
                ..around(customer_id, date)
            };
            let page = self.client.list_issued_invoices(&filter).await?;
            let got = page.rows.len();
            candidates.extend(
                page.rows
                    .iter()
                    .filter_map(|r| Some((r.issued_invoice_id?, r.invoice_value))),
            );
            if got == 0 || candidates.len() as i64 >= page.total_rows {
                break;
            }
            page_no += 1;
        }
        // `InvoiceValue` is in the domestic currency, so a foreign-currency invoice may
        // not match: matching values only go first, nothing is skipped.
        candidates.sort_by_key(|(id, v)| (value.is_some() && *v != value, std::cmp::Reverse(*id)));
        for (id, _) in candidates {
            let inv = self.client.get_issued_invoice(id).await?;
            if inv.document_reference.as_deref() == Some(reference) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    async fn find_order(&self, reference: &str) -> Result<Option<i64>> {
        let rows = self.client.orders_by_reference(reference).await?;
        Ok(rows.iter().find_map(|r| r.order_id))
    }

    /// The credit note an earlier `copytocreditnote` of `invoice_id` made unheard: the
    /// customer's document of the intent's date worth exactly minus the invoice.
    pub(super) async fn find_full_credit(
        &self,
        invoice_id: i64,
        intent: &Record,
    ) -> Result<Option<i64>> {
        let (Some(customer), Some(date)) = (intent.customer_id, intent.document_date) else {
            return Ok(None);
        };
        let original = self.client.get_issued_invoice(invoice_id).await?;
        let Some(value) = original.invoice_value else {
            return Ok(None);
        };
        let page = self
            .client
            .list_issued_invoices(&around(customer, date))
            .await?;
        Ok(page
            .rows
            .iter()
            .filter(|r| r.issued_invoice_id != Some(invoice_id) && r.invoice_value == Some(-value))
            .filter_map(|r| r.issued_invoice_id)
            .max())
    }
}

/// The customer's invoices from the day before to the day after `date` (the document
/// date may shift by a day across time zones), a page of 100.
fn around(customer_id: i64, date: NaiveDate) -> IssuedInvoiceFilter {
    IssuedInvoiceFilter {
        customer_id: Some(customer_id),
        date_issued_from: date.pred_opt(),
        date_issued_to: date.succ_opt(),
        page_size: Some(100),
        ..Default::default()
    }
}
