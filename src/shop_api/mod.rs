//! The shops' own APIs: a tenant's optional connection to its WooCommerce REST API or
//! Shopify Admin API, used to poll for orders a webhook missed, to backfill a period
//! and to write the Minimax document number back to the order.
//!
//! Guarantees:
//! - secrets (WooCommerce consumer secret, Shopify access token) are sealed at rest
//!   with the service's cipher, write-only in the admin API and never in errors or
//!   logs (requests authenticate with headers, never with query-string credentials);
//! - every call honours the shop's limits: `429` waits `Retry-After` (or an exponential
//!   backoff), Shopify's call-limit header slows down before the bucket is full, and a
//!   call gives up after a bounded number of attempts with [`ShopApiError::RateLimited`];
//! - a listing page returns the order resources as the shop sent them (the same shape
//!   as the webhook body), so the platform's webhook parser reads them unchanged.

pub mod shopify;
pub mod woocommerce;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::redis_conn::RedisPool as Pool;
use chrono::{DateTime, Utc};
use prometheus::IntCounterVec;
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::{Cipher, CryptoError};
use crate::tenants::TenantId;
use crate::webshop::Platform;

/// Shop API calls, by platform and outcome (HTTP status or `error`).
pub static SHOP_API_CALLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    crate::metrics::counter_vec(
        "mmc_shop_api_calls_total",
        "Calls to the shops' own APIs, by platform and HTTP status",
        &["platform", "status"],
    )
});

