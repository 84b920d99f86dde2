//! JSON error bodies for every 4xx/5xx the service answers.
//!
//! Callers get `{"error": "<stable_code>", "message": "<what is wrong>", "field": "<where>"}`;
//! the code is part of the public API (plugins may branch on it), `field` names the JSON
//! path (`order.prices_include_tax`, `(body)`) or header (`headers.x-shopify-topic`) of
//! the problem when there is one, the message is for humans. None of them ever carries
//! a submitted value, a secret, a payload or internal details of 5xx causes.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error answer: status, stable code, human message, the field it concerns.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
    /// Names the JSON path or header the error is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((header::RETRY_AFTER, "5"));
        }
        res.json(ErrorBody {
            error: self.code.to_owned(),
            message: self.message.clone(),
            field: self.field.clone(),
        })
    }
}

fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "too_many_requests",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

/// A fixed message per status for actix's own errors: their texts may quote the request
/// (a query parameter's name or value), so none of them is passed on.
fn message_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "the request is malformed",
        404 => "no such route",
        405 => "method not allowed on this route",
        408 => "the request did not arrive in time",
        411 => "a Content-Length is required",
        413 => "the request body is too large",
        415 => "unsupported content type",
        s if s >= 500 => "internal error",
        _ => "the request was refused",
    }
}

/// What part of the request an actix error is about.
fn field_for(e: &actix_web::Error) -> Option<&'static str> {
    use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
    if e.as_error::<QueryPayloadError>().is_some() {
        Some("query")
    } else if e.as_error::<PathError>().is_some() {
        Some("path")
    } else if e.as_error::<PayloadError>().is_some() || e.as_error::<JsonPayloadError>().is_some() {
        Some(crate::webshop::ROOT_PATH)
    } else {
        None
    }
}

/// Rewrites error responses that are not JSON yet (actix's own 404/405/413, extractor
/// errors, a body that missed its deadline) into the JSON error body, with a fixed
/// message per status. A missed body deadline becomes `408` and closes the connection.
pub fn json_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // The dashboard's own error pages (`/ui`) are HTML and stay so.
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let mut status = res.status();
    let mut field = None;
    let mut close = false;
    if let Some(e) = res.response().error() {
        if crate::http::limits::is_body_timeout(e) {
            status = StatusCode::REQUEST_TIMEOUT;
            close = true;
        }
        field = field_for(e);
    }
    if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY {
        field = field.or(Some("(request)"));
    }
    let (req, _) = res.into_parts();
    let body = ErrorBody {
        error: code_for(status).to_owned(),
        message: message_for(status).to_owned(),
        field: field.map(str::to_owned),
    };
    let mut builder = HttpResponse::build(status);
    if close {
        builder.force_close();
    }
    let response = builder.json(body);
    let res = ServiceResponse::new(req, response).map_into_boxed_body();
    Ok(ErrorHandlerResponse::Response(res.map_into_right_body()))
}
