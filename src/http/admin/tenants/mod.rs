//! `/admin/tenants…`: create, read, list, patch and delete tenants; their status; a
//! connection check against Minimax; lifting a credentials block; ending a pause or an
//! open circuit early (`resume`).
//!
//! Guarantees:
//! - responses carry [`TenantView`](crate::tenants::TenantView)s: whether each secret is
//!   set, never its value; input errors never echo a submitted value;
//! - a secret left out of a `PUT` or `PATCH` keeps its stored value;
//! - a change of any credential (username, password, client id or secret, URLs,
//!   country) clears the tenant's credentials block, so the next booking makes exactly
//!   one token request with the new credentials; re-sending unchanged credentials does
//!   not (a config tool re-applying a wrong password must not cause a token call each
//!   time); `POST …/unblock` lifts a block explicitly (password re-created unchanged);
//! - the connection check never runs while the credentials are blocked (`409`), so it
//!   cannot add a failed login to a Minimax account; it makes one token request (only if
//!   no valid token is cached) and one organisation read;
//! - every change an operator makes here (PUT/PATCH, unblock, resume) wakes the tenant's
//!   waiting jobs at once instead of at their re-check time.
//!
//! The tenant record's handlers are here; `input` reads and checks bodies and applies
//! merge patches, `status` has the status, the connection check, unblock and resume.

mod input;
mod status;

pub use status::error_kind;
pub(crate) use status::{check, status, unblock};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;

use super::{internal, storage, storage_unavailable, tenant_error, valid_id, AdminError};
use crate::http::{ApiError, AppState};
use crate::mapping::BookingSettings;
use crate::tenants::{Tenant, TenantId};
use input::{merge, parse_object, patch_base, prepare_patch, tenant_input};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/tenants").route(web::get().to(list)))
        .service(
            web::resource("/tenants/{id}")
                .route(web::get().to(get))
                .route(web::put().to(put))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        )
        .service(web::resource("/tenants/{id}/status").route(web::get().to(status)))
        .service(web::resource("/tenants/{id}/check").route(web::post().to(check)))
        .service(web::resource("/tenants/{id}/unblock").route(web::post().to(unblock)))
        .service(web::resource("/tenants/{id}/resume").route(web::post().to(status::resume)));
}

fn unknown_tenant(id: &str) -> AdminError {
    // Only ids of the safe alphabet are echoed; others are not worth repeating.
    let shown = if valid_id(id) { id } else { "(invalid id)" };
    AdminError::Api(ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_tenant",
        format!("unknown tenant {shown:?}"),
    ))
}

/// The stored tenant, or `None`; invalid ids are simply unknown.
async fn find(state: &AppState, id: &str) -> Result<Option<Tenant>, AdminError> {
    let Ok(id) = TenantId::parse(id) else {
        return Ok(None);
    };
    match tokio::time::timeout(state.redis_timeout, state.tenants.get(&id)).await {
        Ok(r) => r.map_err(tenant_error),
        Err(_) => Err(storage_unavailable().into()),
    }
}

/// The stored tenant, or `404 unknown_tenant`.
pub(crate) async fn load(state: &AppState, id: &str) -> Result<Tenant, AdminError> {
    find(state, id).await?.ok_or_else(|| unknown_tenant(id))
}

/// Stores the tenant if nobody else changed it since `based_on` was read; a lost race
/// is `409 tenant_changed` (read it again, then retry), never a silent overwrite.
async fn save(
    state: &AppState,
    tenant: &Tenant,
    based_on: Option<&Tenant>,
) -> Result<bool, AdminError> {
    let write = state
        .tenants
        .put_if_unchanged(tenant, based_on.map(|t| t.updated_at));
    match tokio::time::timeout(state.redis_timeout, write).await {
        Ok(Ok(Some(created))) => Ok(created),
        Ok(Ok(None)) => Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "tenant_changed",
            "the tenant was changed by another request meanwhile; read it again and retry",
        )
        .into()),
        Ok(Err(e)) => Err(tenant_error(e)),
        Err(_) => Err(storage_unavailable().into()),
    }
}
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    pub offset: Option<usize>,
    pub limit: Option<usize>,
}

async fn list(
    query: web::Query<Paging>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(
            ApiError::bad_request("invalid_query", "limit: expected 1 to 500")
                .with_field("query.limit")
                .into(),
        );
    }
    let ids = storage(&state, "list tenants", state.tenants.list()).await?;
    let mut tenants = Vec::new();
    for id in ids.iter().skip(offset).take(limit) {
        // A tenant deleted between the two reads is simply left out.
        if let Some(t) = find(&state, id).await? {
            tenants.push(t.view());
        }
    }
    Ok(HttpResponse::Ok().json(json!({
        "total": ids.len(),
        "offset": offset,
        "limit": limit,
        "tenants": tenants,
    })))
}

async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    Ok(HttpResponse::Ok().json(t.view()))
}

async fn put(
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let span = tracing::info_span!("admin_tenant_put", tenant = %id);
    async move {
        let input = tenant_input(parse_object(&body)?)?;
        let existing = find(&state, &id).await?;
        let tenant = input
            .into_tenant(&id, existing.as_ref())
            .map_err(tenant_error)?;
        let created = save(&state, &tenant, existing.as_ref()).await?;
        tracing::info!(created, "tenant stored");
        super::wake_tenant(&state, &tenant.id).await;
        let mut res = if created {
            let mut r = HttpResponse::Created();
            r.insert_header((header::LOCATION, format!("/admin/tenants/{id}")));
            r
        } else {
            HttpResponse::Ok()
        };
        Ok(res.json(tenant.view()))
    }
    .instrument(span)
    .await
}

pub(crate) async fn patch(
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let span = tracing::info_span!("admin_tenant_patch", tenant = %id);
    async move {
        let mut changes = parse_object(&body)?;
        let existing = load(&state, &id).await?;
        let mut problems = Vec::new();
        let (reset_settings, secrets) = prepare_patch(&mut changes, &existing, &mut problems);
        if !problems.is_empty() {
            return Err(AdminError::Invalid(problems));
        }
        let mut doc = patch_base(&existing)?;
        merge(&mut doc, Value::Object(changes));
        let Value::Object(mut doc) = doc else {
            return Err(AdminError::Api(internal()));
        };
        if let Some(secrets) = secrets {
            doc.insert("webhook_secrets".into(), secrets);
        }
        if reset_settings {
            doc.insert(
                "settings".into(),
                serde_json::to_value(BookingSettings::default())
                    .map_err(|_| AdminError::Api(internal()))?,
            );
        }
        let input = tenant_input(doc)?;
        let tenant = input
            .into_tenant(&id, Some(&existing))
            .map_err(tenant_error)?;
        save(&state, &tenant, Some(&existing)).await?;
        tracing::info!("tenant patched");
        super::wake_tenant(&state, &tenant.id).await;
        Ok(HttpResponse::Ok().json(tenant.view()))
    }
    .instrument(span)
    .await
}

async fn delete(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let Ok(id) = TenantId::parse(id.as_str()) else {
        return Err(unknown_tenant(&id));
    };
    let span = tracing::info_span!("admin_tenant_delete", tenant = %id);
    async move {
        let existed = storage(&state, "delete tenant", state.tenants.delete(&id)).await?;
        if !existed {
            return Err(unknown_tenant(&id));
        }
        tracing::info!("tenant deleted (its jobs are kept)");
        Ok(HttpResponse::NoContent().finish())
    }
    .instrument(span)
    .await
}
