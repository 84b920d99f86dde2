//! `/admin/tenants/{id}/jobs…`: list a tenant's jobs by state, inspect one with its
//! attempt history, retry one, retry all dead ones, discard one.
//!
//! Guarantees:
//! - every operation is confined to the tenant in the path (the queue keys carry it),
//!   so retrying or discarding can never touch another tenant's jobs;
//! - jobs stay reachable after their tenant was deleted, so an operator can still
//!   inspect or discard them;
//! - a job's event is shown as a summary an operator needs to find the order (kind,
//!   topic, shop order id and number, status, totals, currency, line count): no names,
//!   e-mail addresses, postal addresses or phone numbers;
//! - state changes go through the queue's atomic scripts: only dead or delayed jobs can
//!   be retried, and a running job cannot be discarded (`409` otherwise).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::Instrument;

use super::{storage, valid_id, AdminError};
use crate::http::{ApiError, AppState};
pub use crate::jobs::{summarize, EventSummary};
use crate::queue::{Attempt, JobRecord, JobState};
use crate::tenants::TenantId;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/tenants/{id}/jobs").route(web::get().to(list)))
        .service(web::resource("/tenants/{id}/jobs/retry-dead").route(web::post().to(retry_dead)))
        .service(
            web::resource("/tenants/{id}/jobs/{job_id}")
                .route(web::get().to(get))
                .route(web::delete().to(discard)),
        )
        .service(web::resource("/tenants/{id}/jobs/{job_id}/retry").route(web::post().to(retry)));
}

#[derive(Debug, Serialize)]
struct AttemptView {
    attempt: u32,
    started_at: DateTime<Utc>,
    duration_ms: u64,
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> Self {
        AttemptView {
            attempt: a.attempt,
            started_at: Utc
                .timestamp_millis_opt(a.started_at)
                .single()
                .unwrap_or_default(),
            duration_ms: a.duration_ms,
            outcome: a.outcome.clone(),
            message: a.error.clone(),
        }
    }
}

/// A job as listed; `full` adds the attempt history and the dedupe key.
fn job_json(j: &JobRecord, full: bool) -> Value {
    // A finished job whose payload was dropped (`queue.payload_retention`) shows the
    // summary it kept.
    let event = summarize(&j.payload)
        .and_then(|s| serde_json::to_value(s).ok())
        .or_else(|| j.summary.clone());
    let mut v = json!({
        "id": j.id,
        "tenant": j.tenant,
        "state": j.state,
        "attempts": j.attempts,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
        "next_attempt_at": j.next_attempt_at,
        "finished_at": j.finished_at,
        // A booked job's last error is history (it is in the attempts), not its state.
        "last_error": if j.state == JobState::Done { None } else { j.last_error.as_deref() },
        "result": j.result,
        "event": event,
    });
    if full {
        if event.is_none() {
            v["event_error"] = json!("the payload is not a job type this release knows");
        }
        v["dedupe_key"] = json!(j.dedupe_key);
        v["history"] = json!(j.history.iter().map(AttemptView::from).collect::<Vec<_>>());
    }
    v
}

fn unknown_job(job_id: &str) -> AdminError {
    let shown = if valid_id(job_id) {
        job_id
    } else {
        "(invalid id)"
    };
    AdminError::Api(ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_job",
        format!("no job {shown:?} for this tenant"),
    ))
}

fn bad_tenant() -> AdminError {
    AdminError::Api(ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_tenant",
        "unknown tenant (invalid id)",
    ))
}

fn parse_state(s: &str) -> Option<JobState> {
    s.parse().ok()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// One state, or `all` / absent for every state at once.
    pub state: Option<String>,
    /// Only the jobs of this shop order (its number or the shop's order id).
    pub order: Option<String>,
    pub offset: Option<usize>,
    pub limit: Option<usize>,
}

/// Every state, in the order an "all" listing concatenates them.
const ALL_STATES: [JobState; 5] = [
    JobState::Queued,
    JobState::Running,
    JobState::Delayed,
    JobState::Dead,
    JobState::Done,
];

