//! Prometheus metrics. Counters are process-wide statics (one registry per process, as
//! Prometheus expects); queue gauges are read from Redis at scrape time, so every
//! instance reports the same shared queue.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::queue::Queue;

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

pub(crate) fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    REGISTRY
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("register {name}: {e}"));
    c
}

/// Webhooks received, by platform and outcome (accepted, duplicate, ignored, ping, rejected_*).
pub static WEBHOOKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "mmc_webhooks_received_total",
        "Webhooks received, by platform and outcome",
        &["platform", "outcome"],
    )
});

/// Job attempts ended, by outcome (done, retry, wait, dead, lease_lost).
pub static JOBS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "mmc_jobs_total",
        "Job attempts ended, by outcome",
        &["outcome"],
    )
});

/// Jobs handed out again because their worker stopped renewing the lease.
pub static JOBS_RECLAIMED: LazyLock<IntCounter> = LazyLock::new(|| {
    let c = IntCounter::new(
        "mmc_jobs_reclaimed_total",
        "Jobs handed out again after their lease expired",
    )
    .unwrap_or_else(|e| panic!("metric: {e}"));
    REGISTRY
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("register: {e}"));
    c
});

/// Minimax API calls, by HTTP status (or `error` for transport failures).
pub static MINIMAX_CALLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "mmc_minimax_calls_total",
        "Minimax API calls made, by status",
        &["status"],
    )
});

/// Minimax token requests, by outcome (ok, rejected, error).
pub static TOKEN_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "mmc_minimax_token_requests_total",
        "Minimax OAuth2 token requests, by outcome",
        &["outcome"],
    )
});

/// Time spent on a job attempt.
pub static JOB_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    let h = Histogram::with_opts(HistogramOpts::new(
        "mmc_job_duration_seconds",
        "Duration of job attempts",
    ))
    .unwrap_or_else(|e| panic!("metric: {e}"));
    REGISTRY
        .register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("register: {e}"));
    h
});

static QUEUE_GAUGES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let g = IntGaugeVec::new(
        Opts::new("mmc_queue_jobs", "Jobs in the shared queue, by state"),
        &["state"],
    )
    .unwrap_or_else(|e| panic!("metric: {e}"));
    REGISTRY
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("register: {e}"));
    g
});

static OLDEST_AGE: LazyLock<prometheus::IntGauge> = LazyLock::new(|| {
    let g = prometheus::IntGauge::new(
        "mmc_queue_oldest_job_age_seconds",
        "Age of the oldest job waiting for a worker",
    )
    .unwrap_or_else(|e| panic!("metric: {e}"));
    REGISTRY
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("register: {e}"));
    g
});

static TENANT_BLOCKED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let g = IntGaugeVec::new(
        Opts::new(
            "mmc_tenant_credentials_blocked",
            "1 while a tenant's Minimax credentials are blocked after a rejected login",
        ),
        &["tenant"],
    )
    .unwrap_or_else(|e| panic!("metric: {e}"));
    REGISTRY
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("register: {e}"));
    g
});

static BUDGET_USED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let g = IntGaugeVec::new(
        Opts::new(
            "mmc_minimax_budget_used",
            "Minimax calls used by a tenant's organisation, by window (24h, month)",
        ),
        &["tenant", "window"],
    )
    .unwrap_or_else(|e| panic!("metric: {e}"));
    REGISTRY
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("register: {e}"));
    g
});

/// Circuit breaker changes of state seen by this process, by the state entered.
pub static CIRCUIT_TRANSITIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "mmc_minimax_circuit_transitions_total",
        "Changes of state of the per-organisation Minimax circuit breaker, by state entered",
        &["state"],
    )
});

static CIRCUIT_STATE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let g = IntGaugeVec::new(
        Opts::new(
            "mmc_minimax_circuit",
            "1 for the state (closed, open, half_open) of a tenant's organisation's Minimax circuit breaker",
        ),
        &["tenant", "state"],
    )
    .unwrap_or_else(|e| panic!("metric: {e}"));
    REGISTRY
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("register: {e}"));
    g
});

