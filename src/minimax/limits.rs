//! Per-organisation rate limit, call budgets and `429` pauses, shared through Redis.
//!
//! One Lua script decides each call atomically, so any number of instances share the
//! limits: the pause (`{p}:{o:<org>}:paused_until`, unix ms) is checked first, then the
//! rolling 24 h budget (sorted set `calls24h` of call timestamps; the window length is
//! `minimax.daily_budget_window_secs`, 24 h except in tests), then the calendar-month
//! budget (counter `month:<YYYY-MM>`, UTC months), then the circuit breaker
//! ([`super::breaker`]; an open circuit refuses the call, an expired one lets this call
//! through as the probe), then the token bucket (`bucket`). The bucket may go into debt:
//! a call that finds no token takes the next one that will be there and is told how
//! long to sleep for it (at most `minimax.max_rate_wait_ms`, else nothing is reserved
//! and the job is given back), so each call runs the script once, however many
//! contend, and the calls of all instances still leave at the configured rate (at most
//! `burst` at once, then `rate_per_sec`). Only an admitted call is counted, when it is
//! admitted (a reserved call counts at its turn). Timestamps come from the caller's
//! clock, so instances are expected to run NTP-synchronised clocks.

use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use redis::AsyncCommands;

use super::breaker::CircuitState;
use super::error::{BudgetWindow, MinimaxError};
use super::{Inner, TenantClient};

const DAY_MS: i64 = 86_400_000;

/// While a probe is under way, the organisation's other calls wait this long (ms)
/// before they look again, so they follow the probe's success within about a second.
const HALF_OPEN_RECHECK_MS: i64 = 1_000;

static ACQUIRE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local now = tonumber(ARGV[1])
local pause = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
if pause > now then return {1, pause} end
local window = tonumber(ARGV[10])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local daily = tonumber(ARGV[4])
if daily > 0 and redis.call('ZCARD', KEYS[2]) >= daily then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {2, tonumber(oldest[2]) + window}
end
local monthly = tonumber(ARGV[5])
if monthly > 0 and (tonumber(redis.call('GET', KEYS[3]) or '0') or 0) >= monthly then
  return {3, 0}
end
local probe = 0
local st = redis.call('HGET', KEYS[5], 'state')
if st == 'open' or st == 'half_open' then
  local untilms = tonumber(redis.call('HGET', KEYS[5], 'until')) or 0
  if now < untilms then
    if st == 'open' then return {5, untilms, 1} end
    return {5, math.min(untilms, now + tonumber(ARGV[9])), 2}
  end
end
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
local wait = 0
if tokens < 1 then wait = math.ceil((1 - tokens) * 1000 / rate) end
if wait > tonumber(ARGV[11]) then return {4, wait} end
if st == 'open' or st == 'half_open' then
  redis.call('HSET', KEYS[5], 'state', 'half_open', 'until', now + wait + tonumber(ARGV[8]), 'since', now)
  probe = 1
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
redis.call('ZADD', KEYS[2], now + wait, ARGV[6])
redis.call('PEXPIRE', KEYS[2], wait + window + 60000)
redis.call('INCR', KEYS[3])
redis.call('PEXPIREAT', KEYS[3], ARGV[7])
return {0, probe, wait}",
    )
});

static PAUSE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local untilms = tonumber(ARGV[1])
if untilms > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.max(1, untilms - tonumber(ARGV[2])))
end
return 0",
    )
});

/// Calls spent by an organisation and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub last_24h: u64,
    pub this_month: u64,
    pub daily_limit: u32,
    pub monthly_limit: u32,
    pub paused_until: Option<DateTime<Utc>>,
}

fn month_start(now: DateTime<Utc>, offset: u32) -> DateTime<Utc> {
    let total = now.year() * 12 + now.month0() as i32 + offset as i32;
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
    Utc.with_ymd_and_hms(year, month0 as u32 + 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now)
}

impl TenantClient {
    fn month_key(&self, now: DateTime<Utc>) -> String {
        self.inner.org_key(
            self.creds.organisation_id,
            &format!("month:{}", now.format("%Y-%m")),
        )
    }

    fn pause_key(&self) -> String {
        self.inner
            .org_key(self.creds.organisation_id, "paused_until")
    }

