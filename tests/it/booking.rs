//! End to end: signed webhook → queue → worker → Minimax client → the sandbox over
//! HTTP, with a real Redis. Checks the booked documents against the shop's figures,
//! exactly-once under redelivery and lost answers, refunds, dead letters that a fixed
//! setting and a retry turn into bookings, and the calls a booking costs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::str::FromStr;
use std::time::Duration;

use minimax_connector::minimax::Country;
use minimax_connector::queue::{JobRecord, JobState};
use minimax_connector::sandbox::{Fault, FaultAction, Sandbox, SandboxHandle, SandboxSettings};
use rust_decimal::Decimal;
use serde_json::{json, Value};

const TENANT: &str = "shop-e2e";

pub(crate) struct Env {
    pub(crate) app: helpers::TestApp,
    pub(crate) sb: SandboxHandle,
    pub(crate) org: i64,
    client: reqwest::Client,
    pub(crate) settings: minimax_connector::config::Settings,
}

/// Booking settings every test starts from: issued invoices, the sandbox's payment
/// methods, its cashier (SI card and cash payments need one).
pub(crate) fn base_settings() -> Value {
    json!({
        "document": "invoice_issued",
        "cashier_employee": "Janez Novak",
        "payment_methods": {
            "bacs": "Transakcijski račun",
            "cod": "Gotovina",
            "woocommerce_payments": "Kartica",
            "stripe": "STRIPE",
            "bogus": "Kartica",
            "manual": "Transakcijski račun",
            "authorize_net": "Kartica"
        }
    })
}

pub(crate) async fn env_with(booking: Value) -> Env {
    env_full(booking, None).await
}

/// `password`: the Minimax password the tenant is given (`None`: the right one).
pub(crate) async fn env_full(booking: Value, password: Option<&str>) -> Env {
    env_tuned(booking, password, |_| {}).await
}

/// As [`env_full`], with `tune` applied to the service's settings before it starts.
pub(crate) async fn env_tuned(
    booking: Value,
    password: Option<&str>,
    tune: impl FnOnce(&mut minimax_connector::config::Settings),
) -> Env {
    let sb = Sandbox::spawn(SandboxSettings::default()).await.unwrap();
    let org = sb.state.settings().organisation_id;
    // The US fixtures charge sales tax at these rates; give the organisation rates of
    // the same percent so that the fixtures' arithmetic is what gets tested.
    for (i, p) in ["7.5", "6", "4.5", "4", "2"].iter().enumerate() {
        sb.state
            .add_vat_rate(org, &format!("US{i}"), Decimal::from_str(p).unwrap())
            .unwrap();
    }
    let mut settings =
        helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("book"));
    settings.queue.backoff_base_ms = 50;
    settings.queue.backoff_max_ms = 400;
    settings.queue.max_attempts = 6;
    // The default per-organisation rate (2/s) is for Minimax; the sandbox takes more.
    settings.minimax.rate_per_sec = 500.0;
    settings.minimax.burst = 500;
    // Blocked credentials: waiting jobs look again after a second (default 5 min).
    settings.minimax.blocked_recheck_secs = 1;
    tune(&mut settings);
    let sbs = sb.state.settings().clone();
    helpers::put_tenant(
        &settings,
        TENANT,
        json!({
            "country": "SI",
            "organisation_id": org,
            "minimax": {
                "username": sbs.username,
                "password": password.unwrap_or(secrecy::ExposeSecret::expose_secret(&sbs.password)),
                "client_id": sbs.client_id,
                "client_secret": secrecy::ExposeSecret::expose_secret(&sbs.client_secret),
                "api_base": sb.api_base(Country::SI),
                "token_url": sb.token_url(Country::SI),
            },
            "webhook_secrets": {"woocommerce": helpers::SECRET, "shopify": helpers::SECRET, "generic": helpers::SECRET},
            "settings": booking,
        }),
    )
    .await;
    let app = helpers::spawn_app(settings.clone()).await;
    Env {
        app,
        sb,
        org,
        client: reqwest::Client::new(),
        settings,
    }
}

pub(crate) async fn env() -> Env {
    env_with(base_settings()).await
}

