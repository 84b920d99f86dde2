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

use crate::helpers::tid;
use minimax_connector::config::Settings;
use minimax_connector::minimax::Country;
use minimax_connector::queue::{JobState, Queue};
use minimax_connector::sandbox::{Fault, FaultAction, Sandbox, SandboxHandle, SandboxSettings};
use serde_json::{json, Value};

mod killed_instance;
mod log_noise;
mod outages;
mod queue_policies;
mod wake_ups;

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
            let rec = q.get(&tid(TENANT), id).await.unwrap()?;
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
            let rec = q.get(&tid(TENANT), id).await.unwrap().unwrap();
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

// ------------------------------------------------- the binary, the app in-process

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
                .get(&tid(TENANT), id)
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
