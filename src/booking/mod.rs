//! Booking: the job handler that turns a queued shop event into Minimax documents.
//!
//! What it guarantees (ARCHITECTURE.md guarantees 2 and 3):
//! - **One document per order.** A record per (tenant, shop order, document) is
//!   checked first, so repeated and late events cost no Minimax call; an intent is
//!   written before each create and the Minimax id after it; a retry that finds an
//!   intent without an id searches Minimax (`orders?Reference=`, or the customer's
//!   invoices of the document date compared by `DocumentReference`) and adopts what it
//!   finds instead of creating a second document. A per-order lock serialises jobs of
//!   one order.
//! - **Correct to the cent.** The planned document's totals are computed the way
//!   Minimax computes them and compared with the shop's before anything is written
//!   ([`crate::mapping::reconcile`]); a difference fails the job with both figures.
//! - Errors become queue decisions: Minimax's own disposition (retry, wait, give up),
//!   mapping problems are permanent with a reason a shop owner can act on, a refund
//!   whose invoice is not booked yet waits for it.

pub mod records;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::jobs::Job;
use crate::mapping::{
    self, BookingSettings, CancelAction, Decision, DocumentKind, MappingError, OrgData,
    PaymentMethodRef, VatRateRef,
};
use crate::minimax::models::{self, Contact, Fk, IssuedInvoiceFilter, Item};
use crate::minimax::{
    Disposition, InvoiceAction, Minimax, MinimaxError, OrderAction, TenantClient,
};
use crate::queue::ClaimedJob;
use crate::tenants::{Tenant, TenantStore};
use crate::webshop::{Order, Refund, ShopEvent};
use crate::worker::{JobError, JobHandler};
use rust_decimal::Decimal;

use records::{Doc, Record, RecordState, Records};

