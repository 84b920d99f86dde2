//! A tenant's status and what acts on its Minimax login: the connection check, lifting a
//! credentials block (`unblock`), ending a pause or an open circuit early (`resume`).
//!
//! Blocks belong to a Minimax login (its fingerprint), not to a tenant: changed
//! credentials are another login and start unblocked by themselves, while re-sending the
//! same wrong password stays blocked. Only `unblock` lifts a block explicitly.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use tracing::Instrument;

use super::load;
use crate::http::admin::{storage, storage_unavailable, AdminError};
use crate::http::{ApiError, AppState};
use crate::minimax::{AuthState, MinimaxError};
use crate::queue::JobState;
use crate::tenants::TenantId;

fn auth_json(state: &AuthState) -> Value {
    match state {
        AuthState::Ok => json!({"state": "ok"}),
        AuthState::Blocked { reason, since } => {
            json!({"state": "blocked", "reason": reason, "since": since})
        }
    }
}

/// A stable word per failure, for dashboards and scripts.
pub fn error_kind(e: &MinimaxError) -> &'static str {
    match e {
        MinimaxError::Transient { .. } => "transient",
        MinimaxError::Unauthorized => "unauthorized",
        MinimaxError::CredentialsRejected { .. } => "credentials_rejected",
        MinimaxError::CredentialsBlocked { .. } => "credentials_blocked",
        MinimaxError::TenantPaused { .. } => "tenant_paused",
        MinimaxError::BudgetExhausted { .. } => "budget_exhausted",
        MinimaxError::CircuitOpen { .. } => "circuit_open",
        MinimaxError::Validation { .. } => "validation",
        MinimaxError::Concurrency { .. } => "concurrency",
        MinimaxError::NotFound { .. } => "not_found",
        MinimaxError::Unexpected { .. } => "unexpected",
        MinimaxError::Config(_) => "config",
        MinimaxError::Redis(_) => "storage",
    }
}

/// The newest finished job of the tenant, if one is still kept.
async fn last_booking(state: &AppState, id: &TenantId, done: u64) -> Result<Value, ApiError> {
    let Some(last) = done.checked_sub(1) else {
        return Ok(Value::Null);
    };
    let ids = storage(
        state,
        "list done",
        state.queue.list(id, JobState::Done, last as usize, 1),
    )
    .await?;
    let Some(job_id) = ids.into_iter().next() else {
        return Ok(Value::Null);
    };
    let job = storage(state, "read job", state.queue.get(id, &job_id)).await?;
    Ok(job.map_or(
        Value::Null,
        |j| json!({"job_id": j.id, "finished_at": j.finished_at, "result": j.result}),
    ))
}

fn remaining(limit: u32, used: u64) -> Value {
    if limit == 0 {
        Value::Null
    } else {
        json!(u64::from(limit).saturating_sub(used))
    }
}

pub(crate) async fn status(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let client = state.minimax.tenant(t.credentials());
    let auth = tokio::time::timeout(state.redis_timeout, client.auth_state())
        .await
        .map_err(|_| storage_unavailable())?;
    let usage = storage(&state, "usage", state.minimax.usage(t.organisation_id)).await?;
    let circuit = storage(&state, "circuit", state.minimax.circuit(t.organisation_id)).await?;
    let counts = storage(&state, "counts", state.queue.counts(&t.id)).await?;
    let last = last_booking(&state, &t.id, counts.done).await?;
    Ok(HttpResponse::Ok().json(json!({
        "tenant": t.id,
        "organisation_id": t.organisation_id,
        "credentials": auth_json(&auth),
        "budget": {
            "last_24h": usage.last_24h,
            "daily_limit": usage.daily_limit,
            "daily_remaining": remaining(usage.daily_limit, usage.last_24h),
            "this_month": usage.this_month,
            "monthly_limit": usage.monthly_limit,
            "monthly_remaining": remaining(usage.monthly_limit, usage.this_month),
            "paused_until": usage.paused_until,
        },
        "minimax_circuit": circuit,
        "jobs": counts,
        "last_booking": last,
    })))
}

