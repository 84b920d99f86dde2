//! Per-organisation circuit breaker, shared through Redis by every instance.
//!
//! A streak of `breaker_failures` calls of one organisation that Minimax did not answer
//! (5xx, timeouts, connection errors — each after its in-attempt retries) opens the
//! circuit: calls are refused before they are made ([`MinimaxError::CircuitOpen`]), so
//! the organisation's jobs wait without burning attempts or budget instead of each
//! failing on its own. When the open period is over, one call is let through as a
//! probe (half-open; the others wait about a second at a time); its success closes the
//! circuit, its failure opens it again for twice as long (up to `breaker_open_max_ms`).
//! Any answer below 500 counts as success: Minimax is up, whatever it said.
//!
//! State lives in `{p}:{o:<org>}:breaker` (hash: state, failures, opens, until, since),
//! in the same hash slot as the organisation's rate limit, so the admission script of
//! [`super::limits`] checks it atomically with the rate limit.

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::Serialize;

use super::error::MinimaxError;
use super::{Inner, TenantClient};

/// The breaker's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub const ALL: [CircuitState; 3] = [
        CircuitState::Closed,
        CircuitState::Open,
        CircuitState::HalfOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "open" => CircuitState::Open,
            "half_open" => CircuitState::HalfOpen,
            _ => CircuitState::Closed,
        }
    }
}

impl std::fmt::Display for CircuitState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An organisation's breaker as stored (status pages, metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Circuit {
    pub state: CircuitState,
    /// Calls in a row that Minimax did not answer.
    pub failures: u64,
    /// Open: when the next probe may go. Half-open: when the probe's turn lapses.
    pub until: Option<DateTime<Utc>>,
    /// Time of the last change of state.
    pub since: Option<DateTime<Utc>>,
}

/// The outcome of a call as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallOutcome {
    /// Minimax answered (any status below 500).
    Answered,
    /// 5xx, timeout, connection error, broken body.
    Unanswered,
}

static RECORD: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local now, threshold, open_ms, open_max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local st = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ARGV[1] == '1' then
  if st ~= 'closed' then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'opens', 0, 'until', 0, 'since', now)
    redis.call('PEXPIRE', KEYS[1], 604800000)
    return 'closed'
  end
  if (tonumber(redis.call('HGET', KEYS[1], 'failures') or '0') or 0) > 0 then
    redis.call('HSET', KEYS[1], 'failures', 0)
  end
  return ''
end
if st == 'open' then return '' end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('PEXPIRE', KEYS[1], 604800000)
if st == 'half_open' or (threshold > 0 and failures >= threshold) then
  local opens = redis.call('HINCRBY', KEYS[1], 'opens', 1)
  local d = math.min(open_max, open_ms * math.pow(2, math.min(opens - 1, 20)))
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + d, 'since', now)
  return 'open'
end
return ''",
    )
});

fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    (ms > 0)
        .then(|| DateTime::from_timestamp_millis(ms))
        .flatten()
}

impl Inner {
    pub(crate) fn breaker_key(&self, org: i64) -> String {
        self.org_key(org, "breaker")
    }

    pub(crate) async fn circuit(&self, org: i64) -> Result<Circuit, MinimaxError> {
        let mut conn = self.conn().await?;
        let (state, failures, until, since): (
            Option<String>,
            Option<u64>,
            Option<i64>,
            Option<i64>,
        ) = redis::pipe()
            .hget(self.breaker_key(org), "state")
            .hget(self.breaker_key(org), "failures")
            .hget(self.breaker_key(org), "until")
            .hget(self.breaker_key(org), "since")
            .query_async(&mut conn)
            .await?;
        let state = CircuitState::parse(state.as_deref().unwrap_or("closed"));
        Ok(Circuit {
            state,
            failures: failures.unwrap_or(0),
            until: if state == CircuitState::Closed {
                None
            } else {
                until.and_then(from_ms)
            },
            since: since.and_then(from_ms),
        })
    }

    /// Closes the breaker of `org` by hand (operators, after an announced maintenance).
    pub(crate) async fn reset_circuit(&self, org: i64) -> Result<(), MinimaxError> {
        let mut conn = self.conn().await?;
        let _: i64 = conn.del(self.breaker_key(org)).await?;
        Ok(())
    }
}

impl TenantClient {
    /// Feeds one call's outcome to the organisation's breaker; logs and counts a change
    /// of state. A Redis failure here is only logged: the call itself is done.
    pub(crate) async fn record_outcome(&self, outcome: CallOutcome) {
        let s = &self.inner.settings;
        if s.breaker_failures == 0 {
            return;
        }
        let org = self.creds.organisation_id;
        let result: Result<String, MinimaxError> = async {
            let mut conn = self.inner.conn().await?;
            Ok(RECORD
                .key(self.inner.breaker_key(org))
                .arg(if outcome == CallOutcome::Answered {
                    "1"
                } else {
                    "0"
                })
                .arg(Utc::now().timestamp_millis())
                .arg(s.breaker_failures)
                .arg(s.breaker_open_ms.max(1))
                .arg(s.breaker_open_max_ms.max(s.breaker_open_ms).max(1))
                .invoke_async(&mut conn)
                .await?)
        }
        .await;
        match result.as_deref() {
            Ok("open") => {
                crate::metrics::CIRCUIT_TRANSITIONS
                    .with_label_values(&["open"])
                    .inc();
                tracing::warn!(
                    org,
                    "Minimax keeps failing for this organisation: circuit open, its jobs wait for a probe"
                );
            }
            Ok("closed") => {
                crate::metrics::CIRCUIT_TRANSITIONS
                    .with_label_values(&["closed"])
                    .inc();
                tracing::info!(org, "Minimax answers again: circuit closed");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(org, error = %e, "cannot record the call outcome"),
        }
    }

    /// This organisation's breaker.
    pub async fn circuit(&self) -> Result<Circuit, MinimaxError> {
        self.inner.circuit(self.creds.organisation_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::CircuitState;

    #[test]
    fn the_metrics_labels_are_the_states() {
        let states: Vec<&str> = CircuitState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(states, crate::metrics::CIRCUIT_STATES);
    }
}
