//! Shopify bodies into events: orders against their fixtures, topics, cancellations,
//! discounts, refunds, customers, money sets, big ids, dedupe keys, un-prefixed headers.

use super::*;

/// Checks the Shopify order against the fixture: shop-money amounts, lines, taxes.
fn assert_shopify_order_matches(order: &Order, v: &Value) {
    let shop_money = |field: &str| -> Decimal {
        let set = &v[format!("{field}_set")];
        if set.is_object() {
            dec(&set["shop_money"]["amount"])
        } else {
            dec(&v[field])
        }
    };
    assert_eq!(order.shop_order_id, id(&v["id"]));
    assert_eq!(order.number, s(&v["name"]));
    assert_eq!(order.currency, v["currency"].as_str().unwrap());
    assert_eq!(order.status, v["financial_status"].as_str().unwrap());
    assert_eq!(order.total, shop_money("total_price"));
    assert_eq!(order.total_tax, shop_money("total_tax"));
    assert_eq!(order.discount_total, shop_money("total_discounts"));
    assert_eq!(order.subtotal, shop_money("total_line_items_price"));
    assert_eq!(
        order.amounts_include_tax,
        v["taxes_included"].as_bool().unwrap()
    );

    let lines = v["line_items"].as_array().unwrap();
    assert_eq!(order.lines.len(), lines.len());
    for (got, want) in order.lines.iter().zip(lines) {
        assert_eq!(got.shop_line_id, Some(id(&want["id"])));
        assert_eq!(got.sku, s(&want["sku"]));
        assert_eq!(got.name, want["name"].as_str().unwrap());
        assert_eq!(got.quantity, dec(&want["quantity"]));
        assert_eq!(got.unit_price, Some(dec(&want["price"])));
        assert_eq!(got.subtotal, dec(&want["price"]) * dec(&want["quantity"]));
        let discount: Decimal = match want["discount_allocations"].as_array() {
            Some(a) => a.iter().map(|d| dec(&d["amount"])).sum(),
            None => opt_dec(&want["total_discount"]).unwrap_or_default(),
        };
        assert_eq!(got.discount, discount);
        assert_eq!(got.total, got.subtotal - discount);
        let taxes = want["tax_lines"].as_array().cloned().unwrap_or_default();
        assert_eq!(got.taxes.len(), taxes.len());
        let tax: Decimal = taxes.iter().map(|t| dec(&t["price"])).sum();
        assert_eq!(got.total_tax, tax);
        if let [only] = taxes.as_slice() {
            assert_eq!(got.tax_rate_percent, Some(dec(&only["rate"]) * dec!(100)));
        }
    }
    let tax_lines = v["tax_lines"].as_array().unwrap();
    assert_eq!(order.tax_lines.len(), tax_lines.len());
    for (got, want) in order.tax_lines.iter().zip(tax_lines) {
        assert_eq!(got.amount, dec(&want["price"]));
        assert_eq!(got.label, want["title"].as_str().unwrap());
    }
    let ship = v["shipping_lines"].as_array().unwrap();
    assert_eq!(order.shipping_lines.len(), ship.len());
    for (got, want) in order.shipping_lines.iter().zip(ship) {
        assert_eq!(got.subtotal, dec(&want["price"]));
        assert_eq!(got.title, want["title"].as_str().unwrap());
    }
    let codes = v["discount_codes"].as_array().unwrap();
    assert_eq!(order.discounts.len(), codes.len());
    for (got, want) in order.discounts.iter().zip(codes) {
        assert_eq!(got.code, s(&want["code"]));
        assert_eq!(got.amount, dec(&want["amount"]));
    }
    let c = order.customer.as_ref().unwrap();
    assert_eq!(c.shop_customer_id, Some(id(&v["customer"]["id"])));
    assert_eq!(c.email, s(&v["customer"]["email"]));
    assert_eq!(c.first_name, s(&v["customer"]["first_name"]));
    assert_eq!(c.last_name, s(&v["customer"]["last_name"]));
    let b = order.billing.as_ref().unwrap();
    assert_eq!(b.city, s(&v["billing_address"]["city"]));
    assert_eq!(b.postcode, s(&v["billing_address"]["zip"]));
    assert_eq!(b.country_code, s(&v["billing_address"]["country_code"]));
    assert_eq!(
        order.refunds.len(),
        v["refunds"].as_array().map_or(0, Vec::len)
    );
}

