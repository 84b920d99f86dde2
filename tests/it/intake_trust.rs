//! Intake trust: only signed data decides what a webhook does, and hostile input or slow
//! clients change nothing.
//!
//! * replays of one captured, booked delivery with rewritten unsigned headers (topic,
//!   event id, webhook id, delivery id, shop domain, source) are answered `duplicate` or
//!   refused, leave no new job and no new Minimax document, and the booked invoice as it
//!   was (real booking into the sandbox over HTTP);
//! * degenerate webhook secrets are refused by PUT and PATCH, an empty key by the
//!   signature code even when stored before, and stored weak secrets are reported;
//! * 400/422 answers name the field's JSON path and echo no submitted value (response
//!   and log), tenant fields have size limits;
//! * `/metrics` behind a token or on its own address;
//! * stalled and trickling connections are cut at the body/head deadline while normal
//!   webhooks are answered; the connection cap holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::str::FromStr;
use std::time::{Duration, Instant};

use minimax_connector::minimax::Country;
use minimax_connector::sandbox::{Sandbox, SandboxHandle, SandboxSettings};
use minimax_connector::tenants::TenantInput;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TENANT: &str = "shop-trust";

// --------------------------------------------------------------- replays of a booking

/// A delivery that was booked: the app, the sandbox, and what a capture of it holds.
struct Booked {
    app: helpers::TestApp,
    sb: SandboxHandle,
    org: i64,
    client: reqwest::Client,
    platform: &'static str,
    headers: HeaderMap,
    body: Vec<u8>,
    job_id: String,
    /// Every document in the sandbox after the booking.
    documents: Vec<Value>,
}

/// What a replay must be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Duplicate,
    Conflict,
    Ignored,
}

/// Books one real fixture order (WooCommerce `order.json`, Shopify's paid order) through
/// the whole service into the sandbox.
async fn booked(platform: &'static str) -> Booked {
    let sb = Sandbox::spawn(SandboxSettings::default()).await.unwrap();
    let org = sb.state.settings().organisation_id;
    // The US fixtures charge sales tax at these rates (as in `booking`).
    for (i, p) in ["7.5", "6", "4.5", "4", "2"].iter().enumerate() {
        sb.state
            .add_vat_rate(
                org,
                &format!("US{i}"),
                rust_decimal::Decimal::from_str(p).unwrap(),
            )
            .unwrap();
    }
    let mut settings =
        helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("trust"));
    settings.minimax.rate_per_sec = 500.0;
    settings.minimax.burst = 500;
    let sbs = sb.state.settings().clone();
    helpers::put_tenant(
        &settings,
        TENANT,
        json!({
            "country": "SI",
            "organisation_id": org,
            "minimax": {
                "username": sbs.username,
                "password": sbs.password.expose_secret(),
                "client_id": sbs.client_id,
                "client_secret": sbs.client_secret.expose_secret(),
                "api_base": sb.api_base(Country::SI),
                "token_url": sb.token_url(Country::SI),
            },
            "webhook_secrets": {"woocommerce": helpers::SECRET, "shopify": helpers::SECRET},
            "settings": {
                "document": "invoice_issued",
                "cashier_employee": "Janez Novak",
                "payment_methods": {"bacs": "Transakcijski račun", "bogus": "Kartica"},
            },
        }),
    )
    .await;
    let app = helpers::spawn_app(settings).await;
    let (headers, body) = match platform {
        "woocommerce" => {
            let b = helpers::fixture_body("woocommerce", "order.json");
            let h = helpers::woo_headers("order.updated", &b, helpers::SECRET);
            (helpers::reqwest_headers(&h), b)
        }
        _ => {
            let b = helpers::fixture_body(
                "shopify",
                "order_with_percentage_discount.rest-2026-07.json",
            );
            let h = helpers::shopify_headers("orders/paid", &b, helpers::SECRET);
            (helpers::reqwest_headers(&h), b)
        }
    };
    let mut booked = Booked {
        app,
        sb,
        org,
        client: reqwest::Client::new(),
        platform,
        headers: headers.clone(),
        body,
        job_id: String::new(),
        documents: Vec::new(),
    };
    let (status, json) = booked.post(headers).await;
    assert_eq!(status, 202, "{json}");
    booked.job_id = json["job_id"].as_str().unwrap().to_owned();
    let rec = helpers::eventually(Duration::from_secs(30), || async {
        booked
            .app
            .queue
            .get(TENANT, &booked.job_id)
            .await
            .unwrap()
            .filter(|r| {
                matches!(
                    r.state,
                    minimax_connector::queue::JobState::Done
                        | minimax_connector::queue::JobState::Dead
                )
            })
    })
    .await
    .expect("the original delivery is booked");
    assert_eq!(
        rec.state,
        minimax_connector::queue::JobState::Done,
        "{:?}",
        rec.last_error
    );
    assert!(rec.result.unwrap()["minimax_id"].is_i64());
    booked.documents = booked.sb.state.invoices(org);
    assert_eq!(booked.documents.len(), 1, "one invoice booked");
    booked
}