#[derive(Debug, thiserror::Error)]
pub enum ShopApiError {
    /// The shop could not be reached (DNS, TLS, timeout); no URL or secret in the text.
    #[error("the shop's API cannot be reached: {0}")]
    Unreachable(String),
    #[error(
        "the shop's API refused the credentials (HTTP {0}): check the key and its permissions"
    )]
    Unauthorized(u16),
    #[error("the shop's API is rate limiting us; gave up after {attempts} attempts")]
    RateLimited { attempts: u32 },
    #[error("the shop's API answered HTTP {status}: {reason}")]
    Status { status: u16, reason: String },
    #[error("the shop's API answered something we cannot read: {0}")]
    Malformed(String),
    #[error("storage: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("storage unavailable: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("stored shop connection cannot be decrypted: {0}")]
    Crypto(#[from] CryptoError),
    #[error("stored shop connection is damaged: {0}")]
    Corrupt(String),
    /// The submitted connection is invalid, one message per field.
    #[error("invalid shop connection: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl ShopApiError {
    /// True when retrying later may help (network, 429, 5xx, storage).
    pub fn is_transient(&self) -> bool {
        match self {
            ShopApiError::Unreachable(_)
            | ShopApiError::RateLimited { .. }
            | ShopApiError::Redis(_)
            | ShopApiError::Pool(_) => true,
            ShopApiError::Status { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }
}

/// A tenant's connection to its shop's API (secrets in the clear, in memory only).
#[derive(Clone)]
pub struct ShopConnection {
    pub platform: Platform,
    /// WooCommerce: the site URL (`https://shop.example`); Shopify: the shop's admin
    /// origin (`https://example.myshopify.com`).
    pub url: String,
    /// WooCommerce consumer key (`ck_…`); not used for Shopify.
    pub consumer_key: Option<String>,
    /// WooCommerce consumer secret (`cs_…`) or Shopify Admin API access token.
    pub secret: SecretString,
    /// Shopify API version pinned for this tenant (`2025-01`).
    pub api_version: Option<String>,
    /// Write the Minimax document number back to the shop order (off by default).
    pub write_back: bool,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for ShopConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopConnection")
            .field("platform", &self.platform)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The Shopify API version used when a tenant does not pin one.
pub const DEFAULT_SHOPIFY_VERSION: &str = "2025-01";

impl ShopConnection {
    /// The admin API's view: whether the secret is set, never its value.
    pub fn view(&self) -> Value {
        serde_json::json!({
            "platform": self.platform,
            "url": self.url,
            "consumer_key": self.consumer_key,
            "secret_set": !self.secret.expose_secret().is_empty(),
            "api_version": self.api_version,
            "write_back": self.write_back,
            "updated_at": self.updated_at,
        })
    }

    /// The shop name the webhooks carry (`X-WC-Webhook-Source` / `X-Shopify-Shop-Domain`),
    /// so that a polled order gets the same dedupe key and source as a delivered one.
    pub fn webhook_source(&self) -> String {
        match self.platform {
            Platform::Shopify => url::Url::parse(&self.url)
                .ok()
                .and_then(|u| {
                    u.host_str().map(|h| match u.port() {
                        Some(p) => format!("{h}:{p}"),
                        None => h.to_owned(),
                    })
                })
                .unwrap_or_else(|| self.url.clone()),
            _ => format!("{}/", self.url.trim_end_matches('/')),
        }
    }
}

/// A connection as submitted to `PUT /admin/tenants/{id}/shop`: a whole connection,
/// secret included (a PUT replaces the stored one).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopConnectionInput {
    pub platform: Platform,
    pub url: String,
    #[serde(default)]
    pub consumer_key: Option<String>,
    #[serde(default)]
    pub consumer_secret: Option<SecretString>,
    #[serde(default)]
    pub access_token: Option<SecretString>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub write_back: bool,
}

/// The shape the OpenAPI document gives `url`: `http(s)://host[:port][/path]` with a
/// DNS-style host (Shopify: the scheme may be left out), nothing else.
fn url_shape_ok(raw: &str, scheme_optional: bool) -> bool {
    let rest = match raw.split_once("://") {
        Some(("http" | "https", rest)) => rest,
        Some(_) => return false,
        None if scheme_optional => raw,
        None => return false,
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let label_ok =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    host.split('.').all(label_ok)
        && port.is_none_or(|p| {
            // 0–65535 without a leading zero in five digits (the document's pattern).
            (1..=5).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && !(p.len() == 5 && p.starts_with('0'))
                && p.parse::<u16>().is_ok()
        })
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~/-".contains(&b))
}

impl ShopConnectionInput {
    pub fn into_connection(self) -> Result<ShopConnection, ShopApiError> {
        let mut problems = Vec::new();
        let mut url = self.url.trim_end_matches('/').to_owned();
        if self.platform == Platform::Shopify && !url.contains("://") {
            url = format!("https://{url}");
        }
        if !url_shape_ok(&self.url, self.platform == Platform::Shopify)
            || url::Url::parse(&url).is_err()
        {
            problems.push("url: expected the shop's http(s) URL".into());
        }
        let given = match self.platform {
            Platform::WooCommerce => {
                if self.access_token.is_some() {
                    problems.push("access_token: only for shopify (woocommerce uses consumer_key and consumer_secret)".into());
                }
                if self.api_version.is_some() {
                    problems.push("api_version: only for shopify".into());
                }
                if self
                    .consumer_key
                    .as_deref()
                    .is_none_or(|k| k.trim().is_empty())
                {
                    problems.push("consumer_key: required for woocommerce".into());
                }
                self.consumer_secret
            }
            Platform::Shopify => {
                if self.consumer_key.is_some() || self.consumer_secret.is_some() {
                    problems.push("consumer_key/consumer_secret: only for woocommerce (shopify uses access_token)".into());
                }
                if let Some(v) = &self.api_version {
                    let ok = v.len() == 7
                        && v.as_bytes()[4] == b'-'
                        && v.bytes()
                            .enumerate()
                            .all(|(i, b)| i == 4 || b.is_ascii_digit());
                    if !ok {
                        problems.push("api_version: expected YYYY-MM, e.g. 2025-01".into());
                    }
                }
                self.access_token
            }
            Platform::Generic => {
                problems.push("platform: only woocommerce and shopify have an API to poll".into());
                None
            }
        };
        // A PUT replaces the connection, so it carries its secret: one rule for every PUT,
        // as the OpenAPI document states it.
        let secret = given.filter(|s| !s.expose_secret().trim().is_empty());
        if secret.is_none() {
            problems.push(match self.platform {
                Platform::Shopify => "access_token: required".into(),
                _ => "consumer_secret: required".into(),
            });
        }
        if !problems.is_empty() {
            return Err(ShopApiError::Invalid(problems));
        }
        Ok(ShopConnection {
            platform: self.platform,
            url,
            consumer_key: self.consumer_key.map(|k| k.trim().to_owned()),
            secret: secret.unwrap_or_default(),
            api_version: match self.platform {
                Platform::Shopify => Some(
                    self.api_version
                        .unwrap_or_else(|| DEFAULT_SHOPIFY_VERSION.into()),
                ),
                _ => None,
            },
            write_back: self.write_back,
            updated_at: Utc::now(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    v: u32,
    platform: Platform,
    url: String,
    consumer_key: Option<String>,
    secret: String,
    api_version: Option<String>,
    write_back: bool,
    updated_at: DateTime<Utc>,
}

/// Reads and writes shop connections (`{p}:{t:<tenant>}:shop_api`, sealed) and the
/// index of tenants that have one. Cheap to clone.
#[derive(Clone)]
pub struct ShopStore {
    pool: Pool,
    prefix: String,
    cipher: Cipher,
}

impl ShopStore {
    pub fn new(pool: Pool, prefix: String, cipher: Cipher) -> Self {
        Self {
            pool,
            prefix,
            cipher,
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, tenant: &TenantId) -> String {
        crate::tenants::tenant_key(&self.prefix, tenant, "shop_api")
    }

    fn index_key(&self) -> String {
        format!("{}:shop_api_tenants", self.prefix)
    }

    pub async fn get(&self, tenant: &TenantId) -> Result<Option<ShopConnection>, ShopApiError> {
        let mut conn = self.pool.get().await?;
        let raw: Option<String> = conn.get(self.key(tenant)).await?;
        let Some(raw) = raw else { return Ok(None) };
        let s: Stored =
            serde_json::from_str(&raw).map_err(|e| ShopApiError::Corrupt(e.to_string()))?;
        Ok(Some(ShopConnection {
            platform: s.platform,
            url: s.url,
            consumer_key: s.consumer_key,
            secret: self.cipher.open(&s.secret)?,
            api_version: s.api_version,
            write_back: s.write_back,
            updated_at: s.updated_at,
        }))
    }

    pub async fn put(&self, tenant: &TenantId, c: &ShopConnection) -> Result<(), ShopApiError> {
        let stored = Stored {
            v: 1,
            platform: c.platform,
            url: c.url.clone(),
            consumer_key: c.consumer_key.clone(),
            secret: self.cipher.seal(c.secret.expose_secret()),
            api_version: c.api_version.clone(),
            write_back: c.write_back,
            updated_at: c.updated_at,
        };
        let raw =
            serde_json::to_string(&stored).map_err(|e| ShopApiError::Corrupt(e.to_string()))?;
        let mut conn = self.pool.get().await?;
        let _: () = redis::pipe()
            .set(self.key(tenant), raw)
            .sadd(self.index_key(), tenant)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn delete(&self, tenant: &TenantId) -> Result<bool, ShopApiError> {
        let mut conn = self.pool.get().await?;
        let (n, _): (u32, u32) = redis::pipe()
            .del(self.key(tenant))
            .srem(self.index_key(), tenant)
            .query_async(&mut conn)
            .await?;
        Ok(n > 0)
    }

    /// Tenants with a shop connection.
    pub async fn tenants(&self) -> Result<Vec<TenantId>, ShopApiError> {
        let mut conn = self.pool.get().await?;
        let ids: Vec<String> = conn.smembers(self.index_key()).await?;
        let mut ids: Vec<TenantId> = ids.into_iter().filter_map(|t| t.parse().ok()).collect();
        ids.sort();
        Ok(ids)
    }
}

/// Where a listing continues. Saved in Redis after each page is enqueued, so a crash
/// resumes at the page after the last enqueued one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cursor {
    /// The first page of the window.
    Start,
    /// WooCommerce keyset paging: orders modified after `after` (ascending), `page`
    /// within that (only above 1 when a whole page shared one second).
    Woo { after: DateTime<Utc>, page: u32 },
    /// Shopify: the `rel="next"` URL of the previous page, followed verbatim.
    Next { url: String },
}

/// The orders (or refunds) listed in `[since, until]`, by modification time or, for a
/// backfill by creation, by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// `true`: filter on creation time (backfill "orders placed in the period").
    #[serde(default)]
    pub by_created: bool,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    /// The order resources as the shop sent them (webhook body shape).
    pub orders: Vec<Value>,
    pub next: Option<Cursor>,
}

/// A client for one tenant's shop API. Counts its calls (for the measurements in
/// docs/benchmarks.md and the per-poll log line).
#[derive(Clone)]
pub struct ShopClient {
    conn: ShopConnection,
    http: reqwest::Client,
    calls: Arc<AtomicU64>,
    max_attempts: u32,
    max_wait: Duration,
}

/// Page size of listings (WooCommerce allows 100, Shopify REST 250).
pub const PAGE_SIZE: u32 = 100;

impl ShopClient {
    pub fn new(conn: ShopConnection, http: reqwest::Client) -> Self {
        Self {
            conn,
            http,
            calls: Arc::new(AtomicU64::new(0)),
            max_attempts: 6,
            max_wait: Duration::from_secs(60),
        }
    }

    /// How long one rate-limit wait may be at most (tests shorten it).
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    pub fn connection(&self) -> &ShopConnection {
        &self.conn
    }

    /// HTTP requests made so far (including retried ones).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// One page of orders in `window`, oldest change first.
    pub async fn list_page(&self, window: &Window, cursor: &Cursor) -> Result<Page, ShopApiError> {
        match self.conn.platform {
            Platform::Shopify => shopify::list_page(self, window, cursor).await,
            _ => woocommerce::list_page(self, window, cursor).await,
        }
    }

    /// Writes `text` to the order where the shop owner sees it and no webhook fires:
    /// a private order note (WooCommerce) or the `minimax.document` metafield (Shopify).
    pub async fn write_note(
        &self,
        order_id: &str,
        text: &str,
        number: &str,
    ) -> Result<(), ShopApiError> {
        match self.conn.platform {
            Platform::Shopify => shopify::write_metafield(self, order_id, number, text).await,
            _ => woocommerce::add_note(self, order_id, text).await,
        }
    }

    /// A cheap authenticated read proving the credentials work.
    pub async fn check(&self) -> Result<Value, ShopApiError> {
        match self.conn.platform {
            Platform::Shopify => shopify::check(self).await,
            _ => woocommerce::check(self).await,
        }
    }

    fn platform_label(&self) -> &'static str {
        self.conn.platform.as_str()
    }

    /// Sends the request built by `build`, retrying `429` (after `Retry-After`), `5xx`
    /// and network errors with exponential backoff. `pace` reads headers of a success
    /// and returns how long to wait before the next call (Shopify's bucket).
    pub(crate) async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::header::HeaderMap, Vec<u8>), ShopApiError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let res = build().timeout(Duration::from_secs(30)).send().await;
            let backoff = self
                .max_wait
                .min(Duration::from_millis(250u64 << attempt.min(8)));
            let res = match res {
                Ok(r) => r,
                Err(e) => {
                    SHOP_API_CALLS
                        .with_label_values(&[self.platform_label(), "error"])
                        .inc();
                    // reqwest's text may carry the URL, never headers; keep only the kind.
                    let kind = if e.is_timeout() {
                        "timeout"
                    } else if e.is_connect() {
                        "connection refused or unreachable"
                    } else {
                        "request failed"
                    };
                    if attempt >= self.max_attempts {
                        return Err(ShopApiError::Unreachable(kind.into()));
                    }
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            let status = res.status().as_u16();
            SHOP_API_CALLS
                .with_label_values(&[self.platform_label(), &status.to_string()])
                .inc();
            let headers = res.headers().clone();
            if status == 429 || status >= 500 {
                if attempt >= self.max_attempts {
                    return Err(if status == 429 {
                        ShopApiError::RateLimited { attempts: attempt }
                    } else {
                        ShopApiError::Status {
                            status,
                            reason: "server error".into(),
                        }
                    });
                }
                let wait = retry_after(&headers).map_or(backoff, |d| d.min(self.max_wait));
                tracing::info!(
                    status,
                    wait_ms = wait.as_millis() as u64,
                    "shop API asks us to slow down"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let body = res
                .bytes()
                .await
                .map_err(|_| ShopApiError::Unreachable("reading the answer failed".into()))?
                .to_vec();
            if status == 401 || status == 403 {
                return Err(ShopApiError::Unauthorized(status));
            }
            if !(200..300).contains(&status) {
                return Err(ShopApiError::Status {
                    status,
                    reason: error_reason(&body),
                });
            }
            if let Some(wait) = shopify::pace(&headers) {
                tokio::time::sleep(wait.min(self.max_wait)).await;
            }
            return Ok((headers, body));
        }
    }
}

/// `Retry-After` in seconds (fractions allowed, as Shopify sends `2.0`).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_millis((secs * 1000.0) as u64))
}

/// A short reason from an error body (WooCommerce `{code, message}`, Shopify
/// `{errors}`), never the whole body.
fn error_reason(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = v
        .get("message")
        .or_else(|| v.get("code"))
        .or_else(|| v.get("errors"))
        .map(|m| match m {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "no details".into());
    text.chars().take(200).collect()
}

/// Parses a JSON answer.
pub(crate) fn json(body: &[u8]) -> Result<Value, ShopApiError> {
    serde_json::from_slice(body).map_err(|e| {
        // The scrubbed reason: a shop's answer may carry customer data.
        let p = crate::webshop::reader::problem_of(&e, body);
        ShopApiError::Malformed(format!("{}: {}", p.path, p.reason))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shopify_input_defaults_the_version_and_needs_its_token() {
        let input: ShopConnectionInput = serde_json::from_value(serde_json::json!({
            "platform": "shopify", "url": "example.myshopify.com", "access_token": "shpat_x"
        }))
        .unwrap();
        let c = input.into_connection().unwrap();
        assert_eq!(c.url, "https://example.myshopify.com");
        assert_eq!(c.api_version.as_deref(), Some(DEFAULT_SHOPIFY_VERSION));
        assert_eq!(c.webhook_source(), "example.myshopify.com");
        assert!(!c.write_back);
        assert!(!c.view().to_string().contains("shpat_x"));
        // A PUT replaces the connection: without its token it is refused, naming it.
        let again: ShopConnectionInput = serde_json::from_value(serde_json::json!({
            "platform": "shopify", "url": "https://example.myshopify.com", "write_back": true
        }))
        .unwrap();
        let ShopApiError::Invalid(p) = again.into_connection().unwrap_err() else {
            panic!("expected Invalid")
        };
        assert_eq!(p, ["access_token: required"]);
    }

    #[test]
    fn woocommerce_input_names_every_problem() {
        let input: ShopConnectionInput = serde_json::from_value(serde_json::json!({
            "platform": "woocommerce", "url": "ftp://x", "access_token": "t"
        }))
        .unwrap();
        let ShopApiError::Invalid(p) = input.into_connection().unwrap_err() else {
            panic!("expected Invalid")
        };
        assert_eq!(p.len(), 4, "{p:?}");
    }

    #[test]
    fn retry_after_reads_fractional_seconds() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2.0".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    }
}
