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

use chrono::{SecondsFormat, Utc};
use minimax_connector::config::Settings;
use minimax_connector::minimax::Country;
use minimax_connector::sandbox::{Sandbox, SandboxHandle, SandboxSettings};
use rust_decimal::Decimal;
use serde_json::{json, Value};

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
            let c = self.app.queue.counts(TENANT).await.unwrap();
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
        let res = self
            .http
            .post(self.app.url(&format!("/webhooks/{platform}/{TENANT}")))
            .headers(h)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let v: Value = res.json().await.unwrap();
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

#[tokio::test]
async fn an_order_only_the_poll_finds_books_once_and_counts_as_missed() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-only"));
    // The next window reaches back past the order.
    settings.reconcile.overlap = 600;
    let env = env_with(settings, None).await;
    let shop = FakeShop::spawn(vec![woo_order("order.json", 727, 60)]).await;
    env.connect(&shop, "woocommerce", false).await;
    let out = env.poll().await;
    assert_eq!(out["orders"], 1, "{out} {:?}", shop.listings());
    assert_eq!(out["enqueued"], 1, "{out}");
    assert_eq!(out["found_only_by_poll"], 1, "{out}");
    env.drained().await;
    let booked = env.invoices();
    assert_eq!(booked.len(), 1);
    assert_eq!(booked[0]["InvoiceValue"].to_string(), "29.35");
    // The next poll's window overlaps the last one: the order is seen again, not booked again.
    let again = env.poll().await;
    assert_eq!(again["orders"], 1, "{again}");
    assert_eq!(again["enqueued"], 0, "{again}");
    assert_eq!(again["found_only_by_poll"], 0, "{again}");
    env.drained().await;
    assert_eq!(env.invoices().len(), 1);
    let metrics = env
        .http
        .get(env.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "mmc_reconcile_found_only_by_poll_total{{tenant=\"{TENANT}\"}}"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_order_delivered_by_webhook_and_found_by_the_poll_books_once_despite_429s() {
    let env = env_with(base_settings(&helpers::unique_prefix("rec-both")), None).await;
    let order = shopify_order(30);
    let shop = FakeShop::spawn(vec![order.clone()]).await;
    env.connect(&shop, "shopify", false).await;
    let body = serde_json::to_vec(&order).unwrap();
    let h = shopify_webhook_headers("orders/paid", &body, "evt-both-1", &shop);
    env.post_webhook("shopify", h, body).await;
    env.drained().await;
    assert_eq!(env.invoices().len(), 1);
    shop.state.throttle.store(2, Ordering::SeqCst);
    let out = env.poll().await;
    assert_eq!(out["orders"], 1, "{out}");
    assert_eq!(
        out["found_only_by_poll"], 0,
        "a webhook delivered it: {out}"
    );
    assert_eq!(out["shop_calls"], 3, "two 429s, then the page: {out}");
    env.drained().await;
    assert_eq!(env.invoices().len(), 1, "booked once");
}

#[tokio::test]
async fn a_refund_only_the_poll_finds_becomes_a_credit_note() {
    let env = env_with(base_settings(&helpers::unique_prefix("rec-refund")), None).await;
    let order = woo_order("order_partially_refunded.ios.json", 4242, 20);
    let total = Decimal::from_str(order["total"].as_str().unwrap()).unwrap();
    let shop = FakeShop::spawn(vec![order.clone()]).await;
    env.connect(&shop, "woocommerce", false).await;
    let out = env.poll().await;
    assert_eq!(out["found_only_by_poll"], 1, "{out}");
    env.drained().await;
    let values: Vec<Decimal> = env
        .invoices()
        .iter()
        .map(|i| Decimal::from_str(&i["InvoiceValue"].to_string()).unwrap())
        .collect();
    assert!(values.contains(&total), "the order is booked: {values:?}");
    let credits = values.iter().filter(|v| **v < Decimal::ZERO).count();
    assert_eq!(
        credits,
        order["refunds"].as_array().unwrap().len(),
        "{values:?}"
    );
}

#[tokio::test]
async fn the_watermark_survives_a_failed_page_and_a_restart_without_skipping_a_page() {
    let prefix = helpers::unique_prefix("rec-mark");
    let env = env_with(base_settings(&prefix), Some(Arc::new(helpers::OkHandler))).await;
    let orders: Vec<Value> = (0..250u64)
        .map(|i| woo_order("order.json", 1000 + i, 3000 - i as i64 * 10))
        .collect();
    let shop = FakeShop::spawn(orders).await;
    env.connect(&shop, "woocommerce", false).await;
    // The second page fails (as a crash after page 1 would stop the run).
    shop.state.fail_listing.lock().unwrap().push(2);
    let (status, v) = env.admin(reqwest::Method::POST, "/shop/poll", None).await;
    assert_eq!(status, 502, "{v}");
    let (_, saved) = env.admin(reqwest::Method::GET, "/shop/poll", None).await;
    assert_eq!(
        saved["run"]["pages"], 1,
        "page 1 enqueued and saved: {saved}"
    );
    assert!(
        saved["watermark"].is_null(),
        "the watermark waits for the last page: {saved}"
    );
    let c = env.app.queue.counts(TENANT).await.unwrap();
    assert_eq!(c.queued + c.running + c.done + c.delayed, 100);
    // A new instance (same Redis) resumes the saved run at page 2.
    let other = helpers::spawn_app_with(env.settings.clone(), Arc::new(helpers::OkHandler)).await;
    let res = env
        .http
        .post(other.url(&format!("/admin/tenants/{TENANT}/shop/poll")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["pages"], 2, "pages 2 and 3 only: {out}");
    let listings = shop.listings();
    let after = |l: &str| {
        l.split("modified_after=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_ne!(
        after(&listings[2]),
        after(&listings[0]),
        "resumed, not restarted: {listings:?}"
    );
    let c = env.app.queue.counts(TENANT).await.unwrap();
    assert_eq!(
        c.queued + c.running + c.done + c.delayed,
        250,
        "every order once"
    );
    let watermark = out["watermark"].as_str().unwrap().to_owned();
    // The next run starts at the watermark (minus the overlap): nothing new.
    let again = env.poll().await;
    assert_eq!(again["enqueued"], 0, "{again}");
    assert!(again["watermark"].as_str().unwrap() >= watermark.as_str());
}

#[tokio::test]
async fn two_instances_never_poll_one_tenant_at_the_same_time() {
    let prefix = helpers::unique_prefix("rec-two");
    let env = env_with(base_settings(&prefix), Some(Arc::new(helpers::OkHandler))).await;
    let shop = FakeShop::spawn(vec![woo_order("order.json", 727, 60)]).await;
    shop.state.delay_ms.store(500, Ordering::SeqCst);
    env.connect(&shop, "woocommerce", false).await;
    let other = helpers::spawn_app_with(env.settings.clone(), Arc::new(helpers::OkHandler)).await;
    let a = env.app.url(&format!("/admin/tenants/{TENANT}/shop/poll"));
    let b = other.url(&format!("/admin/tenants/{TENANT}/shop/poll"));
    let (ra, rb) = tokio::join!(
        env.http.post(&a).bearer_auth(ADMIN).send(),
        env.http.post(&b).bearer_auth(ADMIN).send()
    );
    let mut statuses = vec![ra.unwrap().status().as_u16(), rb.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409]);
    assert_eq!(shop.state.max_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn write_back_writes_the_invoice_number_once_also_when_the_booking_ran_twice() {
    let env = env_with(base_settings(&helpers::unique_prefix("rec-wb")), None).await;
    let order = woo_order("order.json", 727, 30);
    let shop = FakeShop::spawn(vec![]).await;
    env.connect(&shop, "woocommerce", true).await;
    let body = serde_json::to_vec(&order).unwrap();
    let source = format!("{}/", shop.url);
    env.woo_webhook("order.updated", &body, &source).await;
    env.drained().await;
    // A second delivery (another topic: another job) runs the booking again.
    env.woo_webhook("order.created", &body, &source).await;
    env.drained().await;
    assert_eq!(env.invoices().len(), 1);
    let notes = shop.notes("727");
    assert_eq!(notes.len(), 1, "{notes:?}");
    let inv = &env.invoices()[0];
    let number = format!("{}-{}", inv["Year"], inv["InvoiceNumber"]);
    assert!(notes[0].contains(&number), "{notes:?} {inv}");
}

#[tokio::test]
async fn a_dry_run_backfill_of_500_orders_reports_counts_and_totals_without_minimax_calls() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-dry"));
    settings.reconcile.enabled = true;
    let env = env_with(settings, None).await;
    let since = Utc::now() - chrono::Duration::days(30);
    let shop = FakeShop::spawn(woo_backfill_orders(since, 20_000)).await;
    env.connect(&shop, "woocommerce", false).await;
    let before = env.sb.state.counters().api_calls;
    let done = env.backfill(since, true, 60).await;
    assert_eq!(done["orders"], 500, "{done}");
    assert_eq!(done["report"]["documents"]["issued_invoice"], 500, "{done}");
    let usd = Decimal::from_str(done["report"]["totals"]["USD"].as_str().unwrap()).unwrap();
    assert_eq!(
        usd,
        Decimal::from_str("29.35").unwrap() * Decimal::from(500)
    );
    assert_eq!(done["report"]["already_booked"], 0);
    assert_eq!(env.sb.state.counters().api_calls, before, "no Minimax call");
    let c = env.app.queue.counts(TENANT).await.unwrap();
    assert_eq!(
        c.queued + c.done + c.delayed + c.running,
        0,
        "nothing enqueued"
    );
}

/// 500 WooCommerce orders created one an hour from `since`, ids from `first_id`.
fn woo_backfill_orders(since: chrono::DateTime<Utc>, first_id: u64) -> Vec<Value> {
    (0..500u64)
        .map(|i| {
            let mut o = woo_order("order.json", first_id + i, 2 * 86_400);
            let created = since + chrono::Duration::minutes(i as i64 * 60);
            o["date_created_gmt"] = json!(woo_time(created));
            o["number"] = json!((first_id + i).to_string());
            o
        })
        .collect()
}

#[tokio::test]
async fn a_backfill_of_500_orders_pauses_at_the_minimax_budget_and_completes_in_the_next_window() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-budget"));
    settings.reconcile.enabled = true;
    // A small budget in a short window (production: 1000 calls per 24 h): 500 orders
    // need several windows.
    settings.minimax.daily_budget = 300;
    settings.minimax.daily_budget_window_secs = 4;
    let env = env_with(settings, None).await;
    env.sb.state.set_limits(1_000_000, 1_000_000);
    let since = Utc::now() - chrono::Duration::days(30);
    let shop = FakeShop::spawn(woo_backfill_orders(since, 30_000)).await;
    env.connect(&shop, "woocommerce", false).await;
    let (status, b) = env
        .admin(
            reqwest::Method::POST,
            "/backfill",
            Some(json!({"since": since, "dry_run": false})),
        )
        .await;
    assert_eq!(status, 202, "{b}");
    let states = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let done = helpers::eventually(Duration::from_secs(240), || async {
        let (_, b) = env.admin(reqwest::Method::GET, "/backfill", None).await;
        let state = b["state"].as_str().unwrap_or("").to_owned();
        states.lock().unwrap().insert(state);
        (b["state"] == "done").then_some(b)
    })
    .await
    .expect("the backfill finishes");
    assert_eq!(done["orders"], 500, "{done}");
    assert_eq!(done["enqueued"], 500, "{done}");
    let c = helpers::eventually(Duration::from_secs(240), || async {
        let c = env.app.queue.counts(TENANT).await.unwrap();
        (c.queued + c.delayed + c.running == 0).then_some(c)
    })
    .await
    .expect("every booking job ends");
    assert_eq!((c.done, c.dead), (500, 0), "{c:?}");
    let invoices = env.invoices();
    assert_eq!(invoices.len(), 500, "every order booked once");
    let mut refs: Vec<String> = invoices
        .iter()
        .map(|i| i["DocumentReference"].to_string())
        .collect();
    refs.sort();
    refs.dedup();
    assert_eq!(refs.len(), 500, "no order booked twice");
    assert!(
        done["budget_waits"].as_u64().unwrap() >= 1,
        "the backfill paused at the budget: {done} {states:?}"
    );
    let calls = env.sb.state.counters().api_calls;
    assert!(
        calls > 400,
        "the budget was really exceeded in total: {calls}"
    );
    let states = states.lock().unwrap();
    eprintln!("budget backfill: {calls} Minimax API calls, states {states:?}, {done}");
}

/// The alerts received so far, each checked against its Standard Webhooks signature.
fn verified_alerts(receiver: &AlertReceiver, secret: &str) -> Vec<Value> {
    let secret = secrecy::SecretString::from(secret.to_owned());
    receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(headers, body)| {
            minimax_connector::webshop::signature::verify_standard_webhooks(
                &secret,
                headers,
                body,
                Utc::now(),
                Duration::from_secs(300),
            )
            .expect("the alert is signed with the alert secret");
            serde_json::from_slice(body).unwrap()
        })
        .collect()
}

/// Waits for the alert `kind` of `tenant` in `state`, and returns it.
async fn alert(
    receiver: &AlertReceiver,
    secret: &str,
    tenant: &str,
    kind: &str,
    state: &str,
) -> Value {
    helpers::eventually(Duration::from_secs(30), || async {
        verified_alerts(receiver, secret).into_iter().find(|a| {
            a["tenant"] == tenant && a["type"] == format!("alert.{kind}") && a["state"] == state
        })
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no {kind} {state} alert for {tenant}: {:?}",
            verified_alerts(receiver, secret)
        )
    })
}

