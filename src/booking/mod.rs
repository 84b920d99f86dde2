//! Booking: the job handler that turns a queued shop event into Minimax documents.
//!
//! What it guarantees (docs/design.md, guarantees 2 and 3):
//! - **One document per order.** A record per (tenant, shop order, document) is
//!   checked first, so repeated and late events cost no Minimax call; an intent is
//!   written before each create and the Minimax id after it; a retry that finds an
//!   intent without an id searches Minimax ([`adopt`]) and adopts what it finds
//!   instead of creating a second document. A per-order lock serialises jobs of one
//!   order; it is renewed every third of its TTL while the booking runs, however long
//!   Minimax takes (an adoption search can take longer than the TTL), and a booking
//!   that finds it lost is stopped before it writes again.
//! - **Correct to the cent, before any write.** The whole document is planned and its
//!   totals reconciled with the shop's ([`crate::mapping::reconcile`]) with placeholder
//!   ids before a customer, contact or item is written: a refused order writes nothing.
//! - **Master data once.** A customer or item code is created by one job at a time per
//!   organisation, across instances ([`masters`]); the others read the winner's id.
//! - Errors become queue decisions ([`error`]).
//!
//! The flow of an order: [`Booker::run`] (here) decides and locks, [`create`] plans,
//! writes master data through [`masters`] (code lists from [`lookups`]), creates once
//! and issues; [`undo`] cancels, [`refund`] credits; [`customers`] handles the shop's
//! customer events.

mod adopt;
mod create;
mod customers;
mod error;
mod lookups;
mod masters;
pub mod records;
mod refund;
mod undo;

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use serde_json::Value;

use crate::jobs::Job;
use crate::mapping::{self, BookingSettings, Decision, DocumentKind};
use crate::minimax::{Minimax, TenantClient};
use crate::queue::ClaimedJob;
use crate::tenants::TenantId;
use crate::tenants::{Tenant, TenantStore};
use crate::webshop::ShopEvent;
use crate::worker::{JobError, JobHandler};

pub use create::{BookingOutcome, DocumentName, DocumentOutcome, DocumentStatus};
pub use customers::{CustomerOutcome, CustomerStatus};
pub use error::BookingError;
use error::Result;
use records::{Doc, Records};

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
        let outcome = self.run(job).await.map_err(BookingError::into_job_error)?;
        serde_json::to_value(&outcome).map_err(|e| JobError::Permanent {
            reason: format!("the job result cannot be written: {e}"),
        })
    }
}

impl Booker {
    async fn run(&self, job: &ClaimedJob) -> Result<BookingOutcome> {
        let Job::ShopEventV1 { incoming, .. } = Job::from_payload(&job.payload)
            .map_err(|e| BookingError::Permanent(format!("job payload cannot be read: {e}")))?
        else {
            return Err(BookingError::Permanent("not a shop event job".into()));
        };
        let tenant = self.tenants.get(&job.tenant).await?.ok_or_else(|| {
            BookingError::Permanent(format!("tenant {:?} no longer exists", job.tenant))
        })?;
        let event = &incoming.event;
        let decision = mapping::decide(event, &tenant.settings);
        if let Decision::Skip { reason } = &decision {
            return Ok(BookingOutcome::skipped(reason.clone()));
        }
        let client = self.minimax.tenant(tenant.credentials());
        let customers = customers::CustomerEvents {
            tenant: &tenant,
            client: &client,
            records: &self.records,
        };
        match (&decision, event) {
            (Decision::SyncCustomer, ShopEvent::CustomerUpserted(c)) => {
                return customers.upsert(c).await
            }
            (Decision::CustomerDeleted, ShopEvent::CustomerDeleted(c)) => {
                return customers.deleted(c).await
            }
            _ => {}
        }
        let Some(order_id) = event.shop_order_id().map(str::to_owned) else {
            return Ok(BookingOutcome::skipped("event without an order"));
        };
        tracing::info!(order = %order_id, kind = event.kind().as_str(), ?decision, "booking");
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
        let ctx = Ctx {
            tenant: &tenant,
            client: &client,
            records: &self.records,
            order_id: &order_id,
            job,
            lock: &lock,
            lock_ttl_ms: self.lock_ttl.as_millis() as u64,
        };
        // The booking runs alongside the renewal of its lock (every third of the TTL,
        // however long Minimax takes to answer); when a renewal finds the lock gone, the
        // booking is dropped where it stands, so it writes nothing more, and the job
        // waits and retries.
        let booking = async {
            match (decision, event) {
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
                (Decision::SyncCustomer | Decision::CustomerDeleted, _) => Err(
                    BookingError::Permanent("customer decision for an order event".into()),
                ),
                (Decision::Skip { reason }, _) => Ok(BookingOutcome::skipped(reason)),
            }
        };
        let result = tokio::select! {
            biased;
            result = booking => result,
            lost = self.keep_lock(&tenant.id, &order_id, &lock) => Err(lost),
        };
        self.records.unlock(&tenant.id, &order_id, &lock).await;
        result
    }

    /// Renews the order lock every third of its TTL until it is lost (taken by another
    /// job, or no renewal worked for a whole TTL): then returns the lost-lock error and
    /// the caller drops the booking.
    async fn keep_lock(&self, tenant: &TenantId, order_id: &str, token: &str) -> BookingError {
        let ttl_ms = self.lock_ttl.as_millis() as u64;
        crate::redis_conn::lock::keep_renewed(
            self.lock_ttl,
            (self.lock_ttl / 3).max(Duration::from_millis(10)),
            || self.records.refresh(tenant, order_id, token, ttl_ms),
            |e| tracing::warn!(order = %order_id, error = %e, "cannot renew the order lock"),
        )
        .await;
        tracing::warn!(order = %order_id, "order lock lost; the booking stops");
        lost_lock(order_id)
    }
}

/// The booking no longer holds the order's lock: it must stop writing; the job waits
/// and tries again (whatever it wrote is recorded, so the retry carries on from there).
fn lost_lock(order_id: &str) -> BookingError {
    BookingError::Wait {
        reason: format!("lost the lock of order {order_id}; another job may be booking it"),
        until: Utc::now() + chrono::Duration::seconds(2),
    }
}

/// Everything one booking needs, borrowed for its duration.
struct Ctx<'a> {
    tenant: &'a Tenant,
    client: &'a TenantClient,
    records: &'a Records,
    order_id: &'a str,
    job: &'a ClaimedJob,
    /// This job's token of the order lock, renewed in the background while the booking
    /// runs ([`Booker::keep_lock`]) and checked again before every write to Minimax.
    lock: &'a str,
    lock_ttl_ms: u64,
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

    /// The master-data writer of this booking.
    fn masters(&self) -> masters::Masters<'_> {
        masters::Masters {
            tenant: self.tenant,
            client: self.client,
            records: self.records,
        }
    }

    /// Renews the order lock and checks it is still ours: the last check before a write
    /// (the background renewal may notice a loss up to a third of the TTL late).
    async fn hold(&self) -> Result<()> {
        if self
            .records
            .refresh(&self.tenant.id, self.order_id, self.lock, self.lock_ttl_ms)
            .await?
        {
            Ok(())
        } else {
            Err(lost_lock(self.order_id))
        }
    }
}
