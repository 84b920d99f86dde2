//! The queue's properties against a real Redis: atomic dedupe, at-least-once delivery
//! with lease expiry, backoff then dead letter, permanent failures, waiting without
//! burning attempts, fencing of stale workers, fairness, key layout, manual retry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use minimax_connector::queue::{Claim, ClaimedJob, Finish, JobState};
use minimax_connector::worker::{
    backoff, backoff_ceiling, JobError, JobHandler, WorkerConfig, WorkerPool,
};

fn cfg() -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        poll_interval: Duration::from_millis(20),
        shutdown_timeout: Duration::from_secs(5),
        sweep_interval: Duration::from_secs(60),
        visibility_timeout: Duration::from_secs(30),
        max_attempts: 5,
        max_age: Duration::from_secs(3600),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        attempt_timeout: Duration::from_secs(300),
    }
}

/// A handler driven by a closure over the attempt number.
struct FnHandler<F>(F);

#[async_trait::async_trait]
impl<F> JobHandler for FnHandler<F>
where
    F: Fn(&ClaimedJob) -> Result<serde_json::Value, JobError> + Send + Sync + 'static,
{
    async fn handle(&self, job: &ClaimedJob) -> Result<serde_json::Value, JobError> {
        (self.0)(job)
    }
}

async fn wait_for_state(
    q: &minimax_connector::queue::Queue,
    tenant: &str,
    id: &str,
    state: JobState,
    timeout: Duration,
) -> minimax_connector::queue::JobRecord {
    helpers::eventually(timeout, || async {
        q.get(tenant, id)
            .await
            .unwrap()
            .filter(|r| r.state == state)
    })
    .await
    .unwrap_or_else(|| {
        panic!("job {id} did not reach {state:?}");
    })
}

#[tokio::test]
async fn same_dedupe_key_from_50_concurrent_tasks_yields_one_job() {
    let q = helpers::queue(&helpers::unique_prefix("dedupe"));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            q.enqueue(
                "shop-a",
                Some("order-1:paid"),
                &format!("{{\"n\":{i}}}"),
                None,
            )
            .await
            .unwrap()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let created: Vec<_> = results.iter().filter(|r| r.created).collect();
    assert_eq!(created.len(), 1, "exactly one enqueue creates the job");
    assert!(
        results.iter().all(|r| r.id == created[0].id),
        "all name the same job"
    );
    let counts = q.counts("shop-a").await.unwrap();
    assert_eq!(counts.queued, 1);
    // A different key is a different job.
    let other = q
        .enqueue("shop-a", Some("order-2:paid"), "{}", None)
        .await
        .unwrap();
    assert!(other.created);
    assert_ne!(other.id, created[0].id);
}

#[tokio::test]
async fn invalid_tenant_ids_are_refused() {
    let q = helpers::queue(&helpers::unique_prefix("tenantid"));
    for bad in ["", "a}b", "x y", &"a".repeat(65)] {
        assert!(q.enqueue(bad, None, "{}", None).await.is_err(), "{bad:?}");
    }
}

#[test]
fn killed_worker_job_is_delivered_again_after_the_visibility_timeout() {
    let prefix = helpers::unique_prefix("kill");
    let started = Arc::new(std::sync::Barrier::new(2));
    // The "process" that dies: its own runtime, shut down mid-job, so no code of it
    // runs afterwards (no ack, no lease renewal), as with SIGKILL.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = rt.block_on(async {
        let q = helpers::queue(&prefix);
        q.enqueue("shop-k", None, "{}", None).await.unwrap().id
    });
    {
        let started = started.clone();
        let prefix = prefix.clone();
        rt.spawn(async move {
            let q = helpers::queue(&prefix);
            let mut c = cfg();
            c.visibility_timeout = Duration::from_secs(3);
            let handler = FnHandler(move |_: &ClaimedJob| {
                started.wait();
                std::thread::sleep(Duration::from_secs(3600));
                Ok(serde_json::json!({}))
            });
            let _pool = WorkerPool::start(q, Arc::new(handler), c);
            std::future::pending::<()>().await;
        });
    }
    started.wait();
    rt.shutdown_background();

    let rt2 = tokio::runtime::Runtime::new().unwrap();
    rt2.block_on(async {
        let q = helpers::queue(&prefix);
        let rec = q.get("shop-k", &id).await.unwrap().unwrap();
        assert_eq!(
            rec.state,
            JobState::Running,
            "the dead worker still holds the lease"
        );
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let mut c = cfg();
        c.visibility_timeout = Duration::from_secs(3);
        let pool = WorkerPool::start(
            q.clone(),
            Arc::new(FnHandler(move |j: &ClaimedJob| {
                r.fetch_add(1, Ordering::SeqCst);
                Ok(serde_json::json!({"attempt": j.attempt}))
            })),
            c,
        );
        // Not handed out again while the lease (3 s from the claim) is valid...
        let claimed = rec.updated_at;
        let check_at = claimed + chrono::Duration::milliseconds(1500);
        if let Ok(wait) = (check_at - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "redelivered before the lease ran out"
        );
        // ...but after it.
        let rec = wait_for_state(&q, "shop-k", &id, JobState::Done, Duration::from_secs(10)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(rec.attempts, 2);
        assert_eq!(rec.result, Some(serde_json::json!({"attempt": 2})));
        assert_eq!(rec.history[0].outcome, "lease_expired");
        assert_eq!(rec.history[1].outcome, "done");
        pool.shutdown().await;
    });
}

