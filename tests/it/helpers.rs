//! Helpers shared by the integration tests: Redis connections with a unique key
//! prefix per test, a private `redis-server` for tests that stop Redis, settings for
//! an app on a free port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub use crate::shop::*;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use minimax_connector::config::{RedisMode, Settings};
use minimax_connector::queue::{Queue, QueueConfig};
use minimax_connector::redis_conn::RedisPool;

/// The shared test Redis: `REDIS_URL` (default `redis://127.0.0.1:6379`), or with
/// `REDIS_MODE=cluster` the first seed node of `REDIS_URLS` (comma-separated), which
/// [`settings_for`] turns into cluster settings with all of them.
pub fn redis_url() -> String {
    match cluster_urls() {
        Some(urls) => urls[0].clone(),
        None => std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    }
}

/// The seed nodes of the environment's cluster, when `REDIS_MODE=cluster`.
pub fn cluster_urls() -> Option<Vec<String>> {
    if std::env::var("REDIS_MODE").ok().as_deref() != Some("cluster") {
        return None;
    }
    let urls: Vec<String> = std::env::var("REDIS_URLS")
        .unwrap_or_default()
        .split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    assert!(
        !urls.is_empty(),
        "REDIS_MODE=cluster needs REDIS_URLS=redis://host:port,... (see .ci/run)"
    );
    Some(urls)
}

/// A tenant id for tests (panics on an invalid one: the test's own literal).
pub fn tid(id: &str) -> minimax_connector::tenants::TenantId {
    minimax_connector::tenants::TenantId::parse(id).expect("a valid test tenant id")
}

pub fn unique_prefix(name: &str) -> String {
    format!("test-{name}-{}", uuid::Uuid::new_v4().simple())
}

/// The one place tests build a Redis pool: in the mode [`settings_for`] picks for `url`.
pub fn pool(url: &str) -> RedisPool {
    let mut s = settings_for(url, "unused");
    s.redis.timeout_ms = 1000;
    minimax_connector::startup::redis_pool(&s).unwrap()
}

