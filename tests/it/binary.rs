//! The binary started the way the Docker image starts it: from a directory holding a
//! copy of `config/`, configured only through `MMC__…` environment variables, stopped
//! with SIGTERM. Also: a wrong configuration value stops it with a message naming the key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_minimax-connector");

fn image_like_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"),
        config.join("default.toml"),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn starts_like_the_container_and_stops_cleanly_on_sigterm() {
    let dir = image_like_dir();
    let port = helpers::free_port();
    let prefix = helpers::unique_prefix("bin");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        // The Dockerfile's and docker-compose.yml's environment.
        .env("MMC__SERVER__HOST", "127.0.0.1")
        .env("MMC__SERVER__PORT", port.to_string())
        .env("MMC__TELEMETRY__FORMAT", "json")
        .env("MMC__DEMO__ENABLED", "false")
        .env("MMC__REDIS__URL", helpers::redis_url())
        .env("MMC__REDIS__KEY_PREFIX", &prefix)
        .env("MMC__ROLE", "all")
        .env(
            "MMC__SECURITY__ENCRYPTION_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env(
            "MMC__SECURITY__ADMIN_TOKENS",
            "first-operator-token-0001,second-operator-token-02",
        )
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let up = helpers::eventually(Duration::from_secs(20), || {
        let c = client.clone();
        let u = format!("{base}/health/ready");
        async move {
            c.get(u)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        }
    })
    .await;
    assert!(up.is_some(), "service did not become ready");
    assert_eq!(
        client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Demo off: no sandbox, no demo tenant.
    assert_eq!(
        client
            .get(format!("{base}/sandbox/SI/API/api/currentuser/orgs"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Both operator tokens from the comma-separated variable work; the demo one does not.
    for (token, status) in [
        ("first-operator-token-0001", 200),
        ("second-operator-token-02", 200),
        ("demo-admin-token-change-me", 401),
    ] {
        let res = client
            .get(format!("{base}/admin/tenants"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{token}");
        if status == 200 {
            let body: serde_json::Value = res.json().await.unwrap();
            assert!(!body.to_string().contains("\"demo\""), "{body}");
        }
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = helpers::eventually(Duration::from_secs(20), || {
        let r = child.try_wait().unwrap();
        async move { r }
    })
    .await
    .expect("exits after SIGTERM");
    assert!(exited.success(), "{exited:?}");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(out.contains("stopped"), "{out}");
    assert!(!out.contains("first-operator-token-0001"));
}

#[test]
fn a_wrong_value_stops_start_up_naming_the_key() {
    let dir = image_like_dir();
    let cases = [
        ("MMC__QUEUE__DEDUPE_TTL", "60", "queue.dedupe_ttl"),
        (
            "MMC__SECURITY__ENCRYPTION_KEY",
            "c2hvcnQ=",
            "security.encryption_key",
        ),
        ("MMC__REDIS__URL", "http://localhost", "redis.url"),
        ("MMC__WORKER__CONCURRENCY", "0", "worker.concurrency"),
    ];
    for (var, value, key) in cases {
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .arg("--check-config")
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{var}: {err}");
        if var == "MMC__SECURITY__ENCRYPTION_KEY" {
            assert!(!err.contains(value), "the key leaked into the error: {err}");
        }
    }
    let ok = Command::new(BIN)
        .current_dir(dir.path())
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}
