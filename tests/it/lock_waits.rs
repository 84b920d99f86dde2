//! The order lock while a booking waits on Minimax: with a short
//! `queue.order_lock_secs` and a slow sandbox, a booking whose reads outlast the lock
//! still books once without losing it (the lock is renewed in the background), and a
//! booking whose lock is taken away mid-run stops before its next write. Real Redis,
//! the sandbox over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::booking::{base_settings, env_tuned, generic_example, lost_answers, Env};
use crate::helpers;

use std::time::Duration;

use minimax_connector::queue::JobRecord;
use minimax_connector::sandbox::{Fault, FaultAction};

const LOST: &str = "lost the lock";

/// The booking env with a 2 s order lock.
async fn env_short_lock() -> Env {
    env_tuned(base_settings(), None, |s| s.queue.order_lock_secs = 2).await
}

fn lost_lock_attempts(rec: &JobRecord) -> usize {
    rec.history
        .iter()
        .filter(|a| a.error.as_deref().is_some_and(|e| e.contains(LOST)))
        .count()
}

#[tokio::test]
async fn a_booking_whose_adoption_search_outlasts_the_order_lock_books_once_without_losing_it() {
    let env = env_short_lock().await;
    // The first create's answer is lost, so the retry searches Minimax for it; each of
    // the search's two reads (the customer's invoices, then the candidate) takes 2 s:
    // twice the order lock's TTL before the retry's next write (the issue).
    let (_, lost) = lost_answers()[1].clone();
    env.sb
        .state
        .inject(Fault::new("/issuedinvoices", lost).method("POST").times(1));
    env.sb.state.inject(
        Fault::new(
            "/issuedinvoices",
            FaultAction::Delay(Duration::from_secs(2)),
        )
        .method("GET")
        .times(2),
    );
    let id = env.generic(&generic_example(), "msg-slow-adopt").await;
    let rec = env.done(&id).await;
    assert_eq!(
        env.invoices_for("2025-00045").len(),
        1,
        "{:?}",
        env.invoices()
    );
    assert_eq!(
        lost_lock_attempts(&rec),
        0,
        "an attempt lost the order lock while it searched: {:?}",
        rec.history
    );
    assert_eq!(rec.result.as_ref().unwrap()["adopted"], true, "{rec:?}");
    assert_eq!(
        rec.attempts, 2,
        "the lost answer and the adopting attempt: {:?}",
        rec.history
    );
}

#[tokio::test]
async fn a_booking_whose_order_lock_is_taken_away_mid_run_writes_nothing_more() {
    let env = env_short_lock().await;
    // The customer lookup (after the booking's last lock check before it creates the
    // customer) takes 3 s; meanwhile another holder takes the order lock.
    env.sb.state.inject(
        Fault::new(
            "/customers/code",
            FaultAction::Delay(Duration::from_secs(3)),
        )
        .method("GET")
        .times(1),
    );
    let id = env.generic(&generic_example(), "msg-stolen").await;
    let pool = helpers::pool(&helpers::redis_url());
    let mut conn = pool.get().await.unwrap();
    let pattern = format!("{}*booking:100045:lock", env.settings.redis.key_prefix);
    let key = helpers::eventually(Duration::from_secs(10), || {
        let pool = pool.clone();
        let pattern = pattern.clone();
        async move {
            let mut c = pool.get().await.unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut c)
                .await
                .unwrap();
            keys.into_iter().next()
        }
    })
    .await
    .expect("the booking takes the order lock");
    // Wait until the booking is inside the slow lookup, then steal the lock for 6 s.
    helpers::eventually(Duration::from_secs(10), || async {
        (env.sb.state.counters().kind("GET customers/code()") > 0).then_some(())
    })
    .await
    .expect("the booking looks the customer up");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("another-holder")
        .arg("PX")
        .arg(6000)
        .query_async(&mut conn)
        .await
        .unwrap();
    // The lookup answers about 3 s after it started; the stale booking must not write.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let c = env.sb.state.counters();
    assert_eq!(
        c.kind("POST customers"),
        0,
        "a booking that lost its lock wrote to Minimax: {:?}",
        c.by_kind
    );
    assert!(env.invoices().is_empty(), "{:?}", env.invoices());
    // Once the other holder is gone, the job books the order once.
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let rec = env.done(&id).await;
    assert_eq!(
        env.invoices_for("2025-00045").len(),
        1,
        "{:?}",
        env.invoices()
    );
    assert_eq!(env.sb.state.counters().kind("POST customers"), 1);
    assert!(lost_lock_attempts(&rec) >= 1, "{:?}", rec.history);
}
