//! Reconciliation: polls each connected shop for orders created or changed since the
//! last watermark and feeds every one through the webhook path (platform parser →
//! canonical event → queue with dedupe key → booking), so an order a webhook dropped
//! is booked anyway, and an order both delivered and polled books once.
//!
//! Guarantees:
//! - **one poller per tenant**: a Redis lock with expiry (`{t}:reconcile:lock`) shared
//!   by all instances; every state write is fenced by the lock token, so an instance
//!   that lost its lock (stalled past the expiry) cannot move the watermark;
//! - **no skipped page**: a poll run covers a fixed window `[watermark − overlap,
//!   now − settle]`; after each page is enqueued the run's cursor is saved, and the
//!   watermark moves to the window's end only after the last page. A restart or a
//!   crashed instance resumes the saved run at the page after the last enqueued one;
//! - **same path as a webhook**: the platform's public webhook parser reads the order
//!   resource (WooCommerce REST v3 and Shopify REST orders are the webhook bodies);
//!   WooCommerce orders get exactly the webhook's dedupe key (`order.updated`, same
//!   `date_modified_gmt`); Shopify orders the key of their version (order id,
//!   `updated_at`, body: [`crate::webshop::shopify::order_version_key`]) and
//!   embedded refunds the refund's key ([`crate::webshop::shopify::refund_key`]);
//!   booking records stop any second document either way;
//! - **"found only by the poll"** is counted when the poll enqueued a version of an
//!   order that no webhook delivered (webhook intake leaves a `seen` marker per order
//!   version, [`delivered`]); the settle delay gives in-flight webhooks time.

pub mod backfill;
mod events;
mod poll;
mod poll_lock;
mod seen;

pub use events::events_of;
pub use poll::PageCounts;
pub(crate) use poll_lock::Lock;
pub use seen::{delivered, Delivered};

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::redis_conn::lock;
use crate::redis_conn::RedisPool as Pool;
use chrono::{DateTime, Utc};
use prometheus::{HistogramVec, IntCounterVec};
use rand::Rng;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::queue::{tenant_key, Queue, QueueError};
use crate::shop_api::{self, Cursor, ShopApiError, ShopClient, ShopConnection, ShopStore, Window};
use crate::tenants::TenantId;
use crate::tenants::TenantStore;

/// Orders the poll enqueued that no webhook had delivered, per tenant.
pub static FOUND_ONLY_BY_POLL: LazyLock<IntCounterVec> = LazyLock::new(|| {
    crate::metrics::counter_vec(
        "mmc_reconcile_found_only_by_poll_total",
        "Order versions the reconciliation poll enqueued that no webhook delivered",
        &["tenant"],
    )
});

/// Poll runs that failed, per tenant and reason.
pub static POLL_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    crate::metrics::counter_vec(
        "mmc_reconcile_poll_errors_total",
        "Reconciliation polls that failed, per tenant and kind",
        &["tenant", "kind"],
    )
});

/// Duration of poll runs.
pub static POLL_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let h = HistogramVec::new(
        prometheus::HistogramOpts::new(
            "mmc_reconcile_poll_duration_seconds",
            "Duration of reconciliation poll runs",
        )
        .buckets(vec![
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ]),
        &["platform"],
    )
    .unwrap_or_else(|e| panic!("metric mmc_reconcile_poll_duration_seconds: {e}"));
    crate::metrics::REGISTRY
        .register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("register mmc_reconcile_poll_duration_seconds: {e}"));
    h
});

/// `[reconcile]`: the poll's schedule and windows.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileSettings {
    /// Poll connected shops at all (roles that run workers).
    pub enabled: bool,
    /// Seconds between polls of one tenant (jittered by ±10 % per run).
    pub interval: u64,
    /// Seconds each window reaches back before the watermark (clock skew, 1 s stamps).
    pub overlap: u64,
    /// Seconds a change must be old before the poll looks at it, so webhooks in flight
    /// arrive first and "found only by the poll" means a webhook was really lost.
    pub settle: u64,
    /// How far back the first poll of a new connection looks (older: use a backfill).
    pub initial_lookback: u64,
    /// Milliseconds between scheduler ticks (each tick polls the tenants that are due
    /// and checks every tenant's alert states).
    pub tick_ms: u64,
    /// Seconds the per-tenant poll lock lives without renewal.
    pub lock_ttl: u64,
    /// Longest single wait (seconds) for a shop's rate limit before a call gives up.
    pub max_rate_wait: u64,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: 900,
            overlap: 300,
            settle: 120,
            initial_lookback: 3600,
            tick_ms: 5000,
            lock_ttl: 120,
            max_rate_wait: 60,
        }
    }
}

