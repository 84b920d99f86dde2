//! The end of an attempt: done (keeping the event summary), delayed or dead.

use super::{now_ms, scripts, Attempt, ClaimedJob, Finish, Queue, QueueError};

impl Queue {
    /// Records the end of an attempt. False when the lease was lost meanwhile: the
    /// job belongs to another worker now and this result is dropped.
    pub async fn finish(
        &self,
        job: &ClaimedJob,
        started_ms: i64,
        finish: &Finish,
    ) -> Result<bool, QueueError> {
        let now = now_ms();
        let (outcome, text, next, counts, label) = match finish {
            Finish::Done { result } => ("done", result.to_string(), 0, true, "done"),
            Finish::Delay { at, error, counts } => (
                "delayed",
                error.clone(),
                at.timestamp_millis(),
                *counts,
                if *counts { "retry" } else { "wait" },
            ),
            Finish::Dead { reason } => ("dead", reason.clone(), 0, true, "dead"),
        };
        let entry = Attempt {
            attempt: job.attempt,
            started_at: started_ms,
            duration_ms: (now - started_ms).max(0) as u64,
            outcome: label.to_owned(),
            error: (outcome != "done").then(|| text.clone()),
        };
        let entry = serde_json::to_string(&entry)
            .map_err(|e| QueueError::Corrupt(format!("attempt entry: {e}")))?;
        // Done jobs outlive their payload: keep what an operator needs to find the order.
        let summary = match finish {
            Finish::Done { .. } => crate::jobs::summarize(&job.payload)
                .and_then(|s| serde_json::to_string(&s).ok())
                .unwrap_or_default(),
            _ => String::new(),
        };
        let mut conn = self.pool.get().await?;
        let ok: i64 = scripts::FINISH
            .key(self.tenant_base(&job.tenant))
            .arg(&job.id)
            .arg(&job.lease)
            .arg(now)
            .arg(outcome)
            .arg(entry)
            .arg(text)
            .arg(next)
            .arg(if counts { "0" } else { "1" })
            .arg(self.cfg.done_retention_secs)
            .arg(self.cfg.payload_retention_secs)
            .arg(summary)
            .invoke_async(&mut conn)
            .await?;
        let wake_at = if outcome == "delayed" { next } else { now };
        self.activate(&mut conn, &job.tenant, wake_at).await?;
        Ok(ok == 1)
    }
}
