//! At-least-once delivery with lease expiry, fencing of stale workers, fairness
//! between tenants, and wake-ups that race a park.

use super::*;
use crate::helpers::tid;

#[test]
fn killed_worker_job_is_delivered_again_after_the_visibility_timeout() {
    let prefix = helpers::unique_prefix("kill");
    let started = Arc::new(std::sync::Barrier::new(2));
    // The "process" that dies: its own runtime, shut down mid-job, so no code of it
    // runs afterwards (no ack, no lease renewal), as with SIGKILL.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = rt.block_on(async {
        let q = helpers::queue(&prefix);
        q.enqueue(&tid("shop-k"), None, "{}", None)
            .await
            .unwrap()
            .id
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
        let rec = q.get(&tid("shop-k"), &id).await.unwrap().unwrap();
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
async fn a_stale_worker_cannot_overwrite_the_new_lease_holder() {
    let q = helpers::queue(&helpers::unique_prefix("fence"));
    let id = q
        .enqueue(&tid("shop-f"), None, "{}", None)
        .await
        .unwrap()
        .id;
    let Claim::Job(old) = q.claim(&tid("shop-f"), 1).await.unwrap() else {
        panic!()
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let Claim::Job(new) = q.claim(&tid("shop-f"), 10_000).await.unwrap() else {
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
        q.get(&tid("shop-f"), &id).await.unwrap().unwrap().state,
        JobState::Done
    );
}

#[tokio::test]
async fn one_tenants_backlog_does_not_hold_up_another_tenant() {
    let q = helpers::queue_with(&helpers::unique_prefix("fair"), 2);
    for i in 0..2000 {
        q.enqueue(&tid("big-shop"), None, &format!("{i}"), None)
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
            o.lock().unwrap().push(j.tenant.to_string());
            Ok(serde_json::json!(null))
        })),
        c,
    );
    // Let the big tenant's backlog get going, then one job of a small tenant arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = order.lock().unwrap().len();
    let id = q
        .enqueue(&tid("small-shop"), None, "{}", None)
        .await
        .unwrap()
        .id;
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
async fn a_wake_up_between_claim_and_park_is_not_lost() {
    let q = helpers::queue_with(&helpers::unique_prefix("park"), 1);
    let now = || minimax_connector::queue::now_ms();
    let later = Utc::now() + chrono::Duration::seconds(60);

    // A dispatcher finds only a delayed job and is about to park the tenant until then,
    // when an operator retries that job.
    let id = q
        .enqueue(&tid("shop-z"), None, "{}", Some(later))
        .await
        .unwrap()
        .id;
    let Claim::Empty {
        next_ms: Some(next),
    } = q.claim(&tid("shop-z"), 10_000).await.unwrap()
    else {
        panic!("expected nothing ready")
    };
    assert_eq!(
        q.retry(&tid("shop-z"), &id).await.unwrap(),
        Some(JobState::Delayed)
    );
    q.park(&tid("shop-z"), Some(next)).await.unwrap();
    assert!(
        q.due_tenants(now(), 10)
            .await
            .unwrap()
            .contains(&tid("shop-z")),
        "the retried job must be due now"
    );

    // At its cap: a dispatcher sees the tenant busy, the running job finishes, then
    // the dispatcher parks the tenant until the lease deadline.
    let Claim::Job(first) = q.claim(&tid("shop-z"), 10_000).await.unwrap() else {
        panic!()
    };
    q.enqueue(&tid("shop-z"), None, "{}", None).await.unwrap();
    let Claim::Busy { next_ms } = q.claim(&tid("shop-z"), 10_000).await.unwrap() else {
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
    q.park(&tid("shop-z"), Some(next_ms)).await.unwrap();
    assert!(
        q.due_tenants(now(), 10)
            .await
            .unwrap()
            .contains(&tid("shop-z")),
        "the freed slot must make the tenant due now"
    );
    // And a tenant at its cap with nothing else to do is not due (no busy loop).
    let Claim::Job(_second) = q.claim(&tid("shop-z"), 10_000).await.unwrap() else {
        panic!()
    };
    q.enqueue(&tid("shop-z"), None, "{}", None).await.unwrap();
    let Claim::Busy { next_ms } = q.claim(&tid("shop-z"), 10_000).await.unwrap() else {
        panic!()
    };
    q.park(&tid("shop-z"), Some(next_ms)).await.unwrap();
    assert!(!q
        .due_tenants(now(), 10)
        .await
        .unwrap()
        .contains(&tid("shop-z")));
}
