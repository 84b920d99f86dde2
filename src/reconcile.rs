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
//!   `updated_at`, body: [`webshop::shopify::order_version_key`]) and embedded refunds the
//!   refund's key ([`webshop::shopify::refund_key`]); booking records stop any second
//!   document either way;
//! - **"found only by the poll"** is counted when the poll enqueued a version of an
//!   order that no webhook delivered (webhook intake leaves a `seen` marker per order
//!   version, [`note_delivered`]); the settle delay gives in-flight webhooks time.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use crate::redis_conn::lock;
use crate::redis_conn::RedisPool as Pool;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use prometheus::{HistogramVec, IntCounterVec};
use rand::Rng;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use crate::jobs::Job;
use crate::queue::{tenant_key, Queue, QueueError};
use crate::shop_api::{self, Cursor, ShopApiError, ShopClient, ShopConnection, ShopStore, Window};
use crate::tenants::TenantStore;
use crate::webshop::{self, IncomingEvent, Intake, ParseSettings, Platform, ShopEvent};

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
    NotConnected(String),
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

static FENCED_SET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0",
    )
});

/// How long webhook `seen` markers live (longer than any overlap window or backfill).
const SEEN_TTL_SECS: u64 = 40 * 24 * 3600;

/// The marker key and version of an event: orders by id and modification time (ms),
/// refunds without their order (Shopify `refunds/create`) by refund key.
fn seen_marker(event: &ShopEvent) -> Option<(String, i64)> {
    if let Some(order) = event.order() {
        let v = order.updated_at.map(|t| t.timestamp_millis()).unwrap_or(0);
        return Some((format!("seen:order:{}", order.shop_order_id), v));
    }
    match event {
        ShopEvent::OrderRefunded { refund, .. } => {
            Some((format!("seen:refund:{}", refund.key()), 0))
        }
        _ => None,
    }
}

/// What webhook intake records for the poll: the marker of an event (computed before
/// the event moves into its job, so nothing is cloned on the hot path).
pub struct Delivered {
    what: String,
    version: i64,
}

/// The marker of `event`; `None` for events the poll never sees.
pub fn delivered(event: &ShopEvent) -> Option<Delivered> {
    seen_marker(event).map(|(what, version)| Delivered { what, version })
}

impl Delivered {
    /// The enqueue mark that records this delivery with a new job, in the enqueue's
    /// own script (a duplicate adds nothing: the first delivery or the poll decided).
    pub fn mark(&self) -> crate::queue::Mark<'_> {
        crate::queue::Mark {
            key: &self.what,
            value: self.version,
            ttl_secs: SEEN_TTL_SECS,
        }
    }
}

