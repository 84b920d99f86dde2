//! Prometheus metrics: the registry and the counters (process-wide statics, one registry
//! per process, as Prometheus expects). The gauges of shared state (queue, logins,
//! budgets, circuits) are defined and read from the stores at scrape time in
//! `http::scrape`, so every instance reports the same shared queue.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
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
    for state in CIRCUIT_STATES {
        CIRCUIT_TRANSITIONS.with_label_values(&[state]);
    }
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
