//! Reconciliation, backfill, write-back and alerts end to end: the real service with a
//! real Redis and the Minimax sandbox, polling the in-process fake shops of
//! `fake_shop` over HTTP through the admin API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::fake_shop::{AlertReceiver, FakeShop};
use crate::helpers;

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::tid;
use chrono::{SecondsFormat, Utc};
use minimax_connector::config::Settings;
use minimax_connector::minimax::Country;
use minimax_connector::sandbox::{Sandbox, SandboxHandle, SandboxSettings};
use rust_decimal::Decimal;
use serde_json::{json, Value};

mod alerts;
mod backfill;
mod poll;
mod write_back;

const TENANT: &str = "shop-poll";
const ADMIN: &str = "demo-admin-token-change-me";

struct Env {
    app: helpers::TestApp,
    sb: SandboxHandle,
    org: i64,
    settings: Settings,
    http: reqwest::Client,
}

fn booking_settings() -> Value {
    json!({
        "document": "invoice_issued",
        "cashier_employee": "Janez Novak",
        "payment_methods": {"bacs": "Transakcijski račun", "bogus": "Kartica", "manual": "Transakcijski račun",
            "woocommerce_payments": "Kartica", "stripe": "STRIPE", "cod": "Gotovina"}
    })
}

fn base_settings(prefix: &str) -> Settings {
    let mut s = helpers::settings_for(&helpers::redis_url(), prefix);
    s.queue.backoff_base_ms = 50;
    s.queue.backoff_max_ms = 400;
    s.minimax.rate_per_sec = 500.0;
    s.minimax.burst = 500;
    // Polls run when the test asks (admin API); the backfill test turns the scheduler on.
    s.reconcile.enabled = false;
    s.reconcile.interval = 3600;
    s.reconcile.tick_ms = 50;
    s.reconcile.settle = 0;
    s.reconcile.overlap = 5;
    s.reconcile.lock_ttl = 5;
    s
}

async fn env_with(
    mut settings: Settings,
    handler: Option<Arc<dyn minimax_connector::worker::JobHandler>>,
) -> Env {
    let sb = Sandbox::spawn(SandboxSettings::default()).await.unwrap();
    let org = sb.state.settings().organisation_id;
    for (i, p) in ["7.5", "6", "4.5", "4", "2"].iter().enumerate() {
        sb.state
            .add_vat_rate(org, &format!("US{i}"), Decimal::from_str(p).unwrap())
            .unwrap();
    }
    let sbs = sb.state.settings().clone();
    settings.security.admin_tokens = vec![ADMIN.to_owned().into()];
    helpers::put_tenant(
        &settings,
        TENANT,
        json!({
            "country": "SI", "organisation_id": org,
            "minimax": {
                "username": sbs.username,
                "password": secrecy::ExposeSecret::expose_secret(&sbs.password),
                "client_id": sbs.client_id,
                "client_secret": secrecy::ExposeSecret::expose_secret(&sbs.client_secret),
                "api_base": sb.api_base(Country::SI),
                "token_url": sb.token_url(Country::SI),
            },
            "webhook_secrets": {"woocommerce": helpers::SECRET, "shopify": helpers::SECRET},
            "settings": booking_settings(),
        }),
    )
    .await;
    let app = match handler {
        Some(h) => helpers::spawn_app_with(settings.clone(), h).await,
        None => helpers::spawn_app(settings.clone()).await,
    };
    Env {
        app,
        sb,
        org,
        settings,
        http: reqwest::Client::new(),
    }
}

