//! `GET /openapi.json`: the OpenAPI 3.1 description of the public HTTP interface
//! (webhooks, health, admin).
//!
//! The document is written by hand in `docs/openapi.json` and compiled in, so the
//! served contract is exactly the reviewed file; `tests/it/admin.rs` checks that it parses
//! and names every route. (A derive-based generator was not used: it would add proc
//! macros to every build and spread the contract over handler attributes.)

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};

/// The document as served.
pub const OPENAPI_JSON: &str = include_str!("../../docs/openapi.json");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi));
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_json() {
        assert!(serde_json::from_str::<serde_json::Value>(super::OPENAPI_JSON).is_ok());
    }
}
