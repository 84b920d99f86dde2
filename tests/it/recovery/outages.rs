//! Minimax outages: one longer than the attempt budget dead-letters nothing, and a
//! flaky Minimax (a fifth of the calls failing) costs little time.

use super::*;
use crate::helpers::tid;

#[tokio::test]
async fn an_outage_longer_than_the_attempt_budget_dead_letters_nothing() {
    let mut s = settings("outage");
    // Time-scaled: max_attempts × backoff_max = 3 × 300 ms, the outage lasts 8 s.
    s.queue.max_attempts = 3;
    s.queue.backoff_base_ms = 50;
    s.queue.backoff_max_ms = 300;
    s.minimax.breaker_open_ms = 300;
    s.minimax.breaker_open_max_ms = 1500;
    s.minimax.call_retry_base_ms = 20;
    let a = app_with(s, None).await;
    let org = a.sb.state.settings().organisation_id;
    // Warm the token (the outage is of the API; the token endpoint stays up).
    a.wait_state(&a.post(100).await, JobState::Done).await;

    a.sb.state
        .inject(Fault::new("api/", FaultAction::Status(503)).times(u32::MAX));
    let n = 20;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(a.post(i).await);
    }
    let outage = Duration::from_secs(8);
    let started = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    let mut metrics_open = false;
    while started.elapsed() < outage {
        let status = admin_status(&a.client, &a.app.base).await;
        seen.insert(
            status["minimax_circuit"]["state"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        let metrics = a
            .client
            .get(a.app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics_open |= metrics.lines().any(|l| {
            l.starts_with("mmc_minimax_circuit{")
                && l.contains(&format!("tenant=\"{TENANT}\""))
                && (l.contains("state=\"open\"") || l.contains("state=\"half_open\""))
                && l.ends_with(" 1")
        });
        let dead = a.app.queue.counts(&tid(TENANT)).await.unwrap().dead;
        assert_eq!(dead, 0, "a job was dead-lettered during the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let calls_during = a.sb.state.counters().api_calls;
    a.sb.state.clear_faults();
    let recovered = Instant::now();
    all_done(&a.app.queue, &ids, Duration::from_secs(60)).await;
    let took = recovered.elapsed();
    let status = admin_status(&a.client, &a.app.base).await;
    let max_attempts = {
        let mut m = 0;
        for id in &ids {
            m = m.max(
                a.app
                    .queue
                    .get(&tid(TENANT), id)
                    .await
                    .unwrap()
                    .unwrap()
                    .attempts,
            );
        }
        m
    };
    println!(
        "outage 8 s (> max_attempts × backoff_max = 0.9 s): 0 dead, {n} booked once {:.2} s after recovery; \
         circuit states seen {seen:?}; {calls_during} API calls during the outage; most attempts of a job {max_attempts}",
        took.as_secs_f64()
    );
    assert_eq!(a.app.queue.counts(&tid(TENANT)).await.unwrap().dead, 0);
    assert!(seen.contains("open"), "{seen:?}");
    assert!(metrics_open, "the open circuit is not in the metrics");
    assert_eq!(status["minimax_circuit"]["state"], "closed", "{status}");
    let org_invoices: Vec<Value> =
        a.sb.state
            .invoices(org)
            .into_iter()
            .filter(|i| i["DocumentReference"] != "REC-100")
            .collect();
    for i in 0..n {
        let c = org_invoices
            .iter()
            .filter(|inv| inv["DocumentReference"] == format!("REC-{i}"))
            .count();
        assert_eq!(c, 1, "REC-{i} booked {c} times");
    }
    assert_eq!(org_invoices.len(), n);
}

/// Books `n` cold orders into a fresh sandbox, with a fault on every fifth API call
/// (alternating 500 and a dropped connection) when `flaky`; returns the wall time
/// and the faults injected.
async fn book_cold_orders(n: usize, flaky: bool) -> (Duration, u64) {
    let mut s = settings(if flaky { "flaky" } else { "steady" });
    s.redis.timeout_ms = 2000;
    // The drill's setting: eight bookings of the tenant at once.
    s.queue.per_tenant_concurrency = 8;
    let a = app_with(s, None).await;
    // Answer times of the order of Minimax's, so the comparison is about the calls
    // (the default job backoff stays: failures that outlast the in-attempt retries
    // pay it, as in production).
    a.sb.state.set_latency(Duration::from_millis(100));
    let stop = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(AtomicU64::new(0));
    let injector = flaky.then(|| {
        let state = a.sb.state.clone();
        let stop = stop.clone();
        let injected = injected.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let calls = state.counters().api_calls;
                // One fault armed for every five calls made (the next call takes it).
                while injected.load(Ordering::Relaxed) < calls / 5 + 1 {
                    let k = injected.fetch_add(1, Ordering::Relaxed);
                    let action = if k.is_multiple_of(2) {
                        FaultAction::Status(500)
                    } else {
                        FaultAction::DropConnection
                    };
                    state.inject(Fault::new("api/", action));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    });
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(a.post(i).await);
    }
    all_done(&a.app.queue, &ids, Duration::from_secs(300)).await;
    let took = started.elapsed();
    let mut retried: std::collections::BTreeMap<String, usize> = Default::default();
    for id in &ids {
        for h in a
            .app
            .queue
            .get(&tid(TENANT), id)
            .await
            .unwrap()
            .unwrap()
            .history
        {
            if let Some(e) = h.error {
                *retried.entry(e.chars().take(90).collect()).or_default() += 1;
            }
        }
    }
    println!("failed attempts by error: {retried:#?}");
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = injector {
        t.await.unwrap();
    }
    a.sb.state.clear_faults();
    booked_once(&a.sb, n);
    let faults = injected.load(Ordering::Relaxed);
    (took, faults.saturating_sub(1))
}

#[tokio::test]
async fn with_a_fifth_of_the_calls_failing_cold_orders_book_within_three_times_the_fault_free_time()
{
    let n = 50;
    let (steady, _) = book_cold_orders(n, false).await;
    let (flaky, faults) = book_cold_orders(n, true).await;
    let ratio = flaky.as_secs_f64() / steady.as_secs_f64();
    println!(
        "{n} cold orders: fault-free {:.2} s, with every 5th API call failing (500 / dropped; {faults} faults) {:.2} s, ratio {ratio:.2}",
        steady.as_secs_f64(),
        flaky.as_secs_f64()
    );
    assert!(faults > 0);
    assert!(ratio <= 3.0, "ratio {ratio:.2}");
}
