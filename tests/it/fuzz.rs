//! A short run of the webhook fuzzer (`fuzz_engine`, the code `benches/fuzz.rs` runs with
//! 100,000+ cases): 0 panics, 0 5xx, 0 jobs for wrongly signed bodies, every error a JSON
//! body with a stable code and a field path, no submitted value in answers or the log.

use crate::helpers;

#[path = "fuzz_engine.rs"]
mod fuzz_engine;

#[tokio::test]
async fn mutated_signed_and_unsigned_webhooks_never_break_the_intake_rules() {
    helpers::capture_logs();
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let report = fuzz_engine::run(fuzz_engine::FuzzConfig {
        cases,
        concurrency: 8,
        seed: 0x5eed_0011,
        redis_url: helpers::redis_url(),
    })
    .await;
    println!("fuzz: {}", report.summary());
    println!("fuzz error codes: {:?}", report.by_code);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert_eq!(report.server_errors, 0);
    // The run is only meaningful if both kinds of case occurred and some were stored.
    assert!(report.correctly_signed > cases / 4, "{}", report.summary());
    assert!(report.wrongly_signed > cases / 10, "{}", report.summary());
    assert!(report.accepted_jobs > 0, "{}", report.summary());
    let logs = helpers::captured_logs();
    assert!(
        logs.contains("webhook rejected"),
        "the capture sees the intake"
    );
    let echoed: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(fuzz_engine::CANARY_PREFIX))
        .take(3)
        .collect();
    assert!(
        echoed.is_empty(),
        "a submitted value reached the log: {echoed:#?}"
    );
}
