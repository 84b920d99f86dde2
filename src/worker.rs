//! Worker pool: leases jobs from the shared queue, runs the handler, records the end
//! of each attempt. Several instances may run pools against one Redis.
//!
//! What it guarantees: a job is acknowledged (done/delayed/dead) only after its
//! handler returned; while the handler runs, the lease is renewed every quarter of the
//! (short, default 6 s) visibility timeout, so a job is handed out again within seconds
//! once this process stops renewing it (crash, kill, stall), and a late result of the
//! old holder is refused by the queue's fencing. An attempt whose lease is lost (or not
//! renewed for a whole visibility timeout) is stopped at once, its handler dropped, so
//! a stale attempt never keeps writing; an attempt longer than `worker.attempt_timeout`
//! (300 s) is stopped too and counts as a failed attempt. A panic inside a handler is caught and
//! counts as a failed attempt. On shutdown the pool stops leasing, lets in-flight jobs
//! finish within a timeout and leaves the rest to be reclaimed by lease expiry.
//!
//! Retry policy ([`decide`]): failures because Minimax is unavailable
//! ([`JobError::Unavailable`]) retry with capped backoff until the job's `max_age`,
//! whatever `max_attempts` says, so an outage of hours dead-letters nothing; other
//! retryable failures are bounded by `max_attempts` and `max_age`; waits cost no
//! attempt. Dead letters are for what a person must fix.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::metrics;
use crate::queue::outage::REDIS;
use crate::queue::{now_ms, Claim, ClaimedJob, Finish, Queue};

/// How an attempt failed, as the handler sees it; the pool turns it into a queue state.
#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    /// Try again after the backoff (and not before `not_before`, e.g. `Retry-After`);
    /// uses up one attempt.
    Retry {
        reason: String,
        not_before: Option<DateTime<Utc>>,
    },
    /// Minimax is unavailable (5xx, timeout, connection error): try again after the
    /// capped backoff, until the job is `max_age` old; `max_attempts` does not apply.
    Unavailable {
        reason: String,
        not_before: Option<DateTime<Utc>>,
    },
    /// The tenant cannot proceed yet (paused, budget spent, credentials blocked, a
    /// document it depends on is not booked yet): try at `until` without using up an
    /// attempt.
    Wait {
        reason: String,
        until: DateTime<Utc>,
    },
    /// Retrying cannot help (bad data, a setting to fix): dead at once with the reason.
    Permanent { reason: String },
}

/// The work behind a job. Implementations must be idempotent: a job may run again
/// after a crash (at-least-once delivery).
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn handle(&self, job: &ClaimedJob) -> Result<serde_json::Value, JobError>;
}

/// Tunables of the pool (from `[worker]` and `[queue]`).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub poll_interval: Duration,
    pub shutdown_timeout: Duration,
    pub sweep_interval: Duration,
    pub visibility_timeout: Duration,
    pub max_attempts: u32,
    pub max_age: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// One attempt is stopped (its handler dropped) after this long and retried.
    pub attempt_timeout: Duration,
}

/// Full-jitter exponential backoff: uniform in `[0, min(max, base * 2^(attempt-1))]`.
pub fn backoff(attempt: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let ceiling = backoff_ceiling(attempt, base, max);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(if ms == 0 { 0 } else { rng.gen_range(0..=ms) })
}

/// The upper bound of [`backoff`] for an attempt.
pub fn backoff_ceiling(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    base.saturating_mul(1u32 << exp).min(max)
}

/// Decides what a failed attempt becomes.
pub fn decide(job: &ClaimedJob, err: JobError, cfg: &WorkerConfig, now: DateTime<Utc>) -> Finish {
    let age = (now - job.created_at).to_std().unwrap_or_default();
    match err {
        JobError::Permanent { reason } => Finish::Dead { reason },
        JobError::Wait { reason, until } => Finish::Delay {
            at: until.max(now),
            error: reason,
            counts: false,
        },
        JobError::Retry { reason, .. } if job.attempt >= cfg.max_attempts => Finish::Dead {
            reason: format!("gave up after {} attempts: {reason}", job.attempt),
        },
        JobError::Retry { reason, .. } | JobError::Unavailable { reason, .. }
            if age >= cfg.max_age =>
        {
            Finish::Dead {
                reason: format!("gave up after {} s: {reason}", age.as_secs()),
            }
        }
        JobError::Retry { reason, not_before } | JobError::Unavailable { reason, not_before } => {
            let delay = backoff(
                job.attempt,
                cfg.backoff_base,
                cfg.backoff_max,
                &mut rand::thread_rng(),
            );
            let mut at = now + chrono::Duration::from_std(delay).unwrap_or_default();
            if let Some(nb) = not_before {
                at = at.max(nb);
            }
            // The last try falls on the job's maximum age, not after it: an outage that
            // ends just before `max_age` still gets its job booked.
            let last = job.created_at + chrono::Duration::from_std(cfg.max_age).unwrap_or_default();
            Finish::Delay {
                at: at.min(last.max(now)),
                error: reason,
                counts: true,
            }
        }
    }
}