/// How far back an order search looks in each state (it reads every payload).
pub const ORDER_SEARCH_DEPTH: usize = 1000;

fn count_of(counts: &crate::queue::Counts, s: JobState) -> u64 {
    match s {
        JobState::Queued => counts.queued,
        JobState::Running => counts.running,
        JobState::Delayed => counts.delayed,
        JobState::Done => counts.done,
        JobState::Dead => counts.dead,
    }
}

async fn read_jobs(
    state: &web::Data<AppState>,
    tenant: &TenantId,
    ids: Vec<String>,
) -> Result<Vec<JobRecord>, ApiError> {
    // A few reads in flight at once: fast for 500 jobs, polite to the pool.
    let records: Vec<Result<Option<JobRecord>, ApiError>> = futures::stream::iter(ids)
        .map(|id| {
            let state = state.clone();
            let tenant = tenant.clone();
            async move { storage(&state, "read job", state.queue.get(&tenant, &id)).await }
        })
        .buffered(8)
        .collect()
        .await;
    let mut jobs = Vec::with_capacity(records.len());
    for r in records {
        // A job that finished or was discarded between the two reads is left out.
        if let Some(j) = r? {
            jobs.push(j);
        }
    }
    Ok(jobs)
}

fn of_order(j: &JobRecord, order: &str) -> bool {
    summarize(&j.payload).is_some_and(|s| {
        [s.order_number, s.shop_order_id]
            .into_iter()
            .flatten()
            .any(|v| v.trim() == order)
    })
}

pub(crate) async fn list(
    path: web::Path<String>,
    query: web::Query<JobsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let tenant = TenantId::parse(path.into_inner()).map_err(|_| bad_tenant())?;
    let states: Vec<JobState> = match query.state.as_deref() {
        None | Some("all") => ALL_STATES.to_vec(),
        Some(s) => match parse_state(s) {
            Some(one) => vec![one],
            None => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "state: expected one of queued, running, delayed, done, dead or all",
                )
                .with_field("query.state")
                .into())
            }
        },
    };
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit: expected 1 to {MAX_LIMIT}"),
        )
        .with_field("query.limit")
        .into());
    }
    let order = query
        .order
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty());
    let counts = storage(&state, "counts", state.queue.counts(&tenant)).await?;
    let mut jobs = Vec::new();
    let total: u64;
    if let Some(order) = order {
        // No index by order: the newest jobs of each state are searched.
        let mut found = Vec::new();
        for s in &states {
            let n = count_of(&counts, *s) as usize;
            let from = n.saturating_sub(ORDER_SEARCH_DEPTH);
            let ids = storage(
                &state,
                "list jobs",
                state.queue.list(&tenant, *s, from, ORDER_SEARCH_DEPTH),
            )
            .await?;
            found.extend(
                read_jobs(&state, &tenant, ids)
                    .await?
                    .into_iter()
                    .filter(|j| of_order(j, order)),
            );
        }
        total = found.len() as u64;
        jobs.extend(found.into_iter().skip(offset).take(limit));
    } else {
        total = states.iter().map(|s| count_of(&counts, *s)).sum();
        // Pages run across the states in the order of `states`.
        let (mut skip, mut left) = (offset, limit);
        for s in &states {
            let n = count_of(&counts, *s) as usize;
            if skip >= n {
                skip -= n;
                continue;
            }
            let ids = storage(
                &state,
                "list jobs",
                state.queue.list(&tenant, *s, skip, left),
            )
            .await?;
            skip = 0;
            let got = read_jobs(&state, &tenant, ids).await?;
            left = left.saturating_sub(got.len());
            jobs.extend(got);
            if left == 0 {
                break;
            }
        }
    }
    let shown = if states.len() == 1 {
        json!(states[0])
    } else {
        json!("all")
    };
    let mut body = json!({
        "tenant": tenant,
        "state": shown,
        "offset": offset,
        "limit": limit,
        "total": total,
        "jobs": jobs.iter().map(|j| job_json(j, false)).collect::<Vec<_>>(),
    });
    if states.len() > 1 {
        body["counts"] = json!(counts);
    }
    if let Some(o) = order {
        body["order"] = json!(o);
    }
    Ok(HttpResponse::Ok().json(body))
}

