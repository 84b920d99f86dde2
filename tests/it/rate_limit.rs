//! The per-organisation rate limit under contention: calls of two client
//! instances of one organisation are admitted at the configured rate, never more than
//! `rate + burst` in a second, and each admitted call costs one or two runs of the
//! limiter's script (it reserves the call's slot and says how long to sleep), not a
//! run per poll. A private redis-server, so `INFO commandstats` counts only this test's
//! scripts; the sandbox over HTTP as Minimax.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::time::{Duration, Instant};

use minimax_connector::minimax::{
    Country, Minimax, MinimaxLogin, MinimaxSettings, TenantCredentials,
};
use minimax_connector::redis_conn::RedisPool;
use minimax_connector::sandbox::{Sandbox, SandboxHandle, SandboxSettings};

const RATE: f64 = 10.0;
const BURST: u32 = 2;
/// Calls per instance; two instances contend.
const CALLS: usize = 15;

fn creds(sb: &SandboxHandle) -> TenantCredentials {
    let s = sb.state.settings();
    TenantCredentials {
        tenant_id: "shop-rate".into(),
        country: Country::SI,
        organisation_id: s.organisation_id,
        login: MinimaxLogin {
            username: s.username.clone(),
            password: s.password.clone(),
            client_id: Some(s.client_id.clone()),
            client_secret: Some(s.client_secret.clone()),
            api_base: Some(sb.api_base(Country::SI)),
            token_url: Some(sb.token_url(Country::SI)),
        },
    }
}

/// Scripts run by the server since the last `CONFIG RESETSTAT`.
async fn script_runs(pool: &RedisPool) -> u64 {
    let mut conn = pool.get().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contended_calls_of_one_organisation_are_admitted_at_the_rate_with_one_script_run_each() {
    let redis = helpers::RedisServer::start();
    let sb = Sandbox::spawn(SandboxSettings::default()).await.unwrap();
    let settings = MinimaxSettings {
        rate_per_sec: RATE,
        burst: BURST,
        max_rate_wait_ms: 30_000,
        daily_budget: 0,
        monthly_budget: 0,
        // No breaker: its script would run once per call too.
        breaker_failures: 0,
        ..MinimaxSettings::default()
    };
    let prefix = helpers::unique_prefix("rate");
    let pool = helpers::pool(&redis.url());
    // Two instances, as two processes would have, sharing the organisation's limits.
    let instances: Vec<_> = (0..2)
        .map(|_| {
            Minimax::new(
                settings.clone(),
                helpers::pool(&redis.url()),
                prefix.clone(),
                helpers::cipher(),
            )
            .unwrap()
            .tenant(creds(&sb))
        })
        .collect();
    // Tokens fetched, then the bucket refills; only the contended calls are counted.
    for client in &instances {
        client.my_organisations().await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs_f64(f64::from(BURST) / RATE + 0.3)).await;
    let mut conn = pool.get().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();

    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for client in &instances {
        for _ in 0..CALLS {
            let client = client.clone();
            calls.spawn(async move {
                client.my_organisations().await.unwrap();
                Instant::now()
            });
        }
    }
    let mut done: Vec<Instant> = calls.join_all().await;
    let elapsed = started.elapsed();
    let runs = script_runs(&pool).await;
    done.sort();

    let n = done.len();
    assert_eq!(n, 2 * CALLS);
    // The busiest second saw at most `rate + burst` calls answered.
    let busiest = (0..n)
        .map(|i| {
            done[i..]
                .iter()
                .take_while(|t| t.duration_since(done[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    let cap = RATE as usize + BURST as usize;
    // After the burst, one call per 1/rate s.
    let least = Duration::from_secs_f64((n - BURST as usize - 1) as f64 / RATE);
    let per_call = runs as f64 / n as f64;
    println!(
        "rate limit: {n} calls in {elapsed:?}, busiest second {busiest} (cap {cap}), \
         {runs} limiter script runs ({per_call:.2} per admitted call)"
    );
    assert!(busiest <= cap, "{busiest} calls in one second, cap {cap}");
    assert!(
        elapsed >= least,
        "{n} calls in {elapsed:?}, expected at least {least:?}"
    );
    assert!(
        per_call <= 2.0,
        "{runs} limiter script runs for {n} admitted calls ({per_call:.2} per call)"
    );
}