/// A running pool; dropping it does not stop it, [`WorkerPool::shutdown`] does.
pub struct WorkerPool {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    heartbeat: Arc<AtomicI64>,
    wake: Arc<Notify>,
}

impl WorkerPool {
    /// Starts the dispatcher on the current runtime.
    pub fn start(queue: Queue, handler: Arc<dyn JobHandler>, cfg: WorkerConfig) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let heartbeat = Arc::new(AtomicI64::new(now_ms()));
        let wake = Arc::new(Notify::new());
        let dispatcher = Dispatcher {
            queue,
            handler,
            cfg,
            heartbeat: heartbeat.clone(),
            wake: wake.clone(),
        };
        let task = tokio::spawn(dispatcher.run(stop_rx));
        Self {
            stop,
            task,
            heartbeat,
            wake,
        }
    }

    /// Shared liveness: the last time (ms) the dispatcher loop turned.
    pub fn heartbeat(&self) -> Arc<AtomicI64> {
        self.heartbeat.clone()
    }

    /// Lets an enqueue in this process wake idle workers at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Stops leasing, waits for in-flight jobs (up to the shutdown timeout).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct Dispatcher {
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    cfg: WorkerConfig,
    heartbeat: Arc<AtomicI64>,
    wake: Arc<Notify>,
}

