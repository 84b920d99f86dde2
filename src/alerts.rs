//! Operator alerts: an optional webhook (`[alerts] url`, signed the Standard Webhooks
//! way with `[alerts] secret`) told when a tenant's state changes.
//!
//! Guarantees:
//! - **one alert per state change, not per job**: each condition (credentials blocked,
//!   tenant paused, dead jobs, webhooks silent) is a per-tenant flag in Redis swapped
//!   atomically (`SET … GET`), so of all instances only the one that flipped it sends;
//!   `firing` when it turns on, `resolved` when it turns off; a condition seen on for
//!   the first time fires, one seen off for the first time is silent;
//! - every tenant is checked on each scheduler tick ([`crate::reconcile::Reconciler::tick`]), with or
//!   without a shop connection; "webhooks silent" is set after each poll run;
//! - a delivery that fails restores the old flag, so the next check tries again;
//! - the signature covers `{webhook-id}.{webhook-timestamp}.{body}` (HMAC-SHA256,
//!   `v1,<base64>`); a `whsec_` secret is base64-decoded first; the secret is never
//!   logged and alerts carry no shop or Minimax secrets.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac};
use prometheus::IntCounterVec;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::minimax::AuthState;
use crate::minimax::Minimax;
use crate::queue::Queue;
use crate::tenants::Tenant;
use crate::tenants::TenantId;

/// Alerts sent, by kind and outcome.
pub static ALERTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    crate::metrics::counter_vec(
        "mmc_alerts_sent_total",
        "Operator alerts, by kind and delivery outcome",
        &["kind", "outcome"],
    )
});

/// `[alerts]`: where operator alerts go. An empty URL disables them.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    pub url: String,
    /// Standard Webhooks secret (`whsec_<base64>` or plain text, at least 16 characters).
    pub secret: SecretString,
    /// Seconds one delivery may take.
    pub timeout: u64,
}

impl AlertSettings {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.url.is_empty() {
            return p;
        }
        if url::Url::parse(&self.url)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            p.push("alerts.url: expected an http(s) URL".into());
        }
        let s = self.secret.expose_secret();
        if s.len() < 16 {
            p.push("alerts.secret: required with alerts.url, at least 16 characters".into());
        } else if crate::webshop::signature::standard_webhooks_key(&self.secret).is_err() {
            p.push("alerts.secret: a whsec_ secret must be base64 after the prefix".into());
        }
        p
    }
}

/// The conditions alerts are sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    CredentialsBlocked,
    TenantPaused,
    JobDead,
    WebhooksSilent,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::CredentialsBlocked => "credentials_blocked",
            AlertKind::TenantPaused => "tenant_paused",
            AlertKind::JobDead => "job_dead",
            AlertKind::WebhooksSilent => "webhooks_silent",
        }
    }
}

/// Sends alerts; cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    url: String,
    key: Vec<u8>,
    http: reqwest::Client,
    pool: crate::redis_conn::RedisPool,
    prefix: String,
}

