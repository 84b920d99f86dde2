//! Liveness, readiness and metrics endpoints for orchestrators and Prometheus.
//!
//! `/health/live` only says the process answers. `/health/ready` says this instance
//! can do its job now: Redis answers within the configured timeout and, where this
//! process runs workers, the worker loop has turned recently. Neither needs a restart
//! to recover: each request checks afresh. A change of readiness is logged once (WARN
//! when it turns 503, INFO when it is back), not once per probe. `/metrics` names tenants
//! in its labels: it can require a bearer token (`metrics.token`) and be moved to an
//! address of its own (`metrics.listen`); by default it is open on the main address.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::http::AppState;
use crate::queue::now_ms;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Whether the last readiness answer of this process was 503.
static NOT_READY: AtomicBool = AtomicBool::new(false);

pub(crate) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let timeout = state.redis_timeout;
    let redis = match tokio::time::timeout(timeout, state.queue.ping()).await {
        Ok(Ok(())) => {
            crate::queue::outage::REDIS.ok();
            Ok(())
        }
        Ok(Err(e)) => Err(format!("redis: {e}")),
        Err(_) => Err(format!(
            "redis: no answer within {} ms",
            timeout.as_millis()
        )),
    };
    if let Err(e) = &redis {
        crate::queue::outage::REDIS.failed("readiness check", e);
    }
    let workers = match &state.worker_heartbeat {
        None => Ok("not run by this instance"),
        Some(hb) => {
            // The dispatcher turns at least every poll interval (or after a Redis
            // error backoff); a much older heartbeat means it is stuck or gone.
            let age = now_ms() - hb.load(Ordering::Relaxed);
            let limit = (state.worker_poll * 8).max(Duration::from_secs(10));
            if age <= limit.as_millis() as i64 {
                Ok("ok")
            } else {
                Err(format!("workers: last seen {age} ms ago"))
            }
        }
    };
    match (redis, workers) {
        (Ok(()), Ok(w)) => {
            if NOT_READY.swap(false, Ordering::Relaxed) {
                tracing::info!("ready again");
            }
            HttpResponse::Ok().json(json!({"status": "ready", "redis": "ok", "workers": w}))
        }
        (r, w) => {
            let reasons: Vec<String> = [r.err(), w.err()].into_iter().flatten().collect();
            if !NOT_READY.swap(true, Ordering::Relaxed) {
                tracing::warn!(reasons = %reasons.join("; "), "not ready");
            }
            HttpResponse::ServiceUnavailable().json(json!({
                "status": "unavailable",
                "error": "not_ready",
                "message": reasons.join("; "),
                "reasons": reasons,
            }))
        }
    }
}

async fn metrics(req: actix_web::HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(token) = &state.metrics_token {
        let header = req.headers().get(actix_web::http::header::AUTHORIZATION);
        if !crate::http::admin::authorized(std::slice::from_ref(token), header) {
            return HttpResponse::Unauthorized()
                .insert_header((
                    actix_web::http::header::WWW_AUTHENTICATE,
                    "Bearer realm=\"metrics\"",
                ))
                .json(json!({
                    "error": "unauthorized",
                    "message": "a metrics bearer token is required (Authorization: Bearer <token>)",
                    "field": "headers.authorization",
                }));
        }
    }
    let refreshed = super::scrape::gather(&state.queue, &state.tenants, &state.minimax);
    let body = match tokio::time::timeout(state.redis_timeout, refreshed).await {
        Ok(body) => body,
        Err(_) => {
            // Serve the counters even when the queue gauges cannot be refreshed.
            crate::metrics::render()
        }
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}
