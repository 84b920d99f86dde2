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

pub mod outage;
pub mod scripts;

use std::collections::HashMap;

use crate::redis_conn::RedisPool as Pool;
use chrono::{DateTime, TimeZone, Utc};
use redis::AsyncCommands;
use serde::Serialize;

/// What went wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis unavailable: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("invalid tenant id: expected 1-64 characters of A-Z, a-z, 0-9, '-' or '_'")]
    InvalidTenant,
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
    pub tenant: String,
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
    pub tenant: String,
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
pub use crate::tenants::{tenant_key, valid_tenant_id};

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
    pub fn tenant_base(&self, tenant: &str) -> String {
        tenant_key(&self.cfg.prefix, tenant, "")
    }

    fn tenants_key(&self) -> String {
        format!("{}:tenants", self.cfg.prefix)
    }

    fn active_key(&self) -> String {
        format!("{}:active", self.cfg.prefix)
    }

    fn check_tenant(tenant: &str) -> Result<(), QueueError> {
        if valid_tenant_id(tenant) {
            Ok(())
        } else {
            Err(QueueError::InvalidTenant)
        }
    }

    /// Stores a job durably. With a dedupe key, a second enqueue (also a concurrent
    /// one) returns the first job's id instead of creating another.
    pub async fn enqueue(
        &self,
        tenant: &str,
        dedupe_key: Option<&str>,
        payload: &str,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<Enqueued, QueueError> {
        self.enqueue_marked(tenant, dedupe_key, payload, not_before, None)
            .await
    }

    /// [`Queue::enqueue`], raising `mark` in the same script when the job is created.
    ///
    /// Round trips: one on a single Redis (the tenants set and the active zset are
    /// updated by the script). On a cluster those two live in other slots: the tenant
    /// is registered (at most once a minute per process) alongside the script, and a
    /// created job then activates its tenant, so two. An enqueue that dies between the
    /// script and the activation is found by the sweep.
    pub async fn enqueue_marked(
        &self,
        tenant: &str,
        dedupe_key: Option<&str>,
        payload: &str,
        not_before: Option<DateTime<Utc>>,
        mark: Option<&Mark<'_>>,
    ) -> Result<Enqueued, QueueError> {
        Self::check_tenant(tenant)?;
        let mut conn = self.pool.get().await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = now_ms();
        let due = not_before
            .map(|t| t.timestamp_millis())
            .unwrap_or(now)
            .max(now);
        let single = !self.pool.is_cluster();
        let mut script = scripts::ENQUEUE.key(self.tenant_base(tenant));
        if single {
            script.key(self.tenants_key()).key(self.active_key());
        }
        script
            .arg(&id)
            .arg(dedupe_key.unwrap_or(""))
            .arg(payload)
            .arg(now)
            .arg(self.cfg.dedupe_ttl_secs)
            .arg(not_before.map(|t| t.timestamp_millis()).unwrap_or(0))
            .arg(tenant)
            .arg(mark.map(|m| m.key).unwrap_or(""))
            .arg(mark.map(|m| m.value).unwrap_or(0))
            .arg(mark.map(|m| m.ttl_secs).unwrap_or(0))
            .arg(due);
        if single {
            let (id, created): (String, String) = script.invoke_async(&mut conn).await?;
            return Ok(Enqueued {
                id,
                created: created == "1",
            });
        }
        let register = async {
            if self.registered.recently(tenant) {
                return Ok(());
            }
            let mut conn = self.pool.get().await?;
            let _: () = conn.sadd(self.tenants_key(), tenant).await?;
            self.registered.note(tenant);
            Ok::<(), QueueError>(())
        };
        let (registered, stored) = futures::join!(register, script.invoke_async(&mut conn));
        let (id, created): (String, String) = stored?;
        registered?;
        let created = created == "1";
        if created {
            self.activate(&mut conn, tenant, due).await?;
        }
        Ok(Enqueued { id, created })
    }

    /// Marks a tenant as having work from `at_ms` on, unless it is already due earlier.
    async fn activate(
        &self,
        conn: &mut crate::redis_conn::RedisConn,
        tenant: &str,
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

    /// Wakes a tenant at once after something its waiting jobs waited for changed
    /// (credentials, settings, an unblock, a retry, a pause or budget): every delayed
    /// job that is waiting without using up attempts goes back in line now, and the
    /// dispatchers look at the tenant now. Jobs delayed by a counted retry keep their
    /// backoff. Returns how many jobs were woken.
    pub async fn wake_waiting(&self, tenant: &str) -> Result<usize, QueueError> {
        Self::check_tenant(tenant)?;
        let mut conn = self.pool.get().await?;
        let now = now_ms();
        let n: usize = scripts::WAKE_WAITING
            .key(self.tenant_base(tenant))
            .arg(now)
            .invoke_async(&mut conn)
            .await?;
        self.activate(&mut conn, tenant, now).await?;
        Ok(n)
    }

    /// [`Queue::wake_waiting`] for every known tenant (start-up).
    pub async fn wake_all_waiting(&self) -> Result<usize, QueueError> {
        let mut n = 0;
        for t in self.tenants().await? {
            n += self.wake_waiting(&t).await?;
        }
        Ok(n)
    }

    /// Tenants due for a look at `now_ms`, longest-waiting first.
    pub async fn due_tenants(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, QueueError> {
        let mut conn = self.pool.get().await?;
        let tenants: Vec<String> = conn
            .zrangebyscore_limit(self.active_key(), "-inf", now_ms, 0, limit as isize)
            .await?;
        Ok(tenants)
    }

    /// Time (ms) of the earliest entry in the active set, if any.
    pub async fn next_due(&self) -> Result<Option<i64>, QueueError> {
        let mut conn = self.pool.get().await?;
        let first: Vec<(String, f64)> = conn.zrange_withscores(self.active_key(), 0, 0).await?;
        Ok(first.first().map(|(_, s)| *s as i64))
    }

    /// Leases the next job of `tenant` for `lease_ms`.
    pub async fn claim(&self, tenant: &str, lease_ms: u64) -> Result<Claim, QueueError> {
        Self::check_tenant(tenant)?;
        let mut conn = self.pool.get().await?;
        let now = now_ms();
        let lease = uuid::Uuid::new_v4().simple().to_string();
        let reply: Vec<String> = scripts::CLAIM
            .key(self.tenant_base(tenant))
            .arg(now)
            .arg(lease_ms)
            .arg(self.cfg.per_tenant_concurrency)
            .arg(&lease)
            .invoke_async(&mut conn)
            .await?;
        let field = |i: usize| {
            reply.get(i).ok_or_else(|| {
                QueueError::Corrupt(format!("claim reply too short: {}", reply.len()))
            })
        };
        let num = |i: usize| -> Result<i64, QueueError> {
            field(i)?
                .parse::<f64>()
                .map(|f| f as i64)
                .map_err(|_| QueueError::Corrupt("claim reply: not a number".into()))
        };
        let claim = match field(0)?.as_str() {
            "job" => Claim::Job(ClaimedJob {
                id: field(1)?.clone(),
                tenant: tenant.to_owned(),
                payload: field(2)?.clone(),
                attempt: num(3)? as u32,
                created_at: ms_to_time(num(4)?),
                lease,
            }),
            "busy" => Claim::Busy { next_ms: num(1)? },
            _ => {
                let next = num(1)?;
                Claim::Empty {
                    next_ms: (next >= 0).then_some(next),
                }
            }
        };
        let reclaimed = reply
            .last()
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(0);
        if reclaimed > 0 {
            tracing::warn!(tenant, reclaimed, "reclaimed jobs whose lease expired");
            crate::metrics::JOBS_RECLAIMED.inc_by(reclaimed);
        }
        Ok(claim)
    }

    /// Parks a tenant after a claim found nothing to hand out: look again at
    /// `next_ms`, or drop it from the active set when it has no work at all.
    ///
    /// An enqueue, retry or finished job may wake the tenant between the claim and
    /// this call; writing the later time over its wake-up would strand a ready job.
    /// So the tenant is looked at again after parking (one script on its own keys)
    /// and woken if it has work now: every wake-up either happens after the park's
    /// write, or is seen by the look.
    pub async fn park(&self, tenant: &str, next_ms: Option<i64>) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        match next_ms {
            Some(at) => {
                let _: () = redis::cmd("ZADD")
                    .arg(self.active_key())
                    .arg("XX")
                    .arg(at)
                    .arg(tenant)
                    .query_async(&mut conn)
                    .await?;
            }
            None => {
                let _: () = conn.zrem(self.active_key(), tenant).await?;
            }
        }
        let next: String = scripts::PEEK
            .key(self.tenant_base(tenant))
            .arg(now_ms())
            .arg(self.cfg.per_tenant_concurrency)
            .invoke_async(&mut conn)
            .await?;
        if let Ok(at) = next.parse::<f64>() {
            let at = at as i64;
            if at >= 0 && next_ms.is_none_or(|parked| at < parked) {
                self.activate(&mut conn, tenant, at).await?;
            }
        }
        Ok(())
    }

    /// Moves a served tenant to the back of the line (fairness).
    pub async fn rotate(&self, tenant: &str) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: () = conn.zadd(self.active_key(), tenant, now_ms()).await?;
        Ok(())
    }

    /// Re-adds every known tenant to the active set (safety net; see module doc):
    /// those of the tenants set and those of the tenant store's index, so a tenant
    /// whose registration was lost (cluster mode, where it is a separate command) is
    /// registered again.
    pub async fn sweep(&self) -> Result<usize, QueueError> {
        let mut conn = self.pool.get().await?;
        let mut tenants: Vec<String> = conn.smembers(self.tenants_key()).await?;
        let stored: Vec<String> = conn
            .smembers(format!("{}:tenant_ids", self.cfg.prefix))
            .await?;
        let missing: Vec<&String> = stored.iter().filter(|t| !tenants.contains(t)).collect();
        if !missing.is_empty() {
            let _: () = conn.sadd(self.tenants_key(), &missing).await?;
            tenants.extend(missing.into_iter().cloned());
        }
        let now = now_ms();
        let mut pipe = redis::pipe();
        for t in &tenants {
            pipe.cmd("ZADD")
                .arg(self.active_key())
                .arg("LT")
                .arg(now)
                .arg(t)
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(tenants.len())
    }

    /// Every tenant that ever had a job.
    pub async fn tenants(&self) -> Result<Vec<String>, QueueError> {
        let mut conn = self.pool.get().await?;
        Ok(conn.smembers(self.tenants_key()).await?)
    }

    /// Renews a lease; false when the lease was lost (expired and handed out again).
    pub async fn extend(&self, job: &ClaimedJob, lease_ms: u64) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let ok: i64 = scripts::EXTEND
            .key(self.tenant_base(&job.tenant))
            .arg(&job.id)
            .arg(&job.lease)
            .arg(now_ms() + lease_ms as i64)
            .invoke_async(&mut conn)
            .await?;
        Ok(ok == 1)
    }

    /// Records the end of an attempt. False when the lease was lost meanwhile: the
    /// job belongs to another worker now and this result is dropped.
    pub async fn finish(
        &self,
        job: &ClaimedJob,
        started_ms: i64,
        finish: &Finish,
    ) -> Result<bool, QueueError> {
        let now = now_ms();
        let (outcome, text, next, counts, label) = match finish {
            Finish::Done { result } => ("done", result.to_string(), 0, true, "done"),
            Finish::Delay { at, error, counts } => (
                "delayed",
                error.clone(),
                at.timestamp_millis(),
                *counts,
                if *counts { "retry" } else { "wait" },
            ),
            Finish::Dead { reason } => ("dead", reason.clone(), 0, true, "dead"),
        };
        let entry = Attempt {
            attempt: job.attempt,
            started_at: started_ms,
            duration_ms: (now - started_ms).max(0) as u64,
            outcome: label.to_owned(),
            error: (outcome != "done").then(|| text.clone()),
        };
        let entry = serde_json::to_string(&entry)
            .map_err(|e| QueueError::Corrupt(format!("attempt entry: {e}")))?;
        // Done jobs outlive their payload: keep what an operator needs to find the order.
        let summary = match finish {
            Finish::Done { .. } => crate::jobs::summarize(&job.payload)
                .and_then(|s| serde_json::to_string(&s).ok())
                .unwrap_or_default(),
            _ => String::new(),
        };
        let mut conn = self.pool.get().await?;
        let ok: i64 = scripts::FINISH
            .key(self.tenant_base(&job.tenant))
            .arg(&job.id)
            .arg(&job.lease)
            .arg(now)
            .arg(outcome)
            .arg(entry)
            .arg(text)
            .arg(next)
            .arg(if counts { "0" } else { "1" })
            .arg(self.cfg.done_retention_secs)
            .arg(self.cfg.payload_retention_secs)
            .arg(summary)
            .invoke_async(&mut conn)
            .await?;
        let wake_at = if outcome == "delayed" { next } else { now };
        self.activate(&mut conn, &job.tenant, wake_at).await?;
        Ok(ok == 1)
    }

    /// One job in full, or `None` if unknown (or expired after completion).
    pub async fn get(&self, tenant: &str, id: &str) -> Result<Option<JobRecord>, QueueError> {
        Self::check_tenant(tenant)?;
        let base = self.tenant_base(tenant);
        let mut conn = self.pool.get().await?;
        let (mut fields, hist, payload): (HashMap<String, String>, Vec<String>, Option<String>) =
            redis::pipe()
                .hgetall(format!("{base}job:{id}"))
                .lrange(format!("{base}hist:{id}"), 0, -1)
                .get(format!("{base}payload:{id}"))
                .query_async(&mut conn)
                .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        if let Some(p) = payload {
            fields.insert("payload".into(), p);
        }
        record_from_fields(fields, hist).map(Some)
    }

    /// Ids of one tenant's jobs in `state`, oldest first, `offset`/`limit` paged.
    pub async fn list(
        &self,
        tenant: &str,
        state: JobState,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<String>, QueueError> {
        Self::check_tenant(tenant)?;
        let base = self.tenant_base(tenant);
        let mut conn = self.pool.get().await?;
        let start = offset as isize;
        let stop = (offset + limit) as isize - 1;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = match state {
            JobState::Queued => conn.lrange(format!("{base}ready"), start, stop).await?,
            JobState::Running => conn.zrange(format!("{base}running"), start, stop).await?,
            JobState::Delayed => conn.zrange(format!("{base}delayed"), start, stop).await?,
            JobState::Dead => conn.zrange(format!("{base}dead"), start, stop).await?,
            JobState::Done => conn.zrange(format!("{base}done"), start, stop).await?,
        };
        Ok(ids)
    }

    /// Job counts and the age of the oldest ready job of one tenant.
    pub async fn counts(&self, tenant: &str) -> Result<Counts, QueueError> {
        Self::check_tenant(tenant)?;
        let base = self.tenant_base(tenant);
        let mut conn = self.pool.get().await?;
        let (queued, running, delayed, dead, done, oldest): (
            u64,
            u64,
            u64,
            u64,
            u64,
            Option<String>,
        ) = redis::pipe()
            .llen(format!("{base}ready"))
            .zcard(format!("{base}running"))
            .zcard(format!("{base}delayed"))
            .zcard(format!("{base}dead"))
            .zcard(format!("{base}done"))
            .lindex(format!("{base}ready"), 0)
            .query_async(&mut conn)
            .await?;
        let oldest_queued_age_secs = match oldest {
            Some(id) => {
                let created: Option<i64> =
                    conn.hget(format!("{base}job:{id}"), "created_at").await?;
                created.map(|c| ((now_ms() - c).max(0) / 1000) as u64)
            }
            None => None,
        };
        Ok(Counts {
            queued,
            running,
            delayed,
            dead,
            done,
            oldest_queued_age_secs,
        })
    }

    /// Puts a dead or delayed job back in line with a fresh attempt budget.
    /// Returns the state it had, `None` if unknown; other states are left alone.
    pub async fn retry(&self, tenant: &str, id: &str) -> Result<Option<JobState>, QueueError> {
        Self::check_tenant(tenant)?;
        let now = now_ms();
        let entry = serde_json::to_string(&Attempt {
            attempt: 0,
            started_at: now,
            duration_ms: 0,
            outcome: "manual_retry".into(),
            error: None,
        })
        .map_err(|e| QueueError::Corrupt(e.to_string()))?;
        let mut conn = self.pool.get().await?;
        let prev: String = scripts::RETRY
            .key(self.tenant_base(tenant))
            .arg(id)
            .arg(now)
            .arg(entry)
            .invoke_async(&mut conn)
            .await?;
        let prev = JobState::parse(&prev);
        if matches!(prev, Some(JobState::Dead | JobState::Delayed)) {
            self.activate(&mut conn, tenant, now).await?;
        }
        Ok(prev)
    }

    /// Retries every dead job of one tenant; returns how many.
    pub async fn retry_all_dead(&self, tenant: &str) -> Result<usize, QueueError> {
        let mut n = 0;
        loop {
            let ids = self.list(tenant, JobState::Dead, 0, 500).await?;
            if ids.is_empty() {
                return Ok(n);
            }
            for id in ids {
                if self.retry(tenant, &id).await? == Some(JobState::Dead) {
                    n += 1;
                }
            }
        }
    }

    /// Removes a job that is not running. Returns its state, `None` if unknown.
    pub async fn discard(&self, tenant: &str, id: &str) -> Result<Option<JobState>, QueueError> {
        Self::check_tenant(tenant)?;
        let mut conn = self.pool.get().await?;
        let prev: String = scripts::DISCARD
            .key(self.tenant_base(tenant))
            .arg(id)
            .invoke_async(&mut conn)
            .await?;
        Ok(JobState::parse(&prev))
    }

    /// Redis answers.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

fn record_from_fields(
    mut f: HashMap<String, String>,
    hist: Vec<String>,
) -> Result<JobRecord, QueueError> {
    let mut take = |k: &str| f.remove(k).filter(|v| !v.is_empty());
    let num = |v: Option<String>| v.and_then(|s| s.parse::<f64>().ok()).map(|x| x as i64);
    let state = take("state")
        .and_then(|s| JobState::parse(&s))
        .ok_or_else(|| QueueError::Corrupt("job without a valid state".into()))?;
    let id = take("id").ok_or_else(|| QueueError::Corrupt("job without id".into()))?;
    let history = hist
        .iter()
        .filter_map(|h| serde_json::from_str::<Attempt>(h).ok())
        .collect();
    Ok(JobRecord {
        id,
        tenant: take("tenant").unwrap_or_default(),
        state,
        payload: take("payload").unwrap_or_default(),
        summary: take("summary").and_then(|s| serde_json::from_str(&s).ok()),
        attempts: num(take("attempts")).unwrap_or(0).max(0) as u32,
        created_at: ms_to_time(num(take("created_at")).unwrap_or(0)),
        updated_at: ms_to_time(num(take("updated_at")).unwrap_or(0)),
        next_attempt_at: num(take("next_at")).map(ms_to_time),
        finished_at: num(take("finished_at")).map(ms_to_time),
        last_error: take("last_error"),
        result: take("result").and_then(|r| serde_json::from_str(&r).ok()),
        dedupe_key: take("dedupe_key"),
        history,
    })
}
