//! Service configuration: `config/default.toml`, an optional local file, then
//! `MMC__SECTION__KEY` environment variables, in that order of precedence.
//!
//! [`Settings::load`] validates everything it returns, so the rest of the service can
//! trust the values; a wrong value stops start-up with a message naming the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use crate::redis_conn::{RedisMode, RedisSettings};
pub use crate::telemetry::{LogFormat, TelemetrySettings};
use crate::worker::WorkerConfig;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
}

/// Which parts of the service run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// HTTP intake and workers.
    All,
    /// HTTP only: jobs are processed by other instances.
    Intake,
    /// Workers, plus the health and metrics endpoints.
    Worker,
}

impl Role {
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
    pub fn runs_intake(self) -> bool {
        matches!(self, Role::All | Role::Intake)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub role: Role,
    pub server: ServerSettings,
    pub redis: RedisSettings,
    pub queue: QueueSettings,
    pub worker: WorkerSettings,
    pub telemetry: TelemetrySettings,
    pub intake: IntakeSettings,
    pub security: SecuritySettings,
    /// Who may read `/metrics`, and where it is served.
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub minimax: crate::minimax::MinimaxSettings,
    /// The embedded Minimax fake (demo and tests), mounted under `/sandbox`.
    #[serde(default)]
    pub sandbox: crate::sandbox::SandboxSettings,
    /// Demo mode: the sandbox and a tenant booking into it.
    #[serde(default)]
    pub demo: DemoSettings,
    /// Tenants written to Redis at start-up (single-shop setups, the demo tenant).
    #[serde(default)]
    pub tenants: Vec<crate::tenants::TenantInput>,
    /// The reconciliation poll of connected shops.
    #[serde(default)]
    pub reconcile: crate::reconcile::ReconcileSettings,
    /// The operator alert webhook.
    #[serde(default)]
    pub alerts: crate::alerts::AlertSettings,
}

/// `[demo]`: mounts the Minimax sandbox under `/sandbox` and seeds a tenant that books
/// into it, so a fresh checkout shows an order becoming an invoice without credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DemoSettings {
    pub enabled: bool,
    pub tenant_id: String,
    /// Webhook secret of the demo tenant, for every platform.
    pub webhook_secret: String,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            tenant_id: "demo".into(),
            webhook_secret: "demo-webhook-secret".into(),
        }
    }
}

impl Settings {
    /// Applies demo mode: sandbox on, and the demo tenant among the seeded tenants.
    pub fn apply_demo(&mut self) {
        if !self.demo.enabled {
            return;
        }
        self.sandbox.enabled = true;
        if self
            .tenants
            .iter()
            .any(|t| t.id.as_deref() == Some(&self.demo.tenant_id))
        {
            return;
        }
        let sb = &self.sandbox;
        let secret = SecretString::from(self.demo.webhook_secret.clone());
        let cc = sb.country.code();
        self.tenants.push(crate::tenants::TenantInput {
            id: Some(self.demo.tenant_id.clone()),
            name: Some("Demo shop (books into the sandbox)".into()),
            country: sb.country,
            organisation_id: sb.organisation_id,
            minimax: crate::tenants::MinimaxLoginInput {
                username: Some(sb.username.clone()),
                password: Some(sb.password.clone()),
                client_id: Some(sb.client_id.clone()),
                client_secret: Some(sb.client_secret.clone()),
                api_base: Some(format!("{{self}}/sandbox/{cc}/API/")),
                token_url: Some(format!("{{self}}/sandbox/{cc}/AUT/OAuth20/Token")),
            },
            webhook_secrets: crate::webshop::Platform::ALL
                .into_iter()
                .map(|p| (p.as_str().to_owned(), Some(secret.clone())))
                .collect(),
            settings: Some(demo_booking_settings()),
        });
    }
}

