//! `POST /webhooks/{platform}/{tenant}`: verify, parse, enqueue, answer.
//!
//! Guarantee: `202` only after the event is stored in Redis (with its dedupe key, in
//! one atomic step); any Redis problem answers `503` so the shop retries. A rejected
//! request stores nothing. Only [`webshop::verify`] turns the raw body into something
//! [`webshop::parse`] accepts, so no path skips the signature. What a delivery does and
//! its dedupe key come from the signed body only (unsigned headers merely route and must
//! agree with it: see `docs/webhooks-intake.md`). Every error names its field (JSON path,
//! header or URL segment) and neither the answer nor the log repeats a submitted value.

use std::str::FromStr;

use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;
use tracing::Instrument;

use crate::http::{ApiError, AppState};
use crate::jobs::Job;
use crate::metrics::WEBHOOKS;
use crate::tenants::TenantId;
use crate::webshop::{self, Intake, Platform};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/{platform}/{tenant}", web::post().to(receive));
}

fn reject(
    platform: &str,
    status: StatusCode,
    code: &'static str,
    message: String,
    field: String,
) -> ApiError {
    WEBHOOKS.with_label_values(&[platform, "rejected"]).inc();
    ApiError::new(status, code, message).with_field(field)
}

async fn receive(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let (platform_name, tenant_id) = path.into_inner();
    // The dedupe key is not logged: it holds text of the body (the sender's message id,
    // a modification time); the job id leads to it through the admin API.
    let request_id = req
        .extensions()
        .get::<crate::http::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "webhook",
        request_id = %request_id,
        platform = %platform_name,
        tenant = %tenant_id,
        job_id = tracing::field::Empty
    );
    let mut res = receive_inner(req, platform_name, tenant_id, body, state, started)
        .instrument(span)
        .await?;
    res.extensions_mut().insert(crate::http::LoggedByHandler);
    Ok(res)
}

