//! Orders booked through the service to the cent: fixtures, tables, duplicates, calls per
//! order, PDFs, received orders, demo mode, customer updates, changed orders.

use super::*;
use crate::helpers::tid;

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
        store.get(&tid("demo")).await.unwrap()
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
            .get(&tid("demo"), &id)
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
