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

use std::collections::BTreeMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tracing::Instrument;

use super::{internal, storage, storage_unavailable, tenant_error, valid_id, AdminError};
use crate::http::{ApiError, AppState};
use crate::mapping::BookingSettings;
use crate::minimax::{AuthState, Country, MinimaxError};
use crate::queue::JobState;
use crate::tenants::{shown_key, MinimaxLoginInput, Tenant, TenantInput};
use crate::webshop::{from_value_with_path, reader::problem_of, ROOT_PATH};

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
        .service(web::resource("/tenants/{id}/resume").route(web::post().to(resume)));
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
    if !valid_id(id) {
        return Ok(None);
    }
    match tokio::time::timeout(state.redis_timeout, state.tenants.get(id)).await {
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

// ------------------------------------------------------------------ input parsing

/// Parses a request body that must be a JSON object: malformed JSON is `400`, any other
/// JSON value `422`. Errors name the path and never the text around it.
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, AdminError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut map)) => {
            map.values_mut().for_each(integral_numbers);
            Ok(map)
        }
        Ok(_) => Err(AdminError::Invalid(vec![format!(
            "{ROOT_PATH}: expected a JSON object"
        )])),
        Err(e) => {
            let p = problem_of(&e, body);
            Err(AdminError::Api(
                ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {p}"))
                    .with_field(p.path),
            ))
        }
    }
}

