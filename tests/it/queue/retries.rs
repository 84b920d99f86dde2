//! Backoff then dead letter, delayed jobs, permanent failures, waiting without
//! burning attempts, the maximum age, and manual retry and discard.

use super::*;
use crate::helpers::tid;

#[tokio::test]
async fn failing_handler_is_retried_with_backoff_then_dead_with_the_last_error() {
    let q = helpers::queue(&helpers::unique_prefix("backoff"));
    let id = q
        .enqueue(&tid("shop-b"), None, "{}", None)
        .await
        .unwrap()
        .id;
    let c = cfg();
    let pool = WorkerPool::start(
        q.clone(),
        Arc::new(FnHandler(|j: &ClaimedJob| {
            Err(JobError::Retry {
                reason: format!("minimax answered 503 (attempt {})", j.attempt),
                not_before: None,
            })
        })),
        c.clone(),
    );
    let rec = wait_for_state(&q, "shop-b", &id, JobState::Dead, Duration::from_secs(10)).await;
    pool.shutdown().await;
    assert_eq!(rec.attempts, 5);
    let outcomes: Vec<_> = rec.history.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "retry", "retry", "retry", "dead"]);
    let last = rec.last_error.unwrap();
    assert!(last.contains("gave up after 5 attempts"), "{last}");
    assert!(last.contains("503 (attempt 5)"), "{last}");
    // Each gap between attempts stays within the backoff ceiling of that attempt.
    for pair in rec.history.windows(2) {
        let end = pair[0].started_at + pair[0].duration_ms as i64;
        let gap = pair[1].started_at - end;
        let ceiling = backoff_ceiling(pair[0].attempt, c.backoff_base, c.backoff_max);
        assert!(
            gap >= 0 && gap <= ceiling.as_millis() as i64 + 150,
            "gap {gap} ms, ceiling {ceiling:?}"
        );
    }
}

#[tokio::test]
async fn a_delayed_job_waits_for_its_not_before_time() {
    let q = helpers::queue(&helpers::unique_prefix("notbefore"));
    let id = q
        .enqueue(&tid("shop-n"), None, "{}", None)
        .await
        .unwrap()
        .id;
    let starts = Arc::new(Mutex::new(Vec::new()));
    let s = starts.clone();
    let pool = WorkerPool::start(
        q.clone(),
        Arc::new(FnHandler(move |j: &ClaimedJob| {
            s.lock().unwrap().push(Utc::now());
            if j.attempt == 1 {
                Err(JobError::Retry {
                    reason: "429 Retry-After: 1".into(),
                    not_before: Some(Utc::now() + chrono::Duration::milliseconds(1200)),
                })
            } else {
                Ok(serde_json::json!("ok"))
            }
        })),
        cfg(),
    );
    let delayed =
        wait_for_state(&q, "shop-n", &id, JobState::Delayed, Duration::from_secs(5)).await;
    assert!(delayed.next_attempt_at.is_some());
    wait_for_state(&q, "shop-n", &id, JobState::Done, Duration::from_secs(5)).await;
    pool.shutdown().await;
    let starts = starts.lock().unwrap();
    let gap = starts[1] - starts[0];
    assert!(
        gap >= chrono::Duration::milliseconds(1150),
        "retried after {gap}"
    );
}

#[tokio::test]
async fn permanent_failure_goes_dead_at_once_with_the_reason() {
    let q = helpers::queue(&helpers::unique_prefix("permanent"));
    let id = q
        .enqueue(&tid("shop-p"), None, "{}", None)
        .await
        .unwrap()
        .id;
    let pool = WorkerPool::start(
        q.clone(),
        Arc::new(FnHandler(|_: &ClaimedJob| {
            Err(JobError::Permanent {
                reason: "item SKU-9 does not exist in Minimax".into(),
            })
        })),
        cfg(),
    );
    let rec = wait_for_state(&q, "shop-p", &id, JobState::Dead, Duration::from_secs(5)).await;
    pool.shutdown().await;
    assert_eq!(rec.attempts, 1);
    assert_eq!(
        rec.last_error.as_deref(),
        Some("item SKU-9 does not exist in Minimax")
    );
    assert_eq!(q.counts(&tid("shop-p")).await.unwrap().dead, 1);
}

