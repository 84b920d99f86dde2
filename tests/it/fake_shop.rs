//! In-process fakes of the WooCommerce REST API v3 and the Shopify Admin API (real
//! HTTP on a free port): order listings with the real paging (WooCommerce `page` with
//! `modified_after`/`orderby=modified`; Shopify `Link: rel="next"` with `page_info`),
//! `429 Retry-After` on demand, injected failures, order notes and GraphQL
//! `metafieldsSet`, a request log and the largest number of listings in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

#[derive(Default)]
pub struct FakeState {
    pub orders: Mutex<Vec<Value>>,
    /// Every request: method, path and query.
    pub log: Mutex<Vec<String>>,
    /// The next this many listing requests answer 429 with `Retry-After: 0`.
    pub throttle: AtomicU32,
    /// Listing requests (1-based count) that answer 400.
    pub fail_listing: Mutex<Vec<usize>>,
    pub listings: AtomicUsize,
    /// Milliseconds each listing takes.
    pub delay_ms: AtomicU32,
    /// Listing requests (1-based count) that hang for a minute (an instance killed
    /// while it waits for the shop).
    pub stall_listing: Mutex<Vec<usize>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// order id → notes (WooCommerce) or metafield values (Shopify).
    pub notes: Mutex<HashMap<String, Vec<String>>>,
    pub per_page: AtomicU32,
}

pub struct FakeShop {
    pub url: String,
    pub state: Arc<FakeState>,
    _handle: actix_web::dev::ServerHandle,
}

impl FakeShop {
    pub async fn spawn(orders: Vec<Value>) -> Self {
        let state = Arc::new(FakeState::default());
        *state.orders.lock().unwrap() = orders;
        state.per_page.store(100, Ordering::SeqCst);
        let data = web::Data::from(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .route("/wp-json/wc/v3/orders", web::get().to(woo_orders))
                .route("/wp-json/wc/v3/orders/{id}/notes", web::post().to(woo_note))
                .route("/admin/api/{v}/orders.json", web::get().to(shopify_orders))
                .route(
                    "/admin/api/{v}/orders/count.json",
                    web::get().to(shopify_count),
                )
                .route(
                    "/admin/api/{v}/graphql.json",
                    web::post().to(shopify_graphql),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            _handle: handle,
        }
    }

    pub fn listings(&self) -> Vec<String> {
        self.state
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("orders?") || l.contains("orders.json"))
            .cloned()
            .collect()
    }

    pub fn notes(&self, order: &str) -> Vec<String> {
        self.state
            .notes
            .lock()
            .unwrap()
            .get(order)
            .cloned()
            .unwrap_or_default()
    }
}

fn log(s: &FakeState, req: &HttpRequest) {
    s.log.lock().unwrap().push(format!(
        "{} {}?{}",
        req.method(),
        req.path(),
        req.query_string()
    ));
}

/// Shared listing behaviour: log, 429, slow answers, the in-flight high-water mark.
async fn listing_gate(s: &FakeState, req: &HttpRequest) -> Option<HttpResponse> {
    log(s, req);
    let n = s.listings.fetch_add(1, Ordering::SeqCst) + 1;
    if s.throttle
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return Some(
            HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", "0"))
                .json(json!({"errors": "Exceeded 2 calls per second for api client."})),
        );
    }
    {
        if s.fail_listing.lock().unwrap().contains(&n) {
            return Some(
                HttpResponse::BadRequest()
                    .json(json!({"code": "injected", "message": "injected failure"})),
            );
        }
    }
    if s.stall_listing.lock().unwrap().contains(&n) {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let d = s.delay_ms.load(Ordering::SeqCst);
    if d > 0 {
        tokio::time::sleep(Duration::from_millis(d.into())).await;
    }
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    None
}

fn woo_time(o: &Value, key: &str) -> String {
    o[key].as_str().unwrap_or("").to_owned()
}

async fn woo_orders(
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
    s: web::Data<FakeState>,
) -> HttpResponse {
    let page: u32 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    if let Some(r) = listing_gate(&s, &req).await {
        return r;
    }
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !auth.starts_with("Basic ") {
        return HttpResponse::Unauthorized().json(json!({"code": "woocommerce_rest_cannot_view"}));
    }
    let per_page: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(10);
    let (field, after, before) = if q.contains_key("modified_after") {
        (
            "date_modified_gmt",
            q.get("modified_after"),
            q.get("modified_before"),
        )
    } else {
        ("date_created_gmt", q.get("after"), q.get("before"))
    };
    let mut list: Vec<Value> = s
        .orders
        .lock()
        .unwrap()
        .iter()
        .filter(|o| {
            let t = woo_time(o, field);
            after.is_none_or(|a| t.as_str() > a.as_str())
                && before.is_none_or(|b| t.as_str() <= b.as_str())
        })
        .cloned()
        .collect();
    list.sort_by(|a, b| {
        (woo_time(a, field), a["id"].as_u64()).cmp(&(woo_time(b, field), b["id"].as_u64()))
    });
    let total = list.len();
    let items: Vec<Value> = list
        .into_iter()
        .skip((page as usize - 1) * per_page)
        .take(per_page)
        .collect();
    HttpResponse::Ok()
        .insert_header(("X-WP-Total", total.to_string()))
        .json(items)
}

