//! The HTTP surface: routes, shared state, request ids and JSON errors.
//!
//! Every request gets a request id (the caller's `X-Request-Id` if it is sane, else a
//! new one), a span carrying it, and the id back in the response header. Every error
//! answer is JSON (see [`error`]).

pub mod admin;
pub mod allow;
pub mod error;
pub mod health;
pub mod limits;
pub mod openapi;
pub(crate) mod scrape;
pub mod ui;
pub mod webhooks;

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlers, Next};
use actix_web::{web, HttpMessage, HttpResponse};
use tokio::sync::Notify;
use tracing::Instrument;

use crate::queue::Queue;

pub use error::ApiError;

/// State shared by all handlers of one process.
pub struct AppState {
    pub queue: Queue,
    pub redis_timeout: Duration,
    /// Present when this process runs workers (readiness checks it).
    pub worker_heartbeat: Option<Arc<AtomicI64>>,
    pub worker_poll: Duration,
    /// Wakes this process's idle workers after an enqueue.
    pub worker_wake: Option<Arc<Notify>>,
    pub tenants: crate::tenants::TenantStore,
    pub signature_tolerance: Duration,
    /// Runs the webhook routes (role `all` or `intake`).
    pub intake: bool,
    /// Operator bearer tokens for `/admin` (`security.admin_tokens`); none = admin closed.
    pub admin_tokens: Vec<secrecy::SecretString>,
    /// The Minimax client (admin status and connection checks).
    pub minimax: crate::minimax::Minimax,
    /// Deadline for receiving a request body once its head is read (`server.body_timeout_ms`).
    pub body_timeout: Duration,
    /// Bearer token `/metrics` requires (`metrics.token`); `None`: open.
    pub metrics_token: Option<secrecy::SecretString>,
    /// Whether `/metrics` is served on the main address (false when `metrics.listen`
    /// gives it an address of its own).
    pub metrics_on_main: bool,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Set on a successful response whose handler logged the request's one line itself
/// (an accepted webhook, with its job id and topic); the request is then logged at
/// debug level only.
#[derive(Clone, Copy)]
pub struct LoggedByHandler;

/// The request's id (`x-request-id`, given or made), for handlers whose own span must
/// carry it (JSON logs show the current span only).
#[derive(Clone)]
pub struct RequestId(pub String);

async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
        status = tracing::field::Empty,
    );
    // The sandbox's 404s (code lookups that miss) are part of normal booking; health
    // probes log their own changes of state (see `health`).
    let quiet = req.path().starts_with("/sandbox/") || req.path().starts_with("/health/");
    let started = std::time::Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    let quiet = quiet
        || (status < 400
            && res
                .response()
                .extensions()
                .get::<LoggedByHandler>()
                .is_some());
    span.record("status", status);
    span.in_scope(|| {
        let ms = started.elapsed().as_millis() as u64;
        if quiet {
            tracing::debug!(status, ms, "sandbox request served");
        } else if status == 503 {
            // A dependency is down: its outage is logged once (`queue::outage`), the
            // requests it turns away at most every few seconds.
            if let Some(left_out) = crate::queue::outage::UNAVAILABLE_REQUESTS.admit() {
                tracing::warn!(status, ms, left_out, "request turned away: unavailable");
            }
        } else if status >= 500 {
            tracing::error!(status, ms, "request failed");
        } else if status >= 400 {
            tracing::warn!(status, ms, "request rejected");
        } else {
            tracing::debug!(status, ms, "request served");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    Ok(res)
}

/// Registers all routes on an `App`. `intake` adds the webhook routes, `metrics` the
/// `/metrics` route.
pub fn configure(cfg: &mut web::ServiceConfig, intake: bool, metrics: bool) {
    // Routes are matched in order: the webhook route first, so the hot path does not
    // try every admin pattern before its own.
    if intake {
        webhooks::configure(cfg);
    }
    health::configure(cfg);
    if metrics {
        health::configure_metrics(cfg);
    }
    openapi::configure(cfg);
    // The operator API runs in every role: a worker-only instance is still operable.
    admin::configure(cfg);
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such route").with_field("path"))
}

/// Builds the actix `App` for one worker thread of the server.
pub fn app(
    state: web::Data<AppState>,
    extra: impl Fn(&mut web::ServiceConfig) + Clone + 'static,
    body_limit: usize,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .app_data(state.clone())
        .app_data(web::PayloadConfig::new(body_limit))
        .app_data(web::JsonConfig::default().limit(body_limit))
        .app_data(limits::BodyTimeout(state.body_timeout))
        .configure(|cfg| configure(cfg, state.intake, state.metrics_on_main))
        .configure(extra)
        .default_service(web::to(not_found))
        .wrap(actix_web::middleware::from_fn(allow::method_not_allowed))
        .wrap(ErrorHandlers::new().default_handler(error::json_errors))
        .wrap(actix_web::middleware::from_fn(limits::body_deadline))
        .wrap(actix_web::middleware::from_fn(request_span))
}

/// The `App` of the separate metrics address (`metrics.listen`): `/metrics` only.
pub fn metrics_app(
    state: web::Data<AppState>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .app_data(state)
        .configure(health::configure_metrics)
        .default_service(web::to(not_found))
        .wrap(ErrorHandlers::new().default_handler(error::json_errors))
}
