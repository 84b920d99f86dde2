//! Webhook intake over HTTP: real fixture bodies with real signatures are stored as
//! jobs; every kind of bad request gets its status, a JSON error and no job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::tid;
use minimax_connector::jobs::Job;
use minimax_connector::queue::JobState;
use serde_json::Value;

const TENANT: &str = "shop-one";

struct Env {
    app: helpers::TestApp,
    client: reqwest::Client,
}

/// An intake-only app (no workers, so jobs stay queued for inspection).
async fn env() -> Env {
    let mut settings =
        helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("hooks"));
    settings.role = minimax_connector::config::Role::Intake;
    settings.server.body_limit_bytes = 256 * 1024;
    helpers::put_tenant(&settings, TENANT, helpers::tenant_body(helpers::SECRET)).await;
    helpers::put_tenant(
        &settings,
        "shop-two",
        helpers::tenant_body("another-tenant-secret"),
    )
    .await;
    let mut only_shopify = helpers::tenant_body(helpers::SECRET);
    only_shopify["webhook_secrets"] = serde_json::json!({"shopify": helpers::SECRET});
    helpers::put_tenant(&settings, "no-woo", only_shopify).await;
    let app = helpers::spawn_app_with(settings, Arc::new(helpers::OkHandler)).await;
    Env {
        app,
        client: reqwest::Client::new(),
    }
}

impl Env {
    async fn post(
        &self,
        platform: &str,
        tenant: &str,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let res = self
            .client
            .post(self.app.url(&format!("/webhooks/{platform}/{tenant}")))
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn jobs(&self) -> u64 {
        let c = self.app.queue.counts(&tid(TENANT)).await.unwrap();
        c.queued + c.delayed + c.running + c.dead + c.done
    }
}

fn woo(topic: &str, body: &[u8], secret: &str) -> reqwest::header::HeaderMap {
    helpers::reqwest_headers(&helpers::woo_headers(topic, body, secret))
}
fn shopify(topic: &str, body: &[u8], secret: &str) -> reqwest::header::HeaderMap {
    helpers::reqwest_headers(&helpers::shopify_headers(topic, body, secret))
}
fn generic(id: &str, body: &[u8], secret: &str) -> reqwest::header::HeaderMap {
    helpers::reqwest_headers(&helpers::generic_headers(
        id,
        chrono::Utc::now().timestamp(),
        body,
        secret,
    ))
}

fn generic_body() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/examples/generic-order-paid.json"
    ))
    .unwrap()
}

/// (platform, headers, body) of a valid delivery per platform.
fn valid(platform: &str, secret: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
    match platform {
        "woocommerce" => {
            let b = helpers::fixture_body("woocommerce", "order.json");
            (woo("order.updated", &b, secret), b)
        }
        "shopify" => {
            let b = helpers::fixture_body("shopify", "order.rest-2026-07.json");
            (shopify("orders/paid", &b, secret), b)
        }
        _ => {
            let b = generic_body();
            (generic("msg_2b7f0c", &b, secret), b)
        }
    }
}

#[tokio::test]
async fn every_order_and_customer_fixture_is_accepted_and_stored_as_its_canonical_event() {
    let env = env().await;
    let cases: Vec<(&str, &str, &str)> = vec![
        ("woocommerce", "order.json", "order.updated"),
        ("woocommerce", "order_with_coupon.ios.json", "order.created"),
        (
            "woocommerce",
            "order_prices_include_tax.ios.json",
            "order.updated",
        ),
        (
            "woocommerce",
            "order_partially_refunded.ios.json",
            "order.updated",
        ),
        ("woocommerce", "customer.json", "customer.updated"),
        ("shopify", "order.rest-2026-07.json", "orders/paid"),
        ("shopify", "order.python-fixture.json", "orders/create"),
        (
            "shopify",
            "order_with_percentage_discount.rest-2026-07.json",
            "orders/create",
        ),
        (
            "shopify",
            "order_cancelled.rest-2026-07.json",
            "orders/cancelled",
        ),
        ("shopify", "refund.rest-2026-07.json", "refunds/create"),
        ("shopify", "customer.rest-2026-07.json", "customers/update"),
    ];
    for (i, (platform, file, topic)) in cases.iter().enumerate() {
        let body = helpers::fixture_body(platform, file);
        let mut headers = match *platform {
            "woocommerce" => woo(topic, &body, helpers::SECRET),
            _ => shopify(topic, &body, helpers::SECRET),
        };
        // Distinct deliveries: Shopify event ids differ per delivery.
        headers.insert("x-shopify-event-id", format!("evt-{i}").parse().unwrap());
        let (status, json) = env.post(platform, TENANT, headers, body.clone()).await;
        assert_eq!(status, 202, "{platform}/{file}: {json}");
        assert_eq!(json["status"], "accepted", "{file}");
        let id = json["job_id"].as_str().unwrap();
        let rec = env.app.queue.get(&tid(TENANT), id).await.unwrap().unwrap();
        assert_eq!(rec.state, JobState::Queued);
        let Job::ShopEventV1 { incoming, .. } = Job::from_payload(&rec.payload).unwrap() else {
            panic!("a webhook job is a shop event")
        };
        // The stored event is what the parser makes of the same body.
        let direct = helpers::event_for(platform.parse().unwrap(), topic, &body);
        assert_eq!(incoming.event, direct.event, "{file}");
        if let Some(order) = incoming.event.order() {
            let fixture: Value = serde_json::from_slice(&body).unwrap();
            let total = fixture["total"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    fixture["total_price"]
                        .to_string()
                        .trim_matches('"')
                        .to_owned()
                });
            assert_eq!(order.total, total.parse().unwrap(), "{file} total");
        }
    }
    assert_eq!(env.jobs().await, cases.len() as u64);
}