impl Dispatcher {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let sem = Arc::new(Semaphore::new(self.cfg.concurrency));
        let mut tasks = JoinSet::new();
        let mut last_sweep: Option<tokio::time::Instant> = None;
        let this = Arc::new(self);
        tracing::info!(concurrency = this.cfg.concurrency, "workers started");
        loop {
            this.heartbeat.store(now_ms(), Ordering::Relaxed);
            if *stop.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            if last_sweep.is_none_or(|t| t.elapsed() >= this.cfg.sweep_interval) {
                // The first sweep of a process also wakes every waiting job: a restart
                // is how a raised budget or changed configuration takes effect, and
                // what the jobs waited for may be over.
                let first = last_sweep.is_none();
                if REDIS
                    .observe("queue sweep", this.queue.sweep().await)
                    .is_ok()
                {
                    last_sweep = Some(tokio::time::Instant::now());
                }
                if first && last_sweep.is_some() {
                    match this.queue.wake_all_waiting().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(woken = n, "waiting jobs woken at start-up"),
                        Err(e) => REDIS.failed("waking waiting jobs", &e),
                    }
                }
            }
            let permit = tokio::select! {
                p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = stop.changed() => break,
            };
            match REDIS.observe("leasing jobs", this.claim_one().await) {
                Ok(Some(job)) => {
                    let this = this.clone();
                    tasks.spawn(async move {
                        this.run_job(job).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    let wait = match this.queue.next_due().await {
                        Ok(Some(at)) => {
                            Duration::from_millis((at - now_ms()).clamp(1, i64::MAX) as u64)
                        }
                        _ => this.cfg.poll_interval,
                    }
                    .min(this.cfg.poll_interval);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = this.wake.notified() => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(_) => {
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::sleep(this.cfg.poll_interval * 4) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
        let in_flight = tasks.len();
        tracing::info!(in_flight, "workers stopping; waiting for in-flight jobs");
        let drained = tokio::time::timeout(this.cfg.shutdown_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "shutdown timeout: unfinished jobs will be reclaimed after their lease"
            );
            tasks.abort_all();
        }
        tracing::info!("workers stopped");
    }

    /// Leases one job from the tenant that has waited longest.
    async fn claim_one(&self) -> Result<Option<ClaimedJob>, crate::queue::QueueError> {
        let lease_ms = self.cfg.visibility_timeout.as_millis() as u64;
        for tenant in self.queue.due_tenants(now_ms(), 64).await? {
            match self.queue.claim(&tenant, lease_ms).await? {
                Claim::Job(job) => {
                    self.queue.rotate(&tenant).await?;
                    return Ok(Some(job));
                }
                Claim::Busy { next_ms } => self.queue.park(&tenant, Some(next_ms)).await?,
                Claim::Empty { next_ms } => self.queue.park(&tenant, next_ms).await?,
            }
        }
        Ok(None)
    }

    /// Renews `job`'s lease four times per visibility timeout (one slow or failed
    /// renewal does not lose it); returns when the lease is lost: refused (another
    /// worker got the job), or not renewed for a whole visibility timeout (Redis did
    /// not answer, so the job may have been handed out again).
    async fn keep_lease(&self, job: &ClaimedJob) {
        let lease_ms = self.cfg.visibility_timeout.as_millis() as u64;
        crate::redis_conn::lock::keep_renewed(
            self.cfg.visibility_timeout,
            self.cfg.visibility_timeout / 4,
            || self.queue.extend(job, lease_ms),
            |e| REDIS.failed("renewing a lease", e),
        )
        .await;
    }

    async fn run_job(&self, job: ClaimedJob) {
        let span = tracing::info_span!("job", tenant = %job.tenant, job_id = %job.id, attempt = job.attempt);
        async {
            let started = now_ms();
            let timer = metrics::JOB_SECONDS.start_timer();
            let handler = self.handler.clone();
            let owned = job.clone();
            let mut attempt = tokio::spawn(async move { handler.handle(&owned).await });
            // The handler runs in its own task (a panic is caught) while this one renews
            // the lease; the attempt is stopped (its task aborted, so it writes nothing
            // more) when the lease is lost or the attempt outlasts `attempt_timeout`.
            let ended = tokio::select! {
                biased;
                outcome = &mut attempt => Ok(outcome),
                () = self.keep_lease(&job) => Err(true),
                () = tokio::time::sleep(self.cfg.attempt_timeout) => Err(false),
            };
            timer.observe_duration();
            let outcome = match ended {
                Ok(outcome) => outcome,
                Err(lease_lost) => {
                    attempt.abort();
                    // The aborted task is dropped before this returns: nothing of the
                    // attempt runs (or writes) after this point.
                    let _ = attempt.await;
                    if lease_lost {
                        metrics::JOBS.with_label_values(&["lease_lost"]).inc();
                        tracing::warn!(
                            "lease lost; the attempt was stopped and another worker may run the job"
                        );
                        return;
                    }
                    Ok(Err(JobError::Retry {
                        reason: format!(
                            "the attempt took longer than worker.attempt_timeout ({} s) and was stopped",
                            self.cfg.attempt_timeout.as_secs()
                        ),
                        not_before: None,
                    }))
                }
            };
            let finish = match outcome {
                Ok(Ok(result)) => Finish::Done { result },
                Ok(Err(err)) => decide(&job, err, &self.cfg, Utc::now()),
                Err(join) => {
                    tracing::error!(panic = join.is_panic(), "job handler crashed");
                    decide(
                        &job,
                        JobError::Retry {
                            reason: "internal error: the job handler crashed".into(),
                            not_before: None,
                        },
                        &self.cfg,
                        Utc::now(),
                    )
                }
            };
            let label = match &finish {
                Finish::Done { .. } => "done",
                Finish::Delay { counts: true, .. } => "retry",
                Finish::Delay { counts: false, .. } => "wait",
                Finish::Dead { .. } => "dead",
            };
            match &finish {
                Finish::Done { .. } => tracing::info!("job done"),
                Finish::Delay { at, error, .. } => {
                    tracing::warn!(next_attempt = %at, error = %error, outcome = label, "job delayed")
                }
                Finish::Dead { reason } => tracing::error!(reason = %reason, "job dead"),
            }
            match self.queue.finish(&job, started, &finish).await {
                Ok(true) => metrics::JOBS.with_label_values(&[label]).inc(),
                Ok(false) => {
                    metrics::JOBS.with_label_values(&["lease_lost"]).inc();
                    tracing::warn!("result dropped: the lease expired and the job was handed out again");
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot record the job's result; it will run again after its lease");
                }
            }
        }
        .instrument(span)
        .await
    }
}
