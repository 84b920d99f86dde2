//! Access tokens per Minimax login, with lockout protection.
//!
//! Everything here is keyed by the login's fingerprint (an HMAC of username, password,
//! client id and secret, and token URL), not by tenant: tenants that share a login share
//! its token and its block, so N tenants with a wrong password still make one rejected
//! request, and changed credentials are simply another key.
//!
//! Guarantees:
//! - one token request per login per expiry across tasks (in-process single flight) and
//!   instances (Redis lock `SET NX PX`; the others poll the Redis cache);
//! - the token lives in process and in Redis (`{p}:{f:<fingerprint>}:token`, sealed, TTL
//!   `expires_in - margin`);
//! - after one rejected token request the login is recorded as blocked
//!   (`{p}:{f:<fingerprint>}:auth:blocked`, no TTL) and no further token request is made
//!   with it; other credentials (another fingerprint) are not blocked.
//!
//! Tokens, passwords and client secrets are never logged or put in errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tracing::Instrument;

use super::error::{parse_retry_after, strip_html, MinimaxError, OAuthError};
use super::models::TokenResponse;
use super::{CachedToken, TenantClient};

/// Whether a tenant's current credentials may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthState {
    Ok,
    Blocked {
        reason: String,
        since: DateTime<Utc>,
    },
}

#[derive(Serialize, Deserialize)]
struct StoredToken {
    /// The access token, sealed with the service's cipher.
    token: String,
    /// Unix ms after which the token must not be used.
    until_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredBlock {
    reason: String,
    since: DateTime<Utc>,
}

/// HMAC-SHA256 over the length-prefixed parts of a login (username, password, client
/// id and secret, token URL), hex encoded.
pub(crate) fn fingerprint(key: &SecretString, parts: &[&str]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty key
    // rather than panic if that ever changed.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret().as_bytes())
        .unwrap_or_else(|_| {
            <Hmac<Sha256> as Mac>::new_from_slice(b"minimax").unwrap_or_else(|_| unreachable!())
        });
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    crate::crypto::hex(&mac.finalize().into_bytes())
}

const POLL: Duration = Duration::from_millis(50);

impl TenantClient {
    fn login_key(&self, what: &str) -> String {
        format!("{}:{{f:{}}}:{}", self.inner.prefix, self.fingerprint, what)
    }

    fn token_key(&self) -> String {
        self.login_key("token")
    }

    fn lock_key(&self) -> String {
        self.login_key("token:lock")
    }

    fn block_key(&self) -> String {
        self.login_key("auth:blocked")
    }

    /// Current auth state of the tenant's credentials (for status and metrics).
    pub async fn auth_state(&self) -> AuthState {
        let block = match self.inner.conn().await {
            Ok(mut conn) => self.read_block(&mut conn).await,
            Err(e) => Err(e),
        };
        match block {
            Ok(Some(block)) => AuthState::Blocked {
                reason: block.reason,
                since: block.since,
            },
            _ => AuthState::Ok,
        }
    }

    /// Forgets a block, e.g. after an operator re-created the application password with
    /// the same value. The next call makes one token request again.
    pub async fn clear_block(&self) -> Result<(), MinimaxError> {
        let mut conn = self.inner.conn().await?;
        let _: i64 = conn.del(self.block_key()).await?;
        Ok(())
    }

