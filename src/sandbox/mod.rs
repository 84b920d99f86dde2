//! An embedded Minimax fake: clearly a sandbox, never a real accounting system.
//!
//! It follows docs/minimax-api.md ("The sandbox"): token endpoint `/{CC}/AUT/OAuth20/Token` (password
//! grant, client credentials in the form or Basic, lockout after N wrong passwords), API
//! under `/{CC}/API/api/...` (paths case-insensitive, bearer check → 401), list
//! envelopes, `code(…)` lookups with 404, `201` + `Location`, `RowVersion` checks with the
//! concurrency message, issuing with numbering and computed values, `409` business errors,
//! per-organisation call limits with `429` + `Retry-After`. It counts what it served and
//! has knobs to inject latency and failures, so the client's guarantees can be tested
//! over real HTTP.
//!
//! Mount it with [`configure`] under any prefix (the main app uses `/sandbox`), or run
//! it on its own listener with [`Sandbox::spawn`].

mod arithmetic;
mod auth;
mod codes;
mod customers;
pub mod demo_shop;
mod invoice_actions;
mod invoices;
mod items;
mod model;
mod orders;
mod routes;
mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::minimax::Country;
pub use arithmetic::{
    document_totals, row_values, DocumentTotals, RowInput, RowValues, PRICE_DECIMALS,
};
use model::{Ctx, Out, User, World};
use wire::{dropped, kind_of, percent_decode, render};

/// Sandbox configuration (`[sandbox]` section). Defaults give a demo SI organisation.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SandboxSettings {
    pub enabled: bool,
    pub username: String,
    pub password: SecretString,
    pub client_id: String,
    pub client_secret: SecretString,
    pub organisation_id: i64,
    pub organisation_name: String,
    pub country: Country,
    pub token_lifetime_secs: u64,
    /// Consecutive wrong passwords after which the user's application is locked.
    pub lockout_after: u32,
    pub daily_limit: u32,
    pub monthly_limit: u32,
    pub latency_ms: u64,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            enabled: false,
            username: "demo@sandbox.invalid".into(),
            password: SecretString::from("sandbox-demo-password"),
            client_id: "sandbox-client".into(),
            client_secret: SecretString::from("sandbox-client-secret"),
            organisation_id: 215967,
            organisation_name: "Demo d.o.o. (SANDBOX)".into(),
            country: Country::SI,
            token_lifetime_secs: 3600,
            lockout_after: 5,
            daily_limit: 1000,
            monthly_limit: 20000,
            latency_ms: 0,
        }
    }
}

/// What the sandbox served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxCounters {
    pub token_requests: u64,
    pub token_rejections: u64,
    /// Every request to `/{CC}/API/...`, including refused ones.
    pub api_calls: u64,
    pub unauthorized: u64,
    pub rate_limited: u64,
    /// Keyed like `GET customers/code()`, `POST issuedinvoices`,
    /// `PUT issuedinvoices/{id}/actions/issue` (lower case, ids and codes elided).
    pub by_kind: BTreeMap<String, u64>,
    pub by_org: BTreeMap<i64, u64>,
}

impl SandboxCounters {
    pub fn kind(&self, kind: &str) -> u64 {
        self.by_kind.get(&kind.to_lowercase()).copied().unwrap_or(0)
    }
    pub fn org(&self, org: i64) -> u64 {
        self.by_org.get(&org).copied().unwrap_or(0)
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer this status instead of handling the request.
    Status(u16),
    /// Handle the request (e.g. perform the create), then answer this status.
    StatusAfterHandling(u16),
    /// Close the connection without a complete answer.
    DropConnection,
    /// Handle the request, then close the connection.
    DropAfterHandling,
    /// Wait, then handle normally.
    Delay(Duration),
    /// Answer `429` with `Retry-After`.
    TooManyRequests { retry_after_secs: u64 },
    /// Answer `409` with the concurrency message, as if another writer had just changed
    /// the record.
    ConcurrencyConflict,
}

/// A failure for the next `times` requests whose path contains `path_contains`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Matched against the lower-cased path after the country, e.g. `api/api/orgs/1/items`
    /// or `aut/oauth20/token`.
    pub path_contains: String,
    pub method: Option<String>,
    pub times: u32,
    pub action: FaultAction,
}

impl Fault {
    pub fn new(path_contains: &str, action: FaultAction) -> Fault {
        Fault {
            path_contains: path_contains.to_lowercase(),
            method: None,
            times: 1,
            action,
        }
    }
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }
    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_uppercase());
        self
    }
}

struct TokenRec {
    username: String,
    expires: DateTime<Utc>,
}

