//! WooCommerce bodies into events: orders against their fixtures, statuses, customers,
//! VAT numbers, refunds, dedupe keys, bad fields.

use super::*;

/// Checks every amount the WooCommerce order fixture gives against the parsed order.
fn assert_woo_order_matches(order: &Order, v: &Value) {
    assert_eq!(order.shop_order_id, id(&v["id"]));
    assert_eq!(order.currency, v["currency"].as_str().unwrap());
    assert_eq!(order.status, v["status"].as_str().unwrap());
    assert_eq!(order.total, dec(&v["total"]));
    assert_eq!(order.total_tax, dec(&v["total_tax"]));
    assert_eq!(order.discount_total, dec(&v["discount_total"]));
    assert_eq!(order.discount_tax, opt_dec(&v["discount_tax"]));
    assert_eq!(order.shipping_total, dec(&v["shipping_total"]));
    assert_eq!(order.shipping_tax, opt_dec(&v["shipping_tax"]));
    assert_eq!(
        order.prices_include_tax,
        v["prices_include_tax"].as_bool().unwrap_or(false)
    );
    assert!(!order.amounts_include_tax, "woo line amounts are net");

    let lines = v["line_items"].as_array().unwrap();
    assert_eq!(order.lines.len(), lines.len());
    let mut subtotal = Decimal::ZERO;
    for (got, want) in order.lines.iter().zip(lines) {
        assert_eq!(got.shop_line_id, Some(id(&want["id"])));
        assert_eq!(got.name, want["name"].as_str().unwrap());
        assert_eq!(got.sku, s(&want["sku"]));
        assert_eq!(got.quantity, dec(&want["quantity"]));
        assert_eq!(got.subtotal, dec(&want["subtotal"]));
        assert_eq!(got.subtotal_tax, opt_dec(&want["subtotal_tax"]));
        assert_eq!(got.total, dec(&want["total"]));
        assert_eq!(got.total_tax, dec(&want["total_tax"]));
        assert_eq!(got.discount, dec(&want["subtotal"]) - dec(&want["total"]));
        assert_eq!(got.unit_price_discounted, opt_dec(&want["price"]));
        let taxes: Vec<&Value> = want["taxes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| opt_dec(&t["total"]).is_some() || opt_dec(&t["subtotal"]).is_some())
            .collect();
        assert_eq!(got.taxes.len(), taxes.len());
        for (gt, wt) in got.taxes.iter().zip(taxes) {
            assert_eq!(gt.rate_id, Some(id(&wt["id"])));
            assert_eq!(
                Some(gt.amount),
                opt_dec(&wt["total"]).or(Some(Decimal::ZERO))
            );
            assert_eq!(gt.subtotal_amount, opt_dec(&wt["subtotal"]));
        }
        subtotal += dec(&want["subtotal"]);
    }
    assert_eq!(order.subtotal, subtotal);

    let ship = v["shipping_lines"].as_array().unwrap();
    assert_eq!(order.shipping_lines.len(), ship.len());
    for (got, want) in order.shipping_lines.iter().zip(ship) {
        assert_eq!(got.total, dec(&want["total"]));
        assert_eq!(got.total_tax, dec(&want["total_tax"]));
        assert_eq!(got.title, want["method_title"].as_str().unwrap());
    }
    let fees = v["fee_lines"].as_array().unwrap();
    assert_eq!(order.fees.len(), fees.len());
    for (got, want) in order.fees.iter().zip(fees) {
        assert_eq!(got.total, dec(&want["total"]));
        assert_eq!(got.total_tax, dec(&want["total_tax"]));
    }
    let coupons = v["coupon_lines"].as_array().unwrap();
    assert_eq!(order.discounts.len(), coupons.len());
    for (got, want) in order.discounts.iter().zip(coupons) {
        assert_eq!(got.code, s(&want["code"]));
        assert_eq!(got.amount, dec(&want["discount"]));
        assert_eq!(got.amount_tax, opt_dec(&want["discount_tax"]));
    }
    let tax_lines = v["tax_lines"].as_array().unwrap();
    assert_eq!(order.tax_lines.len(), tax_lines.len());
    for (got, want) in order.tax_lines.iter().zip(tax_lines) {
        assert_eq!(got.label, want["label"].as_str().unwrap());
        assert_eq!(got.items_amount, opt_dec(&want["tax_total"]));
        assert_eq!(got.shipping_amount, opt_dec(&want["shipping_tax_total"]));
        assert_eq!(
            got.amount,
            dec(&want["tax_total"]) + dec(&want["shipping_tax_total"])
        );
        assert_eq!(got.rate_percent, opt_dec(&want["rate_percent"]));
    }
    let refunds = v["refunds"].as_array().cloned().unwrap_or_default();
    assert_eq!(order.refunds.len(), refunds.len());
    for (got, want) in order.refunds.iter().zip(&refunds) {
        assert_eq!(got.shop_refund_id, Some(id(&want["id"])));
        // WooCommerce lists refunds negative; the model keeps the magnitude.
        assert!(dec(&want["total"]).is_sign_negative());
        assert_eq!(got.amount, -dec(&want["total"]));
    }

    let billing = &v["billing"];
    let customer = order.customer.as_ref().expect("customer from billing");
    assert_eq!(customer.email, s(&billing["email"]));
    assert_eq!(customer.first_name, s(&billing["first_name"]));
    assert_eq!(customer.last_name, s(&billing["last_name"]));
    assert_eq!(customer.company, s(&billing["company"]));
    let customer_id = id(&v["customer_id"]);
    assert_eq!(
        customer.shop_customer_id,
        (customer_id != "0").then_some(customer_id)
    );
    let b = order.billing.as_ref().unwrap();
    assert_eq!(b.city, s(&billing["city"]));
    assert_eq!(b.postcode, s(&billing["postcode"]));
    assert_eq!(b.country_code, s(&billing["country"]));
    assert_eq!(b.street.first(), s(&billing["address_1"]).as_ref());
    assert_eq!(
        order.payment_method.as_ref().and_then(|p| p.id.clone()),
        s(&v["payment_method"])
    );
}

fn woo_event(name: &str, topic: &str) -> (ShopEvent, Value, String) {
    let body = fixture_body(WOO, name);
    let ev = event_for(Platform::WooCommerce, topic, &body);
    (ev.event, fixture_value(WOO, name), ev.dedupe_key)
}

#[test]
fn woo_order_processing_is_paid_and_matches_fixture() {
    let (event, v, key) = woo_event("order.json", "order.updated");
    assert_eq!(event.kind(), EventKind::OrderPaid);
    let order = order_of(&event);
    assert_woo_order_matches(order, &v);
    assert_adds_up(order);
    assert_eq!(
        order.lines[0].tax_rate_percent, None,
        "no rate_percent in v3.0 payloads"
    );
    assert_eq!(order.lines[0].taxes[0].label.as_deref(), Some("State Tax"));
    assert_eq!(
        key,
        format!(
            "woocommerce:order:727:{}:{}",
            v["date_modified_gmt"].as_str().unwrap(),
            body_digest(&fixture_body(WOO, "order.json"))
        ),
        "the key is signed data only: no source or topic header in it"
    );
    assert_eq!(
        order.paid_at.unwrap().to_rfc3339(),
        "2017-03-22T19:28:08+00:00"
    );
}

#[test]
fn woo_prices_include_tax_keeps_unrounded_line_taxes() {
    let (event, v, _) = woo_event("order_prices_include_tax.ios.json", "order.created");
    assert_eq!(event.kind(), EventKind::OrderPaid);
    let order = order_of(&event);
    assert_woo_order_matches(order, &v);
    assert_adds_up(order);
    assert!(order.prices_include_tax);
    let line = &order.lines[0];
    assert_eq!(
        line.taxes[0].amount,
        dec(&v["line_items"][0]["taxes"][0]["total"])
    );
    assert_eq!(line.taxes[0].amount.to_string(), "0.352941");
    assert_eq!(line.unit_price_discounted.unwrap().to_string(), "17.647059");
    assert_eq!(
        line.tax_rate_percent,
        Some(dec(&v["tax_lines"][0]["rate_percent"]))
    );
    assert_eq!(order.shipping_lines[0].tax_rate_percent, Some(dec!(2)));
    assert_eq!(order.shipping_lines[0].taxes[0].amount, dec!(0.3));
    assert_eq!(
        order.customer.as_ref().unwrap().shop_customer_id,
        None,
        "guest"
    );
    assert_eq!(
        order.shipping.as_ref().unwrap().phone,
        s(&v["shipping"]["phone"])
    );
}

#[test]
fn woo_coupon_order_keeps_discounts() {
    let (event, v, _) = woo_event("order_with_coupon.ios.json", "order.updated");
    assert_eq!(event.kind(), EventKind::OrderPaid);
    let order = order_of(&event);
    assert_woo_order_matches(order, &v);
    let coupon = &order.discounts[0];
    assert_eq!(coupon.code.as_deref(), Some("30$off"));
    // Old payloads carry the type only inside the coupon_data meta.
    assert_eq!(coupon.kind, DiscountKind::Fixed);
    assert_eq!(coupon.shop_kind.as_deref(), Some("fixed_cart"));
    assert_eq!(coupon.value, Some(dec!(30)));
    assert_eq!(order.lines[0].discount, dec!(20.00));
    assert_eq!(order.lines[1].quantity, dec!(1.5));
    assert_eq!(order.fees[0].name, "$125.50 fee");
    assert!(order.fees[0].taxable);
    assert_eq!(order.tax_lines[0].rate_percent, Some(dec!(4.5)));
    assert!(order.tax_lines[0].compound);
    assert_eq!(
        order.customer.as_ref().unwrap().shop_customer_id.as_deref(),
        Some("11")
    );
}

#[test]
fn woo_partially_refunded_order_is_refund_event_with_newest_refund() {
    let (event, v, _) = woo_event("order_partially_refunded.ios.json", "order.updated");
    let ShopEvent::OrderRefunded { refund, order } = &event else {
        panic!("expected refund, got {:?}", event.kind());
    };
    let order = order.as_ref().unwrap();
    assert_woo_order_matches(order, &v);
    assert_adds_up(order);
    let newest = v["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|r| r["id"].as_u64().unwrap())
        .unwrap();
    assert_eq!(refund.shop_refund_id, Some(id(&newest["id"])));
    assert_eq!(refund.amount, -dec(&newest["total"]));
    assert_eq!(refund.reason, s(&newest["reason"]));
    assert_eq!(refund.shop_order_id, "324");
    assert_eq!(refund.currency.as_deref(), Some("USD"));
}

#[test]
fn woo_orders_list_each_order_parses() {
    let list: Value =
        serde_json::from_slice(&raw_fixture(WOO, "orders_list_with_refunds.json")).unwrap();
    let orders = list.as_array().unwrap();
    assert_eq!(orders.len(), 2);
    for v in orders {
        let body = serde_json::to_vec(v).unwrap();
        let ev = event_for(Platform::WooCommerce, "order.updated", &body);
        let order = order_of(&ev.event);
        assert_woo_order_matches(order, v);
        assert_adds_up(order);
        let has_refunds = !v["refunds"].as_array().unwrap().is_empty();
        let expected = if has_refunds {
            EventKind::OrderRefunded
        } else {
            EventKind::OrderPaid
        };
        assert_eq!(ev.event.kind(), expected, "order {}", v["id"]);
        if let ShopEvent::OrderRefunded { refund, .. } = &ev.event {
            assert_eq!(refund.shop_refund_id.as_deref(), Some("726"));
            assert_eq!(refund.amount, dec!(10.00));
        }
    }
}

#[test]
fn woo_status_decides_the_event() {
    let mut v = fixture_value(WOO, "order.json");
    let cases = [
        ("cancelled", true, EventKind::OrderCancelled),
        ("pending", false, EventKind::OrderUpdated),
        ("on-hold", true, EventKind::OrderPaid),
        ("completed", false, EventKind::OrderPaid),
        ("refunded", false, EventKind::OrderRefunded),
    ];
    for (status, paid, expected) in cases {
        v["status"] = json!(status);
        v["date_paid_gmt"] = if paid {
            json!("2017-03-22T19:28:08")
        } else {
            Value::Null
        };
        let body = serde_json::to_vec(&v).unwrap();
        let ev = event_for(Platform::WooCommerce, "order.updated", &body);
        assert_eq!(ev.event.kind(), expected, "status {status}");
        if let ShopEvent::OrderRefunded { refund, .. } = &ev.event {
            // Status refunded without a refund record: the whole order was given back.
            assert_eq!(refund.amount, dec(&v["total"]));
        }
    }
}

#[test]
fn woo_customer_is_upserted() {
    let (event, v, key) = woo_event("customer.json", "customer.updated");
    let ShopEvent::CustomerUpserted(c) = &event else {
        panic!("expected customer");
    };
    assert_eq!(c.shop_customer_id, Some(id(&v["id"])));
    assert_eq!(c.email, s(&v["email"]));
    assert_eq!(c.first_name, s(&v["first_name"]));
    assert_eq!(c.last_name, s(&v["last_name"]));
    assert_eq!(c.phone, s(&v["billing"]["phone"]));
    assert_eq!(c.billing.as_ref().unwrap().city, s(&v["billing"]["city"]));
    assert_eq!(
        c.shipping.as_ref().unwrap().postcode,
        s(&v["shipping"]["postcode"])
    );
    assert_eq!(c.vat_number, None);
    assert!(key.starts_with("woocommerce:customer:25:"), "{key}");
}

#[test]
fn woo_vat_number_comes_from_configured_meta_keys() {
    let mut v = fixture_value(WOO, "order.json");
    v["meta_data"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": 1, "key": "_billing_vat_number", "value": " SI12345678 "}));
    let body = serde_json::to_vec(&v).unwrap();
    let ev = event_for(Platform::WooCommerce, "order.updated", &body);
    let c = order_of(&ev.event).customer.as_ref().unwrap();
    assert_eq!(c.vat_number.as_deref(), Some("SI12345678"));

    // A tenant-specific key is found only when configured.
    let mut v = fixture_value(WOO, "customer.json");
    v["meta_data"] = json!([{"id": 2, "key": "my_vat", "value": "HR123"}]);
    let body = serde_json::to_vec(&v).unwrap();
    let h = woo_headers("customer.updated", &body, SECRET);
    let vat = |settings: &ParseSettings| match intake(Platform::WooCommerce, &h, &body, settings)
        .unwrap()
    {
        Intake::Event(e) => match e.event {
            ShopEvent::CustomerUpserted(c) => c.vat_number,
            _ => panic!("not a customer"),
        },
        Intake::Ignored { .. } => panic!("ignored"),
    };
    assert_eq!(vat(&ParseSettings::default()), None);
    let custom = ParseSettings {
        woo_vat_meta_keys: vec!["my_vat".into()],
        ..ParseSettings::default()
    };
    assert_eq!(vat(&custom).as_deref(), Some("HR123"));
}

#[test]
fn woo_other_topics_are_ignored() {
    for topic in [
        "product.updated",
        "order.deleted",
        "action.woocommerce_payment_complete",
    ] {
        let body = br#"{"id": 1}"#;
        let h = woo_headers(topic, body, SECRET);
        let got = intake(Platform::WooCommerce, &h, body, &ParseSettings::default()).unwrap();
        assert_eq!(
            got,
            Intake::Ignored {
                topic: topic.into()
            }
        );
    }
}

#[test]
fn woo_dedupe_key_follows_modification_time() {
    let mut v = fixture_value(WOO, "order.json");
    let body = serde_json::to_vec(&v).unwrap();
    let a = event_for(Platform::WooCommerce, "order.updated", &body).dedupe_key;
    // WooCommerce's retry of a failed delivery has a new delivery id; it is still the
    // same shop event.
    let mut h = woo_headers("order.updated", &body, SECRET);
    h.insert(
        actix_web::http::header::HeaderName::from_static("x-wc-webhook-delivery-id"),
        actix_web::http::header::HeaderValue::from_static("ffff99"),
    );
    let Intake::Event(retry) =
        intake(Platform::WooCommerce, &h, &body, &ParseSettings::default()).unwrap()
    else {
        panic!("expected an event")
    };
    let b = retry.dedupe_key;
    assert_eq!(a, b, "a redelivery of the same snapshot is a duplicate");
    v["date_modified_gmt"] = json!("2017-03-23T10:00:00");
    let body = serde_json::to_vec(&v).unwrap();
    let c = event_for(Platform::WooCommerce, "order.updated", &body).dedupe_key;
    assert_ne!(a, c, "a later snapshot is a new event");
}

#[test]
fn woo_bad_field_is_named() {
    let mut v = fixture_value(WOO, "order.json");
    v["line_items"][1]["total"] = json!("12,00");
    let body = serde_json::to_vec(&v).unwrap();
    let h = woo_headers("order.updated", &body, SECRET);
    let err = intake(Platform::WooCommerce, &h, &body, &ParseSettings::default()).unwrap_err();
    assert_eq!(err.status(), 422);
    assert_eq!(err.code(), "invalid_field");
    assert_eq!(err.to_string(), "line_items[1].total: not a decimal");

    v["line_items"][1].as_object_mut().unwrap().remove("total");
    let body = serde_json::to_vec(&v).unwrap();
    let h = woo_headers("order.updated", &body, SECRET);
    let err = intake(Platform::WooCommerce, &h, &body, &ParseSettings::default()).unwrap_err();
    assert_eq!(err.code(), "missing_field");
    assert_eq!(err.to_string(), "line_items[1].total: missing");
}

#[test]
fn woo_missing_topic_or_source_header_is_400() {
    let body = fixture_body(WOO, "order.json");
    for drop in ["x-wc-webhook-topic", "x-wc-webhook-source"] {
        let mut h = woo_headers("order.updated", &body, SECRET);
        h.remove(drop);
        let err = intake(Platform::WooCommerce, &h, &body, &ParseSettings::default()).unwrap_err();
        assert_eq!(err.status(), 400, "{drop}");
        assert_eq!(err.code(), "missing_header");
    }
}

#[test]
fn woo_refund_resources_parse_with_positive_amounts() {
    let v = fixture_value(WOO, "order_refund.json");
    let r = woocommerce::parse_refund("723", Some("USD"), &fixture_body(WOO, "order_refund.json"))
        .unwrap();
    assert_eq!(r.shop_refund_id, Some(id(&v["id"])));
    assert_eq!(r.amount, dec(&v["amount"]));
    assert!(r.lines.is_empty());

    let name = "order_refund_with_line_items.ios.json";
    let v = fixture_value(WOO, name);
    let r = woocommerce::parse_refund("560", Some("USD"), &fixture_body(WOO, name)).unwrap();
    assert_eq!(r.amount, dec(&v["amount"]));
    assert_eq!(r.reason, s(&v["reason"]));
    let line = &v["line_items"][0];
    assert!(dec(&line["total"]).is_sign_negative());
    assert_eq!(r.lines[0].quantity, -dec(&line["quantity"]));
    assert_eq!(r.lines[0].subtotal, Some(-dec(&line["total"])));
    assert_eq!(
        r.lines[0].shop_line_id.as_deref(),
        Some("65"),
        "from _refunded_item_id"
    );
    let ship = &v["shipping_lines"][0];
    assert_eq!(r.shipping[0].amount, -dec(&ship["total"]));
    assert_eq!(r.shipping[0].tax, -dec(&ship["total_tax"]));
    assert_eq!(
        r.created_at.unwrap().to_rfc3339(),
        "2019-10-01T19:33:46+00:00"
    );
}
