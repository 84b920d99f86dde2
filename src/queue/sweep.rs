//! The safety net: every known tenant back in the active set; the tenants set.

use std::collections::HashSet;

use redis::AsyncCommands;

use super::{now_ms, Queue, QueueError, TenantId};

impl Queue {
    /// Re-adds every known tenant to the active set (safety net; see module doc):
    /// those of the tenants set and those of the tenant store's index, so a tenant
    /// whose registration was lost (cluster mode, where it is a separate command) is
    /// registered again.
    pub async fn sweep(&self) -> Result<usize, QueueError> {
        let mut conn = self.pool.get().await?;
        let mut tenants: HashSet<String> = conn.smembers(self.tenants_key()).await?;
        let stored: Vec<String> = conn
            .smembers(crate::tenants::tenant_index_key(&self.cfg.prefix))
            .await?;
        let missing: Vec<String> = stored
            .into_iter()
            .filter(|t| !tenants.contains(t))
            .collect();
        if !missing.is_empty() {
            let _: () = conn.sadd(self.tenants_key(), &missing).await?;
            tenants.extend(missing);
        }
        let now = now_ms();
        let mut pipe = redis::pipe();
        for t in &tenants {
            pipe.cmd("ZADD")
                .arg(self.active_key())
                .arg("LT")
                .arg(now)
                .arg(t)
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(tenants.len())
    }

    /// Every tenant that ever had a job.
    pub async fn tenants(&self) -> Result<Vec<TenantId>, QueueError> {
        let mut conn = self.pool.get().await?;
        let ids: Vec<String> = conn.smembers(self.tenants_key()).await?;
        Ok(ids.into_iter().filter_map(|t| t.parse().ok()).collect())
    }
}
