//! What the dashboard needed from the admin API: a tenant's jobs in every state at
//! once, the jobs of one shop order, no stale `last_error` on a booked job, payment
//! methods by code or id, and a merge patch that adds to a list.

use std::time::Duration;

use minimax_connector::queue::JobState;
use serde_json::{json, Value};

use crate::helpers;
use crate::helpers::tid;
use crate::ui_browser::{demo_app, example_order, post_order};

const TOKEN: &str = "demo-admin-token-change-me";

async fn get(app: &helpers::TestApp, path: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn patch(app: &helpers::TestApp, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .patch(app.url("/admin/tenants/demo"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn settled(app: &helpers::TestApp, id: &str, want: JobState) {
    helpers::eventually(Duration::from_secs(30), || async {
        app.queue
            .get(&tid("demo"), id)
            .await
            .unwrap()
            .filter(|j| j.state == want)
    })
    .await
    .unwrap_or_else(|| panic!("job {id} never became {want:?}"));
}

#[tokio::test]
async fn jobs_of_every_state_and_of_one_order_and_no_stale_error_once_booked() {
    let (app, settings) = demo_app("admin-views").await;
    let good = post_order(&app, &settings, &example_order(), "msg-v-good").await;
    let mut other = example_order();
    other["order"]["shop_order_id"] = json!("100046");
    other["order"]["number"] = json!("2025-00046");
    other["order"]["payment_method"] = json!({"id": "bitcoin"});
    let bad = post_order(&app, &settings, &other, "msg-v-bad").await;
    settled(&app, &good, JobState::Done).await;
    settled(&app, &bad, JobState::Dead).await;

    let (s, all) = get(&app, "/admin/tenants/demo/jobs").await;
    assert_eq!(s, 200, "{all}");
    assert_eq!(all["state"], "all");
    assert_eq!(all["total"], 2);
    assert_eq!(all["counts"]["dead"], 1);
    assert_eq!(all["counts"]["done"], 1);
    let states: Vec<&str> = all["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["dead", "done"], "dead before done");
    let (_, page) = get(&app, "/admin/tenants/demo/jobs?state=all&offset=1&limit=1").await;
    assert_eq!(
        page["jobs"][0]["id"],
        good.as_str(),
        "pages run across states"
    );

    for (order, id) in [
        ("2025-00046", &bad),
        ("100046", &bad),
        ("2025-00045", &good),
    ] {
        let (s, found) = get(&app, &format!("/admin/tenants/demo/jobs?order={order}")).await;
        assert_eq!(s, 200);
        assert_eq!(found["total"], 1, "{order}: {found}");
        assert_eq!(found["jobs"][0]["id"], id.as_str());
    }
    let (_, none) = get(&app, "/admin/tenants/demo/jobs?state=done&order=2025-00046").await;
    assert_eq!(none["total"], 0);

    // Fix the mapping by the method's Minimax id, retry: booked, and the old error is
    // history only.
    // 412537: the sandbox's "Gotovina" (cash) method, by its Minimax id.
    let cash_id = "412537";
    let (s, body) = patch(
        &app,
        json!({"settings": {"payment_methods": {"bitcoin": cash_id}}}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let res = reqwest::Client::new()
        .post(app.url(&format!("/admin/tenants/demo/jobs/{bad}/retry")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    settled(&app, &bad, JobState::Done).await;
    let (_, job) = get(&app, &format!("/admin/tenants/demo/jobs/{bad}")).await;
    assert_eq!(job["state"], "done");
    assert!(job["last_error"].is_null(), "{job}");
    let history = job["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|a| a["message"].as_str().is_some_and(|m| m.contains("bitcoin"))),
        "{history:?}"
    );
}

#[tokio::test]
async fn a_merge_patch_adds_to_a_list_without_resending_the_defaults() {
    let (app, _) = demo_app("admin-views-list").await;
    let (_, before) = get(&app, "/admin/tenants/demo").await;
    let defaults = before["settings"]["woo_vat_meta_keys"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!defaults.is_empty());
    let (s, after) = patch(
        &app,
        json!({"settings": {"woo_vat_meta_keys": {"$add": ["_my_vat_field"]}}}),
    )
    .await;
    assert_eq!(s, 200, "{after}");
    let keys = after["settings"]["woo_vat_meta_keys"].as_array().unwrap();
    assert_eq!(keys.len(), defaults.len() + 1);
    assert!(keys.starts_with(&defaults));
    assert_eq!(keys.last().unwrap(), "_my_vat_field");
    let (_, removed) = patch(
        &app,
        json!({"settings": {"woo_vat_meta_keys": {"$remove": ["_my_vat_field"]}}}),
    )
    .await;
    assert_eq!(removed["settings"]["woo_vat_meta_keys"], json!(defaults));
}

async fn send(
    app: &helpers::TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_service_does_what_the_openapi_document_says() {
    let (app, _) = demo_app("admin-views-openapi").await;
    use reqwest::Method;
    // 405 with the documented methods in `Allow`; unknown paths stay 404.
    for (method, path, allow) in [
        (Method::TRACE, "/metrics", "GET"),
        (Method::DELETE, "/admin/tenants", "GET"),
        (Method::GET, "/admin/tenants/demo/jobs/retry-dead", "POST"),
        (Method::PUT, "/admin/tenants/demo/status", "GET"),
    ] {
        let (s, h, body) = send(&app, method.clone(), path, None).await;
        assert_eq!(s, 405, "{method} {path}: {body}");
        assert_eq!(h["allow"], allow, "{method} {path}");
        assert_eq!(body["error"], "method_not_allowed");
    }
    let (s, _, _) = send(&app, Method::TRACE, "/no/such/path", None).await;
    assert_eq!(s, 404);
    let (s, _, _) = send(
        &app,
        Method::GET,
        "/admin/tenants/demo/jobs/nosuchjob",
        None,
    )
    .await;
    assert_eq!(
        s, 404,
        "a documented method on a documented path keeps its own answer"
    );

    // A merge patch's null: the name goes back to the id; the login cannot be removed.
    let (s, _, t) = send(
        &app,
        Method::PATCH,
        "/admin/tenants/demo",
        Some(json!({"name": null})),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["name"], "demo");
    let (s, _, e) = send(
        &app,
        Method::PATCH,
        "/admin/tenants/demo",
        Some(json!({"minimax": {"username": null}})),
    )
    .await;
    assert_eq!(s, 422);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("minimax.username: cannot be removed"));

    // Required login fields of a new tenant are named; integral floats are integers;
    // a fractional tolerance must be a string.
    let (s, _, e) = send(
        &app,
        Method::PUT,
        "/admin/tenants/new-one",
        Some(json!({"country": "SI", "organisation_id": 1, "minimax": {}})),
    )
    .await;
    assert_eq!(s, 422);
    let problems = e["problems"].to_string();
    assert!(
        problems.contains("minimax.username") && problems.contains("minimax.password"),
        "{e}"
    );
    let login = json!({"username": "u", "password": "p"});
    let (s, _, t) = send(
        &app,
        Method::PUT,
        "/admin/tenants/new-one",
        Some(json!({"country": "SI", "organisation_id": 7.0, "minimax": login, "settings": {"total_tolerance": 1}})),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["organisation_id"], 7);
    let (s, _, e) = send(
        &app,
        Method::PATCH,
        "/admin/tenants/new-one",
        Some(json!({"settings": {"total_tolerance": 0.05}})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    assert!(e["message"].as_str().unwrap().contains("as a string"));
}

#[tokio::test]
async fn the_cashier_may_be_given_by_the_employees_id() {
    let (app, settings) = demo_app("admin-views-cashier").await;
    // 9001: the sandbox's "Janez Novak"; cash on delivery needs the cashier.
    let (s, t) = patch(&app, json!({"settings": {"cashier_employee": "9001"}})).await;
    assert_eq!(s, 200, "{t}");
    let id = post_order(&app, &settings, &example_order(), "msg-v-cashier").await;
    helpers::eventually(Duration::from_secs(30), || async {
        app.queue
            .get(&tid("demo"), &id)
            .await
            .unwrap()
            .filter(|j| matches!(j.state, JobState::Done | JobState::Dead))
    })
    .await
    .map(|j| assert_eq!(j.state, JobState::Done, "{:?}", j.last_error))
    .expect("job finished");
}
