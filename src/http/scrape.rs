//! The scrape: what `GET /metrics` reads from the stores before rendering. Gauges that
//! describe shared state (queue depth, blocked logins, budgets, circuits) are gathered
//! here, at scrape time, so `metrics` holds only the series and the stores need not know
//! about metrics.

use std::sync::LazyLock;

use prometheus::{IntGauge, IntGaugeVec, Opts};

use crate::metrics::REGISTRY;
use crate::minimax::Minimax;
use crate::queue::Queue;
use crate::tenants::TenantStore;

fn registered<G: prometheus::core::Collector + Clone + 'static>(name: &str, g: G) -> G {
    REGISTRY
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("register {name}: {e}"));
    g
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registered(name, g)
}

static QUEUE_GAUGES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "mmc_queue_jobs",
        "Jobs in the shared queue, by state",
        &["state"],
    )
});

static OLDEST_AGE: LazyLock<IntGauge> = LazyLock::new(|| {
    let name = "mmc_queue_oldest_job_age_seconds";
    let g = IntGauge::new(name, "Age of the oldest job waiting for a worker")
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registered(name, g)
});

static TENANT_BLOCKED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "mmc_tenant_credentials_blocked",
        "1 while a tenant's Minimax credentials are blocked after a rejected login",
        &["tenant"],
    )
});

static BUDGET_USED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "mmc_minimax_budget_used",
        "Minimax calls used by a tenant's organisation, by window (24h, month)",
        &["tenant", "window"],
    )
});

static CIRCUIT_STATE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "mmc_minimax_circuit",
        "1 for the state (closed, open, half_open) of a tenant's organisation's Minimax circuit breaker",
        &["tenant", "state"],
    )
});

/// Registers the counters and these gauges, so that every series exists (at zero) from
/// the start.
pub fn init() {
    crate::metrics::init();
    LazyLock::force(&QUEUE_GAUGES);
    LazyLock::force(&OLDEST_AGE);
    LazyLock::force(&TENANT_BLOCKED);
    LazyLock::force(&BUDGET_USED);
    LazyLock::force(&CIRCUIT_STATE);
}

/// Refreshes every gauge from Redis, then renders all metrics. A Redis failure leaves
/// the gauges at their last values; counters are still served.
pub async fn gather(queue: &Queue, tenants: &TenantStore, minimax: &Minimax) -> String {
    init();
    refresh_tenants(tenants, minimax).await;
    refresh_queue(queue).await;
    crate::metrics::render()
}

/// Refreshes the per-tenant gauges (blocked credentials, budget used, circuit) from Redis.
async fn refresh_tenants(tenants: &TenantStore, minimax: &Minimax) {
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

/// Queue depth and the oldest waiting job, summed over tenants.
async fn refresh_queue(queue: &Queue) {
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
}