impl Env {
    pub(crate) async fn post(
        &self,
        platform: &str,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    ) -> String {
        let res = self
            .client
            .post(self.app.url(&format!("/webhooks/{platform}/{TENANT}")))
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let json: Value = res.json().await.unwrap();
        assert_eq!(status, 202, "{json}");
        json["job_id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn woo(&self, topic: &str, body: &[u8], source: &str) -> String {
        let mut h = helpers::reqwest_headers(&helpers::woo_headers(topic, body, helpers::SECRET));
        h.insert("x-wc-webhook-source", source.parse().unwrap());
        self.post("woocommerce", h, body.to_vec()).await
    }

    pub(crate) async fn shopify(&self, topic: &str, body: &[u8], event_id: &str) -> String {
        let mut h =
            helpers::reqwest_headers(&helpers::shopify_headers(topic, body, helpers::SECRET));
        h.insert("x-shopify-event-id", event_id.parse().unwrap());
        self.post("shopify", h, body.to_vec()).await
    }

    pub(crate) async fn generic(&self, event: &Value, msg_id: &str) -> String {
        let body = serde_json::to_vec(event).unwrap();
        let h = helpers::reqwest_headers(&helpers::generic_headers(
            msg_id,
            chrono::Utc::now().timestamp(),
            &body,
            helpers::SECRET,
        ));
        self.post("generic", h, body).await
    }

    /// Waits until the job is done or dead.
    pub(crate) async fn settle(&self, id: &str) -> JobRecord {
        helpers::eventually(Duration::from_secs(20), || async {
            self.app
                .queue
                .get(TENANT, id)
                .await
                .unwrap()
                .filter(|r| matches!(r.state, JobState::Done | JobState::Dead))
        })
        .await
        .unwrap_or_else(|| panic!("job {id} did not finish"))
    }

    pub(crate) async fn done(&self, id: &str) -> JobRecord {
        let rec = self.settle(id).await;
        assert_eq!(rec.state, JobState::Done, "{:?}", rec.last_error);
        rec
    }

    pub(crate) fn invoices(&self) -> Vec<Value> {
        self.sb.state.invoices(self.org)
    }

    /// The invoices (not credit notes) with this `DocumentReference`.
    pub(crate) fn invoices_for(&self, reference: &str) -> Vec<Value> {
        self.invoices()
            .into_iter()
            .filter(|i| i["DocumentReference"] == reference)
            .collect()
    }

    pub(crate) fn invoice(&self, id: i64) -> Value {
        self.sb.state.invoice(self.org, id).unwrap()
    }
}

fn value(v: &Value) -> Decimal {
    Decimal::from_str(&v.to_string()).unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub(crate) fn generic_example() -> Value {
    serde_json::from_str(include_str!("../../docs/examples/generic-order-paid.json")).unwrap()
}

/// The booked invoice's value and the shop's total agree to the cent.
fn assert_booked(env: &Env, rec: &JobRecord, shop_total: Decimal) -> Value {
    let result = rec.result.clone().unwrap();
    let id = result["minimax_id"].as_i64().unwrap();
    let inv = env.invoice(id);
    assert_eq!(inv["Status"], "I", "issued");
    assert_eq!(value(&inv["InvoiceValue"]), shop_total, "invoice {inv}");
    assert!(result["number"].is_string(), "{result}");
    inv
}

#[tokio::test]
async fn every_fixture_order_books_to_the_cent_or_is_refused_naming_both_figures() {
    let env = env().await;
    // (platform, file, topic, shop total or None if the fixture does not add up)
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("woocommerce", "order.json", "order.updated", Some("29.35")),
        (
            "woocommerce",
            "order_prices_include_tax.ios.json",
            "order.updated",
            Some("33.30"),
        ),
        (
            "shopify",
            "order_with_percentage_discount.rest-2026-07.json",
            "orders/paid",
            Some("181.09"),
        ),
        // Published examples whose lines do not add up to their totals (scrambled or
        // hand-edited): booking them would be wrong, so the job is dead with both figures.
        (
            "woocommerce",
            "order_with_coupon.ios.json",
            "order.updated",
            None,
        ),
        ("shopify", "order.rest-2026-07.json", "orders/paid", None),
        // (order.python-fixture.json is only authorized: `orders/paid` with it is a
        // topic conflict, see intake_trust; its figures are checked in mapping.)
    ];
    for (i, (platform, file, topic, total)) in cases.iter().enumerate() {
        let body = helpers::fixture_body(platform, file);
        let id = match *platform {
            "woocommerce" => {
                env.woo(topic, &body, &format!("https://shop{i}.example/"))
                    .await
            }
            _ => env.shopify(topic, &body, &format!("evt-{i}")).await,
        };
        let rec = env.settle(&id).await;
        match total {
            Some(t) => {
                assert_eq!(rec.state, JobState::Done, "{file}: {:?}", rec.last_error);
                assert_booked(&env, &rec, dec(t));
            }
            None => {
                assert_eq!(rec.state, JobState::Dead, "{file}");
                let reason = rec.last_error.unwrap();
                assert!(
                    reason.contains("shop total") && reason.contains("document total"),
                    "{file}: {reason}"
                );
                assert_eq!(rec.attempts, 1, "a mismatch is not retried");
            }
        }
    }
    // Refused orders left nothing in Minimax.
    assert_eq!(env.invoices().len(), 3);
}

#[tokio::test]
async fn a_woocommerce_order_first_seen_with_its_refunds_is_booked_then_credited() {
    let env = env().await;
    let body = helpers::fixture_body("woocommerce", "order_partially_refunded.ios.json");
    let order: Value = serde_json::from_slice(&body).unwrap();
    let total = dec(order["total"].as_str().unwrap());
    let id = env
        .woo("order.updated", &body, "https://refunds.example/")
        .await;
    let rec = env.done(&id).await;
    let result = rec.result.unwrap();
    assert_eq!(result["document"], "credit_note", "{result}");
    let booked: Vec<_> = env
        .invoices()
        .into_iter()
        .filter(|i| value(&i["InvoiceValue"]) > Decimal::ZERO)
        .collect();
    assert_eq!(booked.len(), 1);
    assert_eq!(value(&booked[0]["InvoiceValue"]), total);
    // Every refund of the order is credited once, of its amount.
    let mut refunded: Vec<Decimal> = order["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| -dec(r["total"].as_str().unwrap()).abs())
        .collect();
    refunded.sort();
    let credits = || {
        let mut c: Vec<Decimal> = env
            .invoices()
            .iter()
            .map(|i| value(&i["InvoiceValue"]))
            .filter(|v| *v < Decimal::ZERO)
            .collect();
        c.sort();
        c
    };
    assert_eq!(refunded.len(), 2);
    assert_eq!(credits(), refunded);
    // The next update of the same order (another delivery) credits nothing again.
    let again = env
        .woo("order.updated", &body, "https://refunds-again.example/")
        .await;
    env.done(&again).await;
    assert_eq!(credits(), refunded);
}

#[tokio::test]
async fn table_of_orders_books_each_to_the_cent() {
    let env = env().await;
    let base = generic_example();
    let mut cases: Vec<(&str, Value)> = Vec::new();

    // Two VAT rates, a percentage coupon, taxed shipping, a fee, a B2B buyer with a VAT number.
    cases.push(("two rates, coupon, shipping, fee, B2B", base.clone()));

    let mut usd = base.clone();
    usd["order"]["currency"] = json!("USD");
    cases.push(("foreign currency", usd));

    let mut guest = base.clone();
    guest["order"]["customer"]
        .as_object_mut()
        .unwrap()
        .remove("shop_customer_id");
    guest["order"]["customer"]
        .as_object_mut()
        .unwrap()
        .remove("vat_number");
    guest["order"]["customer"]
        .as_object_mut()
        .unwrap()
        .remove("company");
    guest["order"]["billing"]
        .as_object_mut()
        .unwrap()
        .remove("vat_number");
    guest["order"]["billing"]
        .as_object_mut()
        .unwrap()
        .remove("company");
    cases.push(("guest consumer", guest));

    let mut zero = base.clone();
    zero["order"]["lines"].as_array_mut().unwrap().push(json!({
        "shop_line_id": "3", "sku": "GIFT-0", "name": "Gift card", "quantity": 1,
        "unit_price": "10.00", "subtotal": "10.00", "discount": "0.00", "total": "10.00",
        "total_tax": "0.00", "tax_rate_percent": "0", "taxes": []
    }));
    zero["order"]["subtotal"] = json!("45.00");
    zero["order"]["total"] = json!("55.71");
    cases.push(("zero-rated line", zero));

    let gross = json!({"version": 1, "kind": "order_paid", "order": {
        "shop_order_id": "9001", "number": "G-9001", "currency": "EUR", "status": "paid",
        "prices_include_tax": true, "amounts_include_tax": true,
        "customer": {"email": "gross@example.si", "first_name": "Gal", "last_name": "Bruto"},
        "billing": {"first_name": "Gal", "last_name": "Bruto", "street": ["Trg 1"], "city": "Maribor", "postcode": "2000", "country_code": "SI", "email": "gross@example.si"},
        "lines": [{"sku": "MUG-01", "name": "Coffee mug", "quantity": "3", "unit_price": "12.20",
                   "subtotal": "36.60", "discount": "0", "total": "36.60", "total_tax": "6.60", "tax_rate_percent": "22"}],
        "shipping_lines": [{"title": "Dostava", "subtotal": "3.29", "discount": "0", "total": "3.29", "total_tax": "0.59", "tax_rate_percent": "22"}],
        "tax_lines": [{"label": "DDV 22 %", "rate_percent": "22", "amount": "7.19"}],
        "subtotal": "36.60", "discount_total": "0", "shipping_total": "3.29", "total_tax": "7.19", "total": "39.89",
        "payment_method": {"id": "stripe", "title": "Card"}
    }});
    cases.push(("prices include tax", gross));

    let fixed = json!({"version": 1, "kind": "order_paid", "order": {
        "shop_order_id": "9002", "number": "F-9002", "currency": "EUR", "status": "processing",
        "customer": {"shop_customer_id": "77", "email": "fixed@example.si", "first_name": "Fani", "last_name": "Popust"},
        "billing": {"first_name": "Fani", "last_name": "Popust", "street": ["Cesta 2"], "city": "Celje", "postcode": "3000", "country_code": "SI"},
        "lines": [
            {"sku": "BOOK-7", "name": "Cookbook", "quantity": "2", "unit_price": "15.00", "subtotal": "30.00", "discount": "5.00", "total": "25.00", "total_tax": "2.38", "tax_rate_percent": "9.5"},
            {"sku": "MUG-01", "name": "Coffee mug", "quantity": "1", "unit_price": "9.99", "subtotal": "9.99", "discount": "0", "total": "9.99", "total_tax": "2.20", "tax_rate_percent": "22"}
        ],
        "discounts": [{"code": "MINUS5", "kind": "fixed", "value": "5.00", "amount": "5.00"}],
        "tax_lines": [{"label": "DDV 9,5 %", "rate_percent": "9.5", "amount": "2.38"}, {"label": "DDV 22 %", "rate_percent": "22", "amount": "2.20"}],
        "subtotal": "39.99", "discount_total": "5.00", "shipping_total": "0", "total_tax": "4.58", "total": "39.57",
        "payment_method": {"id": "bacs", "title": "Bank transfer"}
    }});
    cases.push(("fixed coupon, no shipping, bank transfer", fixed));

    for (i, (name, mut event)) in cases.into_iter().enumerate() {
        // Each case is its own order.
        event["order"]["shop_order_id"] = json!(format!("T{i}"));
        event["order"]["number"] = json!(format!("T-{i}"));
        let total = dec(event["order"]["total"].as_str().unwrap());
        let id = env.generic(&event, &format!("msg-table-{i}")).await;
        let rec = env.settle(&id).await;
        assert_eq!(rec.state, JobState::Done, "{name}: {:?}", rec.last_error);
        let inv = assert_booked(&env, &rec, total);
        assert_eq!(inv["DocumentReference"], format!("T-{i}"), "{name}");
        if name == "foreign currency" {
            assert_eq!(inv["Currency"]["Name"], "USD", "{name}: {inv}");
        }
        if name == "prices include tax" {
            assert_eq!(inv["PricesOnInvoice"], "D", "{name}");
        }
    }
    // The B2B buyer is a VAT-registered customer, the guest a consumer keyed by e-mail.
    let customers = env.sb.state.customers(env.org);
    let b2b = customers
        .iter()
        .find(|c| c["VATIdentificationNumber"] == "SI12345678")
        .unwrap();
    assert_eq!(b2b["SubjectToVAT"], "D");
    assert!(customers.iter().any(|c| c["SubjectToVAT"] == "N"));
}

#[tokio::test]
async fn the_same_order_delivered_five_times_is_one_document() {
    let env = env().await;
    let order: Value =
        serde_json::from_slice(&helpers::fixture_body("woocommerce", "order.json")).unwrap();
    // Five distinct deliveries (the order at five modification times: five dedupe
    // keys), as WooCommerce re-sends `order.updated` on every change.
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut snapshot = order.clone();
        snapshot["date_modified_gmt"] = json!(format!("2017-03-22T19:3{i}:00"));
        let body = serde_json::to_vec(&snapshot).unwrap();
        ids.push(
            env.woo("order.updated", &body, "https://again.example/")
                .await,
        );
    }
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        5,
        "five jobs"
    );
    for id in &ids {
        env.done(id).await;
    }
    assert_eq!(env.invoices_for("727").len(), 1, "{:?}", env.invoices());
}

