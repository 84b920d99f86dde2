//! Backfill: dry runs that count and total, a run paused at the Minimax budget.

use super::*;
use crate::helpers::tid;

#[tokio::test]
async fn a_dry_run_backfill_of_500_orders_reports_counts_and_totals_without_minimax_calls() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-dry"));
    settings.reconcile.enabled = true;
    let env = env_with(settings, None).await;
    let since = Utc::now() - chrono::Duration::days(30);
    let shop = FakeShop::spawn(woo_backfill_orders(since, 20_000)).await;
    env.connect(&shop, "woocommerce", false).await;
    let before = env.sb.state.counters().api_calls;
    let done = env.backfill(since, true, 60).await;
    assert_eq!(done["orders"], 500, "{done}");
    assert_eq!(done["report"]["documents"]["issued_invoice"], 500, "{done}");
    let usd = Decimal::from_str(done["report"]["totals"]["USD"].as_str().unwrap()).unwrap();
    assert_eq!(
        usd,
        Decimal::from_str("29.35").unwrap() * Decimal::from(500)
    );
    assert_eq!(done["report"]["already_booked"], 0);
    assert_eq!(env.sb.state.counters().api_calls, before, "no Minimax call");
    let c = env.app.queue.counts(&tid(TENANT)).await.unwrap();
    assert_eq!(
        c.queued + c.done + c.delayed + c.running,
        0,
        "nothing enqueued"
    );
}

/// 500 WooCommerce orders created one an hour from `since`, ids from `first_id`.
fn woo_backfill_orders(since: chrono::DateTime<Utc>, first_id: u64) -> Vec<Value> {
    (0..500u64)
        .map(|i| {
            let mut o = woo_order("order.json", first_id + i, 2 * 86_400);
            let created = since + chrono::Duration::minutes(i as i64 * 60);
            o["date_created_gmt"] = json!(woo_time(created));
            o["number"] = json!((first_id + i).to_string());
            o
        })
        .collect()
}

#[tokio::test]
async fn a_backfill_of_500_orders_pauses_at_the_minimax_budget_and_completes_in_the_next_window() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-budget"));
    settings.reconcile.enabled = true;
    // A small budget in a short window (production: 1000 calls per 24 h): 500 orders
    // need several windows.
    settings.minimax.daily_budget = 300;
    settings.minimax.daily_budget_window_secs = 4;
    let env = env_with(settings, None).await;
    env.sb.state.set_limits(1_000_000, 1_000_000);
    let since = Utc::now() - chrono::Duration::days(30);
    let shop = FakeShop::spawn(woo_backfill_orders(since, 30_000)).await;
    env.connect(&shop, "woocommerce", false).await;
    let (status, b) = env
        .admin(
            reqwest::Method::POST,
            "/backfill",
            Some(json!({"since": since, "dry_run": false})),
        )
        .await;
    assert_eq!(status, 202, "{b}");
    let states = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let done = helpers::eventually(Duration::from_secs(240), || async {
        let (_, b) = env.admin(reqwest::Method::GET, "/backfill", None).await;
        let state = b["state"].as_str().unwrap_or("").to_owned();
        states.lock().unwrap().insert(state);
        (b["state"] == "done").then_some(b)
    })
    .await
    .expect("the backfill finishes");
    assert_eq!(done["orders"], 500, "{done}");
    assert_eq!(done["enqueued"], 500, "{done}");
    let c = helpers::eventually(Duration::from_secs(240), || async {
        let c = env.app.queue.counts(&tid(TENANT)).await.unwrap();
        (c.queued + c.delayed + c.running == 0).then_some(c)
    })
    .await
    .expect("every booking job ends");
    assert_eq!((c.done, c.dead), (500, 0), "{c:?}");
    let invoices = env.invoices();
    assert_eq!(invoices.len(), 500, "every order booked once");
    let mut refs: Vec<String> = invoices
        .iter()
        .map(|i| i["DocumentReference"].to_string())
        .collect();
    refs.sort();
    refs.dedup();
    assert_eq!(refs.len(), 500, "no order booked twice");
    assert!(
        done["budget_waits"].as_u64().unwrap() >= 1,
        "the backfill paused at the budget: {done} {states:?}"
    );
    let calls = env.sb.state.counters().api_calls;
    assert!(
        calls > 400,
        "the budget was really exceeded in total: {calls}"
    );
    let states = states.lock().unwrap();
    eprintln!("budget backfill: {calls} Minimax API calls, states {states:?}, {done}");
}