impl Env {
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.admin_of(TENANT, method, path, body).await
    }

    async fn admin_of(
        &self,
        tenant: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self
            .http
            .request(
                method,
                self.app.url(&format!("/admin/tenants/{tenant}{path}")),
            )
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let res = rb.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn connect(&self, shop: &FakeShop, platform: &str, write_back: bool) {
        let body = match platform {
            "woocommerce" => {
                json!({"platform": "woocommerce", "url": shop.url, "consumer_key": "ck_test",
                                    "consumer_secret": "cs_test", "write_back": write_back})
            }
            _ => {
                json!({"platform": "shopify", "url": shop.url, "access_token": "shpat_test", "write_back": write_back})
            }
        };
        let (status, v) = self.admin(reqwest::Method::PUT, "/shop", Some(body)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["secret_set"], true);
        assert!(!v.to_string().contains("cs_test") && !v.to_string().contains("shpat_test"));
    }

    async fn poll(&self) -> Value {
        let (status, v) = self.admin(reqwest::Method::POST, "/shop/poll", None).await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Runs a backfill from `since` to now and waits (up to `secs`) until it is done.
    async fn backfill(&self, since: chrono::DateTime<Utc>, dry_run: bool, secs: u64) -> Value {
        let (status, b) = self
            .admin(
                reqwest::Method::POST,
                "/backfill",
                Some(json!({"since": since, "dry_run": dry_run})),
            )
            .await;
        assert_eq!(status, 202, "{b}");
        helpers::eventually(Duration::from_secs(secs), || async {
            let (_, b) = self.admin(reqwest::Method::GET, "/backfill", None).await;
            (b["state"] == "done").then_some(b)
        })
        .await
        .expect("the backfill finishes")
    }

    /// Waits until no job of the tenant is queued, delayed or running.
    async fn drained(&self) {
        helpers::eventually(Duration::from_secs(30), || async {
            let c = self.app.queue.counts(&tid(TENANT)).await.unwrap();
            (c.queued + c.delayed + c.running == 0).then_some(())
        })
        .await
        .expect("the queue drains");
    }

    fn invoices(&self) -> Vec<Value> {
        self.sb.state.invoices(self.org)
    }

    async fn woo_webhook(&self, topic: &str, body: &[u8], source: &str) -> String {
        let mut h = helpers::reqwest_headers(&helpers::woo_headers(topic, body, helpers::SECRET));
        h.insert("x-wc-webhook-source", source.parse().unwrap());
        self.post_webhook("woocommerce", h, body.to_vec()).await
    }

    async fn post_webhook(
        &self,
        platform: &str,
        h: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> String {
        let (status, v) = self.app.post_webhook(platform, TENANT, h, body).await;
        assert_eq!(status, 202, "{v}");
        v["job_id"].as_str().unwrap().to_owned()
    }
}

fn woo_time(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The WooCommerce fixture order as the REST API lists it, with a recent modification.
fn woo_order(file: &str, id: u64, modified_secs_ago: i64) -> Value {
    let mut o = helpers::fixture_value("woocommerce", file);
    let t = Utc::now() - chrono::Duration::seconds(modified_secs_ago);
    o["id"] = json!(id);
    o["date_modified_gmt"] = json!(woo_time(t));
    o["date_modified"] = json!(woo_time(t));
    o
}

fn shopify_order(modified_secs_ago: i64) -> Value {
    let mut o = helpers::fixture_value(
        "shopify",
        "order_with_percentage_discount.rest-2026-07.json",
    );
    let t = Utc::now() - chrono::Duration::seconds(modified_secs_ago);
    o["updated_at"] = json!(t.to_rfc3339_opts(SecondsFormat::Secs, true));
    o
}

/// A Shopify order refunded in full (one refund transaction of the whole total), as
/// `orders.json` lists it: the refund embedded in the `refunds/create` shape.
fn shopify_refunded_order(modified_secs_ago: i64) -> Value {
    let mut o = shopify_order(modified_secs_ago);
    let total = o["total_price"].clone();
    o["financial_status"] = json!("refunded");
    o["refunds"] = json!([{
        "id": 990_001, "order_id": o["id"], "created_at": o["updated_at"],
        "processed_at": o["updated_at"], "note": "returned", "restock": false,
        "refund_line_items": [], "refund_shipping_lines": [], "order_adjustments": [],
        "transactions": [{"id": 990_002, "kind": "refund", "status": "success",
            "amount": total, "currency": o["currency"], "gateway": "manual"}],
    }]);
    o
}

fn shopify_webhook_headers(
    topic: &str,
    body: &[u8],
    event: &str,
    shop: &FakeShop,
) -> reqwest::header::HeaderMap {
    let mut h = helpers::reqwest_headers(&helpers::shopify_headers(topic, body, helpers::SECRET));
    h.insert("x-shopify-event-id", event.parse().unwrap());
    h.insert(
        "x-shopify-shop-domain",
        shop.url.trim_start_matches("http://").parse().unwrap(),
    );
    h
}
