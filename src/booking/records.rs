//! Booking records: what the service knows it did in Minimax for one shop order.
//!
//! Before a document is created the worker writes an *intent*; after the create it
//! writes the Minimax id. A retry that finds an intent without an id knows a create
//! may have succeeded without us hearing the answer, and searches Minimax before
//! creating again. A per-order lock keeps two jobs of one order (e.g. WooCommerce's
//! `order.created` and `order.updated`, both paid) from booking side by side.
//!
//! Keys: `p:{t:T}:booking:<shop order id>:<doc>` (hash) and `…:lock` (string); the
//! customer digests `p:{t:T}:customers` (hash); the master-data create locks
//! `p:{o:O}:master-create:<kind>:<code>` (string, per organisation: every instance and
//! every tenant of one organisation shares them).

use std::collections::HashMap;

use crate::redis_conn::lock;
use crate::redis_conn::RedisPool as Pool;
use chrono::{NaiveDate, Utc};
use redis::AsyncCommands;
use rust_decimal::Decimal;

use crate::queue::tenant_key;
use crate::tenants::TenantId;

/// Why the booking records could not be read or written. Every variant is transient
/// for the job (the booking layer retries it).
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("order snapshot cannot be encoded: {0}")]
    Snapshot(#[from] serde_json::Error),
}

type Result<T> = std::result::Result<T, RecordsError>;

/// Which document of an order a record is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doc {
    Invoice,
    ReceivedOrder,
    CreditNote(String),
}