#[derive(Default)]
struct Limits {
    calls: HashMap<i64, VecDeque<DateTime<Utc>>>,
    month: HashMap<i64, (u32, u32, u32)>,
    paused: HashMap<i64, DateTime<Utc>>,
}

struct Shared {
    settings: SandboxSettings,
    world: Mutex<World>,
    tokens: Mutex<HashMap<String, TokenRec>>,
    counters: Mutex<SandboxCounters>,
    faults: Mutex<Vec<Fault>>,
    limits: Mutex<Limits>,
    daily_limit: AtomicU64,
    monthly_limit: AtomicU64,
    latency_ms: AtomicU64,
    token_lifetime_secs: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole sandbox down.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Shared sandbox state: the data, counters and knobs. Cheap to clone.
#[derive(Clone)]
pub struct SandboxState {
    shared: Arc<Shared>,
}

impl SandboxState {
    pub fn new(settings: SandboxSettings) -> SandboxState {
        let mut world = World::new();
        world.add_org(
            settings.organisation_id,
            &settings.organisation_name,
            settings.country,
        );
        world.users.insert(
            settings.username.clone(),
            User {
                password: settings.password.expose_secret().to_string(),
                failures: 0,
                locked: false,
                orgs: vec![settings.organisation_id],
            },
        );
        SandboxState {
            shared: Arc::new(Shared {
                daily_limit: AtomicU64::new(settings.daily_limit.into()),
                monthly_limit: AtomicU64::new(settings.monthly_limit.into()),
                latency_ms: AtomicU64::new(settings.latency_ms),
                token_lifetime_secs: AtomicU64::new(settings.token_lifetime_secs),
                settings,
                world: Mutex::new(world),
                tokens: Mutex::new(HashMap::new()),
                counters: Mutex::new(SandboxCounters::default()),
                faults: Mutex::new(Vec::new()),
                limits: Mutex::new(Limits::default()),
            }),
        }
    }

    pub fn settings(&self) -> &SandboxSettings {
        &self.shared.settings
    }

    // ------------------------------------------------------------- knobs

    pub fn counters(&self) -> SandboxCounters {
        lock(&self.shared.counters).clone()
    }

    pub fn reset_counters(&self) {
        *lock(&self.shared.counters) = SandboxCounters::default();
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Latency added to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.shared
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::Relaxed);
    }

    /// Every call for `org` answers `429` with `Retry-After` for `duration`.
    pub fn pause_org(&self, org: i64, duration: Duration) {
        let until = Utc::now() + chrono::Duration::from_std(duration).unwrap_or_default();
        lock(&self.shared.limits).paused.insert(org, until);
    }

    /// Per-organisation limits (rolling 24 h, calendar month); breach → 429.
    pub fn set_limits(&self, daily: u32, monthly: u32) {
        self.shared
            .daily_limit
            .store(daily.into(), Ordering::Relaxed);
        self.shared
            .monthly_limit
            .store(monthly.into(), Ordering::Relaxed);
    }

