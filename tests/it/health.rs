//! Health, readiness, metrics and JSON errors of the HTTP surface, against a real Redis
//! that the test stops and restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use crate::helpers::tid;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn live_and_ready_answer_and_unknown_routes_get_a_json_404() {
    let settings = helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("health"));
    let app = helpers::spawn_app_with(settings, Arc::new(helpers::OkHandler)).await;
    let client = reqwest::Client::new();

    let live = client.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert!(live.headers().contains_key("x-request-id"));

    let ready = client.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["redis"], "ok");
    assert_eq!(body["workers"], "ok");

    let missing = client.get(app.url("/no/such/thing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");

    let wrong_method = client.delete(app.url("/health/live")).send().await.unwrap();
    assert!(wrong_method.status().is_client_error());
    let body: serde_json::Value = wrong_method.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn readiness_follows_redis_down_and_back_without_a_restart() {
    let mut redis = helpers::RedisServer::start();
    let settings = helpers::settings_for(&redis.url(), &helpers::unique_prefix("ready"));
    let app = helpers::spawn_app_with(settings, Arc::new(helpers::OkHandler)).await;
    let client = reqwest::Client::new();
    let status = |c: reqwest::Client, url: String| async move {
        c.get(url).send().await.unwrap().status().as_u16()
    };
    assert_eq!(status(client.clone(), app.url("/health/ready")).await, 200);

    redis.stop();
    let down = helpers::eventually(Duration::from_secs(10), || {
        let c = client.clone();
        let u = app.url("/health/ready");
        async move { (status(c, u).await == 503).then_some(()) }
    })
    .await;
    assert!(down.is_some(), "ready must turn 503 when Redis is gone");
    let body: serde_json::Value = client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("redis"),
        "{body}"
    );
    // Liveness does not depend on Redis.
    assert_eq!(status(client.clone(), app.url("/health/live")).await, 200);

    redis.restart();
    let up = helpers::eventually(Duration::from_secs(10), || {
        let c = client.clone();
        let u = app.url("/health/ready");
        async move { (status(c, u).await == 200).then_some(()) }
    })
    .await;
    assert!(up.is_some(), "ready must return to 200 when Redis is back");
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_format() {
    let prefix = helpers::unique_prefix("metrics");
    let settings = helpers::settings_for(&helpers::redis_url(), &prefix);
    let app = helpers::spawn_app_with(settings, Arc::new(helpers::OkHandler)).await;
    let id = app
        .queue
        .enqueue(&tid("shop-m"), None, "{}", None)
        .await
        .unwrap()
        .id;
    helpers::eventually(Duration::from_secs(5), || async {
        app.queue
            .get(&tid("shop-m"), &id)
            .await
            .unwrap()
            .filter(|r| r.state == minimax_connector::queue::JobState::Done)
    })
    .await
    .expect("job done");
    let res = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    for name in [
        "mmc_webhooks_received_total",
        "mmc_jobs_total{outcome=\"done\"}",
        "mmc_queue_jobs{state=\"queued\"}",
        "mmc_queue_jobs{state=\"dead\"}",
        "mmc_queue_oldest_job_age_seconds",
        "mmc_minimax_calls_total",
        "mmc_minimax_token_requests_total",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
}

#[tokio::test]
async fn graceful_stop_lets_the_in_flight_job_finish() {
    struct Slow;
    #[async_trait::async_trait]
    impl minimax_connector::worker::JobHandler for Slow {
        async fn handle(
            &self,
            _job: &minimax_connector::queue::ClaimedJob,
        ) -> Result<serde_json::Value, minimax_connector::worker::JobError> {
            tokio::time::sleep(Duration::from_millis(700)).await;
            Ok(serde_json::json!("finished"))
        }
    }
    let settings = helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("stop"));
    let mut app = helpers::spawn_app_with(settings, Arc::new(Slow)).await;
    let id = app
        .queue
        .enqueue(&tid("shop-s"), None, "{}", None)
        .await
        .unwrap()
        .id;
    helpers::eventually(Duration::from_secs(5), || async {
        app.queue
            .get(&tid("shop-s"), &id)
            .await
            .unwrap()
            .filter(|r| r.state == minimax_connector::queue::JobState::Running)
    })
    .await
    .expect("job running");
    app.stop.stop();
    app.task.take().unwrap().await.unwrap().unwrap();
    let rec = app.queue.get(&tid("shop-s"), &id).await.unwrap().unwrap();
    assert_eq!(rec.state, minimax_connector::queue::JobState::Done);
    // And the HTTP side is closed.
    assert!(reqwest::get(app.url("/health/live")).await.is_err());
}

/// Records which instance ran each job.
struct Tagged(&'static str, Arc<std::sync::Mutex<Vec<&'static str>>>);

#[async_trait::async_trait]
impl minimax_connector::worker::JobHandler for Tagged {
    async fn handle(
        &self,
        _job: &minimax_connector::queue::ClaimedJob,
    ) -> Result<serde_json::Value, minimax_connector::worker::JobError> {
        self.1.lock().unwrap().push(self.0);
        Ok(serde_json::json!({"by": self.0}))
    }
}

#[tokio::test]
async fn an_intake_instance_and_a_worker_instance_share_one_redis() {
    let prefix = helpers::unique_prefix("roles");
    let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut intake = helpers::settings_for(&helpers::redis_url(), &prefix);
    intake.role = minimax_connector::config::Role::Intake;
    let mut worker = helpers::settings_for(&helpers::redis_url(), &prefix);
    worker.role = minimax_connector::config::Role::Worker;
    helpers::put_tenant(&intake, "shop-r", helpers::tenant_body(helpers::SECRET)).await;
    let front = helpers::spawn_app_with(intake, Arc::new(Tagged("intake", ran.clone()))).await;
    let back = helpers::spawn_app_with(worker, Arc::new(Tagged("worker", ran.clone()))).await;

    // The worker-only instance serves no webhooks...
    let body = helpers::fixture_body("shopify", "order.rest-2026-07.json");
    let headers = helpers::reqwest_headers(&helpers::shopify_headers(
        "orders/paid",
        &body,
        helpers::SECRET,
    ));
    let client = reqwest::Client::new();
    let res = client
        .post(back.url("/webhooks/shopify/shop-r"))
        .headers(headers.clone())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // ...the intake-only instance accepts it, and the worker instance runs the job.
    let res = client
        .post(front.url("/webhooks/shopify/shop-r"))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec = helpers::eventually(Duration::from_secs(10), || async {
        front
            .queue
            .get(&tid("shop-r"), &id)
            .await
            .unwrap()
            .filter(|r| r.state == minimax_connector::queue::JobState::Done)
    })
    .await
    .expect("booked by the worker instance");
    assert_eq!(rec.result, Some(serde_json::json!({"by": "worker"})));
    assert_eq!(*ran.lock().unwrap(), vec!["worker"]);
    // Readiness of each names what it runs.
    let ready: serde_json::Value = client
        .get(front.url("/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["workers"], "not run by this instance");
}