pub(crate) async fn check(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let span = tracing::info_span!("admin_tenant_check", tenant = %t.id);
    async move {
        let client = state.minimax.tenant(t.credentials());
        let auth = tokio::time::timeout(state.redis_timeout, client.auth_state())
            .await
            .map_err(|_| storage_unavailable())?;
        if let AuthState::Blocked { reason, since } = auth {
            return Err(AdminError::Api(ApiError::new(
                StatusCode::CONFLICT,
                "credentials_blocked",
                format!(
                    "the credentials are blocked since {since} ({reason}); no token request is \
                     made with them. Change them (PUT/PATCH) or POST .../unblock, then check again"
                ),
            )));
        }
        let started = std::time::Instant::now();
        let result = client.my_organisations().await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let body = match result {
            Ok(orgs) => {
                let found = orgs.iter().find(|o| {
                    o.organisation.as_ref().and_then(|f| f.id) == Some(t.organisation_id)
                });
                match found {
                    Some(o) => json!({
                        "ok": true,
                        "organisation": {
                            "id": t.organisation_id,
                            "name": o.organisation.as_ref().and_then(|f| f.name.clone()),
                            "api_access": o.api_access,
                        },
                        "organisations_visible": orgs.len(),
                        "duration_ms": duration_ms,
                    }),
                    None => json!({
                        "ok": false,
                        "error": {
                            "kind": "organisation_not_accessible",
                            "message": format!(
                                "the login works but its user cannot access organisation {} \
                                 ({} organisation(s) visible)",
                                t.organisation_id,
                                orgs.len()
                            ),
                        },
                        "organisations_visible": orgs.len(),
                        "duration_ms": duration_ms,
                    }),
                }
            }
            // MinimaxError never carries a password, client secret or token.
            Err(e) => json!({
                "ok": false,
                "error": {"kind": error_kind(&e), "message": e.to_string()},
                "blocked": matches!(e, MinimaxError::CredentialsRejected { .. }),
                "duration_ms": duration_ms,
            }),
        };
        tracing::info!(ok = body["ok"].as_bool(), "connection checked");
        Ok(HttpResponse::Ok().json(body))
    }
    .instrument(span)
    .await
}

pub(crate) async fn unblock(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let client = state.minimax.tenant(t.credentials());
    let before = tokio::time::timeout(state.redis_timeout, client.auth_state())
        .await
        .map_err(|_| storage_unavailable())?;
    storage(&state, "clear block", client.clear_block()).await?;
    let was_blocked = matches!(before, AuthState::Blocked { .. });
    tracing::info!(tenant = %t.id, was_blocked, "credentials block lifted by an operator");
    crate::http::admin::wake_tenant(&state, &t.id).await;
    Ok(HttpResponse::Ok().json(json!({
        "tenant": t.id,
        "was_blocked": was_blocked,
        "credentials": {"state": "ok"},
    })))
}

/// Ends the organisation's `429` pause early and closes its circuit breaker, then wakes
/// the tenant's waiting jobs: for when the operator knows Minimax is back before the
/// pause or the next probe would find out.
pub(super) async fn resume(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let usage = storage(&state, "usage", state.minimax.usage(t.organisation_id)).await?;
    let circuit = storage(&state, "circuit", state.minimax.circuit(t.organisation_id)).await?;
    storage(&state, "resume", state.minimax.resume(t.organisation_id)).await?;
    tracing::info!(tenant = %t.id, org = t.organisation_id, "organisation resumed by an operator");
    crate::http::admin::wake_tenant(&state, &t.id).await;
    Ok(HttpResponse::Ok().json(json!({
        "tenant": t.id,
        "organisation_id": t.organisation_id,
        "was_paused_until": usage.paused_until,
        "was_circuit": circuit.state,
    })))
}
