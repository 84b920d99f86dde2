//! WooCommerce REST API v3 (`/wp-json/wc/v3`): order listing, private order notes and
//! the connection check.
//!
//! Listing is keyset paging on the modification time (`orderby=modified&order=asc`,
//! `modified_after` = the newest modification seen minus one second): offset paging
//! over a set that changes while we read it would skip an order whenever one of the
//! earlier pages changes. Timestamps have one-second resolution, so the second of the
//! last order is read again (the queue's dedupe key absorbs the repeat) and a page
//! whose orders all share one second continues with `page=2` of that second.
//! Credentials go in HTTP Basic auth, never the query string (which lands in logs).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Value};

use super::{json, Cursor, Page, ShopApiError, ShopClient, Window, PAGE_SIZE};

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// `date_modified_gmt` (or, by creation, `date_created_gmt`) of an order resource.
pub fn order_time(order: &Value, by_created: bool) -> Option<DateTime<Utc>> {
    let keys = if by_created {
        ["date_created_gmt", "date_created"]
    } else {
        ["date_modified_gmt", "date_modified"]
    };
    keys.iter().find_map(|k| {
        let s = order.get(*k)?.as_str()?;
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                    .ok()
                    .map(|n| n.and_utc())
            })
    })
}

fn base(c: &ShopClient) -> String {
    format!("{}/wp-json/wc/v3", c.conn.url.trim_end_matches('/'))
}

fn auth(c: &ShopClient, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    use secrecy::ExposeSecret;
    rb.basic_auth(
        c.conn.consumer_key.as_deref().unwrap_or_default(),
        Some(c.conn.secret.expose_secret()),
    )
}

pub(super) async fn list_page(
    c: &ShopClient,
    window: &Window,
    cursor: &Cursor,
) -> Result<Page, ShopApiError> {
    let (after, page) = match cursor {
        Cursor::Woo { after, page } => (*after, *page),
        // One second early: whether WooCommerce's `*_after` is inclusive is not
        // documented, and an order of exactly `since` must not be lost.
        _ => (window.since - chrono::Duration::seconds(1), 1),
    };
    let (after_key, before_key, orderby) = if window.by_created {
        ("after", "before", "date")
    } else {
        ("modified_after", "modified_before", "modified")
    };
    let url = format!("{}/orders", base(c));
    let query = [
        ("status", "any".to_owned()),
        (after_key, fmt(after)),
        (before_key, fmt(window.until)),
        ("dates_are_gmt", "true".to_owned()),
        ("orderby", orderby.to_owned()),
        ("order", "asc".to_owned()),
        ("per_page", PAGE_SIZE.to_string()),
        ("page", page.to_string()),
    ];
    let (_, body) = c.send(|| auth(c, c.http.get(&url).query(&query))).await?;
    let Value::Array(orders) = json(&body)? else {
        return Err(ShopApiError::Malformed(
            "orders: expected a JSON array".into(),
        ));
    };
    let next = if orders.len() < PAGE_SIZE as usize {
        None
    } else {
        let newest = orders
            .iter()
            .filter_map(|o| order_time(o, window.by_created))
            .max()
            .ok_or_else(|| ShopApiError::Malformed("orders: no modification times".into()))?;
        let next_after = newest - chrono::Duration::seconds(1);
        Some(if next_after <= after {
            Cursor::Woo {
                after,
                page: page + 1,
            }
        } else {
            Cursor::Woo {
                after: next_after,
                page: 1,
            }
        })
    };
    Ok(Page { orders, next })
}

pub(super) async fn add_note(
    c: &ShopClient,
    order_id: &str,
    text: &str,
) -> Result<(), ShopApiError> {
    if order_id.is_empty() || !order_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ShopApiError::Invalid(vec![format!(
            "order id {order_id:?}: expected a WooCommerce order number"
        )]));
    }
    let url = format!("{}/orders/{order_id}/notes", base(c));
    // A private note: `customer_note: true` would e-mail the customer. Adding a note
    // does not save the order, so no `order.updated` webhook and no poll finds it again.
    let body = json!({"note": text, "customer_note": false});
    c.send(|| auth(c, c.http.post(&url).json(&body))).await?;
    Ok(())
}

pub(super) async fn check(c: &ShopClient) -> Result<Value, ShopApiError> {
    let url = format!("{}/orders", base(c));
    let (headers, _) = c
        .send(|| auth(c, c.http.get(&url).query(&[("per_page", "1")])))
        .await?;
    let total = headers
        .get("x-wp-total")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    Ok(json!({"ok": true, "orders_total": total}))
}
