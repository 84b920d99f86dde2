//! The operator API over real HTTP against real Redis: authentication, the tenant
//! lifecycle (and that no secret ever shows up in a response, a log line or Redis in
//! clear), jobs (paging, inspection, retry, retry-dead, discard), the connection check
//! against a fake Minimax that rejects a password (and is never asked twice), and the
//! OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use minimax_connector::config::{Role, Settings};
use minimax_connector::jobs::Job;
use minimax_connector::queue::{Claim, Finish};
use minimax_connector::sandbox::{Sandbox, SandboxHandle, SandboxSettings};
use minimax_connector::webshop::Platform;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

const TOKEN: &str = "test-admin-token-one";
const TOKEN_2: &str = "test-admin-token-two";
const PASSWORD: &str = "pw-9f1c2e7d-NOT-IN-LOGS";
const GOOD_PASSWORD: &str = "pw-good-4471aa-NOT-IN-LOGS";
const CLIENT_SECRET: &str = "cs-5b8a11e0-NOT-IN-LOGS";
const WOO_SECRET: &str = "whk-woo-3c4d5e6f-NOT-IN-LOGS";
const SHOPIFY_SECRET: &str = "whk-shopify-8e9f0a1b-NOT-IN-LOGS";
const GENERIC_SECRET: &str = "whk-generic-2c3d4e5f-NOT-IN-LOGS";
const OTHER_SECRET: &str = "whk-other-tenant-77aa-NOT-IN-LOGS";

const SECRETS: [&str; 7] = [
    PASSWORD,
    GOOD_PASSWORD,
    CLIENT_SECRET,
    WOO_SECRET,
    SHOPIFY_SECRET,
    GENERIC_SECRET,
    OTHER_SECRET,
];

// ------------------------------------------------------------------ log capture

use helpers::{capture_logs, captured_logs};

fn assert_no_secret_in(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "secret {s:?} found in {what}");
    }
}

fn assert_no_secret_in_logs() {
    let logs = captured_logs();
    assert!(
        logs.contains("tenant stored"),
        "the capture sees this crate's log lines"
    );
    assert_no_secret_in("the logs", &logs);
}

// ------------------------------------------------------------------------ env

struct Env {
    app: helpers::TestApp,
    settings: Settings,
    client: reqwest::Client,
    /// Every response body seen, to scan for secrets.
    bodies: Mutex<Vec<String>>,
}

async fn env_with(role: Role) -> Env {
    capture_logs();
    let mut settings =
        helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("admin"));
    settings.role = role;
    settings.security.admin_tokens = vec![TOKEN.into(), TOKEN_2.into()];
    let app = helpers::spawn_app_with(settings.clone(), Arc::new(helpers::OkHandler)).await;
    Env {
        app,
        settings,
        client: reqwest::Client::new(),
        bodies: Mutex::new(Vec::new()),
    }
}

/// Intake only: no workers, so jobs stay where the test puts them.
async fn env() -> Env {
    env_with(Role::Intake).await
}

impl Env {
    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, self.app.url(path));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        self.bodies.lock().unwrap().push(text.clone());
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(
            method,
            path,
            Some(&format!("Bearer {TOKEN}")),
            body.map(|b| b.to_string()),
        )
        .await
    }

    async fn webhook(&self, tenant: &str, body: &[u8], secret: &str) -> u16 {
        let headers =
            helpers::reqwest_headers(&helpers::woo_headers("order.updated", body, secret));
        self.client
            .post(self.app.url(&format!("/webhooks/woocommerce/{tenant}")))
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    fn assert_no_secret_in_responses(&self) {
        for body in self.bodies.lock().unwrap().iter() {
            assert_no_secret_in("a response body", body);
        }
    }

    async fn raw_redis(&self, key: &str) -> Option<String> {
        let pool = helpers::pool(&self.settings.redis.url);
        let mut conn = pool.get().await.unwrap();
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap()
    }
}

