//! Per-organisation lookup cache in Redis (`{p}:{o:<org>}:cache:<what>`).
//!
//! Code lists live a day, VAT rates per date a day, customer and item code → id mappings
//! until a 404 drops them. The cache is best-effort: a Redis failure here costs an API
//! call, never a booking.

use redis::AsyncCommands;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::TenantClient;

impl TenantClient {
    fn cache_key(&self, what: &str) -> String {
        self.inner
            .org_key(self.creds.organisation_id, &format!("cache:{what}"))
    }

    pub(crate) async fn cache_get<T: DeserializeOwned>(&self, what: &str) -> Option<T> {
        let mut conn = self.inner.conn().await.ok()?;
        let raw: Option<String> = conn.get(self.cache_key(what)).await.ok()?;
        raw.and_then(|r| serde_json::from_str(&r).ok())
    }

    pub(crate) async fn cache_put<T: Serialize>(
        &self,
        what: &str,
        value: &T,
        ttl_secs: Option<u64>,
    ) {
        let Ok(raw) = serde_json::to_string(value) else {
            return;
        };
        let Ok(mut conn) = self.inner.conn().await else {
            return;
        };
        let key = self.cache_key(what);
        let result: redis::RedisResult<()> = match ttl_secs {
            Some(ttl) => conn.set_ex(key, raw, ttl.max(1)).await,
            None => conn.set(key, raw).await,
        };
        if let Err(err) = result {
            tracing::debug!(%err, "lookup cache write failed");
        }
    }

    pub(crate) async fn cache_del(&self, whats: &[String]) {
        let keys: Vec<String> = whats.iter().map(|w| self.cache_key(w)).collect();
        if let Ok(mut conn) = self.inner.conn().await {
            let _: redis::RedisResult<i64> = conn.del(keys).await;
        }
    }
}
