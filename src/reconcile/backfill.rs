//! Backfill: books the orders a tenant's shop created in a past period (onboarding,
//! recovery after a long outage) through the same path as the poll and the webhooks.
//!
//! Guarantees:
//! - one backfill per tenant at a time, stepped by the reconciliation scheduler under
//!   the tenant's poll lock, a few pages per step, its cursor saved after each page;
//!   progress and outcome are readable at any time (`GET /admin/tenants/{id}/backfill`);
//! - **spreads over the Minimax budget instead of failing**: before each page it looks
//!   at the organisation's remaining daily and monthly calls and at the tenant's
//!   backlog; with no budget left for the queued jobs (two calls each at least), or
//!   too many of them, it waits,
//!   state `waiting_for_budget` / `waiting_for_queue`, and continues in a later tick.
//!   The booking jobs themselves wait for the next budget window without using up
//!   attempts, so nothing is dropped;
//! - `dry_run` makes no Minimax call and enqueues nothing: it reports per order what
//!   the booking would do (documents by kind, totals per currency, orders already
//!   booked according to the booking records, orders skipped and why).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{events_of, ReconcileError, Reconciler};
use crate::booking::records::{Doc, RecordState};
use crate::mapping::{self, Decision, DocumentKind};
use crate::shop_api::{Cursor, Window};
use crate::tenants::TenantId;
use crate::webshop::ShopEvent;

/// Pages one scheduler step reads at most (the poll of other tenants waits meanwhile).
const PAGES_PER_STEP: u32 = 5;

/// Queued-but-unbooked jobs above which the backfill stops adding pages.
const MAX_BACKLOG: u64 = 200;

/// Minimax calls a booking needs at least (create and issue an invoice).
const MIN_CALLS_PER_BOOKING: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    Running,
    /// The organisation's Minimax budget is spent; continues when it frees up.
    WaitingForBudget,
    /// Earlier pages are still being booked; continues when the backlog drains.
    WaitingForQueue,
    Done,
    Failed,
    Cancelled,
}

impl BackfillState {
    pub fn finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

/// What a dry run found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DryRunReport {
    /// Documents the booking would create, by kind (`issued_invoice`, `credit_note`,
    /// `received_order`, `cancellation`).
    pub documents: BTreeMap<String, u64>,
    /// Sum of the documents' totals per currency (credit notes negative).
    pub totals: BTreeMap<String, Decimal>,
    /// Documents already booked (per the booking records): nothing would happen.
    pub already_booked: u64,
    /// Events the booking would skip (e.g. unpaid orders), by reason.
    pub skipped: BTreeMap<String, u64>,
}

/// A backfill and its progress (`{t}:backfill`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backfill {
    pub id: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub dry_run: bool,
    pub state: BackfillState,
    pub cursor: Cursor,
    pub pages: u32,
    pub orders: u64,
    pub events: u64,
    /// New booking jobs (real runs).
    pub enqueued: u64,
    /// Events that were already queued (a webhook or the poll had them).
    pub already_queued: u64,
    pub unreadable: u64,
    /// Times the backfill stopped because the Minimax budget was spent (each wait ends
    /// when the budget window frees calls).
    #[serde(default)]
    pub budget_waits: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<DryRunReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// `POST /admin/tenants/{id}/backfill`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub dry_run: bool,
}

fn key(r: &Reconciler, tenant: &TenantId) -> String {
    r.key(tenant, "backfill")
}

pub async fn get(r: &Reconciler, tenant: &TenantId) -> Result<Option<Backfill>, ReconcileError> {
    let mut conn = r.pool().get().await?;
    let raw: Option<String> = conn.get(key(r, tenant)).await?;
    Ok(raw.and_then(|s| serde_json::from_str(&s).ok()))
}

async fn save(r: &Reconciler, tenant: &TenantId, b: &Backfill) -> Result<(), ReconcileError> {
    let raw = serde_json::to_string(b).map_err(|e| ReconcileError::Invalid(e.to_string()))?;
    let mut conn = r.pool().get().await?;
    let _: () = conn.set(key(r, tenant), raw).await?;
    Ok(())
}