/// The two ways a create's answer gets lost: an error after it was handled, or the
/// connection dropped after it was handled.
pub(crate) fn lost_answers() -> [(&'static str, FaultAction); 2] {
    [
        ("500 after creating", FaultAction::StatusAfterHandling(500)),
        (
            "connection dropped after creating",
            FaultAction::DropAfterHandling,
        ),
    ]
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_adopted_not_repeated() {
    for (label, fault) in lost_answers() {
        let env = env().await;
        env.sb
            .state
            .inject(Fault::new("/issuedinvoices", fault).method("POST").times(1));
        let body = helpers::fixture_body("woocommerce", "order.json");
        let id = env
            .woo("order.updated", &body, "https://lost.example/")
            .await;
        let rec = env.done(&id).await;
        assert_eq!(
            env.invoices_for("727").len(),
            1,
            "{label}: {:?}",
            env.invoices()
        );
        assert_eq!(rec.result.as_ref().unwrap()["adopted"], true, "{label}");
        assert!(rec.attempts >= 2, "{label}");
        // A later redelivery changes nothing.
        let again = env
            .woo("order.updated", &body, "https://lost-again.example/")
            .await;
        env.done(&again).await;
        assert_eq!(env.invoices_for("727").len(), 1, "{label}");
    }
}

#[tokio::test]
async fn full_and_partial_refunds_become_credit_notes_of_the_refunded_amounts() {
    let env = env().await;
    let paid = generic_example();
    let total = dec("45.71");
    let id = env.generic(&paid, "msg-paid").await;
    let rec = env.done(&id).await;
    let invoice_id = rec.result.unwrap()["minimax_id"].as_i64().unwrap();

    // Partial: one mug (of two) back.
    let partial = json!({"version": 1, "kind": "order_refunded", "refund": {
        "shop_refund_id": "R1", "shop_order_id": "100045", "currency": "EUR", "amount": "10.98",
        "lines": [{"shop_line_id": "1", "sku": "MUG-01", "name": "Coffee mug", "quantity": "1", "subtotal": "9.00", "tax": "1.98"}]
    }});
    let id = env.generic(&partial, "msg-refund-1").await;
    let rec = env.done(&id).await;
    let credit = env.invoice(rec.result.unwrap()["minimax_id"].as_i64().unwrap());
    assert_eq!(value(&credit["InvoiceValue"]), dec("-10.98"), "{credit}");

    // Full: everything back, as a copy of the invoice.
    let mut full = paid.clone();
    full["kind"] = json!("order_refunded");
    let order = full["order"].take();
    full.as_object_mut().unwrap().remove("order");
    full["refund"] = json!({"shop_refund_id": "R2", "shop_order_id": "100045", "currency": "EUR", "amount": "45.71"});
    full["order"] = order;
    let id = env.generic(&full, "msg-refund-2").await;
    let rec = env.done(&id).await;
    let credit_id = rec.result.unwrap()["minimax_id"].as_i64().unwrap();
    assert_ne!(credit_id, invoice_id);
    let credit = env.invoice(credit_id);
    assert_eq!(value(&credit["InvoiceValue"]), -total, "{credit}");
}

#[tokio::test]
async fn a_refund_that_arrives_before_its_order_waits_then_books() {
    let env = env().await;
    let refund = json!({"version": 1, "kind": "order_refunded", "refund": {
        "shop_refund_id": "R9", "shop_order_id": "100045", "currency": "EUR", "amount": "10.98",
        "lines": [{"shop_line_id": "1", "sku": "MUG-01", "name": "Coffee mug", "quantity": "1", "subtotal": "9.00", "tax": "1.98"}]
    }});
    let refund_job = env.generic(&refund, "msg-early-refund").await;
    let waiting = helpers::eventually(Duration::from_secs(10), || async {
        env.app
            .queue
            .get(TENANT, &refund_job)
            .await
            .unwrap()
            .filter(|r| r.state == JobState::Delayed)
    })
    .await
    .expect("the refund waits");
    assert!(waiting
        .last_error
        .unwrap()
        .contains("waiting for the invoice"));
    assert!(env.invoices().is_empty());

    let order_job = env.generic(&generic_example(), "msg-late-order").await;
    env.done(&order_job).await;
    // The refund's next look finds the invoice (retry it now rather than wait 30 s).
    env.app.queue.retry(TENANT, &refund_job).await.unwrap();
    let rec = env.done(&refund_job).await;
    let credit = env.invoice(rec.result.unwrap()["minimax_id"].as_i64().unwrap());
    assert_eq!(value(&credit["InvoiceValue"]), dec("-10.98"));
    assert_eq!(rec.attempts, 1, "waiting used no attempts");
}

#[tokio::test]
async fn dead_jobs_name_the_fix_and_book_after_it_and_a_retry() {
    let mut booking = base_settings();
    booking["item_strategy"] = json!("by_sku_require_existing");
    booking["payment_methods"]
        .as_object_mut()
        .unwrap()
        .remove("cod");
    let env = env_with(booking).await;

    // 1. An item that does not exist while items must exist.
    let id = env.generic(&generic_example(), "msg-dead-1").await;
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead);
    let reason = rec.last_error.unwrap();
    assert!(
        reason.contains("MUG-01") && reason.contains("item_strategy"),
        "{reason}"
    );
    assert_eq!(rec.attempts, 1, "not retried");

    // 2. Allow creating items: now the unmapped payment method stops it.
    let mut fixed = base_settings();
    fixed["payment_methods"]
        .as_object_mut()
        .unwrap()
        .remove("cod");
    update_settings(&env, fixed).await;
    env.app.queue.retry(TENANT, &id).await.unwrap();
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead);
    let reason = rec.last_error.unwrap();
    assert!(
        reason.contains("cod") && reason.contains("payment"),
        "{reason}"
    );

    // 3. Map the payment method: the retried job books.
    update_settings(&env, base_settings()).await;
    env.app.queue.retry(TENANT, &id).await.unwrap();
    let rec = env.done(&id).await;
    assert_booked(&env, &rec, dec("45.71"));

    // 4. An unreconcilable total: dead with both figures, nothing written.
    let mut wrong = generic_example();
    wrong["order"]["shop_order_id"] = json!("666");
    wrong["order"]["number"] = json!("WRONG-1");
    wrong["order"]["total"] = json!("46.71");
    let id = env.generic(&wrong, "msg-dead-4").await;
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead);
    let reason = rec.last_error.unwrap();
    assert!(
        reason.contains("46.71") && reason.contains("45.71"),
        "{reason}"
    );
    assert!(env.invoices_for("WRONG-1").is_empty());
}

