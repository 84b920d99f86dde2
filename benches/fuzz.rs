//! Webhook fuzz run: at least 100,000 mutated signed and unsigned deliveries to every
//! webhook route of the real service (intake role) against a real Redis; see
//! `tests/it/fuzz_engine.rs` for what is mutated and checked. Exits non-zero on any
//! broken rule. The test suite runs the same code with fewer cases (`fuzz::`).
//!
//! Run: `cargo bench --bench fuzz` (Redis at `REDIS_URL`, default 127.0.0.1:6379).
//! Knobs: `FUZZ_CASES` (default 100000), `FUZZ_CONCURRENCY` (16), `FUZZ_SEED`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/fuzz_engine.rs"]
mod fuzz_engine;

use std::io::Write;
use std::sync::Mutex;

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // Every log line at info (warnings carry the rejections) goes to memory, to be
    // searched for canaries.
    minimax_connector::telemetry::init_with_writer(
        &minimax_connector::config::TelemetrySettings {
            format: minimax_connector::config::LogFormat::Json,
            level: "warn,minimax_connector=info".into(),
        },
        || Capture,
    );
    let cfg = fuzz_engine::FuzzConfig {
        cases: env_num("FUZZ_CASES", 100_000) as usize,
        concurrency: env_num("FUZZ_CONCURRENCY", 16) as usize,
        seed: env_num("FUZZ_SEED", 0x5eed_0011),
        redis_url: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    };
    let report = fuzz_engine::run(cfg).await;
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
    let echoed = logs.matches(fuzz_engine::CANARY_PREFIX).count();
    println!("fuzz: {}", report.summary());
    println!("error codes: {:?}", report.by_code);
    println!(
        "log: {} lines, {} canary occurrences",
        logs.lines().count(),
        echoed
    );
    for f in &report.failures {
        println!("FAILURE {f}");
    }
    if !report.failures.is_empty() || echoed > 0 {
        std::process::exit(1);
    }
}
