//! The overview's 24-hour charts: a light queue-depth time series in Redis and small
//! bar charts rendered server-side as inline SVG (no script, no style attributes, so
//! the strict CSP holds).
//!
//! - Queue depth: every instance samples the totals (queued, delayed, running, dead
//!   over all tenants) every [`SAMPLE_SECS`] into one hash, a field per 5-minute slot
//!   (`p:ui:depth`); instances sampling the same slot overwrite each other with the
//!   same picture. Slots older than 25 h are removed as new ones are written.
//! - Jobs finished per hour: counted from the queue's own `done` sets (scored by
//!   completion time), so nothing extra is written per job.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::AsyncCommands;

use crate::http::AppState;
use crate::queue::{now_ms, Queue};
use crate::tenants::tenant_key;

pub const SAMPLE_SECS: u64 = 60;
const SLOT_MS: i64 = 5 * 60 * 1000;
const HOUR_MS: i64 = 3600 * 1000;
const KEEP_MS: i64 = 25 * HOUR_MS;

fn depth_key(queue: &Queue) -> String {
    format!("{}:ui:depth", queue.prefix())
}

/// Queue totals over all tenants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub queued: u64,
    pub delayed: u64,
    pub running: u64,
    pub dead: u64,
}

pub async fn totals(queue: &Queue) -> Result<Totals, crate::queue::QueueError> {
    let mut t = Totals::default();
    for tenant in queue.tenants().await? {
        let c = queue.counts(&tenant).await?;
        t.queued += c.queued;
        t.delayed += c.delayed;
        t.running += c.running;
        t.dead += c.dead;
    }
    Ok(t)
}

/// Writes the current totals into the slot of now; drops slots past the window.
pub async fn sample(queue: &Queue) -> Result<(), crate::queue::QueueError> {
    let t = totals(queue).await?;
    let now = now_ms();
    let slot = now - now.rem_euclid(SLOT_MS);
    let key = depth_key(queue);
    let mut conn = queue.pool().get().await?;
    let _: () = conn
        .hset(
            &key,
            slot,
            format!("{},{},{},{}", t.queued, t.delayed, t.running, t.dead),
        )
        .await?;
    let slots: Vec<i64> = conn.hkeys(&key).await?;
    let old: Vec<i64> = slots.into_iter().filter(|s| *s < now - KEEP_MS).collect();
    if !old.is_empty() {
        let _: () = conn.hdel(&key, old).await?;
    }
    Ok(())
}

/// Samples every [`SAMPLE_SECS`] while the service's state lives (the server's app
/// factories hold it; once they are gone the sampler ends by itself).
pub fn spawn_sampler(state: Arc<AppState>) {
    let weak: Weak<AppState> = Arc::downgrade(&state);
    drop(state);
    tokio::spawn(async move {
        loop {
            let Some(state) = weak.upgrade() else { return };
            if let Err(e) = sample(&state.queue).await {
                tracing::debug!(error = %e, "ui: queue depth sample failed");
            }
            drop(state);
            tokio::time::sleep(Duration::from_secs(SAMPLE_SECS)).await;
        }
    });
}

/// Queue depth (queued + delayed + running) per 5-minute slot over the last 24 h.
pub async fn depth_series(queue: &Queue) -> Result<Vec<(i64, u64)>, crate::queue::QueueError> {
    let mut conn = queue.pool().get().await?;
    let all: BTreeMap<i64, String> = conn.hgetall(depth_key(queue)).await?;
    let since = now_ms() - 24 * HOUR_MS;
    Ok(all
        .into_iter()
        .filter(|(slot, _)| *slot >= since)
        .map(|(slot, v)| {
            let depth = v
                .split(',')
                .take(3)
                .filter_map(|n| n.parse::<u64>().ok())
                .sum();
            (slot, depth)
        })
        .collect())
}

/// Jobs finished in each of the last 24 hours (oldest first), over all tenants.
pub async fn done_per_hour(queue: &Queue) -> Result<Vec<u64>, crate::queue::QueueError> {
    let tenants = queue.tenants().await?;
    let now = now_ms();
    let start = now - now.rem_euclid(HOUR_MS) - 23 * HOUR_MS;
    let mut hours = vec![0u64; 24];
    let mut conn = queue.pool().get().await?;
    for chunk in tenants.chunks(50) {
        let mut pipe = redis::pipe();
        for t in chunk {
            let key = tenant_key(queue.prefix(), t, "done");
            for h in 0..24 {
                let from = start + h * HOUR_MS;
                pipe.zcount(&key, from, format!("({}", from + HOUR_MS));
            }
        }
        let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
        for (i, c) in counts.into_iter().enumerate() {
            hours[i % 24] += c;
        }
    }
    Ok(hours)
}

/// A bar chart as inline SVG with a text alternative; `labels` name the first and last bar.
pub fn bars(title: &str, values: &[u64], first: &str, last: &str) -> String {
    const W: f64 = 480.0;
    const H: f64 = 120.0;
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = values.len().max(1) as f64;
    let bw = W / n;
    let total: u64 = values.iter().sum();
    let peak = values.iter().copied().max().unwrap_or(0);
    let desc = format!("{title}: {total} in all, at most {peak} per bar, from {first} to {last}");
    let mut svg = format!(
        "<figure class=\"chart\"><svg viewBox=\"0 0 {W} {}\" role=\"img\" aria-label=\"{}\" \
         preserveAspectRatio=\"none\"><title>{}</title>",
        H + 16.0,
        super::html::esc(&desc),
        super::html::esc(&desc)
    );
    svg.push_str(&format!(
        "<line x1=\"0\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" stroke=\"#999\" stroke-width=\"1\"/>"
    ));
    for (i, v) in values.iter().enumerate() {
        let h = (*v as f64 / max) * (H - 4.0);
        svg.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2f6fb0\"><title>{v}</title></rect>",
            i as f64 * bw + bw * 0.1,
            H - h,
            (bw * 0.8).max(0.5),
            h
        ));
    }
    svg.push_str(&format!(
        "<text x=\"0\" y=\"{}\" font-size=\"11\" fill=\"#555\">{}</text>\
         <text x=\"{W}\" y=\"{}\" font-size=\"11\" fill=\"#555\" text-anchor=\"end\">{}</text></svg>",
        H + 14.0,
        super::html::esc(first),
        H + 14.0,
        super::html::esc(last)
    ));
    svg.push_str(&format!(
        "<figcaption>{} <span class=\"muted\">(peak {peak}, total {total})</span></figcaption></figure>",
        super::html::esc(title)
    ));
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_scale_to_the_peak_and_describe_themselves() {
        let svg = bars("Jobs <finished>", &[0, 5, 10], "a", "b");
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("height=\"116.0\""), "{svg}");
        assert!(svg.contains("Jobs &lt;finished&gt;: 15 in all"), "{svg}");
        assert!(!svg.contains("style="));
    }
}
