//! The queue's properties against a real Redis: atomic dedupe, at-least-once delivery
//! with lease expiry, backoff then dead letter, permanent failures, waiting without
//! burning attempts, fencing of stale workers, fairness, key layout, manual retry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::tid;
use chrono::Utc;
use minimax_connector::queue::{Claim, ClaimedJob, Finish, JobState};
use minimax_connector::worker::{
    backoff, backoff_ceiling, JobError, JobHandler, WorkerConfig, WorkerPool,
};

mod dedupe_and_keys;
mod delivery;
mod records;
mod retries;

fn cfg() -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        poll_interval: Duration::from_millis(20),
        shutdown_timeout: Duration::from_secs(5),
        sweep_interval: Duration::from_secs(60),
        visibility_timeout: Duration::from_secs(30),
        max_attempts: 5,
        max_age: Duration::from_secs(3600),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        attempt_timeout: Duration::from_secs(300),
    }
}

/// A handler driven by a closure over the attempt number.
struct FnHandler<F>(F);

#[async_trait::async_trait]
impl<F> JobHandler for FnHandler<F>
where
    F: Fn(&ClaimedJob) -> Result<serde_json::Value, JobError> + Send + Sync + 'static,
{
    async fn handle(&self, job: &ClaimedJob) -> Result<serde_json::Value, JobError> {
        (self.0)(job)
    }
}

async fn wait_for_state(
    q: &minimax_connector::queue::Queue,
    tenant: &str,
    id: &str,
    state: JobState,
    timeout: Duration,
) -> minimax_connector::queue::JobRecord {
    helpers::eventually(timeout, || async {
        q.get(&tid(tenant), id)
            .await
            .unwrap()
            .filter(|r| r.state == state)
    })
    .await
    .unwrap_or_else(|| {
        panic!("job {id} did not reach {state:?}");
    })
}