#[tokio::test]
async fn each_alert_is_sent_once_per_state_change_signed_also_for_tenants_without_a_shop() {
    let receiver = AlertReceiver::spawn().await;
    let secret = "whsec_YWxlcnQtc2VjcmV0LW9mLXRoZS1hbGVydHMtdGVzdA==";
    let mut settings = base_settings(&helpers::unique_prefix("rec-alerts"));
    // Polling stays off: the alert checks run for every tenant anyway.
    settings.alerts.url = receiver.url.clone();
    settings.alerts.secret = secret.to_owned().into();
    settings.alerts.timeout = 5;
    let env = env_with(settings, None).await;
    let source = |i: u32| format!("https://alerts{i}.example/");

    // Job dead (no shop connection): two dead jobs, one alert; resolved when cleared.
    let bad = helpers::fixture_body("woocommerce", "order_with_coupon.ios.json");
    let mut dead = Vec::new();
    for i in 0..2 {
        // Two orders (distinct bodies: the same body twice is one job).
        let mut order: Value = serde_json::from_slice(&bad).unwrap();
        order["id"] = json!(9_000 + i);
        let body = serde_json::to_vec(&order).unwrap();
        dead.push(env.woo_webhook("order.updated", &body, &source(i)).await);
    }
    helpers::eventually(Duration::from_secs(30), || async {
        (env.app.queue.counts(TENANT).await.unwrap().dead == 2).then_some(())
    })
    .await
    .expect("both jobs die");
    let a = alert(&receiver, secret, TENANT, "job_dead", "firing").await;
    assert!(a["details"]["dead"].as_u64().unwrap() >= 1, "{a}");
    for id in &dead {
        let (s, v) = env
            .admin(reqwest::Method::DELETE, &format!("/jobs/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
    }
    alert(&receiver, secret, TENANT, "job_dead", "resolved").await;

    // Tenant paused: Minimax answers 429 for a while; the booking waits, then books.
    // Long enough that the booking surely meets it on a loaded machine.
    env.sb.state.pause_org(env.org, Duration::from_secs(4));
    let order = helpers::fixture_body("woocommerce", "order.json");
    env.woo_webhook("order.updated", &order, &source(9)).await;
    let a = alert(&receiver, secret, TENANT, "tenant_paused", "firing").await;
    assert!(a["details"]["paused_until"].is_string(), "{a}");
    alert(&receiver, secret, TENANT, "tenant_paused", "resolved").await;
    env.drained().await;
    assert_eq!(env.invoices().len(), 1);

    // Tenant paused because Minimax stopped answering: the organisation's circuit is
    // open (as a streak of failures leaves it); resumed by the operator.
    let breaker = format!(
        "{}:{{o:{}}}:breaker",
        env.settings.redis.key_prefix, env.org
    );
    let until = Utc::now().timestamp_millis() + 3_600_000;
    let mut conn = env.app.queue.pool().get().await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&breaker)
        .arg("state")
        .arg("open")
        .arg("failures")
        .arg(5)
        .arg("until")
        .arg(until)
        .query_async(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let nth = |state: &'static str, n: usize| {
        let receiver = &receiver;
        async move {
            helpers::eventually(Duration::from_secs(30), || async {
                let all: Vec<Value> = verified_alerts(receiver, secret)
                    .into_iter()
                    .filter(|a| a["tenant"] == TENANT && a["type"] == "alert.tenant_paused")
                    .filter(|a| a["state"] == state)
                    .collect();
                (all.len() >= n).then(|| all[n - 1].clone())
            })
            .await
            .unwrap_or_else(|| panic!("no tenant_paused {state} alert number {n}"))
        }
    };
    let a = nth("firing", 2).await;
    assert!(
        a["message"].as_str().unwrap_or("").contains("circuit open"),
        "{a}"
    );
    let (s, v) = env.admin(reqwest::Method::POST, "/resume", None).await;
    assert_eq!(s, 200, "{v}");
    nth("resolved", 2).await;

    // Credentials blocked, on a second tenant without a shop connection.
    let sbs = env.sb.state.settings().clone();
    let blocked = "alert-blocked";
    let body = |password: &str| {
        json!({
            "country": "SI", "organisation_id": 424242,
            "minimax": {"username": sbs.username, "password": password, "client_id": sbs.client_id,
                "client_secret": secrecy::ExposeSecret::expose_secret(&sbs.client_secret),
                "api_base": env.sb.api_base(Country::SI), "token_url": env.sb.token_url(Country::SI)},
            "webhook_secrets": {"woocommerce": helpers::SECRET},
        })
    };
    let (s, v) = env
        .admin_of(blocked, reqwest::Method::PUT, "", Some(body("wrong")))
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, v) = env
        .admin_of(blocked, reqwest::Method::POST, "/check", None)
        .await;
    assert_eq!(v["blocked"], true, "{v}");
    let a = alert(&receiver, secret, blocked, "credentials_blocked", "firing").await;
    assert!(a["message"].as_str().unwrap().contains("blocked"), "{a}");
    let good = secrecy::ExposeSecret::expose_secret(&sbs.password).to_owned();
    let (s, v) = env
        .admin_of(
            blocked,
            reqwest::Method::PATCH,
            "",
            Some(json!({"minimax": {"password": good}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    alert(
        &receiver,
        secret,
        blocked,
        "credentials_blocked",
        "resolved",
    )
    .await;

    // Webhooks silent: the poll finds an order no webhook delivered, with the count.
    let shop = FakeShop::spawn(vec![woo_order("order.json", 900, 20)]).await;
    env.connect(&shop, "woocommerce", false).await;
    assert_eq!(env.poll().await["found_only_by_poll"], 1);
    let a = alert(&receiver, secret, TENANT, "webhooks_silent", "firing").await;
    assert_eq!(a["details"]["found_only_by_poll"], 1, "{a}");
    assert!(a["message"].as_str().unwrap().contains("1 order"), "{a}");
    assert_eq!(env.poll().await["found_only_by_poll"], 0);
    alert(&receiver, secret, TENANT, "webhooks_silent", "resolved").await;
    assert_eq!(env.poll().await["found_only_by_poll"], 0);
    env.drained().await;

    // A new dead job is a new state change: a second job_dead alert. By then the checks
    // have run many times; each state change above was sent exactly once.
    env.woo_webhook("order.updated", &bad, &source(5)).await;
    helpers::eventually(Duration::from_secs(30), || async {
        let n = verified_alerts(&receiver, secret)
            .iter()
            .filter(|a| a["type"] == "alert.job_dead" && a["state"] == "firing")
            .count();
        (n == 2).then_some(())
    })
    .await
    .expect("a second job_dead alert");
    let mut seen = std::collections::BTreeMap::new();
    for a in verified_alerts(&receiver, secret) {
        let k = format!("{} {} {}", a["tenant"], a["type"], a["state"]);
        *seen.entry(k).or_insert(0) += 1;
    }
    let expected: std::collections::BTreeMap<String, i32> = [
        (format!("\"{TENANT}\" \"alert.job_dead\" \"firing\""), 2),
        (format!("\"{TENANT}\" \"alert.job_dead\" \"resolved\""), 1),
        (
            format!("\"{TENANT}\" \"alert.tenant_paused\" \"firing\""),
            2,
        ),
        (
            format!("\"{TENANT}\" \"alert.tenant_paused\" \"resolved\""),
            2,
        ),
        (
            format!("\"{TENANT}\" \"alert.webhooks_silent\" \"firing\""),
            1,
        ),
        (
            format!("\"{TENANT}\" \"alert.webhooks_silent\" \"resolved\""),
            1,
        ),
        (
            format!("\"{blocked}\" \"alert.credentials_blocked\" \"firing\""),
            1,
        ),
        (
            format!("\"{blocked}\" \"alert.credentials_blocked\" \"resolved\""),
            1,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, expected);
    let text = format!("{:?}", receiver.received.lock().unwrap());
    assert!(
        !text.contains("cs_test") && !text.contains(&good),
        "no secrets in alerts"
    );
}

#[tokio::test]
async fn a_killed_instance_mid_poll_is_taken_over_after_its_lock_expires_without_skipping_a_page() {
    let prefix = helpers::unique_prefix("rec-kill");
    let mut settings = base_settings(&prefix);
    settings.reconcile.enabled = true;
    settings.reconcile.lock_ttl = 2;
    let orders: Vec<Value> = (0..250u64)
        .map(|i| woo_order("order.json", 5000 + i, 3000 - i as i64 * 10))
        .collect();
    let shop = FakeShop::spawn(orders).await;
    // The killed instance is waiting for page 2 when it dies.
    shop.state.stall_listing.lock().unwrap().push(2);
    let env = env_with(settings.clone(), Some(Arc::new(helpers::OkHandler))).await;
    env.connect(&shop, "woocommerce", false).await;
    let saved = helpers::eventually(Duration::from_secs(30), || async {
        let (_, s) = env.admin(reqwest::Method::GET, "/shop/poll", None).await;
        (s["run"]["pages"] == 1 && shop.listings().len() == 2).then_some(s)
    })
    .await
    .expect("the first instance enqueued page 1 and waits for page 2");
    let Env { app, .. } = env;
    drop(app);
    let lock_key = format!("{prefix}:{{t:{TENANT}}}:reconcile:lock");
    let mut redis = helpers::pool(&helpers::redis_url()).get().await.unwrap();
    let held: Option<String> = redis::AsyncCommands::get(&mut redis, &lock_key)
        .await
        .unwrap();
    assert!(held.is_some(), "the dead instance never released its lock");

    // A second instance resumes the saved run on its own once the lock expires.
    let other = helpers::spawn_app_with(settings, Arc::new(helpers::OkHandler)).await;
    let q = other.queue.clone();
    let http = reqwest::Client::new();
    let state_url = other.url(&format!("/admin/tenants/{TENANT}/shop/poll"));
    let done = helpers::eventually(Duration::from_secs(30), || async {
        let s: Value = http
            .get(&state_url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s["watermark"].is_string().then_some(s)
    })
    .await
    .expect("the second instance finishes the run");
    assert_eq!(
        done["last"]["pages"], 2,
        "pages 2 and 3 only: {done} {saved}"
    );
    let listings = shop.listings();
    assert_eq!(
        listings[2], listings[1],
        "the takeover asks for the page the dead instance waited for: {listings:?}"
    );
    assert_ne!(listings[2], listings[0]);
    let c = q.counts(TENANT).await.unwrap();
    assert_eq!(
        c.queued + c.running + c.done + c.delayed,
        250,
        "every order once: {c:?}"
    );
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

#[tokio::test]
async fn a_shopify_refund_only_the_poll_finds_becomes_a_credit_note() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-sh-refund"));
    // The invoice books before its refund (a refund waits for its invoice otherwise).
    settings.queue.per_tenant_concurrency = 1;
    let env = env_with(settings, None).await;
    let order = shopify_refunded_order(20);
    let total = Decimal::from_str(order["total_price"].as_str().unwrap()).unwrap();
    let shop = FakeShop::spawn(vec![order]).await;
    env.connect(&shop, "shopify", false).await;
    let out = env.poll().await;
    assert_eq!(out["orders"], 1, "{out}");
    assert_eq!(out["events"], 2, "the order and its refund: {out}");
    assert_eq!(out["found_only_by_poll"], 2, "{out}");
    env.drained().await;
    let c = env.app.queue.counts(TENANT).await.unwrap();
    assert_eq!((c.done, c.dead), (2, 0), "{c:?}");
    let mut values: Vec<Decimal> = env
        .invoices()
        .iter()
        .map(|i| Decimal::from_str(&i["InvoiceValue"].to_string()).unwrap())
        .collect();
    values.sort();
    assert_eq!(
        values,
        vec![-total, total],
        "an invoice and its credit note"
    );
    // Polled again: nothing new is booked.
    let again = env.poll().await;
    assert_eq!(again["enqueued"], 0, "{again}");
    env.drained().await;
    assert_eq!(env.invoices().len(), 2);
}

#[tokio::test]
async fn shopify_write_back_sets_the_metafield_once_also_when_the_booking_ran_twice() {
    let env = env_with(base_settings(&helpers::unique_prefix("rec-sh-wb")), None).await;
    let order = shopify_order(30);
    let id = order["id"].to_string();
    let shop = FakeShop::spawn(vec![]).await;
    env.connect(&shop, "shopify", true).await;
    // Two versions of one paid order (a later edit: two booking jobs).
    let mut edited = order.clone();
    edited["updated_at"] = json!((Utc::now() - chrono::Duration::seconds(20)).to_rfc3339());
    for (topic, event, version) in [
        ("orders/paid", "evt-wb-1", &order),
        ("orders/updated", "evt-wb-2", &edited),
    ] {
        let body = serde_json::to_vec(version).unwrap();
        let h = shopify_webhook_headers(topic, &body, event, &shop);
        env.post_webhook("shopify", h, body).await;
        env.drained().await;
    }
    assert_eq!(env.invoices().len(), 1);
    let c = env.app.queue.counts(TENANT).await.unwrap();
    assert_eq!(
        (c.done, c.dead),
        (3, 0),
        "two bookings, one write-back: {c:?}"
    );
    let written = shop.notes(&id);
    let inv = &env.invoices()[0];
    let number = format!("{}-{}", inv["Year"], inv["InvoiceNumber"]);
    assert_eq!(written, vec![number], "one metafieldsSet with the number");
    let graphql = shop
        .state
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("graphql.json"))
        .count();
    assert_eq!(graphql, 1);
}

#[tokio::test]
async fn a_dry_run_counts_every_woocommerce_refund_the_booking_will_credit() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-dry-refunds"));
    settings.reconcile.enabled = true;
    let env = env_with(settings, None).await;
    let since = Utc::now() - chrono::Duration::days(3);
    // Modified before the poll's first window: only the backfill sees them.
    let mut refunded = woo_order("order_partially_refunded.ios.json", 4343, 2 * 86_400);
    refunded["date_created_gmt"] = json!(woo_time(since + chrono::Duration::hours(1)));
    let mut plain = woo_order("order.json", 4344, 2 * 86_400);
    plain["date_created_gmt"] = json!(woo_time(since + chrono::Duration::hours(2)));
    let dec = |v: &Value| Decimal::from_str(v.as_str().unwrap()).unwrap();
    let refunds: Vec<Decimal> = refunded["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| dec(&r["total"]).abs())
        .collect();
    assert_eq!(refunds.len(), 2);
    let expected = dec(&refunded["total"]) + dec(&plain["total"]) - refunds.iter().sum::<Decimal>();
    let shop = FakeShop::spawn(vec![refunded, plain]).await;
    env.connect(&shop, "woocommerce", false).await;
    let dry = env.backfill(since, true, 30).await;
    let report = &dry["report"];
    assert_eq!(report["documents"]["issued_invoice"], 2, "{dry}");
    assert_eq!(report["documents"]["credit_note"], 2, "both refunds: {dry}");
    assert_eq!(dec(&report["totals"]["USD"]), expected, "{dry}");
    assert_eq!(env.sb.state.counters().api_calls, 0, "no Minimax call");
    // The real run books what the dry run reported; a second dry run finds it booked.
    env.backfill(since, false, 30).await;
    env.drained().await;
    let booked: Decimal = env
        .invoices()
        .iter()
        .map(|i| Decimal::from_str(&i["InvoiceValue"].to_string()).unwrap())
        .sum();
    assert_eq!(env.invoices().len(), 4);
    assert_eq!(booked, expected);
    let again = env.backfill(since, true, 30).await;
    assert_eq!(again["report"]["already_booked"], 4, "{again}");
    assert!(
        again["report"]["documents"].as_object().unwrap().is_empty(),
        "{again}"
    );
}

#[tokio::test]
async fn the_readme_demo_recovers_a_missed_order_through_the_poll() {
    // `cargo run` as the README shows it: demo mode (sandbox and demo shop mounted in
    // the service), the default reconcile settings except a faster scheduler tick.
    let mut settings =
        helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("rec-demo"));
    settings.demo.enabled = true;
    settings.apply_demo();
    settings.minimax.rate_per_sec = 500.0;
    settings.minimax.burst = 500;
    settings.reconcile.tick_ms = 50;
    let app = helpers::spawn_app(settings.clone()).await;
    let store = helpers::tenant_store(&settings);
    helpers::eventually(Duration::from_secs(10), || async {
        store.get("demo").await.unwrap()
    })
    .await
    .expect("demo tenant seeded");
    let http = reqwest::Client::new();
    let body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/examples/woocommerce-order-missed.json"),
    )
    .unwrap();
    // 1. The shop takes an order while its webhook is lost.
    let res = http
        .post(app.url("/demo-shop/orders"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // 2. Connect the demo tenant to the shop's API, write-back on.
    let res = http
        .put(app.url("/admin/tenants/demo/shop"))
        .bearer_auth(ADMIN)
        .json(
            &json!({"platform": "woocommerce", "url": app.url("/demo-shop"),
            "consumer_key": "ck_demo", "consumer_secret": "cs_demo", "write_back": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // 3. The scheduler polls the new connection at once and finds the order.
    let state = helpers::eventually(Duration::from_secs(30), || async {
        let s: Value = http
            .get(app.url("/admin/tenants/demo/shop/poll"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s["last"].is_object().then_some(s)
    })
    .await
    .expect("the first poll ran");
    assert_eq!(state["last"]["found_only_by_poll"], 1, "{state}");
    // 4. Booked as an issued invoice; its number is written back to the order.
    let notes = helpers::eventually(Duration::from_secs(30), || async {
        let n: Value = http
            .get(app.url("/demo-shop/wp-json/wc/v3/orders/1001/notes"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (n.as_array().unwrap().len() == 1).then_some(n)
    })
    .await
    .expect("the invoice number is written back");
    let year = Utc::now().format("%Y");
    assert!(
        notes[0]["note"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Minimax invoice {year}-1 of ")),
        "{notes}"
    );
    helpers::eventually(Duration::from_secs(30), || async {
        let c = app.queue.counts("demo").await.unwrap();
        ((c.done, c.dead) == (2, 0)).then_some(())
    })
    .await
    .expect("two jobs done: the booking and the write-back");
}