pub(crate) async fn update_settings(env: &Env, booking: Value) {
    let store = helpers::tenant_store(&env.settings);
    let mut t = store.get(TENANT).await.unwrap().unwrap();
    t.settings = serde_json::from_value(booking).unwrap();
    store.put(&t).await.unwrap();
}

#[tokio::test]
async fn calls_per_booked_order_cold_and_warm() {
    let env = env().await;
    env.sb.state.reset_counters();
    let first = generic_example();
    let id = env.generic(&first, "msg-cold").await;
    env.done(&id).await;
    let cold = env.sb.state.counters();

    env.sb.state.reset_counters();
    let mut second = generic_example();
    second["order"]["shop_order_id"] = json!("100046");
    second["order"]["number"] = json!("2025-00046");
    let id = env.generic(&second, "msg-warm").await;
    env.done(&id).await;
    let warm = env.sb.state.counters();
    println!(
        "calls per booked order (issued invoice): cold {} API + {} token, warm {} API + {} token; warm by kind: {:?}",
        cold.api_calls, cold.token_requests, warm.api_calls, warm.token_requests, warm.by_kind
    );
    println!("cold by kind: {:?}", cold.by_kind);
    // Warm: the document itself only — create, read (RowVersion), issue, read (number).
    assert_eq!(warm.token_requests, 0);
    assert_eq!(warm.api_calls, 4, "{:?}", warm.by_kind);
    assert!(cold.api_calls > warm.api_calls);
    assert_eq!(cold.token_requests, 1);

    // A repeated event of a booked order costs nothing.
    env.sb.state.reset_counters();
    let id = env.generic(&second, "msg-warm-again").await;
    env.done(&id).await;
    assert_eq!(env.sb.state.counters().api_calls, 0);
}

