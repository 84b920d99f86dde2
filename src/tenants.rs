//! Tenants: one shop and its Minimax organisation each, stored in Redis.
//!
//! Secrets (Minimax password, client secret, webhook secrets) are sealed with
//! [`crate::crypto::Cipher`] before they reach Redis and are exposed only where they
//! are used (signature checks, token requests). Views for the admin API say whether a
//! secret is set, never its value.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::redis_conn::RedisPool as Pool;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::crypto::{Cipher, CryptoError};
use crate::mapping::BookingSettings;
use crate::minimax::{Country, TenantCredentials};
pub use crate::minimax::{MinimaxLogin, MinimaxLoginView};
use crate::tenant_cache::TenantCache;
use crate::webshop::{ParseSettings, Platform};

/// Tenant ids become part of Redis keys and URLs, so they are kept to a safe alphabet.
pub fn valid_tenant_id(tenant: &str) -> bool {
    (1..=64).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `p:{t:T}:<what>`: every key of one tenant — queue, tenant record, booking records —
/// shares the tenant's hash tag, so they live in one Redis Cluster slot.
pub fn tenant_key(prefix: &str, tenant: &str, what: &str) -> String {
    format!("{prefix}:{{t:{tenant}}}:{what}")
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

/// A tenant as the service uses it (secrets in the clear, in memory only).
#[derive(Clone)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub country: Country,
    pub organisation_id: i64,
    pub minimax: MinimaxLogin,
    pub webhook_secrets: BTreeMap<String, SecretString>,
    pub settings: BookingSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("id", &self.id)
            .field("country", &self.country)
            .field("organisation_id", &self.organisation_id)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    pub fn credentials(&self) -> TenantCredentials {
        TenantCredentials {
            tenant_id: self.id.clone(),
            country: self.country,
            organisation_id: self.organisation_id,
            login: self.minimax.clone(),
        }
    }

    /// The admin API's view: no secret values.
    pub fn view(&self) -> TenantView {
        TenantView {
            id: self.id.clone(),
            name: self.name.clone(),
            country: self.country,
            organisation_id: self.organisation_id,
            minimax: MinimaxLoginView::from(&self.minimax),
            webhook_secrets_set: Platform::ALL
                .into_iter()
                .map(|p| {
                    (
                        p.as_str().to_owned(),
                        self.webhook_secrets.contains_key(p.as_str()),
                    )
                })
                .collect(),
            settings: self.settings.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A tenant without secret values.
#[derive(Debug, Clone, Serialize)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub country: Country,
    pub organisation_id: i64,
    pub minimax: MinimaxLoginView,
    pub webhook_secrets_set: BTreeMap<String, bool>,
    pub settings: BookingSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The Minimax login as submitted; secrets may be left out to keep the stored ones.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MinimaxLoginInput {
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub api_base: Option<String>,
    pub token_url: Option<String>,
}

/// A tenant as submitted to `PUT /admin/tenants/{id}` or seeded from the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantInput {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub country: Country,
    pub organisation_id: i64,
    pub minimax: MinimaxLoginInput,
    /// Platform name → secret; `null` removes a secret. Degenerate secrets (empty, blank,
    /// short, `whsec_` that is not base64 of at least 16 bytes) are refused.
    #[serde(default)]
    pub webhook_secrets: BTreeMap<String, Option<SecretString>>,
    #[serde(default)]
    pub settings: Option<BookingSettings>,
}

/// Shortest accepted webhook secret, in characters (plain) or decoded bytes (`whsec_`).
pub const MIN_SECRET_LEN: usize = 16;
/// Longest accepted secret or password, in characters.
pub const MAX_SECRET_LEN: usize = 1024;
/// Longest accepted name, code, prefix or other short text, in characters.
pub const MAX_TEXT_LEN: usize = 255;
/// Longest accepted URL, in characters.
pub const MAX_URL_LEN: usize = 2048;
/// Most entries accepted in a settings list or map.
pub const MAX_ENTRIES: usize = 100;

/// Why a webhook secret is not worth the name, or `None` when it is. Never says what the
/// secret is. `whsec_` secrets are Standard Webhooks keys: base64 of the key bytes.
pub fn secret_problem(secret: &SecretString) -> Option<&'static str> {
    use base64::Engine as _;
    let raw = secret.expose_secret();
    if raw.trim().is_empty() {
        return Some("must not be empty or blank (send null to remove the secret)");
    }
    if raw.chars().count() > MAX_SECRET_LEN {
        return Some("expected at most 1024 characters");
    }
    if let Some(b64) = raw.strip_prefix("whsec_") {
        return match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            Err(_) => Some("a whsec_ secret must be valid base64"),
            Ok(key) if key.len() < MIN_SECRET_LEN => {
                Some("a whsec_ secret must decode to at least 16 bytes")
            }
            Ok(_) => None,
        };
    }
    if raw.chars().count() < MIN_SECRET_LEN {
        return Some("expected at least 16 characters");
    }
    None
}

fn check_len(field: &str, v: Option<&str>, max: usize, problems: &mut Vec<String>) {
    if v.is_some_and(|v| v.chars().count() > max) {
        problems.push(format!("{field}: expected at most {max} characters"));
    }
}

/// Size limits of the booking settings' texts, lists and maps (they are stored with the
/// tenant and read on every booking).
fn settings_size_problems(s: &BookingSettings, problems: &mut Vec<String>) {
    let texts: [(&str, Option<&str>); 11] = [
        (
            "settings.customer_code_prefix",
            Some(&s.customer_code_prefix),
        ),
        (
            "settings.catch_all_customer_code",
            Some(&s.catch_all_customer_code),
        ),
        (
            "settings.catch_all_customer_name",
            Some(&s.catch_all_customer_name),
        ),
        ("settings.generic_item_prefix", Some(&s.generic_item_prefix)),
        ("settings.shipping_item_code", Some(&s.shipping_item_code)),
        ("settings.fee_item_code", Some(&s.fee_item_code)),
        (
            "settings.default_payment_method",
            s.default_payment_method.as_deref(),
        ),
        (
            "settings.document_numbering",
            s.document_numbering.as_deref(),
        ),
        (
            "settings.invoice_report_template",
            s.invoice_report_template.as_deref(),
        ),
        (
            "settings.credit_note_report_template",
            s.credit_note_report_template.as_deref(),
        ),
        ("settings.cashier_employee", s.cashier_employee.as_deref()),
    ];
    for (field, v) in texts {
        check_len(field, v, MAX_TEXT_LEN, problems);
    }
    let maps = [
        ("settings.vat_rate_codes", &s.vat_rate_codes),
        ("settings.payment_methods", &s.payment_methods),
    ];
    for (field, map) in maps {
        if map.len() > MAX_ENTRIES {
            problems.push(format!("{field}: expected at most {MAX_ENTRIES} entries"));
        }
        if map
            .iter()
            .any(|(k, v)| k.chars().count() > MAX_TEXT_LEN || v.chars().count() > MAX_TEXT_LEN)
        {
            problems.push(format!(
                "{field}: keys and values must be at most {MAX_TEXT_LEN} characters"
            ));
        }
    }
    if s.woo_vat_meta_keys.len() > MAX_ENTRIES {
        problems.push(format!(
            "settings.woo_vat_meta_keys: expected at most {MAX_ENTRIES} entries"
        ));
    }
    if s.woo_vat_meta_keys
        .iter()
        .any(|k| k.chars().count() > MAX_TEXT_LEN)
    {
        problems.push(format!(
            "settings.woo_vat_meta_keys: entries must be at most {MAX_TEXT_LEN} characters"
        ));
    }
}

/// A member name of caller input as it may appear in an error path: plain names as
/// they are, anything else as `?` (it is caller text).
pub fn shown_key(key: &str) -> &str {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        key
    } else {
        "?"
    }
}

