//! Errors name the JSON path and echo no value; oversized fields are refused; the metrics
//! endpoint's token and address.

use super::*;

#[tokio::test]
async fn webhook_errors_name_the_json_path_and_echo_no_value() {
    let (app, _settings) = intake_app(|_| {}).await;
    let client = reqwest::Client::new();
    let canary = "ana.canary@example.com";

    // Generic: a boolean given as an e-mail.
    let mut ev: Value = serde_json::from_str(include_str!(
        "../../../docs/examples/generic-order-paid.json"
    ))
    .unwrap();
    ev["order"]["prices_include_tax"] = json!(canary);
    let body = serde_json::to_vec(&ev).unwrap();
    let h = helpers::generic_headers(
        "msg-err-1",
        chrono::Utc::now().timestamp(),
        &body,
        helpers::SECRET,
    );
    let (s, text) = send(
        client
            .post(app.url(&format!("/webhooks/generic/{TENANT}")))
            .headers(helpers::reqwest_headers(&h))
            .body(body),
    )
    .await;
    assert_eq!(s, 422, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["field"], "order.prices_include_tax", "{text}");
    assert_eq!(
        json["message"],
        "order.prices_include_tax: expected a boolean"
    );

    // WooCommerce: an amount given as an e-mail, deep in a line.
    let mut order: Value =
        serde_json::from_slice(&helpers::fixture_body("woocommerce", "order.json")).unwrap();
    order["line_items"][0]["total"] = json!(canary);
    let body = serde_json::to_vec(&order).unwrap();
    let h = helpers::woo_headers("order.updated", &body, helpers::SECRET);
    let (s, text) = send(
        client
            .post(app.url(&format!("/webhooks/woocommerce/{TENANT}")))
            .headers(helpers::reqwest_headers(&h))
            .body(body),
    )
    .await;
    assert_eq!(s, 422, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["field"], "line_items[0].total", "{text}");

    // Malformed JSON, correctly signed: 400 with the path where it broke.
    let body = format!(r#"{{"id": 1, "billing": {{"email": "{canary}" "#).into_bytes();
    let h = helpers::woo_headers("order.updated", &body, helpers::SECRET);
    let (s, text) = send(
        client
            .post(app.url(&format!("/webhooks/woocommerce/{TENANT}")))
            .headers(helpers::reqwest_headers(&h))
            .body(body),
    )
    .await;
    assert_eq!(s, 400, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["error"], "malformed_json");
    assert_eq!(json["field"], "billing.email", "{text}");

    // Unknown tenant and a caller-chosen content type are not repeated either.
    let body = helpers::fixture_body("woocommerce", "order.json");
    let mut h = helpers::reqwest_headers(&helpers::woo_headers(
        "order.updated",
        &body,
        helpers::SECRET,
    ));
    h.insert("content-type", "text/canary-type".parse().unwrap());
    let (s, text) = send(
        client
            .post(app.url(&format!("/webhooks/woocommerce/{TENANT}")))
            .headers(h.clone())
            .body(body.clone()),
    )
    .await;
    assert_eq!(s, 415, "{text}");
    assert!(
        text.contains("\"field\":\"headers.content-type\""),
        "{text}"
    );
    let (s, text) = send(
        client
            .post(app.url("/webhooks/woocommerce/unknown-tenant"))
            .headers(h)
            .body(body),
    )
    .await;
    assert_eq!(s, 404, "{text}");
    assert!(text.contains("\"field\":\"path.tenant\""), "{text}");

    assert_eq!(jobs(&app).await, 0);
    let logs = helpers::captured_logs();
    assert!(
        logs.contains("webhook rejected"),
        "the capture sees the rejections"
    );
    // (The URL path, tenant id included, is in the request log by design.)
    for needle in [canary, "canary-type"] {
        assert!(!logs.contains(needle), "{needle} in the log");
    }
}

#[tokio::test]
async fn admin_errors_name_the_path_refuse_oversized_fields_and_echo_nothing() {
    let (app, settings) = intake_app(|_| {}).await;
    let client = reqwest::Client::new();
    let auth = format!("Bearer {}", admin_token(&settings));
    let url = app.url("/admin/tenants/size-check");
    let put = |body: Value| client.put(&url).header("authorization", &auth).json(&body);

    let mut wrong = helpers::tenant_body("a-good-secret-of-24-chars");
    wrong["minimax"]["username"] = json!(["canary-user@example.com"]);
    wrong["settings"] = json!({"payment_due_days": "canary-days"});
    let (s, text) = send(put(wrong)).await;
    assert_eq!(s, 422, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    let fields = json["fields"].to_string();
    assert!(fields.contains("minimax.username"), "{text}");
    assert!(fields.contains("settings.payment_due_days"), "{text}");
    assert!(!text.contains("canary"), "{text}");

    let mut big = helpers::tenant_body("a-good-secret-of-24-chars");
    big["name"] = json!("n".repeat(10_000));
    big["settings"] = json!({
        "payment_methods": (0..500).map(|i| (format!("gw{i}"), json!("Kartica"))).collect::<serde_json::Map<_, _>>(),
        "woo_vat_meta_keys": vec!["k"; 500],
    });
    let (s, text) = send(put(big)).await;
    assert_eq!(s, 422, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    for field in [
        "name",
        "settings.payment_methods",
        "settings.woo_vat_meta_keys",
    ] {
        assert!(
            json["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == field),
            "{field}: {text}"
        );
    }
    assert!(!text.contains("nnnnnnnn"), "{text}");

    // The body id and the path id differ: named, neither repeated.
    let mut other = helpers::tenant_body("a-good-secret-of-24-chars");
    other["id"] = json!("canary-id");
    let (s, text) = send(put(other)).await;
    assert_eq!(s, 422, "{text}");
    assert!(!text.contains("canary-id"), "{text}");

    // actix's own 400 (a query it cannot read) is JSON, names the query, echoes nothing.
    let (s, text) = send(
        client
            .get(app.url("/admin/tenants?limit=canary-limit&canary_param=1"))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(s, 400, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["field"], "query", "{text}");
    assert!(!text.contains("canary"), "{text}");
    // Malformed JSON: 400 naming where it broke.
    let (s, text) = send(
        client
            .put(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(r#"{"minimax": {"password": "canary-pw" "#),
    )
    .await;
    assert_eq!(s, 400, "{text}");
    assert!(text.contains("\"field\":\"minimax.password\""), "{text}");
    assert!(!text.contains("canary"), "{text}");
    assert!(
        !helpers::captured_logs().contains("canary-"),
        "canary in the log"
    );
}

#[tokio::test]
async fn metrics_can_require_a_token_or_move_to_an_address_of_its_own() {
    let token = "metrics-token-of-the-tests";
    let (app, _) = intake_app(|s| s.metrics.token = Some(SecretString::from(token))).await;
    let client = reqwest::Client::new();
    let (s, text) = send(client.get(app.url("/metrics"))).await;
    assert_eq!(s, 401, "{text}");
    assert!(text.contains("\"error\":\"unauthorized\""));
    let (s, _) = send(
        client
            .get(app.url("/metrics"))
            .bearer_auth("wrong-token-of-the-tests"),
    )
    .await;
    assert_eq!(s, 401);
    let (s, text) = send(client.get(app.url("/metrics")).bearer_auth(token)).await;
    assert_eq!(s, 200);
    assert!(text.contains("mmc_"), "{text}");

    let port = helpers::free_port();
    let (app, _) = intake_app(|s| s.metrics.listen = Some(format!("127.0.0.1:{port}"))).await;
    let (s, _) = send(client.get(app.url("/metrics"))).await;
    assert_eq!(s, 404, "not on the main address");
    let (s, _) = send(client.get(app.url("/health/live"))).await;
    assert_eq!(s, 200);
    let (s, text) = send(client.get(format!("http://127.0.0.1:{port}/metrics"))).await;
    assert_eq!(s, 200, "{text}");
    let (s, _) = send(client.get(format!("http://127.0.0.1:{port}/admin/tenants"))).await;
    assert_eq!(s, 404, "only /metrics there");
}