impl Booked {
    async fn post(&self, headers: HeaderMap) -> (u16, Value) {
        let res = self
            .client
            .post(
                self.app
                    .url(&format!("/webhooks/{}/{TENANT}", self.platform)),
            )
            .headers(headers)
            .body(self.body.clone())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    async fn jobs(&self) -> u64 {
        let c = self.app.queue.counts(TENANT).await.unwrap();
        c.queued + c.delayed + c.running + c.dead + c.done
    }

    /// Replays the captured body and signature with `edit`ed headers.
    async fn replay(&self, edit: impl Fn(&mut HeaderMap), expect: Expect) {
        let mut headers = self.headers.clone();
        edit(&mut headers);
        let (status, json) = self.post(headers).await;
        match expect {
            Expect::Duplicate => {
                assert_eq!(status, 202, "{json}");
                assert_eq!(json["status"], "duplicate", "{json}");
                assert_eq!(json["job_id"], self.job_id.as_str(), "{json}");
            }
            Expect::Conflict => {
                assert_eq!(status, 422, "{json}");
                assert_eq!(json["error"], "topic_conflict", "{json}");
                let field = json["field"].as_str().unwrap();
                assert!(field.ends_with("-topic"), "{json}");
            }
            Expect::Ignored => {
                assert_eq!(status, 200, "{json}");
                assert_eq!(json["status"], "ignored", "{json}");
            }
        }
        assert_eq!(self.jobs().await, 1, "no new job");
        // Nothing is queued, so nothing can change later either; the documents are
        // exactly those of the original booking (same count, same content).
        assert_eq!(self.sb.state.invoices(self.org), self.documents);
    }
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    h.insert(name, value.parse().unwrap());
}

macro_rules! replay_test {
    ($name:ident, $platform:expr, $expect:expr, $edit:expr) => {
        #[tokio::test]
        async fn $name() {
            booked($platform).await.replay($edit, $expect).await;
        }
    };
}

// Shopify: the issue's attack (paid order re-sent as cancelled with a new event id), and
// each unsigned header on its own.
replay_test!(
    shopify_paid_order_replayed_as_cancelled_with_a_new_event_id_is_refused,
    "shopify",
    Expect::Conflict,
    |h| {
        set(h, "x-shopify-topic", "orders/cancelled");
        set(h, "x-shopify-event-id", "forged-event-1");
    }
);
replay_test!(
    shopify_replay_with_a_new_event_id_is_a_duplicate,
    "shopify",
    Expect::Duplicate,
    |h| set(h, "x-shopify-event-id", "forged-event-2")
);
replay_test!(
    shopify_replay_with_a_new_webhook_id_is_a_duplicate,
    "shopify",
    Expect::Duplicate,
    |h| set(h, "x-shopify-webhook-id", "forged-webhook-3")
);
replay_test!(
    shopify_replay_with_a_new_shop_domain_is_a_duplicate,
    "shopify",
    Expect::Duplicate,
    |h| set(h, "x-shopify-shop-domain", "forged.myshopify.com")
);
replay_test!(
    shopify_replay_as_orders_updated_is_a_duplicate,
    "shopify",
    Expect::Duplicate,
    |h| {
        set(h, "x-shopify-topic", "orders/updated");
        set(h, "x-shopify-event-id", "forged-event-4");
    }
);
replay_test!(
    shopify_order_replayed_as_a_customer_is_refused,
    "shopify",
    Expect::Conflict,
    |h| set(h, "x-shopify-topic", "customers/update")
);
replay_test!(
    shopify_order_replayed_as_a_refund_is_refused,
    "shopify",
    Expect::Conflict,
    |h| set(h, "x-shopify-topic", "refunds/create")
);
replay_test!(
    shopify_replay_with_every_unsigned_header_new_is_a_duplicate,
    "shopify",
    Expect::Duplicate,
    |h| {
        set(h, "x-shopify-event-id", "forged-event-5");
        set(h, "x-shopify-webhook-id", "forged-webhook-5");
        set(h, "x-shopify-shop-domain", "other.myshopify.com");
        set(h, "x-shopify-triggered-at", "2030-01-01T00:00:00Z");
        set(h, "x-shopify-topic", "orders/create");
    }
);
replay_test!(
    shopify_genuine_retry_stays_a_duplicate,
    "shopify",
    Expect::Duplicate,
    |_h| {}
);

// WooCommerce: topic, delivery id, source, webhook id.
replay_test!(
    woo_order_replayed_as_customer_updated_is_refused,
    "woocommerce",
    Expect::Conflict,
    |h| {
        set(h, "x-wc-webhook-topic", "customer.updated");
        set(h, "x-wc-webhook-resource", "customer");
    }
);
replay_test!(
    woo_replay_as_order_created_is_a_duplicate,
    "woocommerce",
    Expect::Duplicate,
    |h| set(h, "x-wc-webhook-topic", "order.created")
);
replay_test!(
    woo_replay_with_a_new_delivery_id_is_a_duplicate,
    "woocommerce",
    Expect::Duplicate,
    |h| set(h, "x-wc-webhook-delivery-id", "forged-delivery")
);
replay_test!(
    woo_replay_with_a_new_source_is_a_duplicate,
    "woocommerce",
    Expect::Duplicate,
    |h| set(h, "x-wc-webhook-source", "https://forged.example/")
);
replay_test!(
    woo_replay_with_a_new_webhook_id_is_a_duplicate,
    "woocommerce",
    Expect::Duplicate,
    |h| set(h, "x-wc-webhook-id", "999")
);
replay_test!(
    woo_replay_as_an_unbooked_topic_is_ignored,
    "woocommerce",
    Expect::Ignored,
    |h| set(h, "x-wc-webhook-topic", "product.updated")
);
replay_test!(
    woo_genuine_redelivery_stays_a_duplicate,
    "woocommerce",
    Expect::Duplicate,
    |_h| {}
);

// ------------------------------------------------------------------- plain intake env

/// An intake-only app (jobs stay queued) with the admin API, log capture on.
async fn intake_app(
    edit: impl FnOnce(&mut minimax_connector::config::Settings),
) -> (helpers::TestApp, minimax_connector::config::Settings) {
    helpers::capture_logs();
    let mut settings =
        helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("trust"));
    settings.role = minimax_connector::config::Role::Intake;
    edit(&mut settings);
    helpers::put_tenant(&settings, TENANT, helpers::tenant_body(helpers::SECRET)).await;
    let app =
        helpers::spawn_app_with(settings.clone(), std::sync::Arc::new(helpers::OkHandler)).await;
    (app, settings)
}

