//! Tenants through the admin API: lifecycle without secrets in answers, logs or Redis,
//! one problem per invalid field, concurrent edits.

use super::*;
use crate::helpers::tid;

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

    let read = store.get(&tid("shop-cas")).await.unwrap().unwrap();
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
        store.get(&tid("shop-cas")).await.unwrap().unwrap().name,
        "edited by A"
    );
}