#[tokio::test]
async fn failing_handler_is_retried_with_backoff_then_dead_with_the_last_error() {
    let q = helpers::queue(&helpers::unique_prefix("backoff"));
    let id = q.enqueue("shop-b", None, "{}", None).await.unwrap().id;
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
    let id = q.enqueue("shop-n", None, "{}", None).await.unwrap().id;
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
    let id = q.enqueue("shop-p", None, "{}", None).await.unwrap().id;
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
    assert_eq!(q.counts("shop-p").await.unwrap().dead, 1);
}

#[tokio::test]
async fn waiting_does_not_use_up_attempts() {
    let q = helpers::queue(&helpers::unique_prefix("wait"));
    let id = q.enqueue("shop-w", None, "{}", None).await.unwrap().id;
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

#[tokio::test]
async fn job_record_shows_states_history_and_result() {
    let q = helpers::queue(&helpers::unique_prefix("record"));
    let id = q
        .enqueue("shop-r", Some("k1"), r#"{"v":1}"#, None)
        .await
        .unwrap()
        .id;
    let rec = q.get("shop-r", &id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Queued);
    assert_eq!(rec.payload, r#"{"v":1}"#);
    assert_eq!(rec.dedupe_key.as_deref(), Some("k1"));

    let Claim::Job(job) = q.claim("shop-r", 10_000).await.unwrap() else {
        panic!("expected a job")
    };
    assert_eq!(
        q.get("shop-r", &id).await.unwrap().unwrap().state,
        JobState::Running
    );
    let at = Utc::now() + chrono::Duration::seconds(60);
    let started = minimax_connector::queue::now_ms();
    assert!(q
        .finish(
            &job,
            started,
            &Finish::Delay {
                at,
                error: "timeout".into(),
                counts: true
            }
        )
        .await
        .unwrap());
    let rec = q.get("shop-r", &id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Delayed);
    assert_eq!(
        rec.next_attempt_at.map(|t| t.timestamp_millis()),
        Some(at.timestamp_millis())
    );
    assert_eq!(rec.last_error.as_deref(), Some("timeout"));

    // Manual retry puts the delayed job back in line at once.
    assert_eq!(
        q.retry("shop-r", &id).await.unwrap(),
        Some(JobState::Delayed)
    );
    let Claim::Job(job) = q.claim("shop-r", 10_000).await.unwrap() else {
        panic!("expected the retried job")
    };
    assert_eq!(job.attempt, 1, "manual retry restores the attempt budget");
    q.finish(
        &job,
        started,
        &Finish::Done {
            result: serde_json::json!({"document_id": 42}),
        },
    )
    .await
    .unwrap();
    let rec = q.get("shop-r", &id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Done);
    assert_eq!(rec.result, Some(serde_json::json!({"document_id": 42})));
    let outcomes: Vec<_> = rec.history.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "manual_retry", "done"]);
    // A done job is not retried (it would book twice).
    assert_eq!(q.retry("shop-r", &id).await.unwrap(), Some(JobState::Done));
    assert_eq!(q.counts("shop-r").await.unwrap().queued, 0);
}

#[tokio::test]
async fn a_stale_worker_cannot_overwrite_the_new_lease_holder() {
    let q = helpers::queue(&helpers::unique_prefix("fence"));
    let id = q.enqueue("shop-f", None, "{}", None).await.unwrap().id;
    let Claim::Job(old) = q.claim("shop-f", 1).await.unwrap() else {
        panic!()
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let Claim::Job(new) = q.claim("shop-f", 10_000).await.unwrap() else {
        panic!("expired lease must be handed out again")
    };
    assert_eq!(new.id, id);
    let t = minimax_connector::queue::now_ms();
    let stale = q
        .finish(
            &old,
            t,
            &Finish::Dead {
                reason: "late".into(),
            },
        )
        .await
        .unwrap();
    assert!(!stale, "the old lease holder's result is refused");
    assert!(q
        .finish(
            &new,
            t,
            &Finish::Done {
                result: serde_json::json!(1)
            }
        )
        .await
        .unwrap());
    assert_eq!(
        q.get("shop-f", &id).await.unwrap().unwrap().state,
        JobState::Done
    );
}

#[tokio::test]
async fn dead_jobs_retry_all_touches_only_that_tenant_and_discard_removes() {
    let q = helpers::queue(&helpers::unique_prefix("retryall"));
    let mut ids = Vec::new();
    for tenant in ["shop-x", "shop-y"] {
        for _ in 0..3 {
            let id = q.enqueue(tenant, None, "{}", None).await.unwrap().id;
            let Claim::Job(j) = q.claim(tenant, 10_000).await.unwrap() else {
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
    assert_eq!(q.retry_all_dead("shop-x").await.unwrap(), 3);
    let x = q.counts("shop-x").await.unwrap();
    let y = q.counts("shop-y").await.unwrap();
    assert_eq!((x.dead, x.queued), (0, 3));
    assert_eq!((y.dead, y.queued), (3, 0));
    let (t, id) = &ids[3];
    assert_eq!(q.discard(t, id).await.unwrap(), Some(JobState::Dead));
    assert!(q.get(t, id).await.unwrap().is_none());
    assert_eq!(q.counts("shop-y").await.unwrap().dead, 2);
}

#[tokio::test]
async fn one_tenants_backlog_does_not_hold_up_another_tenant() {
    let q = helpers::queue_with(&helpers::unique_prefix("fair"), 2);
    for i in 0..2000 {
        q.enqueue("big-shop", None, &format!("{i}"), None)
            .await
            .unwrap();
    }
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let o = order.clone();
    let mut c = cfg();
    c.concurrency = 2;
    let pool = WorkerPool::start(
        q.clone(),
        Arc::new(FnHandler(move |j: &ClaimedJob| {
            std::thread::sleep(Duration::from_millis(5));
            o.lock().unwrap().push(j.tenant.clone());
            Ok(serde_json::json!(null))
        })),
        c,
    );
    // Let the big tenant's backlog get going, then one job of a small tenant arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = order.lock().unwrap().len();
    let id = q.enqueue("small-shop", None, "{}", None).await.unwrap().id;
    wait_for_state(
        &q,
        "small-shop",
        &id,
        JobState::Done,
        Duration::from_secs(10),
    )
    .await;
    pool.shutdown().await;
    let order = order.lock().unwrap();
    let pos = order.iter().position(|t| t == "small-shop").unwrap();
    let big_jobs_in_between = pos - before;
    assert!(before > 0, "the backlog was being worked on");
    assert!(
        big_jobs_in_between <= 6,
        "{big_jobs_in_between} jobs of the big tenant ran before the small tenant's job"
    );
}

#[tokio::test]
async fn keys_carry_the_prefix_and_a_per_tenant_hash_tag() {
    let prefix = helpers::unique_prefix("keys");
    let q = helpers::queue(&prefix);
    q.enqueue("shop-h", Some("dk"), "{}", None).await.unwrap();
    let Claim::Job(j) = q.claim("shop-h", 10_000).await.unwrap() else {
        panic!()
    };
    q.finish(&j, 0, &Finish::Dead { reason: "x".into() })
        .await
        .unwrap();
    let mut conn = q.pool().get().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() >= 5, "{keys:?}");
    let tenant_keys: Vec<_> = keys.iter().filter(|k| k.contains("{t:shop-h}")).collect();
    // Everything except the two global indexes carries the tenant's hash tag.
    assert_eq!(tenant_keys.len(), keys.len() - 2, "{keys:?}");
    assert!(keys.contains(&format!("{prefix}:tenants")));
    assert!(keys.contains(&format!("{prefix}:active")));
    for k in tenant_keys {
        assert!(k.starts_with(&format!("{prefix}:{{t:shop-h}}:")), "{k}");
    }
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

#[tokio::test]
async fn a_wake_up_between_claim_and_park_is_not_lost() {
    let q = helpers::queue_with(&helpers::unique_prefix("park"), 1);
    let now = || minimax_connector::queue::now_ms();
    let later = Utc::now() + chrono::Duration::seconds(60);

    // A dispatcher finds only a delayed job and is about to park the tenant until then,
    // when an operator retries that job.
    let id = q
        .enqueue("shop-z", None, "{}", Some(later))
        .await
        .unwrap()
        .id;
    let Claim::Empty {
        next_ms: Some(next),
    } = q.claim("shop-z", 10_000).await.unwrap()
    else {
        panic!("expected nothing ready")
    };
    assert_eq!(
        q.retry("shop-z", &id).await.unwrap(),
        Some(JobState::Delayed)
    );
    q.park("shop-z", Some(next)).await.unwrap();
    assert!(
        q.due_tenants(now(), 10)
            .await
            .unwrap()
            .contains(&"shop-z".to_owned()),
        "the retried job must be due now"
    );

    // At its cap: a dispatcher sees the tenant busy, the running job finishes, then
    // the dispatcher parks the tenant until the lease deadline.
    let Claim::Job(first) = q.claim("shop-z", 10_000).await.unwrap() else {
        panic!()
    };
    q.enqueue("shop-z", None, "{}", None).await.unwrap();
    let Claim::Busy { next_ms } = q.claim("shop-z", 10_000).await.unwrap() else {
        panic!("expected busy")
    };
    q.finish(
        &first,
        now(),
        &Finish::Done {
            result: serde_json::json!(1),
        },
    )
    .await
    .unwrap();
    q.park("shop-z", Some(next_ms)).await.unwrap();
    assert!(
        q.due_tenants(now(), 10)
            .await
            .unwrap()
            .contains(&"shop-z".to_owned()),
        "the freed slot must make the tenant due now"
    );
    // And a tenant at its cap with nothing else to do is not due (no busy loop).
    let Claim::Job(_second) = q.claim("shop-z", 10_000).await.unwrap() else {
        panic!()
    };
    q.enqueue("shop-z", None, "{}", None).await.unwrap();
    let Claim::Busy { next_ms } = q.claim("shop-z", 10_000).await.unwrap() else {
        panic!()
    };
    q.park("shop-z", Some(next_ms)).await.unwrap();
    assert!(!q
        .due_tenants(now(), 10)
        .await
        .unwrap()
        .contains(&"shop-z".to_owned()));
}

#[test]
fn a_failing_job_older_than_the_maximum_age_is_dead_with_the_last_error() {
    let c = cfg();
    let now = Utc::now();
    let job = |age_secs: i64, attempt: u32| ClaimedJob {
        id: "j".into(),
        tenant: "t".into(),
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

/// A real job payload: the generic example order as the intake stores it.
fn example_job_payload() -> String {
    let event: minimax_connector::webshop::ShopEvent = serde_json::from_str(include_str!(
        "../../../docs/examples/generic-order-paid.json"
    ))
    .unwrap();
    minimax_connector::jobs::Job::ShopEventV1 {
        received_at: Utc::now(),
        incoming: Box::new(minimax_connector::webshop::IncomingEvent {
            dedupe_key: "generic:msg_mem_1".into(),
            event,
            topic: "order_paid".into(),
            source: minimax_connector::webshop::Source {
                platform: minimax_connector::webshop::Platform::Generic,
                shop: None,
            },
        }),
    }
    .to_payload()
    .unwrap()
}

/// Bytes Redis uses for one job: its hash, history and payload keys.
async fn job_memory(q: &minimax_connector::queue::Queue, tenant: &str, id: &str) -> (u64, bool) {
    let base = q.tenant_base(tenant);
    let mut conn = q.pool().get().await.unwrap();
    let mut total = 0;
    let mut has_payload = false;
    for key in [
        format!("{base}job:{id}"),
        format!("{base}hist:{id}"),
        format!("{base}payload:{id}"),
    ] {
        if let Some(n) = conn.memory_usage(&key).await.unwrap() {
            total += n;
            has_payload |= key.contains(":payload:");
        }
    }
    (total, has_payload)
}

#[tokio::test]
async fn a_finished_job_keeps_its_summary_and_drops_its_payload_and_a_dead_job_keeps_all() {
    let prefix = helpers::unique_prefix("mem");
    let q = minimax_connector::queue::Queue::new(
        helpers::pool(&helpers::redis_url()),
        minimax_connector::queue::QueueConfig {
            prefix: prefix.clone(),
            dedupe_ttl_secs: 8 * 24 * 3600,
            per_tenant_concurrency: 2,
            done_retention_secs: 30 * 24 * 3600,
            payload_retention_secs: 0,
        },
    );
    let payload = example_job_payload();
    let result = serde_json::json!({"document": "issued_invoice", "minimax_id": 123456,
        "number": "2026-123", "total": "121.00", "vat": {"22": "21.82"}});
    let tenant = "shop-mem";
    let done = q.enqueue(tenant, Some("m1"), &payload, None).await.unwrap();
    let dead = q.enqueue(tenant, Some("m2"), &payload, None).await.unwrap();
    let (queued, has) = job_memory(&q, tenant, &done.id).await;
    assert!(has, "a queued job has its payload");
    for (expect, finish) in [
        (&done.id, Finish::Done { result }),
        (
            &dead.id,
            Finish::Dead {
                reason: "unknown item code".into(),
            },
        ),
    ] {
        let Claim::Job(j) = q.claim(tenant, 10_000).await.unwrap() else {
            panic!("no job")
        };
        assert_eq!(&j.id, expect);
        assert!(q
            .finish(&j, j.created_at.timestamp_millis(), &finish)
            .await
            .unwrap());
    }
    let (finished, has) = job_memory(&q, tenant, &done.id).await;
    assert!(
        !has,
        "the payload of a done job is dropped (payload_retention 0)"
    );
    let rec = q.get(tenant, &done.id).await.unwrap().unwrap();
    assert!(rec.payload.is_empty());
    let summary = rec.summary.expect("a done job keeps its event summary");
    assert_eq!(summary["topic"], "order_paid");
    assert_eq!(summary["dedupe_key"], "generic:msg_mem_1");
    assert_eq!(rec.result.unwrap()["number"], "2026-123");
    assert_eq!(rec.history.len(), 1);
    assert!(finished < queued, "{finished} ≥ {queued}");
    let (dead_bytes, has) = job_memory(&q, tenant, &dead.id).await;
    assert!(has, "a dead job keeps its payload");
    assert_eq!(
        q.get(tenant, &dead.id).await.unwrap().unwrap().payload,
        payload
    );
    println!(
        "memory per job (MEMORY USAGE, payload {} bytes): queued {queued} B, done before the trim \
         (payload kept) ≈ {} B, done after the trim {finished} B, dead {dead_bytes} B",
        payload.len(),
        dead_bytes
    );
}

#[tokio::test]
async fn a_done_jobs_payload_expires_after_the_payload_retention() {
    let prefix = helpers::unique_prefix("pret");
    let q = helpers::queue(&prefix); // payload_retention 600 s, done_retention 3600 s
    let e = q.enqueue("shop-pr", None, "{}", None).await.unwrap();
    let Claim::Job(j) = q.claim("shop-pr", 10_000).await.unwrap() else {
        panic!()
    };
    let ok = Finish::Done {
        result: serde_json::json!({"ok": true}),
    };
    assert!(q.finish(&j, 0, &ok).await.unwrap());
    let base = q.tenant_base("shop-pr");
    let mut conn = q.pool().get().await.unwrap();
    let ttl = |key: String| {
        let mut c = redis::cmd("TTL");
        c.arg(key);
        c
    };
    let payload_ttl: i64 = ttl(format!("{base}payload:{}", e.id))
        .query_async(&mut conn)
        .await
        .unwrap();
    let job_ttl: i64 = ttl(format!("{base}job:{}", e.id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=600).contains(&payload_ttl), "{payload_ttl}");
    assert!((601..=3600).contains(&job_ttl), "{job_ttl}");
    // Still readable until then.
    assert_eq!(
        q.get("shop-pr", &e.id).await.unwrap().unwrap().payload,
        "{}"
    );
}