fn shopify_event(name: &str, topic: &str) -> (ShopEvent, Value, String) {
    let body = fixture_body(SHOP, name);
    let ev = event_for(Platform::Shopify, topic, &body);
    (ev.event, fixture_value(SHOP, name), ev.dedupe_key)
}

#[test]
fn shopify_paid_order_matches_fixture() {
    let (event, v, key) = shopify_event("order.rest-2026-07.json", "orders/paid");
    assert_eq!(event.kind(), EventKind::OrderPaid);
    let order = order_of(&event);
    assert_shopify_order_matches(order, &v);
    assert_adds_up(order);
    assert_eq!(
        order.lines[0].discount,
        dec!(3.34),
        "from discount_allocations"
    );
    assert_eq!(order.lines[0].tax_rate_percent, Some(dec!(6)));
    assert_eq!(order.discounts[0].kind, DiscountKind::Fixed);
    assert_eq!(order.discounts[0].value, Some(dec!(10.0)));
    assert_eq!(order.refunds[0].amount, dec!(209.00));
    assert_eq!(order.refunds[0].lines[0].subtotal, Some(dec!(195.66)));
    assert_eq!(
        order.payment_method.as_ref().unwrap().id.as_deref(),
        Some("bogus")
    );
    assert_eq!(
        key,
        format!(
            "shopify:order:{}:2008-01-10T16:00:00Z:{}",
            id(&v["id"]),
            body_digest(&fixture_body(SHOP, "order.rest-2026-07.json"))
        ),
        "the key is signed data only: no event id or shop domain header in it"
    );
}

#[test]
fn shopify_topic_and_financial_status_decide_the_event() {
    let mut v = fixture_value(SHOP, "order.rest-2026-07.json");
    let body = serde_json::to_vec(&v).unwrap();
    // partially_refunded means it was paid.
    let ev = event_for(Platform::Shopify, "orders/updated", &body);
    assert_eq!(ev.event.kind(), EventKind::OrderPaid);
    v["financial_status"] = json!("pending");
    let body = serde_json::to_vec(&v).unwrap();
    assert_eq!(
        event_for(Platform::Shopify, "orders/create", &body)
            .event
            .kind(),
        EventKind::OrderUpdated
    );
    // The topic header cannot make a pending order paid or cancelled: only the body can.
    for topic in [
        "orders/paid",
        "orders/cancelled",
        "customers/update",
        "refunds/create",
    ] {
        let h = signed_headers(Platform::Shopify, topic, &body);
        let err = intake(Platform::Shopify, &h, &body, &ParseSettings::default()).unwrap_err();
        assert_eq!(err.code(), "topic_conflict", "{topic}");
        assert_eq!(err.status(), 422, "{topic}");
        assert_eq!(err.field().as_deref(), Some("headers.x-shopify-topic"));
    }
    v["cancelled_at"] = json!("2025-04-02T11:31:25-05:00");
    let body = serde_json::to_vec(&v).unwrap();
    for topic in ["orders/updated", "orders/cancelled", "orders/create"] {
        assert_eq!(
            event_for(Platform::Shopify, topic, &body).event.kind(),
            EventKind::OrderCancelled,
            "{topic}"
        );
    }
}

#[test]
fn shopify_cancelled_order_is_cancelled() {
    let (event, v, _) = shopify_event("order_cancelled.rest-2026-07.json", "orders/updated");
    assert_eq!(event.kind(), EventKind::OrderCancelled);
    let order = order_of(&event);
    assert_shopify_order_matches(order, &v);
    assert_eq!(
        order.cancelled_at.unwrap().to_rfc3339(),
        "2025-04-02T16:31:25+00:00"
    );
}