fn header_map(pairs: &[(&'static str, &str)]) -> Result<HeaderMap, webshop::WebshopError> {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        let value = HeaderValue::from_str(v)
            .map_err(|_| webshop::WebshopError::invalid(*k, "cannot be sent as a header"))?;
        h.insert(HeaderName::from_static(k), value);
    }
    Ok(h)
}

/// Keeps a parsed event, with `key` as its dedupe key when one is given (Shopify: the
/// order version or refund, see [`webshop::shopify::order_version_key`]).
fn push_intake(out: &mut Vec<IncomingEvent>, intake: Intake, key: String) {
    if let Intake::Event(mut e) = intake {
        if !key.is_empty() {
            e.dedupe_key = key;
        }
        out.push(*e);
    }
}

/// A polled resource as the body its webhook would carry.
fn to_body(v: &Value) -> Result<Vec<u8>, webshop::WebshopError> {
    serde_json::to_vec(v).map_err(|_| webshop::WebshopError::MalformedJson {
        path: webshop::ROOT_PATH.to_owned(),
        reason: "the resource cannot be serialised".to_owned(),
    })
}

/// An id as text: JSON numbers as written, strings without their quotes.
fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The events one polled order resource stands for, parsed by the platform's webhook
/// parser with the headers its webhook would carry.
pub fn events_of(
    conn: &ShopConnection,
    order: &Value,
    parse: &ParseSettings,
) -> Result<Vec<IncomingEvent>, webshop::WebshopError> {
    let source = conn.webhook_source();
    let body = to_body(order)?;
    let mut out = Vec::new();
    match conn.platform {
        Platform::Shopify => {
            let id = order.get("id").map(id_text).unwrap_or_default();
            let updated = order
                .get("updated_at")
                .and_then(Value::as_str)
                .unwrap_or("");
            let key = webshop::shopify::order_version_key(&id, updated, &body);
            let h = header_map(&[
                ("x-shopify-topic", "orders/updated"),
                ("x-shopify-shop-domain", &source),
                ("x-shopify-event-id", &key),
            ])?;
            push_intake(&mut out, webshop::shopify::parse(&body, &h, parse)?, key);
            // Shopify books refunds from `refunds/create` only; a polled order carries
            // its refunds in that very shape.
            for r in order
                .get("refunds")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let rid = r.get("id").map(id_text).unwrap_or_default();
                let key = webshop::shopify::refund_key(&rid);
                let h = header_map(&[
                    ("x-shopify-topic", "refunds/create"),
                    ("x-shopify-shop-domain", &source),
                    ("x-shopify-event-id", &key),
                ])?;
                let rbody = to_body(r)?;
                push_intake(&mut out, webshop::shopify::parse(&rbody, &h, parse)?, key);
            }
        }
        _ => {
            let h = header_map(&[
                ("x-wc-webhook-topic", "order.updated"),
                ("x-wc-webhook-source", &source),
            ])?;
            // The webhook's own key (site, order, topic, modification time).
            push_intake(
                &mut out,
                webshop::woocommerce::parse(&body, &h, parse)?,
                String::new(),
            );
        }
    }
    Ok(out)
}

/// Numbers of one page's enqueue.
#[derive(Debug, Default, Clone, Copy)]
pub struct PageCounts {
    pub orders: u64,
    pub events: u64,
    pub enqueued: u64,
    pub found_only_by_poll: u64,
    pub unreadable: u64,
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

/// Holds a tenant's poll lock; renew before each fenced write.
pub(crate) struct Lock {
    key: String,
    token: String,
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

    pub(crate) fn key(&self, tenant: &str, what: &str) -> String {
        tenant_key(self.shops.prefix(), tenant, what)
    }

    pub(crate) fn client(&self, conn: ShopConnection) -> ShopClient {
        ShopClient::new(conn, self.http.clone())
            .with_max_wait(Duration::from_secs(self.cfg.max_rate_wait))
    }

    pub(crate) async fn lock(&self, tenant: &str) -> Result<Option<Lock>, ReconcileError> {
        let key = self.key(tenant, "reconcile:lock");
        let mut conn = self.pool().get().await?;
        let token = lock::take(&mut conn, &key, self.cfg.lock_ttl * 1000).await?;
        Ok(token.map(|token| Lock { key, token }))
    }

    pub(crate) async fn renew(&self, lock: &Lock) -> Result<(), ReconcileError> {
        let mut conn = self.pool().get().await?;
        if lock::refresh(&mut conn, &lock.key, &lock.token, self.cfg.lock_ttl * 1000).await? {
            Ok(())
        } else {
            Err(ReconcileError::Busy)
        }
    }

    pub(crate) async fn release(&self, lock: Lock) {
        if let Ok(mut conn) = self.pool().get().await {
            let _ = lock::release(&mut conn, &lock.key, &lock.token).await;
        }
    }

