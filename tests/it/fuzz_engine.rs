//! The webhook fuzzer shared by `benches/fuzz.rs` (≥ 100,000 cases) and the test suite's
//! shorter run (`fuzz::`): the same code, only the case count differs.
//!
//! It starts the real service (intake role: jobs stay queued, so they can be counted)
//! against a real Redis, stores two tenants, and posts mutated versions of real signed
//! deliveries to every webhook route: bodies (values replaced, keys dropped, bytes
//! flipped, truncated, nested deeply, other resources), signatures (right, stale, other
//! tenant's, garbage, none), headers (topics of every platform, missing, garbage,
//! content types, Standard Webhooks timestamps) and routes (platforms, tenants). Each
//! case carries a unique canary in what it mutates.
//!
//! Checked for every answer: no 5xx; a JSON body; for errors a stable snake_case `error`
//! and a non-empty `field`; no canary in the answer. Checked at the end: every stored job
//! came from a correctly signed case (a wrongly signed one answered 202 is a failure on
//! its own), and the number of jobs in Redis equals the number of distinct accepted jobs.
//! The caller checks its log capture for `CANARY_PREFIX`.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use minimax_connector::tenants::TenantId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::Sha256;

/// Every canary starts with this; a log line containing it echoed a submitted value.
pub const CANARY_PREFIX: &str = "cnry";

const TENANT: &str = "fuzz";
const OTHER: &str = "fuzz-other";
const SECRET: &str = "fuzz-secret-of-the-main-tenant";
const OTHER_SECRET: &str = "fuzz-secret-of-the-other-tenant";

pub struct FuzzConfig {
    pub cases: usize,
    pub concurrency: usize,
    pub seed: u64,
    pub redis_url: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub cases: usize,
    pub by_status: BTreeMap<u16, usize>,
    pub by_code: BTreeMap<String, usize>,
    pub correctly_signed: usize,
    pub wrongly_signed: usize,
    /// Distinct jobs created by correctly signed cases.
    pub accepted_jobs: usize,
    pub jobs_in_redis: u64,
    pub server_errors: usize,
    /// Every broken rule, with the case number (at most 50 kept).
    pub failures: Vec<String>,
    pub failure_count: usize,
    pub elapsed: Duration,
}

impl Report {
    pub fn summary(&self) -> String {
        format!(
            "{} cases in {:.1} s ({:.0}/s): {} correctly signed, {} wrongly signed or unsigned; \
             statuses {:?}; {} distinct jobs accepted, {} jobs in Redis; {} 5xx; {} failures",
            self.cases,
            self.elapsed.as_secs_f64(),
            self.cases as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.correctly_signed,
            self.wrongly_signed,
            self.by_status,
            self.accepted_jobs,
            self.jobs_in_redis,
            self.server_errors,
            self.failure_count,
        )
    }
}

