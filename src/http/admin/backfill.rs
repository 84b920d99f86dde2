//! Admin routes of the shop API connection, the reconciliation poll and backfills:
//!
//! - `GET|PUT|DELETE /admin/tenants/{id}/shop` — the connection (secrets write-only);
//! - `POST /admin/tenants/{id}/shop/check` — one authenticated read of the shop's API;
//! - `GET /admin/tenants/{id}/shop/poll` — watermark, run in progress, last outcome;
//!   `POST` polls now (`409` while another instance polls the tenant);
//! - `POST|GET|DELETE /admin/tenants/{id}/backfill` — start (`{"since", "until",
//!   "dry_run"}`), progress and outcome, cancel.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::tenants::load;
use super::AdminError;
use crate::http::{ApiError, AppState};
use crate::reconcile::backfill::{self, BackfillRequest};
use crate::reconcile::{ReconcileError, Reconciler};
use crate::shop_api::{ShopApiError, ShopConnectionInput};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tenants/{id}/shop")
            .route(web::get().to(get_shop))
            .route(web::put().to(put_shop))
            .route(web::delete().to(delete_shop)),
    )
    .service(web::resource("/tenants/{id}/shop/check").route(web::post().to(check_shop)))
    .service(
        web::resource("/tenants/{id}/shop/poll")
            .route(web::get().to(poll_state))
            .route(web::post().to(poll_now)),
    )
    .service(
        web::resource("/tenants/{id}/backfill")
            .route(web::get().to(get_backfill))
            .route(web::post().to(start_backfill))
            .route(web::delete().to(cancel_backfill)),
    );
}

fn err(e: ReconcileError) -> AdminError {
    match e {
        ReconcileError::Shop(ShopApiError::Invalid(p)) => AdminError::Invalid(p),
        ReconcileError::Shop(
            e @ (ShopApiError::Unauthorized(_)
            | ShopApiError::RateLimited { .. }
            | ShopApiError::Status { .. }
            | ShopApiError::Unreachable(_)
            | ShopApiError::Malformed(_)),
        ) => ApiError::new(StatusCode::BAD_GATEWAY, "shop_api_error", e.to_string()).into(),
        ReconcileError::Busy => ApiError::new(
            StatusCode::CONFLICT,
            "busy",
            "another instance is polling or backfilling this tenant; try again shortly",
        )
        .into(),
        ReconcileError::NotConnected(t) => ApiError::new(
            StatusCode::CONFLICT,
            "no_shop_connection",
            format!("tenant {t:?} has no shop connection (PUT /admin/tenants/{t}/shop)"),
        )
        .into(),
        ReconcileError::Invalid(m) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", m).into()
        }
        other => {
            tracing::error!(error = %other, "admin shop route failed");
            ApiError::unavailable("storage unavailable, retry later").into()
        }
    }
}

fn reconciler(r: &Option<web::Data<Reconciler>>) -> Result<&Reconciler, AdminError> {
    r.as_ref().map(|d| d.get_ref()).ok_or_else(|| {
        ApiError::unavailable("reconciliation is not configured in this process").into()
    })
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")).into())
}

async fn get_shop(
    path: web::Path<String>,
    state: web::Data<AppState>,
    r: Option<web::Data<Reconciler>>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let r = reconciler(&r)?;
    match r.shops.get(&t.id).await.map_err(|e| err(e.into()))? {
        Some(c) => Ok(HttpResponse::Ok().json(c.view())),
        None => {
            Err(ApiError::not_found(format!("tenant {:?} has no shop connection", t.id)).into())
        }
    }
}

async fn put_shop(
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
    r: Option<web::Data<Reconciler>>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let r = reconciler(&r)?;
    let input: ShopConnectionInput = json_body(&body)?;
    let conn = input.into_connection().map_err(|e| err(e.into()))?;
    r.shops.put(&t.id, &conn).await.map_err(|e| err(e.into()))?;
    Ok(HttpResponse::Ok().json(conn.view()))
}

async fn delete_shop(
    path: web::Path<String>,
    state: web::Data<AppState>,
    r: Option<web::Data<Reconciler>>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let removed = reconciler(&r)?
        .shops
        .delete(&t.id)
        .await
        .map_err(|e| err(e.into()))?;
    Ok(HttpResponse::Ok().json(json!({"removed": removed})))
}

async fn check_shop(
    path: web::Path<String>,
    state: web::Data<AppState>,
    r: Option<web::Data<Reconciler>>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let r = reconciler(&r)?;
    let conn = r
        .shops
        .get(&t.id)
        .await
        .map_err(|e| err(e.into()))?
        .ok_or_else(|| err(ReconcileError::NotConnected(t.id.clone())))?;
    let client = r.client(conn);
    match client.check().await {
        Ok(v) => Ok(HttpResponse::Ok().json(v)),
        Err(e) => Ok(HttpResponse::Ok().json(json!({"ok": false, "error": e.to_string()}))),
    }
}

async fn poll_state(
    path: web::Path<String>,
    state: web::Data<AppState>,
    r: Option<web::Data<Reconciler>>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let s = reconciler(&r)?.state(&t.id).await.map_err(err)?;
    Ok(HttpResponse::Ok().json(s))
}

async fn poll_now(
    path: web::Path<String>,
    state: web::Data<AppState>,
    r: Option<web::Data<Reconciler>>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let out = reconciler(&r)?.poll_tenant(&t.id).await.map_err(err)?;
    Ok(HttpResponse::Ok().json(out))
}

async fn get_backfill(
    path: web::Path<String>,
    state: web::Data<AppState>,
    r: Option<web::Data<Reconciler>>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    match backfill::get(reconciler(&r)?, &t.id).await.map_err(err)? {
        Some(b) => Ok(HttpResponse::Ok().json(b)),
        None => Err(ApiError::not_found(format!("tenant {:?} has no backfill", t.id)).into()),
    }
}

async fn start_backfill(
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
    r: Option<web::Data<Reconciler>>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let req: BackfillRequest = json_body(&body)?;
    let b = backfill::start(reconciler(&r)?, &t.id, req)
        .await
        .map_err(err)?;
    Ok(HttpResponse::Accepted().json(b))
}

async fn cancel_backfill(
    path: web::Path<String>,
    state: web::Data<AppState>,
    r: Option<web::Data<Reconciler>>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    match backfill::cancel(reconciler(&r)?, &t.id)
        .await
        .map_err(err)?
    {
        Some(b) => Ok(HttpResponse::Ok().json(b)),
        None => Err(ApiError::not_found(format!("tenant {:?} has no backfill", t.id)).into()),
    }
}
