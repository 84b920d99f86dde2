//! Recovery without waiting, tried as an operator would: a killed instance's tenants
//! run again within seconds of a restart; a fixed credential, an unblock, a restart
//! with a raised budget book at once; a Minimax outage longer than the attempt budget
//! dead-letters nothing (circuit breaker, retries until `max_age`); a flaky Minimax
//! costs little time (retries inside the attempt); a Redis outage writes a bounded
//! number of log lines. Real Redis, the sandbox over HTTP, the real binary where a
//! process must die.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minimax_connector::config::Settings;
use minimax_connector::minimax::Country;
use minimax_connector::queue::{JobState, Queue};
use minimax_connector::sandbox::{Fault, FaultAction, Sandbox, SandboxHandle, SandboxSettings};
use serde_json::{json, Value};

const TENANT: &str = "shop-rec";
const ADMIN: &str = "demo-admin-token-change-me";
const BIN: &str = env!("CARGO_BIN_EXE_minimax-connector");

/// Booking settings: issued invoices and the sandbox's payment methods.
fn booking() -> Value {
    json!({
        "document": "invoice_issued",
        "cashier_employee": "Janez Novak",
        "payment_methods": {"bacs": "Transakcijski račun", "cod": "Gotovina", "stripe": "STRIPE", "manual": "Transakcijski račun"}
    })
}

/// The generic example order, made distinct (order, customer and items) by `i`, so
/// every booking is cold.
fn order(i: usize) -> Value {
    let mut v: Value = serde_json::from_str(include_str!(
        "../../../docs/examples/generic-order-paid.json"
    ))
    .unwrap();
    let o = &mut v["order"];
    o["shop_order_id"] = json!(format!("R{i}"));
    o["number"] = json!(format!("REC-{i}"));
    o["customer"]["shop_customer_id"] = json!(format!("C{i}"));
    o["customer"]["email"] = json!(format!("buyer{i}@example.si"));
    o["billing"]["email"] = json!(format!("buyer{i}@example.si"));
    for line in o["lines"].as_array_mut().unwrap() {
        let sku = format!("{}-{i}", line["sku"].as_str().unwrap());
        line["sku"] = json!(sku);
    }
    v
}

/// The tenant's admin JSON for the sandbox, with `password` (`None`: the right one).
fn tenant_json(sb: &SandboxHandle, password: Option<&str>) -> Value {
    let s = sb.state.settings();
    json!({
        "country": "SI",
        "organisation_id": s.organisation_id,
        "minimax": {
            "username": s.username,
            "password": password.unwrap_or(secrecy::ExposeSecret::expose_secret(&s.password)),
            "client_id": s.client_id,
            "client_secret": secrecy::ExposeSecret::expose_secret(&s.client_secret),
            "api_base": sb.api_base(Country::SI),
            "token_url": sb.token_url(Country::SI),
        },
        "webhook_secrets": {"woocommerce": helpers::SECRET, "shopify": helpers::SECRET, "generic": helpers::SECRET},
        "settings": booking(),
    })
}

/// Test settings: the sandbox takes more than Minimax's 2 calls/s.
fn settings(name: &str) -> Settings {
    let mut s = helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix(name));
    s.minimax.rate_per_sec = 500.0;
    s.minimax.burst = 500;
    s
}

