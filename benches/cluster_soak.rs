//! The multi-instance drill on a private Redis Cluster: two intake and two worker
//! instances, 100 tenants × 20 orders, one worker process killed mid-run; every order
//! must be booked once and none dead. Exits non-zero (a panic) when that fails, and
//! prints, for every order still unbooked after 4 minutes, its job's state and history.
//!
//! Run: `cargo bench --bench cluster_soak` (needs `redis-server` and `redis-cli`), in
//! release; the suite runs the same drill in debug (`cluster::two_intakes_…`).
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/cluster.rs"]
mod cluster;
#[path = "../tests/it/helpers.rs"]
mod helpers;
#[path = "../tests/it/shop.rs"]
mod shop;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(cluster::multi_instance_drill());
}