#[tokio::test]
async fn cancelling_deletes_a_draft_and_credits_an_issued_invoice() {
    // Drafts: the cancellation deletes the draft; a late paid event books nothing.
    let mut drafts = base_settings();
    drafts["document"] = json!("invoice_draft");
    let env = env_with(drafts).await;
    let paid = generic_example();
    let rec = env.done(&env.generic(&paid, "msg-d-paid").await).await;
    let id = rec.result.unwrap()["minimax_id"].as_i64().unwrap();
    assert_eq!(env.invoice(id)["Status"], "O");
    let mut cancelled = paid.clone();
    cancelled["kind"] = json!("order_cancelled");
    cancelled["order"]["status"] = json!("cancelled");
    let rec = env
        .done(&env.generic(&cancelled, "msg-d-cancel").await)
        .await;
    assert_eq!(rec.result.unwrap()["status"], "deleted");
    assert!(env.sb.state.invoice(env.org, id).is_none(), "draft deleted");
    let rec = env.done(&env.generic(&paid, "msg-d-paid-late").await).await;
    assert!(rec.result.unwrap()["skipped"].is_string());
    assert!(env.invoices().is_empty());

    // Issued: the cancellation is a credit note of the whole invoice.
    let issued = env_with(base_settings()).await;
    let rec = issued
        .done(&issued.generic(&paid, "msg-i-paid").await)
        .await;
    let id = rec.result.unwrap()["minimax_id"].as_i64().unwrap();
    let rec = issued
        .done(&issued.generic(&cancelled, "msg-i-cancel").await)
        .await;
    let result = rec.result.unwrap();
    assert_eq!(result["document"], "credit_note", "{result}");
    let credit = issued.invoice(result["minimax_id"].as_i64().unwrap());
    assert_eq!(
        value(&credit["InvoiceValue"]),
        -value(&issued.invoice(id)["InvoiceValue"])
    );
}