#[tokio::test]
async fn a_duplicate_delivery_names_the_existing_job_and_creates_none() {
    let env = env().await;
    for platform in ["woocommerce", "shopify", "generic"] {
        let before = env.jobs().await;
        let (h, b) = valid(platform, helpers::SECRET);
        // The shop's retry: a new delivery id (WooCommerce, Shopify) or a new signed
        // timestamp (Standard Webhooks), the same event.
        let retry = match platform {
            "woocommerce" => {
                let mut r = h.clone();
                r.insert("x-wc-webhook-delivery-id", "retry-2".parse().unwrap());
                r
            }
            "shopify" => {
                let mut r = h.clone();
                r.insert("x-shopify-webhook-id", "retry-2".parse().unwrap());
                r
            }
            _ => helpers::reqwest_headers(&helpers::generic_headers(
                "msg_2b7f0c",
                chrono::Utc::now().timestamp() + 1,
                &b,
                helpers::SECRET,
            )),
        };
        assert_ne!(h, retry);
        let (s1, j1) = env.post(platform, TENANT, h, b.clone()).await;
        let (s2, j2) = env.post(platform, TENANT, retry, b).await;
        assert_eq!((s1, s2), (202, 202), "{platform}: {j1} {j2}");
        assert_eq!(j1["duplicate"], false);
        assert_eq!(j2["duplicate"], true);
        assert_eq!(j1["job_id"], j2["job_id"]);
        assert_eq!(env.jobs().await, before + 1, "{platform}");
    }
}

#[tokio::test]
async fn bad_signatures_are_401_with_a_json_error_and_leave_no_job() {
    let env = env().await;
    for platform in ["woocommerce", "shopify", "generic"] {
        // Wrong secret.
        let (h, b) = valid(platform, "not-the-right-secret");
        let (s, j) = env.post(platform, TENANT, h, b).await;
        assert_eq!(s, 401, "{platform} wrong secret: {j}");
        assert!(j["error"].is_string() && j["message"].is_string(), "{j}");
        // Signed with another tenant's secret.
        let (h, b) = valid(platform, "another-tenant-secret");
        assert_eq!(
            env.post(platform, TENANT, h, b).await.0,
            401,
            "{platform} other tenant"
        );
        // Body truncated after signing.
        let (h, mut b) = valid(platform, helpers::SECRET);
        b.truncate(b.len() / 2);
        assert_eq!(
            env.post(platform, TENANT, h, b).await.0,
            401,
            "{platform} truncated"
        );
        // No signature at all.
        let (mut h, b) = valid(platform, helpers::SECRET);
        for name in [
            "x-wc-webhook-signature",
            "x-shopify-hmac-sha256",
            "webhook-signature",
        ] {
            h.remove(name);
        }
        let (s, j) = env.post(platform, TENANT, h, b).await;
        assert_eq!(s, 401, "{platform} unsigned");
        assert_eq!(j["error"], "missing_signature");
    }
    assert_eq!(env.jobs().await, 0);
}

#[tokio::test]
async fn a_signed_but_truncated_body_is_a_400_naming_the_problem() {
    let env = env().await;
    for platform in ["woocommerce", "shopify", "generic"] {
        let (_, b) = valid(platform, helpers::SECRET);
        let cut = b[..b.len() / 2].to_vec();
        let h = match platform {
            "woocommerce" => woo("order.updated", &cut, helpers::SECRET),
            "shopify" => shopify("orders/paid", &cut, helpers::SECRET),
            _ => generic("msg_cut", &cut, helpers::SECRET),
        };
        let (s, j) = env.post(platform, TENANT, h, cut).await;
        assert_eq!(s, 400, "{platform}: {j}");
        assert_eq!(j["error"], "malformed_json", "{j}");
    }
    assert_eq!(env.jobs().await, 0);
}

