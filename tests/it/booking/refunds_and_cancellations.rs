//! Refunds and cancellations: credit notes, refunds ahead of their order, drafts deleted,
//! issued invoices credited, received orders invalidated.

use super::*;
use crate::helpers::tid;

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
            .get(&tid(TENANT), &refund_job)
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
    env.app
        .queue
        .retry(&tid(TENANT), &refund_job)
        .await
        .unwrap();
    let rec = env.done(&refund_job).await;
    let credit = env.invoice(rec.result.unwrap()["minimax_id"].as_i64().unwrap());
    assert_eq!(value(&credit["InvoiceValue"]), dec("-10.98"));
    assert_eq!(rec.attempts, 1, "waiting used no attempts");
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
async fn a_cancellation_settles_an_unconfirmed_booking_that_never_happened() {
    let env = env().await;
    // An earlier attempt wrote its intent and died before Minimax created anything.
    let records = minimax_connector::booking::records::Records::new(
        helpers::pool(&helpers::redis_url()),
        env.settings.redis.key_prefix.clone(),
    );
    records
        .put(
            &tid(TENANT),
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