/// `1.0` and `1e3` are the integers 1 and 1000 (as JSON Schema counts them), so integer
/// fields accept them like the OpenAPI document says.
fn integral_numbers(v: &mut Value) {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(m) => m.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Checks one member's shape; a problem names its full path (`minimax.password`), never
/// the submitted value.
fn check_field<T: DeserializeOwned>(
    map: &Map<String, Value>,
    field: &str,
    required: bool,
    problems: &mut Vec<String>,
) {
    match map.get(field) {
        None if required => problems.push(format!("{field}: required")),
        None => {}
        Some(v) => {
            if let Err(p) = from_value_with_path::<T>(v) {
                let path = if p.path == ROOT_PATH {
                    field.to_owned()
                } else if p.path.starts_with('[') {
                    format!("{field}{}", p.path)
                } else {
                    format!("{field}.{}", p.path)
                };
                problems.push(format!("{path}: {}", p.reason));
            }
        }
    }
}

const TOP_LEVEL: [&str; 7] = [
    "id",
    "name",
    "country",
    "organisation_id",
    "minimax",
    "webhook_secrets",
    "settings",
];

/// Turns a JSON object into a [`TenantInput`], reporting every field whose shape is
/// wrong (serde alone stops at the first one and does not say which field it was).
fn tenant_input(map: Map<String, Value>) -> Result<TenantInput, AdminError> {
    let mut problems = Vec::new();
    for key in map.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            problems.push(format!(
                "{}: unknown field (expected one of {})",
                shown_key(key),
                TOP_LEVEL.join(", ")
            ));
        }
    }
    check_field::<Option<String>>(&map, "id", false, &mut problems);
    check_field::<Option<String>>(&map, "name", false, &mut problems);
    check_field::<Country>(&map, "country", true, &mut problems);
    check_field::<i64>(&map, "organisation_id", true, &mut problems);
    check_field::<MinimaxLoginInput>(&map, "minimax", true, &mut problems);
    check_field::<BTreeMap<String, Option<SecretString>>>(
        &map,
        "webhook_secrets",
        false,
        &mut problems,
    );
    check_field::<Option<BookingSettings>>(&map, "settings", false, &mut problems);
    // A binary float cannot carry a decimal amount exactly: fractions come as strings.
    for field in ["total_tolerance", "max_rounding_correction"] {
        let amount = map.get("settings").and_then(|s| s.get(field));
        if amount.is_some_and(|t| t.is_number() && !t.is_i64() && !t.is_u64()) {
            problems.push(format!(
                "settings.{field}: give a fraction as a string (\"0.05\"), not a JSON number"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(AdminError::Invalid(problems));
    }
    from_value_with_path(&Value::Object(map)).map_err(|p| AdminError::Invalid(vec![p.to_string()]))
}

/// RFC 7396 JSON merge patch: objects merge member by member, `null` removes a member,
/// anything else replaces. One extension for lists (RFC 7396 can only replace them):
/// `{"$add": [..]}` / `{"$remove": [..]}` in place of a list appends the values it does
/// not hold yet / removes values, so a list can grow without resending its defaults.
fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(members)
            if target.is_array()
                && !members.is_empty()
                && members
                    .iter()
                    .all(|(k, v)| (k == "$add" || k == "$remove") && v.is_array()) =>
        {
            if let Value::Array(list) = target {
                for (op, values) in members {
                    let Value::Array(values) = values else {
                        continue;
                    };
                    for v in values {
                        if op == "$remove" {
                            list.retain(|x| *x != v);
                        } else if !list.contains(&v) {
                            list.push(v);
                        }
                    }
                }
            }
        }
        Value::Object(members) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in members {
                    if v.is_null() {
                        t.remove(&k);
                    } else {
                        merge(t.entry(k).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other,
    }
}

/// The stored tenant as a merge-patch target: every field except the secrets, which
/// are not needed because [`TenantInput::into_tenant`] keeps what the input leaves out.
fn patch_base(t: &Tenant) -> Result<Value, AdminError> {
    let settings = serde_json::to_value(&t.settings).map_err(|e| {
        tracing::error!(error = %e, "cannot serialise booking settings");
        AdminError::Api(internal())
    })?;
    Ok(json!({
        "name": t.name,
        "country": t.country,
        "organisation_id": t.organisation_id,
        "minimax": {
            "username": t.minimax.username,
            "client_id": t.minimax.client_id,
            "api_base": t.minimax.api_base,
            "token_url": t.minimax.token_url,
        },
        "webhook_secrets": {},
        "settings": settings,
    }))
}

/// Gives `null` its merge-patch meaning (remove) for the secrets: the client secret
/// becomes an empty string (what the tenant input reads as "remove"), the webhook secrets
/// are taken out of the patch and returned with their `null`s intact (the tenant input
/// reads `null` as "remove", while [`merge`] would drop them); the password cannot be
/// removed. Returns whether the settings are to be reset, and the webhook secrets.
fn prepare_patch(
    patch: &mut Map<String, Value>,
    existing: &Tenant,
    problems: &mut Vec<String>,
) -> (bool, Option<Value>) {
    // Removing the name is going back to its default, the id.
    if let Some(v @ Value::Null) = patch.get_mut("name") {
        *v = Value::String(existing.id.clone());
    }
    match patch.get_mut("minimax") {
        Some(Value::Null) => problems.push("minimax: cannot be removed".into()),
        Some(Value::Object(m)) => {
            if m.get("password").is_some_and(Value::is_null) {
                problems.push("minimax.password: cannot be removed; send the new one".into());
            }
            if m.get("username").is_some_and(Value::is_null) {
                problems.push("minimax.username: cannot be removed; send the new one".into());
            }
            if let Some(v @ Value::Null) = m.get_mut("client_secret") {
                *v = Value::String(String::new());
            }
        }
        _ => {}
    }
    let secrets = match patch.remove("webhook_secrets") {
        Some(Value::Null) => Some(Value::Object(
            existing
                .webhook_secrets
                .keys()
                .map(|k| (k.clone(), Value::Null))
                .collect(),
        )),
        other => other,
    };
    (patch.get("settings").is_some_and(Value::is_null), secrets)
}

// ------------------------------------------------------------ credentials and blocks
//
// Blocks belong to a Minimax login (its fingerprint), not to a tenant: changed
// credentials are another login and start unblocked by themselves, while re-sending the
// same wrong password stays blocked. Only `unblock` lifts a block explicitly.

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

// ------------------------------------------------------------------------ handlers

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
        super::wake_tenant(&state, &id).await;
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
        super::wake_tenant(&state, &id).await;
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
    if !valid_id(&id) {
        return Err(unknown_tenant(&id));
    }
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

/// The newest finished job of the tenant, if one is still kept.
async fn last_booking(state: &AppState, id: &str, done: u64) -> Result<Value, ApiError> {
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
    super::wake_tenant(&state, &t.id).await;
    Ok(HttpResponse::Ok().json(json!({
        "tenant": t.id,
        "was_blocked": was_blocked,
        "credentials": {"state": "ok"},
    })))
}

/// Ends the organisation's `429` pause early and closes its circuit breaker, then wakes
/// the tenant's waiting jobs: for when the operator knows Minimax is back before the
/// pause or the next probe would find out.
async fn resume(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let t = load(&state, &path).await?;
    let usage = storage(&state, "usage", state.minimax.usage(t.organisation_id)).await?;
    let circuit = storage(&state, "circuit", state.minimax.circuit(t.organisation_id)).await?;
    storage(&state, "resume", state.minimax.resume(t.organisation_id)).await?;
    tracing::info!(tenant = %t.id, org = t.organisation_id, "organisation resumed by an operator");
    super::wake_tenant(&state, &t.id).await;
    Ok(HttpResponse::Ok().json(json!({
        "tenant": t.id,
        "organisation_id": t.organisation_id,
        "was_paused_until": usage.paused_until,
        "was_circuit": circuit.state,
    })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": 1, "s": {"x": 1, "y": 2}, "m": {"k": "v"}});
        merge(
            &mut doc,
            json!({"a": 2, "s": {"y": null, "z": 3}, "n": [1]}),
        );
        assert_eq!(
            doc,
            json!({"a": 2, "s": {"x": 1, "z": 3}, "m": {"k": "v"}, "n": [1]})
        );
    }

    #[test]
    fn merge_patch_can_add_to_and_remove_from_a_list() {
        let mut doc = json!({"keys": ["a", "b"], "o": {}});
        merge(
            &mut doc,
            json!({"keys": {"$add": ["c", "a"], "$remove": ["b"]}}),
        );
        assert_eq!(doc["keys"], json!(["a", "c"]));
        // Not a list: the object is an ordinary value.
        merge(&mut doc, json!({"o": {"$add": [1]}}));
        assert_eq!(doc["o"], json!({"$add": [1]}));
        // A plain list still replaces.
        merge(&mut doc, json!({"keys": ["z"]}));
        assert_eq!(doc["keys"], json!(["z"]));
    }

    #[test]
    fn type_errors_name_the_field_and_hide_the_value() {
        let body = json!({
            "country": "XX",
            "organisation_id": "not-a-number",
            "minimax": {"username": "u", "password": 12_345_678_987_i64},
            "bogus": 1,
        });
        let Err(AdminError::Invalid(p)) = tenant_input(body.as_object().unwrap().clone()) else {
            panic!("expected invalid");
        };
        let all = p.join("\n");
        assert!(all.contains("country: unknown variant"), "{all}");
        assert!(all.contains("minimax.password: expected"), "{all}");
        assert!(!all.contains("XX"), "{all}");
        assert!(all.contains("organisation_id:"), "{all}");
        assert!(all.contains("bogus: unknown field"), "{all}");
        assert!(!all.contains("12345678987"), "{all}");
        assert!(!all.contains("not-a-number"), "{all}");
    }

    #[test]
    fn integral_floats_count_as_integers() {
        let m =
            parse_object(br#"{"organisation_id": 149727468.0, "s": {"d": [3e2, 1.5]}}"#).unwrap();
        assert_eq!(m["organisation_id"], json!(149727468));
        assert_eq!(m["s"]["d"], json!([300, 1.5]));
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        match parse_object(b"{\"country\": ") {
            Err(AdminError::Api(e)) => assert_eq!(e.status, StatusCode::BAD_REQUEST),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(parse_object(b"[1]"), Err(AdminError::Invalid(_))));
    }
}
