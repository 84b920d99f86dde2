//! Helpers shared by the webshop integration tests: fixture loading (with the REST
//! wrappers removed, as tests/fixtures/webshop/SOURCES.md says), request signing per platform, and reading
//! expected values straight from the fixture JSON.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use minimax_connector::webshop::{
    parse, verify, IncomingEvent, Intake, ParseSettings, Platform, WebshopError,
};
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::Value;
use sha2::Sha256;

pub const SECRET: &str = "s3cr3t-&-key-of-the-tests";
pub const TOLERANCE: Duration = Duration::from_secs(300);

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 9, 15, 0).unwrap()
}

pub fn fixture_path(platform: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webshop")
        .join(platform)
        .join(name)
}

pub fn raw_fixture(platform: &str, name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(platform, name)).expect("fixture exists")
}

/// The fixture as a JSON value, with `{"data": …}` / `{"order": …}` / `{"refund": …}` /
/// `{"customer": …}` wrappers removed: webhook bodies are the bare resource.
pub fn fixture_value(platform: &str, name: &str) -> Value {
    let v: Value = serde_json::from_slice(&raw_fixture(platform, name)).unwrap();
    unwrap_resource(v)
}

pub fn unwrap_resource(v: Value) -> Value {
    if let Value::Object(map) = &v {
        for key in ["data", "order", "refund", "customer"] {
            if let Some(inner @ Value::Object(_)) = map.get(key) {
                // Only a wrapper when the resource is the (main) member.
                if map.len() == 1 || (key == "order" && map.contains_key("notice")) {
                    return inner.clone();
                }
            }
        }
    }
    v
}

/// The body bytes a shop would send for this fixture. Unwrapped fixtures are sent
/// byte-for-byte; wrapped ones are re-serialised (arbitrary_precision keeps number text).
pub fn fixture_body(platform: &str, name: &str) -> Vec<u8> {
    let raw = raw_fixture(platform, name);
    let v: Value = serde_json::from_slice(&raw).unwrap();
    let inner = unwrap_resource(v.clone());
    if inner == v {
        raw
    } else {
        serde_json::to_vec(&inner).unwrap()
    }
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(
            HeaderName::from_str(k).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

pub fn hmac_b64(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

pub fn woo_headers(topic: &str, body: &[u8], secret: &str) -> HeaderMap {
    let sig = hmac_b64(secret.as_bytes(), &[body]);
    let resource = topic.split('.').next().unwrap_or("");
    headers(&[
        ("content-type", "application/json"),
        ("x-wc-webhook-source", "https://shop.example.com/"),
        ("x-wc-webhook-topic", topic),
        ("x-wc-webhook-resource", resource),
        ("x-wc-webhook-event", "updated"),
        ("x-wc-webhook-id", "12"),
        ("x-wc-webhook-delivery-id", "0a1b2c"),
        ("x-wc-webhook-signature", &sig),
    ])
}

pub fn shopify_headers(topic: &str, body: &[u8], secret: &str) -> HeaderMap {
    let sig = hmac_b64(secret.as_bytes(), &[body]);
    headers(&[
        ("content-type", "application/json"),
        ("x-shopify-topic", topic),
        ("x-shopify-hmac-sha256", &sig),
        ("x-shopify-shop-domain", "jsmith.myshopify.com"),
        ("x-shopify-api-version", "2026-07"),
        (
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        ),
        ("x-shopify-event-id", "98880550-7158-44d4-b7cd-2c97c8a091b5"),
        ("x-shopify-triggered-at", "2025-03-14T09:14:00Z"),
    ])
}

/// Standard Webhooks headers; `secret` may be `whsec_…` or raw.
pub fn generic_headers(id: &str, ts: i64, body: &[u8], secret: &str) -> HeaderMap {
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => STANDARD.decode(b64).unwrap(),
        None => secret.as_bytes().to_vec(),
    };
    let ts_text = ts.to_string();
    let sig = hmac_b64(&key, &[id.as_bytes(), b".", ts_text.as_bytes(), b".", body]);
    headers(&[
        ("content-type", "application/json"),
        ("webhook-id", id),
        ("webhook-timestamp", &ts_text),
        ("webhook-signature", &format!("v1,{sig}")),
    ])
}

pub fn signed_headers(platform: Platform, topic: &str, body: &[u8]) -> HeaderMap {
    match platform {
        Platform::WooCommerce => woo_headers(topic, body, SECRET),
        Platform::Shopify => shopify_headers(topic, body, SECRET),
        Platform::Generic => generic_headers("msg_2Lh9", now().timestamp(), body, SECRET),
    }
}

/// verify + parse, as the HTTP handler does.
pub fn intake(
    platform: Platform,
    headers: &HeaderMap,
    body: &[u8],
    settings: &ParseSettings,
) -> Result<Intake, WebshopError> {
    let secret = SecretString::from(SECRET);
    let verified = verify(platform, &secret, headers, body, now(), TOLERANCE)?;
    parse(&verified, headers, settings)
}

/// Signs and parses, expecting an event.
pub fn event_for(platform: Platform, topic: &str, body: &[u8]) -> IncomingEvent {
    let h = signed_headers(platform, topic, body);
    match intake(platform, &h, body, &ParseSettings::default()).unwrap() {
        Intake::Event(e) => *e,
        Intake::Ignored { topic } => panic!("topic {topic} was ignored"),
    }
}

/// An amount from fixture JSON (string or number), read independently of the parser.
pub fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => Decimal::from_str_exact(s).unwrap(),
        Value::Number(n) => Decimal::from_str_exact(&n.to_string()).unwrap(),
        other => panic!("not an amount: {other}"),
    }
}

/// An optional amount: null / "" / missing → None.
pub fn opt_dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        other => Some(dec(other)),
    }
}

pub fn id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not an id: {other}"),
    }
}

pub fn s(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}
