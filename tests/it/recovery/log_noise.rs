//! A Redis outage writes a bounded number of log lines.

use super::*;

#[tokio::test]
async fn a_redis_outage_writes_a_bounded_number_of_log_lines() {
    let mut redis = helpers::RedisServer::start();
    let port = helpers::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MMC__SERVER__PORT", port.to_string())
        .env("MMC__DEMO__ENABLED", "false")
        .env("MMC__REDIS__URL", redis.url())
        .env("MMC__REDIS__KEY_PREFIX", helpers::unique_prefix("noise"))
        .env("MMC__TELEMETRY__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let before = lines.lock().unwrap().len();

    redis.stop();
    let outage = Instant::now();
    let (mut webhooks, mut probes) = (0, 0);
    while outage.elapsed() < Duration::from_secs(8) {
        let body = serde_json::to_vec(&order(webhooks)).unwrap();
        let h = helpers::reqwest_headers(&helpers::generic_headers(
            &format!("n-{webhooks}"),
            chrono::Utc::now().timestamp(),
            &body,
            helpers::SECRET,
        ));
        let res = client
            .post(format!("{base}/webhooks/generic/{TENANT}"))
            .headers(h)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        webhooks += 1;
        let res = client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        probes += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    redis.restart();
    wait_ready(&client, &base).await;
    // The worker notices Redis is back within a poll or two.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let lines = lines.lock().unwrap();
    let during: Vec<&String> = lines[before..]
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .collect();
    let count = |m: &str| lines[before..].iter().filter(|l| l.contains(m)).count();
    println!(
        "Redis outage 8 s, {webhooks} rejected webhooks, {probes} readiness probes: {} WARN/ERROR lines (down {}, back {}, not ready {})",
        during.len(),
        count("dependency down"),
        count("dependency back"),
        count("\"not ready\""),
    );
    for l in &during {
        println!("  {l}");
    }
    assert!(webhooks > 50 && probes > 50);
    assert!(during.len() <= 12, "{} lines", during.len());
    assert_eq!(count("\"dependency down\""), 1);
    assert_eq!(count("\"not ready\""), 1);
    assert!(count("\"dependency back\"") >= 1);
}
