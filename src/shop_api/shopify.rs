//! Shopify Admin API: REST `orders.json` for listing, GraphQL `metafieldsSet` for the
//! write-back, `orders/count.json` for the connection check.
//!
//! Why REST for listing (docs/shop-apis.md has the long form): `orders.json` returns the
//! very resource the `orders/*` webhooks deliver, so the webhook parser books a polled
//! order unchanged, and its refunds arrive embedded in the shape of `refunds/create`.
//! A GraphQL listing would need a second parser for a second shape, the largest risk
//! to "books the same as a webhook". Pages are followed through the `Link: rel="next"`
//! URL (cursor paging, stable while orders change), only on the shop's own origin.
//! The REST bucket (40 calls, 2/s leak on standard plans) is read from
//! `X-Shopify-Shop-Api-Call-Limit`; we pause before it is full and honour `429
//! Retry-After` when it is.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use super::{json, Cursor, Page, ShopApiError, ShopClient, Window, DEFAULT_SHOPIFY_VERSION};

/// Shopify REST allows up to 250 orders per page.
pub const PAGE_LIMIT: u32 = 250;

fn admin(c: &ShopClient) -> String {
    format!(
        "{}/admin/api/{}",
        c.conn.url.trim_end_matches('/'),
        c.conn
            .api_version
            .as_deref()
            .unwrap_or(DEFAULT_SHOPIFY_VERSION)
    )
}

fn auth(c: &ShopClient, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    rb.header("X-Shopify-Access-Token", c.conn.secret.expose_secret())
}

fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How long to wait before the next call when the REST bucket is nearly full
/// (`X-Shopify-Shop-Api-Call-Limit: 38/40`): the leak of two calls.
pub(super) fn pace(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get("x-shopify-shop-api-call-limit")?.to_str().ok()?;
    let (used, size) = v.split_once('/')?;
    let (used, size): (u32, u32) = (used.trim().parse().ok()?, size.trim().parse().ok()?);
    (size.saturating_sub(used) <= 2).then_some(Duration::from_secs(1))
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(h: &reqwest::header::HeaderMap) -> Option<String> {
    let v = h.get(reqwest::header::LINK)?.to_str().ok()?;
    v.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

pub(super) async fn list_page(
    c: &ShopClient,
    window: &Window,
    cursor: &Cursor,
) -> Result<Page, ShopApiError> {
    let (headers, body) = match cursor {
        Cursor::Next { url } => {
            if !same_origin(url, &c.conn.url) {
                return Err(ShopApiError::Malformed(
                    "the next-page link points away from the shop".into(),
                ));
            }
            c.send(|| auth(c, c.http.get(url))).await?
        }
        _ => {
            let (min, max) = if window.by_created {
                ("created_at_min", "created_at_max")
            } else {
                ("updated_at_min", "updated_at_max")
            };
            let url = format!("{}/orders.json", admin(c));
            // `status=any`: the default `open` misses closed, cancelled and refunded orders.
            let query = [
                ("status", "any".to_owned()),
                (min, fmt(window.since)),
                (max, fmt(window.until)),
                ("limit", PAGE_LIMIT.to_string()),
            ];
            c.send(|| auth(c, c.http.get(&url).query(&query))).await?
        }
    };
    let mut v = json(&body)?;
    let Some(Value::Array(orders)) = v.get_mut("orders").map(Value::take) else {
        return Err(ShopApiError::Malformed(
            "orders: expected a JSON array".into(),
        ));
    };
    Ok(Page {
        orders,
        next: next_link(&headers).map(|url| Cursor::Next { url }),
    })
}

/// Upserts the order's `minimax.document` metafield through GraphQL `metafieldsSet`
/// (atomic, adds to the order's metafields instead of replacing notes or attributes).
pub(super) async fn write_metafield(
    c: &ShopClient,
    order_id: &str,
    number: &str,
    text: &str,
) -> Result<(), ShopApiError> {
    if order_id.is_empty() || !order_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ShopApiError::Invalid(vec![format!(
            "order id {order_id:?}: expected a Shopify order id"
        )]));
    }
    let url = format!("{}/graphql.json", admin(c));
    let body = json!({
        "query": "mutation SetMinimaxDocument($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) { metafields { id } userErrors { field message code } } }",
        "variables": {"m": [
            {"ownerId": format!("gid://shopify/Order/{order_id}"), "namespace": "minimax",
             "key": "document", "type": "single_line_text_field", "value": number},
            {"ownerId": format!("gid://shopify/Order/{order_id}"), "namespace": "minimax",
             "key": "note", "type": "single_line_text_field", "value": text},
        ]},
    });
    for _ in 0..c.max_attempts {
        let (_, raw) = c.send(|| auth(c, c.http.post(&url).json(&body))).await?;
        let v = json(&raw)?;
        let throttled = v["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["extensions"]["code"] == "THROTTLED"));
        if throttled {
            // Cost-based bucket: wait for the missing points to refill.
            let st = &v["extensions"]["cost"]["throttleStatus"];
            let need = v["extensions"]["cost"]["requestedQueryCost"]
                .as_f64()
                .unwrap_or(10.0);
            let have = st["currentlyAvailable"].as_f64().unwrap_or(0.0);
            let rate = st["restoreRate"]
                .as_f64()
                .filter(|r| *r > 0.0)
                .unwrap_or(50.0);
            let wait = Duration::from_secs_f64(((need - have) / rate).clamp(0.1, 10.0));
            tokio::time::sleep(wait.min(c.max_wait)).await;
            continue;
        }
        if let Some(errors) = v["errors"].as_array().filter(|e| !e.is_empty()) {
            return Err(ShopApiError::Status {
                status: 200,
                reason: errors[0]["message"]
                    .as_str()
                    .unwrap_or("GraphQL error")
                    .chars()
                    .take(200)
                    .collect(),
            });
        }
        let user = &v["data"]["metafieldsSet"]["userErrors"];
        if let Some(first) = user.as_array().and_then(|a| a.first()) {
            return Err(ShopApiError::Status {
                status: 200,
                reason: first["message"]
                    .as_str()
                    .unwrap_or("user error")
                    .chars()
                    .take(200)
                    .collect(),
            });
        }
        return Ok(());
    }
    Err(ShopApiError::RateLimited {
        attempts: c.max_attempts,
    })
}

pub(super) async fn check(c: &ShopClient) -> Result<Value, ShopApiError> {
    let url = format!("{}/orders/count.json", admin(c));
    let (_, body) = c
        .send(|| auth(c, c.http.get(&url).query(&[("status", "any")])))
        .await?;
    let v = json(&body)?;
    Ok(json!({"ok": true, "orders_total": v.get("count")}))
}

/// `updated_at` (or `created_at`) of a Shopify order resource.
pub fn order_time(order: &Value, by_created: bool) -> Option<DateTime<Utc>> {
    let key = if by_created {
        "created_at"
    } else {
        "updated_at"
    };
    DateTime::parse_from_rfc3339(order.get(key)?.as_str()?)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn link_header_next_is_found_among_others() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "link",
            "<https://s.myshopify.com/admin/api/2025-01/orders.json?page_info=a>; rel=\"previous\", <https://s.myshopify.com/admin/api/2025-01/orders.json?page_info=b>; rel=\"next\"".parse().unwrap(),
        );
        assert_eq!(
            next_link(&h).unwrap(),
            "https://s.myshopify.com/admin/api/2025-01/orders.json?page_info=b"
        );
        assert!(same_origin(
            "https://s.myshopify.com/x",
            "https://s.myshopify.com"
        ));
        assert!(!same_origin(
            "https://evil.example/x",
            "https://s.myshopify.com"
        ));
    }

    #[test]
    fn pacing_starts_when_the_bucket_is_nearly_full() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-shopify-shop-api-call-limit", "10/40".parse().unwrap());
        assert_eq!(pace(&h), None);
        h.insert("x-shopify-shop-api-call-limit", "39/40".parse().unwrap());
        assert_eq!(pace(&h), Some(Duration::from_secs(1)));
    }
}