#[tokio::test]
async fn a_dry_run_counts_every_woocommerce_refund_the_booking_will_credit() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-dry-refunds"));
    settings.reconcile.enabled = true;
    let env = env_with(settings, None).await;
    let since = Utc::now() - chrono::Duration::days(3);
    // Modified before the poll's first window: only the backfill sees them.
    let mut refunded = woo_order("order_partially_refunded.ios.json", 4343, 2 * 86_400);
    refunded["date_created_gmt"] = json!(woo_time(since + chrono::Duration::hours(1)));
    let mut plain = woo_order("order.json", 4344, 2 * 86_400);
    plain["date_created_gmt"] = json!(woo_time(since + chrono::Duration::hours(2)));
    let dec = |v: &Value| Decimal::from_str(v.as_str().unwrap()).unwrap();
    let refunds: Vec<Decimal> = refunded["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| dec(&r["total"]).abs())
        .collect();
    assert_eq!(refunds.len(), 2);
    let expected = dec(&refunded["total"]) + dec(&plain["total"]) - refunds.iter().sum::<Decimal>();
    let shop = FakeShop::spawn(vec![refunded, plain]).await;
    env.connect(&shop, "woocommerce", false).await;
    let dry = env.backfill(since, true, 30).await;
    let report = &dry["report"];
    assert_eq!(report["documents"]["issued_invoice"], 2, "{dry}");
    assert_eq!(report["documents"]["credit_note"], 2, "both refunds: {dry}");
    assert_eq!(dec(&report["totals"]["USD"]), expected, "{dry}");
    assert_eq!(env.sb.state.counters().api_calls, 0, "no Minimax call");
    // The real run books what the dry run reported; a second dry run finds it booked.
    env.backfill(since, false, 30).await;
    env.drained().await;
    let booked: Decimal = env
        .invoices()
        .iter()
        .map(|i| Decimal::from_str(&i["InvoiceValue"].to_string()).unwrap())
        .sum();
    assert_eq!(env.invoices().len(), 4);
    assert_eq!(booked, expected);
    let again = env.backfill(since, true, 30).await;
    assert_eq!(again["report"]["already_booked"], 4, "{again}");
    assert!(
        again["report"]["documents"].as_object().unwrap().is_empty(),
        "{again}"
    );
}

#[tokio::test]
async fn a_backfill_whose_since_is_not_before_until_is_refused_with_422_naming_since() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-range"));
    settings.reconcile.enabled = true;
    let env = env_with(settings, None).await;
    let shop = FakeShop::spawn(Vec::new()).await;
    env.connect(&shop, "woocommerce", false).await;
    let until = Utc::now() - chrono::Duration::days(2);
    for since in [until, until + chrono::Duration::days(1)] {
        let (status, b) = env
            .admin(
                reqwest::Method::POST,
                "/backfill",
                Some(json!({"since": since, "until": until, "dry_run": true})),
            )
            .await;
        assert_eq!(status, 422, "{b}");
        assert_eq!(b["error"], "invalid_request", "{b}");
        assert!(b["message"].as_str().unwrap().starts_with("since:"), "{b}");
    }
    let (_, state) = env.admin(reqwest::Method::GET, "/backfill", None).await;
    assert_ne!(state["state"], "running", "nothing started: {state}");
}
