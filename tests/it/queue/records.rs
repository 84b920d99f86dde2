//! A job's record (states, history, result) and what a finished job keeps: its
//! summary, its payload until the payload retention.

use super::*;
use crate::helpers::tid;

#[tokio::test]
async fn job_record_shows_states_history_and_result() {
    let q = helpers::queue(&helpers::unique_prefix("record"));
    let id = q
        .enqueue(&tid("shop-r"), Some("k1"), r#"{"v":1}"#, None)
        .await
        .unwrap()
        .id;
    let rec = q.get(&tid("shop-r"), &id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Queued);
    assert_eq!(rec.payload, r#"{"v":1}"#);
    assert_eq!(rec.dedupe_key.as_deref(), Some("k1"));

    let Claim::Job(job) = q.claim(&tid("shop-r"), 10_000).await.unwrap() else {
        panic!("expected a job")
    };
    assert_eq!(
        q.get(&tid("shop-r"), &id).await.unwrap().unwrap().state,
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
    let rec = q.get(&tid("shop-r"), &id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Delayed);
    assert_eq!(
        rec.next_attempt_at.map(|t| t.timestamp_millis()),
        Some(at.timestamp_millis())
    );
    assert_eq!(rec.last_error.as_deref(), Some("timeout"));

    // Manual retry puts the delayed job back in line at once.
    assert_eq!(
        q.retry(&tid("shop-r"), &id).await.unwrap(),
        Some(JobState::Delayed)
    );
    let Claim::Job(job) = q.claim(&tid("shop-r"), 10_000).await.unwrap() else {
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
    let rec = q.get(&tid("shop-r"), &id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Done);
    assert_eq!(rec.result, Some(serde_json::json!({"document_id": 42})));
    let outcomes: Vec<_> = rec.history.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "manual_retry", "done"]);
    // A done job is not retried (it would book twice).
    assert_eq!(
        q.retry(&tid("shop-r"), &id).await.unwrap(),
        Some(JobState::Done)
    );
    assert_eq!(q.counts(&tid("shop-r")).await.unwrap().queued, 0);
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
    let base = q.tenant_base(&tid(tenant));
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
    let done = q
        .enqueue(&tid(tenant), Some("m1"), &payload, None)
        .await
        .unwrap();
    let dead = q
        .enqueue(&tid(tenant), Some("m2"), &payload, None)
        .await
        .unwrap();
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
        let Claim::Job(j) = q.claim(&tid(tenant), 10_000).await.unwrap() else {
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
    let rec = q.get(&tid(tenant), &done.id).await.unwrap().unwrap();
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
        q.get(&tid(tenant), &dead.id)
            .await
            .unwrap()
            .unwrap()
            .payload,
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
    let e = q.enqueue(&tid("shop-pr"), None, "{}", None).await.unwrap();
    let Claim::Job(j) = q.claim(&tid("shop-pr"), 10_000).await.unwrap() else {
        panic!()
    };
    let ok = Finish::Done {
        result: serde_json::json!({"ok": true}),
    };
    assert!(q.finish(&j, 0, &ok).await.unwrap());
    let base = q.tenant_base(&tid("shop-pr"));
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
        q.get(&tid("shop-pr"), &e.id)
            .await
            .unwrap()
            .unwrap()
            .payload,
        "{}"
    );
}