fn full_tenant() -> Value {
    json!({
        "name": "Shop One",
        "country": "SI",
        "organisation_id": 1001,
        "minimax": {
            "username": "shop-one-api",
            "password": PASSWORD,
            "client_id": "shop-one-client",
            "client_secret": CLIENT_SECRET,
        },
        "webhook_secrets": {
            "woocommerce": WOO_SECRET,
            "shopify": SHOPIFY_SECRET,
            "generic": GENERIC_SECRET,
        },
        "settings": {"document": "invoice_issued", "payment_due_days": 8},
    })
}

// ------------------------------------------------------------------------ auth

#[tokio::test]
async fn admin_requires_a_valid_operator_token() {
    let env = env().await;
    let (s, body) = env.send(Method::GET, "/admin/tenants", None, None).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"], "unauthorized");
    for bad in [
        "Bearer wrong-token",
        "Bearer test-admin-token-on",
        "Bearer test-admin-token-one-and-more",
        "Basic dGVzdC1hZG1pbi10b2tlbi1vbmU=",
        "test-admin-token-one",
        "Bearer ",
    ] {
        let (s, body) = env
            .send(Method::GET, "/admin/tenants", Some(bad), None)
            .await;
        assert_eq!(s, 401, "{bad}");
        assert_eq!(body["error"], "unauthorized");
    }
    // Without a token even unknown admin routes and changes are refused the same way.
    let (s, _) = env
        .send(Method::GET, "/admin/no-such-route", None, None)
        .await;
    assert_eq!(s, 401);
    let (s, _) = env
        .send(
            Method::PUT,
            "/admin/tenants/sneaky",
            Some("Bearer nope"),
            Some(full_tenant().to_string()),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = env.call(Method::GET, "/admin/tenants/sneaky", None).await;
    assert_eq!(s, 404, "nothing was stored by the refused PUT");

    for token in [TOKEN, TOKEN_2] {
        let (s, body) = env
            .send(
                Method::GET,
                "/admin/tenants",
                Some(&format!("Bearer {token}")),
                None,
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(body["total"], 0);
    }
    let (s, body) = env.call(Method::GET, "/admin/no-such-route", None).await;
    assert_eq!(s, 404);
    assert_eq!(body["error"], "not_found");
    let (s, body) = env.call(Method::POST, "/admin/tenants", None).await;
    assert_eq!(s, 405);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn admin_runs_on_worker_only_instances() {
    let env = env_with(Role::Worker).await;
    let (s, _) = env.call(Method::GET, "/admin/tenants", None).await;
    assert_eq!(s, 200);
    let (s, _) = env.send(Method::GET, "/admin/tenants", None, None).await;
    assert_eq!(s, 401);
}

// --------------------------------------------------------------------- tenants

#[tokio::test]
async fn tenant_lifecycle_keeps_secrets_out_of_responses_logs_and_redis() {
    let env = env().await;
    let id = "shop-one";

    let (s, view) = env
        .call(
            Method::PUT,
            &format!("/admin/tenants/{id}"),
            Some(full_tenant()),
        )
        .await;
    assert_eq!(s, 201, "{view}");
    assert_eq!(view["id"], id);
    assert_eq!(view["minimax"]["password_set"], true);
    assert_eq!(view["minimax"]["client_secret_set"], true);
    assert_eq!(view["minimax"]["client_id"], "shop-one-client");
    assert_eq!(view["webhook_secrets_set"]["woocommerce"], true);
    assert_eq!(view["webhook_secrets_set"]["shopify"], true);
    assert_eq!(view["settings"]["document"], "invoice_issued");
    assert_eq!(view["settings"]["payment_due_days"], 8);

    // Replacing answers 200.
    let (s, _) = env
        .call(
            Method::PUT,
            &format!("/admin/tenants/{id}"),
            Some(full_tenant()),
        )
        .await;
    assert_eq!(s, 200);

    let (s, got) = env
        .call(Method::GET, &format!("/admin/tenants/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(got["name"], "Shop One");
    assert_eq!(got["organisation_id"], 1001);

    let (s, other) = env
        .call(
            Method::PUT,
            "/admin/tenants/shop-two",
            Some(helpers::tenant_body(OTHER_SECRET)),
        )
        .await;
    assert_eq!(s, 201, "{other}");

    let (s, list) = env.call(Method::GET, "/admin/tenants", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["total"], 2);
    let ids: Vec<&str> = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["shop-one", "shop-two"]);
    let (_, page) = env
        .call(Method::GET, "/admin/tenants?offset=1&limit=1", None)
        .await;
    assert_eq!(page["tenants"][0]["id"], "shop-two");

    // PATCH: a settings field and the name change; everything else, secrets included, stays.
    let (s, patched) = env
        .call(
            Method::PATCH,
            &format!("/admin/tenants/{id}"),
            Some(json!({"name": "Shop One Ltd", "settings": {"payment_due_days": 30}})),
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(patched["name"], "Shop One Ltd");
    assert_eq!(patched["settings"]["payment_due_days"], 30);
    assert_eq!(patched["settings"]["document"], "invoice_issued");
    assert_eq!(patched["minimax"]["username"], "shop-one-api");
    assert_eq!(patched["minimax"]["client_id"], "shop-one-client");
    assert_eq!(patched["minimax"]["password_set"], true);
    assert_eq!(patched["minimax"]["client_secret_set"], true);
    assert_eq!(patched["webhook_secrets_set"]["woocommerce"], true);
    assert_eq!(patched["created_at"], got["created_at"]);

    // The kept secret still verifies webhooks; another tenant's secret does not.
    let body = helpers::fixture_body("woocommerce", "order.json");
    assert_eq!(env.webhook(id, &body, WOO_SECRET).await, 202);
    assert_eq!(env.webhook(id, &body, OTHER_SECRET).await, 401);
    assert_eq!(env.webhook("shop-two", &body, OTHER_SECRET).await, 202);

    // An empty secret is refused (it would make signatures anyone can compute); null
    // removes one, as in a merge patch.
    let (s, refused) = env
        .call(
            Method::PATCH,
            &format!("/admin/tenants/{id}"),
            Some(json!({"webhook_secrets": {"shopify": ""}})),
        )
        .await;
    assert_eq!(s, 422, "{refused}");
    assert_eq!(refused["field"], "webhook_secrets.shopify");
    let (s, patched) = env
        .call(
            Method::PATCH,
            &format!("/admin/tenants/{id}"),
            Some(json!({"webhook_secrets": {"shopify": null, "generic": null}})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(patched["webhook_secrets_set"]["shopify"], false);
    assert_eq!(patched["webhook_secrets_set"]["generic"], false);
    assert_eq!(patched["webhook_secrets_set"]["woocommerce"], true);

    // Sealed at rest: the stored record has none of the secrets in clear.
    let prefix = &env.settings.redis.key_prefix;
    let raw = env
        .raw_redis(&format!("{prefix}:{{t:{id}}}:tenant"))
        .await
        .expect("tenant stored under its key");
    assert!(raw.contains("shop-one-api"), "the record is the tenant's");
    assert_no_secret_in("the Redis record", &raw);
    let raw2 = env
        .raw_redis(&format!("{prefix}:{{t:shop-two}}:tenant"))
        .await
        .unwrap();
    assert_no_secret_in("the Redis record", &raw2);

    let (s, status) = env
        .call(Method::GET, &format!("/admin/tenants/{id}/status"), None)
        .await;
    assert_eq!(s, 200, "{status}");
    assert_eq!(status["credentials"]["state"], "ok");
    assert_eq!(status["jobs"]["queued"], 1);
    assert_eq!(status["budget"]["daily_limit"], 1000);
    assert_eq!(status["budget"]["daily_remaining"], 1000);
    assert!(status["jobs"]["oldest_queued_age_secs"].is_u64());
    assert!(status["last_booking"].is_null());

    let (s, _) = env
        .call(Method::DELETE, &format!("/admin/tenants/{id}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, gone) = env
        .call(Method::GET, &format!("/admin/tenants/{id}"), None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(gone["error"], "unknown_tenant");
    let (s, _) = env
        .call(Method::DELETE, &format!("/admin/tenants/{id}"), None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(env.webhook(id, &body, WOO_SECRET).await, 404);
    // Its jobs stay inspectable.
    let (s, jobs) = env
        .call(
            Method::GET,
            &format!("/admin/tenants/{id}/jobs?state=queued"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(jobs["total"], 1);

    env.assert_no_secret_in_responses();
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn invalid_tenants_are_refused_with_a_problem_per_field() {
    let env = env().await;
    let (s, body) = env
        .call(
            Method::PUT,
            "/admin/tenants/bad-one",
            Some(json!({
                "country": "SI",
                "organisation_id": -5,
                "minimax": {"username": "  ", "api_base": "ftp://example.com/"},
                "webhook_secrets": {"woocommerce": "short", "magento": "long-enough-secret"},
                "settings": {"payment_due_days": 1000},
            })),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["error"], "invalid_tenant");
    let problems: Vec<String> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    for field in [
        "organisation_id:",
        "minimax.username:",
        "minimax.password:",
        "minimax.api_base:",
        "webhook_secrets.woocommerce:",
        "webhook_secrets.magento:",
        "settings.payment_due_days:",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(field)),
            "{field} missing in {problems:?}"
        );
    }
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("organisation_id"));
    assert!(!body.to_string().contains("short"), "values are not echoed");

    // Wrong types: every field named, no value echoed.
    let (s, body) = env
        .call(
            Method::PUT,
            "/admin/tenants/bad-two",
            Some(json!({
                "country": "XX",
                "organisation_id": "one",
                "minimax": {"username": "u", "password": 123_456_789_i64},
                "colour": "blue",
            })),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    let text = body["problems"].to_string();
    for field in [
        "country:",
        "organisation_id:",
        "minimax.password:",
        "colour:",
    ] {
        assert!(text.contains(field), "{field} missing in {text}");
    }
    assert!(!text.contains("123456789"));
    let (s, body) = env
        .call(Method::PUT, "/admin/tenants/bad-three", Some(json!({})))
        .await;
    assert_eq!(s, 422);
    let text = body["problems"].to_string();
    for field in [
        "country: required",
        "organisation_id: required",
        "minimax: required",
    ] {
        assert!(text.contains(field), "{field} missing in {text}");
    }
    let (s, body) = env
        .call(Method::PUT, "/admin/tenants/bad-four", Some(json!([1, 2])))
        .await;
    assert_eq!(s, 422);
    assert_eq!(body["error"], "invalid_tenant");

    // Malformed JSON is a 400.
    let (s, body) = env
        .send(
            Method::PUT,
            "/admin/tenants/bad-five",
            Some(&format!("Bearer {TOKEN}")),
            Some("{\"country\": \"SI\",".into()),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(body["error"], "invalid_json");

    // An invalid id is refused too.
    let (s, body) = env
        .call(
            Method::PUT,
            "/admin/tenants/has%20space",
            Some(full_tenant()),
        )
        .await;
    assert_eq!(s, 422, "{body}");

    // None of them was stored.
    let (_, list) = env.call(Method::GET, "/admin/tenants", None).await;
    assert_eq!(list["total"], 0);

    // Unknown tenants are 404 JSON everywhere.
    for (m, p) in [
        (Method::GET, "/admin/tenants/nobody"),
        (Method::PATCH, "/admin/tenants/nobody"),
        (Method::DELETE, "/admin/tenants/nobody"),
        (Method::GET, "/admin/tenants/nobody/status"),
        (Method::POST, "/admin/tenants/nobody/check"),
        (Method::POST, "/admin/tenants/nobody/unblock"),
    ] {
        let body = (m == Method::PATCH).then(|| json!({"name": "x"}));
        let (s, b) = env.call(m.clone(), p, body).await;
        assert_eq!(s, 404, "{m} {p}");
        assert_eq!(b["error"], "unknown_tenant", "{m} {p}");
    }

    // A PATCH that makes the tenant invalid changes nothing.
    let (s, _) = env
        .call(Method::PUT, "/admin/tenants/good", Some(full_tenant()))
        .await;
    assert_eq!(s, 201);
    let (s, body) = env
        .call(
            Method::PATCH,
            "/admin/tenants/good",
            Some(json!({"settings": {"payment_due_days": 999, "no_such_setting": 1}})),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = env
        .call(
            Method::PATCH,
            "/admin/tenants/good",
            Some(json!({"minimax": {"password": null}})),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert!(body["problems"][0]
        .as_str()
        .unwrap()
        .starts_with("minimax.password"));
    let (_, got) = env.call(Method::GET, "/admin/tenants/good", None).await;
    assert_eq!(got["settings"]["payment_due_days"], 8);
    assert_eq!(got["minimax"]["password_set"], true);

    env.assert_no_secret_in_responses();
}

// ------------------------------------------------------------------------ jobs

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
    let Claim::Job(job) = queue.claim(tenant, 60_000).await.unwrap() else {
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
        q.enqueue("tenant-a", None, &p, None).await.unwrap();
    }
    for _ in 0..2 {
        q.enqueue("tenant-b", None, &p, None).await.unwrap();
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
    let a = q.counts("tenant-a").await.unwrap();
    assert_eq!((a.dead, a.queued), (0, 5));
    let b = q.counts("tenant-b").await.unwrap();
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
    let Claim::Job(running) = q.claim("tenant-a", 60_000).await.unwrap() else {
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
    assert_eq!(q.counts("tenant-b").await.unwrap().queued, 1);
}

// ------------------------------------------------------------ connection check

/// The sandbox as the Minimax the check logs in to: it accepts only [`GOOD_PASSWORD`]
/// for `checker` and lists organisation 1001.
async fn checker_sandbox() -> SandboxHandle {
    Sandbox::spawn(SandboxSettings {
        username: "checker".into(),
        password: SecretString::from(GOOD_PASSWORD),
        client_id: "checker-client".into(),
        client_secret: SecretString::from(CLIENT_SECRET),
        organisation_id: 1001,
        organisation_name: "Demo d.o.o.".into(),
        ..SandboxSettings::default()
    })
    .await
    .expect("sandbox")
}

/// Token requests the sandbox saw, refused ones included.
fn token_calls(sb: &SandboxHandle) -> u64 {
    sb.counters().token_requests
}

fn tenant_at(base: &str, password: &str) -> Value {
    json!({
        "country": "SI",
        "organisation_id": 1001,
        "minimax": {
            "username": "checker",
            "password": password,
            "client_id": "checker-client",
            "client_secret": CLIENT_SECRET,
            "api_base": format!("{base}/SI/API/"),
            "token_url": format!("{base}/SI/AUT/OAuth20/Token"),
        },
        "webhook_secrets": {"woocommerce": WOO_SECRET},
    })
}

#[tokio::test]
async fn connection_check_reports_and_never_repeats_a_rejected_login() {
    let env = env().await;
    let fake = checker_sandbox().await;
    let t = "/admin/tenants/checker";
    let (s, _) = env
        .call(Method::PUT, t, Some(tenant_at(&fake.base_url, PASSWORD)))
        .await;
    assert_eq!(s, 201);

    // Wrong password: one token request, reported, and the credentials are blocked.
    let (s, r) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"]["kind"], "credentials_rejected");
    assert_eq!(r["blocked"], true);
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));
    assert_eq!(token_calls(&fake), 1);

    // While blocked the check refuses to run: no second failed login.
    let (s, r) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(s, 409, "{r}");
    assert_eq!(r["error"], "credentials_blocked");
    assert_eq!(token_calls(&fake), 1);
    let (_, status) = env.call(Method::GET, &format!("{t}/status"), None).await;
    assert_eq!(status["credentials"]["state"], "blocked");
    assert!(status["credentials"]["reason"]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));
    assert!(status["credentials"]["since"].is_string());

    // Re-sending unchanged credentials does not lift the block.
    let (s, _) = env
        .call(Method::PUT, t, Some(tenant_at(&fake.base_url, PASSWORD)))
        .await;
    assert_eq!(s, 200);
    let (s, _) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(s, 409);

    // An explicit unblock allows exactly one more attempt.
    let (s, r) = env.call(Method::POST, &format!("{t}/unblock"), None).await;
    assert_eq!(s, 200);
    assert_eq!(r["was_blocked"], true);
    let (_, r) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(r["error"]["kind"], "credentials_rejected");
    assert_eq!(token_calls(&fake), 2);
    let (s, _) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(s, 409);

    // New credentials lift the block; the check then succeeds.
    let (s, _) = env
        .call(
            Method::PATCH,
            t,
            Some(json!({"minimax": {"password": GOOD_PASSWORD}})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, status) = env.call(Method::GET, &format!("{t}/status"), None).await;
    assert_eq!(status["credentials"]["state"], "ok");
    let (s, r) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["organisation"]["id"], 1001);
    assert_eq!(r["organisation"]["name"], "Demo d.o.o.");
    assert_eq!(token_calls(&fake), 3);
    assert_eq!(fake.counters().kind("GET currentuser/orgs"), 1);
    // The organisation read counted against the budget.
    let (_, status) = env.call(Method::GET, &format!("{t}/status"), None).await;
    assert_eq!(status["budget"]["last_24h"], 1);
    assert_eq!(status["budget"]["this_month"], 1);
    // A second check reuses the cached token.
    let (_, r) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(r["ok"], true);
    assert_eq!(token_calls(&fake), 3);

    // An unreachable Minimax is reported as a transient error, without secrets.
    let (s, _) = env
        .call(
            Method::PUT,
            "/admin/tenants/unreachable",
            Some(tenant_at("http://127.0.0.1:9", GOOD_PASSWORD)),
        )
        .await;
    assert_eq!(s, 201);
    let (s, r) = env
        .call(Method::POST, "/admin/tenants/unreachable/check", None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"]["kind"], "transient");

    env.assert_no_secret_in_responses();
    assert_no_secret_in_logs();
}

// --------------------------------------------------------------------- openapi

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let env = env().await;
    let res = env
        .client
        .get(env.app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/webhooks/{platform}/{tenant}", &["post"][..]),
        ("/health/live", &["get"]),
        ("/health/ready", &["get"]),
        ("/metrics", &["get"]),
        ("/openapi.json", &["get"]),
        ("/admin/tenants", &["get"]),
        ("/admin/tenants/{id}", &["get", "put", "patch", "delete"]),
        ("/admin/tenants/{id}/status", &["get"]),
        ("/admin/tenants/{id}/check", &["post"]),
        ("/admin/tenants/{id}/unblock", &["post"]),
        ("/admin/tenants/{id}/resume", &["post"]),
        ("/admin/tenants/{id}/jobs", &["get"]),
        ("/admin/tenants/{id}/jobs/retry-dead", &["post"]),
        ("/admin/tenants/{id}/jobs/{job_id}", &["get", "delete"]),
        ("/admin/tenants/{id}/jobs/{job_id}/retry", &["post"]),
        ("/admin/tenants/{id}/shop", &["get", "put", "delete"]),
        ("/admin/tenants/{id}/shop/check", &["post"]),
        ("/admin/tenants/{id}/shop/poll", &["get", "post"]),
        ("/admin/tenants/{id}/backfill", &["get", "post", "delete"]),
    ] {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        for m in methods {
            assert!(item.get(*m).is_some(), "{m} {path} missing");
            let op = &item[*m];
            assert!(op["responses"].is_object(), "{m} {path} has no responses");
            if path.starts_with("/admin") {
                assert!(
                    op.get("security").is_none() || op["security"] != json!([]),
                    "{m} {path} must not opt out of auth"
                );
            }
        }
    }
    // Every $ref points at something that exists.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/").skip(1) {
        let target = piece.split('"').next().unwrap();
        let mut node = &doc;
        for seg in target.split('/') {
            node = node
                .get(seg)
                .unwrap_or_else(|| panic!("dangling $ref #/{target}"));
        }
    }
    assert!(doc["components"]["securitySchemes"]["operatorToken"].is_object());
}

// ------------------------------------------------------------------ redis down

#[tokio::test]
async fn admin_answers_503_while_redis_is_down() {
    capture_logs();
    let mut redis = helpers::RedisServer::start();
    let mut settings = helpers::settings_for(&redis.url(), &helpers::unique_prefix("admin-down"));
    settings.role = Role::Intake;
    settings.security.admin_tokens = vec![TOKEN.into()];
    let app = helpers::spawn_app_with(settings.clone(), Arc::new(helpers::OkHandler)).await;
    let env = Env {
        app,
        settings,
        client: reqwest::Client::new(),
        bodies: Mutex::new(Vec::new()),
    };
    let (s, _) = env
        .call(Method::PUT, "/admin/tenants/shop-one", Some(full_tenant()))
        .await;
    assert_eq!(s, 201);
    redis.stop();
    for (m, p) in [
        (Method::GET, "/admin/tenants/shop-one"),
        (Method::GET, "/admin/tenants"),
        (Method::GET, "/admin/tenants/shop-one/status"),
        (Method::GET, "/admin/tenants/shop-one/jobs?state=dead"),
        (Method::POST, "/admin/tenants/shop-one/jobs/retry-dead"),
    ] {
        let (s, body) = env.call(m.clone(), p, None).await;
        assert_eq!(s, 503, "{m} {p}: {body}");
        assert_eq!(body["error"], "unavailable", "{m} {p}");
    }
    // Authentication does not need Redis: a wrong token is still a 401.
    let (s, _) = env
        .send(Method::GET, "/admin/tenants", Some("Bearer nope"), None)
        .await;
    assert_eq!(s, 401);
    env.assert_no_secret_in_responses();
}

#[tokio::test]
async fn concurrent_tenant_edits_never_overwrite_each_other_silently() {
    let settings = helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("cas"));
    let store = helpers::tenant_store(&settings);
    let input: minimax_connector::tenants::TenantInput =
        serde_json::from_value(helpers::tenant_body("cas-webhook-secret")).unwrap();
    let first = input.clone().into_tenant("shop-cas", None).unwrap();
    assert_eq!(
        store.put_if_unchanged(&first, None).await.unwrap(),
        Some(true)
    );
    // Creating again "from nothing" loses: it exists now.
    assert_eq!(store.put_if_unchanged(&first, None).await.unwrap(), None);

    let read = store.get("shop-cas").await.unwrap().unwrap();
    // Two operators start from the same read; the first write wins, the second is refused.
    let mut a = read.clone();
    a.name = "edited by A".into();
    a.updated_at = chrono::Utc::now();
    let mut b = read.clone();
    b.name = "edited by B".into();
    b.updated_at = chrono::Utc::now();
    assert_eq!(
        store
            .put_if_unchanged(&a, Some(read.updated_at))
            .await
            .unwrap(),
        Some(false)
    );
    assert_eq!(
        store
            .put_if_unchanged(&b, Some(read.updated_at))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.get("shop-cas").await.unwrap().unwrap().name,
        "edited by A"
    );
}
