//! Tenants: one shop and its Minimax organisation each, stored in Redis.
//!
//! Secrets (Minimax password, client secret, webhook secrets) are sealed with
//! [`crate::crypto::Cipher`] before they reach Redis and are exposed only where they
//! are used (signature checks, token requests). Views for the admin API say whether a
//! secret is set, never its value.

mod id;
mod record;

pub use id::{InvalidTenantId, TenantId};

pub use record::{
    secret_problem, shown_key, MinimaxLoginInput, Tenant, TenantInput, TenantView, MAX_ENTRIES,
    MAX_SECRET_LEN, MAX_TEXT_LEN, MAX_URL_LEN, MIN_SECRET_LEN,
};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::redis_conn::RedisPool as Pool;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::crypto::{Cipher, CryptoError};
use crate::mapping::BookingSettings;
use crate::minimax::Country;
pub use crate::minimax::{MinimaxLogin, MinimaxLoginView};
use crate::tenant_cache::TenantCache;
use crate::webshop::{ParseSettings, Platform};

/// `p:{t:T}:<what>`: every key of one tenant — queue, tenant record, booking records —
/// shares the tenant's hash tag, so they live in one Redis Cluster slot.
pub fn tenant_key(prefix: &str, tenant: &TenantId, what: &str) -> String {
    format!("{prefix}:{{t:{tenant}}}:{what}")
}

/// The set of every stored tenant's id (the admin listing; the queue's sweep repairs
/// its own tenant index from it).
pub fn tenant_index_key(prefix: &str) -> String {
    format!("{prefix}:tenant_ids")
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("redis unavailable: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stored tenant cannot be decrypted: {0}")]
    Crypto(#[from] CryptoError),
    #[error("stored tenant is damaged: {0}")]
    Corrupt(String),
    /// Problems with the submitted tenant, one per field.
    #[error("invalid tenant: {}", .0.join("; "))]
    Invalid(Vec<String>),
}
/// A tenant as webhook intake sees it.
pub struct IntakeView {
    /// The tenant's webhook secret for the platform, if it has one.
    pub secret: Option<SecretString>,
    pub parse: ParseSettings,
}

/// The stored form: the same fields with every secret sealed.
#[derive(Serialize, Deserialize)]
struct Stored {
    v: u32,
    id: TenantId,
    name: String,
    country: Country,
    organisation_id: i64,
    username: String,
    password: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    api_base: Option<String>,
    token_url: Option<String>,
    webhook_secrets: BTreeMap<String, String>,
    settings: BookingSettings,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Reads and writes tenants. Cheap to clone (clones share the intake cache).
#[derive(Clone)]
pub struct TenantStore {
    pool: Pool,
    prefix: String,
    cipher: Cipher,
    cache: Arc<TenantCache<IntakeView>>,
}

impl TenantStore {
    pub fn new(pool: Pool, prefix: String, cipher: Cipher) -> Self {
        Self {
            pool,
            prefix,
            cipher,
            cache: Arc::default(),
        }
    }

    fn key(&self, id: &TenantId) -> String {
        tenant_key(&self.prefix, id, "tenant")
    }

    fn index_key(&self) -> String {
        tenant_index_key(&self.prefix)
    }

    /// Raised by every write and delete; intake caches poll it (see [`crate::tenant_cache`]).
    fn revision_key(&self) -> String {
        format!("{}:tenants_rev", self.prefix)
    }

    /// Tells every instance's intake cache that tenants changed, this one's at once.
    async fn changed(&self, conn: &mut crate::redis_conn::RedisConn) -> Result<(), TenantError> {
        self.cache.clear();
        let _: i64 = conn.incr(self.revision_key(), 1).await?;
        Ok(())
    }