    /// Lifetime (`expires_in`) of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared
            .token_lifetime_secs
            .store(lifetime.as_secs(), Ordering::Relaxed);
    }

    /// Makes every token issued so far expired (the next API call gets 401).
    pub fn expire_tokens(&self) {
        let past = Utc::now() - chrono::Duration::seconds(1);
        for rec in lock(&self.shared.tokens).values_mut() {
            rec.expires = past;
        }
    }

    /// Adds an organisation seeded with the same code lists and demo items.
    pub fn add_organisation(&self, id: i64, name: &str, country: Country) {
        lock(&self.shared.world).add_org(id, name, country);
    }

    /// The access tokens handed out so far (tests check they are not stored in clear).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.shared.tokens).keys().cloned().collect()
    }

    /// Adds a VAT rate to an organisation's home-country rates; returns its id.
    pub fn add_vat_rate(
        &self,
        org: i64,
        code: &str,
        percent: rust_decimal::Decimal,
    ) -> Option<i64> {
        lock(&self.shared.world).add_vat_rate(org, code, percent)
    }

    /// Adds (or replaces) a user with access to `orgs`.
    pub fn add_user(&self, username: &str, password: &str, orgs: &[i64]) {
        lock(&self.shared.world).users.insert(
            username.to_string(),
            User {
                password: password.to_string(),
                failures: 0,
                locked: false,
                orgs: orgs.to_vec(),
            },
        );
    }

    /// Re-creates the user's application password: new password, lock lifted.
    pub fn set_password(&self, username: &str, password: &str) {
        if let Some(user) = lock(&self.shared.world).users.get_mut(username) {
            user.password = password.to_string();
            user.failures = 0;
            user.locked = false;
        }
    }

    pub fn is_locked(&self, username: &str) -> bool {
        lock(&self.shared.world)
            .users
            .get(username)
            .is_some_and(|u| u.locked)
    }

    fn records(&self, org: i64, pick: impl Fn(&model::Org) -> Vec<Value>) -> Vec<Value> {
        lock(&self.shared.world)
            .orgs
            .get(&org)
            .map(pick)
            .unwrap_or_default()
    }

    pub fn invoices(&self, org: i64) -> Vec<Value> {
        self.records(org, |o| o.invoices.values().cloned().collect())
    }

    pub fn invoice(&self, org: i64, id: i64) -> Option<Value> {
        lock(&self.shared.world)
            .orgs
            .get(&org)
            .and_then(|o| o.invoices.get(&id).cloned())
    }

    pub fn customers(&self, org: i64) -> Vec<Value> {
        self.records(org, |o| o.customers.values().cloned().collect())
    }

    pub fn items(&self, org: i64) -> Vec<Value> {
        self.records(org, |o| o.items.values().cloned().collect())
    }

    pub fn orders(&self, org: i64) -> Vec<Value> {
        self.records(org, |o| o.orders.values().cloned().collect())
    }

    pub fn contacts(&self, org: i64) -> Vec<Value> {
        self.records(org, |o| o.contacts.values().cloned().collect())
    }

    // ---------------------------------------------------------- internals

    fn take_fault(&self, method: &str, path_key: &str) -> Option<FaultAction> {
        let mut faults = lock(&self.shared.faults);
        let pos = faults.iter().position(|f| {
            f.times > 0
                && path_key.contains(&f.path_contains)
                && f.method.as_deref().is_none_or(|m| m == method)
        })?;
        let action = faults[pos].action.clone();
        faults[pos].times -= 1;
        if faults[pos].times == 0 {
            faults.remove(pos);
        }
        Some(action)
    }

    /// Counts every request that reached a country root, before faults apply.
    fn count(&self, method: &str, rest: &[&str]) {
        let mut counters = lock(&self.shared.counters);
        let area = rest.first().map(|s| s.to_ascii_lowercase());
        if area.as_deref() == Some("aut") {
            counters.token_requests += 1;
            return;
        }
        if rest.get(1).is_some_and(|s| s.eq_ignore_ascii_case("api")) {
            let lower: Vec<String> = rest[2..]
                .iter()
                .map(|s| percent_decode(s).to_lowercase())
                .collect();
            counters.api_calls += 1;
            *counters.by_kind.entry(kind_of(method, &lower)).or_insert(0) += 1;
            if lower.first().map(String::as_str) == Some("orgs") {
                if let Some(org) = lower.get(1).and_then(|o| o.parse::<i64>().ok()) {
                    *counters.by_org.entry(org).or_insert(0) += 1;
                }
            }
        }
    }

    fn api(
        &self,
        req: &HttpRequest,
        country: Country,
        prefix: &str,
        tail: &[&str],
        body: &[u8],
    ) -> Out {
        let method = req.method().as_str().to_uppercase();
        let decoded: Vec<String> = tail.iter().map(|s| percent_decode(s)).collect();
        let lower: Vec<String> = decoded.iter().map(|s| s.to_lowercase()).collect();
        let bearer = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let username = bearer.and_then(|t| {
            lock(&self.shared.tokens)
                .get(t)
                .filter(|r| r.expires > Utc::now())
                .map(|r| r.username.clone())
        });
        let Some(username) = username else {
            lock(&self.shared.counters).unauthorized += 1;
            return Out::message(401, "Authorization has been denied for this request.");
        };
        if lower.first().map(String::as_str) == Some("orgs") {
            if let Some(org) = lower.get(1).and_then(|o| o.parse::<i64>().ok()) {
                if let Some(retry_after) = self.over_limit(org) {
                    lock(&self.shared.counters).rate_limited += 1;
                    let mut out = Out::message(
                        429,
                        "SANDBOX: API call limit for this organisation reached (the real status and body are unknown).",
                    );
                    out.retry_after = Some(retry_after);
                    return out;
                }
            }
        }
        let query: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let info = req.connection_info();
        let ctx = Ctx {
            username: &username,
            api_root: format!(
                "{}://{}{}/{}/API",
                info.scheme(),
                info.host(),
                prefix,
                country.code()
            ),
            query: &query,
            now: chrono::Local::now().naive_local(),
        };
        lock(&self.shared.world).handle(&ctx, &method, &lower, &decoded, body)
    }
}

fn parse_country(seg: &str) -> Option<Country> {
    Country::ALL
        .into_iter()
        .find(|c| c.code().eq_ignore_ascii_case(seg))
}

