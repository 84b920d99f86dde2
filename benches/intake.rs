//! Intake side by side with a bare Redis handler.
//!
//! In one run against one Redis, this starts two servers as child processes:
//! - the **baseline**: this bench binary itself in baseline mode, an actix-web server
//!   whose only handler `XADD`s the raw body through a `deadpool-redis` pool and answers
//!   `202` (what the cheapest durable intake costs on this machine);
//! - the **service**: the real `minimax-connector` binary, intake role, default
//!   configuration (info logs, to /dev/null), with `BENCH_TENANTS` tenants.
//!
//! A single-threaded HTTP/1.1 keep-alive load generator (like `wrk -t1`) drives both
//! alternately at 1, 8 and 64 connections with the real WooCommerce `order.json`,
//! each request a distinct order id signed with the tenant's secret. It prints rps,
//! p50/p99 and the ratio service ÷ baseline, the Redis commands per request from
//! `INFO commandstats` (reset before each measured phase; commands run inside a Lua
//! script count too) and the service's round trips per request (its
//! `mmc_redis_round_trips_total`, one per command, pipeline or script sent).
//!
//! Run: `cargo bench --bench intake`. By default it starts a private `redis-server`
//! with AOF on (`appendfsync everysec`, as a durable deployment runs); `BENCH_REDIS_URL`
//! uses a running Redis instead, and `REDIS_MODE=cluster REDIS_URLS=redis://…,…` a
//! Redis Cluster (every node listed, so their command counts add up).
//! Knobs: `BENCH_SECS` (measured seconds per phase, default 4), `BENCH_ROUNDS` (3),
//! `BENCH_CONNS` (`1,8,64`), `BENCH_TENANTS` (4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "intake/baseline.rs"]
mod baseline;
#[path = "intake/redis_stats.rs"]
mod redis_stats;
use redis_stats::Stats;

// The same allocator as the service, so the ratio compares the work, not allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BASELINE_ENV: &str = "INTAKE_BENCH_BASELINE";
const SECRET: &str = "bench-webhook-secret-0123456789";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn main() {
    if let Ok(spec) = std::env::var(BASELINE_ENV) {
        baseline::run(&spec);
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench());
}

/// Where the run's Redis is: standalone URL or cluster node URLs.
#[derive(Clone)]
enum Target {
    Standalone(String),
    Cluster(Vec<String>),
}

impl Target {
    /// What the baseline child is told (`standalone <url>` / `cluster <url,url>`).
    fn spec(&self) -> String {
        match self {
            Target::Standalone(u) => format!("standalone {u}"),
            Target::Cluster(us) => format!("cluster {}", us.join(",")),
        }
    }
    fn node_urls(&self) -> Vec<String> {
        match self {
            Target::Standalone(u) => vec![u.clone()],
            Target::Cluster(us) => us.clone(),
        }
    }
}

