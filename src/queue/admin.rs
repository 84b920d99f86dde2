//! Operator operations on one tenant's jobs: inspect, list, count, retry (one or all
//! dead), discard.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{
    ms_to_time, now_ms, scripts, Attempt, Counts, JobRecord, JobState, Queue, QueueError, TenantId,
};

impl Queue {
    /// One job in full, or `None` if unknown (or expired after completion).
    pub async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<JobRecord>, QueueError> {
        let base = self.tenant_base(tenant);
        let mut conn = self.pool.get().await?;
        let (mut fields, hist, payload): (HashMap<String, String>, Vec<String>, Option<String>) =
            redis::pipe()
                .hgetall(format!("{base}job:{id}"))
                .lrange(format!("{base}hist:{id}"), 0, -1)
                .get(format!("{base}payload:{id}"))
                .query_async(&mut conn)
                .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        if let Some(p) = payload {
            fields.insert("payload".into(), p);
        }
        record_from_fields(tenant, fields, hist).map(Some)
    }

    /// Ids of one tenant's jobs in `state`, oldest first, `offset`/`limit` paged.
    pub async fn list(
        &self,
        tenant: &TenantId,
        state: JobState,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<String>, QueueError> {
        let base = self.tenant_base(tenant);
        let mut conn = self.pool.get().await?;
        let start = offset as isize;
        let stop = (offset + limit) as isize - 1;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = match state {
            JobState::Queued => conn.lrange(format!("{base}ready"), start, stop).await?,
            JobState::Running => conn.zrange(format!("{base}running"), start, stop).await?,
            JobState::Delayed => conn.zrange(format!("{base}delayed"), start, stop).await?,
            JobState::Dead => conn.zrange(format!("{base}dead"), start, stop).await?,
            JobState::Done => conn.zrange(format!("{base}done"), start, stop).await?,
        };
        Ok(ids)
    }

    /// Job counts and the age of the oldest ready job of one tenant.
    pub async fn counts(&self, tenant: &TenantId) -> Result<Counts, QueueError> {
        let base = self.tenant_base(tenant);
        let mut conn = self.pool.get().await?;
        let (queued, running, delayed, dead, done, oldest): (
            u64,
            u64,
            u64,
            u64,
            u64,
            Option<String>,
        ) = redis::pipe()
            .llen(format!("{base}ready"))
            .zcard(format!("{base}running"))
            .zcard(format!("{base}delayed"))
            .zcard(format!("{base}dead"))
            .zcard(format!("{base}done"))
            .lindex(format!("{base}ready"), 0)
            .query_async(&mut conn)
            .await?;
        let oldest_queued_age_secs = match oldest {
            Some(id) => {
                let created: Option<i64> =
                    conn.hget(format!("{base}job:{id}"), "created_at").await?;
                created.map(|c| ((now_ms() - c).max(0) / 1000) as u64)
            }
            None => None,
        };
        Ok(Counts {
            queued,
            running,
            delayed,
            dead,
            done,
            oldest_queued_age_secs,
        })
    }

    /// Puts a dead or delayed job back in line with a fresh attempt budget.
    /// Returns the state it had, `None` if unknown; other states are left alone.
    pub async fn retry(&self, tenant: &TenantId, id: &str) -> Result<Option<JobState>, QueueError> {
        let now = now_ms();
        let entry = serde_json::to_string(&Attempt {
            attempt: 0,
            started_at: now,
            duration_ms: 0,
            outcome: "manual_retry".into(),
            error: None,
        })
        .map_err(|e| QueueError::Corrupt(e.to_string()))?;
        let mut conn = self.pool.get().await?;
        let prev: String = scripts::RETRY
            .key(self.tenant_base(tenant))
            .arg(id)
            .arg(now)
            .arg(entry)
            .invoke_async(&mut conn)
            .await?;
        let prev = JobState::parse(&prev);
        if matches!(prev, Some(JobState::Dead | JobState::Delayed)) {
            self.activate(&mut conn, tenant, now).await?;
        }
        Ok(prev)
    }

    /// Retries every dead job of one tenant; returns how many.
    pub async fn retry_all_dead(&self, tenant: &TenantId) -> Result<usize, QueueError> {
        let mut n = 0;
        loop {
            let ids = self.list(tenant, JobState::Dead, 0, 500).await?;
            if ids.is_empty() {
                return Ok(n);
            }
            for id in ids {
                if self.retry(tenant, &id).await? == Some(JobState::Dead) {
                    n += 1;
                }
            }
        }
    }

    /// Removes a job that is not running. Returns its state, `None` if unknown.
    pub async fn discard(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<JobState>, QueueError> {
        let mut conn = self.pool.get().await?;
        let prev: String = scripts::DISCARD
            .key(self.tenant_base(tenant))
            .arg(id)
            .invoke_async(&mut conn)
            .await?;
        Ok(JobState::parse(&prev))
    }
}

fn record_from_fields(
    tenant: &TenantId,
    mut f: HashMap<String, String>,
    hist: Vec<String>,
) -> Result<JobRecord, QueueError> {
    let mut take = |k: &str| f.remove(k).filter(|v| !v.is_empty());
    let num = |v: Option<String>| v.and_then(|s| s.parse::<f64>().ok()).map(|x| x as i64);
    let state = take("state")
        .and_then(|s| JobState::parse(&s))
        .ok_or_else(|| QueueError::Corrupt("job without a valid state".into()))?;
    let id = take("id").ok_or_else(|| QueueError::Corrupt("job without id".into()))?;
    let history = hist
        .iter()
        .filter_map(|h| serde_json::from_str::<Attempt>(h).ok())
        .collect();
    Ok(JobRecord {
        id,
        // The job's keys are the tenant's: its own field says the same.
        tenant: tenant.clone(),
        state,
        payload: take("payload").unwrap_or_default(),
        summary: take("summary").and_then(|s| serde_json::from_str(&s).ok()),
        attempts: num(take("attempts")).unwrap_or(0).max(0) as u32,
        created_at: ms_to_time(num(take("created_at")).unwrap_or(0)),
        updated_at: ms_to_time(num(take("updated_at")).unwrap_or(0)),
        next_attempt_at: num(take("next_at")).map(ms_to_time),
        finished_at: num(take("finished_at")).map(ms_to_time),
        last_error: take("last_error"),
        result: take("result").and_then(|r| serde_json::from_str(&r).ok()),
        dedupe_key: take("dedupe_key"),
        history,
    })
}
