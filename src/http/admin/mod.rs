//! The operator's API under `/admin`: tenants, their status and their jobs.
//!
//! Guarantees:
//! - every `/admin` request needs `Authorization: Bearer <token>` with one of
//!   `security.admin_tokens`; without it the answer is `401` JSON and nothing is read or
//!   changed (the check runs before routing, so it also hides which routes exist). Tokens
//!   are compared as SHA-256 digests in constant time (`subtle`), so neither the content
//!   nor the length of a configured token leaks through timing; empty tokens never match;
//! - secrets are write-only: no response, log line or error carries a password, client
//!   secret, webhook secret or token (responses say whether each is set);
//! - storage trouble answers `503` (retry), a stored tenant that cannot be decrypted
//!   `500`, invalid input `422` with one message per field, malformed JSON `400`.
//!
//! Handlers live in [`tenants`] (tenants, status, connection check) and [`jobs`].

pub mod backfill;
pub mod jobs;
pub mod tenants;

use std::future::Future;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::http::error::ErrorBody;
use crate::http::{ApiError, AppState};
use crate::tenants::TenantError;

/// Registers the `/admin` scope behind the operator token check.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .wrap(actix_web::middleware::from_fn(require_operator))
            .configure(tenants::configure)
            .configure(jobs::configure)
            .configure(backfill::configure)
            .default_service(web::to(no_route)),
    );
}

async fn no_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such admin route").with_field("path"))
}

/// True when `header` is `Bearer <t>` for one of `tokens`. Every configured token is
/// compared (no early exit), each as a SHA-256 digest, so timing says nothing about
/// which token matched or how long the tokens are.
pub fn authorized(tokens: &[SecretString], header: Option<&HeaderValue>) -> bool {
    let Some(presented) = header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
    else {
        return false;
    };
    let presented = Sha256::digest(presented.as_bytes());
    let mut ok = subtle::Choice::from(0u8);
    for token in tokens {
        let token = token.expose_secret().trim();
        if token.is_empty() {
            continue;
        }
        ok |= Sha256::digest(token.as_bytes()).ct_eq(&presented);
    }
    ok.into()
}

async fn require_operator(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let ok = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| authorized(&s.admin_tokens, req.headers().get(header::AUTHORIZATION)));
    if !ok {
        let res = HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"admin\""))
            .json(ErrorBody {
                error: "unauthorized".into(),
                message: "an operator bearer token is required (Authorization: Bearer <token>)"
                    .into(),
                field: Some("headers.authorization".into()),
            });
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// An admin answer that is not a success: a plain [`ApiError`], or a `422` listing every
/// problem of a submitted tenant.
#[derive(Debug)]
pub enum AdminError {
    Api(ApiError),
    Invalid(Vec<String>),
}

impl From<ApiError> for AdminError {
    fn from(e: ApiError) -> Self {
        AdminError::Api(e)
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Api(e) => e.fmt(f),
            AdminError::Invalid(p) => write!(f, "422 invalid_tenant: {} problem(s)", p.len()),
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::Api(e) => e.status,
            AdminError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
    fn error_response(&self) -> HttpResponse {
        match self {
            AdminError::Api(e) => e.error_response(),
            AdminError::Invalid(problems) => {
                // Each problem is "<path>: <reason>" (paths never contain ": ").
                let fields: Vec<&str> = problems
                    .iter()
                    .map(|p| p.split_once(": ").map_or(p.as_str(), |(f, _)| f))
                    .collect();
                HttpResponse::UnprocessableEntity().json(serde_json::json!({
                    "error": "invalid_tenant",
                    "message": format!("the tenant is invalid: {}", problems.join("; ")),
                    "field": fields.first(),
                    "fields": fields,
                    "problems": problems,
                }))
            }
        }
    }
}

pub(crate) fn storage_unavailable() -> ApiError {
    ApiError::unavailable("storage unavailable, retry later")
}

pub(crate) fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
}

/// Runs one storage operation within `redis.timeout_ms`; failures become `503` (logged
/// with the cause, which never contains secrets: Redis and queue errors carry no values).
pub(crate) async fn storage<T, E: std::fmt::Display>(
    state: &AppState,
    what: &'static str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(state.redis_timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, what, "admin: storage error");
            Err(storage_unavailable())
        }
        Err(_) => {
            tracing::error!(what, "admin: storage timed out");
            Err(storage_unavailable())
        }
    }
}

/// Maps a tenant-store failure: damaged or undecryptable records are our fault (`500`),
/// Redis trouble is temporary (`503`), invalid input is the caller's (`422`).
pub(crate) fn tenant_error(e: TenantError) -> AdminError {
    match e {
        TenantError::Invalid(problems) => AdminError::Invalid(problems),
        TenantError::Crypto(_) | TenantError::Corrupt(_) => {
            tracing::error!(error = %e, "admin: stored tenant cannot be read");
            AdminError::Api(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "tenant_unreadable",
                "the stored tenant cannot be read (was the encryption key changed?)",
            ))
        }
        TenantError::Pool(_) | TenantError::Redis(_) => {
            tracing::error!(error = %e, "admin: tenant storage error");
            AdminError::Api(storage_unavailable())
        }
    }
}

/// Wakes a tenant's waiting jobs after an operator changed what they waited for
/// (credentials, settings, a block, dead jobs put back): they run now instead of at
/// their re-check time. The change itself is already stored, so a failure here is only
/// logged: the jobs then run at their re-check time as before.
pub(crate) async fn wake_tenant(state: &AppState, tenant: &crate::tenants::TenantId) {
    match tokio::time::timeout(state.redis_timeout, state.queue.wake_waiting(tenant)).await {
        Ok(Ok(n)) => tracing::info!(%tenant, woken = n, "tenant woken"),
        Ok(Err(e)) => tracing::warn!(%tenant, error = %e, "cannot wake the tenant's jobs"),
        Err(_) => tracing::warn!(%tenant, "waking the tenant's jobs timed out"),
    }
    if let Some(w) = &state.worker_wake {
        w.notify_one();
    }
}

/// Job ids become Redis keys: anything outside the tenant ids' safe alphabet is unknown.
pub(crate) fn valid_id(id: &str) -> bool {
    crate::tenants::TenantId::is_valid(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("x"))
    }

    #[test]
    fn bearer_tokens_match_exactly_and_empty_tokens_never() {
        let tokens = vec![
            SecretString::from("first-token"),
            SecretString::from(""),
            SecretString::from("second-token"),
        ];
        assert!(authorized(&tokens, Some(&h("Bearer first-token"))));
        assert!(authorized(&tokens, Some(&h("bearer second-token"))));
        assert!(!authorized(&tokens, Some(&h("Bearer first-toke"))));
        assert!(!authorized(&tokens, Some(&h("Bearer first-token2"))));
        assert!(!authorized(&tokens, Some(&h("Basic first-token"))));
        assert!(!authorized(&tokens, Some(&h("Bearer "))));
        assert!(!authorized(&tokens, Some(&h("first-token"))));
        assert!(!authorized(&tokens, None));
        assert!(!authorized(&[], Some(&h("Bearer first-token"))));
    }
}