#[tokio::test]
async fn waiting_does_not_use_up_attempts() {
    let q = helpers::queue(&helpers::unique_prefix("wait"));
    let id = q
        .enqueue(&tid("shop-w"), None, "{}", None)
        .await
        .unwrap()
        .id;
    let calls = Arc::new(AtomicU32::new(0));
    let c2 = calls.clone();
    let mut c = cfg();
    c.max_attempts = 2;
    let pool = WorkerPool::start(
        q.clone(),
        Arc::new(FnHandler(move |_: &ClaimedJob| {
            if c2.fetch_add(1, Ordering::SeqCst) < 4 {
                Err(JobError::Wait {
                    reason: "credentials blocked".into(),
                    until: Utc::now() + chrono::Duration::milliseconds(30),
                })
            } else {
                Ok(serde_json::json!("booked"))
            }
        })),
        c,
    );
    let rec = wait_for_state(&q, "shop-w", &id, JobState::Done, Duration::from_secs(10)).await;
    pool.shutdown().await;
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(rec.attempts, 1, "waits are not counted");
    assert_eq!(
        rec.history.iter().filter(|a| a.outcome == "wait").count(),
        4
    );
}

#[test]
fn full_jitter_backoff_stays_under_a_growing_capped_ceiling() {
    let base = Duration::from_millis(100);
    let max = Duration::from_secs(2);
    assert_eq!(backoff_ceiling(1, base, max), Duration::from_millis(100));
    assert_eq!(backoff_ceiling(3, base, max), Duration::from_millis(400));
    assert_eq!(backoff_ceiling(10, base, max), max);
    assert_eq!(backoff_ceiling(u32::MAX, base, max), max);
    let mut rng = rand::thread_rng();
    let samples: Vec<u128> = (0..2000)
        .map(|_| backoff(4, base, max, &mut rng).as_millis())
        .collect();
    assert!(samples.iter().all(|&ms| ms <= 800));
    let mean = samples.iter().sum::<u128>() as f64 / samples.len() as f64;
    // Full jitter: uniform in [0, 800] has mean 400.
    assert!((300.0..500.0).contains(&mean), "mean {mean}");
    assert!(samples.iter().any(|&ms| ms < 100) && samples.iter().any(|&ms| ms > 700));
}

#[test]
fn a_failing_job_older_than_the_maximum_age_is_dead_with_the_last_error() {
    let c = cfg();
    let now = Utc::now();
    let job = |age_secs: i64, attempt: u32| ClaimedJob {
        id: "j".into(),
        tenant: tid("t"),
        payload: "{}".into(),
        attempt,
        created_at: now - chrono::Duration::seconds(age_secs),
        lease: "l".into(),
    };
    let err = || JobError::Retry {
        reason: "minimax answered 503".into(),
        not_before: None,
    };
    // Young and with attempts left: delayed, counted.
    assert!(matches!(
        minimax_connector::worker::decide(&job(10, 1), err(), &c, now),
        Finish::Delay { counts: true, .. }
    ));
    // Older than max_age (3600 s): dead although attempts are left.
    match minimax_connector::worker::decide(&job(3601, 1), err(), &c, now) {
        Finish::Dead { reason } => {
            assert!(reason.contains("gave up after 3601 s"), "{reason}");
            assert!(reason.contains("minimax answered 503"), "{reason}");
        }
        other => panic!("expected dead, got {other:?}"),
    }
    // Waiting is not bounded by age: a blocked tenant's old job still waits.
    assert!(matches!(
        minimax_connector::worker::decide(
            &job(10_000, 1),
            JobError::Wait {
                reason: "blocked".into(),
                until: now
            },
            &c,
            now
        ),
        Finish::Delay { counts: false, .. }
    ));
}

#[tokio::test]
async fn dead_jobs_retry_all_touches_only_that_tenant_and_discard_removes() {
    let q = helpers::queue(&helpers::unique_prefix("retryall"));
    let mut ids = Vec::new();
    for tenant in ["shop-x", "shop-y"] {
        for _ in 0..3 {
            let id = q.enqueue(&tid(tenant), None, "{}", None).await.unwrap().id;
            let Claim::Job(j) = q.claim(&tid(tenant), 10_000).await.unwrap() else {
                panic!()
            };
            q.finish(
                &j,
                0,
                &Finish::Dead {
                    reason: "bad vat".into(),
                },
            )
            .await
            .unwrap();
            ids.push((tenant, id));
        }
    }
    assert_eq!(q.retry_all_dead(&tid("shop-x")).await.unwrap(), 3);
    let x = q.counts(&tid("shop-x")).await.unwrap();
    let y = q.counts(&tid("shop-y")).await.unwrap();
    assert_eq!((x.dead, x.queued), (0, 3));
    assert_eq!((y.dead, y.queued), (3, 0));
    let (t, id) = &ids[3];
    assert_eq!(q.discard(&tid(t), id).await.unwrap(), Some(JobState::Dead));
    assert!(q.get(&tid(t), id).await.unwrap().is_none());
    assert_eq!(q.counts(&tid("shop-y")).await.unwrap().dead, 2);
}
