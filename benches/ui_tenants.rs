//! Dashboard benchmark: the tenants page with 1,000 tenants (each with a few jobs) —
//! page weight, server time to the whole page, and Chromium's first contentful paint.
//!
//! Run: `cargo bench --bench ui_tenants` (Redis at `REDIS_URL`, default 127.0.0.1:6379;
//! Chromium and chromedriver on PATH for the paint figure). Knobs: `BENCH_TENANTS`
//! (default 1000), `BENCH_RUNS` (10). Uses its own key prefix and deletes its keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use minimax_connector::config::Settings;
use minimax_connector::startup::Application;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

const TOKEN: &str = "demo-admin-token-change-me";

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_num("BENCH_TENANTS", 1000);
    let runs = env_num("BENCH_RUNS", 10);
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("bench-ui-{}", uuid::Uuid::new_v4().simple());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load(&dir, None).unwrap();
    settings.server.port = 0;
    settings.redis.url = redis_url;
    settings.redis.key_prefix = prefix.clone();
    settings.role = minimax_connector::config::Role::Intake;
    settings.demo.enabled = false;
    settings.sandbox.enabled = false;
    settings.tenants.clear();
    settings.telemetry.level = "error".into();
    minimax_connector::telemetry::init(&settings.telemetry);

    let pool = minimax_connector::startup::redis_pool(&settings).unwrap();
    let store = minimax_connector::tenants::TenantStore::new(
        pool.clone(),
        prefix.clone(),
        settings.cipher().unwrap(),
    );
    let queue = minimax_connector::queue::Queue::new(
        pool.clone(),
        minimax_connector::startup::queue_config(&settings),
    );
    let started = Instant::now();
    for i in 0..n {
        let id = minimax_connector::tenants::TenantId::parse(format!("shop-{i:04}")).unwrap();
        let input: minimax_connector::tenants::TenantInput =
            serde_json::from_value(serde_json::json!({
                "name": format!("Shop number {i}"),
                "country": "SI", "organisation_id": 10_000 + i,
                "minimax": {"username": format!("user{i}"), "password": "bench-password"},
                "webhook_secrets": {"woocommerce": "bench-secret", "shopify": "bench-secret", "generic": "bench-secret"},
            }))
            .unwrap();
        store
            .put(&input.into_tenant(&id, None).unwrap())
            .await
            .unwrap();
        for j in 0..(i % 4) {
            queue
                .enqueue(
                    &id,
                    Some(&format!("d-{i}-{j}")),
                    "{\"type\":\"shop_event.v1\"}",
                    None,
                )
                .await
                .unwrap();
        }
    }
    println!(
        "seeded {n} tenants in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let stop = app.stop_handle();
    let task = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{base}/ui/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    for (label, path) in [
        ("default page (200 rows)", "/ui/tenants"),
        ("all 1,000 rows", "/ui/tenants?limit=1000"),
    ] {
        let mut times = Vec::new();
        let mut first_byte = Vec::new();
        let mut bytes = 0;
        let gz = client
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        let gz_bytes = gz.bytes().await.unwrap().len();
        for _ in 0..runs {
            let t = Instant::now();
            let res = client
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            first_byte.push(t.elapsed());
            assert_eq!(res.status(), 200);
            bytes = res.bytes().await.unwrap().len();
            times.push(t.elapsed());
        }
        times.sort();
        first_byte.sort();
        println!(
            "{label}: {bytes} B HTML, {gz_bytes} B gzipped (+ {} B CSS, {} B JS), whole page \
             p50 {:.0} ms, max {:.0} ms (first byte p50 {:.0} ms)",
            include_str!("../src/http/ui/assets/app.css").len(),
            include_str!("../src/http/ui/assets/app.js").len(),
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            ms(first_byte[first_byte.len() / 2]),
        );
    }

    match paint(&base, &cookie).await {
        Ok(figures) => println!("{figures}"),
        Err(e) => println!("first contentful paint not measured: {e}"),
    }

    stop.stop();
    let _ = task.await;
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

/// Chromium's navigation timing of the tenants page (signed in through the form).
async fn paint(base: &str, _cookie: &str) -> Result<String, String> {
    let path = std::env::var_os("PATH").ok_or("no PATH")?;
    let find = |n: &str| minimax_connector::private_redis::find_on_path(n, &path);
    let driver = find("chromedriver").ok_or("chromedriver not on PATH")?;
    let chromium = find("chromium").ok_or("chromium not on PATH")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut child = std::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let out = async {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}),
        );
        let c = fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|e| e.to_string())?;
        c.goto(&format!("{base}/ui/login")).await.map_err(|e| e.to_string())?;
        let token = c.find(fantoccini::Locator::Css("#token")).await.map_err(|e| e.to_string())?;
        token.send_keys(TOKEN).await.map_err(|e| e.to_string())?;
        c.find(fantoccini::Locator::Css("form.login button"))
            .await
            .map_err(|e| e.to_string())?
            .click()
            .await
            .map_err(|e| e.to_string())?;
        let mut lines = Vec::new();
        for path in ["/ui/tenants", "/ui/tenants?limit=1000"] {
            c.goto(&format!("{base}{path}")).await.map_err(|e| e.to_string())?;
            // Paint entries arrive after load; give them a moment.
            let v = c
                .execute_async(
                    "const done = arguments[arguments.length - 1]; setTimeout(() => { \
                     const n = performance.getEntriesByType('navigation')[0]; \
                     const p = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint'); \
                     done([n.responseStart, n.responseEnd, p ? p.startTime : null, n.domContentLoadedEventEnd]); }, 500);",
                    vec![],
                )
                .await
                .map_err(|e| e.to_string())?;
            lines.push(format!(
                "Chromium {path}: first byte {:.0} ms, last byte {:.0} ms, first contentful paint {:.0} ms, DOMContentLoaded {:.0} ms",
                v[0].as_f64().unwrap_or(0.0),
                v[1].as_f64().unwrap_or(0.0),
                v[2].as_f64().unwrap_or(f64::NAN),
                v[3].as_f64().unwrap_or(0.0),
            ));
        }
        let _ = c.close().await;
        Ok::<_, String>(lines.join("\n"))
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    out
}
