//! A killed instance (the real binary, SIGKILL) frees its tenants within seconds of a
//! restart.

use super::*;
use crate::helpers::tid;

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
        let c = q.counts(&tid(TENANT)).await.unwrap();
        (c.running == 2 && sb.state.counters().api_calls >= 3).then_some(())
    })
    .await;
    assert!(busy.is_some(), "two bookings should be in flight");
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let in_flight: Vec<String> = q
        .list(&tid(TENANT), JobState::Running, 0, 10)
        .await
        .unwrap();
    assert_eq!(in_flight.len(), 2);

    let restarted = Instant::now();
    let mut second = spawn_binary(helpers::free_port(), &prefix);
    // The first job of the tenant that runs again: a queued one started, or an
    // in-flight one handed out again (its history says the lease expired).
    let first_run = helpers::eventually(Duration::from_secs(30), || async {
        for id in &ids {
            let rec = q.get(&tid(TENANT), id).await.unwrap().unwrap();
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