#[test]
fn shopify_percentage_discount() {
    let (event, v, _) = shopify_event(
        "order_with_percentage_discount.rest-2026-07.json",
        "orders/create",
    );
    assert_eq!(event.kind(), EventKind::OrderPaid);
    let order = order_of(&event);
    assert_shopify_order_matches(order, &v);
    assert_adds_up(order);
    let d = &order.discounts[0];
    assert_eq!(d.kind, DiscountKind::Percentage);
    assert_eq!(d.code.as_deref(), Some("FAKE30"));
    assert_eq!(d.value, Some(dec!(9.0)));
    assert_eq!(order.lines[0].discount, dec(&v["total_discounts"]));
}

#[test]
fn shopify_old_order_shape_parses() {
    let (event, v, _) = shopify_event("order.python-fixture.json", "orders/create");
    // financial_status "authorized" is not paid yet.
    assert_eq!(event.kind(), EventKind::OrderUpdated);
    let order = order_of(&event);
    // Not assert_adds_up: this fixture lists three 199.00 lines but a 398.00 subtotal.
    assert_shopify_order_matches(order, &v);
    assert_eq!(
        order.payment_method.as_ref().unwrap().id.as_deref(),
        Some("authorize_net")
    );
}

#[test]
fn shopify_refunds_create_is_refund_event() {
    for name in ["refund.rest-2026-07.json", "refund.python-fixture.json"] {
        let (event, v, _) = shopify_event(name, "refunds/create");
        let ShopEvent::OrderRefunded { refund, order } = &event else {
            panic!("{name}: expected refund");
        };
        assert!(order.is_none(), "refunds/create carries no order");
        assert_eq!(refund.shop_refund_id, Some(id(&v["id"])));
        assert_eq!(refund.shop_order_id, id(&v["order_id"]));
        assert_eq!(refund.reason, s(&v["note"]));
        let paid_back: Decimal = v["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"] == "refund")
            .map(|t| dec(&t["amount"]))
            .sum();
        assert_eq!(refund.amount, paid_back, "{name}");
        assert_eq!(refund.currency.as_deref(), Some("USD"));
        let items = v["refund_line_items"].as_array().unwrap();
        assert_eq!(refund.lines.len(), items.len());
        for (got, want) in refund.lines.iter().zip(items) {
            assert_eq!(got.shop_line_id, Some(id(&want["line_item_id"])));
            assert_eq!(got.quantity, dec(&want["quantity"]));
            // Numeric subtotal/total_tax in the new shape; absent in the old one.
            assert_eq!(got.subtotal, opt_dec(&want["subtotal"]));
            assert_eq!(got.tax, opt_dec(&want["total_tax"]));
            assert_eq!(got.sku, s(&want["line_item"]["sku"]));
        }
    }
}

#[test]
fn shopify_customers_are_upserted() {
    for name in ["customer.rest-2026-07.json", "customer.python-fixture.json"] {
        let (event, v, _) = shopify_event(name, "customers/update");
        let ShopEvent::CustomerUpserted(c) = &event else {
            panic!("{name}: expected customer");
        };
        assert_eq!(c.shop_customer_id, Some(id(&v["id"])));
        assert_eq!(c.email, s(&v["email"]));
        assert_eq!(c.first_name, s(&v["first_name"]));
        assert_eq!(c.last_name, s(&v["last_name"]));
        assert_eq!(c.tax_exempt, v["tax_exempt"].as_bool().unwrap());
        let billing = c.billing.as_ref().unwrap();
        assert_eq!(billing.city, s(&v["default_address"]["city"]));
        assert_eq!(
            billing.country_code,
            s(&v["default_address"]["country_code"])
        );
    }
}