/// A real delivery to mutate.
#[derive(Clone)]
struct Base {
    platform: &'static str,
    topic: &'static str,
    body: Vec<u8>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture as the webhook body (REST wrappers such as `{"order": …}` removed).
fn fixture(platform: &str, name: &str) -> Vec<u8> {
    let raw = std::fs::read(
        root()
            .join("tests/fixtures/webshop")
            .join(platform)
            .join(name),
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&raw).unwrap();
    if let Value::Object(map) = &v {
        if map.len() == 1 {
            if let Some(inner @ Value::Object(_)) = ["order", "refund", "customer", "data"]
                .iter()
                .find_map(|k| map.get(*k))
            {
                return serde_json::to_vec(inner).unwrap();
            }
        }
    }
    raw
}

fn bases() -> Vec<Base> {
    let generic = std::fs::read(root().join("docs/examples/generic-order-paid.json")).unwrap();
    vec![
        Base {
            platform: "woocommerce",
            topic: "order.updated",
            body: fixture("woocommerce", "order.json"),
        },
        Base {
            platform: "woocommerce",
            topic: "order.created",
            body: fixture("woocommerce", "order_partially_refunded.ios.json"),
        },
        Base {
            platform: "woocommerce",
            topic: "customer.updated",
            body: fixture("woocommerce", "customer.json"),
        },
        Base {
            platform: "shopify",
            topic: "orders/paid",
            body: fixture(
                "shopify",
                "order_with_percentage_discount.rest-2026-07.json",
            ),
        },
        Base {
            platform: "shopify",
            topic: "orders/cancelled",
            body: fixture("shopify", "order_cancelled.rest-2026-07.json"),
        },
        Base {
            platform: "shopify",
            topic: "refunds/create",
            body: fixture("shopify", "refund.rest-2026-07.json"),
        },
        Base {
            platform: "shopify",
            topic: "customers/update",
            body: fixture("shopify", "customer.rest-2026-07.json"),
        },
        Base {
            platform: "generic",
            topic: "",
            body: generic,
        },
    ]
}

const TOPICS: [&str; 16] = [
    "order.created",
    "order.updated",
    "order.deleted",
    "customer.created",
    "customer.updated",
    "product.updated",
    "orders/create",
    "orders/paid",
    "orders/updated",
    "orders/cancelled",
    "orders/fulfilled",
    "refunds/create",
    "customers/create",
    "customers/update",
    "",
    "action.woocommerce_payment_complete",
];

fn hmac_b64(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// One request to send, and whether it is correctly signed for its route.
struct Case {
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    correctly_signed: bool,
    canary: String,
}

fn random_value(rng: &mut StdRng, canary: &str) -> Value {
    match rng.gen_range(0..12) {
        0 => Value::String(canary.to_owned()),
        1 => Value::String(format!("{canary}@example.com")),
        2 => serde_json::json!(rng.gen::<i64>()),
        3 => serde_json::from_str("1e400").unwrap_or(Value::Null),
        4 => serde_json::from_str("-99999999999999999999999999999999.999").unwrap(),
        5 => Value::Bool(rng.gen()),
        6 => Value::Null,
        7 => serde_json::json!([canary, 1, {"k": canary}]),
        8 => serde_json::json!({ "nested": canary }),
        9 => Value::String(String::new()),
        10 => Value::String(format!("{canary}\u{0}\u{202e}žš漢")),
        _ => serde_json::from_str("79228162514264337593543950336").unwrap(),
    }
}

/// Picks a random node of `v` and replaces it, drops it, or adds a member.
fn mutate_json(v: &mut Value, rng: &mut StdRng, canary: &str, depth: usize) {
    let op = rng.gen_range(0..10);
    match v {
        Value::Object(map) if !map.is_empty() && depth < 6 && op < 7 => {
            let idx = rng.gen_range(0..map.len());
            let key = map.keys().nth(idx).cloned().unwrap();
            if op == 0 {
                map.remove(&key);
            } else if op == 1 {
                // Member names are shown in error paths (they name, they are not
                // values), so the canary goes into the value only.
                map.insert("extra_member".into(), random_value(rng, canary));
            } else {
                mutate_json(map.get_mut(&key).unwrap(), rng, canary, depth + 1);
            }
        }
        Value::Array(items) if !items.is_empty() && depth < 6 && op < 7 => {
            let idx = rng.gen_range(0..items.len());
            if op == 0 {
                items.remove(idx);
            } else {
                mutate_json(&mut items[idx], rng, canary, depth + 1);
            }
        }
        _ => *v = random_value(rng, canary),
    }
}

fn mutate_body(base: &[u8], rng: &mut StdRng, canary: &str, others: &[Base]) -> Vec<u8> {
    match rng.gen_range(0..20) {
        0..=2 => base.to_vec(),
        3..=11 => {
            let mut v: Value = serde_json::from_slice(base).unwrap();
            for _ in 0..rng.gen_range(1..4) {
                mutate_json(&mut v, rng, canary, 0);
            }
            serde_json::to_vec(&v).unwrap()
        }
        12 => {
            let mut b = base.to_vec();
            let i = rng.gen_range(0..b.len());
            b[i] ^= 1 << rng.gen_range(0..8);
            b
        }
        13 => base[..rng.gen_range(0..base.len())].to_vec(),
        14 => {
            let mut b = base.to_vec();
            let i = rng.gen_range(0..b.len());
            b.splice(i..i, format!("\"{canary}\"").into_bytes());
            b
        }
        15 => {
            let depth = rng.gen_range(100..3000);
            let mut b = "[".repeat(depth).into_bytes();
            b.extend_from_slice(format!("\"{canary}\"").as_bytes());
            b.extend(std::iter::repeat_n(b']', depth));
            b
        }
        16 => others[rng.gen_range(0..others.len())].body.clone(),
        17 => format!("webhook_id={}", rng.gen_range(0..1000)).into_bytes(),
        18 => (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect(),
        _ => Vec::new(),
    }
}

fn make_case(n: usize, rng: &mut StdRng, bases: &[Base], now: i64) -> Case {
    let canary = format!("{CANARY_PREFIX}{n}x");
    let base = &bases[rng.gen_range(0..bases.len())];
    let body = mutate_body(&base.body, rng, &canary, bases);

    // Route: mostly the base's platform and the main tenant.
    let platform = match rng.gen_range(0..20) {
        0 => "woocommerce",
        1 => "shopify",
        2 => "generic",
        3 => "magento",
        _ => base.platform,
    };
    let tenant = match rng.gen_range(0..20) {
        0 => OTHER,
        1 => "nobody-here",
        2 => "bad%20id",
        _ => TENANT,
    };
    let real_secret = match tenant {
        TENANT => Some(SECRET),
        OTHER => Some(OTHER_SECRET),
        _ => None,
    };

    // Signature: which key, over what.
    let key = match rng.gen_range(0..10) {
        0 => OTHER_SECRET,
        1 => "",
        _ => SECRET,
    };
    let stale = rng.gen_range(0..10) == 0;
    let signed_body: &[u8] = if stale { &base.body } else { &body };

    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let ct: &[u8] = match rng.gen_range(0..20) {
        0 => b"text/plain",
        1 => b"application/x-www-form-urlencoded",
        2 => canary.as_bytes(),
        3 => b"application/json; charset=utf-8",
        _ => b"application/json",
    };
    headers.push(("content-type".into(), ct.to_vec()));

    let mut correct_sig = None;
    match platform {
        "generic" => {
            let id = match rng.gen_range(0..10) {
                0 => canary.clone(),
                1 => String::new(),
                _ => format!("msg_{}", rng.gen_range(0..500)),
            };
            let ts = match rng.gen_range(0..10) {
                0 => (now - 3600).to_string(),
                1 => (now + 3600).to_string(),
                2 => canary.clone(),
                _ => now.to_string(),
            };
            let sig = format!(
                "v1,{}",
                hmac_b64(
                    key.as_bytes(),
                    &[id.as_bytes(), b".", ts.as_bytes(), b".", signed_body]
                )
            );
            let fresh = ts.parse::<i64>().is_ok_and(|t| (t - now).abs() < 200);
            if let Some(real) = real_secret {
                let expected = format!(
                    "v1,{}",
                    hmac_b64(
                        real.as_bytes(),
                        &[id.as_bytes(), b".", ts.as_bytes(), b".", &body]
                    )
                );
                if fresh && !id.is_empty() {
                    correct_sig = Some(expected);
                }
            }
            headers.push(("webhook-id".into(), id.into_bytes()));
            headers.push(("webhook-timestamp".into(), ts.into_bytes()));
            headers.push(("webhook-signature".into(), sig.into_bytes()));
        }
        _ => {
            let name = if platform == "shopify" {
                "x-shopify-hmac-sha256"
            } else {
                "x-wc-webhook-signature"
            };
            let sig = hmac_b64(key.as_bytes(), &[signed_body]);
            if let Some(real) = real_secret {
                correct_sig = Some(hmac_b64(real.as_bytes(), &[&body]));
            }
            headers.push((name.into(), sig.into_bytes()));
            let topic = if rng.gen_range(0..4) == 0 {
                TOPICS[rng.gen_range(0..TOPICS.len())].to_owned()
            } else if rng.gen_range(0..30) == 0 {
                canary.clone()
            } else {
                base.topic.to_owned()
            };
            if platform == "shopify" {
                headers.push(("x-shopify-topic".into(), topic.into_bytes()));
                headers.push((
                    "x-shopify-shop-domain".into(),
                    format!("s{}.myshopify.com", rng.gen_range(0..3)).into_bytes(),
                ));
                headers.push(("x-shopify-event-id".into(), canary.clone().into_bytes()));
                headers.push(("x-shopify-webhook-id".into(), canary.clone().into_bytes()));
            } else {
                headers.push(("x-wc-webhook-topic".into(), topic.into_bytes()));
                headers.push((
                    "x-wc-webhook-source".into(),
                    format!("https://{canary}.example/").into_bytes(),
                ));
                headers.push((
                    "x-wc-webhook-delivery-id".into(),
                    canary.clone().into_bytes(),
                ));
                headers.push(("x-wc-webhook-id".into(), b"12".to_vec()));
            }
        }
    }
    // Header damage: drop one, or fill one with garbage (never invalid for HTTP itself).
    match rng.gen_range(0..10) {
        0 if !headers.is_empty() => {
            let i = rng.gen_range(0..headers.len());
            headers.remove(i);
        }
        1 if !headers.is_empty() => {
            let i = rng.gen_range(0..headers.len());
            headers[i].1 = match rng.gen_range(0..4) {
                0 => canary.clone().into_bytes(),
                1 => format!("{canary}\u{e9}").into_bytes(),
                2 => Vec::new(),
                _ => STANDARD.encode(canary.as_bytes()).into_bytes(),
            };
        }
        _ => {}
    }

    let sig_header = match platform {
        "generic" => "webhook-signature",
        "shopify" => "x-shopify-hmac-sha256",
        _ => "x-wc-webhook-signature",
    };
    let sent_sig = headers
        .iter()
        .find(|(k, _)| k == sig_header)
        .map(|(_, v)| v.clone());
    let has_id = platform != "generic"
        || headers
            .iter()
            .any(|(k, v)| k == "webhook-id" && !v.is_empty());
    let correctly_signed = matches!(platform, "woocommerce" | "shopify" | "generic")
        && has_id
        && correct_sig.is_some_and(|c| sent_sig.as_deref() == Some(c.as_bytes()));
    Case {
        path: format!("/webhooks/{platform}/{tenant}"),
        headers,
        body,
        correctly_signed,
        canary,
    }
}

struct Shared {
    report: Mutex<Report>,
    accepted: Mutex<HashSet<String>>,
}

fn fail(shared: &Shared, msg: String) {
    let mut r = shared.report.lock().unwrap();
    r.failure_count += 1;
    if r.failures.len() < 50 {
        r.failures.push(msg);
    }
}

fn check(shared: &Shared, n: usize, case: &Case, status: u16, text: &str) {
    {
        let mut r = shared.report.lock().unwrap();
        *r.by_status.entry(status).or_default() += 1;
        if case.correctly_signed {
            r.correctly_signed += 1;
        } else {
            r.wrongly_signed += 1;
        }
        if status >= 500 {
            r.server_errors += 1;
        }
    }
    if status >= 500 {
        fail(
            shared,
            format!("case {n}: {status} on {}: {text}", case.path),
        );
    }
    if text.contains(&case.canary) {
        fail(
            shared,
            format!("case {n}: canary echoed ({status}): {text}"),
        );
    }
    let json: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            fail(
                shared,
                format!("case {n}: {status} without a JSON body: {text:?}"),
            );
            return;
        }
    };
    if status >= 400 {
        let code = json["error"].as_str().unwrap_or("");
        let stable = !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if !stable {
            fail(
                shared,
                format!("case {n}: {status} without a stable code: {text}"),
            );
        }
        if json["field"].as_str().is_none_or(str::is_empty) {
            fail(
                shared,
                format!("case {n}: {status} without a field: {text}"),
            );
        }
        *shared
            .report
            .lock()
            .unwrap()
            .by_code
            .entry(code.to_owned())
            .or_default() += 1;
    }
    if status == 202 {
        if !case.correctly_signed {
            fail(
                shared,
                format!("case {n}: wrongly signed body accepted: {text}"),
            );
        }
        if json["duplicate"] == false {
            if let Some(id) = json["job_id"].as_str() {
                shared
                    .accepted
                    .lock()
                    .unwrap()
                    .insert(format!("{}/{id}", case.path));
            }
        }
    }
}

/// Runs the fuzzer; the returned report's `failures` must be empty.
pub async fn run(cfg: FuzzConfig) -> Report {
    let started = Instant::now();
    let dir = root().join("config");
    let mut settings = minimax_connector::config::Settings::load(&dir, None).unwrap();
    settings.server.port = 0;
    settings.redis.url = cfg.redis_url.clone();
    settings.redis.key_prefix = format!("fuzz-{}", uuid::Uuid::new_v4().simple());
    settings.role = minimax_connector::config::Role::Intake;
    settings.demo.enabled = false;
    settings.sandbox.enabled = false;
    settings.tenants.clear();
    settings.server.body_limit_bytes = 256 * 1024;

    let pool = minimax_connector::startup::redis_pool(&settings).unwrap();
    let prefix = settings.redis.key_prefix.clone();
    let store = minimax_connector::tenants::TenantStore::new(
        pool.clone(),
        settings.redis.key_prefix.clone(),
        settings.cipher().unwrap(),
    );
    for (id, secret) in [(TENANT, SECRET), (OTHER, OTHER_SECRET)] {
        let input: minimax_connector::tenants::TenantInput =
            serde_json::from_value(serde_json::json!({
                "country": "SI", "organisation_id": 1,
                "minimax": {"username": "fuzz", "password": "fuzz-password"},
                "webhook_secrets": {"woocommerce": secret, "shopify": secret, "generic": secret},
            }))
            .unwrap();
        store
            .put(&input.into_tenant(id, None).unwrap())
            .await
            .unwrap();
    }
    let app = minimax_connector::startup::Application::build_with_handler(settings, None)
        .await
        .unwrap();
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let queue = app.queue().clone();
    let stop = app.stop_handle();
    let server = tokio::spawn(app.run_until_stopped());

    let shared = Arc::new(Shared {
        report: Mutex::new(Report::default()),
        accepted: Mutex::new(HashSet::new()),
    });
    let bases = Arc::new(bases());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(cfg.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut tasks = Vec::new();
    for w in 0..cfg.concurrency {
        let shared = shared.clone();
        let bases = bases.clone();
        let client = client.clone();
        let base_url = base_url.clone();
        let (cases, step, seed) = (cfg.cases, cfg.concurrency, cfg.seed);
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while n < cases {
                let mut rng = StdRng::seed_from_u64(seed ^ (n as u64).wrapping_mul(0x9E37_79B9));
                let case = make_case(n, &mut rng, &bases, now);
                let mut req = client
                    .post(format!("{base_url}{}", case.path))
                    .body(case.body.clone());
                for (k, v) in &case.headers {
                    if let Ok(v) = reqwest::header::HeaderValue::from_bytes(v) {
                        req = req.header(k.as_str(), v);
                    }
                }
                match req.send().await {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let text = res.text().await.unwrap_or_default();
                        check(&shared, n, &case, status, &text);
                    }
                    Err(e) => fail(&shared, format!("case {n}: no answer: {e}")),
                }
                n += step;
            }
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            fail(&shared, format!("a client task panicked: {e}"));
        }
    }
    let mut jobs = 0;
    for tenant in [TENANT, OTHER] {
        let c = queue
            .counts(&TenantId::parse(tenant).unwrap())
            .await
            .unwrap();
        jobs += c.queued + c.delayed + c.running + c.dead + c.done;
    }
    stop.stop();
    let _ = server.await;
    // This run's keys go (jobs, dedupe keys, tenants).
    let mut conn = pool.get().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
    }

    let accepted = shared.accepted.lock().unwrap().len();
    {
        let mut r = shared.report.lock().unwrap();
        r.cases = cfg.cases;
        r.accepted_jobs = accepted;
        r.jobs_in_redis = jobs;
        r.elapsed = started.elapsed();
    }
    if jobs != accepted as u64 {
        fail(
            &shared,
            format!("{jobs} jobs in Redis but {accepted} accepted from correctly signed cases"),
        );
    }
    let mut report = shared.report.lock().unwrap();
    std::mem::take(&mut *report)
}