#[tokio::test]
async fn issuing_with_pdf_keeps_the_attachment_id_and_the_analytic_is_carried() {
    let mut pdf = base_settings();
    pdf["document"] = json!("invoice_issued_with_pdf");
    pdf["analytic_id"] = json!(4242);
    let env = env_with(pdf).await;
    let rec = env
        .done(&env.generic(&generic_example(), "msg-pdf").await)
        .await;
    let result = rec.result.unwrap();
    let inv = env.invoice(result["minimax_id"].as_i64().unwrap());
    assert_eq!(inv["Analytic"]["ID"], 4242, "analytic carried: {inv}");
    assert_eq!(result["status"], "issued");
    assert!(result["pdf"]["attachment_id"].is_i64(), "{result}");
    assert!(
        result["pdf"]["file_name"]
            .as_str()
            .unwrap()
            .ends_with(".pdf"),
        "{result}"
    );
}

#[tokio::test]
async fn received_orders_are_created_once_with_the_shop_reference() {
    let mut orders = base_settings();
    orders["document"] = json!("received_order");
    let env = env_with(orders).await;
    let paid = generic_example();
    for i in 0..3 {
        env.done(&env.generic(&paid, &format!("msg-o-{i}")).await)
            .await;
    }
    let orders = env.sb.state.orders(env.org);
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["Reference"], "2025-00045");
    assert_eq!(orders[0]["ReceivedIssued"], "P");
}

#[tokio::test]
async fn a_warm_draft_booking_costs_one_call() {
    let mut drafts = base_settings();
    drafts["document"] = json!("invoice_draft");
    let env = env_with(drafts).await;
    env.done(&env.generic(&generic_example(), "msg-draft-cold").await)
        .await;
    env.sb.state.reset_counters();
    let mut second = generic_example();
    second["order"]["shop_order_id"] = json!("100047");
    second["order"]["number"] = json!("2025-00047");
    env.done(&env.generic(&second, "msg-draft-warm").await)
        .await;
    let warm = env.sb.state.counters();
    assert_eq!(
        (warm.api_calls, warm.token_requests),
        (1, 0),
        "{:?}",
        warm.by_kind
    );
}

#[tokio::test]
async fn an_operator_fixes_the_setting_and_retries_through_the_admin_api() {
    let mut booking = base_settings();
    booking["payment_methods"]
        .as_object_mut()
        .unwrap()
        .remove("cod");
    let env = env_with(booking).await;
    let admin = |req: reqwest::RequestBuilder| req.bearer_auth("demo-admin-token-change-me");
    let id = env.generic(&generic_example(), "msg-admin-1").await;
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead);

    let dead: Value = admin(
        env.client.get(
            env.app
                .url(&format!("/admin/tenants/{TENANT}/jobs?state=dead")),
        ),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(dead.to_string().contains(&id), "{dead}");

    let res = admin(
        env.client
            .patch(env.app.url(&format!("/admin/tenants/{TENANT}"))),
    )
    .json(&json!({"settings": {"payment_methods": {"cod": "Gotovina"}}}))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = admin(
        env.client.post(
            env.app
                .url(&format!("/admin/tenants/{TENANT}/jobs/{id}/retry")),
        ),
    )
    .send()
    .await
    .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let rec = env.done(&id).await;
    assert_booked(&env, &rec, dec("45.71"));
    let job: Value = admin(
        env.client
            .get(env.app.url(&format!("/admin/tenants/{TENANT}/jobs/{id}"))),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(job["state"], "done");
    assert_eq!(job["result"]["document"], "issued_invoice");
}

#[tokio::test]
async fn a_wrong_password_makes_one_token_request_jobs_wait_and_book_after_the_fix() {
    let env = env_full(base_settings(), Some("not-the-password")).await;
    let admin = |req: reqwest::RequestBuilder| req.bearer_auth("demo-admin-token-change-me");
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut order = generic_example();
        order["order"]["shop_order_id"] = json!(format!("L{i}"));
        order["order"]["number"] = json!(format!("L-{i}"));
        ids.push(env.generic(&order, &format!("msg-lock-{i}")).await);
    }
    // Every job is waiting; they have looked again (recheck every second) without a
    // second token request.
    for id in &ids {
        let waiting = helpers::eventually(Duration::from_secs(10), || async {
            env.app.queue.get(TENANT, id).await.unwrap().filter(|r| {
                r.state == JobState::Delayed
                    && r.history.iter().filter(|a| a.outcome == "wait").count() >= 2
            })
        })
        .await
        .expect("job waits");
        // Read in one go with the state: a waiting job has used no attempt (while it
        // is being looked at again, the running look counts as one).
        assert_eq!(waiting.attempts, 0, "waiting uses no attempts");
    }
    let c = env.sb.state.counters();
    assert_eq!(
        c.token_requests, 1,
        "exactly one login with the wrong password"
    );
    assert!(!env.sb.state.is_locked(&env.sb.state.settings().username));
    let status: Value = admin(
        env.client
            .get(env.app.url(&format!("/admin/tenants/{TENANT}/status"))),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(status["credentials"]["state"], "blocked", "{status}");
    let metrics = env
        .client
        .get(env.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "mmc_tenant_credentials_blocked{{tenant=\"{TENANT}\"}} 1"
        )),
        "{metrics}"
    );

    // The operator enters the right password: the waiting jobs go through.
    let password =
        secrecy::ExposeSecret::expose_secret(&env.sb.state.settings().password).to_owned();
    let res = admin(
        env.client
            .patch(env.app.url(&format!("/admin/tenants/{TENANT}"))),
    )
    .json(&json!({"minimax": {"password": password}}))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    for id in &ids {
        env.done(id).await;
    }
    assert_eq!(env.sb.state.counters().token_requests, 2);
    assert_eq!(env.invoices().len(), 5);
}