/// The demo tenant issues its invoices (so they get a number) and maps the usual
/// gateways to the sandbox's payment methods; card and cash need its cashier.
fn demo_booking_settings() -> crate::mapping::BookingSettings {
    let mut s = crate::mapping::BookingSettings {
        document: crate::mapping::DocumentKind::InvoiceIssued,
        cashier_employee: Some("Janez Novak".into()),
        ..Default::default()
    };
    for (gateway, method) in [
        ("bacs", "Transakcijski račun"),
        ("cod", "Gotovina"),
        ("stripe", "STRIPE"),
        ("paypal", "PayPal"),
        ("woocommerce_payments", "Kartica"),
        ("shopify_payments", "Kartica"),
        ("manual", "Transakcijski račun"),
    ] {
        s.payment_methods.insert(gateway.into(), method.into());
    }
    s
}

#[derive(Debug, Clone, Deserialize)]
pub struct IntakeSettings {
    /// Accepted clock difference for signed timestamps (generic platform), seconds.
    pub signature_tolerance: u64,
}

#[derive(Clone, Deserialize)]
pub struct SecuritySettings {
    /// Base64 of 32 random bytes: the AES-256-GCM key sealing secrets at rest.
    pub encryption_key: SecretString,
    /// Id stored with each sealed value, so keys can be rotated.
    pub encryption_key_id: String,
    /// Former keys (id → base64 key), kept to open values sealed before a rotation.
    #[serde(default)]
    pub old_encryption_keys: HashMap<String, SecretString>,
    /// Operator bearer tokens for `/admin` (comma-separated in the environment).
    pub admin_tokens: Vec<SecretString>,
}

impl std::fmt::Debug for SecuritySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecuritySettings")
            .field("encryption_key_id", &self.encryption_key_id)
            .field("admin_tokens", &self.admin_tokens.len())
            .finish_non_exhaustive()
    }
}

/// The key shipped in `config/default.toml` for the demo; start-up warns when it is used.
pub const DEMO_ENCRYPTION_KEY: &str = "ZGVtby1rZXktbm90LWZvci1wcm9kdWN0aW9uLXVzZSE=";

/// The admin token shipped in `config/default.toml`; start-up warns when it is accepted.
pub const DEMO_ADMIN_TOKEN: &str = "demo-admin-token-change-me";

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub body_limit_bytes: usize,
    pub shutdown_timeout: u64,
    /// The request head (line and headers) must arrive within this many ms (else 408).
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// The whole body must arrive within this many ms of the head (else 408, closed).
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// Open connections accepted at once (all HTTP workers together); more wait in the
    /// kernel's accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// HTTP worker threads; 0: one per CPU.
    #[serde(default)]
    pub workers: usize,
}

fn default_header_timeout_ms() -> u64 {
    5000
}
fn default_body_timeout_ms() -> u64 {
    10000
}
fn default_max_connections() -> usize {
    1024
}

/// `[metrics]`: `/metrics` names tenants in its labels, so it can be closed.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// Bearer token `/metrics` requires (`MMC__METRICS__TOKEN`); unset or empty: open.
    pub token: Option<SecretString>,
    /// `host:port` to serve `/metrics` on instead of the main address; unset or empty:
    /// the main address.
    pub listen: Option<String>,
}

impl MetricsSettings {
    /// The configured token, if it is not empty.
    pub fn token(&self) -> Option<SecretString> {
        self.token
            .clone()
            .filter(|t| !t.expose_secret().trim().is_empty())
    }
    /// The separate address, if one is configured.
    pub fn listen(&self) -> Option<&str> {
        self.listen
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
    }
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("token_set", &self.token().is_some())
            .field("listen", &self.listen)
            .finish()
    }
}