    /// Writes `value` to the tenant's `what` key only while `lock` is still ours.
    pub(crate) async fn fenced_set(
        &self,
        lock: &Lock,
        tenant: &str,
        what: &str,
        value: &str,
    ) -> Result<(), ReconcileError> {
        let mut conn = self.pool().get().await?;
        let ok: i64 = FENCED_SET
            .key(&lock.key)
            .key(self.key(tenant, what))
            .arg(&lock.token)
            .arg(value)
            .invoke_async(&mut conn)
            .await?;
        if ok == 1 {
            Ok(())
        } else {
            Err(ReconcileError::Busy)
        }
    }

    pub async fn state(&self, tenant: &str) -> Result<PollState, ReconcileError> {
        let mut conn = self.pool().get().await?;
        let raw: Option<String> = conn.get(self.key(tenant, "reconcile:state")).await?;
        Ok(raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default())
    }

    async fn save_state(
        &self,
        lock: &Lock,
        tenant: &str,
        s: &PollState,
    ) -> Result<(), ReconcileError> {
        let raw = serde_json::to_string(s).map_err(|e| ReconcileError::Invalid(e.to_string()))?;
        self.fenced_set(lock, tenant, "reconcile:state", &raw).await
    }

    /// Parses and enqueues one page's orders. `already_booked` etc. are the backfill's
    /// business; this is the webhook path.
    pub(crate) async fn enqueue_orders(
        &self,
        tenant: &str,
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
    pub async fn poll_tenant(&self, tenant: &str) -> Result<PollOutcome, ReconcileError> {
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
        tenant: &str,
        lock: &Lock,
    ) -> Result<(Platform, PollOutcome), ReconcileError> {
        let conn = self
            .shops
            .get(tenant)
            .await?
            .ok_or_else(|| ReconcileError::NotConnected(tenant.to_owned()))?;
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
                    for tenant in ids {
                        a.check_tenant(self, &tenant).await;
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
            if let Err(e) = crate::backfill::step(self, &tenant).await {
                if !matches!(e, ReconcileError::Busy) {
                    tracing::warn!(%tenant, error = %e, "backfill step failed");
                }
            }
        }
    }

    /// True when the tenant's poll is due; moves its next-due time forward atomically
    /// (`SET … GET`), so two instances ticking at once do not both start it.
    async fn claim_due(&self, tenant: &str) -> Result<bool, ReconcileError> {
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
    async fn interrupted(&self, tenant: &str) -> Result<bool, ReconcileError> {
        let s = self.state(tenant).await?;
        Ok(s.run.is_some() && s.last_error.is_none())
    }

    /// Makes the tenant's poll due now (admin "poll now", tests, the demo).
    pub async fn poll_soon(&self, tenant: &str) -> Result<(), ReconcileError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_polled_shopify_order_has_the_key_of_its_version_and_refunds_theirs() {
        let conn = ShopConnection {
            platform: Platform::Shopify,
            url: "https://s.myshopify.com".into(),
            consumer_key: None,
            secret: secrecy::SecretString::from("shpat_x".to_owned()),
            api_version: None,
            write_back: false,
            updated_at: Utc::now(),
        };
        let order = serde_json::json!({
            "id": 1073459981u64, "updated_at": "2025-04-02T11:31:38-05:00", "name": "#1",
            "currency": "USD", "total_price": "0.00", "financial_status": "refunded",
            "line_items": [], "refunds": [{"id": 77, "order_id": 1073459981u64,
                "transactions": [{"kind": "refund", "status": "success", "amount": "0.00"}]}]
        });
        let events = events_of(&conn, &order, &ParseSettings::default()).unwrap();
        let keys: Vec<&str> = events.iter().map(|e| e.dedupe_key.as_str()).collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(
            keys[0].starts_with("shopify:order:1073459981:2025-04-02T16:31:38Z:"),
            "{keys:?}"
        );
        assert_eq!(keys[1], "shopify:refund:77");
        // Polled again unchanged: the same keys (a duplicate, nothing enqueued twice).
        let again = events_of(&conn, &order, &ParseSettings::default()).unwrap();
        assert_eq!(again[0].dedupe_key, events[0].dedupe_key);
    }
}
