//! The one way every store reaches Redis, on a single server or on Redis Cluster.
//!
//! [`RedisPool`] hands out [`RedisConn`]s, clones of a few long-lived *multiplexed*
//! connections: any number of tasks send over one connection at once and their
//! commands are pipelined on the wire, so a request costs its own commands and
//! nothing else (a checked-out pool connection costs an `UNWATCH`+`PING` round trip
//! per checkout). This is sound because nothing here uses connection state: no
//! `WATCH`/`MULTI`, no blocking commands, no `SELECT`, no subscriptions. A
//! `RedisConn` implements [`redis::aio::ConnectionLike`], so commands, pipelines and
//! [`redis::Script`]s run on it unchanged in both modes (`redis.mode = "standalone" |
//! "cluster"`). On a cluster, the client routes each command by its first key,
//! follows `MOVED`/`ASK`, refreshes the slot map after a failover, and a script's
//! `EVALSHA` that finds no script on its node falls back to `SCRIPT LOAD` (sent to
//! every primary) and runs again.
//!
//! Where a connection lives: a task on a single-threaded runtime (each actix HTTP
//! worker is one) gets that thread's own connection, whose reader task runs on the
//! same thread, so a webhook's round trip wakes no other thread (cross-thread wake-ups
//! were a tenth of the intake's CPU). Tasks of the multi-threaded runtime (workers,
//! schedulers) share the pool's slots, connected on the runtime the pool was built on.
//!
//! Failure handling: connections are made lazily (the service starts while Redis is
//! down), each connect and each answer is bounded by `redis.timeout_ms`, and a
//! connection that returns an I/O error is dropped, so the next caller connects
//! afresh: a Redis restart costs the requests in flight, not the instance.
//!
//! What the callers guarantee for this to hold: every command, pipeline and script
//! touches keys of one hash slot (one `{t:<tenant>}`, `{o:<org>}` or `{f:<login>}`
//! tag, or one global index key); `KEYS` is answered by every primary (the client
//! merges the replies); `SCAN` is not used. Commands whose key is not their first
//! argument (`MEMORY USAGE`) are routed explicitly here.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool_redis::PoolError;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// `standalone` (one server at `url`) or `cluster` (Redis Cluster, seeded from `urls`).
    #[serde(default)]
    pub mode: RedisMode,
    pub url: String,
    /// Seed nodes of the cluster (`redis.mode = "cluster"`); any reachable ones will do.
    #[serde(default)]
    pub urls: Vec<String>,
    pub key_prefix: String,
    /// Multiplexed connections shared by every task of the instance.
    pub pool_size: usize,
    pub timeout_ms: u64,
}

/// How the service reaches Redis; see this module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    #[default]
    Standalone,
    Cluster,
}

/// What went wrong building a pool (bad URL or settings).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PoolBuildError(String);

/// Redis connections of this process, in either mode. Cheap to clone.
#[derive(Clone)]
pub struct RedisPool {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    timeout: Duration,
    /// Where connections (and their reader tasks) live; `None` outside a runtime.
    runtime: Option<tokio::runtime::Handle>,
    slots: Vec<Arc<Slot>>,
    next: AtomicUsize,
    generation: AtomicU64,
}

#[derive(Clone)]
enum Target {
    Standalone(redis::Client, AsyncConnectionConfig),
    Cluster(ClusterClient),
}

/// Where one connection lives: a pool slot, or a single-threaded runtime's own.
#[derive(Default)]
struct Slot {
    current: Mutex<Option<(u64, Shared)>>,
    /// One connect at a time per slot; the others wait for its result.
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn current(self: &Arc<Self>) -> Option<RedisConn> {
        let guard = lock(&self.current);
        let (generation, shared) = guard.as_ref()?;
        Some(RedisConn {
            conn: shared.clone(),
            generation: *generation,
            slot: self.clone(),
        })
    }

    /// Drops the connection of `generation` (unless a newer one replaced it already).
    fn forget(&self, generation: u64) {
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }
}

