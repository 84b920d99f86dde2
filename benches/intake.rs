//! Intake benchmark: queue enqueue throughput, and throughput and latency of a real
//! signed WooCommerce order `POST` that ends in an enqueue, against a real Redis.
//!
//! Run: `cargo bench --bench intake` (Redis at `REDIS_URL`, default 127.0.0.1:6379;
//! on a cluster with `REDIS_MODE=cluster REDIS_URLS=redis://host:port,…`).
//! Knobs: `BENCH_ENQUEUES` (default 20000), `BENCH_POSTS` (5000), `BENCH_CONCURRENCY` (32).
//! Uses its own key prefix and deletes its keys afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use minimax_connector::config::{Role, Settings};
use minimax_connector::startup::Application;
use sha2::Sha256;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let enqueues = env_num("BENCH_ENQUEUES", 20_000);
    let posts = env_num("BENCH_POSTS", 5_000);
    let concurrency = env_num("BENCH_CONCURRENCY", 32);
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("bench-{}", uuid::Uuid::new_v4().simple());

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load(&dir, None).unwrap();
    settings.server.port = 0;
    settings.redis.url = redis_url;
    // `REDIS_MODE=cluster REDIS_URLS=redis://…,…`: the same run on Redis Cluster.
    if std::env::var("REDIS_MODE").ok().as_deref() == Some("cluster") {
        settings.redis.mode = minimax_connector::config::RedisMode::Cluster;
        settings.redis.urls = std::env::var("REDIS_URLS")
            .expect("REDIS_URLS with REDIS_MODE=cluster")
            .split(',')
            .map(str::to_owned)
            .collect();
    }
    settings.redis.key_prefix = prefix.clone();
    settings.role = Role::Intake;
    settings.demo.enabled = false;
    settings.sandbox.enabled = false;
    settings.tenants.clear();
    settings.telemetry.level = "error".into();
    minimax_connector::telemetry::init(&settings.telemetry);

    let secret = "bench-webhook-secret";
    let tenant_input: minimax_connector::tenants::TenantInput =
        serde_json::from_value(serde_json::json!({
            "country": "SI", "organisation_id": 1,
            "minimax": {"username": "bench", "password": "bench-password"},
            "webhook_secrets": {"woocommerce": secret},
        }))
        .unwrap();
    let pool = minimax_connector::startup::redis_pool(&settings).unwrap();
    let store = minimax_connector::tenants::TenantStore::new(
        pool.clone(),
        prefix.clone(),
        settings.cipher().unwrap(),
    );
    store
        .put(&tenant_input.into_tenant("bench", None).unwrap())
        .await
        .unwrap();

    let app = Application::build_with_handler(settings.clone(), None)
        .await
        .unwrap();
    let port = app.port();
    let queue = app.queue().clone();
    let stop = app.stop_handle();
    let server = tokio::spawn(app.run_until_stopped());

    // 1. Raw enqueue (dedupe key + job in one script), `concurrency` tasks.
    let payload = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/generic-order-paid.json"),
    )
    .unwrap();
    let payload = Arc::new(payload);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let q = queue.clone();
        let p = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < enqueues {
                q.enqueue("bench-q", Some(&format!("k{i}")), &p, None)
                    .await
                    .unwrap();
                i += concurrency;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "enqueue: {enqueues} jobs ({} B payload) with {concurrency} tasks in {secs:.2} s = {:.0} jobs/s",
        payload.len(),
        enqueues as f64 / secs
    );

    // 2. Signed WooCommerce order POSTs, each a new delivery (a distinct modification
    //    time in the signed body, so a distinct dedupe key) of the same real order.
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webshop/woocommerce/order.json"),
    )
    .unwrap();
    // Distinct deliveries: the dedupe key comes from the signed body, so each request is
    // the order at another modification time, signed (built before timing starts).
    let order: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let modified = chrono::DateTime::parse_from_rfc3339("2017-03-22T19:28:08Z").unwrap();
    let deliveries: Arc<Vec<(Arc<Vec<u8>>, String)>> = Arc::new(
        (0..posts + 1050)
            .map(|i| {
                let mut o = order.clone();
                let at = modified + chrono::Duration::seconds(i as i64);
                o["date_modified_gmt"] = at.format("%Y-%m-%dT%H:%M:%S").to_string().into();
                let bytes = serde_json::to_vec(&o).unwrap();
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(&bytes);
                let sig =
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                (Arc::new(bytes), sig)
            })
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/webhooks/woocommerce/bench");
    // Warm-up: connections, caches.
    for i in 0..50 {
        let (body, sig) = &deliveries[posts + 1000 + i];
        post(&client, &url, body, sig, "https://shop.example/").await;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let client = client.clone();
        let url = url.clone();
        let deliveries = deliveries.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w;
            while i < posts {
                let (body, sig) = &deliveries[i];
                let t = Instant::now();
                post(&client, &url, body, sig, "https://shop.example/").await;
                lat.push(t.elapsed());
                i += concurrency;
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "POST /webhooks/woocommerce (signed order.json, {} B): {posts} requests, {concurrency} concurrent, {secs:.2} s = {:.0} req/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        deliveries[0].0.len(),
        posts as f64 / secs,
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.90)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap()),
    );
    // Sequential latency (one client, no queueing behind other requests).
    let mut lat = Vec::new();
    for i in 0..1000 {
        let (body, sig) = &deliveries[posts + i];
        let t = Instant::now();
        post(&client, &url, body, sig, "https://shop.example/").await;
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "POST sequential: 1000 requests; latency p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
    );

    stop.stop();
    let _ = server.await;
    // Clean up this run's keys.
    let mut conn = pool.get().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    for chunk in keys.chunks(500) {
        let _: () = redis::cmd("DEL")
            .arg(chunk)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &Arc<Vec<u8>>, sig: &str, source: &str) {
    let res = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-wc-webhook-signature", sig)
        .header("x-wc-webhook-topic", "order.updated")
        .header("x-wc-webhook-source", source)
        .body(body.as_ref().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
}