impl ReconcileSettings {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.interval < 10 {
            p.push("reconcile.interval: expected at least 10 seconds".into());
        }
        if self.tick_ms < 10 {
            p.push("reconcile.tick_ms: expected at least 10 ms".into());
        }
        if self.lock_ttl < 2 {
            p.push("reconcile.lock_ttl: expected at least 2 seconds".into());
        }
        p
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Shop(#[from] ShopApiError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    #[error("storage: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("storage unavailable: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("tenant storage: {0}")]
    Tenant(#[from] crate::tenants::TenantError),
    #[error("booking records: {0}")]
    Records(#[from] crate::booking::records::RecordsError),
    /// Another instance holds the tenant's poll lock, or this one lost it mid-run.
    #[error("another instance is polling this tenant")]
    Busy,
    #[error("tenant {0:?} has no shop connection")]
    NotConnected(TenantId),
    #[error("{0}")]
    Invalid(String),
}

impl ReconcileError {
    fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Shop(ShopApiError::Unauthorized(_)) => "unauthorized",
            ReconcileError::Shop(ShopApiError::RateLimited { .. }) => "rate_limited",
            ReconcileError::Shop(_) => "shop_api",
            ReconcileError::Busy => "busy",
            ReconcileError::NotConnected(_) | ReconcileError::Invalid(_) => "config",
            _ => "storage",
        }
    }
}

/// A poll run in progress: its fixed window and where it continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub window: Window,
    pub cursor: Cursor,
    pub pages: u32,
}

