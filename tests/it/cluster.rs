//! The service on Redis Cluster: every test here starts its own private cluster (three
//! masters, one replica each, from `redis-server`), so it never depends on the
//! environment and cannot pass without a cluster. A master killed under load fails
//! over to its replica and every webhook answered `202` before the kill is booked
//! once. The multi-instance drill (two intakes, two workers, 100 tenants × 20 orders,
//! one worker killed) runs here and as `cargo bench --bench cluster_soak`. Real
//! sandbox over HTTP, the real binary where a process must die.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{self, tid};

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minimax_connector::config::{Role, Settings};
use minimax_connector::minimax::Country;
use minimax_connector::queue::{tenant_key, JobState, Queue};
use minimax_connector::sandbox::{Sandbox, SandboxHandle, SandboxSettings};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_minimax-connector");

fn tenant_json(sb: &SandboxHandle) -> Value {
    let s = sb.state.settings();
    json!({
        "country": "SI",
        "organisation_id": s.organisation_id,
        "minimax": {
            "username": s.username,
            "password": secrecy::ExposeSecret::expose_secret(&s.password),
            "client_id": s.client_id,
            "client_secret": secrecy::ExposeSecret::expose_secret(&s.client_secret),
            "api_base": sb.api_base(Country::SI),
            "token_url": sb.token_url(Country::SI),
        },
        "webhook_secrets": {"woocommerce": helpers::SECRET, "shopify": helpers::SECRET, "generic": helpers::SECRET},
        "settings": {
            "document": "invoice_issued",
            "cashier_employee": "Janez Novak",
            "payment_methods": {"bacs": "Transakcijski račun", "cod": "Gotovina", "stripe": "STRIPE", "manual": "Transakcijski račun"}
        },
    })
}

/// The generic example order as order `number` (customer and items shared, so after
/// the first booking only the invoice is written).
fn order(number: &str) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_str(include_str!("../../docs/examples/generic-order-paid.json")).unwrap();
    v["order"]["shop_order_id"] = json!(number);
    v["order"]["number"] = json!(number);
    serde_json::to_vec(&v).unwrap()
}

