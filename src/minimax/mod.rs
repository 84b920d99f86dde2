//! Minimax REST API client (SI, HR, RS) shared by all tenants.
//!
//! One `reqwest` client (rustls) serves every tenant. Per tenant the client guarantees:
//! - at most one token request per expiry across tasks and instances (in-process
//!   single flight + a short Redis lock, token cached in process and in Redis);
//! - after one rejected token request the credentials are blocked (keyed to an HMAC
//!   fingerprint, never the password) and no further token request is made with them;
//! - every API call passes the per-organisation rate limit, the rolling-24 h and monthly
//!   budgets and the `429` pause, all kept in Redis so instances share them;
//! - code lists and code → id lookups are cached per organisation in Redis;
//! - an idempotent call (a read, or a `PUT` made conditional by its `RowVersion`) that
//!   Minimax does not answer is retried a few times within the attempt with a short
//!   jittered backoff, each try admitted by the rate limit; creates and deletes are not;
//! - a streak of unanswered calls opens the organisation's circuit breaker
//!   ([`CircuitState`]): its jobs wait for a probe instead of burning attempts.
//!
//! Errors are one enum, [`MinimaxError`], whose [`MinimaxError::disposition`] tells the
//! worker whether to retry, wait or give up. Secrets never reach logs, errors or `Debug`.

mod breaker;
mod cache;
mod client;
pub mod error;
mod limits;
mod login;
pub mod models;
mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use breaker::{Circuit, CircuitState};
pub use client::{id_from_location, InvoiceAction, OrderAction};
pub use error::{BudgetWindow, Disposition, MinimaxError, ValidationMessage};
pub use limits::Usage;
pub use login::{MinimaxLogin, MinimaxLoginView, TenantCredentials};
pub use token::AuthState;

/// A Minimax country installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Country {
    SI,
    HR,
    RS,
}

impl Country {
    pub const ALL: [Country; 3] = [Country::SI, Country::HR, Country::RS];

    pub fn code(self) -> &'static str {
        match self {
            Country::SI => "SI",
            Country::HR => "HR",
            Country::RS => "RS",
        }
    }

    fn host(self) -> &'static str {
        match self {
            Country::SI => "https://moj.minimax.si",
            Country::HR => "https://moj.minimax.hr",
            Country::RS => "https://moj.minimax.rs",
        }
    }

    /// The real API root (append `api/...`).
    pub fn default_api_base(self) -> String {
        format!("{}/{}/API/", self.host(), self.code())
    }

    /// The real token endpoint.
    pub fn default_token_url(self) -> String {
        format!("{}/{}/AUT/OAuth20/Token", self.host(), self.code())
    }

    /// `minimax.si` works in every country; RS was measured live with `minimax.rs`.
    fn scope(self) -> &'static str {
        match self {
            Country::RS => "minimax.rs",
            Country::SI | Country::HR => "minimax.si",
        }
    }
}

impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Endpoints and client credentials of one country.
#[derive(Deserialize, Clone)]
#[serde(default)]
pub struct CountrySettings {
    /// API root ending in `/API/`; paths `api/...` are appended.
    pub api_base: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

impl CountrySettings {
    pub fn real(country: Country) -> Self {
        CountrySettings {
            api_base: country.default_api_base(),
            token_url: country.default_token_url(),
            client_id: String::new(),
            client_secret: SecretString::default(),
        }
    }
}

impl Default for CountrySettings {
    fn default() -> Self {
        CountrySettings::real(Country::SI)
    }
}

impl std::fmt::Debug for CountrySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountrySettings")
            .field("api_base", &self.api_base)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The built-in fingerprint key; the service replaces it with one derived from its
/// at-rest encryption key unless `minimax.fingerprint_key` is configured.
pub const DEFAULT_FINGERPRINT_KEY: &str = "minimax-connector/credential-fingerprint/v1";

/// The `[minimax]` configuration section.
#[derive(Deserialize, Clone, Debug)]
#[serde(default)]
pub struct MinimaxSettings {
    pub si: CountrySettings,
    pub hr: CountrySettings,
    pub rs: CountrySettings,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// Tokens are renewed this long before `expires_in` runs out.
    pub token_margin_secs: u64,
    /// Calls per second per organisation (token bucket), shared by all instances.
    pub rate_per_sec: f64,
    pub burst: u32,
    /// Longest the client sleeps in-process for the token bucket before giving the job back.
    pub max_rate_wait_ms: u64,
    /// Calls per organisation per rolling 24 h (0 = unlimited).
    pub daily_budget: u32,
    /// Length of the "daily" budget's rolling window in seconds: 86 400 (Minimax's 24 h).
    /// Only tests and demos shorten it, to watch a budget pause end.
    pub daily_budget_window_secs: u64,
    /// Calls per organisation per calendar month, UTC (0 = unlimited).
    pub monthly_budget: u32,
    /// Pause after a `429` without `Retry-After`.
    pub default_pause_secs: u64,
    /// How far ahead blocked credentials push a job (`Disposition::WaitUntil`).
    pub blocked_recheck_secs: u64,
    pub code_list_ttl_secs: u64,
    pub vat_rate_ttl_secs: u64,
    /// Key of the HMAC that fingerprints credentials (set it to a service secret).
    pub fingerprint_key: SecretString,
    /// Extra tries of an idempotent call that Minimax did not answer, within one attempt.
    pub call_retries: u32,
    /// Backoff before the first extra try (doubling, ±50 % jitter).
    pub call_retry_base_ms: u64,
    /// Unanswered calls in a row that open an organisation's circuit (0 = no breaker).
    pub breaker_failures: u32,
    /// First open period; each failed probe doubles it up to `breaker_open_max_ms`.
    pub breaker_open_ms: u64,
    pub breaker_open_max_ms: u64,
}

impl Default for MinimaxSettings {
    fn default() -> Self {
        MinimaxSettings {
            si: CountrySettings::real(Country::SI),
            hr: CountrySettings::real(Country::HR),
            rs: CountrySettings::real(Country::RS),
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            token_margin_secs: 300,
            rate_per_sec: 2.0,
            burst: 5,
            max_rate_wait_ms: 10_000,
            daily_budget: 1_000,
            daily_budget_window_secs: 86_400,
            monthly_budget: 20_000,
            default_pause_secs: 60,
            blocked_recheck_secs: 300,
            code_list_ttl_secs: 86_400,
            vat_rate_ttl_secs: 86_400,
            fingerprint_key: SecretString::from(DEFAULT_FINGERPRINT_KEY),
            call_retries: 2,
            call_retry_base_ms: 50,
            breaker_failures: 5,
            breaker_open_ms: 5_000,
            breaker_open_max_ms: 120_000,
        }
    }
}

impl MinimaxSettings {
    /// The daily budget's rolling window in milliseconds (at least one second).
    pub fn budget_window_ms(&self) -> i64 {
        i64::try_from(self.daily_budget_window_secs.max(1))
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000)
    }

    pub fn country(&self, country: Country) -> &CountrySettings {
        match country {
            Country::SI => &self.si,
            Country::HR => &self.hr,
            Country::RS => &self.rs,
        }
    }

    pub fn country_mut(&mut self, country: Country) -> &mut CountrySettings {
        match country {
            Country::SI => &mut self.si,
            Country::HR => &mut self.hr,
            Country::RS => &mut self.rs,
        }
    }
}

/// A token held in process memory.
struct CachedToken {
    token: SecretString,
    valid_until: std::time::Instant,
}

pub(crate) struct Inner {
    settings: MinimaxSettings,
    http: reqwest::Client,
    redis: crate::redis_conn::RedisPool,
    prefix: String,
    tokens: Mutex<HashMap<String, CachedToken>>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Seals access tokens cached in Redis.
    cipher: crate::crypto::Cipher,
}

impl Inner {
    fn org_key(&self, org: i64, what: &str) -> String {
        format!("{}:{{o:{}}}:{}", self.prefix, org, what)
    }

    async fn conn(&self) -> Result<crate::redis_conn::RedisConn, MinimaxError> {
        Ok(self.redis.get().await?)
    }
}

/// The shared client. Cheap to clone.
#[derive(Clone)]
pub struct Minimax {
    inner: Arc<Inner>,
}