pub(crate) async fn get(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let (tenant, job_id) = path.into_inner();
    let tenant = TenantId::parse(tenant).map_err(|_| bad_tenant())?;
    if !valid_id(&job_id) {
        return Err(unknown_job(&job_id));
    }
    match storage(&state, "read job", state.queue.get(&tenant, &job_id)).await? {
        Some(j) => Ok(HttpResponse::Ok().json(job_json(&j, true))),
        None => Err(unknown_job(&job_id)),
    }
}

pub(crate) async fn retry(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let (tenant, job_id) = path.into_inner();
    let tenant = TenantId::parse(tenant).map_err(|_| bad_tenant())?;
    if !valid_id(&job_id) {
        return Err(unknown_job(&job_id));
    }
    let span = tracing::info_span!("admin_job_retry", tenant = %tenant, job_id = %job_id);
    async move {
        let prev = storage(&state, "retry job", state.queue.retry(&tenant, &job_id)).await?;
        match prev {
            None => Err(unknown_job(&job_id)),
            Some(p @ (JobState::Dead | JobState::Delayed)) => {
                tracing::info!(previous = p.as_str(), "job put back in line by an operator");
                if let Some(w) = &state.worker_wake {
                    w.notify_one();
                }
                Ok(HttpResponse::Ok().json(json!({
                    "id": job_id,
                    "previous_state": p,
                    "state": JobState::Queued,
                })))
            }
            Some(p) => Err(AdminError::Api(ApiError::new(
                StatusCode::CONFLICT,
                "job_not_retryable",
                format!(
                    "the job is {}; only dead or delayed jobs can be retried",
                    p.as_str()
                ),
            ))),
        }
    }
    .instrument(span)
    .await
}

pub(crate) async fn retry_dead(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let tenant = TenantId::parse(path.into_inner()).map_err(|_| bad_tenant())?;
    let span = tracing::info_span!("admin_jobs_retry_dead", tenant = %tenant);
    async move {
        // Not under the per-call timeout: it walks all dead jobs in batches of 500.
        let n = state.queue.retry_all_dead(&tenant).await.map_err(|e| {
            tracing::error!(error = %e, "retrying dead jobs failed part way");
            super::storage_unavailable()
        })?;
        tracing::info!(retried = n, "dead jobs put back in line by an operator");
        super::wake_tenant(&state, &tenant).await;
        Ok(HttpResponse::Ok().json(json!({"tenant": tenant, "retried": n})))
    }
    .instrument(span)
    .await
}

pub(crate) async fn discard(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let (tenant, job_id) = path.into_inner();
    let tenant = TenantId::parse(tenant).map_err(|_| bad_tenant())?;
    if !valid_id(&job_id) {
        return Err(unknown_job(&job_id));
    }
    let span = tracing::info_span!("admin_job_discard", tenant = %tenant, job_id = %job_id);
    async move {
        match storage(&state, "discard job", state.queue.discard(&tenant, &job_id)).await? {
            None => Err(unknown_job(&job_id)),
            Some(JobState::Running) => Err(AdminError::Api(ApiError::new(
                StatusCode::CONFLICT,
                "job_running",
                "the job is running; retry the discard after its attempt ends",
            ))),
            Some(p) => {
                tracing::info!(previous = p.as_str(), "job discarded by an operator");
                Ok(HttpResponse::Ok().json(json!({
                    "id": job_id,
                    "previous_state": p,
                    "discarded": true,
                })))
            }
        }
    }
    .instrument(span)
    .await
}