#[test]
fn shopify_books_presentment_money_and_shop_money_on_request() {
    let mut v = fixture_value(SHOP, "order.rest-2026-07.json");
    v["total_price_set"]["presentment_money"] = json!({"amount": "550.10", "currency_code": "EUR"});
    v["line_items"][0]["price_set"]["presentment_money"] =
        json!({"amount": "182.00", "currency_code": "EUR"});
    v["presentment_currency"] = json!("EUR");
    let body = serde_json::to_vec(&v).unwrap();
    // What the customer paid, with the shop's exchange rate.
    let order = event_for(Platform::Shopify, "orders/paid", &body).event;
    let order = order_of(&order);
    assert_eq!(order.currency, "EUR");
    assert_eq!(order.total, dec!(550.10));
    assert_eq!(order.lines[0].unit_price, Some(dec!(182.00)));
    assert_eq!(order.shop_currency.as_deref(), Some("USD"));
    assert_eq!(order.exchange_rate, Some(dec!(1.088784)));
    // The tenant setting booking_currency = "shop": the shop's money.
    let settings = ParseSettings {
        booking_currency: minimax_connector::webshop::BookingCurrency::Shop,
        ..ParseSettings::default()
    };
    let order = shopify::parse_order_with(&body, &settings).unwrap();
    assert_eq!(order.currency, "USD");
    assert_eq!(order.total, dec!(598.94));
    assert_eq!(order.lines[0].unit_price, Some(dec!(199.00)));
}

#[test]
fn shopify_ids_beyond_2_pow_53_are_exact() {
    let mut v = fixture_value(SHOP, "order.rest-2026-07.json");
    v["id"] = serde_json::from_str("820982911946154508").unwrap();
    let body = serde_json::to_vec(&v).unwrap();
    assert!(String::from_utf8_lossy(&body).contains("820982911946154508"));
    let order = shopify::parse_order(&body).unwrap();
    assert_eq!(order.shop_order_id, "820982911946154508");
}

#[test]
fn shopify_dedupe_key_ignores_the_unsigned_delivery_headers() {
    let body = fixture_body(SHOP, "customer.rest-2026-07.json");
    let mut h = shopify_headers("customers/create", &body, SECRET);
    let key = |h: &actix_web::http::header::HeaderMap| match intake(
        Platform::Shopify,
        h,
        &body,
        &ParseSettings::default(),
    )
    .unwrap()
    {
        Intake::Event(ev) => ev.dedupe_key,
        Intake::Ignored { topic } => panic!("ignored {topic}"),
    };
    let first = key(&h);
    assert!(first.starts_with("shopify:customer:"), "{first}");
    h.remove("x-shopify-event-id");
    h.remove("x-shopify-webhook-id");
    assert_eq!(key(&h), first, "no event or webhook id needed");
    h.insert(
        actix_web::http::header::HeaderName::from_static("x-shopify-shop-domain"),
        actix_web::http::header::HeaderValue::from_static("other.myshopify.com"),
    );
    h.insert(
        actix_web::http::header::HeaderName::from_static("x-shopify-topic"),
        actix_web::http::header::HeaderValue::from_static("customers/update"),
    );
    assert_eq!(key(&h), first, "domain and topic headers change nothing");
}

#[test]
fn shopify_other_topics_are_ignored() {
    let body = fixture_body(SHOP, "transaction.rest-2026-07.json");
    for topic in [
        "orders/fulfilled",
        "order_transactions/create",
        "customers/redact",
    ] {
        let h = shopify_headers(topic, &body, SECRET);
        let got = intake(Platform::Shopify, &h, &body, &ParseSettings::default()).unwrap();
        assert_eq!(
            got,
            Intake::Ignored {
                topic: topic.into()
            }
        );
    }
}

#[test]
fn shopify_events_deliveries_with_unprefixed_headers_parse_alike() {
    // Shopify's newer "Events" delivery drops the `x-` prefix of every header.
    let body = fixture_body(SHOP, "order.rest-2026-07.json");
    let classic = event_for(Platform::Shopify, "orders/paid", &body);
    let sig = hmac_b64(SECRET.as_bytes(), &[&body]);
    let h = headers(&[
        ("content-type", "application/json"),
        ("shopify-topic", "orders/paid"),
        ("shopify-hmac-sha256", &sig),
        ("shopify-shop-domain", "jsmith.myshopify.com"),
        ("shopify-event-id", "98880550-7158-44d4-b7cd-2c97c8a091b5"),
    ]);
    let Intake::Event(ev) =
        intake(Platform::Shopify, &h, &body, &ParseSettings::default()).unwrap()
    else {
        panic!("ignored");
    };
    assert_eq!(ev.dedupe_key, classic.dedupe_key);
    assert_eq!(ev.topic, "orders/paid");
    assert_eq!(ev.event, classic.event);
}
