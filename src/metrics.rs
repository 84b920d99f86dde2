//! Prometheus metrics. Counters are process-wide statics (one registry per process, as
//! Prometheus expects); queue gauges are read from Redis at scrape time, so every
//! instance reports the same shared queue.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

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

/// Requests sent to Redis (a command, or a pipeline of them: one round trip each).
pub static REDIS_ROUND_TRIPS: LazyLock<IntCounter> = LazyLock::new(|| {
    let c = IntCounter::new(
        "mmc_redis_round_trips_total",
        "Requests sent to Redis (a command or a pipeline: one round trip each)",
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

pub(crate) static QUEUE_GAUGES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
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

pub(crate) static OLDEST_AGE: LazyLock<prometheus::IntGauge> = LazyLock::new(|| {
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

pub(crate) static TENANT_BLOCKED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
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

pub(crate) static BUDGET_USED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
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

/// The breaker's states as labels (`minimax::CircuitState::as_str`; a test checks they agree).
pub const CIRCUIT_STATES: [&str; 3] = ["closed", "open", "half_open"];

/// Circuit breaker changes of state seen by this process, by the state entered.
pub static CIRCUIT_TRANSITIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "mmc_minimax_circuit_transitions_total",
        "Changes of state of the per-organisation Minimax circuit breaker, by state entered",
        &["state"],
    )
});

pub(crate) static CIRCUIT_STATE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
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
    LazyLock::force(&REDIS_ROUND_TRIPS);
    LazyLock::force(&MINIMAX_CALLS);
    LazyLock::force(&TOKEN_REQUESTS);
    LazyLock::force(&JOB_SECONDS);
    LazyLock::force(&QUEUE_GAUGES);
    LazyLock::force(&OLDEST_AGE);
    LazyLock::force(&TENANT_BLOCKED);
    LazyLock::force(&BUDGET_USED);
    for state in CIRCUIT_STATES {
        CIRCUIT_TRANSITIONS.with_label_values(&[state]);
    }
    LazyLock::force(&CIRCUIT_STATE);
}

/// Renders every metric's current value in the text format (gauges as last set).
pub fn render() -> String {
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