/// Errors of the booking layer; [`BookingError::into_job_error`] decides the queue's move.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error(transparent)]
    Minimax(#[from] MinimaxError),
    #[error("{0}")]
    Mapping(#[from] MappingError),
    #[error("storage: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("tenant storage: {0}")]
    Tenant(#[from] crate::tenants::TenantError),
    /// A setting names something Minimax does not have.
    #[error("{0}")]
    Setting(String),
    /// Must wait for something else to happen first (another job, the invoice).
    #[error("{reason}")]
    Wait {
        reason: String,
        until: DateTime<Utc>,
    },
    #[error("{0}")]
    Permanent(String),
}

impl BookingError {
    pub fn into_job_error(self) -> JobError {
        match self {
            BookingError::Minimax(e) => {
                let reason = e.to_string();
                match e.disposition() {
                    Disposition::Retry { after } => JobError::Retry {
                        reason,
                        not_before: after.and_then(|d| {
                            chrono::Duration::from_std(d).ok().map(|d| Utc::now() + d)
                        }),
                    },
                    Disposition::WaitUntil(until) => JobError::Wait { reason, until },
                    Disposition::Permanent => JobError::Permanent { reason },
                }
            }
            BookingError::Redis(e) => JobError::Retry {
                reason: format!("storage: {e}"),
                not_before: None,
            },
            BookingError::Tenant(e) => JobError::Retry {
                reason: e.to_string(),
                not_before: None,
            },
            BookingError::Wait { reason, until } => JobError::Wait { reason, until },
            e @ (BookingError::Mapping(_)
            | BookingError::Setting(_)
            | BookingError::Permanent(_)) => JobError::Permanent {
                reason: e.to_string(),
            },
        }
    }
}

type Result<T> = std::result::Result<T, BookingError>;

/// How long a refund waits for its invoice before it gives up.
const REFUND_WAIT_LIMIT: chrono::Duration = chrono::Duration::days(7);

/// The job handler that books shop events.
#[derive(Clone)]
pub struct Booker {
    tenants: TenantStore,
    minimax: Minimax,
    records: Records,
    lock_ttl: Duration,
}

impl Booker {
    pub fn new(
        tenants: TenantStore,
        minimax: Minimax,
        records: Records,
        lock_ttl: Duration,
    ) -> Self {
        Self {
            tenants,
            minimax,
            records,
            lock_ttl,
        }
    }
}

#[async_trait::async_trait]
impl JobHandler for Booker {
    async fn handle(&self, job: &ClaimedJob) -> std::result::Result<Value, JobError> {
        self.run(job).await.map_err(BookingError::into_job_error)
    }
}

impl Booker {
    async fn run(&self, job: &ClaimedJob) -> Result<Value> {
        let Job::ShopEventV1 { incoming, .. } = Job::from_payload(&job.payload)
            .map_err(|e| BookingError::Permanent(format!("job payload cannot be read: {e}")))?;
        let tenant = self.tenants.get(&job.tenant).await?.ok_or_else(|| {
            BookingError::Permanent(format!("tenant {:?} no longer exists", job.tenant))
        })?;
        let event = &incoming.event;
        let decision = mapping::decide(event, &tenant.settings);
        let Some(order_id) = event.shop_order_id().map(str::to_owned) else {
            return Ok(
                json!({"skipped": "event without an order (customer data is booked with the order)"}),
            );
        };
        tracing::info!(order = %order_id, kind = event.kind().as_str(), ?decision, "booking");
        if let Decision::Skip { reason } = &decision {
            return Ok(json!({ "skipped": reason }));
        }
        let Some(lock) = self
            .records
            .lock(&tenant.id, &order_id, self.lock_ttl.as_millis() as u64)
            .await?
        else {
            return Err(BookingError::Wait {
                reason: format!("another job is booking order {order_id}"),
                until: Utc::now() + chrono::Duration::seconds(2),
            });
        };
        let client = self.minimax.tenant(tenant.credentials());
        let ctx = Ctx {
            tenant: &tenant,
            client: &client,
            records: &self.records,
            order_id: &order_id,
            job,
            lock: &lock,
            lock_ttl_ms: self.lock_ttl.as_millis() as u64,
        };
        let result = match (decision, event) {
            (Decision::Book, _) => match event.order() {
                Some(order) => ctx.book(order).await,
                None => Err(BookingError::Permanent(
                    "event carries no order to book".into(),
                )),
            },
            (Decision::Cancel, _) => match event.order() {
                Some(order) => ctx.cancel(order).await,
                None => Err(BookingError::Permanent(
                    "event carries no order to cancel".into(),
                )),
            },
            (Decision::Refund, ShopEvent::OrderRefunded { refund, order }) => {
                ctx.refund(refund, order.as_ref().map(|o| &**o)).await
            }
            (Decision::Refund, _) => Err(BookingError::Permanent(
                "refund decision for an event without a refund".into(),
            )),
            (Decision::Skip { reason }, _) => Ok(json!({ "skipped": reason })),
        };
        self.records.unlock(&tenant.id, &order_id, &lock).await;
        result
    }
}

/// Everything one booking needs, borrowed for its duration.
struct Ctx<'a> {
    tenant: &'a Tenant,
    client: &'a TenantClient,
    records: &'a Records,
    order_id: &'a str,
    job: &'a ClaimedJob,
    /// This job's token of the order lock, renewed before every write to Minimax.
    lock: &'a str,
    lock_ttl_ms: u64,
}

/// A document about to be created.
enum Draft<'a> {
    Invoice(&'a models::IssuedInvoice),
    Order(&'a models::Order),
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

impl Ctx<'_> {
    fn settings(&self) -> &BookingSettings {
        &self.tenant.settings
    }

    /// The record kind an order is booked under.
    fn main_doc(&self) -> Doc {
        if self.settings().document == DocumentKind::ReceivedOrder {
            Doc::ReceivedOrder
        } else {
            Doc::Invoice
        }
    }

    /// Renews the order lock; a job that lost it must not write to Minimax.
    async fn hold(&self) -> Result<()> {
        if self
            .records
            .refresh(&self.tenant.id, self.order_id, self.lock, self.lock_ttl_ms)
            .await?
        {
            Ok(())
        } else {
            Err(BookingError::Wait {
                reason: format!(
                    "lost the lock of order {}; another job may be booking it",
                    self.order_id
                ),
                until: Utc::now() + chrono::Duration::seconds(2),
            })
        }
    }

    /// The record of `doc`, with an unconfirmed intent settled first: adopted when
    /// Minimax has the document, else left as an intent (nothing was created).
    /// Settling comes before any other work, so a retry after a lost answer costs the
    /// search and nothing else.
    /// Also says whether it adopted.
    async fn settled(&self, doc: &Doc) -> Result<(Option<Record>, bool)> {
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
        tracing::warn!(
            minimax_id = id,
            "adopting the document an earlier attempt created"
        );
        let adopted = Record {
            state: RecordState::Created,
            minimax_id: Some(id),
            ..rec
        };
        self.records
            .put(&self.tenant.id, self.order_id, doc, &adopted)
            .await?;
        Ok((Some(adopted), true))
    }

    async fn book(&self, order: &Order) -> Result<Value> {
        let doc = self.main_doc();
        let (existing, adopted) = self.settled(&doc).await?;
        if let Some(rec) = &existing {
            match rec.state {
                RecordState::Cancelled => {
                    return Ok(json!({"skipped": "the order was cancelled before it was booked"}))
                }
                RecordState::Deleted => {
                    return Ok(
                        json!({"skipped": "the booked document was withdrawn after a cancellation"}),
                    )
                }
                RecordState::Created | RecordState::Issued => {
                    let mut out = self.finish(&doc, rec.clone(), adopted).await?;
                    // Shops send updates of booked orders; a changed total is not
                    // re-booked silently but shown with the job for the accountant.
                    if let Some(booked) = rec.value.filter(|v| *v != order.total) {
                        tracing::warn!(booked = %booked, now = %order.total, "booked order changed in the shop");
                        out["warning"] = json!(format!(
                            "the order changed after it was booked (total {} → {}); the booked document was left as it is",
                            booked, order.total
                        ));
                    }
                    return Ok(out);
                }
                RecordState::Intent => {}
            }
        }
        let date = today();
        let org = self.org_data(order, date).await?;
        let customer_id = self.ensure_customer(order, &org).await?;
        let item_ids = self.ensure_items(order, &org).await?;
        let settings = self.settings();
        let rec = match doc {
            Doc::ReceivedOrder => {
                let planned =
                    mapping::order_plan(order, settings, &org, customer_id, &item_ids, date)?;
                let reference = planned
                    .reference
                    .clone()
                    .unwrap_or_else(|| self.order_id.to_owned());
                let intent = Record::intent(reference, Some(customer_id), date, Some(order.total));
                self.create_once(&doc, intent, Draft::Order(&planned))
                    .await?
            }
            _ => {
                let plan =
                    mapping::invoice_plan(order, settings, &org, customer_id, &item_ids, date)?;
                let reference = plan
                    .invoice
                    .document_reference
                    .clone()
                    .unwrap_or_else(|| self.order_id.to_owned());
                // Kept for refunds that arrive without their order (Shopify).
                self.records
                    .put_snapshot(&self.tenant.id, self.order_id, order)
                    .await?;
                let intent = Record::intent(reference, Some(customer_id), date, Some(order.total));
                self.create_once(&doc, intent, Draft::Invoice(&plan.invoice))
                    .await?
            }
        };
        self.finish(&doc, rec, false).await
    }

    /// Writes the intent, creates the document, records its id. A create Minimax
    /// refused outright (400/409) created nothing: its intent is forgotten, so the
    /// retry after the fix does not search.
    async fn create_once(&self, doc: &Doc, mut rec: Record, draft: Draft<'_>) -> Result<Record> {
        self.hold().await?;
        self.records
            .put(&self.tenant.id, self.order_id, doc, &rec)
            .await?;
        let created = match draft {
            Draft::Invoice(invoice) => self.client.create_issued_invoice(invoice).await,
            Draft::Order(order) => self.client.create_order(order).await,
        };
        let id = match created {
            Ok(id) => id,
            Err(e @ MinimaxError::Validation { .. }) => {
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
    async fn finish(&self, doc: &Doc, mut rec: Record, adopted: bool) -> Result<Value> {
        let kind_name = match doc {
            Doc::ReceivedOrder => return Ok(self.result("received_order", &rec, adopted)),
            Doc::CreditNote(_) => "credit_note",
            Doc::Invoice => "issued_invoice",
        };
        let want = self.settings().document;
        let issue = matches!(
            want,
            DocumentKind::InvoiceIssued | DocumentKind::InvoiceIssuedWithPdf
        );
        if !issue || rec.state == RecordState::Issued {
            return Ok(self.result(kind_name, &rec, adopted));
        }
        let Some(id) = rec.minimax_id else {
            return Err(BookingError::Permanent(
                "booking record without a Minimax id".into(),
            ));
        };
        // One read gives the fresh RowVersion and tells whether an earlier attempt
        // already issued it (its answer may have been lost).
        let current = self.client.get_issued_invoice(id).await?;
        let mut attachment = None;
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
                // The PDF itself stays in Minimax; the job keeps its attachment id.
                attachment = result
                    .attachment()
                    .filter(|a| a.attachment_id.is_some() || a.attachment_file_name.is_some())
                    .map(|a| {
                        json!({"attachment_id": a.attachment_id, "file_name": a.attachment_file_name})
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
        let mut out = self.result(kind_name, &rec, adopted);
        if let Some(a) = attachment {
            out["pdf"] = a;
        }
        Ok(out)
    }

    fn result(&self, document: &str, rec: &Record, adopted: bool) -> Value {
        json!({
            "document": document,
            "minimax_id": rec.minimax_id,
            "number": rec.number,
            "status": match rec.state {
                RecordState::Issued => "issued",
                RecordState::Deleted => "deleted",
                _ => "draft",
            },
            "reference": rec.reference,
            "shop_order_id": self.order_id,
            "adopted": adopted,
        })
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
                customer_id: Some(customer_id),
                date_issued_from: date.pred_opt(),
                date_issued_to: date.succ_opt(),
                current_page: Some(page_no),
                page_size: Some(100),
                ..Default::default()
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

    /// The code lists and ids the mapping needs (each cached by the client).
    async fn org_data(&self, order: &Order, date: NaiveDate) -> Result<OrgData> {
        let s = self.settings();
        let vat_rates = self
            .client
            .vat_rates(date, None)
            .await?
            .into_iter()
            .filter_map(|r| {
                Some(VatRateRef {
                    id: r.vat_rate_id?,
                    code: r.code?,
                    percent: r.percent?,
                })
            })
            .collect();
        let currency_id = self
            .client
            .currency_by_code(&order.currency)
            .await
            .map_err(|e| match e {
                MinimaxError::NotFound { .. } => BookingError::Setting(format!(
                    "currency {} is not known to the Minimax organisation",
                    order.currency
                )),
                e => e.into(),
            })?
            .currency_id
            .ok_or_else(|| BookingError::Permanent("currency without id".into()))?;
        let mut country_ids = BTreeMap::new();
        for cc in mapping::country_codes(order, self.tenant.country.code()) {
            match self.client.country_by_code(&cc).await {
                Ok(c) => {
                    if let Some(id) = c.country_id {
                        country_ids.insert(cc, id);
                    }
                }
                Err(MinimaxError::NotFound { .. }) => {
                    return Err(BookingError::Setting(format!(
                        "country {cc} is not known to Minimax"
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
        let payment_methods = self
            .client
            .payment_methods()
            .await?
            .into_iter()
            .filter_map(|p| {
                Some(PaymentMethodRef {
                    id: p.payment_method_id?,
                    name: p.name?,
                    code: p.code,
                })
            })
            .collect();
        let document_numbering_id = match &s.document_numbering {
            None => None,
            Some(code) => Some(
                self.client
                    .document_numberings()
                    .await?
                    .into_iter()
                    .find(|n| n.code.as_deref() == Some(code) || n.name.as_deref() == Some(code))
                    .and_then(|n| n.document_numbering_id)
                    .ok_or_else(|| {
                        BookingError::Setting(format!(
                            "settings.document_numbering: Minimax has no document numbering {code:?}"
                        ))
                    })?,
            ),
        };
        let needs_templates =
            s.invoice_report_template.is_some() || s.credit_note_report_template.is_some();
        let templates = if needs_templates {
            self.client.report_templates().await?
        } else {
            Vec::new()
        };
        let template = |name: &Option<String>, key: &str| -> Result<Option<i64>> {
            match name {
                None => Ok(None),
                Some(n) => templates
                    .iter()
                    .find(|t| t.name.as_deref() == Some(n))
                    .and_then(|t| t.report_template_id)
                    .map(Some)
                    .ok_or_else(|| {
                        BookingError::Setting(format!(
                            "settings.{key}: Minimax has no report template {n:?}"
                        ))
                    }),
            }
        };
        let invoice_report_template_id =
            template(&s.invoice_report_template, "invoice_report_template")?;
        let credit_note_report_template_id = template(
            &s.credit_note_report_template,
            "credit_note_report_template",
        )?;
        let employee_id = match &s.cashier_employee {
            None => None,
            Some(name) => Some(
                self.client
                    .employees()
                    .await?
                    .into_iter()
                    .find(|e| {
                        let full = format!(
                            "{} {}",
                            e.first_name.as_deref().unwrap_or(""),
                            e.last_name.as_deref().unwrap_or("")
                        );
                        // By name as in Minimax, or by the employee's id.
                        full.trim() == name.trim()
                            || name.trim().parse::<i64>().ok() == e.employee_id
                    })
                    .and_then(|e| e.employee_id)
                    .ok_or_else(|| {
                        BookingError::Setting(format!(
                            "settings.cashier_employee: Minimax has no employee {name:?}"
                        ))
                    })?,
            ),
        };
        Ok(OrgData {
            home_country: self.tenant.country.code().to_owned(),
            vat_rates,
            currency_id,
            country_ids,
            payment_methods,
            document_numbering_id,
            invoice_report_template_id,
            credit_note_report_template_id,
            delivery_note_report_template_id: None,
            employee_id,
            analytic_id: s.analytic_id,
        })
    }

    /// Finds or creates the Minimax customer; updates it only when the shop's data
    /// changed since we last wrote it (a digest kept in Redis saves the read).
    async fn ensure_customer(&self, order: &Order, org: &OrgData) -> Result<i64> {
        let plan = mapping::customer_plan(order, self.settings(), org)?;
        let digest = {
            let body = serde_json::to_vec(&plan.customer).unwrap_or_default();
            let mut h = Sha256::new();
            h.update(&body);
            h.update(plan.email.as_deref().unwrap_or("").as_bytes());
            crate::crypto::hex(&h.finalize())
        };
        let tenant = &self.tenant.id;
        match self.client.customer_id_by_code(&plan.code).await? {
            Some(id) => {
                let known = self.records.customer_digest(tenant, &plan.code).await?;
                if known.as_deref() != Some(digest.as_str()) {
                    // One read; the write only when a field we own differs.
                    let updated = self
                        .client
                        .update_customer(id, |c| {
                            let changed = mapping::customer_needs_update(c, &plan);
                            if changed {
                                merge_customer(c, &plan.customer);
                            }
                            changed
                        })
                        .await;
                    match updated {
                        Ok(true) => tracing::info!(customer_id = id, "customer updated"),
                        Ok(false) => {}
                        Err(MinimaxError::NotFound { .. }) => {
                            self.client.forget_customer_code(&plan.code).await;
                            return Err(BookingError::Minimax(MinimaxError::Transient {
                                reason: "cached customer no longer exists; looking it up again"
                                    .into(),
                                retry_after: Some(Duration::from_secs(1)),
                            }));
                        }
                        Err(e) => return Err(e.into()),
                    }
                    self.records
                        .set_customer_digest(tenant, &plan.code, &digest)
                        .await?;
                }
                Ok(id)
            }
            None => {
                let id = match self.client.create_customer(&plan.customer).await {
                    Ok(id) => id,
                    // Created meanwhile (another instance, or an answer we lost).
                    Err(MinimaxError::Validation { status: 409, .. }) => {
                        self.client.forget_customer_code(&plan.code).await;
                        self.client
                            .customer_id_by_code(&plan.code)
                            .await?
                            .ok_or_else(|| {
                                BookingError::Permanent(format!(
                                    "Minimax refused customer {} as a duplicate but cannot find it",
                                    plan.code
                                ))
                            })?
                    }
                    Err(e) => return Err(e.into()),
                };
                if plan.email.is_some() || plan.phone.is_some() {
                    let contact = Contact {
                        customer: Some(Fk::id(id)),
                        full_name: plan.customer.name.clone(),
                        email: plan.email.clone(),
                        phone_number: plan.phone.clone(),
                        default: Some("D".into()),
                        ..Default::default()
                    };
                    self.client.create_contact(id, &contact).await?;
                }
                self.records
                    .set_customer_digest(tenant, &plan.code, &digest)
                    .await?;
                tracing::info!(customer_id = id, "customer created");
                Ok(id)
            }
        }
    }

    /// Finds (cached) or creates every item the rows reference.
    async fn ensure_items(&self, order: &Order, org: &OrgData) -> Result<BTreeMap<String, i64>> {
        let needs = mapping::item_needs(order, self.settings(), org)?;
        self.ensure_item_needs(needs, org).await
    }

    async fn ensure_item_needs(
        &self,
        needs: Vec<mapping::ItemNeed>,
        org: &OrgData,
    ) -> Result<BTreeMap<String, i64>> {
        let mut ids = BTreeMap::new();
        for need in needs {
            if ids.contains_key(&need.code) {
                continue;
            }
            let id = match self.client.item_id_by_code(&need.code).await? {
                Some(id) => id,
                None if !need.create_if_missing => {
                    return Err(BookingError::Setting(format!(
                        "item {:?} ({}) does not exist in Minimax; create it there or allow creating missing items (settings.item_strategy)",
                        need.code, need.name
                    )))
                }
                None => {
                    let item = Item {
                        name: Some(need.name.clone()),
                        code: Some(need.code.clone()),
                        item_type: Some(need.item_type.clone()),
                        vat_rate: Some(Fk::id(need.vat_rate_id)),
                        price: Some(need.price),
                        currency: Some(Fk::id(org.currency_id)),
                        unit_of_measurement: Some("kos".into()),
                        usage: Some("D".into()),
                        ..Default::default()
                    };
                    match self.client.create_item(&item).await {
                        Ok(id) => id,
                        Err(MinimaxError::Validation { status: 409, .. }) => {
                            self.client.forget_item_code(&need.code).await;
                            self.client.item_id_by_code(&need.code).await?.ok_or_else(|| {
                                BookingError::Permanent(format!(
                                    "Minimax refused item {} as a duplicate but cannot find it",
                                    need.code
                                ))
                            })?
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            ids.insert(need.code, id);
        }
        Ok(ids)
    }

    async fn cancel(&self, order: &Order) -> Result<Value> {
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
                return Ok(json!({"skipped": "cancelled before it was booked; nothing to undo"}));
            }
            Some(rec) => rec,
        };
        if self.settings().cancel_action == CancelAction::Ignore {
            return Ok(
                json!({"skipped": "cancellations are not booked (settings.cancel_action = ignore)", "minimax_id": rec.minimax_id}),
            );
        }
        match rec.state {
            RecordState::Cancelled | RecordState::Deleted => {
                Ok(json!({"skipped": "already cancelled"}))
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
                Ok(json!({"skipped": "the unconfirmed booking was never created; nothing to undo"}))
            }
            RecordState::Created | RecordState::Issued => match doc {
                Doc::ReceivedOrder => self.invalidate_order(rec).await,
                _ => self.undo_invoice(rec, "cancel").await,
            },
        }
    }

    /// A cancelled shop order invalidates its received order in Minimax.
    async fn invalidate_order(&self, rec: Record) -> Result<Value> {
        let Some(id) = rec.minimax_id else {
            return Err(BookingError::Permanent(
                "booking record without a Minimax id".into(),
            ));
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
        Ok(
            json!({"document": "received_order", "minimax_id": id, "status": "invalidated", "shop_order_id": self.order_id}),
        )
    }

    /// Undoes a booked invoice: a draft is deleted, an issued one credited in full.
    async fn undo_invoice(&self, rec: Record, key: &str) -> Result<Value> {
        let tenant = &self.tenant.id;
        let Some(id) = rec.minimax_id else {
            return Err(BookingError::Permanent(
                "booking record without a Minimax id".into(),
            ));
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
        Ok(
            json!({"document": "issued_invoice", "minimax_id": id, "status": "deleted", "shop_order_id": self.order_id}),
        )
    }

    /// A credit note of the whole invoice through `copytocreditnote`, once.
    async fn credit_in_full(&self, invoice: &Record, key: &str) -> Result<Value> {
        let tenant = &self.tenant.id;
        let doc = Doc::CreditNote(key.to_owned());
        let earlier = self.records.get(tenant, self.order_id, &doc).await?;
        if let Some(done) = &earlier {
            if matches!(done.state, RecordState::Created | RecordState::Issued) {
                return self.finish(&doc, done.clone(), false).await;
            }
        }
        let Some(id) = invoice.minimax_id else {
            return Err(BookingError::Permanent(
                "booking record without a Minimax id".into(),
            ));
        };
        if let Some(intent) = earlier {
            // An earlier `copytocreditnote` may have worked unheard: the copy is the
            // customer's document of that date worth exactly minus the invoice.
            if let Some(found) = self.find_full_credit(id, &intent).await? {
                tracing::warn!(
                    minimax_id = found,
                    "adopting the credit note an earlier attempt made"
                );
                let rec = Record {
                    state: RecordState::Created,
                    minimax_id: Some(found),
                    ..intent
                };
                self.records.put(tenant, self.order_id, &doc, &rec).await?;
                return self.finish(&doc, rec, true).await;
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
            return Ok(self.result("credit_note", &rec, false));
        }
        self.finish(&doc, rec, false).await
    }

    async fn find_full_credit(&self, invoice_id: i64, intent: &Record) -> Result<Option<i64>> {
        let (Some(customer), Some(date)) = (intent.customer_id, intent.document_date) else {
            return Ok(None);
        };
        let original = self.client.get_issued_invoice(invoice_id).await?;
        let Some(value) = original.invoice_value else {
            return Ok(None);
        };
        let filter = IssuedInvoiceFilter {
            customer_id: Some(customer),
            date_issued_from: date.pred_opt(),
            date_issued_to: date.succ_opt(),
            page_size: Some(100),
            ..Default::default()
        };
        let page = self.client.list_issued_invoices(&filter).await?;
        Ok(page
            .rows
            .iter()
            .filter(|r| r.issued_invoice_id != Some(invoice_id) && r.invoice_value == Some(-value))
            .filter_map(|r| r.issued_invoice_id)
            .max())
    }

    /// Credits the event's refund and, when the event carries the order (WooCommerce),
    /// every earlier refund of it not credited yet, oldest first: a refund is never
    /// missed because its own delivery was skipped or merged into a later one.
    async fn refund(&self, refund: &Refund, order: Option<&Order>) -> Result<Value> {
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
        let mut out = self.refund_one(refund, order).await?;
        if !credited.is_empty() {
            out["earlier_refunds"] = Value::Array(credited);
        }
        Ok(out)
    }

    async fn refund_one(&self, refund: &Refund, order: Option<&Order>) -> Result<Value> {
        let tenant = &self.tenant.id;
        let refund_key = refund.key();
        let doc = Doc::CreditNote(refund_key.clone());
        let (existing, adopted) = self.settled(&doc).await?;
        if let Some(done) = &existing {
            if matches!(done.state, RecordState::Created | RecordState::Issued) {
                return self.finish(&doc, done.clone(), adopted).await;
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
                return Ok(
                    json!({"skipped": "the order's invoice was cancelled; nothing to credit"}),
                )
            }
            _ => {
                // Wait for the invoice (its job may be queued behind this refund).
                if Utc::now() - self.job.created_at > REFUND_WAIT_LIMIT {
                    return Err(BookingError::Permanent(format!(
                        "order {} was never booked; its refund has nothing to credit",
                        self.order_id
                    )));
                }
                return Err(BookingError::Wait {
                    reason: format!(
                        "waiting for the invoice of order {} to be booked",
                        self.order_id
                    ),
                    until: Utc::now() + chrono::Duration::seconds(30),
                });
            }
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
        let needs = mapping::credit_note_item_needs(refund, Some(order), self.settings(), &org)?;
        let item_ids = self.ensure_item_needs(needs, &org).await?;
        let plan = mapping::credit_note_plan(
            refund,
            Some(order),
            self.settings(),
            &org,
            customer_id,
            &item_ids,
            date,
        )?;
        let reference = plan
            .invoice
            .document_reference
            .clone()
            .unwrap_or_else(|| format!("{}/R{}", self.order_id, refund_key));
        let intent = Record::intent(reference, Some(customer_id), date, Some(-refund.amount));
        let rec = self
            .create_once(&doc, intent, Draft::Invoice(&plan.invoice))
            .await?;
        self.finish(&doc, rec, false).await
    }
}

/// Copies the fields the mapping owns onto a customer read from Minimax.
fn merge_customer(current: &mut models::Customer, wanted: &models::Customer) {
    let w = wanted.clone();
    current.name = w.name.or(current.name.take());
    current.address = w.address;
    current.postal_code = w.postal_code;
    current.city = w.city;
    current.country = w.country.or(current.country.take());
    current.country_name = w.country_name;
    current.vat_identification_number = w.vat_identification_number;
    current.subject_to_vat = w.subject_to_vat.or(current.subject_to_vat.take());
}
