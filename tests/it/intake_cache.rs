//! The intake's tenant cache: a tenant changed or deleted through the admin API of one
//! instance is seen by the intake of another within a second; an accepted webhook
//! costs the intake one Redis round trip on a single Redis and writes one log line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use minimax_connector::config::{Role, Settings};
use minimax_connector::tenant_cache::STALE;
use reqwest::Method;
use serde_json::{json, Value};

const TOKEN: &str = "operator-token-of-the-cache-tests";
const TENANT: &str = "cached-shop";
const FIRST: &str = "first-webhook-secret-of-the-shop";
const SECOND: &str = "second-webhook-secret-of-the-shop";

fn intake_settings(prefix: &str) -> Settings {
    let mut s = helpers::settings_for(&helpers::redis_url(), prefix);
    s.role = Role::Intake;
    s.security.admin_tokens = vec![TOKEN.into()];
    s
}

/// WooCommerce's `order.json` fixture as order `id` (a new job per id).
fn woo_order(id: u64) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_slice(&helpers::fixture_body("woocommerce", "order.json")).unwrap();
    v["id"] = json!(id);
    serde_json::to_vec(&v).unwrap()
}

async fn webhook(app: &helpers::TestApp, body: &[u8], secret: &str) -> u16 {
    let headers = helpers::reqwest_headers(&helpers::woo_headers("order.updated", body, secret));
    app.post_webhook("woocommerce", TENANT, headers, body.to_vec())
        .await
        .0
}

async fn admin(app: &helpers::TestApp, method: Method, body: Option<Value>) -> u16 {
    let mut req = reqwest::Client::new()
        .request(method, app.url(&format!("/admin/tenants/{TENANT}")))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    assert!(
        status < 300,
        "admin call: {status} {}",
        res.text().await.unwrap()
    );
    status
}

/// Polls `app` with order ids from `ids` until a webhook signed with `secret` gets
/// `want`; how long that took.
async fn until_answer(
    app: &helpers::TestApp,
    ids: &mut std::ops::RangeFrom<u64>,
    secret: &str,
    want: u16,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = webhook(app, &woo_order(ids.next().unwrap()), secret).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never answered {want} (last {got})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_changed_or_deleted_on_one_instance_is_seen_by_the_others_intake_within_a_second()
{
    let prefix = helpers::unique_prefix("cache");
    let a = helpers::spawn_app_with(intake_settings(&prefix), Arc::new(helpers::OkHandler)).await;
    let b = helpers::spawn_app_with(intake_settings(&prefix), Arc::new(helpers::OkHandler)).await;
    let mut tenant = helpers::tenant_body(FIRST);
    tenant["webhook_secrets"] = json!({"woocommerce": FIRST});
    admin(&a, Method::PUT, Some(tenant)).await;

    // B learns the tenant and serves it from its cache from now on.
    let mut ids = 7_000_000..;
    let learned = until_answer(&b, &mut ids, FIRST, 202).await;
    for _ in 0..5 {
        assert_eq!(
            webhook(&b, &woo_order(ids.next().unwrap()), FIRST).await,
            202
        );
    }

    // The secret rotated through A: after at most STALE, B refuses the old one and
    // accepts the new one.
    admin(
        &a,
        Method::PATCH,
        Some(json!({"webhook_secrets": {"woocommerce": SECOND}})),
    )
    .await;
    let changed = Instant::now();
    let rotated = until_answer(&b, &mut ids, SECOND, 202).await;
    tokio::time::sleep(STALE.saturating_sub(changed.elapsed())).await;
    assert_eq!(
        webhook(&b, &woo_order(ids.next().unwrap()), FIRST).await,
        401
    );
    assert_eq!(
        webhook(&b, &woo_order(ids.next().unwrap()), SECOND).await,
        202
    );
    // A, where the change was made, never served the old secret after it.
    assert_eq!(
        webhook(&a, &woo_order(ids.next().unwrap()), FIRST).await,
        401
    );

    // Deleted through A: B stops accepting the tenant's webhooks.
    admin(&a, Method::DELETE, None).await;
    let deleted = Instant::now();
    let gone = until_answer(&b, &mut ids, SECOND, 404).await;
    tokio::time::sleep(STALE.saturating_sub(deleted.elapsed())).await;
    assert_eq!(
        webhook(&b, &woo_order(ids.next().unwrap()), SECOND).await,
        404
    );
    eprintln!(
        "tenant cache: first seen after {learned:?}, rotation seen by the other instance after \
         {rotated:?}, deletion after {gone:?} (bound {STALE:?})"
    );
    assert!(rotated <= STALE && gone <= STALE, "{rotated:?} {gone:?}");
}

/// Scrapes `mmc_redis_round_trips_total` of the binary at `base`.
async fn round_trips(base: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("mmc_redis_round_trips_total "))
        .expect("the round-trip counter is exported")
        .trim()
        .parse()
        .unwrap()
}

