//! What to book for each trigger and event, and the references of refunds.

use super::*;

#[test]
fn decide_for_each_trigger_and_event() {
    let o = order(json!({}));
    let on_paid = settings();
    let mut on_created = settings();
    on_created.trigger = BookingTrigger::OnCreated;
    let mut ignore_cancel = settings();
    ignore_cancel.cancel_action = CancelAction::Ignore;
    let mut received = settings();
    received.document = DocumentKind::ReceivedOrder;
    let mut with_orders = settings();
    with_orders.customer_sync = minimax_connector::mapping::CustomerSync::WithOrders;
    let refund_ev = ShopEvent::OrderRefunded {
        refund: refund("1.00", json!([])),
        order: None,
    };
    let customer_ev = ShopEvent::CustomerUpserted(o.customer.clone().unwrap());
    let customer_ev_deleted = o.customer.clone().unwrap();
    let skip = |d: Decision| matches!(d, Decision::Skip { .. });
    type Case<'a> = (
        &'a str,
        ShopEvent,
        &'a BookingSettings,
        fn(&Decision) -> bool,
    );
    let cases: Vec<Case> = vec![
        (
            "paid/on_paid",
            ShopEvent::OrderPaid(o.clone()),
            &on_paid,
            |d| *d == Decision::Book,
        ),
        (
            "paid/on_created",
            ShopEvent::OrderPaid(o.clone()),
            &on_created,
            |d| *d == Decision::Book,
        ),
        (
            "updated/on_paid",
            ShopEvent::OrderUpdated(o.clone()),
            &on_paid,
            |d| matches!(d, Decision::Skip { .. }),
        ),
        (
            "updated/on_created",
            ShopEvent::OrderUpdated(o.clone()),
            &on_created,
            |d| *d == Decision::Book,
        ),
        (
            "cancelled",
            ShopEvent::OrderCancelled(o.clone()),
            &on_paid,
            |d| *d == Decision::Cancel,
        ),
        (
            "cancelled/ignore",
            ShopEvent::OrderCancelled(o.clone()),
            &ignore_cancel,
            |d| matches!(d, Decision::Skip { .. }),
        ),
        ("refunded", refund_ev.clone(), &on_paid, |d| {
            *d == Decision::Refund
        }),
        ("refunded/received_order", refund_ev, &received, |d| {
            matches!(d, Decision::Skip { .. })
        }),
        ("customer", customer_ev.clone(), &on_paid, |d| {
            *d == Decision::SyncCustomer
        }),
        (
            "customer/with_orders",
            customer_ev.clone(),
            &with_orders,
            |d| matches!(d, Decision::Skip { reason } if reason.contains("settings.customer_sync")),
        ),
        (
            "customer deleted",
            ShopEvent::CustomerDeleted(customer_ev_deleted),
            &on_paid,
            |d| *d == Decision::CustomerDeleted,
        ),
    ];
    for (name, ev, s, ok) in cases {
        let d = decide(&ev, s);
        assert!(ok(&d), "{name}: {d:?}");
    }
    // Test orders are skipped unless enabled, naming the setting.
    let mut t = o.clone();
    t.test = true;
    let d = decide(&ShopEvent::OrderPaid(t.clone()), &on_paid);
    assert!(skip(d.clone()), "{d:?}");
    assert!(format!("{d:?}").contains("book_test_orders"));
    let mut book_tests = settings();
    book_tests.book_test_orders = true;
    assert_eq!(
        decide(&ShopEvent::OrderPaid(t), &book_tests),
        Decision::Book
    );
}

#[test]
fn refunds_without_a_shop_id_get_distinct_references() {
    // The reference names the refund by the key its booking record uses, so adopting
    // one refund's credit note after a lost answer can never pick up another's.
    let o = two_rate_order();
    let mut a = refund("12.20", json!([{"shop_line_id": "1", "quantity": "1"}]));
    let mut b = refund("10.95", json!([{"shop_line_id": "2", "quantity": "1"}]));
    a.shop_refund_id = None;
    b.shop_refund_id = None;
    let ra = credit(&a, Some(&o))
        .unwrap()
        .invoice
        .document_reference
        .unwrap();
    let rb = credit(&b, Some(&o))
        .unwrap()
        .invoice
        .document_reference
        .unwrap();
    assert_ne!(ra, rb);
    assert_eq!(ra, format!("1001/R{}", a.key()));
}