fn admin_token(settings: &minimax_connector::config::Settings) -> String {
    settings.security.admin_tokens[0].expose_secret().to_owned()
}

async fn jobs(app: &helpers::TestApp) -> u64 {
    let c = app.queue.counts(TENANT).await.unwrap();
    c.queued + c.delayed + c.running + c.dead + c.done
}

async fn send(req: reqwest::RequestBuilder) -> (u16, String) {
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

// -------------------------------------------------------------------------- secrets

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
    let c = app.queue.counts("legacy-weak").await.unwrap();
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

// ------------------------------------------------------------------ errors and sizes

#[tokio::test]
async fn webhook_errors_name_the_json_path_and_echo_no_value() {
    let (app, _settings) = intake_app(|_| {}).await;
    let client = reqwest::Client::new();
    let canary = "ana.canary@example.com";

    // Generic: a boolean given as an e-mail.
    let mut ev: Value =
        serde_json::from_str(include_str!("../../docs/examples/generic-order-paid.json")).unwrap();
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
            .post(app.url("/webhooks/woocommerce/canary-tenant"))
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

// ------------------------------------------------------------------------- metrics

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

// ------------------------------------------------------------- slow clients, limits

/// A raw connection that sent part of a request, then stalls or trickles.
async fn stalled(port: u16, kind: usize) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let path = format!("/webhooks/woocommerce/{TENANT}");
    let head = match kind % 3 {
        // Headers never finish.
        0 => format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"),
        // Headers done, the announced body never comes.
        1 => format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{{\"id\":"
        ),
        // Chunked, one small chunk, then nothing.
        _ => format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{{\"\r\n"
        ),
    };
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

/// Reads until the server closes the connection; what it answered first.
async fn until_closed(mut s: tokio::net::TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn two_hundred_stalled_connections_do_not_delay_a_webhook_and_are_cut_at_the_deadline() {
    let (app, _) = intake_app(|s| {
        s.server.header_timeout_ms = 1500;
        s.server.body_timeout_ms = 1500;
    })
    .await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut conns = Vec::new();
    for i in 0..200 {
        conns.push(stalled(port, i).await);
    }
    let started = Instant::now();

    // Meanwhile a normal webhook is answered at once.
    let client = reqwest::Client::new();
    let body = helpers::fixture_body("woocommerce", "order.json");
    let h = helpers::reqwest_headers(&helpers::woo_headers(
        "order.updated",
        &body,
        helpers::SECRET,
    ));
    let sent = Instant::now();
    let (s, text) = send(
        client
            .post(app.url(&format!("/webhooks/woocommerce/{TENANT}")))
            .headers(h)
            .body(body),
    )
    .await;
    let answered_in = sent.elapsed();
    assert_eq!(s, 202, "{text}");
    assert!(
        answered_in < Duration::from_secs(1),
        "answered in {answered_in:?} with 200 stalled connections"
    );
    println!("normal webhook answered in {answered_in:?} next to 200 stalled connections");

    // Every stalled connection is closed by the server after the deadline; those whose
    // head was complete got a JSON 408 first.
    let results = futures::future::join_all(
        conns
            .into_iter()
            .map(|c| until_closed(c, Duration::from_secs(30))),
    )
    .await;
    let closed_after = started.elapsed();
    for (i, r) in results.iter().enumerate() {
        let answer = r
            .as_ref()
            .unwrap_or_else(|| panic!("connection {i} still open"));
        if i % 3 != 0 {
            assert!(answer.starts_with("HTTP/1.1 408"), "{i}: {answer}");
            assert!(answer.contains("\"error\":\"timeout\""), "{i}: {answer}");
        }
    }
    assert!(
        closed_after >= Duration::from_millis(1400),
        "not before the deadline ({closed_after:?})"
    );
    println!("200 stalled connections closed after {closed_after:?} (deadline 1.5 s)");
    assert_eq!(jobs(&app).await, 1, "only the normal webhook");
}

#[tokio::test]
async fn a_trickled_body_is_cut_at_the_deadline() {
    let (app, _) = intake_app(|s| s.server.body_timeout_ms = 1000).await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /webhooks/woocommerce/{TENANT} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut rd, mut wr) = s.into_split();
    // One byte every 100 ms: always some progress, never done.
    let writer = tokio::spawn(async move {
        for _ in 0..600 {
            if wr.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), rd.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the trickling connection was not cut");
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(30));
    writer.abort();
}

#[tokio::test]
async fn the_connection_cap_holds_until_stalled_connections_are_cut() {
    let (app, _) = intake_app(|s| {
        s.server.workers = 1;
        s.server.max_connections = 4;
        s.server.header_timeout_ms = 1500;
    })
    .await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(stalled(port, 0).await);
    }
    // Let the server accept all four before the fifth arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (s, _) = send(reqwest::Client::new().get(app.url("/health/live"))).await;
    let waited = started.elapsed();
    assert_eq!(s, 200);
    // The fifth was only served once a slot was free, i.e. after the head deadline cut
    // the stalled ones (a lower bound: a loaded machine only makes it later).
    assert!(
        waited >= Duration::from_millis(1000),
        "served after {waited:?}, before the cap was freed"
    );
    for c in conns {
        assert!(until_closed(c, Duration::from_secs(30)).await.is_some());
    }
}
