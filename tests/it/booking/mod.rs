//! End to end: signed webhook → queue → worker → Minimax client → the sandbox over
//! HTTP, with a real Redis. Checks the booked documents against the shop's figures,
//! exactly-once under redelivery and lost answers, refunds, dead letters that a fixed
//! setting and a retry turn into bookings, and the calls a booking costs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::str::FromStr;
use std::time::Duration;

use crate::helpers::tid;
use minimax_connector::minimax::Country;
use minimax_connector::queue::{JobRecord, JobState};
use minimax_connector::sandbox::{Fault, FaultAction, Sandbox, SandboxHandle, SandboxSettings};
use rust_decimal::Decimal;
use serde_json::{json, Value};

mod failures;
mod orders;
mod refunds_and_cancellations;

pub(crate) use failures::lost_answers;

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
        let (status, json) = self.app.post_webhook(platform, TENANT, headers, body).await;
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
                .get(&tid(TENANT), id)
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
    serde_json::from_str(include_str!(
        "../../../docs/examples/generic-order-paid.json"
    ))
    .unwrap()
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
