//! A tenant's jobs: listed, inspected, retried and discarded.

use super::*;
use crate::helpers::tid;

fn payload() -> String {
    let body = helpers::fixture_body("woocommerce", "order.json");
    let incoming = helpers::event_for(Platform::WooCommerce, "order.updated", &body);
    Job::ShopEventV1 {
        received_at: Utc::now(),
        incoming: Box::new(incoming),
    }
    .to_payload()
    .unwrap()
}

/// Leases the tenant's next job and ends it with `finish`; returns its id.
async fn finish_next(
    queue: &minimax_connector::queue::Queue,
    tenant: &str,
    finish: Finish,
) -> String {
    let Claim::Job(job) = queue.claim(&tid(tenant), 60_000).await.unwrap() else {
        panic!("a job to claim");
    };
    assert!(queue
        .finish(&job, job.created_at.timestamp_millis(), &finish)
        .await
        .unwrap());
    job.id
}

fn dead(reason: &str) -> Finish {
    Finish::Dead {
        reason: reason.into(),
    }
}

#[tokio::test]
async fn jobs_are_listed_inspected_retried_and_discarded_per_tenant() {
    let env = env().await;
    let q = &env.app.queue;
    for t in ["tenant-a", "tenant-b"] {
        let (s, _) = env
            .call(
                Method::PUT,
                &format!("/admin/tenants/{t}"),
                Some(helpers::tenant_body(OTHER_SECRET)),
            )
            .await;
        assert_eq!(s, 201);
    }
    let p = payload();
    for _ in 0..6 {
        q.enqueue(&tid("tenant-a"), None, &p, None).await.unwrap();
    }
    for _ in 0..2 {
        q.enqueue(&tid("tenant-b"), None, &p, None).await.unwrap();
    }
    let mut dead_a = Vec::new();
    for i in 0..3 {
        dead_a.push(finish_next(q, "tenant-a", dead(&format!("VAT rate 22 unknown ({i})"))).await);
    }
    let done = finish_next(
        q,
        "tenant-a",
        Finish::Done {
            result: json!({"document_id": 4711, "document_number": "2025-000123"}),
        },
    )
    .await;
    let dead_b = finish_next(q, "tenant-b", dead("customer missing")).await;

    // Paging through the dead list.
    let base = "/admin/tenants/tenant-a/jobs";
    let (s, page1) = env
        .call(
            Method::GET,
            &format!("{base}?state=dead&offset=0&limit=2"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{page1}");
    assert_eq!(page1["total"], 3);
    assert_eq!(page1["limit"], 2);
    let (_, page2) = env
        .call(
            Method::GET,
            &format!("{base}?state=dead&offset=2&limit=2"),
            None,
        )
        .await;
    let listed: Vec<String> = page1["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["jobs"].as_array().unwrap())
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = dead_a.clone();
    expected.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert_eq!(page1["jobs"][0]["state"], "dead");
    assert_eq!(page1["jobs"][0]["event"]["kind"], "order_paid");
    let (_, queued) = env
        .call(Method::GET, &format!("{base}?state=queued"), None)
        .await;
    assert_eq!(queued["limit"], 50);
    assert_eq!(queued["total"], 2);
    assert_eq!(queued["jobs"].as_array().unwrap().len(), 2);
    for bad in [
        "?state=dead&limit=501",
        "?state=dead&limit=0",
        "?state=zombie",
    ] {
        let (s, b) = env.call(Method::GET, &format!("{base}{bad}"), None).await;
        assert_eq!(s, 400, "{bad}: {b}");
    }

    // One job in full: attempts, reason, event summary without personal data.
    let (s, job) = env
        .call(Method::GET, &format!("{base}/{}", dead_a[0]), None)
        .await;
    assert_eq!(s, 200, "{job}");
    assert_eq!(job["state"], "dead");
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["last_error"], "VAT rate 22 unknown (0)");
    let history = job["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["outcome"], "dead");
    assert_eq!(history[0]["message"], "VAT rate 22 unknown (0)");
    assert!(history[0]["started_at"].is_string());
    assert!(history[0]["duration_ms"].is_u64());
    let fixture = helpers::fixture_value("woocommerce", "order.json");
    let event = &job["event"];
    assert_eq!(event["platform"], "woocommerce");
    assert_eq!(event["topic"], "order.updated");
    assert_eq!(event["shop_order_id"], fixture["id"].to_string());
    assert_eq!(event["order_number"], fixture["number"]);
    assert_eq!(event["currency"], fixture["currency"]);
    assert_eq!(
        event["line_count"],
        fixture["line_items"].as_array().unwrap().len()
    );
    assert!(event["total"].is_string());
    let text = job.to_string();
    for personal in [
        &fixture["billing"]["email"],
        &fixture["billing"]["address_1"],
        &fixture["billing"]["phone"],
        &fixture["shipping"]["last_name"],
    ] {
        let personal = personal.as_str().unwrap();
        assert!(
            !personal.is_empty() && !text.contains(personal),
            "{personal} shown"
        );
    }
    let (s, done_job) = env.call(Method::GET, &format!("{base}/{done}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(done_job["result"]["document_id"], 4711);
    assert!(done_job["finished_at"].is_string());

    // Status: counts and the last booking.
    let (_, status) = env
        .call(Method::GET, "/admin/tenants/tenant-a/status", None)
        .await;
    assert_eq!(status["jobs"]["dead"], 3);
    assert_eq!(status["jobs"]["queued"], 2);
    assert_eq!(status["jobs"]["done"], 1);
    assert_eq!(status["last_booking"]["job_id"], done.as_str());
    assert_eq!(
        status["last_booking"]["result"]["document_number"],
        "2025-000123"
    );

    // Retry one dead job: back in line with a fresh budget; a second retry is a conflict.
    let (s, r) = env
        .call(Method::POST, &format!("{base}/{}/retry", dead_a[0]), None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["previous_state"], "dead");
    assert_eq!(r["state"], "queued");
    let (_, job) = env
        .call(Method::GET, &format!("{base}/{}", dead_a[0]), None)
        .await;
    assert_eq!(job["state"], "queued");
    assert_eq!(job["attempts"], 0);
    assert_eq!(job["history"][1]["outcome"], "manual_retry");
    let (s, r) = env
        .call(Method::POST, &format!("{base}/{}/retry", dead_a[0]), None)
        .await;
    assert_eq!(s, 409);
    assert_eq!(r["error"], "job_not_retryable");
    let (s, _) = env
        .call(Method::POST, &format!("{base}/{done}/retry"), None)
        .await;
    assert_eq!(s, 409);
    let (s, r) = env
        .call(Method::POST, &format!("{base}/no-such-job/retry"), None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(r["error"], "unknown_job");
    // Another tenant's job id is unknown here.
    let (s, _) = env
        .call(Method::POST, &format!("{base}/{dead_b}/retry"), None)
        .await;
    assert_eq!(s, 404);

    // Retry-dead touches only this tenant.
    let (s, r) = env
        .call(Method::POST, &format!("{base}/retry-dead"), None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["retried"], 2);
    let a = q.counts(&tid("tenant-a")).await.unwrap();
    assert_eq!((a.dead, a.queued), (0, 5));
    let b = q.counts(&tid("tenant-b")).await.unwrap();
    assert_eq!(b.dead, 1, "tenant B's dead job stays dead");
    let (_, b_dead) = env
        .call(Method::GET, "/admin/tenants/tenant-b/jobs?state=dead", None)
        .await;
    assert_eq!(b_dead["jobs"][0]["id"], dead_b.as_str());

    // Discard: a queued job goes; a running one cannot.
    let (s, r) = env
        .call(Method::DELETE, &format!("{base}/{}", dead_a[1]), None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["previous_state"], "queued");
    let (s, _) = env
        .call(Method::GET, &format!("{base}/{}", dead_a[1]), None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = env
        .call(Method::DELETE, &format!("{base}/{}", dead_a[1]), None)
        .await;
    assert_eq!(s, 404);
    let Claim::Job(running) = q.claim(&tid("tenant-a"), 60_000).await.unwrap() else {
        panic!("a job to claim");
    };
    let (s, r) = env
        .call(Method::DELETE, &format!("{base}/{}", running.id), None)
        .await;
    assert_eq!(s, 409);
    assert_eq!(r["error"], "job_running");
    let (s, r) = env
        .call(Method::POST, &format!("{base}/{}/retry", running.id), None)
        .await;
    assert_eq!(s, 409, "{r}");
    let (_, listed) = env
        .call(Method::GET, &format!("{base}?state=running"), None)
        .await;
    assert_eq!(listed["jobs"][0]["id"], running.id.as_str());
    assert_eq!(q.counts(&tid("tenant-b")).await.unwrap().queued, 1);
}
