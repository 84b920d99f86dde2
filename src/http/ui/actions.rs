//! The dashboard's state changes (all `POST`, CSRF-checked by the `/ui` guard before
//! they get here): connection check, unblock, payment-method mapping, retry, discard,
//! retry all dead.
//!
//! Each runs the admin API's own handler in process, so validation, logging, the
//! queue's atomic scripts and worker wake-ups are the same as over `/admin`. Success
//! answers `303` back to the page the change shows on.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::html::url_part;
use super::pages::{admin_ok, tenant_page, Ctx};
use super::UiError;
use crate::http::admin;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/tenants/{id}/check", web::post().to(check))
        .route("/tenants/{id}/unblock", web::post().to(unblock))
        .route(
            "/tenants/{id}/payment-methods",
            web::post().to(payment_method),
        )
        .route("/tenants/{id}/jobs/retry-dead", web::post().to(retry_dead))
        .route("/tenants/{id}/jobs/{job}/retry", web::post().to(retry))
        .route("/tenants/{id}/jobs/{job}/discard", web::post().to(discard));
}

fn back(to: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

async fn check(ctx: Ctx, path: web::Path<String>) -> Result<HttpResponse, UiError> {
    let id = path.into_inner();
    let notice = match admin_ok(admin::tenants::check(
        web::Path::from(id.clone()),
        ctx.state.clone(),
    ))
    .await
    {
        Ok(r) if r["ok"].as_bool() == Some(true) => format!(
            "Connection OK: organisation {} ({}) answered in {} ms.",
            r["organisation"]["id"],
            r["organisation"]["name"].as_str().unwrap_or("unnamed"),
            r["duration_ms"]
        ),
        Ok(r) => format!(
            "Connection failed ({}): {}",
            r["error"]["kind"].as_str().unwrap_or("error"),
            r["error"]["message"].as_str().unwrap_or("")
        ),
        Err(UiError::Conflict(m)) => format!("Not checked: {m}"),
        Err(e) => return Err(e),
    };
    tenant_page(&ctx, &id, Some(notice)).await
}

async fn unblock(ctx: Ctx, path: web::Path<String>) -> Result<HttpResponse, UiError> {
    let id = path.into_inner();
    admin_ok(admin::tenants::unblock(
        web::Path::from(id.clone()),
        ctx.state.clone(),
    ))
    .await?;
    Ok(back(format!("/ui/tenants/{}", url_part(&id))))
}

#[derive(Deserialize)]
struct MappingForm {
    gateway: String,
    method: String,
}

async fn payment_method(
    ctx: Ctx,
    path: web::Path<String>,
    form: web::Form<MappingForm>,
) -> Result<HttpResponse, UiError> {
    let id = path.into_inner();
    let (gateway, method) = (form.gateway.trim(), form.method.trim());
    if gateway.is_empty() || method.is_empty() {
        return Err(UiError::Invalid(
            "both the shop gateway id and the Minimax payment method are needed".into(),
        ));
    }
    // A merge patch adds this one entry and keeps the other mappings.
    let patch = json!({"settings": {"payment_methods": {gateway: method}}});
    admin_ok(admin::tenants::patch(
        web::Path::from(id.clone()),
        web::Bytes::from(patch.to_string()),
        ctx.state.clone(),
    ))
    .await?;
    Ok(back(format!("/ui/tenants/{}", url_part(&id))))
}

async fn retry(ctx: Ctx, path: web::Path<(String, String)>) -> Result<HttpResponse, UiError> {
    let (id, job) = path.into_inner();
    admin_ok(admin::jobs::retry(
        web::Path::from((id.clone(), job.clone())),
        ctx.state.clone(),
    ))
    .await?;
    Ok(back(format!(
        "/ui/tenants/{}/jobs/{}",
        url_part(&id),
        url_part(&job)
    )))
}

async fn discard(ctx: Ctx, path: web::Path<(String, String)>) -> Result<HttpResponse, UiError> {
    let (id, job) = path.into_inner();
    admin_ok(admin::jobs::discard(
        web::Path::from((id.clone(), job)),
        ctx.state.clone(),
    ))
    .await?;
    Ok(back(format!("/ui/tenants/{}/jobs", url_part(&id))))
}

async fn retry_dead(ctx: Ctx, path: web::Path<String>) -> Result<HttpResponse, UiError> {
    let id = path.into_inner();
    admin_ok(admin::jobs::retry_dead(
        web::Path::from(id.clone()),
        ctx.state.clone(),
    ))
    .await?;
    Ok(back(format!("/ui/tenants/{}/jobs", url_part(&id))))
}
