//! The one way every store reaches Redis, on a single server or on Redis Cluster.
//!
//! [`RedisPool`] is a pool of [`RedisConn`]s; a `RedisConn` implements
//! [`redis::aio::ConnectionLike`], so commands, pipelines and [`redis::Script`]s run on
//! it unchanged in both modes (`redis.mode = "standalone" | "cluster"`). On a cluster,
//! the client routes each command by its first key, follows `MOVED`/`ASK`, refreshes
//! the slot map after a failover, and a script's `EVALSHA` that finds no script on its
//! node falls back to `SCRIPT LOAD` (sent to every primary) and runs again.
//!
//! What the callers guarantee for this to hold: every command, pipeline and script
//! touches keys of one hash slot (one `{t:<tenant>}`, `{o:<org>}` or `{f:<login>}`
//! tag, or one global index key); `KEYS` is answered by every primary (the client
//! merges the replies); `SCAN` is not used. Commands whose key is not their first
//! argument (`MEMORY USAGE`) are routed explicitly here.

use std::time::Duration;

use deadpool_redis::PoolError;
use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::config::{RedisMode, RedisSettings};

/// What went wrong building a pool (bad URL or settings).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PoolBuildError(String);

/// A pool of Redis connections in either mode. Cheap to clone.
#[derive(Clone)]
pub enum RedisPool {
    Standalone(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
}

/// One pooled connection, returned to its pool when dropped.
pub enum RedisConn {
    Standalone(deadpool_redis::Connection),
    Cluster(deadpool_redis::cluster::Connection),
}

impl RedisPool {
    /// A pool for `settings.mode`: `settings.url` on a single server, `settings.urls`
    /// (any reachable nodes of the cluster; the client discovers the rest) on a cluster.
    /// Waiting for, creating and recycling a connection each give up after
    /// `timeout_ms`, so an outage turns into fast errors instead of hanging callers.
    pub fn new(settings: &RedisSettings) -> Result<Self, PoolBuildError> {
        let timeout = Some(Duration::from_millis(settings.timeout_ms));
        let pool_cfg = deadpool_redis::PoolConfig {
            max_size: settings.pool_size,
            timeouts: deadpool_redis::Timeouts {
                wait: timeout,
                create: timeout,
                recycle: timeout,
            },
            ..Default::default()
        };
        let runtime = Some(deadpool_redis::Runtime::Tokio1);
        match settings.mode {
            RedisMode::Standalone => {
                let mut cfg = deadpool_redis::Config::from_url(settings.url.clone());
                cfg.pool = Some(pool_cfg);
                cfg.create_pool(runtime)
                    .map(RedisPool::Standalone)
                    .map_err(|e| PoolBuildError(format!("redis.url: {e}")))
            }
            RedisMode::Cluster => {
                let mut cfg = deadpool_redis::cluster::Config::from_urls(settings.urls.clone());
                cfg.pool = Some(pool_cfg);
                cfg.create_pool(runtime)
                    .map(RedisPool::Cluster)
                    .map_err(|e| PoolBuildError(format!("redis.urls: {e}")))
            }
        }
    }

    pub async fn get(&self) -> Result<RedisConn, PoolError> {
        Ok(match self {
            RedisPool::Standalone(p) => RedisConn::Standalone(p.get().await?),
            RedisPool::Cluster(p) => RedisConn::Cluster(p.get().await?),
        })
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisPool::Cluster(_))
    }
}

impl RedisConn {
    /// `MEMORY USAGE key SAMPLES 0` (bytes, `None` for a missing key), asked of the node
    /// that holds the key.
    pub async fn memory_usage(&mut self, key: &str) -> RedisResult<Option<u64>> {
        let mut cmd = redis::cmd("MEMORY");
        cmd.arg("USAGE").arg(key).arg("SAMPLES").arg(0);
        match self {
            RedisConn::Standalone(c) => cmd.query_async(&mut **c).await,
            RedisConn::Cluster(c) => {
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
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Standalone(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Standalone(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Standalone(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
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
}