impl Minimax {
    /// The shared client; `cipher` seals the access tokens cached in Redis (the
    /// service's at-rest key).
    pub fn new(
        settings: MinimaxSettings,
        redis: crate::redis_conn::RedisPool,
        key_prefix: String,
        cipher: crate::crypto::Cipher,
    ) -> Result<Self, MinimaxError> {
        if settings.rate_per_sec.is_nan() || settings.rate_per_sec <= 0.0 || settings.burst == 0 {
            return Err(MinimaxError::Config(
                "rate_per_sec and burst must be positive".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            .user_agent(concat!("minimax-connector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MinimaxError::Config(format!("http client: {e}")))?;
        Ok(Minimax {
            inner: Arc::new(Inner {
                settings,
                http,
                redis,
                prefix: key_prefix,
                tokens: Mutex::new(HashMap::new()),
                flights: Mutex::new(HashMap::new()),
                cipher,
            }),
        })
    }

    pub fn settings(&self) -> &MinimaxSettings {
        &self.inner.settings
    }

    /// Calls spent by an organisation and its limits (status pages, metrics).
    pub async fn usage(&self, organisation_id: i64) -> Result<Usage, MinimaxError> {
        self.inner.usage(organisation_id).await
    }

    /// An organisation's circuit breaker (status pages, metrics).
    pub async fn circuit(&self, organisation_id: i64) -> Result<Circuit, MinimaxError> {
        self.inner.circuit(organisation_id).await
    }

    /// Ends an organisation's pause and closes its circuit by hand (the operator knows
    /// Minimax is back); its jobs still need a wake-up (`Queue::wake_waiting`).
    pub async fn resume(&self, organisation_id: i64) -> Result<(), MinimaxError> {
        self.inner.clear_pause(organisation_id).await?;
        self.inner.reset_circuit(organisation_id).await
    }

    /// Whether a tenant's credentials are blocked (status pages, metrics).
    pub async fn auth_state(&self, creds: &TenantCredentials) -> AuthState {
        self.tenant(creds.clone()).auth_state().await
    }

    /// A client bound to one tenant's credentials and organisation.
    pub fn tenant(&self, creds: TenantCredentials) -> TenantClient {
        let country = self.inner.settings.country(creds.country);
        let mut api_base = creds
            .login
            .api_base
            .clone()
            .unwrap_or_else(|| country.api_base.clone());
        if !api_base.ends_with('/') {
            api_base.push('/');
        }
        let token_url = creds
            .login
            .token_url
            .clone()
            .unwrap_or_else(|| country.token_url.clone());
        let client_id = creds
            .login
            .client_id
            .clone()
            .unwrap_or_else(|| country.client_id.clone());
        let client_secret = creds
            .login
            .client_secret
            .clone()
            .unwrap_or_else(|| country.client_secret.clone());
        let fingerprint = token::fingerprint(
            &self.inner.settings.fingerprint_key,
            &[
                &creds.login.username,
                creds.login.password.expose_secret(),
                &client_id,
                client_secret.expose_secret(),
                &token_url,
            ],
        );
        TenantClient {
            inner: self.inner.clone(),
            creds: Arc::new(creds),
            api_base,
            token_url,
            client_id,
            client_secret,
            fingerprint,
        }
    }
}

/// One tenant's view of Minimax: every operation counts against the organisation's
/// rate limit and budget. Cheap to clone.
#[derive(Clone)]
pub struct TenantClient {
    inner: Arc<Inner>,
    creds: Arc<TenantCredentials>,
    api_base: String,
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    fingerprint: String,
}

impl std::fmt::Debug for TenantClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantClient")
            .field("tenant_id", &self.creds.tenant_id)
            .field("organisation_id", &self.creds.organisation_id)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl TenantClient {
    pub fn tenant_id(&self) -> &str {
        &self.creds.tenant_id
    }

    pub fn organisation_id(&self) -> i64 {
        self.creds.organisation_id
    }

    pub fn country(&self) -> Country {
        self.creds.country
    }

    /// The credential fingerprint (HMAC-SHA256 hex), safe to show.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}