fn check_url(field: &str, v: &Option<String>, problems: &mut Vec<String>) {
    if let Some(u) = v {
        if url::Url::parse(u)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            problems.push(format!("{field}: expected an http(s) URL"));
        }
    }
}

impl TenantInput {
    /// Builds the tenant to store: `existing` supplies secrets the input leaves out.
    pub fn into_tenant(self, id: &str, existing: Option<&Tenant>) -> Result<Tenant, TenantError> {
        let mut problems = Vec::new();
        if !valid_tenant_id(id) {
            problems.push("id: expected 1-64 characters of A-Z, a-z, 0-9, '-' or '_'".into());
        }
        if let Some(body_id) = &self.id {
            if body_id != id {
                problems.push("id: differs from the id in the URL path".into());
            }
        }
        check_len("name", self.name.as_deref(), MAX_TEXT_LEN, &mut problems);
        let m = &self.minimax;
        check_len(
            "minimax.username",
            m.username.as_deref(),
            MAX_TEXT_LEN,
            &mut problems,
        );
        check_len(
            "minimax.password",
            m.password.as_ref().map(|p| p.expose_secret()),
            MAX_SECRET_LEN,
            &mut problems,
        );
        check_len(
            "minimax.client_id",
            m.client_id.as_deref(),
            MAX_TEXT_LEN,
            &mut problems,
        );
        check_len(
            "minimax.client_secret",
            m.client_secret.as_ref().map(|p| p.expose_secret()),
            MAX_SECRET_LEN,
            &mut problems,
        );
        check_len(
            "minimax.api_base",
            m.api_base.as_deref(),
            MAX_URL_LEN,
            &mut problems,
        );
        check_len(
            "minimax.token_url",
            m.token_url.as_deref(),
            MAX_URL_LEN,
            &mut problems,
        );
        if self.organisation_id <= 0 {
            problems.push(
                "organisation_id: expected the Minimax organisation id (a positive number)".into(),
            );
        }
        let username = self
            .minimax
            .username
            .clone()
            .or_else(|| existing.map(|e| e.minimax.username.clone()))
            .unwrap_or_default();
        if username.trim().is_empty() {
            problems.push("minimax.username: required".into());
        }
        let password = match (&self.minimax.password, existing) {
            (Some(p), _) if !p.expose_secret().is_empty() => Some(p.clone()),
            (_, Some(e)) => Some(e.minimax.password.clone()),
            _ => None,
        };
        if password.is_none() {
            problems.push("minimax.password: required for a new tenant".into());
        }
        let client_secret = match (&self.minimax.client_secret, existing) {
            (Some(s), _) if s.expose_secret().is_empty() => None,
            (Some(s), _) => Some(s.clone()),
            (None, Some(e)) => e.minimax.client_secret.clone(),
            (None, None) => None,
        };
        check_url("minimax.api_base", &self.minimax.api_base, &mut problems);
        check_url("minimax.token_url", &self.minimax.token_url, &mut problems);
        let mut secrets = existing
            .map(|e| e.webhook_secrets.clone())
            .unwrap_or_default();
        for (platform, secret) in self.webhook_secrets {
            if platform.parse::<Platform>().is_err() {
                problems.push(format!(
                    "webhook_secrets.{}: unknown platform (expected woocommerce, shopify or generic)",
                    shown_key(&platform)
                ));
                continue;
            }
            match secret {
                None => {
                    secrets.remove(&platform);
                }
                Some(secret) => match secret_problem(&secret) {
                    Some(problem) => {
                        problems.push(format!("webhook_secrets.{platform}: {problem}"))
                    }
                    None => {
                        secrets.insert(platform, secret);
                    }
                },
            }
        }
        let settings = self
            .settings
            .or_else(|| existing.map(|e| e.settings.clone()))
            .unwrap_or_default();
        problems.extend(settings.problems());
        settings_size_problems(&settings, &mut problems);
        if !problems.is_empty() {
            return Err(TenantError::Invalid(problems));
        }
        let now = Utc::now();
        Ok(Tenant {
            id: id.to_owned(),
            name: self
                .name
                .or_else(|| existing.map(|e| e.name.clone()))
                .unwrap_or_else(|| id.to_owned()),
            country: self.country,
            organisation_id: self.organisation_id,
            minimax: MinimaxLogin {
                username,
                password: password.unwrap_or_default(),
                client_id: self.minimax.client_id.filter(|c| !c.is_empty()),
                client_secret,
                api_base: self.minimax.api_base,
                token_url: self.minimax.token_url,
            },
            webhook_secrets: secrets,
            settings,
            created_at: existing.map(|e| e.created_at).unwrap_or(now),
            updated_at: now,
        })
    }
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
    id: String,
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

    fn key(&self, id: &str) -> String {
        tenant_key(&self.prefix, id, "tenant")
    }

    fn index_key(&self) -> String {
        format!("{}:tenant_ids", self.prefix)
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

    async fn load(&self, id: &str) -> Result<Option<Stored>, TenantError> {
        if !valid_tenant_id(id) {
            return Ok(None);
        }
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
        id: &str,
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
        id: &str,
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

    pub async fn get(&self, id: &str) -> Result<Option<Tenant>, TenantError> {
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
    pub async fn delete(&self, id: &str) -> Result<bool, TenantError> {
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
    pub async fn weak_secrets(&self) -> Result<Vec<(String, String, &'static str)>, TenantError> {
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

    pub async fn list(&self) -> Result<Vec<String>, TenantError> {
        let mut conn = self.pool.get().await?;
        let mut ids: Vec<String> = conn.smembers(self.index_key()).await?;
        ids.sort();
        Ok(ids)
    }
}
