//! Generic (canonical) events: the documented examples, every event round trip, schema
//! and syntax errors; deleted customers on every platform.

use super::*;

#[test]
fn generic_example_from_docs_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples/generic-order-paid.json");
    let body = std::fs::read(path).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    let ev = event_for(Platform::Generic, "", &body);
    assert_eq!(ev.dedupe_key, "generic:msg_2Lh9");
    assert_eq!(ev.topic, "order_paid");
    let order = order_of(&ev.event);
    let o = &v["order"];
    assert_eq!(order.total, dec(&o["total"]));
    assert_eq!(order.total_tax, dec(&o["total_tax"]));
    assert_eq!(order.lines.len(), o["lines"].as_array().unwrap().len());
    assert_eq!(
        order.lines[1].quantity,
        dec(&o["lines"][1]["quantity"]),
        "number form"
    );
    assert_eq!(order.lines[1].unit_price, Some(dec!(15.00)));
    assert_eq!(order.lines[1].taxes[0].amount, dec!(1.425));
    assert_eq!(
        order.customer.as_ref().unwrap().vat_number.as_deref(),
        Some("SI12345678")
    );
    assert_adds_up(order);
    let tax_by_rate: Decimal = order.tax_lines.iter().map(|t| t.amount).sum();
    assert_eq!(tax_by_rate, order.total_tax);
}

/// The canonical JSON of every parsed fixture is accepted back by the generic platform
/// unchanged: one schema for the queue and the wire.
#[test]
fn generic_accepts_every_canonical_event_round_trip() {
    let cases = [
        (Platform::WooCommerce, WOO, "order.json", "order.updated"),
        (
            Platform::WooCommerce,
            WOO,
            "order_with_coupon.ios.json",
            "order.updated",
        ),
        (
            Platform::WooCommerce,
            WOO,
            "order_prices_include_tax.ios.json",
            "order.updated",
        ),
        (
            Platform::WooCommerce,
            WOO,
            "order_partially_refunded.ios.json",
            "order.updated",
        ),
        (
            Platform::WooCommerce,
            WOO,
            "customer.json",
            "customer.created",
        ),
        (
            Platform::Shopify,
            SHOP,
            "order.rest-2026-07.json",
            "orders/paid",
        ),
        (
            Platform::Shopify,
            SHOP,
            "order_cancelled.rest-2026-07.json",
            "orders/cancelled",
        ),
        (
            Platform::Shopify,
            SHOP,
            "refund.rest-2026-07.json",
            "refunds/create",
        ),
        (
            Platform::Shopify,
            SHOP,
            "customer.rest-2026-07.json",
            "customers/create",
        ),
    ];
    for (platform, dir, name, topic) in cases {
        let body = fixture_body(dir, name);
        let original = event_for(platform, topic, &body);
        let canonical = serde_json::to_vec(&original.event).unwrap();
        let back = event_for(Platform::Generic, "", &canonical);
        assert_eq!(back.event, original.event, "{name}");
        let stored = serde_json::to_vec(&original).unwrap();
        let restored: minimax_connector::webshop::IncomingEvent =
            serde_json::from_slice(&stored).unwrap();
        assert_eq!(restored, original, "{name} queue round trip");
    }
}

#[test]
fn generic_schema_errors_are_422_and_syntax_errors_400() {
    let cases: [(&[u8], u16, &str); 4] = [
        (
            br#"{"version":2,"kind":"order_paid","order":{}}"#,
            422,
            "invalid_payload",
        ),
        (
            br#"{"version":1,"kind":"order_shipped"}"#,
            422,
            "invalid_payload",
        ),
        (
            br#"{"version":1,"kind":"order_paid""#,
            400,
            "malformed_json",
        ),
        (b"not json", 400, "malformed_json"),
    ];
    for (body, status, code) in cases {
        let h = generic_headers("msg_1", now().timestamp(), body, SECRET);
        let err = intake(Platform::Generic, &h, body, &ParseSettings::default()).unwrap_err();
        assert_eq!((err.status(), err.code()), (status, code), "{err}");
    }
    let mut v: Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs/examples/generic-order-paid.json"),
        )
        .unwrap(),
    )
    .unwrap();
    v["order"]["total"] = json!("45,71");
    let body = serde_json::to_vec(&v).unwrap();
    let h = generic_headers("msg_1", now().timestamp(), &body, SECRET);
    let err = intake(Platform::Generic, &h, &body, &ParseSettings::default()).unwrap_err();
    assert_eq!(err.status(), 422);
    assert!(err.to_string().contains("not a decimal"), "{err}");
    assert!(
        !err.to_string().contains("Ljubljana"),
        "no body echo: {err}"
    );
}

/// Every JSON event shown in the generic webhook documentation is accepted.
#[test]
fn generic_docs_examples_parse() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/webhooks-generic.md"),
    )
    .unwrap();
    let (mut parsed, mut customers) = (0, 0);
    for block in doc.split("```json").skip(1) {
        let json = block.split("```").next().unwrap();
        if !json.contains("\"version\": 1,") {
            continue;
        }
        let ev = event_for(Platform::Generic, "", json.as_bytes());
        if let ShopEvent::CustomerUpserted(c) = &ev.event {
            assert!(c.shop_customer_id.is_some(), "{c:?}");
            customers += 1;
            continue;
        }
        assert!(ev.event.shop_order_id().is_some());
        parsed += 1;
    }
    assert_eq!(parsed, 2, "the full order example and the refund example");
    assert_eq!(customers, 1, "the customer example");
}

#[test]
fn deleted_customers_parse_to_their_shop_id() {
    // WooCommerce's `customer.deleted` body is the id alone; Shopify's `customers/delete`
    // keeps the id and empty lists.
    let woo = event_for(Platform::WooCommerce, "customer.deleted", br#"{"id":25}"#);
    assert_eq!(
        woo.event,
        ShopEvent::CustomerDeleted(Customer::deleted("25".into()))
    );
    assert!(
        woo.dedupe_key
            .starts_with("woocommerce:customer:25:deleted:"),
        "{}",
        woo.dedupe_key
    );
    let shopify = event_for(
        Platform::Shopify,
        "customers/delete",
        br#"{"id":207119551,"phone":null,"addresses":[],"tax_exemptions":[]}"#,
    );
    assert_eq!(
        shopify.event,
        ShopEvent::CustomerDeleted(Customer::deleted("207119551".into()))
    );
}