#[tokio::test]
async fn demo_mode_books_into_the_embedded_sandbox() {
    // What `cargo run` does: demo on, the sandbox mounted in the service itself, the
    // demo tenant seeded with `{self}` pointing at this instance.
    let mut settings =
        helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("demo"));
    settings.demo.enabled = true;
    settings.apply_demo();
    settings.minimax.rate_per_sec = 500.0;
    settings.minimax.burst = 500;
    let app = helpers::spawn_app(settings.clone()).await;
    let store = helpers::tenant_store(&settings);
    let tenant = helpers::eventually(Duration::from_secs(10), || async {
        store.get("demo").await.unwrap()
    })
    .await
    .expect("demo tenant seeded");
    assert!(tenant
        .minimax
        .api_base
        .as_deref()
        .unwrap()
        .starts_with(&app.base));

    let body = serde_json::to_vec(&generic_example()).unwrap();
    let h = helpers::reqwest_headers(&helpers::generic_headers(
        "msg-demo",
        chrono::Utc::now().timestamp(),
        &body,
        &settings.demo.webhook_secret,
    ));
    let res = reqwest::Client::new()
        .post(app.url("/webhooks/generic/demo"))
        .headers(h)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec = helpers::eventually(Duration::from_secs(20), || async {
        app.queue
            .get("demo", &id)
            .await
            .unwrap()
            .filter(|r| matches!(r.state, JobState::Done | JobState::Dead))
    })
    .await
    .unwrap();
    assert_eq!(rec.state, JobState::Done, "{:?}", rec.last_error);
    let result = rec.result.unwrap();
    assert_eq!(result["status"], "issued");
    assert_eq!(
        result["number"],
        format!("{}-1", chrono::Utc::now().format("%Y"))
    );
}

#[tokio::test]
async fn a_credit_note_whose_answer_is_lost_is_adopted_not_repeated() {
    let env = env().await;
    let paid = generic_example();
    env.done(&env.generic(&paid, "msg-c-paid").await).await;
    env.sb
        .state
        .inject(Fault::new("/actions/copytocreditnote", FaultAction::DropAfterHandling).times(1));
    let mut cancelled = paid.clone();
    cancelled["kind"] = json!("order_cancelled");
    let rec = env
        .done(&env.generic(&cancelled, "msg-c-cancel").await)
        .await;
    assert!(rec.attempts >= 2);
    let result = rec.result.unwrap();
    assert_eq!(result["adopted"], true, "{result}");
    let credits: Vec<_> = env
        .invoices()
        .into_iter()
        .filter(|i| value(&i["InvoiceValue"]) < Decimal::ZERO)
        .collect();
    assert_eq!(credits.len(), 1, "{credits:?}");
}

#[tokio::test]
async fn a_refused_create_leaves_no_intent_so_the_retry_does_not_search() {
    let env = env().await;
    env.sb.state.inject(
        Fault::new("/issuedinvoices", FaultAction::Status(400))
            .method("POST")
            .times(1),
    );
    let id = env.generic(&generic_example(), "msg-refused").await;
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead, "a 400 is not retried by itself");
    env.sb.state.reset_counters();
    env.app.queue.retry(TENANT, &id).await.unwrap();
    let rec = env.done(&id).await;
    assert_eq!(rec.result.unwrap()["adopted"], false);
    let by_kind = env.sb.state.counters().by_kind;
    assert!(
        !by_kind
            .keys()
            .any(|k| k.starts_with("get issuedinvoices") && !k.contains("{id}")),
        "no search for an earlier invoice: {by_kind:?}"
    );
}

#[tokio::test]
async fn an_order_changed_after_booking_is_flagged_not_rebooked() {
    let env = env().await;
    let paid = generic_example();
    env.done(&env.generic(&paid, "msg-ch-1").await).await;
    let mut changed = paid.clone();
    changed["order"]["total"] = json!("50.00");
    let rec = env.done(&env.generic(&changed, "msg-ch-2").await).await;
    let warning = rec.result.unwrap()["warning"].as_str().unwrap().to_owned();
    assert!(
        warning.contains("45.71") && warning.contains("50.00"),
        "{warning}"
    );
    assert_eq!(env.invoices_for("2025-00045").len(), 1);
}

