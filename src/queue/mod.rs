//! Durable job queue in Redis.
//!
//! Layout (all keys under the configured prefix; `{t:<tenant>}` is a Redis Cluster
//! hash tag, so every key of one tenant lives in one slot and each Lua script in
//! [`scripts`] is atomic):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `p:{t:T}:job:<id>` | hash | state, attempts, times, last error, result, event summary, lease token |
//! | `p:{t:T}:payload:<id>` | string | the job's payload; expires `payload_retention` after completion |
//! | `p:{t:T}:hist:<id>` | list | attempt history, JSON entries (last 50) |
//! | `p:{t:T}:ready` | list | ids waiting for a worker, FIFO |
//! | `p:{t:T}:delayed` | zset | ids by next attempt time (ms) |
//! | `p:{t:T}:running` | zset | ids by lease deadline (ms): the visibility timeout |
//! | `p:{t:T}:dead` / `done` | zset | ids by time of death / completion |
//! | `p:{t:T}:dedupe:<key>` | string | id of the job a delivery created (TTL ≥ 7 days) |
//! | `p:tenants` | set | every tenant that ever had a job (for the sweep and metrics) |
//! | `p:active` | zset | tenants that may have work, by the time to look at them (ms) |
//!
//! Guarantees: enqueue and its dedupe key are one script, so a key yields one job even
//! under concurrent delivery. Delivery is at least once: a leased job whose worker
//! stops renewing its lease goes back to the front of its tenant's line once the
//! lease runs out, and a late result of the old lease holder is refused (fencing by
//! lease token). Fairness: workers serve tenants in the order of `p:active`, and a
//! tenant just served goes to its back, so one tenant's backlog delays another
//! tenant's job by at most one round; `per_tenant_concurrency` caps how many workers
//! one tenant can hold across all instances.
//!
//! On a single Redis an enqueue is one script that also registers the tenant in
//! `p:tenants` and wakes it in `p:active`. On a cluster those global keys live in
//! other slots, so `p:active` is updated after the tenant's own script: an enqueue
//! that dies between the two leaves its job unseen until the periodic sweep re-adds
//! every tenant of `p:tenants` (and of the tenant store's index); nothing is lost.
//!
//! Files: this one has the types and the key layout; `enqueue`, `claim` (leases and
//! the tenant line), `finish`, `sweep` and `admin` (inspect, list, count, retry,
//! discard) add `Queue`'s operations.

pub mod outage;
pub mod scripts;

mod admin;
mod claim;
mod enqueue;
mod finish;
mod sweep;

use std::collections::HashMap;

use crate::redis_conn::RedisPool as Pool;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

/// What went wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis unavailable: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("job record is damaged: {0}")]
    Corrupt(String),
}

/// The states a job can be in; see the module doc for where each lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Delayed,
    Done,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Delayed => "delayed",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "delayed" => JobState::Delayed,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

impl std::str::FromStr for JobState {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        JobState::parse(s).ok_or(())
    }
}

/// One entry of a job's attempt history.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Attempt {
    pub attempt: u32,
    /// Start of the attempt, ms since the epoch.
    pub started_at: i64,
    pub duration_ms: u64,
    /// `done`, `retry`, `wait`, `dead`, `lease_expired` or `manual_retry`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A job as stored, for inspection.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub id: String,
    pub tenant: TenantId,
    pub state: JobState,
    /// Empty once a finished job's payload was dropped (`payload_retention`).
    pub payload: String,
    /// The event summary a finished job keeps (see [`crate::jobs::summarize`]).
    pub summary: Option<serde_json::Value>,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub dedupe_key: Option<String>,
    pub history: Vec<Attempt>,
}

/// A job leased to this worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: String,
    pub tenant: TenantId,
    pub payload: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub created_at: DateTime<Utc>,
    pub lease: String,
}

/// Result of asking one tenant for work.
#[derive(Debug)]
pub enum Claim {
    Job(ClaimedJob),
    /// At the per-tenant cap; look again at this time (ms) at the latest.
    Busy {
        next_ms: i64,
    },
    /// Nothing ready; the next delayed job or lease deadline (ms), if any.
    Empty {
        next_ms: Option<i64>,
    },
}

/// Result of an enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub id: String,
    /// False when the dedupe key named an existing job.
    pub created: bool,
}

/// How a finished attempt ends.
#[derive(Debug, Clone)]
pub enum Finish {
    Done {
        result: serde_json::Value,
    },
    /// Try again at `at`; `counts` is false when the attempt should not use up the
    /// retry budget (tenant paused, budget spent, credentials blocked).
    Delay {
        at: DateTime<Utc>,
        error: String,
        counts: bool,
    },
    Dead {
        reason: String,
    },
}

/// Job counts of one tenant.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub queued: u64,
    pub running: u64,
    pub delayed: u64,
    pub dead: u64,
    pub done: u64,
    /// Age in seconds of the oldest job waiting in the ready line.
    pub oldest_queued_age_secs: Option<u64>,
}

/// Tunables the queue itself needs (the worker has its own).
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub prefix: String,
    pub dedupe_ttl_secs: u64,
    pub per_tenant_concurrency: u32,
    pub done_retention_secs: u64,
    /// A done job's payload is dropped this long after completion (its hash, with the
    /// event summary, history and result, stays for `done_retention_secs`).
    pub payload_retention_secs: u64,
}

/// Handle to the queue; cheap to clone.
#[derive(Clone)]
pub struct Queue {
    pool: Pool,
    cfg: QueueConfig,
    registered: Registered,
}

/// A per-tenant key (under the tenant's base) that an enqueue raises to at least
/// `value` when it creates the job, in the same script: a "seen up to" marker.
#[derive(Debug, Clone, Copy)]
pub struct Mark<'a> {
    pub key: &'a str,
    pub value: i64,
    pub ttl_secs: u64,
}

/// Tenants this process added to the tenants set lately (cluster mode, where that
/// set is a separate command): re-added at most once a minute each.
#[derive(Clone, Default)]
struct Registered(std::sync::Arc<std::sync::Mutex<HashMap<String, std::time::Instant>>>);

impl Registered {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(60);

    fn recently(&self, tenant: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(tenant).is_some_and(|at| at.elapsed() < Self::FRESH)
    }

    fn note(&self, tenant: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(tenant.to_owned(), std::time::Instant::now());
    }
}

/// Kept here for the queue's callers; they belong to [`crate::tenants`].
pub use crate::tenants::{tenant_key, TenantId};

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Queue {
    pub fn new(pool: Pool, cfg: QueueConfig) -> Self {
        Self {
            pool,
            cfg,
            registered: Registered::default(),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn prefix(&self) -> &str {
        &self.cfg.prefix
    }

    /// `p:{t:T}:` — the base of every key of one tenant.
    pub fn tenant_base(&self, tenant: &TenantId) -> String {
        tenant_key(&self.cfg.prefix, tenant, "")
    }

    fn tenants_key(&self) -> String {
        format!("{}:tenants", self.cfg.prefix)
    }

    fn active_key(&self) -> String {
        format!("{}:active", self.cfg.prefix)
    }

    /// Marks a tenant as having work from `at_ms` on, unless it is already due earlier.
    async fn activate(
        &self,
        conn: &mut crate::redis_conn::RedisConn,
        tenant: &TenantId,
        at_ms: i64,
    ) -> Result<(), QueueError> {
        let _: () = redis::cmd("ZADD")
            .arg(self.active_key())
            .arg("LT")
            .arg(at_ms)
            .arg(tenant)
            .query_async(&mut *conn)
            .await?;
        Ok(())
    }

    /// Redis answers.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}
