//! A fake WooCommerce shop for demo mode, mounted next to the Minimax sandbox under
//! `/demo-shop`: enough of the WooCommerce REST API v3 for the reconciliation poll
//! and the write-back (`GET wp-json/wc/v3/orders` with keyset paging on the
//! modification time, `POST|GET wp-json/wc/v3/orders/{id}/notes`), plus
//! `POST /demo-shop/orders` to place an order **without sending its webhook**, as a
//! shop does while the connector is down. The README's demo uses it to show a missed
//! order recovered by the poll.
//!
//! Guarantees: demo only (mounted only with the sandbox); everything lives in memory
//! and is lost on restart; listing needs HTTP Basic credentials (any), like the real
//! API; a placed order is stamped as modified ten minutes ago, so the first poll's
//! window (which ends `reconcile.settle` before now) already covers it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Value};

/// The demo shop's orders and notes; cheap to clone.
#[derive(Clone, Default)]
pub struct DemoShop {
    orders: Arc<Mutex<BTreeMap<u64, Value>>>,
    notes: Arc<Mutex<HashMap<u64, Vec<Value>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"code": code, "message": message}))
}

/// WooCommerce's GMT timestamps (`2026-03-14T10:00:00`, no zone).
fn woo_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

pub fn configure(cfg: &mut web::ServiceConfig, shop: DemoShop) {
    cfg.app_data(web::Data::new(shop))
        .route("/orders", web::post().to(place))
        .route("/wp-json/wc/v3/orders", web::get().to(list))
        .route("/wp-json/wc/v3/orders/{id}/notes", web::post().to(add_note))
        .route("/wp-json/wc/v3/orders/{id}/notes", web::get().to(notes));
}

/// `POST /demo-shop/orders`: stores a WooCommerce order resource (replacing one of the
/// same id) without any webhook.
async fn place(body: web::Bytes, shop: web::Data<DemoShop>) -> HttpResponse {
    let Ok(Value::Object(mut order)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "invalid_json",
            "expected a WooCommerce order object",
        );
    };
    let Some(id) = order.get("id").and_then(Value::as_u64) else {
        return error(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_order",
            "id: expected a positive integer",
        );
    };
    let at = woo_time(Utc::now() - chrono::Duration::minutes(10));
    for key in [
        "date_created",
        "date_created_gmt",
        "date_modified",
        "date_modified_gmt",
    ] {
        order.insert(key.into(), json!(at));
    }
    let order = Value::Object(order);
    lock(&shop.orders).insert(id, order);
    HttpResponse::Created().json(json!({"id": id, "date_modified_gmt": at, "webhook_sent": false}))
}

/// `GET wp-json/wc/v3/orders`: the filters and paging the poll uses.
async fn list(
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
    shop: web::Data<DemoShop>,
) -> HttpResponse {
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Basic "));
    if !basic {
        return error(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "woocommerce_rest_cannot_view",
            "Sorry, you cannot list resources.",
        );
    }
    let (field, after, before) =
        if q.contains_key("after") || q.get("orderby").is_some_and(|o| o == "date") {
            ("date_created_gmt", q.get("after"), q.get("before"))
        } else {
            (
                "date_modified_gmt",
                q.get("modified_after"),
                q.get("modified_before"),
            )
        };
    let after = after.and_then(|s| parse_time(s));
    let before = before.and_then(|s| parse_time(s));
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut matching: Vec<(DateTime<Utc>, u64, Value)> = lock(&shop.orders)
        .iter()
        .filter_map(|(id, o)| {
            let t = parse_time(o.get(field)?.as_str()?)?;
            let inside = after.is_none_or(|a| t > a) && before.is_none_or(|b| t <= b);
            inside.then(|| (t, *id, o.clone()))
        })
        .collect();
    matching.sort_by_key(|(t, id, _)| (*t, *id));
    let total = matching.len();
    let items: Vec<Value> = matching
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(_, _, o)| o)
        .collect();
    HttpResponse::Ok()
        .insert_header(("X-WP-Total", total.to_string()))
        .json(items)
}

/// `POST wp-json/wc/v3/orders/{id}/notes` (the write-back's private note).
async fn add_note(
    path: web::Path<u64>,
    body: web::Json<Value>,
    shop: web::Data<DemoShop>,
) -> HttpResponse {
    let id = path.into_inner();
    if !lock(&shop.orders).contains_key(&id) {
        return error(
            actix_web::http::StatusCode::NOT_FOUND,
            "woocommerce_rest_shop_order_invalid_id",
            "Invalid ID.",
        );
    }
    let mut notes = lock(&shop.notes);
    let list = notes.entry(id).or_default();
    let note = json!({
        "id": list.len() + 1,
        "note": body.get("note").cloned().unwrap_or(Value::Null),
        "customer_note": body.get("customer_note").cloned().unwrap_or(json!(false)),
        "date_created_gmt": woo_time(Utc::now()),
    });
    list.push(note.clone());
    HttpResponse::Created().json(note)
}

async fn notes(path: web::Path<u64>, shop: web::Data<DemoShop>) -> HttpResponse {
    let list = lock(&shop.notes)
        .get(&path.into_inner())
        .cloned()
        .unwrap_or_default();
    HttpResponse::Ok().json(list)
}