/// Refreshes the per-tenant gauges (blocked credentials, budget used, circuit) from Redis.
pub async fn refresh_tenants(
    tenants: &crate::tenants::TenantStore,
    minimax: &crate::minimax::Minimax,
) {
    let Ok(ids) = tenants.list().await else {
        return;
    };
    TENANT_BLOCKED.reset();
    BUDGET_USED.reset();
    CIRCUIT_STATE.reset();
    for id in ids {
        let Ok(Some(t)) = tenants.get(&id).await else {
            continue;
        };
        let blocked = matches!(
            minimax.auth_state(&t.credentials()).await,
            crate::minimax::AuthState::Blocked { .. }
        );
        TENANT_BLOCKED
            .with_label_values(&[&id])
            .set(i64::from(blocked));
        if let Ok(u) = minimax.usage(t.organisation_id).await {
            BUDGET_USED
                .with_label_values(&[&id, "24h"])
                .set(i64::try_from(u.last_24h).unwrap_or(i64::MAX));
            BUDGET_USED
                .with_label_values(&[&id, "month"])
                .set(i64::try_from(u.this_month).unwrap_or(i64::MAX));
        }
        if let Ok(c) = minimax.circuit(t.organisation_id).await {
            for state in crate::minimax::CircuitState::ALL {
                CIRCUIT_STATE
                    .with_label_values(&[&id, state.as_str()])
                    .set(i64::from(state == c.state));
            }
        }
    }
}

/// Touches every metric so that all series exist (at zero) from the start.
pub fn init() {
    for platform in crate::webshop::Platform::ALL.map(crate::webshop::Platform::as_str) {
        for outcome in ["accepted", "duplicate", "ignored", "rejected"] {
            WEBHOOKS.with_label_values(&[platform, outcome]);
        }
    }
    for outcome in ["done", "retry", "wait", "dead", "lease_lost"] {
        JOBS.with_label_values(&[outcome]);
    }
    for status in [
        "200", "201", "400", "401", "404", "409", "429", "500", "error",
    ] {
        MINIMAX_CALLS.with_label_values(&[status]);
    }
    for outcome in ["ok", "rejected", "error"] {
        TOKEN_REQUESTS.with_label_values(&[outcome]);
    }
    LazyLock::force(&JOBS_RECLAIMED);
    LazyLock::force(&MINIMAX_CALLS);
    LazyLock::force(&TOKEN_REQUESTS);
    LazyLock::force(&JOB_SECONDS);
    LazyLock::force(&QUEUE_GAUGES);
    LazyLock::force(&OLDEST_AGE);
    LazyLock::force(&TENANT_BLOCKED);
    LazyLock::force(&BUDGET_USED);
    for state in crate::minimax::CircuitState::ALL {
        CIRCUIT_TRANSITIONS.with_label_values(&[state.as_str()]);
    }
    LazyLock::force(&CIRCUIT_STATE);
}

/// Refreshes the queue gauges from Redis, then renders everything in the text format.
/// A Redis failure leaves the gauges at their last values; counters are still served.
pub async fn render(queue: &Queue) -> String {
    init();
    if let Ok(tenants) = queue.tenants().await {
        let (mut queued, mut running, mut delayed, mut dead) = (0i64, 0i64, 0i64, 0i64);
        let mut oldest = 0u64;
        let mut ok = true;
        for t in tenants {
            match queue.counts(&t).await {
                Ok(c) => {
                    queued += c.queued as i64;
                    running += c.running as i64;
                    delayed += c.delayed as i64;
                    dead += c.dead as i64;
                    oldest = oldest.max(c.oldest_queued_age_secs.unwrap_or(0));
                }
                Err(_) => ok = false,
            }
        }
        if ok {
            QUEUE_GAUGES.with_label_values(&["queued"]).set(queued);
            QUEUE_GAUGES.with_label_values(&["running"]).set(running);
            QUEUE_GAUGES.with_label_values(&["delayed"]).set(delayed);
            QUEUE_GAUGES.with_label_values(&["dead"]).set(dead);
            OLDEST_AGE.set(oldest as i64);
        }
    }
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    if encoder.encode(&REGISTRY.gather(), &mut buf).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// Renders the current values without asking Redis.
pub fn render_counters_only() -> String {
    init();
    let mut buf = Vec::new();
    if TextEncoder::new()
        .encode(&REGISTRY.gather(), &mut buf)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}
