//! Signature verification per platform: valid, wrong secret, missing header, one modified
//! byte, content type, and for generic the timestamp window and `whsec_` secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use actix_web::http::header::{HeaderName, HeaderValue};
use helpers::*;
use minimax_connector::webshop::{parse, verify, ParseSettings, Platform, WebshopError};
use secrecy::SecretString;

fn check(
    platform: Platform,
    headers: &actix_web::http::header::HeaderMap,
    body: &[u8],
) -> Result<(), WebshopError> {
    verify(
        platform,
        &SecretString::from(SECRET),
        headers,
        body,
        now(),
        TOLERANCE,
    )
    .map(|_| ())
}

fn flip_one_byte(body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    let i = b.len() / 2;
    b[i] ^= 0x01;
    b
}

fn set(h: &mut actix_web::http::header::HeaderMap, name: &'static str, value: &str) {
    h.insert(
        HeaderName::from_static(name),
        HeaderValue::from_str(value).unwrap(),
    );
}

// ---------------------------------------------------------------- WooCommerce

#[test]
fn woo_valid_signature_verifies() {
    let body = fixture_body("woocommerce", "order.json");
    let h = woo_headers("order.updated", &body, SECRET);
    let verified = verify(
        Platform::WooCommerce,
        &SecretString::from(SECRET),
        &h,
        &body,
        now(),
        TOLERANCE,
    )
    .unwrap();
    assert_eq!(verified.body(), body.as_slice());
    assert!(parse(&verified, &h, &ParseSettings::default()).is_ok());
}

#[test]
fn woo_wrong_secret_is_rejected() {
    let body = fixture_body("woocommerce", "order.json");
    let h = woo_headers("order.updated", &body, "another secret");
    let err = check(Platform::WooCommerce, &h, &body).unwrap_err();
    assert!(matches!(err, WebshopError::BadSignature));
    assert_eq!(err.status(), 401);
    assert!(!err.to_string().contains(SECRET));
}

#[test]
fn woo_missing_signature_is_rejected() {
    let body = fixture_body("woocommerce", "order.json");
    let mut h = woo_headers("order.updated", &body, SECRET);
    h.remove("x-wc-webhook-signature");
    let err = check(Platform::WooCommerce, &h, &body).unwrap_err();
    assert_eq!((err.status(), err.code()), (401, "missing_signature"));
}

#[test]
fn woo_modified_body_is_rejected() {
    let body = fixture_body("woocommerce", "order.json");
    let h = woo_headers("order.updated", &body, SECRET);
    let err = check(Platform::WooCommerce, &h, &flip_one_byte(&body)).unwrap_err();
    assert!(matches!(err, WebshopError::BadSignature));
    let err = check(Platform::WooCommerce, &h, &body[..body.len() - 1]).unwrap_err();
    assert!(matches!(err, WebshopError::BadSignature));
}

#[test]
fn woo_garbage_signature_is_rejected() {
    let body = fixture_body("woocommerce", "order.json");
    let mut h = woo_headers("order.updated", &body, SECRET);
    set(&mut h, "x-wc-webhook-signature", "not base64!!");
    assert!(matches!(
        check(Platform::WooCommerce, &h, &body).unwrap_err(),
        WebshopError::BadSignature
    ));
}

#[test]
fn woo_non_json_content_type_is_415_after_a_valid_signature() {
    let body = fixture_body("woocommerce", "order.json");
    let mut h = woo_headers("order.updated", &body, SECRET);
    set(&mut h, "content-type", "text/plain");
    let err = check(Platform::WooCommerce, &h, &body).unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (415, "unsupported_content_type")
    );
    set(&mut h, "content-type", "application/json; charset=UTF-8");
    assert!(check(Platform::WooCommerce, &h, &body).is_ok());
}

// ---------------------------------------------------------------- Shopify

#[test]
fn shopify_valid_signature_verifies() {
    let body = fixture_body("shopify", "order.rest-2026-07.json");
    let h = shopify_headers("orders/paid", &body, SECRET);
    assert!(check(Platform::Shopify, &h, &body).is_ok());
}

#[test]
fn shopify_wrong_secret_is_rejected() {
    let body = fixture_body("shopify", "order.rest-2026-07.json");
    let h = shopify_headers("orders/paid", &body, "wrong");
    assert!(matches!(
        check(Platform::Shopify, &h, &body).unwrap_err(),
        WebshopError::BadSignature
    ));
}

#[test]
fn shopify_missing_signature_is_rejected() {
    let body = fixture_body("shopify", "order.rest-2026-07.json");
    let mut h = shopify_headers("orders/paid", &body, SECRET);
    h.remove("x-shopify-hmac-sha256");
    let err = check(Platform::Shopify, &h, &body).unwrap_err();
    assert_eq!((err.status(), err.code()), (401, "missing_signature"));
}

#[test]
fn shopify_modified_body_is_rejected() {
    let body = fixture_body("shopify", "order.rest-2026-07.json");
    let h = shopify_headers("orders/paid", &body, SECRET);
    assert!(matches!(
        check(Platform::Shopify, &h, &flip_one_byte(&body)).unwrap_err(),
        WebshopError::BadSignature
    ));
}

#[test]
fn shopify_events_delivery_header_is_accepted() {
    let body = fixture_body("shopify", "order.rest-2026-07.json");
    let mut h = shopify_headers("orders/paid", &body, SECRET);
    let sig = h.remove("x-shopify-hmac-sha256").next().unwrap();
    h.insert(HeaderName::from_static("shopify-hmac-sha256"), sig);
    assert!(check(Platform::Shopify, &h, &body).is_ok());
}

