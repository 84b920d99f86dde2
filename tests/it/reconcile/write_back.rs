//! Write-back of the invoice number to the shop, once even when the booking ran twice.

use super::*;
use crate::helpers::tid;

#[tokio::test]
async fn write_back_writes_the_invoice_number_once_also_when_the_booking_ran_twice() {
    let env = env_with(base_settings(&helpers::unique_prefix("rec-wb")), None).await;
    let order = woo_order("order.json", 727, 30);
    let shop = FakeShop::spawn(vec![]).await;
    env.connect(&shop, "woocommerce", true).await;
    let body = serde_json::to_vec(&order).unwrap();
    let source = format!("{}/", shop.url);
    env.woo_webhook("order.updated", &body, &source).await;
    env.drained().await;
    // A second delivery (another topic: another job) runs the booking again.
    env.woo_webhook("order.created", &body, &source).await;
    env.drained().await;
    assert_eq!(env.invoices().len(), 1);
    let notes = shop.notes("727");
    assert_eq!(notes.len(), 1, "{notes:?}");
    let inv = &env.invoices()[0];
    let number = format!("{}-{}", inv["Year"], inv["InvoiceNumber"]);
    assert!(notes[0].contains(&number), "{notes:?} {inv}");
}

#[tokio::test]
async fn shopify_write_back_sets_the_metafield_once_also_when_the_booking_ran_twice() {
    let env = env_with(base_settings(&helpers::unique_prefix("rec-sh-wb")), None).await;
    let order = shopify_order(30);
    let id = order["id"].to_string();
    let shop = FakeShop::spawn(vec![]).await;
    env.connect(&shop, "shopify", true).await;
    // Two versions of one paid order (a later edit: two booking jobs).
    let mut edited = order.clone();
    edited["updated_at"] = json!((Utc::now() - chrono::Duration::seconds(20)).to_rfc3339());
    for (topic, event, version) in [
        ("orders/paid", "evt-wb-1", &order),
        ("orders/updated", "evt-wb-2", &edited),
    ] {
        let body = serde_json::to_vec(version).unwrap();
        let h = shopify_webhook_headers(topic, &body, event, &shop);
        env.post_webhook("shopify", h, body).await;
        env.drained().await;
    }
    assert_eq!(env.invoices().len(), 1);
    let c = env.app.queue.counts(&tid(TENANT)).await.unwrap();
    assert_eq!(
        (c.done, c.dead),
        (3, 0),
        "two bookings, one write-back: {c:?}"
    );
    let written = shop.notes(&id);
    let inv = &env.invoices()[0];
    let number = format!("{}-{}", inv["Year"], inv["InvoiceNumber"]);
    assert_eq!(written, vec![number], "one metafieldsSet with the number");
    let graphql = shop
        .state
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("graphql.json"))
        .count();
    assert_eq!(graphql, 1);
}
