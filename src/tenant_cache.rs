//! What webhook intake knows of each tenant, cached in process with bounded staleness.
//!
//! Intake reads a tenant (platform secret, parse settings) on every webhook; this
//! cache saves that round trip. Guarantee: an entry is served only while a poll of the
//! tenants' revision counter (`p:tenants_rev`, raised by every tenant write and
//! delete, on any instance) has confirmed, at most [`STALE`] ago, that nothing changed
//! since the entry was read. So a tenant changed or deleted through the admin API of
//! any instance is seen by every instance's intake within [`STALE`] (at once on the
//! instance that made the change); when the poll fails (Redis away), entries stop
//! being served after [`STALE`] and intake reads Redis again (and answers 503 if that
//! fails too). Entries are also re-read after [`MAX_AGE`] whatever the counter says,
//! a backstop for a write whose counter update failed.
//!
//! Race handled: a read that started before a change and ends after the poll saw it
//! would insert a stale entry; each clear starts a new epoch and an entry read in an
//! older epoch is not kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::webshop::Platform;

/// How stale a served entry can be, at most.
pub const STALE: Duration = Duration::from_secs(1);
/// How often each instance polls the revision counter.
pub const POLL: Duration = Duration::from_millis(200);
/// Entries are re-read at least this often.
pub const MAX_AGE: Duration = Duration::from_secs(10);
/// Beyond this many entries the cache starts afresh (unknown tenant ids from a
/// scanner must not grow it without bound).
const MAX_ENTRIES: usize = 20_000;

/// A cache of `V` per (tenant, platform); `None` caches "unknown tenant".
pub struct TenantCache<V> {
    state: Mutex<State<V>>,
}

struct State<V> {
    epoch: u64,
    revision: Option<i64>,
    /// When the poll that last confirmed `revision` was sent.
    confirmed: Option<Instant>,
    /// By tenant (looked up by `&str`, no key built per webhook), then platform.
    entries: HashMap<String, Vec<(Platform, Entry<V>)>>,
}

/// Every clear bumps the epoch and empties `entries`, and `put` keeps only reads of
/// the current epoch, so an entry needs no epoch of its own.
struct Entry<V> {
    read_at: Instant,
    value: Option<Arc<V>>,
}

impl<V> Default for TenantCache<V> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                epoch: 0,
                revision: None,
                confirmed: None,
                entries: HashMap::new(),
            }),
        }
    }
}

impl<V> TenantCache<V> {
    fn state(&self) -> MutexGuard<'_, State<V>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value, if it may be served: `Some(None)` is a cached unknown tenant.
    pub fn get(&self, tenant: &str, platform: Platform) -> Option<Option<Arc<V>>> {
        let state = self.state();
        if state.confirmed.is_none_or(|at| at.elapsed() > STALE) {
            return None;
        }
        let (_, e) = state
            .entries
            .get(tenant)?
            .iter()
            .find(|(p, _)| *p == platform)?;
        (e.read_at.elapsed() < MAX_AGE).then(|| e.value.clone())
    }

    /// The epoch to pass to [`TenantCache::put`]: taken before reading Redis.
    pub fn epoch(&self) -> u64 {
        self.state().epoch
    }

    /// Keeps what was read in `epoch`, unless the cache was cleared since.
    pub fn put(&self, tenant: &str, platform: Platform, epoch: u64, value: Option<Arc<V>>) {
        let mut state = self.state();
        if state.epoch != epoch {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        let entry = Entry {
            read_at: Instant::now(),
            value,
        };
        let platforms = state.entries.entry(tenant.to_owned()).or_default();
        match platforms.iter_mut().find(|(p, _)| *p == platform) {
            Some((_, e)) => *e = entry,
            None => platforms.push((platform, entry)),
        }
    }

    /// Forgets everything (a tenant changed).
    pub fn clear(&self) {
        let mut state = self.state();
        state.epoch += 1;
        state.entries.clear();
    }

    /// Records a poll of the revision counter sent at `sent`: a new revision clears
    /// the cache; either way entries may be served until `sent + STALE`.
    pub fn confirm(&self, revision: i64, sent: Instant) {
        let mut state = self.state();
        if state.revision != Some(revision) {
            state.epoch += 1;
            state.entries.clear();
            state.revision = Some(revision);
        }
        state.confirmed = Some(sent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_with(rev: i64) -> TenantCache<u32> {
        let c = TenantCache::default();
        c.confirm(rev, Instant::now());
        c
    }

    #[test]
    fn serves_only_what_a_recent_poll_confirmed() {
        let c: TenantCache<u32> = TenantCache::default();
        c.put("t", Platform::Shopify, c.epoch(), Some(Arc::new(1)));
        assert!(c.get("t", Platform::Shopify).is_none(), "never confirmed");
        c.confirm(1, Instant::now());
        c.put("t", Platform::Shopify, c.epoch(), Some(Arc::new(1)));
        assert_eq!(c.get("t", Platform::Shopify).flatten().as_deref(), Some(&1));
        assert!(
            c.get("t", Platform::WooCommerce).is_none(),
            "other platform"
        );
        // The last confirmation is older than STALE: nothing is served.
        c.confirm(1, Instant::now() - STALE - Duration::from_millis(1));
        assert!(c.get("t", Platform::Shopify).is_none());
    }

    #[test]
    fn a_new_revision_or_a_clear_drops_entries() {
        let c = cache_with(1);
        c.put("t", Platform::Shopify, c.epoch(), None);
        assert_eq!(
            c.get("t", Platform::Shopify),
            Some(None),
            "unknown tenant cached"
        );
        c.confirm(1, Instant::now());
        assert_eq!(
            c.get("t", Platform::Shopify),
            Some(None),
            "same revision keeps it"
        );
        c.confirm(2, Instant::now());
        assert!(c.get("t", Platform::Shopify).is_none());
        c.put("t", Platform::Shopify, c.epoch(), Some(Arc::new(2)));
        c.clear();
        assert!(c.get("t", Platform::Shopify).is_none());
    }

    #[test]
    fn a_read_that_straddles_a_change_is_not_kept() {
        let c = cache_with(1);
        let epoch = c.epoch();
        // The tenant changes while the read is in flight; the poll sees it.
        c.confirm(2, Instant::now());
        c.put("t", Platform::Shopify, epoch, Some(Arc::new(1)));
        assert!(c.get("t", Platform::Shopify).is_none());
    }
}