    /// Keeps this process's intake cache valid: polls the tenants' revision counter
    /// every [`crate::tenant_cache::POLL`] until `stop` turns true. Without it running
    /// the cache serves nothing and intake reads every tenant from Redis.
    pub async fn watch_changes(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(crate::tenant_cache::POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            let sent = std::time::Instant::now();
            let read = async {
                let mut conn = self.pool.get().await.ok()?;
                let rev: Option<i64> = conn.get(self.revision_key()).await.ok()?;
                Some(rev.unwrap_or(0))
            };
            if let Ok(Some(rev)) = tokio::time::timeout(crate::tenant_cache::STALE, read).await {
                self.cache.confirm(rev, sent);
            }
        }
    }

    async fn load(&self, id: &TenantId) -> Result<Option<Stored>, TenantError> {
        let mut conn = self.pool.get().await?;
        let raw: Option<String> = conn.get(self.key(id)).await?;
        let Some(raw) = raw else { return Ok(None) };
        serde_json::from_str(&raw)
            .map(Some)
            .map_err(|e| TenantError::Corrupt(e.to_string()))
    }

    /// What webhook intake needs of a tenant: the one platform secret (only that one is
    /// opened: intake is the hot path, and it has no use for the Minimax password) and
    /// the parse settings. `None` if the tenant is unknown. Served from the intake
    /// cache when it may be (see [`crate::tenant_cache`]).
    pub async fn intake(
        &self,
        id: &TenantId,
        platform: Platform,
    ) -> Result<Option<Arc<IntakeView>>, TenantError> {
        if let Some(hit) = self.cache.get(id, platform) {
            return Ok(hit);
        }
        let epoch = self.cache.epoch();
        let view = self.read_intake(id, platform).await?.map(Arc::new);
        self.cache.put(id, platform, epoch, view.clone());
        Ok(view)
    }

    async fn read_intake(
        &self,
        id: &TenantId,
        platform: Platform,
    ) -> Result<Option<IntakeView>, TenantError> {
        let Some(s) = self.load(id).await? else {
            return Ok(None);
        };
        let secret = match s.webhook_secrets.get(platform.as_str()) {
            Some(sealed) => Some(self.cipher.open(sealed)?),
            None => None,
        };
        Ok(Some(IntakeView {
            secret,
            parse: ParseSettings {
                woo_vat_meta_keys: s.settings.woo_vat_meta_keys,
                booking_currency: s.settings.booking_currency,
            },
        }))
    }

    pub async fn get(&self, id: &TenantId) -> Result<Option<Tenant>, TenantError> {
        let Some(s) = self.load(id).await? else {
            return Ok(None);
        };
        let open = |v: &String| self.cipher.open(v);
        let mut secrets = BTreeMap::new();
        for (k, v) in &s.webhook_secrets {
            secrets.insert(k.clone(), open(v)?);
        }
        Ok(Some(Tenant {
            id: s.id,
            name: s.name,
            country: s.country,
            organisation_id: s.organisation_id,
            minimax: MinimaxLogin {
                username: s.username,
                password: open(&s.password)?,
                client_id: s.client_id,
                client_secret: s.client_secret.as_ref().map(open).transpose()?,
                api_base: s.api_base,
                token_url: s.token_url,
            },
            webhook_secrets: secrets,
            settings: s.settings,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }))
    }

    /// Stores a tenant; returns true when it is new.
    pub async fn put(&self, t: &Tenant) -> Result<bool, TenantError> {
        self.write(t, None).await.map(|w| w.unwrap_or(false))
    }

    /// Stores a tenant only if the stored one is still the one the change was based on
    /// (`based_on`: its `updated_at`, or `None` for "must not exist yet"). Returns
    /// `None` when another writer came first, else whether the tenant is new. Two
    /// operators editing one tenant therefore never silently undo each other.
    pub async fn put_if_unchanged(
        &self,
        t: &Tenant,
        based_on: Option<DateTime<Utc>>,
    ) -> Result<Option<bool>, TenantError> {
        let expected = match based_on {
            Some(at) => serde_json::to_value(at)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            None => String::new(),
        };
        self.write(t, Some(expected)).await
    }

