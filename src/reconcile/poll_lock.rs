//! The per-tenant poll lock and the writes it fences.

use std::sync::LazyLock;

use crate::redis_conn::lock;

use super::{ReconcileError, Reconciler};
use crate::tenants::TenantId;

static FENCED_SET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0",
    )
});
/// Holds a tenant's poll lock; renew before each fenced write.
pub(crate) struct Lock {
    key: String,
    token: String,
}
impl Reconciler {
    pub(crate) async fn lock(&self, tenant: &TenantId) -> Result<Option<Lock>, ReconcileError> {
        let key = self.key(tenant, "reconcile:lock");
        let mut conn = self.pool().get().await?;
        let token = lock::take(&mut conn, &key, self.cfg.lock_ttl * 1000).await?;
        Ok(token.map(|token| Lock { key, token }))
    }

    pub(crate) async fn renew(&self, lock: &Lock) -> Result<(), ReconcileError> {
        let mut conn = self.pool().get().await?;
        if lock::refresh(&mut conn, &lock.key, &lock.token, self.cfg.lock_ttl * 1000).await? {
            Ok(())
        } else {
            Err(ReconcileError::Busy)
        }
    }

    pub(crate) async fn release(&self, lock: Lock) {
        if let Ok(mut conn) = self.pool().get().await {
            let _ = lock::release(&mut conn, &lock.key, &lock.token).await;
        }
    }

    /// Writes `value` to the tenant's `what` key only while `lock` is still ours.
    pub(crate) async fn fenced_set(
        &self,
        lock: &Lock,
        tenant: &TenantId,
        what: &str,
        value: &str,
    ) -> Result<(), ReconcileError> {
        let mut conn = self.pool().get().await?;
        let ok: i64 = FENCED_SET
            .key(&lock.key)
            .key(self.key(tenant, what))
            .arg(&lock.token)
            .arg(value)
            .invoke_async(&mut conn)
            .await?;
        if ok == 1 {
            Ok(())
        } else {
            Err(ReconcileError::Busy)
        }
    }
}
