//! The queue's policies for recovery: retries until `max_age` while Minimax is
//! unavailable, wake-ups that leave backoffs alone, lease renewal of long jobs.

use super::*;
use crate::helpers::tid;

fn worker_cfg() -> minimax_connector::worker::WorkerConfig {
    minimax_connector::worker::WorkerConfig {
        concurrency: 4,
        poll_interval: Duration::from_millis(20),
        shutdown_timeout: Duration::from_secs(5),
        sweep_interval: Duration::from_secs(60),
        visibility_timeout: Duration::from_secs(3),
        max_attempts: 3,
        max_age: Duration::from_secs(3600),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(600),
        attempt_timeout: Duration::from_secs(300),
    }
}

#[test]
fn minimax_being_unavailable_retries_until_max_age_whatever_the_attempt_count() {
    use minimax_connector::queue::{ClaimedJob, Finish};
    use minimax_connector::worker::{decide, JobError};
    let c = worker_cfg();
    let now = chrono::Utc::now();
    let job = |age_secs: i64, attempt: u32| ClaimedJob {
        id: "j".into(),
        tenant: tid("t"),
        payload: "{}".into(),
        attempt,
        created_at: now - chrono::Duration::seconds(age_secs),
        lease: "l".into(),
    };
    let unavailable = || JobError::Unavailable {
        reason: "HTTP 503".into(),
        not_before: None,
    };
    // Past max_attempts: still retried, counted, and never later than max_age.
    match decide(&job(3500, 40), unavailable(), &c, now) {
        Finish::Delay { at, counts, .. } => {
            assert!(counts);
            assert!(at <= now + chrono::Duration::seconds(100), "{at}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    // At max_age: dead with the reason.
    assert!(matches!(
        decide(&job(3600, 2), unavailable(), &c, now),
        Finish::Dead { reason } if reason.contains("HTTP 503")
    ));
    // Other retryable failures keep the attempt limit.
    assert!(matches!(
        decide(
            &job(10, 3),
            JobError::Retry {
                reason: "storage".into(),
                not_before: None
            },
            &c,
            now
        ),
        Finish::Dead { .. }
    ));
}

#[tokio::test]
async fn waking_a_tenant_moves_its_waiting_jobs_up_and_leaves_backoffs_alone() {
    use minimax_connector::queue::{Claim, Finish};
    let q = helpers::queue(&helpers::unique_prefix("wake"));
    let t = "shop-wake";
    let waiting = q.enqueue(&tid(t), None, "{}", None).await.unwrap().id;
    let backoff = q.enqueue(&tid(t), None, "{}", None).await.unwrap().id;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    for (id, counts) in [(&waiting, false), (&backoff, true)] {
        let Claim::Job(job) = q.claim(&tid(t), 10_000).await.unwrap() else {
            panic!("no job")
        };
        assert_eq!(&job.id, id);
        let f = Finish::Delay {
            at: later,
            error: "x".into(),
            counts,
        };
        assert!(q.finish(&job, 0, &f).await.unwrap());
    }
    assert_eq!(q.wake_waiting(&tid(t)).await.unwrap(), 1);
    assert_eq!(
        q.get(&tid(t), &waiting).await.unwrap().unwrap().state,
        JobState::Queued
    );
    assert_eq!(
        q.get(&tid(t), &backoff).await.unwrap().unwrap().state,
        JobState::Delayed
    );
    let now = minimax_connector::queue::now_ms();
    assert!(q.due_tenants(now + 1, 10).await.unwrap().contains(&tid(t)));
}

#[tokio::test]
async fn a_job_longer_than_its_short_lease_runs_once_because_the_lease_is_renewed() {
    use minimax_connector::worker::{JobError, JobHandler, WorkerPool};
    struct Slow(Arc<AtomicU64>);
    #[async_trait::async_trait]
    impl JobHandler for Slow {
        async fn handle(
            &self,
            _job: &minimax_connector::queue::ClaimedJob,
        ) -> Result<Value, JobError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(7)).await;
            Ok(json!({}))
        }
    }
    let q = helpers::queue(&helpers::unique_prefix("renew"));
    let runs = Arc::new(AtomicU64::new(0));
    let id = q
        .enqueue(&tid("shop-r"), None, "{}", None)
        .await
        .unwrap()
        .id;
    // Two pools (two instances) against one queue, leases of 3 s.
    let a = WorkerPool::start(q.clone(), Arc::new(Slow(runs.clone())), worker_cfg());
    let b = WorkerPool::start(q.clone(), Arc::new(Slow(runs.clone())), worker_cfg());
    let done = helpers::eventually(Duration::from_secs(30), || async {
        q.get(&tid("shop-r"), &id)
            .await
            .unwrap()
            .filter(|r| r.state == JobState::Done)
    })
    .await
    .expect("done");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{:?}", done.history);
    assert_eq!(done.attempts, 1);
    a.shutdown().await;
    b.shutdown().await;
}