#[tokio::test]
async fn a_cancellation_settles_an_unconfirmed_booking_that_never_happened() {
    let env = env().await;
    // An earlier attempt wrote its intent and died before Minimax created anything.
    let records = minimax_connector::booking::records::Records::new(
        helpers::pool(&helpers::redis_url()),
        env.settings.redis.key_prefix.clone(),
    );
    records
        .put(
            TENANT,
            "100045",
            &minimax_connector::booking::records::Doc::Invoice,
            &minimax_connector::booking::records::Record {
                state: minimax_connector::booking::records::RecordState::Intent,
                minimax_id: None,
                number: None,
                reference: Some("2025-00045".into()),
                customer_id: Some(1),
                document_date: Some(chrono::Utc::now().date_naive()),
                value: None,
            },
        )
        .await
        .unwrap();
    let mut cancelled = generic_example();
    cancelled["kind"] = json!("order_cancelled");
    let rec = env
        .done(&env.generic(&cancelled, "msg-intent-cancel").await)
        .await;
    assert!(rec.result.unwrap()["skipped"]
        .as_str()
        .unwrap()
        .contains("never created"));
    // A late paid event books nothing.
    let rec = env
        .done(&env.generic(&generic_example(), "msg-intent-late").await)
        .await;
    assert!(rec.result.unwrap()["skipped"].is_string());
    assert!(env.invoices().is_empty());
}

#[tokio::test]
async fn a_received_order_whose_answer_is_lost_is_adopted_and_a_cancellation_invalidates_it() {
    let mut orders = base_settings();
    orders["document"] = json!("received_order");
    let env = env_with(orders).await;
    env.sb.state.inject(
        Fault::new("/orders", FaultAction::DropAfterHandling)
            .method("POST")
            .times(1),
    );
    let paid = generic_example();
    let rec = env.done(&env.generic(&paid, "msg-ro-paid").await).await;
    assert_eq!(rec.result.unwrap()["adopted"], true, "found by Reference");
    assert_eq!(env.sb.state.orders(env.org).len(), 1);

    let mut cancelled = paid.clone();
    cancelled["kind"] = json!("order_cancelled");
    let rec = env
        .done(&env.generic(&cancelled, "msg-ro-cancel").await)
        .await;
    assert_eq!(rec.result.unwrap()["status"], "invalidated");
    let orders = env.sb.state.orders(env.org);
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0]["Status"], "R",
        "invalidated in Minimax: {}",
        orders[0]
    );
    // A late paid delivery books nothing.
    let rec = env.done(&env.generic(&paid, "msg-ro-late").await).await;
    assert!(rec.result.unwrap()["skipped"].is_string());
    assert_eq!(env.sb.state.orders(env.org).len(), 1);
}

#[tokio::test]
async fn a_cancellation_before_a_received_order_is_booked_stops_the_late_paid_event() {
    let mut orders = base_settings();
    orders["document"] = json!("received_order");
    let env = env_with(orders).await;
    let mut cancelled = generic_example();
    cancelled["kind"] = json!("order_cancelled");
    env.done(&env.generic(&cancelled, "msg-rc-cancel").await)
        .await;
    let rec = env
        .done(&env.generic(&generic_example(), "msg-rc-paid").await)
        .await;
    assert!(rec.result.unwrap()["skipped"].is_string());
    assert!(env.sb.state.orders(env.org).is_empty());
}

#[tokio::test]
async fn the_customer_is_written_only_when_the_shops_data_changed() {
    let env = env().await;
    let order = |n: u32, city: &str| {
        let mut o = generic_example();
        o["order"]["shop_order_id"] = json!(format!("C{n}"));
        o["order"]["number"] = json!(format!("C-{n}"));
        o["order"]["billing"]["city"] = json!(city);
        o
    };
    env.done(&env.generic(&order(1, "Ljubljana"), "msg-cu-1").await)
        .await;
    // Same data: no read, no write of the customer.
    env.sb.state.reset_counters();
    env.done(&env.generic(&order(2, "Ljubljana"), "msg-cu-2").await)
        .await;
    let c = env.sb.state.counters();
    assert_eq!(
        (c.kind("get customers/{id}"), c.kind("put customers/{id}")),
        (0, 0)
    );
    // The buyer moved: one read, one write.
    env.sb.state.reset_counters();
    env.done(&env.generic(&order(3, "Maribor"), "msg-cu-3").await)
        .await;
    let c = env.sb.state.counters();
    assert_eq!(
        (c.kind("get customers/{id}"), c.kind("put customers/{id}")),
        (1, 1)
    );
    let customers = env.sb.state.customers(env.org);
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0]["City"], "Maribor");
}

#[tokio::test]
async fn a_job_that_lost_the_order_lock_cannot_renew_it() {
    let records = minimax_connector::booking::records::Records::new(
        helpers::pool(&helpers::redis_url()),
        helpers::unique_prefix("lock"),
    );
    let mine = records.lock("t", "o1", 200).await.unwrap().unwrap();
    assert!(
        records.lock("t", "o1", 200).await.unwrap().is_none(),
        "held"
    );
    assert!(records.refresh("t", "o1", &mine, 200).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // It expired and another job took it: the first job must stop writing.
    let theirs = records.lock("t", "o1", 10_000).await.unwrap().unwrap();
    assert!(!records.refresh("t", "o1", &mine, 10_000).await.unwrap());
    assert!(records.refresh("t", "o1", &theirs, 10_000).await.unwrap());
}