async fn woo_note(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Value>,
    s: web::Data<FakeState>,
) -> HttpResponse {
    log(&s, &req);
    assert_eq!(body["customer_note"], false, "notes are private");
    s.notes
        .lock()
        .unwrap()
        .entry(path.into_inner())
        .or_default()
        .push(body["note"].as_str().unwrap_or("").to_owned());
    HttpResponse::Created().json(json!({"id": 1}))
}

fn token_ok(req: &HttpRequest) -> bool {
    req.headers().get("x-shopify-access-token").is_some()
}

async fn shopify_orders(
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
    s: web::Data<FakeState>,
) -> HttpResponse {
    // page_info is the 0-based index of the page's first order in the filtered list.
    let start: usize = q.get("page_info").and_then(|p| p.parse().ok()).unwrap_or(0);
    let per_page = s.per_page.load(Ordering::SeqCst) as usize;
    if let Some(r) = listing_gate(&s, &req).await {
        return r;
    }
    if !token_ok(&req) {
        return HttpResponse::Unauthorized()
            .json(json!({"errors": "Invalid API key or access token"}));
    }
    let min = q.get("updated_at_min").cloned().unwrap_or_default();
    let max = q
        .get("updated_at_max")
        .cloned()
        .unwrap_or_else(|| "9999".into());
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    let (lo, hi) = (parse(&min), parse(&max));
    let list: Vec<Value> = s
        .orders
        .lock()
        .unwrap()
        .iter()
        .filter(|o| {
            let t = parse(o["updated_at"].as_str().unwrap_or(""));
            lo.is_none_or(|l| t >= Some(l)) && hi.is_none_or(|h| t <= Some(h))
        })
        .cloned()
        .collect();
    let page: Vec<Value> = list.iter().skip(start).take(per_page).cloned().collect();
    let mut res = HttpResponse::Ok();
    res.insert_header(("X-Shopify-Shop-Api-Call-Limit", "1/40"));
    if start + per_page < list.len() {
        let host = req.connection_info().host().to_owned();
        res.insert_header((
            "Link",
            format!(
                "<http://{host}{}?limit={per_page}&page_info={}&updated_at_min={}&updated_at_max={}>; rel=\"next\"",
                req.path(),
                start + per_page,
                urlencode(&min),
                urlencode(&max)
            ),
        ));
    }
    res.json(json!({"orders": page}))
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

async fn shopify_count(req: HttpRequest, s: web::Data<FakeState>) -> HttpResponse {
    log(&s, &req);
    if !token_ok(&req) {
        return HttpResponse::Unauthorized().finish();
    }
    HttpResponse::Ok().json(json!({"count": s.orders.lock().unwrap().len()}))
}

async fn shopify_graphql(
    req: HttpRequest,
    body: web::Json<Value>,
    s: web::Data<FakeState>,
) -> HttpResponse {
    log(&s, &req);
    for m in body["variables"]["m"].as_array().into_iter().flatten() {
        if m["key"] == "document" {
            let id = m["ownerId"]
                .as_str()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_owned();
            s.notes
                .lock()
                .unwrap()
                .entry(id)
                .or_default()
                .push(m["value"].as_str().unwrap_or("").to_owned());
        }
    }
    HttpResponse::Ok().json(json!({"data": {"metafieldsSet": {"metafields": [{"id": "gid://shopify/Metafield/1"}], "userErrors": []}}}))
}

/// The deliveries an [`AlertReceiver`] got: headers and raw body of each.
pub type Deliveries = Arc<Mutex<Vec<(actix_web::http::header::HeaderMap, Vec<u8>)>>>;

/// An operator's alert endpoint: records every delivery (headers and raw body).
pub struct AlertReceiver {
    pub url: String,
    pub received: Deliveries,
    _handle: actix_web::dev::ServerHandle,
}

impl AlertReceiver {
    pub async fn spawn() -> Self {
        let received: Deliveries = Arc::default();
        let data = web::Data::new(received.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new().app_data(data.clone()).route(
                "/alerts",
                web::post().to(
                    |req: HttpRequest, body: web::Bytes, log: web::Data<Deliveries>| async move {
                        log.lock()
                            .unwrap()
                            .push((req.headers().clone(), body.to_vec()));
                        HttpResponse::NoContent().finish()
                    },
                ),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/alerts"),
            received,
            _handle: handle,
        }
    }
}