impl Doc {
    fn key_part(&self) -> String {
        match self {
            Doc::Invoice => "invoice".into(),
            Doc::ReceivedOrder => "order".into(),
            Doc::CreditNote(r) => format!("credit:{r}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// About to create; the create's outcome is unknown until `Created`.
    Intent,
    Created,
    Issued,
    /// The draft was deleted (cancelled or fully refunded before issuing).
    Deleted,
    /// Cancelled in the shop before anything was booked: late paid events book nothing.
    Cancelled,
}

impl RecordState {
    fn as_str(self) -> &'static str {
        match self {
            RecordState::Intent => "intent",
            RecordState::Created => "created",
            RecordState::Issued => "issued",
            RecordState::Deleted => "deleted",
            RecordState::Cancelled => "cancelled",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "intent" => RecordState::Intent,
            "created" => RecordState::Created,
            "issued" => RecordState::Issued,
            "deleted" => RecordState::Deleted,
            "cancelled" => RecordState::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub state: RecordState,
    pub minimax_id: Option<i64>,
    pub number: Option<String>,
    pub reference: Option<String>,
    pub customer_id: Option<i64>,
    pub document_date: Option<NaiveDate>,
    /// The planned document total: orders the candidates of an adoption search.
    pub value: Option<Decimal>,
}

impl Record {
    /// An intent to create the document with `reference` for `customer_id` on `date`.
    pub fn intent(
        reference: String,
        customer_id: Option<i64>,
        date: NaiveDate,
        value: Option<Decimal>,
    ) -> Self {
        Record {
            state: RecordState::Intent,
            minimax_id: None,
            number: None,
            reference: Some(reference),
            customer_id,
            document_date: Some(date),
            value,
        }
    }

    /// A marker without a document (cancelled before it was booked).
    pub fn marker(state: RecordState, reference: Option<String>) -> Self {
        Record {
            state,
            minimax_id: None,
            number: None,
            reference,
            customer_id: None,
            document_date: None,
            value: None,
        }
    }
}

#[derive(Clone)]
pub struct Records {
    pool: Pool,
    prefix: String,
}

impl Records {
    pub fn new(pool: Pool, prefix: String) -> Self {
        Self { pool, prefix }
    }

    fn base(&self, tenant: &TenantId, order: &str) -> String {
        tenant_key(&self.prefix, tenant, &format!("booking:{order}"))
    }

    fn key(&self, tenant: &TenantId, order: &str, doc: &Doc) -> String {
        format!("{}:{}", self.base(tenant, order), doc.key_part())
    }

    fn customers_key(&self, tenant: &TenantId) -> String {
        tenant_key(&self.prefix, tenant, "customers")
    }

    pub async fn get(&self, tenant: &TenantId, order: &str, doc: &Doc) -> Result<Option<Record>> {
        let mut conn = self.conn().await?;
        let f: HashMap<String, String> = conn.hgetall(self.key(tenant, order, doc)).await?;
        let Some(state) = f.get("state").and_then(|s| RecordState::parse(s)) else {
            return Ok(None);
        };
        let get = |k: &str| f.get(k).filter(|v| !v.is_empty()).cloned();
        Ok(Some(Record {
            state,
            minimax_id: get("minimax_id").and_then(|v| v.parse().ok()),
            number: get("number"),
            reference: get("reference"),
            customer_id: get("customer_id").and_then(|v| v.parse().ok()),
            document_date: get("document_date").and_then(|v| v.parse().ok()),
            value: get("value").and_then(|v| v.parse().ok()),
        }))
    }

    pub async fn put(&self, tenant: &TenantId, order: &str, doc: &Doc, rec: &Record) -> Result<()> {
        let mut conn = self.conn().await?;
        let key = self.key(tenant, order, doc);
        let fields: Vec<(&str, String)> = vec![
            ("state", rec.state.as_str().to_owned()),
            (
                "minimax_id",
                rec.minimax_id.map(|v| v.to_string()).unwrap_or_default(),
            ),
            ("number", rec.number.clone().unwrap_or_default()),
            ("reference", rec.reference.clone().unwrap_or_default()),
            (
                "customer_id",
                rec.customer_id.map(|v| v.to_string()).unwrap_or_default(),
            ),
            (
                "document_date",
                rec.document_date.map(|d| d.to_string()).unwrap_or_default(),
            ),
            (
                "value",
                rec.value.map(|v| v.to_string()).unwrap_or_default(),
            ),
            ("updated_at", Utc::now().to_rfc3339()),
        ];
        let _: () = conn.hset_multiple(key, &fields).await?;
        Ok(())
    }

    /// Forgets a record (an intent whose create Minimax refused: nothing was created).
    pub async fn delete(&self, tenant: &TenantId, order: &str, doc: &Doc) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: () = conn.del(self.key(tenant, order, doc)).await?;
        Ok(())
    }

    fn lock_key(&self, tenant: &TenantId, order: &str) -> String {
        format!("{}:lock", self.base(tenant, order))
    }

    /// The create lock of one customer or item code: per organisation, because every
    /// tenant and instance booking into it creates into the same code space.
    fn master_key(&self, organisation_id: i64, kind: &str, code: &str) -> String {
        format!(
            "{}:{{o:{organisation_id}}}:master-create:{kind}:{code}",
            self.prefix
        )
    }

    /// Takes the order's lock for `ttl_ms`; `None` if another job holds it.
    pub async fn lock(
        &self,
        tenant: &TenantId,
        order: &str,
        ttl_ms: u64,
    ) -> Result<Option<String>> {
        self.take(&self.lock_key(tenant, order), ttl_ms).await
    }

    /// Renews the order's lock for `ttl_ms` if `token` still holds it. A booking calls
    /// it every third of the TTL while it runs and before each write to Minimax: a job
    /// that lost its lock must not create a document another job may be creating.
    pub async fn refresh(
        &self,
        tenant: &TenantId,
        order: &str,
        token: &str,
        ttl_ms: u64,
    ) -> Result<bool> {
        let mut conn = self.conn().await?;
        Ok(lock::refresh(&mut conn, &self.lock_key(tenant, order), token, ttl_ms).await?)
    }

    pub async fn unlock(&self, tenant: &TenantId, order: &str, token: &str) {
        self.release(&self.lock_key(tenant, order), token).await;
    }

    /// Takes the create lock of customer or item `code` (`kind`: "customer", "item") in
    /// the organisation; `None` while another job (on any instance) is creating it.
    pub async fn lock_master(
        &self,
        organisation_id: i64,
        kind: &str,
        code: &str,
        ttl_ms: u64,
    ) -> Result<Option<String>> {
        self.take(&self.master_key(organisation_id, kind, code), ttl_ms)
            .await
    }

    pub async fn unlock_master(&self, organisation_id: i64, kind: &str, code: &str, token: &str) {
        self.release(&self.master_key(organisation_id, kind, code), token)
            .await;
    }

    async fn take(&self, key: &str, ttl_ms: u64) -> Result<Option<String>> {
        let mut conn = self.conn().await?;
        Ok(lock::take(&mut conn, key, ttl_ms).await?)
    }

    /// Releases `key` if `token` still holds it; a failure only logs (the lock expires).
    async fn release(&self, key: &str, token: &str) {
        if let Ok(mut conn) = self.conn().await {
            let r = lock::release(&mut conn, key, token).await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "cannot release a lock; it expires by itself");
            }
        }
    }

    /// Keeps the booked order, so a refund that arrives without it (Shopify
    /// `refunds/create`) can still be mapped against the original lines.
    pub async fn put_snapshot(
        &self,
        tenant: &TenantId,
        order: &str,
        snapshot: &crate::webshop::Order,
    ) -> Result<()> {
        let json = serde_json::to_string(snapshot)?;
        let mut conn = self.conn().await?;
        let _: () = conn
            .set(format!("{}:snapshot", self.base(tenant, order)), json)
            .await?;
        Ok(())
    }

    pub async fn snapshot(
        &self,
        tenant: &TenantId,
        order: &str,
    ) -> Result<Option<crate::webshop::Order>> {
        let mut conn = self.conn().await?;
        let raw: Option<String> = conn
            .get(format!("{}:snapshot", self.base(tenant, order)))
            .await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// A digest of the customer data last written to Minimax, to skip unchanged updates.
    pub async fn customer_digest(&self, tenant: &TenantId, code: &str) -> Result<Option<String>> {
        let mut conn = self.conn().await?;
        Ok(conn.hget(self.customers_key(tenant), code).await?)
    }

    pub async fn set_customer_digest(
        &self,
        tenant: &TenantId,
        code: &str,
        digest: &str,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        let _: () = conn.hset(self.customers_key(tenant), code, digest).await?;
        Ok(())
    }

    /// Records that the shop deleted customer `code` (the Minimax customer stays: it
    /// carries accounting history). Returns false when it was recorded before.
    pub async fn mark_customer_deleted(&self, tenant: &TenantId, code: &str) -> Result<bool> {
        let mut conn = self.conn().await?;
        let key = tenant_key(&self.prefix, tenant, "customers-deleted");
        let new: bool = conn.hset_nx(key, code, Utc::now().to_rfc3339()).await?;
        Ok(new)
    }

    async fn conn(&self) -> Result<crate::redis_conn::RedisConn> {
        Ok(self.pool.get().await?)
    }
}
