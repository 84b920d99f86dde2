//! Robustness: arbitrary and mutated bodies, correctly signed, go through verify + parse
//! for every platform. Nothing may panic; every failure is a 4xx `WebshopError`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::*;
use minimax_connector::webshop::{Intake, ParseSettings, Platform};
use proptest::prelude::*;
use serde_json::Value;

struct Case {
    platform: Platform,
    topic: &'static str,
    body: Vec<u8>,
}

/// The fixture bodies, read once for all generated cases.
fn cases() -> &'static [Case] {
    static CASES: std::sync::LazyLock<Vec<Case>> = std::sync::LazyLock::new(build_cases);
    &CASES
}

fn build_cases() -> Vec<Case> {
    let woo = |name: &str, topic: &'static str| Case {
        platform: Platform::WooCommerce,
        topic,
        body: fixture_body("woocommerce", name),
    };
    let shop = |name: &str, topic: &'static str| Case {
        platform: Platform::Shopify,
        topic,
        body: fixture_body("shopify", name),
    };
    let generic = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/examples/generic-order-paid.json"),
    )
    .unwrap();
    vec![
        woo("order.json", "order.updated"),
        woo("order_with_coupon.ios.json", "order.updated"),
        woo("order_prices_include_tax.ios.json", "order.created"),
        woo("order_partially_refunded.ios.json", "order.updated"),
        woo("customer.json", "customer.updated"),
        shop("order.rest-2026-07.json", "orders/paid"),
        shop(
            "order_with_percentage_discount.rest-2026-07.json",
            "orders/create",
        ),
        shop("refund.rest-2026-07.json", "refunds/create"),
        shop("customer.rest-2026-07.json", "customers/create"),
        Case {
            platform: Platform::Generic,
            topic: "",
            body: generic,
        },
    ]
}

/// Signs `body` correctly for the case's platform and runs verify + parse.
fn run(platform: Platform, topic: &str, body: &[u8]) -> Result<(), TestCaseError> {
    let h = signed_headers(platform, topic, body);
    match intake(platform, &h, body, &ParseSettings::default()) {
        Ok(Intake::Event(e)) => {
            // Whatever a mutated body parses into must be a usable event: a dedupe key,
            // and a canonical form that survives the queue's round trip unchanged.
            prop_assert!(!e.dedupe_key.is_empty());
            let json = serde_json::to_string(&e.event).unwrap();
            let back: minimax_connector::webshop::ShopEvent = serde_json::from_str(&json)
                .map_err(|err| TestCaseError::fail(format!("{platform}: {err} in {json}")))?;
            prop_assert_eq!(back, e.event);
            Ok(())
        }
        Ok(Intake::Ignored { .. }) => Ok(()),
        Err(e) => {
            prop_assert!(
                (400..500).contains(&e.status()),
                "{platform} answered {} ({e})",
                e.status()
            );
            prop_assert!(e.to_string().len() < 400, "error message too long: {e}");
            Ok(())
        }
    }
}

/// Replacement values that stress the field readers.
fn weird_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::Bool(true)),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::json!("")),
        Just(serde_json::json!("abc")),
        Just(serde_json::json!("-0")),
        Just(serde_json::from_str::<Value>("79228162514264337593543950335").unwrap()),
        Just(serde_json::from_str::<Value>("-79228162514264337593543950335").unwrap()),
        Just(serde_json::from_str::<Value>("1e400").unwrap()),
        Just(serde_json::from_str::<Value>("0.0000000000000000000000000000001").unwrap()),
        Just(serde_json::from_str::<Value>("18446744073709551616").unwrap()),
        Just(serde_json::json!("9999999999999999999999999999")),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ]
}

/// JSON pointers to every node of `v`.
fn pointers(v: &Value, prefix: String, out: &mut Vec<String>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let esc = k.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{prefix}/{esc}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{prefix}/{i}"), out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), which in 0usize..3) {
        let (platform, topic) = [
            (Platform::WooCommerce, "order.updated"),
            (Platform::Shopify, "orders/paid"),
            (Platform::Generic, ""),
        ][which];
        run(platform, topic, &body)?;
    }

    #[test]
    fn byte_flips_and_truncation_never_panic(
        which in 0usize..10,
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<proptest::sample::Index>()),
    ) {
        let cases = cases();
        let case = &cases[which % cases.len()];
        let mut body = case.body.clone();
        for (at, byte) in flips {
            let i = at.index(body.len());
            body[i] = byte;
        }
        if let Some(cut) = cut {
            body.truncate(cut.index(body.len() + 1));
        }
        run(case.platform, case.topic, &body)?;
    }

    #[test]
    fn replaced_fields_never_panic(
        which in 0usize..10,
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), weird_value()), 1..4),
    ) {
        let cases = cases();
        let case = &cases[which % cases.len()];
        let mut v: Value = serde_json::from_slice(&case.body).unwrap();
        for (at, replacement) in edits {
            let mut ptrs = Vec::new();
            pointers(&v, String::new(), &mut ptrs);
            let ptr = &ptrs[at.index(ptrs.len())];
            if ptr.is_empty() {
                v = replacement;
            } else if let Some(slot) = v.pointer_mut(ptr) {
                *slot = replacement;
            }
        }
        let body = serde_json::to_vec(&v).unwrap();
        run(case.platform, case.topic, &body)?;
    }
}

/// The fixtures themselves parse, so the mutation tests start from valid bodies.
#[test]
fn unmutated_cases_parse() {
    for case in cases() {
        let h = signed_headers(case.platform, case.topic, &case.body);
        let got = intake(case.platform, &h, &case.body, &ParseSettings::default());
        assert!(
            matches!(got, Ok(Intake::Event(_))),
            "{}: {got:?}",
            case.platform
        );
    }
}
