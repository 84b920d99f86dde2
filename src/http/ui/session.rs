//! Dashboard sessions, stored server-side in Redis.
//!
//! Guarantees:
//! - the cookie carries only a random 256-bit session id; Redis keeps the session under
//!   the SHA-256 of that id (a copy of Redis does not hand out live cookies) with an
//!   idle expiry that every use renews, and an absolute limit stored with it;
//! - the cookie is `HttpOnly`, `SameSite=Strict`, `Path=/ui`, and `Secure` when the
//!   request came over TLS (directly or as told by the proxy's forwarded scheme);
//! - each session has its own CSRF token, compared in constant time; signing out deletes
//!   the session, so an old cookie is worthless.

use chrono::Utc;
use rand::RngCore;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::queue::Queue;

pub const COOKIE: &str = "mmc_ui_session";
/// Idle expiry: a session unused this long is gone.
pub const IDLE_SECS: u64 = 2 * 3600;
/// Absolute limit: sign in again after this long, however busy.
pub const MAX_SECS: i64 = 12 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub csrf: String,
    /// Unix seconds of the sign-in.
    pub created: i64,
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    crate::crypto::hex(&b)
}

fn key(queue: &Queue, id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    format!(
        "{}:ui:session:{}",
        queue.prefix(),
        crate::crypto::hex(&digest)
    )
}

/// Creates a session; returns the cookie value.
pub async fn create(queue: &Queue) -> Result<(String, Session), redis::RedisError> {
    let id = random_hex();
    let session = Session {
        csrf: random_hex(),
        created: Utc::now().timestamp(),
    };
    let json = serde_json::to_string(&session).unwrap_or_default();
    let mut conn = queue.pool().get().await.map_err(pool_error)?;
    let _: () = conn.set_ex(key(queue, &id), json, IDLE_SECS).await?;
    Ok((id, session))
}

/// The live session of a cookie value, renewing its idle expiry.
pub async fn load(queue: &Queue, id: &str) -> Result<Option<Session>, redis::RedisError> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let k = key(queue, id);
    let mut conn = queue.pool().get().await.map_err(pool_error)?;
    let (json, _): (Option<String>, i64) = redis::pipe()
        .get(&k)
        .expire(&k, IDLE_SECS as i64)
        .query_async(&mut conn)
        .await?;
    let session = json.and_then(|j| serde_json::from_str::<Session>(&j).ok());
    match session {
        Some(s) if Utc::now().timestamp() - s.created <= MAX_SECS => Ok(Some(s)),
        Some(_) => {
            let _: i64 = conn.del(&k).await?;
            Ok(None)
        }
        None => Ok(None),
    }
}

pub async fn delete(queue: &Queue, id: &str) -> Result<(), redis::RedisError> {
    let mut conn = queue.pool().get().await.map_err(pool_error)?;
    let _: i64 = conn.del(key(queue, id)).await?;
    Ok(())
}

/// Constant-time comparison of a presented CSRF token with the session's.
pub fn csrf_ok(session: &Session, presented: Option<&str>) -> bool {
    presented
        .is_some_and(|p| !p.is_empty() && bool::from(p.as_bytes().ct_eq(session.csrf.as_bytes())))
}

fn pool_error(e: deadpool_redis::PoolError) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::IoError,
        "redis pool unavailable",
        e.to_string(),
    ))
}