    /// Admits one API call for the organisation: one script run reserves its turn in the
    /// token bucket (and counts it against the budgets), then the call sleeps until that
    /// turn, at most `max_rate_wait_ms`; a later turn gives the job back instead.
    /// `Ok(true)`: the call is the half-open circuit's probe (it must not be retried
    /// within the attempt: its outcome decides for the whole organisation).
    pub(crate) async fn admit(&self) -> Result<bool, MinimaxError> {
        let settings = &self.inner.settings;
        let org = self.creds.organisation_id;
        let now = Utc::now();
        let next_month = month_start(now, 1);
        let mut conn = self.inner.conn().await?;
        let reply: Vec<i64> = ACQUIRE
            .key(self.inner.org_key(org, "bucket"))
            .key(self.inner.org_key(org, "calls24h"))
            .key(self.month_key(now))
            .key(self.pause_key())
            .key(self.inner.breaker_key(org))
            .arg(now.timestamp_millis())
            .arg(settings.rate_per_sec)
            .arg(settings.burst)
            .arg(settings.daily_budget)
            .arg(settings.monthly_budget)
            .arg(uuid::Uuid::new_v4().to_string())
            // Keep the month counter a day past the month for late readers.
            .arg(next_month.timestamp_millis() + DAY_MS)
            // A probe that never reports (its process died) lapses after this.
            .arg(settings.request_timeout_ms + 1_000)
            // Calls that find a probe under way look again this soon.
            .arg(HALF_OPEN_RECHECK_MS)
            .arg(settings.budget_window_ms())
            // The longest a call may be told to sleep for its turn.
            .arg(settings.max_rate_wait_ms)
            .invoke_async(&mut conn)
            .await?;
        drop(conn);
        let (code, value) = (
            reply.first().copied().unwrap_or(0),
            reply.get(1).copied().unwrap_or(0),
        );
        match code {
            0 => {
                // The call's turn is reserved (its token taken, its budget counted): it
                // sleeps until then and goes, without asking again.
                let wait = reply.get(2).copied().unwrap_or(0);
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
                }
                if value == 1 {
                    crate::metrics::CIRCUIT_TRANSITIONS
                        .with_label_values(&["half_open"])
                        .inc();
                    tracing::info!(org, "circuit half-open: this call probes Minimax");
                }
                Ok(value == 1)
            }
            5 => Err(MinimaxError::CircuitOpen {
                state: if reply.get(2) == Some(&1) {
                    CircuitState::Open
                } else {
                    CircuitState::HalfOpen
                },
                until: from_ms(value),
            }),
            1 => Err(MinimaxError::TenantPaused {
                until: from_ms(value),
            }),
            2 => Err(MinimaxError::BudgetExhausted {
                window: BudgetWindow::Rolling24h,
                until: from_ms(value),
            }),
            3 => Err(MinimaxError::BudgetExhausted {
                window: BudgetWindow::Month,
                until: next_month,
            }),
            // The call's turn is further away than `max_rate_wait_ms`: nothing was
            // reserved; the job is given back.
            _ => Err(MinimaxError::Transient {
                reason: "organisation rate limit".into(),
                retry_after: Some(Duration::from_millis(
                    u64::try_from(value).unwrap_or(1).max(1),
                )),
            }),
        }
    }

    /// Records a `429`: the organisation pauses until `until` on every instance.
    pub(crate) async fn pause_until(&self, until: DateTime<Utc>) -> Result<(), MinimaxError> {
        let mut conn = self.inner.conn().await?;
        let _: i64 = PAUSE
            .key(self.pause_key())
            .arg(until.timestamp_millis())
            .arg(Utc::now().timestamp_millis())
            .invoke_async(&mut conn)
            .await?;
        tracing::warn!(org = self.creds.organisation_id, %until, "Minimax answered 429; organisation paused");
        Ok(())
    }

    /// Calls spent by this client's organisation.
    pub async fn usage(&self) -> Result<Usage, MinimaxError> {
        self.inner.usage(self.creds.organisation_id).await
    }
}

impl Inner {
    /// Ends an organisation's `429` pause now (an operator knows it is over).
    pub(crate) async fn clear_pause(&self, org: i64) -> Result<(), MinimaxError> {
        let mut conn = self.conn().await?;
        let _: i64 = conn.del(self.org_key(org, "paused_until")).await?;
        Ok(())
    }

    pub(crate) async fn usage(&self, org: i64) -> Result<Usage, MinimaxError> {
        let now = Utc::now();
        let mut conn = self.conn().await?;
        let last_24h: u64 = conn
            .zcount(
                self.org_key(org, "calls24h"),
                now.timestamp_millis() - self.settings.budget_window_ms(),
                "+inf",
            )
            .await?;
        let month_key = self.org_key(org, &format!("month:{}", now.format("%Y-%m")));
        let this_month: Option<u64> = conn.get(month_key).await?;
        let paused: Option<i64> = conn.get(self.org_key(org, "paused_until")).await?;
        let paused_until = paused
            .filter(|ms| *ms > now.timestamp_millis())
            .map(from_ms);
        Ok(Usage {
            last_24h,
            this_month: this_month.unwrap_or(0),
            daily_limit: self.settings.daily_budget,
            monthly_limit: self.settings.monthly_budget,
            paused_until,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn month_boundaries() {
        let now = Utc.with_ymd_and_hms(2024, 12, 15, 10, 0, 0).unwrap();
        assert_eq!(
            month_start(now, 1),
            Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            month_start(now, 0),
            Utc.with_ymd_and_hms(2024, 12, 1, 0, 0, 0).unwrap()
        );
    }
}
