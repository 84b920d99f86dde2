//! Storing jobs (with their dedupe key and mark) and waking a tenant's waiting ones.

use chrono::{DateTime, Utc};
use redis::AsyncCommands;

use super::{now_ms, scripts, Enqueued, Mark, Queue, QueueError, TenantId};

impl Queue {
    /// Stores a job durably. With a dedupe key, a second enqueue (also a concurrent
    /// one) returns the first job's id instead of creating another.
    pub async fn enqueue(
        &self,
        tenant: &TenantId,
        dedupe_key: Option<&str>,
        payload: &str,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<Enqueued, QueueError> {
        self.enqueue_marked(tenant, dedupe_key, payload, not_before, None)
            .await
    }

    /// [`Queue::enqueue`], raising `mark` in the same script when the job is created.
    ///
    /// Round trips: one on a single Redis (the tenants set and the active zset are
    /// updated by the script). On a cluster those two live in other slots: the tenant
    /// is registered (at most once a minute per process) alongside the script, and a
    /// created job then activates its tenant, so two. An enqueue that dies between the
    /// script and the activation is found by the sweep.
    pub async fn enqueue_marked(
        &self,
        tenant: &TenantId,
        dedupe_key: Option<&str>,
        payload: &str,
        not_before: Option<DateTime<Utc>>,
        mark: Option<&Mark<'_>>,
    ) -> Result<Enqueued, QueueError> {
        let mut conn = self.pool.get().await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = now_ms();
        let due = not_before
            .map(|t| t.timestamp_millis())
            .unwrap_or(now)
            .max(now);
        let single = !self.pool.is_cluster();
        let mut script = scripts::ENQUEUE.key(self.tenant_base(tenant));
        if single {
            script.key(self.tenants_key()).key(self.active_key());
        }
        script
            .arg(&id)
            .arg(dedupe_key.unwrap_or(""))
            .arg(payload)
            .arg(now)
            .arg(self.cfg.dedupe_ttl_secs)
            .arg(not_before.map(|t| t.timestamp_millis()).unwrap_or(0))
            .arg(tenant)
            .arg(mark.map(|m| m.key).unwrap_or(""))
            .arg(mark.map(|m| m.value).unwrap_or(0))
            .arg(mark.map(|m| m.ttl_secs).unwrap_or(0))
            .arg(due);
        if single {
            let (id, created): (String, String) = script.invoke_async(&mut conn).await?;
            return Ok(Enqueued {
                id,
                created: created == "1",
            });
        }
        let register = async {
            if self.registered.recently(tenant) {
                return Ok(());
            }
            let mut conn = self.pool.get().await?;
            let _: () = conn.sadd(self.tenants_key(), tenant).await?;
            self.registered.note(tenant);
            Ok::<(), QueueError>(())
        };
        let (registered, stored) = futures::join!(register, script.invoke_async(&mut conn));
        let (id, created): (String, String) = stored?;
        registered?;
        let created = created == "1";
        if created {
            self.activate(&mut conn, tenant, due).await?;
        }
        Ok(Enqueued { id, created })
    }

    /// Wakes a tenant at once after something its waiting jobs waited for changed
    /// (credentials, settings, an unblock, a retry, a pause or budget): every delayed
    /// job that is waiting without using up attempts goes back in line now, and the
    /// dispatchers look at the tenant now. Jobs delayed by a counted retry keep their
    /// backoff. Returns how many jobs were woken.
    pub async fn wake_waiting(&self, tenant: &TenantId) -> Result<usize, QueueError> {
        let mut conn = self.pool.get().await?;
        let now = now_ms();
        let n: usize = scripts::WAKE_WAITING
            .key(self.tenant_base(tenant))
            .arg(now)
            .invoke_async(&mut conn)
            .await?;
        self.activate(&mut conn, tenant, now).await?;
        Ok(n)
    }

    /// [`Queue::wake_waiting`] for every known tenant (start-up).
    pub async fn wake_all_waiting(&self) -> Result<usize, QueueError> {
        let mut n = 0;
        for t in self.tenants().await? {
            n += self.wake_waiting(&t).await?;
        }
        Ok(n)
    }
}
