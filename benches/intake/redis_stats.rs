//! What the Redis servers did during a phase: commands by name and CPU seconds.

use std::collections::BTreeMap;

use super::Target;

/// `INFO commandstats` of every node, reset before each measured phase.
pub struct Stats {
    nodes: Vec<redis::aio::MultiplexedConnection>,
}

impl Stats {
    pub async fn connect(target: &Target) -> Stats {
        let mut nodes = Vec::new();
        for u in target.node_urls() {
            let c = redis::Client::open(u.as_str()).unwrap();
            nodes.push(c.get_multiplexed_async_connection().await.unwrap());
        }
        Stats { nodes }
    }
    pub async fn reset(&self) {
        for n in &self.nodes {
            let _: () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query_async(&mut n.clone())
                .await
                .unwrap();
        }
    }
    /// Deletes this run's keys from a Redis the bench did not start (one key per
    /// command: on a cluster a node's keys span many slots).
    pub async fn delete_prefix(&self, prefix: &str) {
        for n in &self.nodes {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query_async(&mut n.clone())
                .await
                .unwrap_or_default();
            for chunk in keys.chunks(1000) {
                let mut pipe = redis::pipe();
                for k in chunk {
                    pipe.cmd("UNLINK").arg(k).ignore();
                }
                let _: redis::RedisResult<()> = pipe.query_async(&mut n.clone()).await;
            }
        }
    }

    /// CPU seconds the servers used so far (`INFO cpu`, user + system, all nodes).
    pub async fn cpu(&self) -> f64 {
        let mut total = 0.0;
        for n in &self.nodes {
            let info: String = redis::cmd("INFO")
                .arg("cpu")
                .query_async(&mut n.clone())
                .await
                .unwrap();
            total += info
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("used_cpu_user:")
                        .or_else(|| l.strip_prefix("used_cpu_sys:"))
                })
                .filter_map(|v| v.trim().parse::<f64>().ok())
                .sum::<f64>();
        }
        total
    }

    pub async fn read(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for n in &self.nodes {
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut n.clone())
                .await
                .unwrap();
            for line in info.lines() {
                let Some(rest) = line.strip_prefix("cmdstat_") else {
                    continue;
                };
                let Some((name, fields)) = rest.split_once(':') else {
                    continue;
                };
                // This bench's own INFO / CONFIG are not the servers' work.
                if matches!(name, "info" | "config") || name.starts_with("config|") {
                    continue;
                }
                let calls = fields
                    .split(',')
                    .find_map(|f| f.strip_prefix("calls="))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                *out.entry(name.to_uppercase()).or_default() += calls;
            }
        }
        out
    }
}