#[tokio::test]
async fn oversized_bodies_get_413_and_wrong_content_types_415() {
    let env = env().await;
    for platform in ["woocommerce", "shopify", "generic"] {
        let big = vec![b' '; 300 * 1024];
        let h = match platform {
            "woocommerce" => woo("order.updated", &big, helpers::SECRET),
            "shopify" => shopify("orders/paid", &big, helpers::SECRET),
            _ => generic("msg_big", &big, helpers::SECRET),
        };
        let (s, j) = env.post(platform, TENANT, h, big).await;
        assert_eq!(s, 413, "{platform}: {j}");
        assert_eq!(j["error"], "payload_too_large", "{j}");

        let (mut h, b) = valid(platform, helpers::SECRET);
        h.insert("content-type", "text/plain".parse().unwrap());
        let (s, j) = env.post(platform, TENANT, h, b).await;
        assert_eq!(s, 415, "{platform}: {j}");
        assert_eq!(j["error"], "unsupported_content_type");
    }
    assert_eq!(env.jobs().await, 0);
}

#[tokio::test]
async fn the_woocommerce_ping_gets_exactly_200_and_no_job() {
    let env = env().await;
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let (s, _) = env
        .post("woocommerce", TENANT, h.clone(), b"webhook_id=17".to_vec())
        .await;
    assert_eq!(s, 200);
    assert_eq!(env.jobs().await, 0);
    // A tenant without a WooCommerce secret fails the ping, so the hook is not created
    // as working and then refused on every delivery.
    let (s, j) = env
        .post("woocommerce", "no-woo", h, b"webhook_id=17".to_vec())
        .await;
    assert_eq!(
        (s, j["error"].as_str()),
        (404, Some("platform_not_configured")),
        "{j}"
    );
}

#[tokio::test]
async fn a_platform_without_a_secret_is_404_platform_not_configured() {
    let env = env().await;
    let (h, b) = valid("shopify", helpers::SECRET);
    let (s, j) = env.post("shopify", "no-woo", h, b).await;
    assert_eq!(s, 202, "{j}: shopify is configured for this tenant");
    let (h, b) = valid("woocommerce", helpers::SECRET);
    let (s, j) = env.post("woocommerce", "no-woo", h, b).await;
    assert_eq!(
        (s, j["error"].as_str()),
        (404, Some("platform_not_configured")),
        "{j}"
    );
    assert!(j["message"].as_str().unwrap().contains("woocommerce"));
}

#[tokio::test]
async fn unknown_tenants_platforms_and_ignored_topics() {
    let env = env().await;
    let (h, b) = valid("woocommerce", helpers::SECRET);
    let (s, j) = env
        .post("woocommerce", "no-such-shop", h.clone(), b.clone())
        .await;
    assert_eq!((s, j["error"].as_str()), (404, Some("unknown_tenant")));
    let (s, j) = env.post("magento", TENANT, h, b.clone()).await;
    assert_eq!((s, j["error"].as_str()), (404, Some("unknown_platform")));
    let (s, j) = env
        .post(
            "woocommerce",
            "bad}id",
            woo("order.updated", &b, helpers::SECRET),
            b,
        )
        .await;
    assert_eq!(s, 404, "{j}");

    let product = br#"{"id": 5, "name": "Mug"}"#.to_vec();
    let (s, j) = env
        .post(
            "woocommerce",
            TENANT,
            woo("product.updated", &product, helpers::SECRET),
            product,
        )
        .await;
    assert!(s == 200 || s == 202, "{s} {j}");
    assert_eq!(j["status"], "ignored");
    assert_eq!(env.jobs().await, 0);
}

#[tokio::test]
async fn while_redis_is_down_webhooks_get_503_not_2xx_also_for_a_cached_tenant() {
    let mut redis = helpers::RedisServer::start();
    let mut settings = helpers::settings_for(&redis.url(), &helpers::unique_prefix("down"));
    settings.role = minimax_connector::config::Role::Intake;
    helpers::put_tenant(&settings, TENANT, helpers::tenant_body(helpers::SECRET)).await;
    let app = helpers::spawn_app_with(settings, Arc::new(helpers::OkHandler)).await;
    let client = reqwest::Client::new();
    let (h, b) = valid("shopify", helpers::SECRET);
    // Accepted once first, so the tenant is in the intake's cache: the outage must
    // still answer 503 when no tenant read is needed, only the enqueue.
    let res = client
        .post(app.url(&format!("/webhooks/shopify/{TENANT}")))
        .headers(h.clone())
        .body(b.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    redis.stop();
    let res = client
        .post(app.url(&format!("/webhooks/shopify/{TENANT}")))
        .headers(h.clone())
        .body(b.clone())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let j: Value = res.json().await.unwrap();
    assert_eq!(j["error"], "unavailable");
    // Back up: the shop's retry is accepted (the tenant survived only if Redis kept it;
    // this Redis keeps nothing, so re-create it as the operator would).
    redis.restart();
    let mut settings = helpers::settings_for(&redis.url(), "unused");
    settings.redis.key_prefix = app.queue.prefix().to_owned();
    helpers::put_tenant(&settings, TENANT, helpers::tenant_body(helpers::SECRET)).await;
    let res = client
        .post(app.url(&format!("/webhooks/shopify/{TENANT}")))
        .headers(h)
        .body(b)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}