fn redis_url_ok(url: &str) -> bool {
    url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueueSettings {
    /// Lease of a running job (s): renewed every quarter of it while the worker lives,
    /// so a killed instance's jobs are handed out again this soon.
    pub visibility_timeout: u64,
    /// TTL (s) of a booking's per-order lock, renewed before each write to Minimax.
    #[serde(default = "default_order_lock_secs")]
    pub order_lock_secs: u64,
    pub max_attempts: u32,
    pub max_age: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub dedupe_ttl: u64,
    pub per_tenant_concurrency: u32,
    pub done_retention: u64,
    /// A finished job's raw payload is dropped this long (s) after completion; its
    /// summary, history and result stay for `done_retention`.
    #[serde(default = "default_payload_retention")]
    pub payload_retention: u64,
}

fn default_payload_retention() -> u64 {
    3 * 24 * 3600
}

fn default_order_lock_secs() -> u64 {
    20
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub poll_interval_ms: u64,
    pub shutdown_timeout: u64,
    pub sweep_interval: u64,
    /// One attempt of a job is stopped after this many seconds and retried (a stuck
    /// call or search must not hold a worker and the job's order forever).
    #[serde(default = "default_attempt_timeout")]
    pub attempt_timeout: u64,
}

fn default_attempt_timeout() -> u64 {
    300
}

/// The directory holding `default.toml`: `MMC_CONFIG_DIR`, else `./config`.
pub fn default_config_dir() -> PathBuf {
    std::env::var_os("MMC_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("config"))
}

impl Settings {
    /// Loads `<dir>/default.toml`, then `<dir>/local.toml` if present, then `extra` if
    /// given (it must exist), then `MMC__…` environment variables.
    pub fn load(dir: &Path, extra: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")))
            .add_source(config::File::from(dir.join("local.toml")).required(false));
        if let Some(extra) = extra {
            builder = builder.add_source(config::File::from(extra));
        }
        let settings: Settings = builder
            .add_source(
                config::Environment::with_prefix("MMC")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("security.admin_tokens")
                    .with_list_parse_key("redis.urls"),
            )
            .build()?
            .try_deserialize()?;
        let mut settings = settings;
        settings.apply_demo();
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the values serde cannot: ranges and relations between keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn check(ok: bool, key: &'static str, problem: &str) -> Result<(), ConfigError> {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    key,
                    problem: problem.to_owned(),
                })
            }
        }
        check(
            !self.server.host.is_empty(),
            "server.host",
            "expected a host name or IP address",
        )?;
        check(
            self.server.body_limit_bytes >= 1024,
            "server.body_limit_bytes",
            "expected at least 1024 bytes",
        )?;
        check(
            self.server.header_timeout_ms >= 100,
            "server.header_timeout_ms",
            "expected at least 100 ms",
        )?;
        check(
            self.server.body_timeout_ms >= 100,
            "server.body_timeout_ms",
            "expected at least 100 ms",
        )?;
        check(
            self.server.max_connections >= 1,
            "server.max_connections",
            "expected at least 1",
        )?;
        check(
            self.metrics
                .token()
                .is_none_or(|t| t.expose_secret().trim().len() >= 16),
            "metrics.token",
            "expected a token of at least 16 characters (or none)",
        )?;
        check(
            self.metrics.listen().is_none_or(|l| {
                l.rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            }),
            "metrics.listen",
            "expected host:port",
        )?;
        check(
            redis_url_ok(&self.redis.url),
            "redis.url",
            "expected a redis://, rediss:// or unix:// URL",
        )?;
        if self.redis.mode == RedisMode::Cluster {
            check(
                !self.redis.urls.is_empty()
                    && self
                        .redis
                        .urls
                        .iter()
                        .all(|u| u.starts_with("redis://") || u.starts_with("rediss://")),
                "redis.urls",
                "expected at least one redis:// or rediss:// seed node URL with redis.mode = \"cluster\"",
            )?;
        }
        check(
            !self.redis.key_prefix.is_empty() && !self.redis.key_prefix.contains(['{', '}', ' ']),
            "redis.key_prefix",
            "expected a non-empty prefix without braces or spaces",
        )?;
        check(
            self.redis.pool_size > 0,
            "redis.pool_size",
            "expected at least 1",
        )?;
        check(
            self.queue.visibility_timeout >= 3,
            "queue.visibility_timeout",
            "expected at least 3 seconds",
        )?;
        check(
            self.worker.attempt_timeout >= 10,
            "worker.attempt_timeout",
            "expected at least 10 seconds",
        )?;
        check(
            self.queue.order_lock_secs >= 10,
            "queue.order_lock_secs",
            "expected at least 10 seconds",
        )?;
        check(
            self.queue.max_attempts >= 1,
            "queue.max_attempts",
            "expected at least 1",
        )?;
        check(
            self.queue.backoff_base_ms > 0
                && self.queue.backoff_base_ms <= self.queue.backoff_max_ms,
            "queue.backoff_base_ms",
            "expected more than 0 and at most queue.backoff_max_ms",
        )?;
        check(
            self.queue.dedupe_ttl >= 7 * 24 * 3600,
            "queue.dedupe_ttl",
            "expected at least 604800 seconds (7 days): shops redeliver for days",
        )?;
        check(
            self.queue.per_tenant_concurrency >= 1,
            "queue.per_tenant_concurrency",
            "expected at least 1",
        )?;
        check(
            self.worker.concurrency >= 1,
            "worker.concurrency",
            "expected at least 1",
        )?;
        check(
            self.worker.poll_interval_ms >= 10,
            "worker.poll_interval_ms",
            "expected at least 10",
        )?;
        check(
            self.worker.sweep_interval >= 1,
            "worker.sweep_interval",
            "expected at least 1",
        )?;
        check(
            crate::crypto::Cipher::new(
                &self.security.encryption_key_id,
                &self.security.encryption_key,
                &self.security.old_encryption_keys,
            )
            .is_ok(),
            "security.encryption_key",
            "expected base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`), also for old_encryption_keys",
        )?;
        check(
            !self.security.encryption_key_id.is_empty()
                && !self.security.encryption_key_id.contains(':'),
            "security.encryption_key_id",
            "expected a short id without ':'",
        )?;
        check(
            self.security
                .admin_tokens
                .iter()
                .all(|t| t.expose_secret().len() >= 16),
            "security.admin_tokens",
            "expected tokens of at least 16 characters",
        )?;
        check(
            self.minimax.rate_per_sec > 0.0 && self.minimax.burst > 0,
            "minimax.rate_per_sec",
            "expected a positive rate and burst",
        )?;
        check(
            self.minimax.connect_timeout_ms > 0 && self.minimax.request_timeout_ms > 0,
            "minimax.request_timeout_ms",
            "expected positive timeouts",
        )?;
        if let Some(problem) = self.reconcile.problems().into_iter().next() {
            return Err(ConfigError::Invalid {
                key: "reconcile",
                problem,
            });
        }
        if let Some(problem) = self.alerts.problems().into_iter().next() {
            return Err(ConfigError::Invalid {
                key: "alerts",
                problem,
            });
        }
        Ok(())
    }

    /// The cipher for secrets at rest (validated in [`Settings::validate`]).
    pub fn cipher(&self) -> Result<crate::crypto::Cipher, crate::crypto::CryptoError> {
        crate::crypto::Cipher::new(
            &self.security.encryption_key_id,
            &self.security.encryption_key,
            &self.security.old_encryption_keys,
        )
    }
}

impl Settings {
    /// The worker's timings, from `[worker]` and `[queue]`.
    pub fn worker_config(&self) -> WorkerConfig {
        let s = self;
        WorkerConfig {
            concurrency: s.worker.concurrency,
            poll_interval: Duration::from_millis(s.worker.poll_interval_ms),
            shutdown_timeout: Duration::from_secs(s.worker.shutdown_timeout),
            sweep_interval: Duration::from_secs(s.worker.sweep_interval),
            visibility_timeout: Duration::from_secs(s.queue.visibility_timeout),
            max_attempts: s.queue.max_attempts,
            max_age: Duration::from_secs(s.queue.max_age),
            backoff_base: Duration::from_millis(s.queue.backoff_base_ms),
            backoff_max: Duration::from_millis(s.queue.backoff_max_ms),
            attempt_timeout: Duration::from_secs(s.worker.attempt_timeout),
        }
    }
}
