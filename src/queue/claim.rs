//! Handing jobs to workers: the tenants due, leases (claim, extend) and the tenant
//! line (park, rotate).

use redis::AsyncCommands;

use super::{ms_to_time, now_ms, scripts, Claim, ClaimedJob, Queue, QueueError, TenantId};

impl Queue {
    /// Tenants due for a look at `now_ms`, longest-waiting first.
    pub async fn due_tenants(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<TenantId>, QueueError> {
        let mut conn = self.pool.get().await?;
        let members: Vec<String> = conn
            .zrangebyscore_limit(self.active_key(), "-inf", now_ms, 0, limit as isize)
            .await?;
        let (due, junk): (Vec<String>, Vec<String>) =
            members.into_iter().partition(|m| TenantId::is_valid(m));
        if !junk.is_empty() {
            // Not written by the service; left there it would stay first in line.
            tracing::warn!(
                n = junk.len(),
                "queue: dropping non-tenants from the active set"
            );
            let _: () = conn.zrem(self.active_key(), &junk).await?;
        }
        let due = due.into_iter().filter_map(|t| t.parse().ok()).collect();
        Ok(due)
    }

    /// Time (ms) of the earliest entry in the active set, if any.
    pub async fn next_due(&self) -> Result<Option<i64>, QueueError> {
        let mut conn = self.pool.get().await?;
        let first: Vec<(String, f64)> = conn.zrange_withscores(self.active_key(), 0, 0).await?;
        Ok(first.first().map(|(_, s)| *s as i64))
    }

    /// Leases the next job of `tenant` for `lease_ms`.
    pub async fn claim(&self, tenant: &TenantId, lease_ms: u64) -> Result<Claim, QueueError> {
        let mut conn = self.pool.get().await?;
        let now = now_ms();
        let lease = uuid::Uuid::new_v4().simple().to_string();
        let reply: Vec<String> = scripts::CLAIM
            .key(self.tenant_base(tenant))
            .arg(now)
            .arg(lease_ms)
            .arg(self.cfg.per_tenant_concurrency)
            .arg(&lease)
            .invoke_async(&mut conn)
            .await?;
        let field = |i: usize| {
            reply.get(i).ok_or_else(|| {
                QueueError::Corrupt(format!("claim reply too short: {}", reply.len()))
            })
        };
        let num = |i: usize| -> Result<i64, QueueError> {
            field(i)?
                .parse::<f64>()
                .map(|f| f as i64)
                .map_err(|_| QueueError::Corrupt("claim reply: not a number".into()))
        };
        let claim = match field(0)?.as_str() {
            "job" => Claim::Job(ClaimedJob {
                id: field(1)?.clone(),
                tenant: tenant.to_owned(),
                payload: field(2)?.clone(),
                attempt: num(3)? as u32,
                created_at: ms_to_time(num(4)?),
                lease,
            }),
            "busy" => Claim::Busy { next_ms: num(1)? },
            _ => {
                let next = num(1)?;
                Claim::Empty {
                    next_ms: (next >= 0).then_some(next),
                }
            }
        };
        let reclaimed = reply
            .last()
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(0);
        if reclaimed > 0 {
            tracing::warn!(%tenant, reclaimed, "reclaimed jobs whose lease expired");
            crate::metrics::JOBS_RECLAIMED.inc_by(reclaimed);
        }
        Ok(claim)
    }

    /// Parks a tenant after a claim found nothing to hand out: look again at
    /// `next_ms`, or drop it from the active set when it has no work at all.
    ///
    /// An enqueue, retry or finished job may wake the tenant between the claim and
    /// this call; writing the later time over its wake-up would strand a ready job.
    /// So the tenant is looked at again after parking (one script on its own keys)
    /// and woken if it has work now: every wake-up either happens after the park's
    /// write, or is seen by the look.
    pub async fn park(&self, tenant: &TenantId, next_ms: Option<i64>) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        match next_ms {
            Some(at) => {
                let _: () = redis::cmd("ZADD")
                    .arg(self.active_key())
                    .arg("XX")
                    .arg(at)
                    .arg(tenant)
                    .query_async(&mut conn)
                    .await?;
            }
            None => {
                let _: () = conn.zrem(self.active_key(), tenant).await?;
            }
        }
        let next: String = scripts::PEEK
            .key(self.tenant_base(tenant))
            .arg(now_ms())
            .arg(self.cfg.per_tenant_concurrency)
            .invoke_async(&mut conn)
            .await?;
        if let Ok(at) = next.parse::<f64>() {
            let at = at as i64;
            if at >= 0 && next_ms.is_none_or(|parked| at < parked) {
                self.activate(&mut conn, tenant, at).await?;
            }
        }
        Ok(())
    }

    /// Moves a served tenant to the back of the line (fairness).
    pub async fn rotate(&self, tenant: &TenantId) -> Result<(), QueueError> {
        let mut conn = self.pool.get().await?;
        let _: () = conn.zadd(self.active_key(), tenant, now_ms()).await?;
        Ok(())
    }

    /// Renews a lease; false when the lease was lost (expired and handed out again).
    pub async fn extend(&self, job: &ClaimedJob, lease_ms: u64) -> Result<bool, QueueError> {
        let mut conn = self.pool.get().await?;
        let ok: i64 = scripts::EXTEND
            .key(self.tenant_base(&job.tenant))
            .arg(&job.id)
            .arg(&job.lease)
            .arg(now_ms() + lease_ms as i64)
            .invoke_async(&mut conn)
            .await?;
        Ok(ok == 1)
    }
}