#[derive(Clone)]
enum Shared {
    Standalone(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// One handle on a shared connection; dropping it costs nothing.
pub struct RedisConn {
    conn: Shared,
    generation: u64,
    /// Where the connection came from, to drop it there when it fails.
    slot: Arc<Slot>,
}

/// A single-threaded runtime's own connection to one pool.
struct Local {
    pool: Weak<Inner>,
    slot: Arc<Slot>,
}

thread_local! {
    static LOCAL: RefCell<Vec<Local>> = const { RefCell::new(Vec::new()) };
}

impl RedisPool {
    /// Connections for `settings.mode`: `settings.url` on a single server,
    /// `settings.urls` (any reachable nodes of the cluster; the client discovers the
    /// rest) on a cluster. `settings.pool_size` is the number of multiplexed
    /// connections; connecting and every answer give up after `timeout_ms`, so an
    /// outage turns into fast errors instead of hanging callers.
    pub fn new(settings: &RedisSettings) -> Result<Self, PoolBuildError> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let target = match settings.mode {
            RedisMode::Standalone => {
                let client = redis::Client::open(settings.url.as_str())
                    .map_err(|e| PoolBuildError(format!("redis.url: {e}")))?;
                let cfg = AsyncConnectionConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                Target::Standalone(client, cfg)
            }
            RedisMode::Cluster => {
                let client = redis::cluster::ClusterClientBuilder::new(settings.urls.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()
                    .map_err(|e| PoolBuildError(format!("redis.urls: {e}")))?;
                Target::Cluster(client)
            }
        };
        Ok(RedisPool {
            inner: Arc::new(Inner {
                target,
                timeout,
                runtime: tokio::runtime::Handle::try_current().ok(),
                slots: (0..settings.pool_size.max(1))
                    .map(|_| Arc::default())
                    .collect(),
                next: AtomicUsize::new(0),
                generation: AtomicU64::new(1),
            }),
        })
    }

    /// A handle on one of the shared connections, connecting it first if needed.
    pub async fn get(&self) -> Result<RedisConn, PoolError> {
        if tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
        {
            // This thread's connection, made on this thread's runtime.
            let slot = self.local();
            return self
                .connected(&slot, || self.inner.target.clone().connect())
                .await;
        }
        let inner = &self.inner;
        let slot = &inner.slots[inner.next.fetch_add(1, Ordering::Relaxed) % inner.slots.len()];
        self.connected(slot, || inner.connect()).await
    }

    /// The connection of `slot`, made with `connect` (one connect at a time) if none.
    async fn connected<F, Fut>(&self, slot: &Arc<Slot>, connect: F) -> Result<RedisConn, PoolError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = RedisResult<Shared>>,
    {
        if let Some(conn) = slot.current() {
            return Ok(conn);
        }
        let timeout = self.inner.timeout;
        let _gate = tokio::time::timeout(timeout, slot.connecting.lock())
            .await
            .map_err(|_| PoolError::Timeout(deadpool_redis::TimeoutType::Wait))?;
        if let Some(conn) = slot.current() {
            return Ok(conn);
        }
        let shared = tokio::time::timeout(timeout, connect())
            .await
            .map_err(|_| PoolError::Timeout(deadpool_redis::TimeoutType::Create))?
            .map_err(PoolError::Backend)?;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        *lock(&slot.current) = Some((generation, shared.clone()));
        Ok(RedisConn {
            conn: shared,
            generation,
            slot: slot.clone(),
        })
    }

    /// This thread's slot for this pool; entries of dropped pools are removed.
    fn local(&self) -> Arc<Slot> {
        LOCAL.with(|all| {
            let mut all = all.borrow_mut();
            all.retain(|l| l.pool.strong_count() > 0);
            let me = Arc::downgrade(&self.inner);
            if let Some(l) = all.iter().find(|l| Weak::ptr_eq(&l.pool, &me)) {
                return l.slot.clone();
            }
            let slot = Arc::<Slot>::default();
            all.push(Local {
                pool: me,
                slot: slot.clone(),
            });
            slot
        })
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.target, Target::Cluster(_))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Target {
    /// A new connection whose reader task runs on the current runtime.
    async fn connect(self) -> RedisResult<Shared> {
        match self {
            Target::Standalone(client, cfg) => client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
                .map(Shared::Standalone),
            Target::Cluster(client) => client.get_async_connection().await.map(Shared::Cluster),
        }
    }
}

impl Inner {
    async fn connect(&self) -> RedisResult<Shared> {
        let connect = self.target.clone().connect();
        match &self.runtime {
            Some(rt) => rt.spawn(connect).await.map_err(|e| {
                RedisError::from((
                    redis::ErrorKind::IoError,
                    "connect task failed",
                    e.to_string(),
                ))
            })?,
            None => connect.await,
        }
    }
}

impl RedisConn {
    /// `MEMORY USAGE key SAMPLES 0` (bytes, `None` for a missing key), asked of the node
    /// that holds the key.
    pub async fn memory_usage(&mut self, key: &str) -> RedisResult<Option<u64>> {
        let mut cmd = redis::cmd("MEMORY");
        cmd.arg("USAGE").arg(key).arg("SAMPLES").arg(0);
        match &mut self.conn {
            Shared::Standalone(_) => cmd.query_async(self).await,
            Shared::Cluster(c) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let slot = redis::cluster_routing::get_slot(key.as_bytes());
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::new(slot, SlotAddr::Master),
                ));
                let value = c.route_command(&cmd, route).await?;
                redis::from_redis_value(&value)
            }
        }
    }