async fn post_order(client: &reqwest::Client, base: &str, i: usize) -> String {
    let body = serde_json::to_vec(&order(i)).unwrap();
    let h = helpers::reqwest_headers(&helpers::generic_headers(
        &format!("msg-{i}"),
        chrono::Utc::now().timestamp(),
        &body,
        helpers::SECRET,
    ));
    let res = client
        .post(format!("{base}/webhooks/generic/{TENANT}"))
        .headers(h)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    res.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until every job is done (panics naming the first that is not).
async fn all_done(q: &Queue, ids: &[String], timeout: Duration) {
    let ok = helpers::eventually(timeout, || async {
        for id in ids {
            let rec = q.get(TENANT, id).await.unwrap()?;
            assert_ne!(rec.state, JobState::Dead, "dead: {:?}", rec.last_error);
            if rec.state != JobState::Done {
                return None;
            }
        }
        Some(())
    })
    .await;
    if ok.is_none() {
        for id in ids {
            let rec = q.get(TENANT, id).await.unwrap().unwrap();
            assert_eq!(rec.state, JobState::Done, "{id}: {:?}", rec.last_error);
        }
    }
}

/// Every order `0..n` booked as exactly one invoice.
fn booked_once(sb: &SandboxHandle, n: usize) {
    let org = sb.state.settings().organisation_id;
    let invoices = sb.state.invoices(org);
    for i in 0..n {
        let count = invoices
            .iter()
            .filter(|inv| inv["DocumentReference"] == format!("REC-{i}"))
            .count();
        assert_eq!(count, 1, "order REC-{i} booked {count} times");
    }
    assert_eq!(invoices.len(), n);
}

async fn admin_status(client: &reqwest::Client, base: &str) -> Value {
    client
        .get(format!("{base}/admin/tenants/{TENANT}/status"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

// ------------------------------------------------------------- killed instance

/// The binary as a child process with the default configuration, except what a test
/// machine needs (port, prefix, no demo, the sandbox's rate).
fn spawn_binary(port: u16, prefix: &str) -> std::process::Child {
    Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MMC__SERVER__PORT", port.to_string())
        .env("MMC__DEMO__ENABLED", "false")
        .env("MMC__REDIS__URL", helpers::redis_url())
        .env("MMC__REDIS__KEY_PREFIX", prefix)
        .env("MMC__MINIMAX__RATE_PER_SEC", "500")
        .env("MMC__MINIMAX__BURST", "500")
        .env("MMC__TELEMETRY__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let up = helpers::eventually(Duration::from_secs(30), || async {
        client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .await;
    assert!(up.is_some(), "the binary did not become ready");
}

#[tokio::test]
async fn a_killed_instance_frees_its_tenants_within_seconds_of_a_restart() {
    let sb = Sandbox::spawn(SandboxSettings::default()).await.unwrap();
    // Slow enough that bookings are in flight when the process dies.
    sb.state.set_latency(Duration::from_millis(150));
    let mut s = settings("killed");
    s.redis.timeout_ms = 2000;
    helpers::put_tenant(&s, TENANT, tenant_json(&sb, None)).await;
    let prefix = s.redis.key_prefix.clone();
    let q = helpers::queue(&prefix);
    let client = reqwest::Client::new();

    let port = helpers::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut first = spawn_binary(port, &prefix);
    wait_ready(&client, &base).await;
    let n = 4;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(post_order(&client, &base, i).await);
    }
    // per_tenant_concurrency (2) jobs in flight, the others queued behind them.
    let busy = helpers::eventually(Duration::from_secs(20), || async {
        let c = q.counts(TENANT).await.unwrap();
        (c.running == 2 && sb.state.counters().api_calls >= 3).then_some(())
    })
    .await;
    assert!(busy.is_some(), "two bookings should be in flight");
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let in_flight: Vec<String> = q.list(TENANT, JobState::Running, 0, 10).await.unwrap();
    assert_eq!(in_flight.len(), 2);

    let restarted = Instant::now();
    let mut second = spawn_binary(helpers::free_port(), &prefix);
    // The first job of the tenant that runs again: a queued one started, or an
    // in-flight one handed out again (its history says the lease expired).
    let first_run = helpers::eventually(Duration::from_secs(30), || async {
        for id in &ids {
            let rec = q.get(TENANT, id).await.unwrap().unwrap();
            let again = if in_flight.contains(id) {
                rec.history.iter().any(|h| h.outcome == "lease_expired") && rec.attempts >= 2
            } else {
                rec.state != JobState::Queued
            };
            if again {
                return Some(restarted.elapsed());
            }
        }
        None
    })
    .await
    .expect("no job of the tenant ran after the restart");
    all_done(&q, &ids, Duration::from_secs(90)).await;
    let all = restarted.elapsed();
    println!(
        "killed instance: first job of the tenant running {:.1} s after the restart, all {n} booked after {:.1} s",
        first_run.as_secs_f64(),
        all.as_secs_f64()
    );
    assert!(
        first_run <= Duration::from_secs(10),
        "first job ran {first_run:?} after the restart"
    );
    booked_once(&sb, n);
    second.kill().unwrap();
    second.wait().unwrap();
}

// ------------------------------------------------------------------ wake-ups

struct App {
    app: helpers::TestApp,
    sb: SandboxHandle,
    client: reqwest::Client,
    settings: Settings,
}

async fn app_with(settings: Settings, password: Option<&str>) -> App {
    let sb = Sandbox::spawn(SandboxSettings::default()).await.unwrap();
    helpers::put_tenant(&settings, TENANT, tenant_json(&sb, password)).await;
    let app = helpers::spawn_app(settings.clone()).await;
    App {
        app,
        sb,
        client: reqwest::Client::new(),
        settings,
    }
}

impl App {
    async fn post(&self, i: usize) -> String {
        post_order(&self.client, &self.app.base, i).await
    }

    async fn wait_state(&self, id: &str, state: JobState) -> minimax_connector::queue::JobRecord {
        helpers::eventually(Duration::from_secs(20), || async {
            self.app
                .queue
                .get(TENANT, id)
                .await
                .unwrap()
                .filter(|r| r.state == state)
        })
        .await
        .unwrap_or_else(|| panic!("job {id} did not become {state:?}"))
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .client
            .request(method, self.app.url(path))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }
}

/// The time from `since` until `id` is done (at most 20 s, else it panics).
async fn time_to_done(a: &App, id: &str, since: Instant) -> Duration {
    a.wait_state(id, JobState::Done).await;
    since.elapsed()
}

#[tokio::test]
async fn fixing_credentials_or_unblocking_books_the_waiting_jobs_at_once() {
    // Default blocked_recheck_secs (300 s): only the wake-up can make this quick.
    let s = settings("wake-creds");
    let right =
        secrecy::ExposeSecret::expose_secret(&SandboxSettings::default().password).to_string();
    let a = app_with(s, Some("wrong-password")).await;
    let id = a.post(0).await;
    let rec = a.wait_state(&id, JobState::Delayed).await;
    assert!(
        rec.last_error
            .as_deref()
            .unwrap_or("")
            .contains("credentials"),
        "{:?}",
        rec.last_error
    );
    // PATCH the right password.
    let fixed = Instant::now();
    a.admin(
        reqwest::Method::PATCH,
        &format!("/admin/tenants/{TENANT}"),
        Some(json!({"minimax": {"password": right}})),
    )
    .await;
    let after_patch = time_to_done(&a, &id, fixed).await;

    // Blocked again (a wrong password stored), then the sandbox's password is set to
    // the stored one and an operator unblocks: the waiting job books at once.
    a.admin(
        reqwest::Method::PATCH,
        &format!("/admin/tenants/{TENANT}"),
        Some(json!({"minimax": {"password": "re-created-password"}})),
    )
    .await;
    let id2 = a.post(1).await;
    a.wait_state(&id2, JobState::Delayed).await;
    let user = a.sb.state.settings().username.clone();
    a.sb.state.set_password(&user, "re-created-password");
    let unblocked = Instant::now();
    a.admin(
        reqwest::Method::POST,
        &format!("/admin/tenants/{TENANT}/unblock"),
        None,
    )
    .await;
    let after_unblock = time_to_done(&a, &id2, unblocked).await;
    println!(
        "booked {:.2} s after the credential PATCH, {:.2} s after the unblock (blocked_recheck_secs = {})",
        after_patch.as_secs_f64(),
        after_unblock.as_secs_f64(),
        a.settings.minimax.blocked_recheck_secs
    );
    assert!(after_patch <= Duration::from_secs(5), "{after_patch:?}");
    assert!(after_unblock <= Duration::from_secs(5), "{after_unblock:?}");
}

#[tokio::test]
async fn a_restart_with_a_raised_budget_books_the_waiting_jobs_at_once() {
    let mut s = settings("wake-budget");
    // A cold booking needs more calls than this: the job waits for the next day.
    s.minimax.daily_budget = 3;
    let a = app_with(s.clone(), None).await;
    let id = a.post(0).await;
    let rec = a.wait_state(&id, JobState::Delayed).await;
    assert!(
        rec.last_error.as_deref().unwrap_or("").contains("budget"),
        "{:?}",
        rec.last_error
    );
    assert!(rec.next_attempt_at.unwrap() > chrono::Utc::now() + chrono::Duration::hours(1));
    let App { app, sb, .. } = a;
    drop(app);
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.minimax.daily_budget = 1000;
    let restarted = Instant::now();
    let app = helpers::spawn_app(s.clone()).await;
    let a = App {
        app,
        sb,
        client: reqwest::Client::new(),
        settings: s,
    };
    let took = time_to_done(&a, &id, restarted).await;
    println!(
        "booked {:.2} s after a restart with a raised budget",
        took.as_secs_f64()
    );
    assert!(took <= Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_pause_ended_early_by_an_operator_books_at_once() {
    let a = app_with(settings("wake-pause"), None).await;
    let org = a.sb.state.settings().organisation_id;
    // Minimax answers 429 with Retry-After of an hour: the organisation pauses.
    a.sb.state.pause_org(org, Duration::from_secs(3600));
    let id = a.post(0).await;
    let rec = a.wait_state(&id, JobState::Delayed).await;
    assert!(rec.next_attempt_at.unwrap() > chrono::Utc::now() + chrono::Duration::minutes(30));
    let status = admin_status(&a.client, &a.app.base).await;
    assert!(status["budget"]["paused_until"].is_string(), "{status}");
    // Minimax lifts its limit early; the operator resumes the tenant.
    a.sb.state.pause_org(org, Duration::ZERO);
    let resumed = Instant::now();
    let body = a
        .admin(
            reqwest::Method::POST,
            &format!("/admin/tenants/{TENANT}/resume"),
            None,
        )
        .await;
    assert!(body["was_paused_until"].is_string(), "{body}");
    let took = time_to_done(&a, &id, resumed).await;
    println!(
        "booked {:.2} s after a 1 h pause was ended early",
        took.as_secs_f64()
    );
    assert!(took <= Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn retry_dead_after_a_settings_fix_books_at_once() {
    let mut s = settings("wake-dead");
    s.queue.backoff_base_ms = 50;
    s.queue.backoff_max_ms = 200;
    let a = app_with(s, None).await;
    // A payment gateway without a mapping is a setting to fix: dead at once.
    let mut o = order(0);
    o["order"]["payment_method"]["id"] = json!("unmapped-gateway");
    let body = serde_json::to_vec(&o).unwrap();
    let h = helpers::reqwest_headers(&helpers::generic_headers(
        "msg-dead",
        chrono::Utc::now().timestamp(),
        &body,
        helpers::SECRET,
    ));
    let res = a
        .client
        .post(a.app.url(&format!("/webhooks/generic/{TENANT}")))
        .headers(h)
        .body(body)
        .send()
        .await
        .unwrap();
    let id = res.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec = a.wait_state(&id, JobState::Dead).await;
    println!("dead as expected: {:?}", rec.last_error);
    let mut settings = booking();
    settings["payment_methods"]["unmapped-gateway"] = json!("Transakcijski račun");
    a.admin(
        reqwest::Method::PATCH,
        &format!("/admin/tenants/{TENANT}"),
        Some(json!({ "settings": settings })),
    )
    .await;
    let fixed = Instant::now();
    a.admin(
        reqwest::Method::POST,
        &format!("/admin/tenants/{TENANT}/jobs/retry-dead"),
        None,
    )
    .await;
    let took = time_to_done(&a, &id, fixed).await;
    println!("booked {:.2} s after retry-dead", took.as_secs_f64());
    assert!(took <= Duration::from_secs(5), "{took:?}");
}

// ---------------------------------------------------------- Minimax outages

#[tokio::test]
async fn an_outage_longer_than_the_attempt_budget_dead_letters_nothing() {
    let mut s = settings("outage");
    // Time-scaled: max_attempts × backoff_max = 3 × 300 ms, the outage lasts 8 s.
    s.queue.max_attempts = 3;
    s.queue.backoff_base_ms = 50;
    s.queue.backoff_max_ms = 300;
    s.minimax.breaker_open_ms = 300;
    s.minimax.breaker_open_max_ms = 1500;
    s.minimax.call_retry_base_ms = 20;
    let a = app_with(s, None).await;
    let org = a.sb.state.settings().organisation_id;
    // Warm the token (the outage is of the API; the token endpoint stays up).
    a.wait_state(&a.post(100).await, JobState::Done).await;

    a.sb.state
        .inject(Fault::new("api/", FaultAction::Status(503)).times(u32::MAX));
    let n = 20;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(a.post(i).await);
    }
    let outage = Duration::from_secs(8);
    let started = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    let mut metrics_open = false;
    while started.elapsed() < outage {
        let status = admin_status(&a.client, &a.app.base).await;
        seen.insert(
            status["minimax_circuit"]["state"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        let metrics = a
            .client
            .get(a.app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics_open |= metrics.lines().any(|l| {
            l.starts_with("mmc_minimax_circuit{")
                && l.contains(&format!("tenant=\"{TENANT}\""))
                && (l.contains("state=\"open\"") || l.contains("state=\"half_open\""))
                && l.ends_with(" 1")
        });
        let dead = a.app.queue.counts(TENANT).await.unwrap().dead;
        assert_eq!(dead, 0, "a job was dead-lettered during the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let calls_during = a.sb.state.counters().api_calls;
    a.sb.state.clear_faults();
    let recovered = Instant::now();
    all_done(&a.app.queue, &ids, Duration::from_secs(60)).await;
    let took = recovered.elapsed();
    let status = admin_status(&a.client, &a.app.base).await;
    let max_attempts = {
        let mut m = 0;
        for id in &ids {
            m = m.max(a.app.queue.get(TENANT, id).await.unwrap().unwrap().attempts);
        }
        m
    };
    println!(
        "outage 8 s (> max_attempts × backoff_max = 0.9 s): 0 dead, {n} booked once {:.2} s after recovery; \
         circuit states seen {seen:?}; {calls_during} API calls during the outage; most attempts of a job {max_attempts}",
        took.as_secs_f64()
    );
    assert_eq!(a.app.queue.counts(TENANT).await.unwrap().dead, 0);
    assert!(seen.contains("open"), "{seen:?}");
    assert!(metrics_open, "the open circuit is not in the metrics");
    assert_eq!(status["minimax_circuit"]["state"], "closed", "{status}");
    let org_invoices: Vec<Value> =
        a.sb.state
            .invoices(org)
            .into_iter()
            .filter(|i| i["DocumentReference"] != "REC-100")
            .collect();
    for i in 0..n {
        let c = org_invoices
            .iter()
            .filter(|inv| inv["DocumentReference"] == format!("REC-{i}"))
            .count();
        assert_eq!(c, 1, "REC-{i} booked {c} times");
    }
    assert_eq!(org_invoices.len(), n);
}

/// Books `n` cold orders into a fresh sandbox, with a fault on every fifth API call
/// (alternating 500 and a dropped connection) when `flaky`; returns the wall time
/// and the faults injected.
async fn book_cold_orders(n: usize, flaky: bool) -> (Duration, u64) {
    let mut s = settings(if flaky { "flaky" } else { "steady" });
    s.redis.timeout_ms = 2000;
    // The drill's setting: eight bookings of the tenant at once.
    s.queue.per_tenant_concurrency = 8;
    let a = app_with(s, None).await;
    // Answer times of the order of Minimax's, so the comparison is about the calls
    // (the default job backoff stays: failures that outlast the in-attempt retries
    // pay it, as in production).
    a.sb.state.set_latency(Duration::from_millis(100));
    let stop = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(AtomicU64::new(0));
    let injector = flaky.then(|| {
        let state = a.sb.state.clone();
        let stop = stop.clone();
        let injected = injected.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let calls = state.counters().api_calls;
                // One fault armed for every five calls made (the next call takes it).
                while injected.load(Ordering::Relaxed) < calls / 5 + 1 {
                    let k = injected.fetch_add(1, Ordering::Relaxed);
                    let action = if k.is_multiple_of(2) {
                        FaultAction::Status(500)
                    } else {
                        FaultAction::DropConnection
                    };
                    state.inject(Fault::new("api/", action));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    });
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(a.post(i).await);
    }
    all_done(&a.app.queue, &ids, Duration::from_secs(300)).await;
    let took = started.elapsed();
    let mut retried: std::collections::BTreeMap<String, usize> = Default::default();
    for id in &ids {
        for h in a.app.queue.get(TENANT, id).await.unwrap().unwrap().history {
            if let Some(e) = h.error {
                *retried.entry(e.chars().take(90).collect()).or_default() += 1;
            }
        }
    }
    println!("failed attempts by error: {retried:#?}");
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = injector {
        t.await.unwrap();
    }
    a.sb.state.clear_faults();
    booked_once(&a.sb, n);
    let faults = injected.load(Ordering::Relaxed);
    (took, faults.saturating_sub(1))
}

#[tokio::test]
async fn with_a_fifth_of_the_calls_failing_cold_orders_book_within_three_times_the_fault_free_time()
{
    let n = 50;
    let (steady, _) = book_cold_orders(n, false).await;
    let (flaky, faults) = book_cold_orders(n, true).await;
    let ratio = flaky.as_secs_f64() / steady.as_secs_f64();
    println!(
        "{n} cold orders: fault-free {:.2} s, with every 5th API call failing (500 / dropped; {faults} faults) {:.2} s, ratio {ratio:.2}",
        steady.as_secs_f64(),
        flaky.as_secs_f64()
    );
    assert!(faults > 0);
    assert!(ratio <= 3.0, "ratio {ratio:.2}");
}

// ------------------------------------------------------------------- log noise

#[tokio::test]
async fn a_redis_outage_writes_a_bounded_number_of_log_lines() {
    let mut redis = helpers::RedisServer::start();
    let port = helpers::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MMC__SERVER__PORT", port.to_string())
        .env("MMC__DEMO__ENABLED", "false")
        .env("MMC__REDIS__URL", redis.url())
        .env("MMC__REDIS__KEY_PREFIX", helpers::unique_prefix("noise"))
        .env("MMC__TELEMETRY__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let before = lines.lock().unwrap().len();

    redis.stop();
    let outage = Instant::now();
    let (mut webhooks, mut probes) = (0, 0);
    while outage.elapsed() < Duration::from_secs(8) {
        let body = serde_json::to_vec(&order(webhooks)).unwrap();
        let h = helpers::reqwest_headers(&helpers::generic_headers(
            &format!("n-{webhooks}"),
            chrono::Utc::now().timestamp(),
            &body,
            helpers::SECRET,
        ));
        let res = client
            .post(format!("{base}/webhooks/generic/{TENANT}"))
            .headers(h)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        webhooks += 1;
        let res = client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        probes += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    redis.restart();
    wait_ready(&client, &base).await;
    // The worker notices Redis is back within a poll or two.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let lines = lines.lock().unwrap();
    let during: Vec<&String> = lines[before..]
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .collect();
    let count = |m: &str| lines[before..].iter().filter(|l| l.contains(m)).count();
    println!(
        "Redis outage 8 s, {webhooks} rejected webhooks, {probes} readiness probes: {} WARN/ERROR lines (down {}, back {}, not ready {})",
        during.len(),
        count("dependency down"),
        count("dependency back"),
        count("\"not ready\""),
    );
    for l in &during {
        println!("  {l}");
    }
    assert!(webhooks > 50 && probes > 50);
    assert!(during.len() <= 12, "{} lines", during.len());
    assert_eq!(count("\"dependency down\""), 1);
    assert_eq!(count("\"not ready\""), 1);
    assert!(count("\"dependency back\"") >= 1);
}

// ------------------------------------------------------------ queue policies

fn worker_cfg() -> minimax_connector::worker::WorkerConfig {
    minimax_connector::worker::WorkerConfig {
        concurrency: 4,
        poll_interval: Duration::from_millis(20),
        shutdown_timeout: Duration::from_secs(5),
        sweep_interval: Duration::from_secs(60),
        visibility_timeout: Duration::from_secs(3),
        max_attempts: 3,
        max_age: Duration::from_secs(3600),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(600),
        attempt_timeout: Duration::from_secs(300),
    }
}

#[test]
fn minimax_being_unavailable_retries_until_max_age_whatever_the_attempt_count() {
    use minimax_connector::queue::{ClaimedJob, Finish};
    use minimax_connector::worker::{decide, JobError};
    let c = worker_cfg();
    let now = chrono::Utc::now();
    let job = |age_secs: i64, attempt: u32| ClaimedJob {
        id: "j".into(),
        tenant: "t".into(),
        payload: "{}".into(),
        attempt,
        created_at: now - chrono::Duration::seconds(age_secs),
        lease: "l".into(),
    };
    let unavailable = || JobError::Unavailable {
        reason: "HTTP 503".into(),
        not_before: None,
    };
    // Past max_attempts: still retried, counted, and never later than max_age.
    match decide(&job(3500, 40), unavailable(), &c, now) {
        Finish::Delay { at, counts, .. } => {
            assert!(counts);
            assert!(at <= now + chrono::Duration::seconds(100), "{at}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    // At max_age: dead with the reason.
    assert!(matches!(
        decide(&job(3600, 2), unavailable(), &c, now),
        Finish::Dead { reason } if reason.contains("HTTP 503")
    ));
    // Other retryable failures keep the attempt limit.
    assert!(matches!(
        decide(
            &job(10, 3),
            JobError::Retry {
                reason: "storage".into(),
                not_before: None
            },
            &c,
            now
        ),
        Finish::Dead { .. }
    ));
}

#[tokio::test]
async fn waking_a_tenant_moves_its_waiting_jobs_up_and_leaves_backoffs_alone() {
    use minimax_connector::queue::{Claim, Finish};
    let q = helpers::queue(&helpers::unique_prefix("wake"));
    let t = "shop-wake";
    let waiting = q.enqueue(t, None, "{}", None).await.unwrap().id;
    let backoff = q.enqueue(t, None, "{}", None).await.unwrap().id;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    for (id, counts) in [(&waiting, false), (&backoff, true)] {
        let Claim::Job(job) = q.claim(t, 10_000).await.unwrap() else {
            panic!("no job")
        };
        assert_eq!(&job.id, id);
        let f = Finish::Delay {
            at: later,
            error: "x".into(),
            counts,
        };
        assert!(q.finish(&job, 0, &f).await.unwrap());
    }
    assert_eq!(q.wake_waiting(t).await.unwrap(), 1);
    assert_eq!(
        q.get(t, &waiting).await.unwrap().unwrap().state,
        JobState::Queued
    );
    assert_eq!(
        q.get(t, &backoff).await.unwrap().unwrap().state,
        JobState::Delayed
    );
    let now = minimax_connector::queue::now_ms();
    assert!(q
        .due_tenants(now + 1, 10)
        .await
        .unwrap()
        .contains(&t.to_owned()));
}

#[tokio::test]
async fn a_job_longer_than_its_short_lease_runs_once_because_the_lease_is_renewed() {
    use minimax_connector::worker::{JobError, JobHandler, WorkerPool};
    struct Slow(Arc<AtomicU64>);
    #[async_trait::async_trait]
    impl JobHandler for Slow {
        async fn handle(
            &self,
            _job: &minimax_connector::queue::ClaimedJob,
        ) -> Result<Value, JobError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(7)).await;
            Ok(json!({}))
        }
    }
    let q = helpers::queue(&helpers::unique_prefix("renew"));
    let runs = Arc::new(AtomicU64::new(0));
    let id = q.enqueue("shop-r", None, "{}", None).await.unwrap().id;
    // Two pools (two instances) against one queue, leases of 3 s.
    let a = WorkerPool::start(q.clone(), Arc::new(Slow(runs.clone())), worker_cfg());
    let b = WorkerPool::start(q.clone(), Arc::new(Slow(runs.clone())), worker_cfg());
    let done = helpers::eventually(Duration::from_secs(30), || async {
        q.get("shop-r", &id)
            .await
            .unwrap()
            .filter(|r| r.state == JobState::Done)
    })
    .await
    .expect("done");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{:?}", done.history);
    assert_eq!(done.attempts, 1);
    a.shutdown().await;
    b.shutdown().await;
}
