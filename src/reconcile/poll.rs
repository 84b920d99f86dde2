//! One tenant's poll run: its window, its pages, their enqueue.

use std::time::Instant;

use chrono::Utc;
use redis::AsyncCommands;
use serde_json::Value;

use super::seen::seen_marker;
use super::{
    events_of, Lock, PollOutcome, PollState, ReconcileError, Reconciler, Run, FOUND_ONLY_BY_POLL,
    POLL_ERRORS, POLL_SECONDS,
};
use crate::jobs::Job;
use crate::shop_api::{Cursor, ShopConnection, Window};
use crate::tenants::TenantId;
use crate::webshop::{ParseSettings, Platform};

/// Numbers of one page's enqueue.
#[derive(Debug, Default, Clone, Copy)]
pub struct PageCounts {
    pub orders: u64,
    pub events: u64,
    pub enqueued: u64,
    pub found_only_by_poll: u64,
    pub unreadable: u64,
}
impl Reconciler {
    pub async fn state(&self, tenant: &TenantId) -> Result<PollState, ReconcileError> {
        let mut conn = self.pool().get().await?;
        let raw: Option<String> = conn.get(self.key(tenant, "reconcile:state")).await?;
        Ok(raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default())
    }

    async fn save_state(
        &self,
        lock: &Lock,
        tenant: &TenantId,
        s: &PollState,
    ) -> Result<(), ReconcileError> {
        let raw = serde_json::to_string(s).map_err(|e| ReconcileError::Invalid(e.to_string()))?;
        self.fenced_set(lock, tenant, "reconcile:state", &raw).await
    }

    /// Parses and enqueues one page's orders. `already_booked` etc. are the backfill's
    /// business; this is the webhook path.
    pub(crate) async fn enqueue_orders(
        &self,
        tenant: &TenantId,
        conn: &ShopConnection,
        parse: &ParseSettings,
        orders: &[Value],
    ) -> Result<PageCounts, ReconcileError> {
        let mut c = PageCounts::default();
        let mut redis = self.pool().get().await?;
        for order in orders {
            c.orders += 1;
            let events = match events_of(conn, order, parse) {
                Ok(e) => e,
                Err(e) => {
                    // The same order would be refused as a webhook: nothing to book.
                    let id = order.get("id").map(|v| v.to_string()).unwrap_or_default();
                    tracing::warn!(%tenant, order = %id, error = %e, code = e.code(), "polled order cannot be read; skipped");
                    c.unreadable += 1;
                    continue;
                }
            };
            for incoming in events {
                c.events += 1;
                let marker = seen_marker(&incoming.event);
                let dedupe = incoming.dedupe_key.clone();
                let job = Job::ShopEventV1 {
                    received_at: Utc::now(),
                    incoming: Box::new(incoming),
                };
                let payload = job
                    .to_payload()
                    .map_err(|e| ReconcileError::Invalid(e.to_string()))?;
                let enq = self
                    .queue
                    .enqueue(tenant, Some(&dedupe), &payload, None)
                    .await?;
                if !enq.created {
                    continue;
                }
                c.enqueued += 1;
                let delivered = match &marker {
                    Some((what, version)) => {
                        let v: Option<i64> = redis.get(self.key(tenant, what)).await?;
                        v.is_some_and(|v| v >= *version)
                    }
                    None => true,
                };
                if !delivered {
                    c.found_only_by_poll += 1;
                }
            }
        }
        if c.enqueued > 0 {
            if let Some(w) = &self.wake {
                w.notify_waiters();
            }
        }
        Ok(c)
    }