/// The one key cleanup: deletes every key matching `pattern` (e.g. `"{prefix}:*"`) on
/// the shared test Redis.
pub async fn delete_keys(pattern: &str) {
    let mut conn = pool(&redis_url()).get().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

pub fn queue(prefix: &str) -> Queue {
    queue_with(prefix, 2)
}

pub fn queue_with(prefix: &str, per_tenant: u32) -> Queue {
    Queue::new(
        pool(&redis_url()),
        QueueConfig {
            prefix: prefix.to_owned(),
            dedupe_ttl_secs: 8 * 24 * 3600,
            per_tenant_concurrency: per_tenant,
            done_retention_secs: 3600,
            payload_retention_secs: 600,
        },
    )
}

/// The default configuration, on a free port, against `redis_url` with `prefix`.
pub fn settings_for(redis_url: &str, prefix: &str) -> Settings {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut s = Settings::load(&dir, None).unwrap();
    // Tests opt into the demo tenant and sandbox explicitly (see `demo_settings`).
    s.demo.enabled = false;
    s.sandbox.enabled = false;
    s.tenants.clear();
    s.server.port = 0;
    s.redis.url = redis_url.to_owned();
    // The environment's cluster, addressed by its first seed node, runs in cluster mode;
    // any other URL (a test's private redis-server) is a single server.
    if let Some(urls) = cluster_urls().filter(|u| u[0] == redis_url) {
        s.redis.mode = RedisMode::Cluster;
        s.redis.urls = urls;
    }
    s.redis.key_prefix = prefix.to_owned();
    s.redis.timeout_ms = 500;
    s.worker.poll_interval_ms = 20;
    s
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private redis-server on a free port, killed on drop; can be stopped and restarted.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        let mut s = Self {
            port: free_port(),
            child: None,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (see .ci/run)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server (SIGKILL: as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running service on a free port; stopped when dropped.
pub struct TestApp {
    pub base: String,
    pub queue: Queue,
    pub stop: minimax_connector::startup::StopHandle,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Posts a webhook body with `headers` to `/webhooks/{platform}/{tenant}`: the status
    /// and the JSON answer (`Null` when the body is not JSON).
    pub async fn post_webhook(
        &self,
        platform: &str,
        tenant: &str,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let res = reqwest::Client::new()
            .post(self.url(&format!("/webhooks/{platform}/{tenant}")))
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_default())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

pub async fn spawn_app_with(
    settings: Settings,
    handler: std::sync::Arc<dyn minimax_connector::worker::JobHandler>,
) -> TestApp {
    start(settings, Some(handler)).await
}

async fn start(
    settings: Settings,
    handler: Option<std::sync::Arc<dyn minimax_connector::worker::JobHandler>>,
) -> TestApp {
    let app = minimax_connector::startup::Application::build_with_handler(settings, handler)
        .await
        .expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let queue = app.queue().clone();
    let stop = app.stop_handle();
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        queue,
        stop,
        task: Some(task),
    }
}

/// A handler that completes every job with `{"ok": true}`.
pub struct OkHandler;

#[async_trait::async_trait]
impl minimax_connector::worker::JobHandler for OkHandler {
    async fn handle(
        &self,
        _job: &minimax_connector::queue::ClaimedJob,
    ) -> Result<serde_json::Value, minimax_connector::worker::JobError> {
        Ok(serde_json::json!({"ok": true}))
    }
}

/// The tenant store of an app built from `settings`.
pub fn tenant_store(settings: &Settings) -> minimax_connector::tenants::TenantStore {
    minimax_connector::tenants::TenantStore::new(
        minimax_connector::startup::redis_pool(settings).unwrap(),
        settings.redis.key_prefix.clone(),
        settings.cipher().unwrap(),
    )
}

/// Stores a tenant from an admin-API-shaped JSON body.
pub async fn put_tenant(settings: &Settings, id: &str, body: serde_json::Value) {
    let input: minimax_connector::tenants::TenantInput = serde_json::from_value(body).unwrap();
    let store = tenant_store(settings);
    let existing = store.get(&tid(id)).await.unwrap();
    let tenant = input.into_tenant(id, existing.as_ref()).unwrap();
    store.put(&tenant).await.unwrap();
}

/// A tenant with the given webhook secret for every platform.
pub fn tenant_body(secret: &str) -> serde_json::Value {
    serde_json::json!({
        "country": "SI",
        "organisation_id": 1001,
        "minimax": {"username": "demo", "password": "demo-password"},
        "webhook_secrets": {"woocommerce": secret, "shopify": secret, "generic": secret},
    })
}

/// actix header map (as the webshop helpers build it) → reqwest's.
pub fn reqwest_headers(h: &actix_web::http::header::HeaderMap) -> reqwest::header::HeaderMap {
    let mut out = reqwest::header::HeaderMap::new();
    for (k, v) in h.iter() {
        out.insert(
            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    out
}

/// The real service (booking into Minimax) on a free port.
pub async fn spawn_app(settings: Settings) -> TestApp {
    start(settings, None).await
}

/// The at-rest cipher of the default test configuration.
pub fn cipher() -> minimax_connector::crypto::Cipher {
    settings_for(&redis_url(), "unused").cipher().unwrap()
}

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
static LOG_INIT: std::sync::Once = std::sync::Once::new();

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary goes to one buffer ([`captured_logs`]), at debug
/// level for our crate; tests scan it for values that must never be logged.
pub fn capture_logs() {
    LOG_INIT.call_once(|| {
        minimax_connector::telemetry::init_with_writer(
            &minimax_connector::config::TelemetrySettings {
                format: minimax_connector::config::LogFormat::Json,
                level: "info,minimax_connector=debug".into(),
            },
            || Capture,
        );
    });
}

/// What the log capture holds so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// A private Redis Cluster of three masters with one replica each, on free ports,
/// data in a temporary directory; every node is killed on drop. Nodes time out after
/// one second, so a killed master's replica takes over within a few seconds.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    _dir: tempfile::TempDir,
}

/// A free port whose cluster bus port (+10000) is free too.
fn free_cluster_port(taken: &[u16]) -> u16 {
    loop {
        let p = free_port();
        if p < 55000 && !taken.contains(&p) && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
            return p;
        }
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli must be installed (see .ci/run)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ports = Vec::new();
        for _ in 0..6 {
            ports.push(free_cluster_port(&ports));
        }
        let children = ports
            .iter()
            .map(|p| {
                let conf = format!("nodes-{p}.conf");
                let node_dir = dir.path().join(p.to_string());
                std::fs::create_dir_all(&node_dir).unwrap();
                Some(
                    Command::new("redis-server")
                        .args(["--port", &p.to_string(), "--bind", "127.0.0.1"])
                        .args(["--cluster-enabled", "yes", "--cluster-config-file", &conf])
                        .args(["--cluster-node-timeout", "1000"])
                        // A replica takes over however long it was cut off (tests only).
                        .args(["--cluster-replica-validity-factor", "0"])
                        // Replicas sync at once instead of after the default 5 s.
                        .args(["--repl-diskless-sync-delay", "0"])
                        .args(["--save", "", "--appendonly", "no"])
                        .arg("--dir")
                        .arg(node_dir)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("redis-server must be installed (see .ci/run)"),
                )
            })
            .collect();
        let cluster = Self {
            ports,
            children,
            _dir: dir,
        };
        for p in &cluster.ports {
            let up = (0..200).any(|_| {
                std::thread::sleep(Duration::from_millis(20));
                redis_cli(*p, &["PING"]).contains("PONG")
            });
            assert!(up, "cluster node on port {p} did not start");
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_healthy();
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The default test configuration in cluster mode against this cluster.
    pub fn settings(&self, prefix: &str) -> Settings {
        let mut s = settings_for(&self.urls()[0], prefix);
        s.redis.mode = RedisMode::Cluster;
        s.redis.urls = self.urls();
        s
    }

    fn alive(&self) -> impl Iterator<Item = u16> + '_ {
        self.ports
            .iter()
            .zip(&self.children)
            .filter(|(_, c)| c.is_some())
            .map(|(p, _)| *p)
    }

    /// Waits until every live node sees the cluster as ok, three masters serve and
    /// every live replica is in sync with its master.
    pub fn wait_healthy(&self) {
        let ok = (0..1500).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            self.alive().all(|p| {
                redis_cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok") && {
                    let repl = redis_cli(p, &["INFO", "replication"]);
                    repl.contains("role:master") || repl.contains("master_link_status:up")
                }
            }) && self.masters().len() == 3
        });
        assert!(ok, "the cluster did not become healthy within 30 s");
    }

    /// Ports of the live masters.
    pub fn masters(&self) -> Vec<u16> {
        self.alive()
            .filter(|p| redis_cli(*p, &["ROLE"]).starts_with("master"))
            .collect()
    }

    /// The port of the master serving `key`, as a live node's `CLUSTER NODES` says.
    pub fn master_of(&self, key: &str) -> u16 {
        let any = self.alive().next().unwrap();
        let slot: u16 = redis_cli(any, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .unwrap();
        let nodes = redis_cli(any, &["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            // <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slots…>
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let serves = f[8..].iter().any(|r| {
                let mut it = r.split('-').filter_map(|x| x.parse::<u16>().ok());
                match (it.next(), it.next()) {
                    (Some(a), Some(b)) => (a..=b).contains(&slot),
                    (Some(a), None) => a == slot,
                    _ => false,
                }
            });
            if serves {
                let addr = f[1].split('@').next().unwrap();
                return addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        }
        panic!("no master for slot {slot}: {nodes}");
    }

    /// Kills one node (SIGKILL: as a crash would).
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).unwrap();
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().filter_map(Option::take) {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