// ---------------------------------------------------------------- generic (Standard Webhooks)

fn generic_body() -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/examples/generic-order-paid.json"),
    )
    .unwrap()
}

#[test]
fn generic_valid_signature_verifies() {
    let body = generic_body();
    let h = generic_headers("msg_1", now().timestamp(), &body, SECRET);
    assert!(check(Platform::Generic, &h, &body).is_ok());
}

#[test]
fn generic_wrong_secret_is_rejected() {
    let body = generic_body();
    let h = generic_headers("msg_1", now().timestamp(), &body, "wrong");
    assert!(matches!(
        check(Platform::Generic, &h, &body).unwrap_err(),
        WebshopError::BadSignature
    ));
}

#[test]
fn generic_missing_headers_are_rejected() {
    let body = generic_body();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut h = generic_headers("msg_1", now().timestamp(), &body, SECRET);
        h.remove(name);
        let err = check(Platform::Generic, &h, &body).unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (401, "missing_signature"),
            "{name}"
        );
    }
}

#[test]
fn generic_modified_body_or_id_is_rejected() {
    let body = generic_body();
    let h = generic_headers("msg_1", now().timestamp(), &body, SECRET);
    assert!(matches!(
        check(Platform::Generic, &h, &flip_one_byte(&body)).unwrap_err(),
        WebshopError::BadSignature
    ));
    // The id is signed too: replaying the body under another id fails.
    let mut h2 = h.clone();
    set(&mut h2, "webhook-id", "msg_2");
    assert!(matches!(
        check(Platform::Generic, &h2, &body).unwrap_err(),
        WebshopError::BadSignature
    ));
}

#[test]
fn generic_timestamp_outside_tolerance_is_rejected_both_ways() {
    let body = generic_body();
    let tol = TOLERANCE.as_secs() as i64;
    for ts in [now().timestamp() - tol - 1, now().timestamp() + tol + 1, 0] {
        let h = generic_headers("msg_1", ts, &body, SECRET);
        let err = check(Platform::Generic, &h, &body).unwrap_err();
        assert!(
            matches!(err, WebshopError::TimestampOutOfTolerance),
            "ts {ts}"
        );
        assert_eq!(err.status(), 401);
    }
    for ts in [now().timestamp() - tol, now().timestamp() + tol] {
        let h = generic_headers("msg_1", ts, &body, SECRET);
        assert!(check(Platform::Generic, &h, &body).is_ok(), "edge {ts}");
    }
    let mut h = generic_headers("msg_1", now().timestamp(), &body, SECRET);
    set(&mut h, "webhook-timestamp", "yesterday");
    assert_eq!(
        check(Platform::Generic, &h, &body).unwrap_err().code(),
        "malformed_signature"
    );
}

#[test]
fn generic_whsec_secret_is_base64_key() {
    let body = generic_body();
    // "whsec_" + base64("a binary key \x00\xff")
    let secret = "whsec_YSBiaW5hcnkga2V5IAD/";
    let h = generic_headers("msg_1", now().timestamp(), &body, secret);
    let ok = verify(
        Platform::Generic,
        &SecretString::from(secret),
        &h,
        &body,
        now(),
        TOLERANCE,
    );
    assert!(ok.is_ok());
    // Signing with the literal text instead of the decoded key must not verify.
    let literal = helpers::hmac_b64(
        secret.as_bytes(),
        &[
            b"msg_1.",
            now().timestamp().to_string().as_bytes(),
            b".",
            &body,
        ],
    );
    let mut h2 = h.clone();
    set(&mut h2, "webhook-signature", &format!("v1,{literal}"));
    assert!(verify(
        Platform::Generic,
        &SecretString::from(secret),
        &h2,
        &body,
        now(),
        TOLERANCE
    )
    .is_err());
}

#[test]
fn generic_any_of_several_signatures_may_match() {
    let body = generic_body();
    let h = generic_headers("msg_1", now().timestamp(), &body, SECRET);
    let good = h
        .get("webhook-signature")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut h2 = h.clone();
    set(
        &mut h2,
        "webhook-signature",
        &format!("v1a,Zm9v v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {good}"),
    );
    assert!(check(Platform::Generic, &h2, &body).is_ok());
    set(&mut h2, "webhook-signature", "v1a,Zm9v");
    assert_eq!(
        check(Platform::Generic, &h2, &body).unwrap_err().code(),
        "malformed_signature"
    );
}

#[test]
fn parse_uses_the_parser_of_the_platform_the_body_was_verified_for() {
    let body = fixture_body("woocommerce", "order.json");
    let h = woo_headers("order.updated", &body, SECRET);
    let verified = verify(
        Platform::WooCommerce,
        &SecretString::from(SECRET),
        &h,
        &body,
        now(),
        TOLERANCE,
    )
    .unwrap();
    // No platform can be named at parse time: a body verified with the WooCommerce
    // secret is parsed as WooCommerce (it used to take a platform and check it matched).
    let Ok(minimax_connector::webshop::Intake::Event(e)) =
        parse(&verified, &h, &ParseSettings::default())
    else {
        panic!("expected an event")
    };
    assert_eq!(e.source.platform, Platform::WooCommerce);
    assert!(e.dedupe_key.starts_with("woocommerce:"));
}