impl Alerts {
    /// `None` when no alert URL is configured.
    pub fn new(
        s: &AlertSettings,
        pool: crate::redis_conn::RedisPool,
        prefix: String,
    ) -> Option<Self> {
        if s.url.is_empty() {
            return None;
        }
        let key = crate::webshop::signature::standard_webhooks_key(&s.secret).ok()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(s.timeout.max(1)))
            .build()
            .ok()?;
        Some(Self {
            url: s.url.clone(),
            key,
            http,
            pool,
            prefix,
        })
    }

    fn flag_key(&self, tenant: &TenantId, kind: AlertKind) -> String {
        crate::tenants::tenant_key(&self.prefix, tenant, &format!("alert:{}", kind.as_str()))
    }

    /// Records the condition's current value and sends an alert if it changed.
    pub async fn set(
        &self,
        tenant: &TenantId,
        kind: AlertKind,
        on: bool,
        message: String,
        details: Value,
    ) {
        let key = self.flag_key(tenant, kind);
        let new = if on { "1" } else { "0" };
        let old: Option<String> = match self.pool.get().await {
            Ok(mut conn) => match redis::cmd("SET")
                .arg(&key)
                .arg(new)
                .arg("GET")
                .query_async(&mut conn)
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "alerts: cannot read the alert state");
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "alerts: storage unavailable");
                return;
            }
        };
        let changed = match old.as_deref() {
            None => on,
            Some(o) => o != new,
        };
        if !changed {
            return;
        }
        let body = json!({
            "type": format!("alert.{}", kind.as_str()),
            "tenant": tenant,
            "state": if on { "firing" } else { "resolved" },
            "message": message,
            "details": details,
            "at": Utc::now(),
        });
        if let Err(e) = self.send(&body).await {
            ALERTS.with_label_values(&[kind.as_str(), "failed"]).inc();
            tracing::warn!(%tenant, kind = kind.as_str(), error = %e, "alert delivery failed; retried at the next check");
            if let Ok(mut conn) = self.pool.get().await {
                let restore: redis::RedisResult<()> = match old {
                    Some(o) => {
                        redis::cmd("SET")
                            .arg(&key)
                            .arg(o)
                            .query_async(&mut conn)
                            .await
                    }
                    None => redis::cmd("DEL").arg(&key).query_async(&mut conn).await,
                };
                if let Err(e) = restore {
                    tracing::warn!(error = %e, "alerts: cannot restore the alert state");
                }
            }
        } else {
            ALERTS.with_label_values(&[kind.as_str(), "sent"]).inc();
            tracing::info!(%tenant, kind = kind.as_str(), on, "alert sent");
        }
    }

    /// Signs and posts one alert.
    pub async fn send(&self, body: &Value) -> Result<(), String> {
        let raw = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let id = format!("alert_{}", uuid::Uuid::new_v4().simple());
        let ts = Utc::now().timestamp();
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|e| e.to_string())?;
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(&raw);
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let res = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", format!("v1,{sig}"))
            .body(raw)
            .send()
            .await
            .map_err(|_| "the alert receiver cannot be reached".to_owned())?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the alert receiver answered HTTP {}",
                res.status().as_u16()
            ))
        }
    }

    /// After a poll run: "webhooks silent" while the poll finds orders no webhook delivered.
    pub async fn webhooks_silent(&self, tenant: &TenantId, found_only_by_poll: u64) {
        self.set(
            tenant,
            AlertKind::WebhooksSilent,
            found_only_by_poll > 0,
            if found_only_by_poll > 0 {
                format!("the poll found {found_only_by_poll} order change(s) that no webhook delivered: the shop's webhook is probably disabled or deleted (WooCommerce disables a hook after repeated failed deliveries, Shopify removes it after 8 failed retries); check the shop's webhook settings")
            } else {
                "webhooks deliver again: the last poll found nothing they missed".into()
            },
            json!({"found_only_by_poll": found_only_by_poll}),
        )
        .await;
    }

    /// Checks the tenant's Minimax login, pause and budget, and dead jobs.
    pub async fn check_tenant(&self, t: &Tenant, minimax: &Minimax, queue: &Queue) {
        let tenant = &t.id;
        let auth = minimax.auth_state(&t.credentials()).await;
        let (blocked, msg) = match &auth {
            AuthState::Blocked { reason, since } => (
                true,
                format!("the Minimax login is blocked since {since} ({reason}); bookings wait until the credentials are changed"),
            ),
            AuthState::Ok => (false, "the Minimax login works again".to_owned()),
        };
        self.set(
            tenant,
            AlertKind::CredentialsBlocked,
            blocked,
            msg,
            json!({}),
        )
        .await;
        if let Ok(u) = minimax.usage(t.organisation_id).await {
            let now = Utc::now();
            // A 429 pause, or the organisation's open circuit (Minimax not answering).
            let circuit_until = match minimax.circuit(t.organisation_id).await {
                Ok(c) if c.state != crate::minimax::CircuitState::Closed => c.until.or(Some(now)),
                _ => None,
            };
            let paused = u.paused_until.filter(|p| *p > now).or(circuit_until);
            let daily_spent = u.daily_limit > 0 && u.last_24h >= u64::from(u.daily_limit);
            let monthly_spent = u.monthly_limit > 0 && u.this_month >= u64::from(u.monthly_limit);
            let on = paused.is_some() || daily_spent || monthly_spent;
            let msg = if let Some(p) = paused {
                format!("Minimax paused the tenant until {p} (a 429, or Minimax not answering: circuit open); bookings wait")
            } else if daily_spent {
                format!("the 24-hour Minimax call budget is spent ({} of {}); bookings wait for the window", u.last_24h, u.daily_limit)
            } else if monthly_spent {
                format!("the monthly Minimax call budget is spent ({} of {}); bookings wait for next month", u.this_month, u.monthly_limit)
            } else {
                "the tenant books again".into()
            };
            self.set(
                tenant,
                AlertKind::TenantPaused,
                on,
                msg,
                json!({"paused_until": paused, "last_24h": u.last_24h, "daily_limit": u.daily_limit,
                       "this_month": u.this_month, "monthly_limit": u.monthly_limit}),
            )
            .await;
        }
        if let Ok(c) = queue.counts(tenant).await {
            self.set(
                tenant,
                AlertKind::JobDead,
                c.dead > 0,
                if c.dead > 0 {
                    format!("{} job(s) are dead and need an operator (GET /admin/tenants/{tenant}/jobs?state=dead)", c.dead)
                } else {
                    "no dead jobs any more".into()
                },
                json!({"dead": c.dead}),
            )
            .await;
        }
    }
}