/// A private `redis-server` with AOF `everysec`, killed on drop.
struct AofRedis {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl AofRedis {
    fn start() -> AofRedis {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("intake-bench-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            // No RDB snapshots, no AOF rewrite forks mid-phase: steady conditions.
            .args(["--save", "", "--auto-aof-rewrite-percentage", "0"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        let url = format!("redis://127.0.0.1:{port}");
        let client = redis::Client::open(url.as_str()).unwrap();
        for _ in 0..100 {
            if let Ok(mut c) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return AofRedis { child, dir, url };
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("private redis-server did not start");
    }
}

impl Drop for AofRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child server, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_ready(port: u16, path: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
        {
            if r.status().is_success() || r.status().as_u16() == 404 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server on port {port} did not come up");
}

async fn bench() {
    let secs = env_num("BENCH_SECS", 4) as u64;
    let rounds = env_num("BENCH_ROUNDS", 3);
    let tenants = env_num("BENCH_TENANTS", 4).max(1);
    let conns: Vec<usize> = std::env::var("BENCH_CONNS")
        .unwrap_or_else(|_| "1,8,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();

    let mut _private = None;
    let target = if std::env::var("REDIS_MODE").ok().as_deref() == Some("cluster") {
        Target::Cluster(
            std::env::var("REDIS_URLS")
                .expect("REDIS_URLS with REDIS_MODE=cluster")
                .split(',')
                .map(str::to_owned)
                .collect(),
        )
    } else if let Ok(url) = std::env::var("BENCH_REDIS_URL") {
        Target::Standalone(url)
    } else {
        let r = AofRedis::start();
        let url = r.url.clone();
        _private = Some(r);
        Target::Standalone(url)
    };
    let prefix = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));

    // The service's configuration, passed as environment to its child process.
    let mut env: Vec<(String, String)> = vec![
        (
            "MMC_CONFIG_DIR".into(),
            manifest.join("config").display().to_string(),
        ),
        ("MMC__REDIS__KEY_PREFIX".into(), prefix.clone()),
        ("MMC__DEMO__ENABLED".into(), "false".into()),
        ("MMC__SANDBOX__ENABLED".into(), "false".into()),
        ("MMC__TELEMETRY__FORMAT".into(), "json".into()),
    ];
    match &target {
        Target::Standalone(u) => env.push(("MMC__REDIS__URL".into(), u.clone())),
        Target::Cluster(us) => {
            env.push(("MMC__REDIS__MODE".into(), "cluster".into()));
            env.push(("MMC__REDIS__URLS".into(), us.join(",")));
        }
    }

    // Tenants, written with the library's own store (same config, same key).
    let mut settings =
        minimax_connector::config::Settings::load(&manifest.join("config"), None).unwrap();
    settings.redis.key_prefix = prefix.clone();
    match &target {
        Target::Standalone(u) => settings.redis.url = u.clone(),
        Target::Cluster(us) => {
            settings.redis.mode = minimax_connector::config::RedisMode::Cluster;
            settings.redis.urls = us.clone();
        }
    }
    let pool = minimax_connector::startup::redis_pool(&settings).unwrap();
    let store = minimax_connector::tenants::TenantStore::new(
        pool.clone(),
        prefix.clone(),
        settings.cipher().unwrap(),
    );
    let tenant_ids: Vec<String> = (0..tenants).map(|i| format!("bench-{i}")).collect();
    for id in &tenant_ids {
        let input: minimax_connector::tenants::TenantInput =
            serde_json::from_value(serde_json::json!({
                "country": "SI", "organisation_id": 1,
                "minimax": {"username": "bench", "password": "bench-password"},
                "webhook_secrets": {"woocommerce": SECRET},
            }))
            .unwrap();
        store
            .put(&input.into_tenant(id, None).unwrap())
            .await
            .unwrap();
    }

    let service_port = free_port();
    let _service = Server {
        child: Command::new(env!("CARGO_BIN_EXE_minimax-connector"))
            .args(["--role", "intake", "--port", &service_port.to_string()])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        port: service_port,
    };
    let baseline_port = free_port();
    let _baseline = Server {
        child: Command::new(std::env::current_exe().unwrap())
            .env(BASELINE_ENV, target.spec())
            .env("INTAKE_BENCH_PORT", baseline_port.to_string())
            .env("INTAKE_BENCH_PREFIX", &prefix)
            .spawn()
            .unwrap(),
        port: baseline_port,
    };
    wait_ready(_service.port, "/health/ready").await;
    wait_ready(_baseline.port, "/").await;

    let template = Arc::new(Template::load(manifest));
    let next_id = Arc::new(AtomicU64::new(1_000_000));
    let stats = Stats::connect(&target).await;
    println!(
        "intake bench: {} B body, {tenants} tenants, {rounds} rounds × {secs} s per side and level, Redis {}",
        template.len(),
        match &target {
            Target::Standalone(_) if _private.is_some() => "private, AOF everysec".to_owned(),
            Target::Standalone(u) => u.clone(),
            Target::Cluster(us) => format!("cluster of {} nodes", us.len()),
        }
    );

    let mut table = Vec::new();
    for &c in &conns {
        let mut sides: BTreeMap<&str, Side> = BTreeMap::new();
        for round in 0..rounds {
            // Alternate which side goes first, so drift on the shared machine hits both.
            let service = ("service", service_port, _service.child.id());
            let baseline = ("baseline", baseline_port, _baseline.child.id());
            let order = if round % 2 == 0 {
                [baseline, service]
            } else {
                [service, baseline]
            };
            for (name, port, pid) in order {
                let r = phase(
                    port,
                    pid,
                    &tenant_ids,
                    c,
                    Duration::from_secs(secs),
                    &template,
                    &next_id,
                    &stats,
                )
                .await;
                println!(
                    "  {c:>3} conns, round {round}, {name:<8}: {:>7.0} req/s, p50 {:.2} ms, p99 {:.2} ms, errors {}",
                    r.rps(),
                    r.percentile_ms(0.50),
                    r.percentile_ms(0.99),
                    r.errors
                );
                sides.entry(name).or_default().add(r);
            }
        }
        table.push((c, sides));
    }

    println!();
    println!("| conns | baseline req/s | service req/s | ratio | baseline p50 / p99 ms | service p50 / p99 ms | baseline Redis cmds/req | service Redis cmds/req | service round trips/req | server CPU µs/req baseline / service | Redis CPU µs/req baseline / service |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (c, sides) in &table {
        let b = &sides["baseline"];
        let s = &sides["service"];
        println!(
            "| {c} | {:.0} | {:.0} | **{:.2}** | {:.2} / {:.2} | {:.2} / {:.2} | {} | {} | {} | {:.0} / {:.0} | {:.0} / {:.0} |",
            b.rps(),
            s.rps(),
            s.rps() / b.rps(),
            b.percentile_ms(0.50),
            b.percentile_ms(0.99),
            s.percentile_ms(0.50),
            s.percentile_ms(0.99),
            b.commands(),
            s.commands(),
            s.round_trips(),
            b.process_us(),
            s.process_us(),
            b.redis_us(),
            s.redis_us(),
        );
    }
    if _private.is_none() {
        stats.delete_prefix(&prefix).await;
    }
}

/// The signed body of one request: `order.json` with a distinct order id.
struct Template {
    before: Vec<u8>,
    after: Vec<u8>,
}

impl Template {
    fn load(manifest: &Path) -> Template {
        let raw =
            std::fs::read(manifest.join("tests/fixtures/webshop/woocommerce/order.json")).unwrap();
        let mut order: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        order["id"] = serde_json::json!(987_654_321_u64);
        let text = serde_json::to_string(&order).unwrap();
        let (before, after) = text.split_once("987654321").unwrap();
        assert!(!after.contains("987654321"));
        Template {
            before: before.as_bytes().to_vec(),
            after: after.as_bytes().to_vec(),
        }
    }

    fn len(&self) -> usize {
        self.before.len() + self.after.len() + 9
    }

    /// The full HTTP request for order `id` of `tenant`.
    fn request(&self, tenant: &str, id: u64, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(self.len() + 4);
        body.extend_from_slice(&self.before);
        body.extend_from_slice(id.to_string().as_bytes());
        body.extend_from_slice(&self.after);
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        out.clear();
        out.extend_from_slice(
            format!(
                "POST /webhooks/woocommerce/{tenant} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-wc-webhook-signature: {sig}\r\nx-wc-webhook-topic: order.updated\r\nx-wc-webhook-source: https://shop.example/\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&body);
    }
}

/// What one measured phase saw.
#[derive(Default)]
struct Side {
    latencies_us: Vec<u32>,
    seconds: f64,
    errors: u64,
    commands: BTreeMap<String, u64>,
    /// Round trips the service counted (`mmc_redis_round_trips_total`); the baseline
    /// makes one per request (its `XADD`) and exports nothing.
    round_trips: Option<f64>,
    /// Redis CPU seconds during the phase.
    redis_cpu: f64,
    /// CPU seconds of the server process during the phase.
    process_cpu: f64,
}

impl Side {
    fn add(&mut self, other: Side) {
        self.latencies_us.extend(other.latencies_us);
        self.seconds += other.seconds;
        self.errors += other.errors;
        for (k, v) in other.commands {
            *self.commands.entry(k).or_default() += v;
        }
        self.redis_cpu += other.redis_cpu;
        self.process_cpu += other.process_cpu;
        if let Some(t) = other.round_trips {
            *self.round_trips.get_or_insert(0.0) += t;
        }
    }
    fn process_us(&self) -> f64 {
        self.process_cpu * 1e6 / self.latencies_us.len().max(1) as f64
    }
    fn redis_us(&self) -> f64 {
        self.redis_cpu * 1e6 / self.latencies_us.len().max(1) as f64
    }
    fn round_trips(&self) -> String {
        match self.round_trips {
            Some(t) => format!("{:.2}", t / self.latencies_us.len().max(1) as f64),
            None => "1 (XADD)".into(),
        }
    }
    fn rps(&self) -> f64 {
        self.latencies_us.len() as f64 / self.seconds
    }
    fn percentile_ms(&self, p: f64) -> f64 {
        let mut l = self.latencies_us.clone();
        l.sort_unstable();
        if l.is_empty() {
            return f64::NAN;
        }
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        f64::from(l[i]) / 1000.0
    }
    /// Commands per request, by command, and their sum.
    fn commands(&self) -> String {
        let n = self.latencies_us.len().max(1) as f64;
        let total: u64 = self.commands.values().sum();
        let parts: Vec<String> = self
            .commands
            .iter()
            .filter(|(_, v)| **v as f64 / n >= 0.005)
            .map(|(k, v)| format!("{k} {:.2}", *v as f64 / n))
            .collect();
        format!("{:.2} ({})", total as f64 / n, parts.join(", "))
    }
}

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

/// One side at `conns` connections: 0.5 s warm-up, then `dur` measured.
#[allow(clippy::too_many_arguments)]
async fn phase(
    port: u16,
    pid: u32,
    tenants: &[String],
    conns: usize,
    dur: Duration,
    template: &Arc<Template>,
    next_id: &Arc<AtomicU64>,
    stats: &Stats,
) -> Side {
    let stage = Arc::new(AtomicU8::new(WARMING));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let tenant = tenants[c % tenants.len()].clone();
        let (stage, template, next_id) = (stage.clone(), template.clone(), next_id.clone());
        tasks.push(tokio::spawn(async move {
            connection(port, tenant, stage, template, next_id).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stats.reset().await;
    let trips_before = round_trips(port).await;
    let cpu_before = stats.cpu().await;
    let process_before = process_cpu(pid);
    stage.store(MEASURING, Ordering::SeqCst);
    let started = Instant::now();
    tokio::time::sleep(dur).await;
    stage.store(STOPPED, Ordering::SeqCst);
    let seconds = started.elapsed().as_secs_f64();
    let commands = stats.read().await;
    let process_cpu = process_cpu(pid) - process_before;
    let redis_cpu = stats.cpu().await - cpu_before;
    let trips_after = round_trips(port).await;
    let mut side = Side {
        seconds,
        commands,
        round_trips: trips_before.zip(trips_after).map(|(b, a)| a - b),
        redis_cpu,
        process_cpu,
        ..Side::default()
    };
    for t in tasks {
        let (lat, errors) = t.await.unwrap();
        side.latencies_us.extend(lat);
        side.errors += errors;
    }
    side
}

/// CPU seconds (user + system) process `pid` has used, from `/proc/<pid>/stat`.
fn process_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field 3.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

/// The service's `mmc_redis_round_trips_total`; `None` where there is no `/metrics`.
async fn round_trips(port: u16) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("mmc_redis_round_trips_total "))?
        .trim()
        .parse()
        .ok()
}

/// One keep-alive connection sending requests back to back until stopped.
async fn connection(
    port: u16,
    tenant: String,
    stage: Arc<AtomicU8>,
    template: Arc<Template>,
    next_id: Arc<AtomicU64>,
) -> (Vec<u32>, u64) {
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut req = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    loop {
        let s = stage.load(Ordering::Relaxed);
        if s == STOPPED {
            break;
        }
        template.request(&tenant, next_id.fetch_add(1, Ordering::Relaxed), &mut req);
        let t = Instant::now();
        let ok = match exchange(&mut stream, &req, &mut buf).await {
            Some(status) => status == 202,
            None => {
                stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                stream.set_nodelay(true).unwrap();
                false
            }
        };
        if s == MEASURING && stage.load(Ordering::Relaxed) == MEASURING {
            if ok {
                lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
            } else {
                errors += 1;
            }
        }
    }
    (lat, errors)
}

/// Writes one request and reads its whole response; the status, or `None` if the
/// connection broke.
async fn exchange(stream: &mut TcpStream, req: &[u8], buf: &mut [u8]) -> Option<u16> {
    stream.write_all(req).await.ok()?;
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await.ok()?;
        if n == 0 {
            return None;
        }
        filled += n;
        let Some(head_end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buf[..head_end]).ok()?;
        let status: u16 = head.get(9..12)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut have = filled - head_end - 4;
        while have < length {
            let n = stream.read(&mut buf[..]).await.ok()?;
            if n == 0 {
                return None;
            }
            have += n;
        }
        return Some(status);
    }
}
