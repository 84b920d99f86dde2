//! Quiet logging through outages: a dependency that goes down is logged once (ERROR),
//! then "still down" at most every [`STILL_DOWN_EVERY`], then once when it is back
//! (INFO); per-request failures are logged at WARN at most once per interval with the
//! number of lines left out. So an outage of any length writes a bounded number of
//! lines instead of one or two per request, probe and worker turn.
//!
//! The state is per process (each instance logs its own view); it only decides what
//! is logged, never what the service does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often an ongoing outage is reported again.
pub const STILL_DOWN_EVERY: Duration = Duration::from_secs(30);

/// Redis as seen by this process (queue, tenant store, limits).
pub static REDIS: Outage = Outage::new("redis");

/// Requests answered `503` because a dependency is down.
pub static UNAVAILABLE_REQUESTS: RateLimited = RateLimited::new(Duration::from_secs(10));

/// A dependency's up/down state, for logging.
pub struct Outage {
    name: &'static str,
    down: AtomicBool,
    state: Mutex<DownState>,
}

struct DownState {
    since: Option<Instant>,
    reported: Option<Instant>,
    failures: u64,
}

impl Outage {
    pub const fn new(name: &'static str) -> Self {
        Outage {
            name,
            down: AtomicBool::new(false),
            state: Mutex::new(DownState {
                since: None,
                reported: None,
                failures: 0,
            }),
        }
    }

    /// Whether the last observation was a failure.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// A call to the dependency failed: logged only if it just went down, or if the
    /// last report is older than [`STILL_DOWN_EVERY`].
    pub fn failed(&self, during: &str, error: &dyn std::fmt::Display) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        s.failures += 1;
        match (s.since, s.reported) {
            (None, _) => {
                s.since = Some(now);
                s.reported = Some(now);
                s.failures = 1;
                self.down.store(true, Ordering::Relaxed);
                tracing::error!(dependency = self.name, during, error = %error, "dependency down");
            }
            (Some(since), Some(last)) if now.duration_since(last) >= STILL_DOWN_EVERY => {
                s.reported = Some(now);
                tracing::warn!(
                    dependency = self.name,
                    during,
                    error = %error,
                    down_secs = now.duration_since(since).as_secs(),
                    failures = s.failures,
                    "dependency still down"
                );
            }
            _ => {}
        }
    }

    /// A call succeeded: logged once if the dependency was down.
    pub fn ok(&self) {
        if !self.down.load(Ordering::Relaxed) {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = s.since.take() {
            self.down.store(false, Ordering::Relaxed);
            tracing::info!(
                dependency = self.name,
                down_secs = since.elapsed().as_secs(),
                failures = s.failures,
                "dependency back"
            );
            s.reported = None;
            s.failures = 0;
        }
    }

    /// Records the result of a call and passes it on.
    pub fn observe<T, E: std::fmt::Display>(&self, during: &str, r: Result<T, E>) -> Result<T, E> {
        match &r {
            Ok(_) => self.ok(),
            Err(e) => self.failed(during, e),
        }
        r
    }
}

/// At most one line per interval; the lines left out are counted into the next one.
pub struct RateLimited {
    every: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RateLimited {
    pub const fn new(every: Duration) -> Self {
        RateLimited {
            every,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether a line may be written now; `Some(n)` carries the lines left out since the
    /// last one.
    pub fn admit(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|l| now.duration_since(l) < self.every) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_lets_one_line_per_interval_through_and_counts_the_rest() {
        let r = RateLimited::new(Duration::from_secs(3600));
        assert_eq!(r.admit(), Some(0));
        assert_eq!(r.admit(), None);
        assert_eq!(r.admit(), None);
        let r2 = RateLimited::new(Duration::ZERO);
        assert_eq!(r2.admit(), Some(0));
        assert_eq!(r2.admit(), Some(0));
    }

    #[test]
    fn outage_state_follows_failures_and_successes() {
        let o = Outage::new("test");
        assert!(!o.is_down());
        o.failed("x", &"boom");
        o.failed("x", &"boom");
        assert!(o.is_down());
        o.ok();
        assert!(!o.is_down());
    }
}
