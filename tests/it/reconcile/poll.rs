//! The reconciliation poll: orders and refunds only the poll finds, webhooks and polls
//! meeting, the watermark, one poller per tenant, a killed poller, the README demo.

use super::*;
use crate::helpers::tid;

#[tokio::test]
async fn an_order_only_the_poll_finds_books_once_and_counts_as_missed() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-only"));
    // The next window reaches back past the order.
    settings.reconcile.overlap = 600;
    let env = env_with(settings, None).await;
    let shop = FakeShop::spawn(vec![woo_order("order.json", 727, 60)]).await;
    env.connect(&shop, "woocommerce", false).await;
    let out = env.poll().await;
    assert_eq!(out["orders"], 1, "{out} {:?}", shop.listings());
    assert_eq!(out["enqueued"], 1, "{out}");
    assert_eq!(out["found_only_by_poll"], 1, "{out}");
    env.drained().await;
    let booked = env.invoices();
    assert_eq!(booked.len(), 1);
    assert_eq!(booked[0]["InvoiceValue"].to_string(), "29.35");
    // The next poll's window overlaps the last one: the order is seen again, not booked again.
    let again = env.poll().await;
    assert_eq!(again["orders"], 1, "{again}");
    assert_eq!(again["enqueued"], 0, "{again}");
    assert_eq!(again["found_only_by_poll"], 0, "{again}");
    env.drained().await;
    assert_eq!(env.invoices().len(), 1);
    let metrics = env
        .http
        .get(env.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "mmc_reconcile_found_only_by_poll_total{{tenant=\"{TENANT}\"}}"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_order_delivered_by_webhook_and_found_by_the_poll_books_once_despite_429s() {
    let env = env_with(base_settings(&helpers::unique_prefix("rec-both")), None).await;
    let order = shopify_order(30);
    let shop = FakeShop::spawn(vec![order.clone()]).await;
    env.connect(&shop, "shopify", false).await;
    let body = serde_json::to_vec(&order).unwrap();
    let h = shopify_webhook_headers("orders/paid", &body, "evt-both-1", &shop);
    env.post_webhook("shopify", h, body).await;
    env.drained().await;
    assert_eq!(env.invoices().len(), 1);
    shop.state.throttle.store(2, Ordering::SeqCst);
    let out = env.poll().await;
    assert_eq!(out["orders"], 1, "{out}");
    assert_eq!(
        out["found_only_by_poll"], 0,
        "a webhook delivered it: {out}"
    );
    assert_eq!(out["shop_calls"], 3, "two 429s, then the page: {out}");
    env.drained().await;
    assert_eq!(env.invoices().len(), 1, "booked once");
}

#[tokio::test]
async fn a_refund_only_the_poll_finds_becomes_a_credit_note() {
    let env = env_with(base_settings(&helpers::unique_prefix("rec-refund")), None).await;
    let order = woo_order("order_partially_refunded.ios.json", 4242, 20);
    let total = Decimal::from_str(order["total"].as_str().unwrap()).unwrap();
    let shop = FakeShop::spawn(vec![order.clone()]).await;
    env.connect(&shop, "woocommerce", false).await;
    let out = env.poll().await;
    assert_eq!(out["found_only_by_poll"], 1, "{out}");
    env.drained().await;
    let values: Vec<Decimal> = env
        .invoices()
        .iter()
        .map(|i| Decimal::from_str(&i["InvoiceValue"].to_string()).unwrap())
        .collect();
    assert!(values.contains(&total), "the order is booked: {values:?}");
    let credits = values.iter().filter(|v| **v < Decimal::ZERO).count();
    assert_eq!(
        credits,
        order["refunds"].as_array().unwrap().len(),
        "{values:?}"
    );
}

#[tokio::test]
async fn the_watermark_survives_a_failed_page_and_a_restart_without_skipping_a_page() {
    let prefix = helpers::unique_prefix("rec-mark");
    let env = env_with(base_settings(&prefix), Some(Arc::new(helpers::OkHandler))).await;
    let orders: Vec<Value> = (0..250u64)
        .map(|i| woo_order("order.json", 1000 + i, 3000 - i as i64 * 10))
        .collect();
    let shop = FakeShop::spawn(orders).await;
    env.connect(&shop, "woocommerce", false).await;
    // The second page fails (as a crash after page 1 would stop the run).
    shop.state.fail_listing.lock().unwrap().push(2);
    let (status, v) = env.admin(reqwest::Method::POST, "/shop/poll", None).await;
    assert_eq!(status, 502, "{v}");
    let (_, saved) = env.admin(reqwest::Method::GET, "/shop/poll", None).await;
    assert_eq!(
        saved["run"]["pages"], 1,
        "page 1 enqueued and saved: {saved}"
    );
    assert!(
        saved["watermark"].is_null(),
        "the watermark waits for the last page: {saved}"
    );
    let c = env.app.queue.counts(&tid(TENANT)).await.unwrap();
    assert_eq!(c.queued + c.running + c.done + c.delayed, 100);
    // A new instance (same Redis) resumes the saved run at page 2.
    let other = helpers::spawn_app_with(env.settings.clone(), Arc::new(helpers::OkHandler)).await;
    let res = env
        .http
        .post(other.url(&format!("/admin/tenants/{TENANT}/shop/poll")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["pages"], 2, "pages 2 and 3 only: {out}");
    let listings = shop.listings();
    let after = |l: &str| {
        l.split("modified_after=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_ne!(
        after(&listings[2]),
        after(&listings[0]),
        "resumed, not restarted: {listings:?}"
    );
    let c = env.app.queue.counts(&tid(TENANT)).await.unwrap();
    assert_eq!(
        c.queued + c.running + c.done + c.delayed,
        250,
        "every order once"
    );
    let watermark = out["watermark"].as_str().unwrap().to_owned();
    // The next run starts at the watermark (minus the overlap): nothing new.
    let again = env.poll().await;
    assert_eq!(again["enqueued"], 0, "{again}");
    assert!(again["watermark"].as_str().unwrap() >= watermark.as_str());
}

#[tokio::test]
async fn two_instances_never_poll_one_tenant_at_the_same_time() {
    let prefix = helpers::unique_prefix("rec-two");
    let env = env_with(base_settings(&prefix), Some(Arc::new(helpers::OkHandler))).await;
    let shop = FakeShop::spawn(vec![woo_order("order.json", 727, 60)]).await;
    shop.state.delay_ms.store(500, Ordering::SeqCst);
    env.connect(&shop, "woocommerce", false).await;
    let other = helpers::spawn_app_with(env.settings.clone(), Arc::new(helpers::OkHandler)).await;
    let a = env.app.url(&format!("/admin/tenants/{TENANT}/shop/poll"));
    let b = other.url(&format!("/admin/tenants/{TENANT}/shop/poll"));
    let (ra, rb) = tokio::join!(
        env.http.post(&a).bearer_auth(ADMIN).send(),
        env.http.post(&b).bearer_auth(ADMIN).send()
    );
    let mut statuses = vec![ra.unwrap().status().as_u16(), rb.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409]);
    assert_eq!(shop.state.max_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_killed_instance_mid_poll_is_taken_over_after_its_lock_expires_without_skipping_a_page() {
    let prefix = helpers::unique_prefix("rec-kill");
    let mut settings = base_settings(&prefix);
    settings.reconcile.enabled = true;
    settings.reconcile.lock_ttl = 2;
    let orders: Vec<Value> = (0..250u64)
        .map(|i| woo_order("order.json", 5000 + i, 3000 - i as i64 * 10))
        .collect();
    let shop = FakeShop::spawn(orders).await;
    // The killed instance is waiting for page 2 when it dies.
    shop.state.stall_listing.lock().unwrap().push(2);
    let env = env_with(settings.clone(), Some(Arc::new(helpers::OkHandler))).await;
    env.connect(&shop, "woocommerce", false).await;
    let saved = helpers::eventually(Duration::from_secs(30), || async {
        let (_, s) = env.admin(reqwest::Method::GET, "/shop/poll", None).await;
        (s["run"]["pages"] == 1 && shop.listings().len() == 2).then_some(s)
    })
    .await
    .expect("the first instance enqueued page 1 and waits for page 2");
    let Env { app, .. } = env;
    drop(app);
    let lock_key = format!("{prefix}:{{t:{TENANT}}}:reconcile:lock");
    let mut redis = helpers::pool(&helpers::redis_url()).get().await.unwrap();
    let held: Option<String> = redis::AsyncCommands::get(&mut redis, &lock_key)
        .await
        .unwrap();
    assert!(held.is_some(), "the dead instance never released its lock");

    // A second instance resumes the saved run on its own once the lock expires.
    let other = helpers::spawn_app_with(settings, Arc::new(helpers::OkHandler)).await;
    let q = other.queue.clone();
    let http = reqwest::Client::new();
    let state_url = other.url(&format!("/admin/tenants/{TENANT}/shop/poll"));
    let done = helpers::eventually(Duration::from_secs(30), || async {
        let s: Value = http
            .get(&state_url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s["watermark"].is_string().then_some(s)
    })
    .await
    .expect("the second instance finishes the run");
    assert_eq!(
        done["last"]["pages"], 2,
        "pages 2 and 3 only: {done} {saved}"
    );
    let listings = shop.listings();
    assert_eq!(
        listings[2], listings[1],
        "the takeover asks for the page the dead instance waited for: {listings:?}"
    );
    assert_ne!(listings[2], listings[0]);
    let c = q.counts(&tid(TENANT)).await.unwrap();
    assert_eq!(
        c.queued + c.running + c.done + c.delayed,
        250,
        "every order once: {c:?}"
    );
}

#[tokio::test]
async fn a_shopify_refund_only_the_poll_finds_becomes_a_credit_note() {
    let mut settings = base_settings(&helpers::unique_prefix("rec-sh-refund"));
    // The invoice books before its refund (a refund waits for its invoice otherwise).
    settings.queue.per_tenant_concurrency = 1;
    let env = env_with(settings, None).await;
    let order = shopify_refunded_order(20);
    let total = Decimal::from_str(order["total_price"].as_str().unwrap()).unwrap();
    let shop = FakeShop::spawn(vec![order]).await;
    env.connect(&shop, "shopify", false).await;
    let out = env.poll().await;
    assert_eq!(out["orders"], 1, "{out}");
    assert_eq!(out["events"], 2, "the order and its refund: {out}");
    assert_eq!(out["found_only_by_poll"], 2, "{out}");
    env.drained().await;
    let c = env.app.queue.counts(&tid(TENANT)).await.unwrap();
    assert_eq!((c.done, c.dead), (2, 0), "{c:?}");
    let mut values: Vec<Decimal> = env
        .invoices()
        .iter()
        .map(|i| Decimal::from_str(&i["InvoiceValue"].to_string()).unwrap())
        .collect();
    values.sort();
    assert_eq!(
        values,
        vec![-total, total],
        "an invoice and its credit note"
    );
    // Polled again: nothing new is booked.
    let again = env.poll().await;
    assert_eq!(again["enqueued"], 0, "{again}");
    env.drained().await;
    assert_eq!(env.invoices().len(), 2);
}

#[tokio::test]
async fn the_readme_demo_recovers_a_missed_order_through_the_poll() {
    // `cargo run` as the README shows it: demo mode (sandbox and demo shop mounted in
    // the service), the default reconcile settings except a faster scheduler tick.
    let mut settings =
        helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("rec-demo"));
    settings.demo.enabled = true;
    settings.apply_demo();
    settings.minimax.rate_per_sec = 500.0;
    settings.minimax.burst = 500;
    settings.reconcile.tick_ms = 50;
    let app = helpers::spawn_app(settings.clone()).await;
    let store = helpers::tenant_store(&settings);
    helpers::eventually(Duration::from_secs(10), || async {
        store.get(&tid("demo")).await.unwrap()
    })
    .await
    .expect("demo tenant seeded");
    let http = reqwest::Client::new();
    let body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/examples/woocommerce-order-missed.json"),
    )
    .unwrap();
    // 1. The shop takes an order while its webhook is lost.
    let res = http
        .post(app.url("/demo-shop/orders"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // 2. Connect the demo tenant to the shop's API, write-back on.
    let res = http
        .put(app.url("/admin/tenants/demo/shop"))
        .bearer_auth(ADMIN)
        .json(
            &json!({"platform": "woocommerce", "url": app.url("/demo-shop"),
            "consumer_key": "ck_demo", "consumer_secret": "cs_demo", "write_back": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // 3. The scheduler polls the new connection at once and finds the order.
    let state = helpers::eventually(Duration::from_secs(30), || async {
        let s: Value = http
            .get(app.url("/admin/tenants/demo/shop/poll"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s["last"].is_object().then_some(s)
    })
    .await
    .expect("the first poll ran");
    assert_eq!(state["last"]["found_only_by_poll"], 1, "{state}");
    // 4. Booked as an issued invoice; its number is written back to the order.
    let notes = helpers::eventually(Duration::from_secs(30), || async {
        let n: Value = http
            .get(app.url("/demo-shop/wp-json/wc/v3/orders/1001/notes"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (n.as_array().unwrap().len() == 1).then_some(n)
    })
    .await
    .expect("the invoice number is written back");
    let year = Utc::now().format("%Y");
    assert!(
        notes[0]["note"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Minimax invoice {year}-1 of ")),
        "{notes}"
    );
    helpers::eventually(Duration::from_secs(30), || async {
        let c = app.queue.counts(&tid("demo")).await.unwrap();
        ((c.done, c.dead) == (2, 0)).then_some(())
    })
    .await
    .expect("two jobs done: the booking and the write-back");
}
