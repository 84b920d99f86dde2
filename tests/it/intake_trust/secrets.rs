//! Webhook secrets: degenerate ones refused naming the field only, weak stored ones
//! reported.

use super::*;
use crate::helpers::tid;

/// Secrets no tenant may get, each with a canary so a response that echoed it shows.
fn degenerate_secrets() -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
    vec![
        ("empty", String::new()),
        ("blank", "                    ".into()),
        ("short", "canary-short1".into()),
        ("whsec_ not base64", "whsec_canary-not-base64!!".into()),
        ("whsec_ of 15 bytes", format!("whsec_{}", b64(15))),
    ]
}

#[tokio::test]
async fn put_and_patch_refuse_degenerate_webhook_secrets_naming_the_field_only() {
    let (app, settings) = intake_app(|_| {}).await;
    let client = reqwest::Client::new();
    let auth = format!("Bearer {}", admin_token(&settings));
    let url = app.url("/admin/tenants/secret-check");
    for platform in ["woocommerce", "shopify", "generic"] {
        for (label, secret) in degenerate_secrets() {
            let mut body = helpers::tenant_body("a-good-secret-of-24-chars");
            body["webhook_secrets"] = json!({ platform: secret });
            for method in [reqwest::Method::PUT, reqwest::Method::PATCH] {
                if method == reqwest::Method::PATCH {
                    // PATCH needs an existing tenant; create it with a good secret.
                    let good = helpers::tenant_body("a-good-secret-of-24-chars");
                    let (s, _) =
                        send(client.put(&url).header("authorization", &auth).json(&good)).await;
                    assert!(s == 200 || s == 201);
                    body = json!({"webhook_secrets": { platform: secret }});
                }
                let (s, text) = send(
                    client
                        .request(method.clone(), &url)
                        .header("authorization", &auth)
                        .json(&body),
                )
                .await;
                assert_eq!(s, 422, "{method} {platform} {label}: {text}");
                let json: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    json["field"],
                    format!("webhook_secrets.{platform}"),
                    "{text}"
                );
                if !secret.trim().is_empty() {
                    assert!(!text.contains(&secret), "{label} echoed: {text}");
                    assert!(!text.contains("canary"), "{label} echoed: {text}");
                }
            }
        }
    }
    // Worth the name: 16 characters, or whsec_ of 16 bytes.
    use base64::Engine as _;
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([9u8; 16])
    );
    let mut body = helpers::tenant_body("sixteen-chars-ok");
    body["webhook_secrets"]["generic"] = json!(whsec);
    let (s, text) = send(client.put(&url).header("authorization", &auth).json(&body)).await;
    assert_eq!(s, 200, "{text}");
    assert!(
        !helpers::captured_logs().contains("canary-"),
        "secrets in the log"
    );
}

#[tokio::test]
async fn an_empty_key_stored_before_is_refused_and_weak_secrets_are_reported() {
    let (app, settings) = intake_app(|_| {}).await;
    // As an older version could have stored them: bypassing today's validation.
    let store = helpers::tenant_store(&settings);
    let input: TenantInput = serde_json::from_value(helpers::tenant_body(helpers::SECRET)).unwrap();
    let mut tenant = input.into_tenant("legacy-weak", None).unwrap();
    tenant
        .webhook_secrets
        .insert("woocommerce".into(), SecretString::from(""));
    tenant
        .webhook_secrets
        .insert("shopify".into(), SecretString::from("short-legacy"));
    store.put(&tenant).await.unwrap();

    let body = helpers::fixture_body("woocommerce", "order.json");
    // Signed with the empty key: an HMAC anyone can compute.
    let headers = helpers::reqwest_headers(&helpers::woo_headers("order.updated", &body, ""));
    let (s, text) = send(
        reqwest::Client::new()
            .post(app.url("/webhooks/woocommerce/legacy-weak"))
            .headers(headers)
            .body(body),
    )
    .await;
    assert_eq!(s, 500, "refused as our configuration problem: {text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["error"], "invalid_secret");
    let c = app.queue.counts(&tid("legacy-weak")).await.unwrap();
    assert_eq!(c.queued + c.done + c.delayed + c.running + c.dead, 0);

    // The weak (but non-empty) secret still verifies, and both are reported with the
    // tenant id, never the secret: by the store, and as warnings at start-up.
    let restarted =
        helpers::spawn_app_with(settings.clone(), std::sync::Arc::new(helpers::OkHandler)).await;
    let warned = helpers::eventually(Duration::from_secs(10), || async {
        let logs = helpers::captured_logs();
        let lines: Vec<String> = logs
            .lines()
            .filter(|l| l.contains("weak webhook secret") && l.contains("legacy-weak"))
            .map(str::to_owned)
            .collect();
        (lines.len() >= 2).then_some(lines)
    })
    .await
    .expect("start-up warns about both weak secrets");
    assert!(
        warned.iter().all(|l| !l.contains("short-legacy")),
        "{warned:?}"
    );
    drop(restarted);
    let weak = store.weak_secrets().await.unwrap();
    let mine: Vec<_> = weak.iter().filter(|(t, _, _)| t == "legacy-weak").collect();
    assert_eq!(mine.len(), 2, "{weak:?}");
    assert!(mine.iter().any(|(_, p, _)| p == "woocommerce"));
    assert!(mine.iter().any(|(_, p, _)| p == "shopify"));
    assert!(!format!("{weak:?}").contains("short-legacy"));
}