    /// The block of this login, if any (on the caller's connection: the token path
    /// must not hold two pool connections at once).
    async fn read_block(
        &self,
        conn: &mut crate::redis_conn::RedisConn,
    ) -> Result<Option<StoredBlock>, MinimaxError> {
        let raw: Option<String> = conn.get(self.block_key()).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    fn blocked_error(&self, block: StoredBlock) -> MinimaxError {
        MinimaxError::CredentialsBlocked {
            reason: block.reason,
            since: block.since,
            retry_at: self.recheck_at(),
        }
    }

    fn recheck_at(&self) -> DateTime<Utc> {
        let secs = i64::try_from(self.inner.settings.blocked_recheck_secs).unwrap_or(300);
        Utc::now() + chrono::Duration::seconds(secs)
    }

    fn process_cached(&self, stale: Option<&str>) -> Option<SecretString> {
        let map = self.inner.tokens.lock().ok()?;
        let cached = map.get(&self.fingerprint)?;
        let usable =
            cached.valid_until > Instant::now() && Some(cached.token.expose_secret()) != stale;
        usable.then(|| cached.token.clone())
    }

    fn store_in_process(&self, token: &str, until_ms: i64) {
        let remaining = until_ms - Utc::now().timestamp_millis();
        let remaining = Duration::from_millis(u64::try_from(remaining).unwrap_or(0));
        if let Ok(mut map) = self.inner.tokens.lock() {
            map.insert(
                self.fingerprint.clone(),
                CachedToken {
                    token: SecretString::from(token),
                    valid_until: Instant::now() + remaining,
                },
            );
        }
    }

    async fn redis_cached(
        &self,
        conn: &mut crate::redis_conn::RedisConn,
        stale: Option<&str>,
    ) -> Result<Option<SecretString>, MinimaxError> {
        let raw: Option<String> = conn.get(self.token_key()).await?;
        let Some(stored) = raw.and_then(|r| serde_json::from_str::<StoredToken>(&r).ok()) else {
            return Ok(None);
        };
        // Sealed at rest; a value sealed with another key is simply not reused.
        let Ok(token) = self.inner.cipher.open(&stored.token) else {
            return Ok(None);
        };
        let token = token.expose_secret().to_owned();
        let usable =
            stored.until_ms > Utc::now().timestamp_millis() && Some(token.as_str()) != stale;
        if !usable {
            return Ok(None);
        }
        self.store_in_process(&token, stored.until_ms);
        Ok(Some(SecretString::from(token)))
    }

    fn flight(&self) -> Arc<tokio::sync::Mutex<()>> {
        match self.inner.flights.lock() {
            Ok(mut map) => map.entry(self.fingerprint.clone()).or_default().clone(),
            // A poisoned map only loses in-process single flight; Redis still guards.
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// A usable access token. `stale` is a token the API just refused with 401: it is
    /// not handed out again.
    pub(crate) async fn access_token(
        &self,
        stale: Option<&str>,
    ) -> Result<SecretString, MinimaxError> {
        if let Some(token) = self.process_cached(stale) {
            return Ok(token);
        }
        let flight = self.flight();
        let _guard = flight.lock().await;
        if let Some(token) = self.process_cached(stale) {
            return Ok(token);
        }
        let span = tracing::info_span!("minimax_token", tenant = %self.creds.tenant_id);
        self.acquire_shared(stale).instrument(span).await
    }

    async fn acquire_shared(&self, stale: Option<&str>) -> Result<SecretString, MinimaxError> {
        let lock_ms = self.inner.settings.request_timeout_ms + 5_000;
        let deadline = Instant::now() + Duration::from_millis(lock_ms * 2);
        let lock_value = uuid::Uuid::new_v4().to_string();
        loop {
            let mut conn = self.inner.conn().await?;
            if let Some(token) = self.redis_cached(&mut conn, stale).await? {
                return Ok(token);
            }
            if let Some(block) = self.read_block(&mut conn).await? {
                return Err(self.blocked_error(block));
            }
            let got = crate::redis_conn::lock::take_with(
                &mut conn,
                &self.lock_key(),
                &lock_value,
                lock_ms,
            )
            .await?;
            if got {
                // Someone may have finished between our cache read and the lock.
                let result = match self.redis_cached(&mut conn, stale).await {
                    Ok(Some(token)) => Ok(token),
                    Ok(None) => match self.read_block(&mut conn).await {
                        Ok(Some(block)) => Err(self.blocked_error(block)),
                        Ok(None) => self.request_token(&mut conn).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                let _ = crate::redis_conn::lock::release(&mut conn, &self.lock_key(), &lock_value)
                    .await;
                return result;
            }
            drop(conn);
            if Instant::now() > deadline {
                return Err(MinimaxError::transient(
                    "timed out waiting for another instance to fetch the token",
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The one password-grant request, made while holding the Redis lock.
    async fn request_token(
        &self,
        conn: &mut crate::redis_conn::RedisConn,
    ) -> Result<SecretString, MinimaxError> {
        tracing::info!("requesting a Minimax access token");
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "password"),
            ("username", &self.creds.login.username),
            ("password", self.creds.login.password.expose_secret()),
            ("scope", self.creds.country.scope()),
        ];
        if !self.client_id.is_empty() {
            form.push(("client_id", &self.client_id));
            form.push(("client_secret", self.client_secret.expose_secret()));
        }
        let response = self
            .inner
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                crate::metrics::TOKEN_REQUESTS
                    .with_label_values(&["error"])
                    .inc();
                MinimaxError::from_reqwest(e)
            })?;
        let status = response.status().as_u16();
        let outcome = match status {
            200..=299 => "ok",
            400 | 401 | 403 => "rejected",
            _ => "error",
        };
        crate::metrics::TOKEN_REQUESTS
            .with_label_values(&[outcome])
            .inc();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let body = response.text().await.map_err(MinimaxError::from_reqwest)?;
        match status {
            200..=299 => {
                let parsed: TokenResponse =
                    serde_json::from_str(&body).map_err(|_| MinimaxError::Unexpected {
                        status,
                        detail: "token response without access_token".into(),
                    })?;
                let expires_in = parsed.expires_in.unwrap_or(3600);
                let margin = self.inner.settings.token_margin_secs;
                // Short-lived tokens (tests, odd servers) keep half their life.
                let usable_secs = if expires_in > margin {
                    expires_in - margin
                } else {
                    (expires_in / 2).max(1)
                };
                let usable_ms = i64::try_from(usable_secs * 1000).unwrap_or(i64::MAX / 4);
                let until_ms = Utc::now().timestamp_millis() + usable_ms;
                let stored = StoredToken {
                    token: self.inner.cipher.seal(&parsed.access_token),
                    until_ms,
                };
                let raw = serde_json::to_string(&stored).map_err(|e| MinimaxError::Unexpected {
                    status,
                    detail: e.to_string(),
                })?;
                let _: () = conn
                    .pset_ex(self.token_key(), raw, usable_ms as u64)
                    .await?;
                self.store_in_process(&parsed.access_token, until_ms);
                Ok(SecretString::from(parsed.access_token))
            }
            400 | 401 | 403 => {
                let err: OAuthError = serde_json::from_str(&body).unwrap_or_default();
                let reason = match (err.error, err.error_description) {
                    (Some(code), Some(desc)) => format!("{code}: {}", strip_html(&desc)),
                    (Some(code), None) => code,
                    (None, _) => format!("HTTP {status} from the token endpoint"),
                };
                let since = Utc::now();
                let block = StoredBlock {
                    reason: reason.clone(),
                    since,
                };
                let raw = serde_json::to_string(&block).map_err(|e| MinimaxError::Unexpected {
                    status,
                    detail: e.to_string(),
                })?;
                let _: () = conn.set(self.block_key(), raw).await?;
                tracing::warn!(%reason, "Minimax rejected the credentials; tenant blocked");
                Err(MinimaxError::CredentialsRejected {
                    reason,
                    retry_at: self.recheck_at(),
                })
            }
            _ => Err(MinimaxError::Transient {
                reason: format!("token endpoint answered HTTP {status}"),
                retry_after,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_depends_on_each_part_and_hides_the_password() {
        let key = SecretString::from("k");
        let a = fingerprint(&key, &["user", "secret", "client"]);
        assert_eq!(a.len(), 64);
        assert!(!a.contains("secret"));
        assert_ne!(a, fingerprint(&key, &["user", "secret2", "client"]));
        assert_ne!(a, fingerprint(&key, &["user2", "secret", "client"]));
        assert_ne!(a, fingerprint(&key, &["user", "secret", "client2"]));
        // Length prefixes keep boundaries: ("ab","c") differs from ("a","bc").
        assert_ne!(
            fingerprint(&key, &["ab", "c", ""]),
            fingerprint(&key, &["a", "bc", ""])
        );
        assert_eq!(a, fingerprint(&key, &["user", "secret", "client"]));
        // The client secret and token URL are parts of the login too.
        let full = fingerprint(&key, &["user", "secret", "client", "cs", "https://t"]);
        assert_ne!(
            full,
            fingerprint(&key, &["user", "secret", "client", "cs2", "https://t"])
        );
        assert_ne!(
            full,
            fingerprint(&key, &["user", "secret", "client", "cs", "https://u"])
        );
    }
}