/// What one tenant's poll has done, kept in Redis (`{t}:reconcile:state`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PollState {
    /// Every change up to this time has been enqueued.
    pub watermark: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<PollOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The result of one poll run (or of one call of [`Reconciler::poll_tenant`], which
/// may finish a run a crashed instance began).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PollOutcome {
    pub finished_at: Option<DateTime<Utc>>,
    pub pages: u32,
    pub orders: u64,
    /// Events handed to the queue (an order with refunds gives several).
    pub events: u64,
    /// Of those, new jobs (the rest were already queued, by a webhook or a poll).
    pub enqueued: u64,
    /// Order versions no webhook delivered.
    pub found_only_by_poll: u64,
    /// Orders the parser refused (logged with the reason; booked by nobody).
    pub unreadable: u64,
    /// HTTP requests made to the shop.
    pub shop_calls: u64,
    pub watermark: Option<DateTime<Utc>>,
}
/// Runs the poll and the backfills of connected tenants, and the alert checks of all.
#[derive(Clone)]
pub struct Reconciler {
    pub(crate) queue: Queue,
    pub(crate) shops: ShopStore,
    pub(crate) tenants: TenantStore,
    pub(crate) http: reqwest::Client,
    pub(crate) cfg: ReconcileSettings,
    pub(crate) wake: Option<Arc<Notify>>,
    pub(crate) alerts: Option<crate::alerts::Alerts>,
    pub(crate) minimax: crate::minimax::Minimax,
    pub(crate) records: crate::booking::records::Records,
}
impl Reconciler {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        queue: Queue,
        shops: ShopStore,
        tenants: TenantStore,
        minimax: crate::minimax::Minimax,
        records: crate::booking::records::Records,
        cfg: ReconcileSettings,
        alerts: Option<crate::alerts::Alerts>,
        wake: Option<Arc<Notify>>,
    ) -> Self {
        Self {
            queue,
            shops,
            tenants,
            http: reqwest::Client::new(),
            cfg,
            wake,
            alerts,
            minimax,
            records,
        }
    }

    pub fn settings(&self) -> &ReconcileSettings {
        &self.cfg
    }

    pub(crate) fn pool(&self) -> &Pool {
        self.shops.pool()
    }

    pub(crate) fn key(&self, tenant: &TenantId, what: &str) -> String {
        tenant_key(self.shops.prefix(), tenant, what)
    }

    pub(crate) fn client(&self, conn: ShopConnection) -> ShopClient {
        ShopClient::new(conn, self.http.clone())
            .with_max_wait(Duration::from_secs(self.cfg.max_rate_wait))
    }
    /// Seconds until the tenant's next poll: the interval, jittered ±10 % so that
    /// tenants connected at the same moment drift apart.
    fn next_delay(&self) -> Duration {
        let base = self.cfg.interval as f64;
        let j = rand::thread_rng().gen_range(0.9..1.1);
        Duration::from_secs_f64(base * j)
    }

    /// Polls the tenants that are due (claimed through `{t}:reconcile:next`, so only
    /// one instance starts each) and steps their backfills when polling is enabled,
    /// then checks the alert states of **every** tenant (a tenant without a shop
    /// connection can still be blocked, paused or have dead jobs), on one instance
    /// per tick.
    pub async fn tick(&self) {
        if self.cfg.enabled {
            self.poll_due().await;
        }
        if let Some(a) = &self.alerts {
            // One instance checks per tick: the alert states live in Redis, so more
            // checkers would only repeat the same reads.
            let key = format!("{}:alerts:check", self.shops.prefix());
            let mine = match self.pool().get().await {
                Ok(mut conn) => {
                    lock::take(&mut conn, &key, self.cfg.tick_ms.saturating_sub(1).max(1))
                        .await
                        .ok()
                        .flatten()
                        .is_some()
                }
                Err(_) => false,
            };
            if !mine {
                return;
            }
            match self.tenants.list().await {
                Ok(ids) => {
                    for id in ids {
                        if let Ok(Some(t)) = self.tenants.get(&id).await {
                            a.check_tenant(&t, &self.minimax, &self.queue).await;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "alerts: cannot list tenants"),
            }
        }
    }

    async fn poll_due(&self) {
        let tenants = match self.shops.tenants().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "reconcile: cannot list connected tenants");
                return;
            }
        };
        for tenant in tenants {
            let due = self.claim_due(&tenant).await.unwrap_or(false)
                || self.interrupted(&tenant).await.unwrap_or(false);
            if due {
                match self.poll_tenant(&tenant).await {
                    Ok(_) | Err(ReconcileError::Busy) => {}
                    Err(e) => {
                        tracing::debug!(%tenant, error = %e, "poll failed; next at the interval")
                    }
                }
            }
            if let Err(e) = backfill::step(self, &tenant).await {
                if !matches!(e, ReconcileError::Busy) {
                    tracing::warn!(%tenant, error = %e, "backfill step failed");
                }
            }
        }
    }

    /// True when the tenant's poll is due; moves its next-due time forward atomically
    /// (`SET … GET`), so two instances ticking at once do not both start it.
    async fn claim_due(&self, tenant: &TenantId) -> Result<bool, ReconcileError> {
        let key = self.key(tenant, "reconcile:next");
        let mut conn = self.pool().get().await?;
        let now = Utc::now().timestamp_millis();
        let due: Option<i64> = conn.get(&key).await?;
        if due.is_some_and(|d| d > now) {
            return Ok(false);
        }
        let next = now + self.next_delay().as_millis() as i64;
        let old: Option<i64> = redis::cmd("SET")
            .arg(&key)
            .arg(next)
            .arg("GET")
            .query_async(&mut conn)
            .await?;
        Ok(old == due)
    }

    /// True when a run was cut short without an error (its instance died or stopped):
    /// it resumes from its saved cursor at once (`poll_tenant` is `Busy` until the dead
    /// instance's lock expires) instead of at the next interval.
    async fn interrupted(&self, tenant: &TenantId) -> Result<bool, ReconcileError> {
        let s = self.state(tenant).await?;
        Ok(s.run.is_some() && s.last_error.is_none())
    }

    /// Makes the tenant's poll due now (admin "poll now", tests, the demo).
    pub async fn poll_soon(&self, tenant: &TenantId) -> Result<(), ReconcileError> {
        let mut conn = self.pool().get().await?;
        let _: () = conn.del(self.key(tenant, "reconcile:next")).await?;
        Ok(())
    }

    /// True when the scheduler has work: polling is on or alerts are configured.
    pub fn has_work(&self) -> bool {
        self.cfg.enabled || self.alerts.is_some()
    }

    /// Runs [`Reconciler::tick`] every `tick_ms` until `stop` turns true.
    pub fn start(
        self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            LazyLock::force(&FOUND_ONLY_BY_POLL);
            LazyLock::force(&POLL_ERRORS);
            LazyLock::force(&POLL_SECONDS);
            LazyLock::force(&shop_api::SHOP_API_CALLS);
            loop {
                self.tick().await;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(self.cfg.tick_ms)) => {}
                    _ = stop.changed() => return,
                }
            }
        })
    }
}