/// Starts a backfill; refuses while another one of the tenant is unfinished.
pub async fn start(
    r: &Reconciler,
    tenant: &TenantId,
    req: BackfillRequest,
) -> Result<Backfill, ReconcileError> {
    let now = Utc::now();
    let until = req.until.unwrap_or(now).min(now);
    if req.since >= until {
        return Err(ReconcileError::Invalid(
            "since: must be before until (and before now)".into(),
        ));
    }
    if r.shops.get(tenant).await?.is_none() {
        return Err(ReconcileError::NotConnected(tenant.clone()));
    }
    if let Some(b) = get(r, tenant).await? {
        if !b.state.finished() {
            return Err(ReconcileError::Invalid(format!(
                "backfill {} is still {}; cancel it first (DELETE)",
                b.id,
                serde_json::to_value(b.state).unwrap_or(Value::Null)
            )));
        }
    }
    let b = Backfill {
        id: uuid::Uuid::new_v4().simple().to_string(),
        since: req.since,
        until,
        dry_run: req.dry_run,
        state: BackfillState::Running,
        cursor: Cursor::Start,
        pages: 0,
        orders: 0,
        events: 0,
        enqueued: 0,
        already_queued: 0,
        unreadable: 0,
        budget_waits: 0,
        report: req.dry_run.then(DryRunReport::default),
        waiting_reason: None,
        error: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    let mut conn = r.pool().get().await?;
    let _: () = conn.del(r.key(tenant, "backfill:orders")).await?;
    drop(conn);
    save(r, tenant, &b).await?;
    Ok(b)
}

/// Cancels an unfinished backfill (booking jobs already queued stay queued).
pub async fn cancel(r: &Reconciler, tenant: &TenantId) -> Result<Option<Backfill>, ReconcileError> {
    let Some(lock) = r.lock(tenant).await? else {
        return Err(ReconcileError::Busy);
    };
    let res = async {
        let Some(mut b) = get(r, tenant).await? else {
            return Ok(None);
        };
        if !b.state.finished() {
            b.state = BackfillState::Cancelled;
            b.updated_at = Utc::now();
            b.finished_at = Some(b.updated_at);
            save(r, tenant, &b).await?;
        }
        Ok(Some(b))
    }
    .await;
    r.release(lock).await;
    res
}

/// Advances the tenant's backfill by up to [`PAGES_PER_STEP`] pages.
pub async fn step(r: &Reconciler, tenant: &TenantId) -> Result<(), ReconcileError> {
    match get(r, tenant).await? {
        Some(b) if !b.state.finished() => {}
        _ => return Ok(()),
    }
    let Some(lock) = r.lock(tenant).await? else {
        return Err(ReconcileError::Busy);
    };
    let res = step_locked(r, tenant).await;
    r.release(lock).await;
    res
}

async fn step_locked(r: &Reconciler, tenant: &TenantId) -> Result<(), ReconcileError> {
    let Some(mut b) = get(r, tenant).await? else {
        return Ok(());
    };
    if b.state.finished() {
        return Ok(());
    }
    let Some(conn) = r.shops.get(tenant).await? else {
        b.state = BackfillState::Failed;
        b.error = Some("the shop connection was removed".into());
        return save(r, tenant, &b).await;
    };
    let t = r
        .tenants
        .get(tenant)
        .await?
        .ok_or_else(|| ReconcileError::NotConnected(tenant.clone()))?;
    let parse = r
        .tenants
        .intake(tenant, conn.platform)
        .await?
        .map(|v| v.parse.clone())
        .unwrap_or_default();
    let client = r.client(conn.clone());
    let window = Window {
        since: b.since,
        until: b.until,
        by_created: true,
    };
    for _ in 0..PAGES_PER_STEP {
        if !b.dry_run {
            if let Some(reason) = wait_reason(r, tenant, t.organisation_id).await? {
                // Counted once per stop: not again while it alternates between
                // waiting for the budget and for the queue.
                if reason.0 == BackfillState::WaitingForBudget && b.state == BackfillState::Running
                {
                    b.budget_waits += 1;
                }
                b.state = reason.0;
                b.waiting_reason = Some(reason.1);
                break;
            }
        }
        b.state = BackfillState::Running;
        b.waiting_reason = None;
        let page = match client.list_page(&window, &b.cursor).await {
            Ok(p) => p,
            Err(e) if e.is_transient() => {
                b.error = Some(e.to_string());
                break;
            }
            Err(e) => {
                b.state = BackfillState::Failed;
                b.error = Some(e.to_string());
                b.finished_at = Some(Utc::now());
                break;
            }
        };
        b.pages += 1;
        let fresh = first_seen(r, tenant, page.orders).await?;
        b.orders += fresh.len() as u64;
        if b.dry_run {
            dry_run_page(r, tenant, &t, &conn, &parse, &fresh, &mut b).await?;
        } else {
            let c = r.enqueue_orders(tenant, &conn, &parse, &fresh).await?;
            b.events += c.events;
            b.enqueued += c.enqueued;
            b.already_queued += c.events - c.enqueued;
            b.unreadable += c.unreadable;
        }
        b.error = None;
        match page.next {
            Some(next) => b.cursor = next,
            None => {
                b.state = BackfillState::Done;
                b.finished_at = Some(Utc::now());
                break;
            }
        }
        b.updated_at = Utc::now();
        save(r, tenant, &b).await?;
    }
    b.updated_at = Utc::now();
    save(r, tenant, &b).await
}

/// Why the backfill should not add a page now, if it should not.
async fn wait_reason(
    r: &Reconciler,
    tenant: &TenantId,
    org: i64,
) -> Result<Option<(BackfillState, String)>, ReconcileError> {
    let counts = r.queue.counts(tenant).await?;
    let backlog = counts.queued + counts.delayed + counts.running;
    let usage = r
        .minimax
        .usage(org)
        .await
        .map_err(|e| ReconcileError::Invalid(e.to_string()))?;
    // The calls the queued jobs will need at least (create and issue) must fit in
    // what is left of the budget; otherwise another page would only wait, and the
    // tenant's live orders would queue behind it.
    let need = backlog * MIN_CALLS_PER_BOOKING;
    let left = |limit: u32, used: u64| (limit > 0).then(|| u64::from(limit).saturating_sub(used));
    let daily = left(usage.daily_limit, usage.last_24h);
    let monthly = left(usage.monthly_limit, usage.this_month);
    let short = |l: Option<u64>| l.is_some_and(|l| l == 0 || l < need);
    if short(daily) || short(monthly) {
        let which = if short(daily) { "daily" } else { "monthly" };
        return Ok(Some((
            BackfillState::WaitingForBudget,
            format!(
                "the organisation's {which} Minimax call budget is spent or needed by the {backlog} queued booking job(s) ({} calls in the window of {}, {} this month of {}); continues in the next window",
                usage.last_24h, usage.daily_limit, usage.this_month, usage.monthly_limit
            ),
        )));
    }
    if backlog >= MAX_BACKLOG {
        return Ok(Some((
            BackfillState::WaitingForQueue,
            format!("{backlog} booking job(s) of earlier pages are not booked yet"),
        )));
    }
    Ok(None)
}

/// The orders of a page this backfill has not seen yet: keyset paging reads the last
/// second of a page again, and each order counts (and is enqueued) once.
async fn first_seen(
    r: &Reconciler,
    tenant: &TenantId,
    orders: Vec<Value>,
) -> Result<Vec<Value>, ReconcileError> {
    let mut redis = r.pool().get().await?;
    let seen_key = r.key(tenant, "backfill:orders");
    let mut out = Vec::with_capacity(orders.len());
    for order in orders {
        let id = order.get("id").map(|v| v.to_string()).unwrap_or_default();
        let new: i64 = redis.sadd(&seen_key, &id).await?;
        if new == 1 {
            out.push(order);
        }
    }
    let _: () = redis.expire(&seen_key, 7 * 24 * 3600).await?;
    Ok(out)
}

fn bump(map: &mut BTreeMap<String, u64>, k: &str) {
    *map.entry(k.to_owned()).or_default() += 1;
}

async fn booked(
    r: &Reconciler,
    tenant: &TenantId,
    order: &str,
    doc: &Doc,
) -> Result<bool, ReconcileError> {
    Ok(r.records
        .get(tenant, order, doc)
        .await?
        .is_some_and(|rec| matches!(rec.state, RecordState::Created | RecordState::Issued)))
}

async fn dry_run_page(
    r: &Reconciler,
    tenant: &TenantId,
    t: &crate::tenants::Tenant,
    conn: &crate::shop_api::ShopConnection,
    parse: &crate::webshop::ParseSettings,
    orders: &[Value],
    b: &mut Backfill,
) -> Result<(), ReconcileError> {
    let report = b.report.get_or_insert_with(DryRunReport::default);
    let (main_doc, main_kind) = if t.settings.document == DocumentKind::ReceivedOrder {
        (Doc::ReceivedOrder, "received_order")
    } else {
        (Doc::Invoice, "issued_invoice")
    };
    for order in orders {
        let events = match events_of(conn, order, parse) {
            Ok(e) => e,
            Err(_) => {
                b.unreadable += 1;
                continue;
            }
        };
        for incoming in events {
            b.events += 1;
            let event = &incoming.event;
            let Some(order_id) = event.shop_order_id() else {
                continue;
            };
            match mapping::decide(event, &t.settings) {
                Decision::Skip { reason } => bump(&mut report.skipped, &reason),
                // Backfills list orders; customer events never come from them.
                Decision::SyncCustomer | Decision::CustomerDeleted => {}
                Decision::Cancel => bump(&mut report.documents, "cancellation"),
                Decision::Book => {
                    if booked(r, tenant, order_id, &main_doc).await? {
                        report.already_booked += 1;
                    } else if let Some(o) = event.order() {
                        bump(&mut report.documents, main_kind);
                        *report.totals.entry(o.currency.clone()).or_default() += o.total;
                    }
                }
                Decision::Refund => {
                    let ShopEvent::OrderRefunded { refund, order } = event else {
                        continue;
                    };
                    // A WooCommerce refund carries its order; the booking books the
                    // invoice first when it is not booked yet.
                    if let Some(o) = order {
                        if o.paid_at.is_some()
                            || matches!(o.status.as_str(), "processing" | "completed" | "refunded")
                        {
                            if booked(r, tenant, order_id, &main_doc).await? {
                                report.already_booked += 1;
                            } else {
                                bump(&mut report.documents, main_kind);
                                *report.totals.entry(o.currency.clone()).or_default() += o.total;
                            }
                        }
                    }
                    // The booking credits the event's refund and every earlier refund
                    // the order carries (WooCommerce): count each of them.
                    let mut refunds: Vec<&crate::webshop::Refund> = order
                        .as_ref()
                        .map(|o| {
                            o.refunds
                                .iter()
                                .filter(|r| r.key() != refund.key())
                                .collect()
                        })
                        .unwrap_or_default();
                    refunds.push(refund);
                    for each in refunds {
                        if booked(r, tenant, order_id, &Doc::CreditNote(each.key())).await? {
                            report.already_booked += 1;
                            continue;
                        }
                        bump(&mut report.documents, "credit_note");
                        let cur = each
                            .currency
                            .clone()
                            .or_else(|| order.as_ref().map(|o| o.currency.clone()))
                            .unwrap_or_default();
                        *report.totals.entry(cur).or_default() -= each.amount.abs();
                    }
                }
            }
        }
    }
    Ok(())
}