    /// Polls one tenant now: resumes a saved run or starts one at the watermark, and
    /// runs it to the end. [`ReconcileError::Busy`] when another instance polls it.
    pub async fn poll_tenant(&self, tenant: &TenantId) -> Result<PollOutcome, ReconcileError> {
        let Some(lock) = self.lock(tenant).await? else {
            return Err(ReconcileError::Busy);
        };
        let started = Instant::now();
        let res = self.poll_locked(tenant, &lock).await;
        let platform = match &res {
            Ok((p, _)) => p.as_str(),
            Err(_) => "unknown",
        };
        POLL_SECONDS
            .with_label_values(&[platform])
            .observe(started.elapsed().as_secs_f64());
        let res = res.map(|(_, o)| o);
        match &res {
            Ok(o) => {
                if o.found_only_by_poll > 0 {
                    FOUND_ONLY_BY_POLL
                        .with_label_values(&[tenant])
                        .inc_by(o.found_only_by_poll);
                }
                if let Some(a) = &self.alerts {
                    a.webhooks_silent(tenant, o.found_only_by_poll).await;
                }
            }
            Err(e) => {
                POLL_ERRORS.with_label_values(&[tenant, e.kind()]).inc();
                if !matches!(e, ReconcileError::Busy) {
                    tracing::warn!(%tenant, error = %e, "reconciliation poll failed");
                    let mut s = self.state(tenant).await.unwrap_or_default();
                    s.last_error = Some(e.to_string());
                    let _ = self.save_state(&lock, tenant, &s).await;
                }
            }
        }
        self.release(lock).await;
        res
    }

    async fn poll_locked(
        &self,
        tenant: &TenantId,
        lock: &Lock,
    ) -> Result<(Platform, PollOutcome), ReconcileError> {
        let conn = self
            .shops
            .get(tenant)
            .await?
            .ok_or_else(|| ReconcileError::NotConnected(tenant.clone()))?;
        let platform = conn.platform;
        let parse = self
            .tenants
            .intake(tenant, platform)
            .await?
            .map(|v| v.parse.clone())
            .unwrap_or_default();
        let client = self.client(conn.clone());
        let mut state = self.state(tenant).await?;
        let now = Utc::now();
        let secs = |s: u64| chrono::Duration::seconds(s as i64);
        let mut run = match state.run.take() {
            Some(r) => r,
            None => {
                let until = now - secs(self.cfg.settle);
                let since = match state.watermark {
                    Some(w) => w - secs(self.cfg.overlap),
                    None => until - secs(self.cfg.initial_lookback),
                };
                Run {
                    window: Window {
                        since: since.min(until),
                        until,
                        by_created: false,
                    },
                    cursor: Cursor::Start,
                    pages: 0,
                }
            }
        };
        let mut out = PollOutcome::default();
        loop {
            let page = client.list_page(&run.window, &run.cursor).await?;
            let c = self
                .enqueue_orders(tenant, &conn, &parse, &page.orders)
                .await?;
            out.pages += 1;
            out.orders += c.orders;
            out.events += c.events;
            out.enqueued += c.enqueued;
            out.found_only_by_poll += c.found_only_by_poll;
            out.unreadable += c.unreadable;
            run.pages += 1;
            self.renew(lock).await?;
            match page.next {
                Some(next) => {
                    run.cursor = next;
                    state.run = Some(run.clone());
                    // This page worked: a crash from here on resumes at once.
                    state.last_error = None;
                    self.save_state(lock, tenant, &state).await?;
                }
                None => {
                    state.run = None;
                    state.watermark = Some(
                        state
                            .watermark
                            .map_or(run.window.until, |w| w.max(run.window.until)),
                    );
                    out.shop_calls = client.calls();
                    out.watermark = state.watermark;
                    out.finished_at = Some(Utc::now());
                    state.last = Some(out.clone());
                    state.last_error = None;
                    self.save_state(lock, tenant, &state).await?;
                    tracing::info!(%tenant, pages = out.pages, orders = out.orders, enqueued = out.enqueued,
                        found_only_by_poll = out.found_only_by_poll, shop_calls = out.shop_calls, "reconciliation poll done");
                    return Ok((platform, out));
                }
            }
        }
    }
}
