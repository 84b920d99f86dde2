//! Who may call the admin API and where it runs, what its OpenAPI document lists, and how
//! it answers while Redis is down.

use super::*;

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