    async fn write(
        &self,
        t: &Tenant,
        expected: Option<String>,
    ) -> Result<Option<bool>, TenantError> {
        let seal = |v: &SecretString| self.cipher.seal(v.expose_secret());
        let stored = Stored {
            v: 1,
            id: t.id.clone(),
            name: t.name.clone(),
            country: t.country,
            organisation_id: t.organisation_id,
            username: t.minimax.username.clone(),
            password: seal(&t.minimax.password),
            client_id: t.minimax.client_id.clone(),
            client_secret: t.minimax.client_secret.as_ref().map(seal),
            api_base: t.minimax.api_base.clone(),
            token_url: t.minimax.token_url.clone(),
            webhook_secrets: t
                .webhook_secrets
                .iter()
                .map(|(k, v)| (k.clone(), seal(v)))
                .collect(),
            settings: t.settings.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        };
        let json =
            serde_json::to_string(&stored).map_err(|e| TenantError::Corrupt(e.to_string()))?;
        let mut conn = self.pool.get().await?;
        // The index first, then the record: a crash between the two leaves at most an
        // id without a record (readers skip it), never a record the index misses (the
        // queue sweep rebuilds the `tenants` hint from this index). A refused
        // compare-and-set leaves the id too, for the same reason: removing it could
        // race with the writer that won and unindex its record.
        let added: i64 = conn.sadd(self.index_key(), &t.id).await?;
        if let Some(expected) = expected {
            // Compare-and-set on the stored `updated_at` (one script, one key).
            const CAS: &str = r#"
local cur = redis.call('GET', KEYS[1])
if ARGV[2] == '' then
  if cur then return 0 end
elseif (not cur) or cjson.decode(cur)['updated_at'] ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"#;
            let ok: i64 = redis::Script::new(CAS)
                .key(self.key(&t.id))
                .arg(&json)
                .arg(&expected)
                .invoke_async(&mut conn)
                .await?;
            if ok == 0 {
                return Ok(None);
            }
        } else {
            let _: () = conn.set(self.key(&t.id), json).await?;
        }
        self.changed(&mut conn).await?;
        Ok(Some(added == 1))
    }

    /// Removes a tenant; true if it existed. Its jobs stay (the operator may discard them).
    pub async fn delete(&self, id: &TenantId) -> Result<bool, TenantError> {
        let mut conn = self.pool.get().await?;
        // The record first, then the index entry (see `write`).
        let n: i64 = conn.del(self.key(id)).await?;
        let _: i64 = conn.srem(self.index_key(), id).await?;
        self.changed(&mut conn).await?;
        Ok(n == 1)
    }

    /// Every stored webhook secret that [`secret_problem`] refuses today (accepted by an
    /// older version): `(tenant id, platform, problem)`. Start-up reports them; the
    /// secrets themselves are not returned.
    pub async fn weak_secrets(&self) -> Result<Vec<(TenantId, String, &'static str)>, TenantError> {
        let mut out = Vec::new();
        for id in self.list().await? {
            let t = match self.get(&id).await {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(TenantError::Crypto(_)) | Err(TenantError::Corrupt(_)) => continue,
                Err(e) => return Err(e),
            };
            for (platform, secret) in &t.webhook_secrets {
                if let Some(problem) = secret_problem(secret) {
                    out.push((id.clone(), platform.clone(), problem));
                }
            }
        }
        Ok(out)
    }

    pub async fn list(&self) -> Result<Vec<TenantId>, TenantError> {
        let mut conn = self.pool.get().await?;
        let ids: Vec<String> = conn.smembers(self.index_key()).await?;
        // Only valid ids are ever added; anything else in the set is not a tenant.
        let mut ids: Vec<TenantId> = ids.into_iter().filter_map(|id| id.parse().ok()).collect();
        ids.sort();
        Ok(ids)
    }
}