async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<SandboxState>,
) -> HttpResponse {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let found = (0..segs.len().saturating_sub(1)).find(|&i| {
        parse_country(segs[i]).is_some()
            && (segs[i + 1].eq_ignore_ascii_case("api") || segs[i + 1].eq_ignore_ascii_case("aut"))
    });
    let Some(pos) = found else {
        return render(Out::iis_not_found());
    };
    let Some(country) = parse_country(segs[pos]) else {
        return render(Out::iis_not_found());
    };
    let prefix = if pos == 0 {
        String::new()
    } else {
        format!("/{}", segs[..pos].join("/"))
    };
    let method = req.method().as_str().to_uppercase();
    let path_key = segs[pos + 1..].join("/").to_lowercase();

    state.count(&method, &segs[pos + 1..]);
    let latency = state.shared.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let fault = state.take_fault(&method, &path_key);
    match &fault {
        Some(FaultAction::Status(status)) => {
            return render(Out::message(*status, "SANDBOX: injected failure."))
        }
        Some(FaultAction::DropConnection) => return dropped(),
        Some(FaultAction::ConcurrencyConflict) => {
            return render(Out::json(
                409,
                json!([{"Message": model::CONCURRENCY_MESSAGE, "PropertyName": "RowVersion"}]),
            ))
        }
        Some(FaultAction::Delay(d)) => tokio::time::sleep(*d).await,
        Some(FaultAction::TooManyRequests { retry_after_secs }) => {
            let mut out = Out::message(429, "SANDBOX: injected 429.");
            out.retry_after = Some(*retry_after_secs);
            return render(out);
        }
        _ => {}
    }

    let area = segs[pos + 1].to_ascii_lowercase();
    let rest = &segs[pos + 2..];
    let out = if area == "aut" {
        let is_token = rest.len() == 2
            && rest[0].eq_ignore_ascii_case("oauth20")
            && rest[1].eq_ignore_ascii_case("token");
        if !is_token {
            Out::iis_not_found()
        } else if method != "POST" {
            Out::message(405, "The requested resource does not support this method.")
        } else {
            state.token_endpoint(&req, &body)
        }
    } else if rest.first().is_some_and(|s| s.eq_ignore_ascii_case("api")) {
        state.api(&req, country, &prefix, &rest[1..], &body)
    } else {
        Out::iis_not_found()
    };

    match fault {
        Some(FaultAction::StatusAfterHandling(status)) => render(Out::message(
            status,
            "SANDBOX: injected failure after handling.",
        )),
        Some(FaultAction::DropAfterHandling) => dropped(),
        _ => render(out),
    }
}

/// Registers the sandbox routes; mount it under any prefix, e.g.
/// `web::scope("/sandbox").configure(|c| sandbox::configure(c, state))`.
pub fn configure(cfg: &mut web::ServiceConfig, state: SandboxState) {
    cfg.app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
        .route("/{tail:.*}", web::route().to(dispatch));
}

/// The sandbox on its own listener (tests, local experiments).
pub struct Sandbox;

impl Sandbox {
    /// Starts on `127.0.0.1:0` inside the current Tokio runtime.
    pub async fn spawn(settings: SandboxSettings) -> std::io::Result<SandboxHandle> {
        let state = SandboxState::new(settings);
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            let s = app_state.clone();
            App::new().configure(move |cfg| configure(cfg, s))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(SandboxHandle {
            base_url: format!("http://127.0.0.1:{port}"),
            state,
            server: handle,
        })
    }
}

/// A running sandbox. Derefs to [`SandboxState`] for counters and knobs.
pub struct SandboxHandle {
    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub base_url: String,
    pub state: SandboxState,
    server: ServerHandle,
}

impl SandboxHandle {
    /// `…/{CC}/API/` — the `api_base` for the client.
    pub fn api_base(&self, country: Country) -> String {
        format!("{}/{}/API/", self.base_url, country.code())
    }

    /// `…/{CC}/AUT/OAuth20/Token`.
    pub fn token_url(&self, country: Country) -> String {
        format!("{}/{}/AUT/OAuth20/Token", self.base_url, country.code())
    }

    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

impl std::ops::Deref for SandboxHandle {
    type Target = SandboxState;
    fn deref(&self) -> &SandboxState {
        &self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_names_kinds() {
        assert_eq!(percent_decode("code(A%2FB%20c)"), "code(A/B c)");
        assert_eq!(percent_decode("100%"), "100%");
        let lower: Vec<String> = ["orgs", "1", "customers", "code(x)"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(kind_of("GET", &lower), "get customers/code()");
    }
}
