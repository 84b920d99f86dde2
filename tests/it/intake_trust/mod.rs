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

use crate::helpers::tid;
use minimax_connector::minimax::Country;
use minimax_connector::sandbox::{Sandbox, SandboxHandle, SandboxSettings};
use minimax_connector::tenants::TenantInput;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TENANT: &str = "shop-trust";

/// A delivery that was booked: the app, the sandbox, and what a capture of it holds.
struct Booked {
    app: helpers::TestApp,
    sb: SandboxHandle,
    org: i64,
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
            .get(&tid(TENANT), &booked.job_id)
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
        self.app
            .post_webhook(self.platform, TENANT, headers, self.body.clone())
            .await
    }

    async fn jobs(&self) -> u64 {
        let c = self.app.queue.counts(&tid(TENANT)).await.unwrap();
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

// Shopify: the attack (paid order re-sent as cancelled with a new event id), and
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
    let c = app.queue.counts(&tid(TENANT)).await.unwrap();
    c.queued + c.delayed + c.running + c.dead + c.done
}

async fn send(req: reqwest::RequestBuilder) -> (u16, String) {
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

mod errors;
mod secrets;
mod slow_clients;
