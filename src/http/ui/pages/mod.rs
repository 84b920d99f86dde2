//! The dashboard's pages (all `GET`): overview, tenants, tenant, jobs, job, dead
//! letters and, in demo mode, the sandbox's documents.
//!
//! Status, job lists and job details come from the admin API's own handlers, called in
//! process (no HTTP), so a page shows exactly what `/admin` answers and follows it when
//! it grows (the circuit breaker, new result fields). Regions marked live are refreshed
//! in place by the page script.
//!
//! One file per page; this one holds what they share: [`Ctx`], the admin handlers'
//! answers as JSON ([`admin_ok`]) and small readers of those answers.

mod dead;
mod health;
mod job_table;
mod jobs;
mod overview;
mod sandbox;
mod tenant;
mod tenants;

pub use health::health;
pub use tenant::tenant_page;

use std::future::Future;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde_json::Value;

use super::html::{self, Frame, Nav};
use super::session::Session;
use super::{UiConfig, UiError};
use crate::http::admin::AdminError;
use crate::http::AppState;
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(overview::overview))
        .route("/tenants", web::get().to(tenants::tenants))
        .route("/tenants/{id}", web::get().to(tenant::tenant))
        .route("/tenants/{id}/jobs", web::get().to(jobs::jobs))
        .route("/tenants/{id}/jobs/{job}", web::get().to(jobs::job))
        .route("/dead", web::get().to(dead::dead))
        .route("/sandbox", web::get().to(sandbox::sandbox));
}

/// What every page handler needs: the stores, the dashboard settings, the session.
pub struct Ctx {
    pub state: web::Data<AppState>,
    pub ui: web::Data<UiConfig>,
    pub session: Session,
    pub req: HttpRequest,
}

impl FromRequest for Ctx {
    type Error = UiError;
    type Future = std::future::Ready<Result<Ctx, UiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = (|| {
            Some(Ctx {
                state: req.app_data::<web::Data<AppState>>()?.clone(),
                ui: req.app_data::<web::Data<UiConfig>>()?.clone(),
                session: super::session_of(req)?,
                req: req.clone(),
            })
        })();
        std::future::ready(ctx.ok_or_else(|| UiError::Refused("signed out".into())))
    }
}

impl Ctx {
    pub fn page(&self, title: &str, nav: Nav, body: &str) -> HttpResponse {
        let page = html::page(
            &Frame {
                title,
                nav,
                csrf: Some(&self.session.csrf),
                demo: self.ui.sandbox.is_some(),
            },
            body,
        );
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(page)
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }
}

/// An admin handler's answer as status and JSON body.
pub async fn admin_json(res: Result<HttpResponse, AdminError>) -> (StatusCode, Value) {
    let res = res.unwrap_or_else(|e| e.error_response());
    let status = res.status();
    let body = actix_web::body::to_bytes(res.into_body())
        .await
        .unwrap_or_default();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// As [`admin_json`], with a non-success answer turned into the page's error.
pub async fn admin_ok(
    fut: impl Future<Output = Result<HttpResponse, AdminError>>,
) -> Result<Value, UiError> {
    let (status, body) = admin_json(fut.await).await;
    if status.is_success() {
        return Ok(body);
    }
    let message = body["message"]
        .as_str()
        .unwrap_or("the request failed")
        .to_owned();
    Err(match status {
        StatusCode::NOT_FOUND => UiError::NotFound(message),
        StatusCode::CONFLICT => UiError::Conflict(message),
        StatusCode::SERVICE_UNAVAILABLE => UiError::Unavailable,
        s if s.is_client_error() => UiError::Invalid(message),
        _ => UiError::Unavailable,
    })
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn time_of(v: &Value) -> String {
    html::time(
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
    )
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}