    fn outcome<T>(&self, r: RedisResult<T>) -> RedisResult<T> {
        crate::metrics::REDIS_ROUND_TRIPS.inc();
        // A transport failure drops the connection, so the next caller makes a new one.
        if let Err(e) = &r {
            if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                self.slot.forget(self.generation);
            }
        }
        r
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let r = match &mut self.conn {
                Shared::Standalone(c) => c.req_packed_command(cmd).await,
                Shared::Cluster(c) => c.req_packed_command(cmd).await,
            };
            self.outcome(r)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let r = match &mut self.conn {
                Shared::Standalone(c) => c.req_packed_commands(cmd, offset, count).await,
                Shared::Cluster(c) => c.req_packed_commands(cmd, offset, count).await,
            };
            self.outcome(r)
        })
    }

    fn get_db(&self) -> i64 {
        match &self.conn {
            Shared::Standalone(c) => c.get_db(),
            Shared::Cluster(c) => c.get_db(),
        }
    }
}

/// A lock on one key held by a random token (`SET NX PX`), renewed and released only by
/// its holder: the one mechanism behind the order and master-data locks, the token
/// fetch and the reconciliation poller.
pub mod lock {
    use std::sync::LazyLock;

    use redis::aio::ConnectionLike;
    use redis::{RedisResult, Script};

    static REFRESH: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
        )
    });
    static RELEASE: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        )
    });

    /// Takes `key` for `ttl_ms` with `token`; false while someone else holds it.
    pub async fn take_with<C: ConnectionLike>(
        conn: &mut C,
        key: &str,
        token: &str,
        ttl_ms: u64,
    ) -> RedisResult<bool> {
        let ok: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(conn)
            .await?;
        Ok(ok.is_some())
    }

    /// Takes `key` with a fresh random token, returned when the lock is ours.
    pub async fn take<C: ConnectionLike>(
        conn: &mut C,
        key: &str,
        ttl_ms: u64,
    ) -> RedisResult<Option<String>> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        Ok(take_with(conn, key, &token, ttl_ms).await?.then_some(token))
    }

    /// Extends the lock to `ttl_ms` from now if `token` still holds it.
    pub async fn refresh<C: ConnectionLike>(
        conn: &mut C,
        key: &str,
        token: &str,
        ttl_ms: u64,
    ) -> RedisResult<bool> {
        let held: i64 = REFRESH
            .key(key)
            .arg(token)
            .arg(ttl_ms)
            .invoke_async(conn)
            .await?;
        Ok(held == 1)
    }

    /// Deletes the lock if `token` still holds it.
    pub async fn release<C: ConnectionLike>(
        conn: &mut C,
        key: &str,
        token: &str,
    ) -> RedisResult<bool> {
        let gone: i64 = RELEASE.key(key).arg(token).invoke_async(conn).await?;
        Ok(gone == 1)
    }

    /// Keeps something held for `ttl` renewed: calls `renew` every `every` and returns
    /// once it is lost, i.e. `renew` answers `Ok(false)` (someone else holds it) or no
    /// renewal has worked for a whole `ttl` (it may have expired and been handed on).
    /// A failed renewal is reported to `on_error` and tried again at the next tick.
    /// Run it beside the work it protects (`select!`) and drop the work when it returns.
    pub async fn keep_renewed<F, Fut, E>(
        ttl: std::time::Duration,
        every: std::time::Duration,
        mut renew: F,
        mut on_error: impl FnMut(&E),
    ) where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool, E>>,
    {
        let mut held_until = tokio::time::Instant::now() + ttl;
        loop {
            tokio::time::sleep(every).await;
            let asked = tokio::time::Instant::now();
            match renew().await {
                Ok(true) => held_until = asked + ttl,
                Ok(false) => return,
                Err(e) => {
                    on_error(&e);
                    if tokio::time::Instant::now() >= held_until {
                        return;
                    }
                }
            }
        }
    }
}
