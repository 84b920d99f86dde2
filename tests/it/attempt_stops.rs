//! A worker stops an attempt that must not go on: one whose lease was lost
//! (the job belongs to another worker now) writes nothing more, and one longer than
//! `worker.attempt_timeout` is stopped and retried. The real booking handler, Redis
//! and the sandbox over HTTP; a slow sandbox read keeps the attempt busy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::booking::{base_settings, env_tuned, generic_example};

use std::time::Duration;

use crate::helpers::tid;
use minimax_connector::sandbox::{Fault, FaultAction};

/// The tenant of `booking::env_tuned`.
const TENANT: &str = "shop-e2e";

/// The customer lookup, the booking's last read before its first write, takes `secs`.
fn slow_customer_lookup(secs: u64) -> Fault {
    Fault::new(
        "/customers/code",
        FaultAction::Delay(Duration::from_secs(secs)),
    )
    .method("GET")
    .times(1)
}

#[tokio::test]
async fn an_attempt_whose_lease_is_lost_is_stopped_before_it_writes() {
    let env = env_tuned(base_settings(), None, |s| {
        s.queue.visibility_timeout = 3;
        // The stopped attempt's order lock lapses soon (it is not released).
        s.queue.order_lock_secs = 2;
    })
    .await;
    env.sb.state.inject(slow_customer_lookup(4));
    let id = env.generic(&generic_example(), "msg-lease-lost").await;
    asked(&env, "get customers/code()").await;
    // The job is handed to another worker, which holds it for 6 s: its lease token and
    // deadline change.
    let pool = crate::helpers::pool(&crate::helpers::redis_url());
    let mut conn = pool.get().await.unwrap();
    let base = env.app.queue.tenant_base(&tid(TENANT));
    let _: () = redis::cmd("HSET")
        .arg(format!("{base}job:{id}"))
        .arg("lease")
        .arg("another-worker")
        .query_async(&mut conn)
        .await
        .unwrap();
    let now = minimax_connector::queue::now_ms();
    let _: () = redis::cmd("ZADD")
        .arg(format!("{base}running"))
        .arg("XX")
        .arg(now + 6_000)
        .arg(&id)
        .query_async(&mut conn)
        .await
        .unwrap();
    // The lookup answers 4 s after it started; the stopped attempt must not go on to
    // create the customer.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let c = env.sb.state.counters();
    assert_eq!(
        c.kind("POST customers"),
        0,
        "an attempt that lost its lease wrote to Minimax: {:?}",
        c.by_kind
    );
    // The other worker's lease runs out: the job is handed out again and booked once.
    let rec = env.done(&id).await;
    assert_eq!(
        env.invoices_for("2025-00045").len(),
        1,
        "{:?}",
        env.invoices()
    );
    assert_eq!(env.sb.state.counters().kind("POST customers"), 1);
    assert!(
        rec.history.iter().any(|a| a.outcome == "lease_expired"),
        "{:?}",
        rec.history
    );
}

#[tokio::test]
async fn an_attempt_longer_than_the_attempt_timeout_is_stopped_and_retried() {
    let env = env_tuned(base_settings(), None, |s| {
        s.worker.attempt_timeout = 2;
        s.queue.order_lock_secs = 2;
    })
    .await;
    env.sb.state.inject(slow_customer_lookup(6));
    let id = env.generic(&generic_example(), "msg-attempt-timeout").await;
    let rec = env.done(&id).await;
    let stopped: Vec<_> = rec
        .history
        .iter()
        .filter(|a| {
            a.error
                .as_deref()
                .is_some_and(|e| e.contains("worker.attempt_timeout"))
        })
        .collect();
    assert_eq!(stopped.len(), 1, "{:?}", rec.history);
    assert!(
        stopped[0].duration_ms < 4_000,
        "the attempt ran for {} ms",
        stopped[0].duration_ms
    );
    assert_eq!(
        env.invoices_for("2025-00045").len(),
        1,
        "{:?}",
        env.invoices()
    );
    assert_eq!(env.sb.state.counters().kind("POST customers"), 1);
}

/// Waits until the sandbox has been asked `kind` once.
async fn asked(env: &crate::booking::Env, kind: &str) {
    crate::helpers::eventually(Duration::from_secs(10), || async {
        (env.sb.state.counters().kind(kind) > 0).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the booking never asked {kind}"));
}