/// The counter is per process, so this runs the binary (intake only) on its own.
#[tokio::test]
async fn an_accepted_webhook_costs_one_redis_round_trip_on_a_single_redis() {
    if helpers::cluster_urls().is_some() {
        return; // On a cluster the tenant index is a second command (see queue docs).
    }
    let prefix = helpers::unique_prefix("trips");
    let settings = intake_settings(&prefix);
    let mut tenant = helpers::tenant_body(FIRST);
    tenant["webhook_secrets"] = json!({"woocommerce": FIRST});
    helpers::put_tenant(&settings, TENANT, tenant).await;
    let port = helpers::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_minimax-connector"))
        .args(["--role", "intake"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MMC__SERVER__PORT", port.to_string())
        .env("MMC__DEMO__ENABLED", "false")
        .env("MMC__SANDBOX__ENABLED", "false")
        .env("MMC__REDIS__URL", helpers::redis_url())
        .env("MMC__REDIS__KEY_PREFIX", &prefix)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let up = helpers::eventually(Duration::from_secs(30), || {
        let u = format!("{base}/health/ready");
        async move { reqwest::get(u).await.ok().filter(|r| r.status() == 200) }
    })
    .await;
    assert!(up.is_some(), "the binary did not become ready");
    let client = reqwest::Client::new();
    let post = |id: u64| {
        let body = woo_order(id);
        let headers =
            helpers::reqwest_headers(&helpers::woo_headers("order.updated", &body, FIRST));
        client
            .post(format!("{base}/webhooks/woocommerce/{TENANT}"))
            .headers(headers)
            .body(body)
            .send()
    };
    // The first webhook reads the tenant; the cache serves it from then on.
    assert_eq!(post(1).await.unwrap().status(), 202);
    let n = 300;
    let before = round_trips(&base).await;
    for id in 2..2 + n {
        assert_eq!(post(id).await.unwrap().status(), 202);
    }
    let after = round_trips(&base).await;
    let _ = child.kill();
    let _ = child.wait();
    // One scrape and the revision poll (5 a second) also count; they add little.
    let per_webhook = (after - before) / n as f64;
    eprintln!("redis round trips per accepted webhook: {per_webhook:.3}");
    assert!(per_webhook >= 1.0, "{per_webhook}");
    assert!(per_webhook < 1.5, "{per_webhook} round trips per webhook");
}

/// The captured log lines at info or above of the request with `request_id`.
fn request_lines(request_id: &str) -> Vec<Value> {
    helpers::captured_logs()
        .lines()
        .filter(|l| l.contains(request_id))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] != "DEBUG" && l["level"] != "TRACE")
        .collect()
}

#[tokio::test]
async fn an_accepted_webhook_and_a_duplicate_each_log_one_line_with_status_and_duration() {
    helpers::capture_logs();
    let prefix = helpers::unique_prefix("oneline");
    let settings = intake_settings(&prefix);
    let mut tenant = helpers::tenant_body(FIRST);
    tenant["webhook_secrets"] = json!({"woocommerce": FIRST});
    helpers::put_tenant(&settings, TENANT, tenant).await;
    let app = helpers::spawn_app_with(settings, Arc::new(helpers::OkHandler)).await;
    let body = woo_order(42);
    let headers = helpers::reqwest_headers(&helpers::woo_headers("order.updated", &body, FIRST));
    for (i, (status, message)) in [
        ("accepted", "webhook accepted"),
        ("duplicate", "duplicate delivery; existing job kept"),
    ]
    .into_iter()
    .enumerate()
    {
        let request_id = format!("one-line-{i}-{}", uuid::Uuid::new_v4().simple());
        let res = reqwest::Client::new()
            .post(app.url(&format!("/webhooks/woocommerce/{TENANT}")))
            .headers(headers.clone())
            .header("x-request-id", &request_id)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["status"], status);
        let lines = request_lines(&request_id);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        let fields = &lines[0]["fields"];
        assert_eq!(fields["message"], message, "{lines:#?}");
        assert_eq!(fields["status"], 202, "{lines:#?}");
        assert!(fields["ms"].is_u64(), "{lines:#?}");
        assert!(lines[0]
            .to_string()
            .contains(answer["job_id"].as_str().unwrap()));
    }
}