/// Sends order `number` of `tenant` once; the status code, or 0 when the request failed.
async fn post(client: &reqwest::Client, base: &str, tenant: &str, number: &str) -> u16 {
    let body = order(number);
    let h = helpers::reqwest_headers(&helpers::generic_headers(
        &format!("msg-{number}"),
        chrono::Utc::now().timestamp(),
        &body,
        helpers::SECRET,
    ));
    match client
        .post(format!("{base}/webhooks/generic/{tenant}"))
        .headers(h)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Settings for the cluster with the sandbox's pace raised (one organisation serves
/// every tenant here) and no call budget.
fn cluster_settings(cluster: &helpers::RedisCluster, name: &str) -> Settings {
    let mut s = cluster.settings(&helpers::unique_prefix(name));
    s.minimax.rate_per_sec = 5000.0;
    s.minimax.burst = 5000;
    s.minimax.daily_budget = 0;
    s.minimax.monthly_budget = 0;
    s
}

fn sandbox_settings() -> SandboxSettings {
    SandboxSettings {
        daily_limit: 10_000_000,
        monthly_limit: 10_000_000,
        ..SandboxSettings::default()
    }
}

/// How often each document reference was booked as an issued invoice.
fn booked(sb: &SandboxHandle) -> HashMap<String, usize> {
    let org = sb.state.settings().organisation_id;
    let mut n = HashMap::new();
    for inv in sb.state.invoices(org) {
        let r = inv["DocumentReference"].as_str().unwrap_or("").to_owned();
        *n.entry(r).or_insert(0) += 1;
    }
    n
}

/// Waits until every number in `numbers` is booked (at most `timeout`), then asserts
/// each exactly once.
async fn assert_booked_once(sb: &SandboxHandle, numbers: &[String], timeout: Duration) {
    let started = Instant::now();
    let all = helpers::eventually(timeout, || async {
        let b = booked(sb);
        numbers.iter().all(|n| b.contains_key(n)).then_some(())
    })
    .await;
    println!("booked {} in {:?}", numbers.len(), started.elapsed());
    let b = booked(sb);
    let missing: Vec<_> = numbers.iter().filter(|n| !b.contains_key(*n)).collect();
    assert!(
        all.is_some(),
        "{} of {} accepted orders not booked within {timeout:?}, e.g. {:?}",
        missing.len(),
        numbers.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    let twice: Vec<_> = b.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "booked more than once: {twice:?}");
}

/// No job of `tenants` is dead.
async fn assert_none_dead(q: &Queue, tenants: &[String]) {
    for t in tenants {
        let c = q.counts(&tid(t)).await.unwrap();
        if c.dead > 0 {
            let ids = q.list(&tid(t), JobState::Dead, 0, 5).await.unwrap();
            let rec = q.get(&tid(t), &ids[0]).await.unwrap().unwrap();
            panic!("tenant {t}: {} dead, e.g. {:?}", c.dead, rec.last_error);
        }
    }
}

async fn put_tenants(settings: &Settings, sb: &SandboxHandle, tenants: &[String]) {
    for t in tenants {
        helpers::put_tenant(settings, t, tenant_json(sb)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_fails_over_and_every_webhook_accepted_before_is_booked_once() {
    let mut cluster = helpers::RedisCluster::start();
    let sb = Sandbox::spawn(sandbox_settings()).await.unwrap();
    let settings = cluster_settings(&cluster, "failover");
    let prefix = settings.redis.key_prefix.clone();
    // Enough tenants that every master holds some.
    let tenants: Vec<String> = (0..12).map(|i| format!("fo-{i}")).collect();
    put_tenants(&settings, &sb, &tenants).await;
    let app = helpers::spawn_app(settings).await;
    let victim = cluster.master_of(&tenant_key(&prefix, &tid(&tenants[0]), ""));

    // Load: each tenant's orders in turn; a shop retries whatever was not accepted.
    let accepted: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (accepted, stop, base, tenants) = (
            accepted.clone(),
            stop.clone(),
            app.base.clone(),
            tenants.clone(),
        );
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0usize;
            let mut retries = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tenant = &tenants[i % tenants.len()];
                let number = format!("FO-{tenant}-{i}");
                // 503 while the killed master's slots have no master yet.
                while post(&client, &base, tenant, &number).await != 202 {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                accepted.lock().unwrap().push((number, Instant::now()));
                i += 1;
            }
            retries
        })
    };
    let until = |n: usize| {
        let accepted = accepted.clone();
        helpers::eventually(Duration::from_secs(120), move || {
            let accepted = accepted.clone();
            async move { (accepted.lock().unwrap().len() >= n).then_some(()) }
        })
    };
    assert!(until(60).await.is_some(), "no load before the kill");
    let killed_at = Instant::now();
    cluster.kill(victim);
    let before_kill: Vec<String> = accepted
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at < killed_at)
        .map(|(n, _)| n.clone())
        .collect();
    // The replica is promoted: three masters again, the killed one not among them.
    let healthy = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let masters = cluster.masters();
            if masters.len() == 3 && !masters.contains(&victim) {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(healthy, "no replica took over from the killed master");
    // Intake works again after the failover.
    let after = accepted.lock().unwrap().len();
    assert!(
        until(after + 30).await.is_some(),
        "intake did not recover after the failover"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let retries = load.await.unwrap();
    let all: Vec<String> = accepted
        .lock()
        .unwrap()
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    println!(
        "failover: {} accepted before the kill, {} in all, {retries} deliveries retried by the shop",
        before_kill.len(),
        all.len()
    );

    assert_booked_once(&sb, &before_kill, Duration::from_secs(120)).await;
    assert_booked_once(&sb, &all, Duration::from_secs(120)).await;
    assert_none_dead(&app.queue, &tenants).await;
}

/// A worker process, killed (SIGKILL) when dropped.
struct Worker(std::process::Child);

impl Worker {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A worker instance: the real binary against the cluster.
fn spawn_worker(settings: &Settings) -> Worker {
    Worker(
        Command::new(BIN)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--role", "worker"])
            .env("MMC__SERVER__PORT", helpers::free_port().to_string())
            .env("MMC__DEMO__ENABLED", "false")
            .env("MMC__SANDBOX__ENABLED", "false")
            .env("MMC__REDIS__MODE", "cluster")
            .env("MMC__REDIS__URLS", settings.redis.urls.join(","))
            .env("MMC__REDIS__KEY_PREFIX", &settings.redis.key_prefix)
            .env("MMC__MINIMAX__RATE_PER_SEC", "5000")
            .env("MMC__MINIMAX__BURST", "5000")
            .env("MMC__MINIMAX__DAILY_BUDGET", "0")
            .env("MMC__MINIMAX__MONTHLY_BUDGET", "0")
            .env("MMC__WORKER__CONCURRENCY", "16")
            .env("MMC__TELEMETRY__FORMAT", "json")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_intakes_and_two_workers_book_100_tenants_times_20_orders_once_with_a_worker_killed() {
    multi_instance_drill().await;
}

/// The multi-instance drill: two intake and two worker instances, 100 tenants × 20
/// orders, one worker process killed mid-run; all booked once, none dead. A test of the
/// suite (above) and `cargo bench --bench cluster_soak`. It used to leave a few orders
/// running in one run of four: a retry's adoption search outlasted the order lock,
/// which was renewed only before writes (see `lock_waits`).
pub async fn multi_instance_drill() {
    const TENANTS: usize = 100;
    const ORDERS: usize = 20;
    let cluster = helpers::RedisCluster::start();
    let sb = Sandbox::spawn(sandbox_settings()).await.unwrap();
    let mut settings = cluster_settings(&cluster, "multi");
    // The default Redis timeout (tests use 500 ms): two debug intakes and two workers
    // share the machine's cores here.
    settings.redis.timeout_ms = 2000;
    let tenants: Vec<String> = (0..TENANTS).map(|i| format!("mi-{i}")).collect();
    put_tenants(&settings, &sb, &tenants).await;
    settings.role = Role::Intake;
    let intakes = [
        helpers::spawn_app(settings.clone()).await,
        helpers::spawn_app(settings.clone()).await,
    ];
    let mut doomed = spawn_worker(&settings);
    let mut survivor = spawn_worker(&settings);

    let started = Instant::now();
    let client = reqwest::Client::new();
    let mut numbers = Vec::new();
    let mut sends = Vec::new();
    let mut redelivered = 0u64;
    for o in 0..ORDERS {
        for (t, tenant) in tenants.iter().enumerate() {
            let number = format!("MI-{t}-{o}");
            let base = intakes[(t + o) % 2].base.clone();
            let (client, tenant, n) = (client.clone(), tenant.clone(), number.clone());
            sends.push(tokio::spawn(async move {
                // As a shop does: a delivery answered 503 (Redis slow to answer on a
                // loaded machine) or not answered is sent again; the dedupe key keeps
                // it one job.
                let mut retries = 0u64;
                loop {
                    let status = post(&client, &base, &tenant, &n).await;
                    if !matches!(status, 0 | 503) || retries >= 20 {
                        return (status, retries);
                    }
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }));
            numbers.push(number);
        }
        // Bounded concurrency: one order of every tenant at a time.
        for s in sends.drain(..) {
            let (status, retries) = s.await.unwrap();
            assert_eq!(status, 202);
            redelivered += retries;
        }
        if o == ORDERS / 4 {
            // Mid-run (workers are busy by now): the first worker process dies.
            let busy = helpers::eventually(Duration::from_secs(60), || async {
                (!booked(&sb).is_empty()).then_some(())
            })
            .await;
            assert!(busy.is_some(), "the workers book nothing");
            doomed.kill();
        }
    }
    let accepted_in = started.elapsed();
    let q = &intakes[0].queue;
    let stuck = helpers::eventually(Duration::from_secs(240), || async {
        let b = booked(&sb);
        numbers.iter().all(|n| b.contains_key(n)).then_some(())
    })
    .await;
    if stuck.is_none() {
        for t in &tenants {
            let c = q.counts(&tid(t)).await.unwrap();
            if c.done < ORDERS as u64 {
                for state in [
                    JobState::Queued,
                    JobState::Running,
                    JobState::Delayed,
                    JobState::Dead,
                ] {
                    for id in q.list(&tid(t), state, 0, 5).await.unwrap() {
                        let r = q.get(&tid(t), &id).await.unwrap().unwrap();
                        println!(
                            "{t} {c:?} {state:?} {:?} {:?} {:?}",
                            r.next_attempt_at, r.last_error, r.history
                        );
                    }
                }
            }
        }
    }
    assert_booked_once(&sb, &numbers, Duration::from_secs(30)).await;
    let booked_in = started.elapsed();
    println!(
        "multi-instance: {} orders accepted in {accepted_in:?} ({redelivered} deliveries \
         sent again after a 503), all booked once in {booked_in:?}",
        numbers.len()
    );
    assert_eq!(booked(&sb).len(), TENANTS * ORDERS);
    assert_none_dead(&intakes[0].queue, &tenants).await;
    survivor.kill();
    let mut unique = HashSet::new();
    assert!(numbers.iter().all(|n| unique.insert(n)));
}

/// The environment's cluster with `REDIS_MODE=cluster` (it must answer: a set but
/// unreachable cluster fails here with a clear message), else a private one.
async fn env_or_private_cluster(name: &str) -> (Option<helpers::RedisCluster>, Settings) {
    if let Some(urls) = helpers::cluster_urls() {
        let settings = helpers::settings_for(&urls[0], &helpers::unique_prefix(name));
        let pool = minimax_connector::startup::redis_pool(&settings).unwrap();
        let info: Result<String, String> = async {
            let mut c = pool.get().await.map_err(|e| e.to_string())?;
            redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match info {
            Ok(i) if i.contains("cluster_state:ok") => {}
            other => panic!(
                "REDIS_MODE=cluster is set but the cluster at REDIS_URLS={} does not answer \
                 as a healthy cluster: {other:?}",
                urls.join(",")
            ),
        }
        (None, settings)
    } else {
        let cluster = helpers::RedisCluster::start();
        let settings = cluster.settings(&helpers::unique_prefix(name));
        (Some(cluster), settings)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_run_on_a_cluster_with_tenants_spread_over_its_slots() {
    let (_cluster, settings) = env_or_private_cluster("spread").await;
    assert_eq!(
        settings.redis.mode,
        minimax_connector::config::RedisMode::Cluster
    );
    let pool = minimax_connector::startup::redis_pool(&settings).unwrap();
    let q = Queue::new(
        pool.clone(),
        minimax_connector::startup::queue_config(&settings),
    );
    let tenants: Vec<String> = (0..30).map(|i| format!("sp-{i}")).collect();
    let mut slots = HashSet::new();
    let mut conn = pool.get().await.unwrap();
    for t in &tenants {
        // Every script runs on the tenant's node: enqueue, claim, finish.
        q.enqueue(&tid(t), Some("d1"), "{}", None).await.unwrap();
        let minimax_connector::queue::Claim::Job(j) = q.claim(&tid(t), 10_000).await.unwrap()
        else {
            panic!("no job for {t}")
        };
        let done = minimax_connector::queue::Finish::Done {
            result: json!({"ok": true}),
        };
        assert!(q.finish(&j, 0, &done).await.unwrap());
        assert_eq!(q.counts(&tid(t)).await.unwrap().done, 1);
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(q.tenant_base(&tid(t)))
            .query_async(&mut conn)
            .await
            .unwrap();
        slots.insert(slot / 5462); // which third of the slot space
    }
    assert_eq!(
        slots.len(),
        3,
        "30 tenants should fall on every third of the slots"
    );
    // KEYS is asked of every master and merged.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", settings.redis.key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    for t in &tenants {
        assert!(
            keys.iter().any(|k| k.contains(&format!("{{t:{t}}}:job:"))),
            "{t}: {keys:?}"
        );
    }
    assert_eq!(q.tenants().await.unwrap().len(), tenants.len());
    assert_eq!(q.sweep().await.unwrap(), tenants.len());
}
