//! The operator API over real HTTP against real Redis: authentication, the tenant
//! lifecycle (and that no secret ever shows up in a response, a log line or Redis in
//! clear), jobs (paging, inspection, retry, retry-dead, discard), the connection check
//! against a fake Minimax that rejects a password (and is never asked twice), and the
//! OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use minimax_connector::config::{Role, Settings};
use minimax_connector::jobs::Job;
use minimax_connector::queue::{Claim, Finish};
use minimax_connector::sandbox::{Sandbox, SandboxHandle, SandboxSettings};
use minimax_connector::webshop::Platform;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

mod access;
mod connection_check;
mod jobs;
mod tenants;

const TOKEN: &str = "test-admin-token-one";
const TOKEN_2: &str = "test-admin-token-two";
const PASSWORD: &str = "pw-9f1c2e7d-NOT-IN-LOGS";
const GOOD_PASSWORD: &str = "pw-good-4471aa-NOT-IN-LOGS";
const CLIENT_SECRET: &str = "cs-5b8a11e0-NOT-IN-LOGS";
const WOO_SECRET: &str = "whk-woo-3c4d5e6f-NOT-IN-LOGS";
const SHOPIFY_SECRET: &str = "whk-shopify-8e9f0a1b-NOT-IN-LOGS";
const GENERIC_SECRET: &str = "whk-generic-2c3d4e5f-NOT-IN-LOGS";
const OTHER_SECRET: &str = "whk-other-tenant-77aa-NOT-IN-LOGS";

const SECRETS: [&str; 7] = [
    PASSWORD,
    GOOD_PASSWORD,
    CLIENT_SECRET,
    WOO_SECRET,
    SHOPIFY_SECRET,
    GENERIC_SECRET,
    OTHER_SECRET,
];

use helpers::{capture_logs, captured_logs};

fn assert_no_secret_in(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "secret {s:?} found in {what}");
    }
}

fn assert_no_secret_in_logs() {
    let logs = captured_logs();
    assert!(
        logs.contains("tenant stored"),
        "the capture sees this crate's log lines"
    );
    assert_no_secret_in("the logs", &logs);
}

struct Env {
    app: helpers::TestApp,
    settings: Settings,
    client: reqwest::Client,
    /// Every response body seen, to scan for secrets.
    bodies: Mutex<Vec<String>>,
}

async fn env_with(role: Role) -> Env {
    capture_logs();
    let mut settings =
        helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("admin"));
    settings.role = role;
    settings.security.admin_tokens = vec![TOKEN.into(), TOKEN_2.into()];
    let app = helpers::spawn_app_with(settings.clone(), Arc::new(helpers::OkHandler)).await;
    Env {
        app,
        settings,
        client: reqwest::Client::new(),
        bodies: Mutex::new(Vec::new()),
    }
}

/// Intake only: no workers, so jobs stay where the test puts them.
async fn env() -> Env {
    env_with(Role::Intake).await
}

impl Env {
    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, self.app.url(path));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        self.bodies.lock().unwrap().push(text.clone());
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(
            method,
            path,
            Some(&format!("Bearer {TOKEN}")),
            body.map(|b| b.to_string()),
        )
        .await
    }

    async fn webhook(&self, tenant: &str, body: &[u8], secret: &str) -> u16 {
        let headers =
            helpers::reqwest_headers(&helpers::woo_headers("order.updated", body, secret));
        self.app
            .post_webhook("woocommerce", tenant, headers, body.to_vec())
            .await
            .0
    }

    fn assert_no_secret_in_responses(&self) {
        for body in self.bodies.lock().unwrap().iter() {
            assert_no_secret_in("a response body", body);
        }
    }

    async fn raw_redis(&self, key: &str) -> Option<String> {
        let pool = helpers::pool(&self.settings.redis.url);
        let mut conn = pool.get().await.unwrap();
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap()
    }
}

fn full_tenant() -> Value {
    json!({
        "name": "Shop One",
        "country": "SI",
        "organisation_id": 1001,
        "minimax": {
            "username": "shop-one-api",
            "password": PASSWORD,
            "client_id": "shop-one-client",
            "client_secret": CLIENT_SECRET,
        },
        "webhook_secrets": {
            "woocommerce": WOO_SECRET,
            "shopify": SHOPIFY_SECRET,
            "generic": GENERIC_SECRET,
        },
        "settings": {"document": "invoice_issued", "payment_due_days": 8},
    })
}