async fn receive_inner(
    req: HttpRequest,
    platform_name: String,
    tenant_id: String,
    body: web::Bytes,
    state: web::Data<AppState>,
    started: std::time::Instant,
) -> Result<HttpResponse, ApiError> {
    let Ok(platform) = Platform::from_str(&platform_name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_platform",
            format!(
                "unknown platform: expected one of {}",
                Platform::ALL.map(Platform::as_str).join(", ")
            ),
        )
        .with_field("path.platform"));
    };
    let p = platform.as_str();
    let Ok(tenant_id) = TenantId::parse(tenant_id) else {
        return Err(reject(
            p,
            StatusCode::NOT_FOUND,
            "unknown_tenant",
            "unknown tenant".into(),
            "path.tenant".into(),
        ));
    };
    let tenant = match tokio::time::timeout(
        state.redis_timeout,
        state.tenants.intake(&tenant_id, platform),
    )
    .await
    {
        Ok(Ok(Some(t))) => t,
        Ok(Ok(None)) => {
            return Err(reject(
                p,
                StatusCode::NOT_FOUND,
                "unknown_tenant",
                "unknown tenant".into(),
                "path.tenant".into(),
            ))
        }
        Ok(Err(e)) => {
            crate::queue::outage::REDIS.failed("reading a tenant", &e);
            return Err(ApiError::unavailable("storage unavailable, retry later"));
        }
        Err(_) => return Err(ApiError::unavailable("storage unavailable, retry later")),
    };
    // Before the ping: a hook whose secret is missing must fail when it is created,
    // not be pinged "ok" and then refuse every delivery until the shop disables it.
    let Some(secret) = &tenant.secret else {
        return Err(reject(
            p,
            StatusCode::NOT_FOUND,
            "platform_not_configured",
            format!("the tenant has no {p} webhook secret configured"),
            "path.platform".into(),
        ));
    };
    // WooCommerce checks a new hook with an unsigned ping and wants exactly 200.
    if platform == Platform::WooCommerce && webshop::is_woocommerce_ping(req.headers(), &body) {
        tracing::info!("woocommerce ping");
        return Ok(HttpResponse::Ok().json(json!({"status": "ok"})));
    }
    let verified = webshop::verify(
        platform,
        secret,
        req.headers(),
        &body,
        Utc::now(),
        state.signature_tolerance,
    )
    .map_err(|e| webshop_error(platform, e))?;
    let incoming = match webshop::parse(&verified, req.headers(), &tenant.parse)
        .map_err(|e| webshop_error(platform, e))?
    {
        Intake::Ignored { topic } => {
            WEBHOOKS.with_label_values(&[p, "ignored"]).inc();
            // The topic is caller text: neither logged nor answered.
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(
                status = 200,
                ms,
                topic_len = topic.len(),
                "topic not booked; acknowledged"
            );
            return Ok(HttpResponse::Ok().json(json!({"status": "ignored"})));
        }
        Intake::Event(incoming) => incoming,
    };
    let topic = incoming.topic.clone();
    let kind = incoming.event.kind().as_str();
    let dedupe = incoming.dedupe_key.clone();
    let delivered = crate::reconcile::delivered(&incoming.event);
    let job = Job::ShopEventV1 {
        received_at: Utc::now(),
        incoming,
    };
    let payload = job.to_payload().map_err(|e| {
        tracing::error!(error = %e, "cannot serialise job");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })?;
    // The reconciliation's "seen" marker is raised in the enqueue's own script.
    let mark = delivered.as_ref().map(|d| d.mark());
    let enqueued = match tokio::time::timeout(
        state.redis_timeout,
        state
            .queue
            .enqueue_marked(&tenant_id, Some(&dedupe), &payload, None, mark.as_ref()),
    )
    .await
    {
        Ok(Ok(e)) => {
            crate::queue::outage::REDIS.ok();
            e
        }
        Ok(Err(e)) => {
            crate::queue::outage::REDIS.failed("storing a webhook", &e);
            return Err(ApiError::unavailable("storage unavailable, retry later"));
        }
        Err(_) => {
            crate::queue::outage::REDIS.failed("storing a webhook", &"timed out");
            return Err(ApiError::unavailable("storage unavailable, retry later"));
        }
    };
    tracing::Span::current().record("job_id", enqueued.id.as_str());
    if enqueued.created {
        WEBHOOKS.with_label_values(&[p, "accepted"]).inc();
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(status = 202, ms, %topic, kind, "webhook accepted");
        if let Some(w) = &state.worker_wake {
            w.notify_one();
        }
    } else {
        WEBHOOKS.with_label_values(&[p, "duplicate"]).inc();
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(status = 202, ms, %topic, "duplicate delivery; existing job kept");
    }
    Ok(HttpResponse::Accepted().json(json!({
        "status": if enqueued.created { "accepted" } else { "duplicate" },
        "job_id": enqueued.id,
        "duplicate": !enqueued.created,
        "event": kind,
        "topic": topic,
    })))
}

/// The header a platform's signature arrives in (what a `bad_signature` is about).
fn signature_header(platform: Platform) -> &'static str {
    match platform {
        Platform::WooCommerce => webshop::woocommerce::SIGNATURE_HEADER,
        Platform::Shopify => webshop::shopify::SIGNATURE_HEADERS[0],
        Platform::Generic => webshop::signature::STD_SIGNATURE_HEADER,
    }
}

/// The answer to a refused webhook. [`webshop::WebshopError`] messages name paths and
/// headers, never values, so they can be logged and answered as they are.
fn webshop_error(platform: Platform, e: webshop::WebshopError) -> ApiError {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    if status.is_server_error() {
        tracing::error!(error = %e, "webhook cannot be processed (fix the tenant's webhook secret)");
        return ApiError::new(status, e.code(), "internal error");
    }
    let field = e
        .field()
        .unwrap_or_else(|| format!("headers.{}", signature_header(platform)));
    tracing::warn!(error = %e, code = e.code(), %field, "webhook rejected");
    reject(platform.as_str(), status, e.code(), e.to_string(), field)
}
