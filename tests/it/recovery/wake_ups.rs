//! Waiting jobs book at once when what they waited for is fixed: credentials, an
//! unblock, a raised budget at restart, a pause ended early, a settings fix and a
//! retry of the dead.

use super::*;

/// The time from `since` until `id` is done (at most 20 s, else it panics).
async fn time_to_done(a: &App, id: &str, since: Instant) -> Duration {
    a.wait_state(id, JobState::Done).await;
    since.elapsed()
}

#[tokio::test]
async fn fixing_credentials_or_unblocking_books_the_waiting_jobs_at_once() {
    // Default blocked_recheck_secs (300 s): only the wake-up can make this quick.
    let s = settings("wake-creds");
    let right =
        secrecy::ExposeSecret::expose_secret(&SandboxSettings::default().password).to_string();
    let a = app_with(s, Some("wrong-password")).await;
    let id = a.post(0).await;
    let rec = a.wait_state(&id, JobState::Delayed).await;
    assert!(
        rec.last_error
            .as_deref()
            .unwrap_or("")
            .contains("credentials"),
        "{:?}",
        rec.last_error
    );
    // PATCH the right password.
    let fixed = Instant::now();
    a.admin(
        reqwest::Method::PATCH,
        &format!("/admin/tenants/{TENANT}"),
        Some(json!({"minimax": {"password": right}})),
    )
    .await;
    let after_patch = time_to_done(&a, &id, fixed).await;

    // Blocked again (a wrong password stored), then the sandbox's password is set to
    // the stored one and an operator unblocks: the waiting job books at once.
    a.admin(
        reqwest::Method::PATCH,
        &format!("/admin/tenants/{TENANT}"),
        Some(json!({"minimax": {"password": "re-created-password"}})),
    )
    .await;
    let id2 = a.post(1).await;
    a.wait_state(&id2, JobState::Delayed).await;
    let user = a.sb.state.settings().username.clone();
    a.sb.state.set_password(&user, "re-created-password");
    let unblocked = Instant::now();
    a.admin(
        reqwest::Method::POST,
        &format!("/admin/tenants/{TENANT}/unblock"),
        None,
    )
    .await;
    let after_unblock = time_to_done(&a, &id2, unblocked).await;
    println!(
        "booked {:.2} s after the credential PATCH, {:.2} s after the unblock (blocked_recheck_secs = {})",
        after_patch.as_secs_f64(),
        after_unblock.as_secs_f64(),
        a.settings.minimax.blocked_recheck_secs
    );
    assert!(after_patch <= Duration::from_secs(5), "{after_patch:?}");
    assert!(after_unblock <= Duration::from_secs(5), "{after_unblock:?}");
}

#[tokio::test]
async fn a_restart_with_a_raised_budget_books_the_waiting_jobs_at_once() {
    let mut s = settings("wake-budget");
    // A cold booking needs more calls than this: the job waits for the next day.
    s.minimax.daily_budget = 3;
    let a = app_with(s.clone(), None).await;
    let id = a.post(0).await;
    let rec = a.wait_state(&id, JobState::Delayed).await;
    assert!(
        rec.last_error.as_deref().unwrap_or("").contains("budget"),
        "{:?}",
        rec.last_error
    );
    assert!(rec.next_attempt_at.unwrap() > chrono::Utc::now() + chrono::Duration::hours(1));
    let App { app, sb, .. } = a;
    drop(app);
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.minimax.daily_budget = 1000;
    let restarted = Instant::now();
    let app = helpers::spawn_app(s.clone()).await;
    let a = App {
        app,
        sb,
        client: reqwest::Client::new(),
        settings: s,
    };
    let took = time_to_done(&a, &id, restarted).await;
    println!(
        "booked {:.2} s after a restart with a raised budget",
        took.as_secs_f64()
    );
    assert!(took <= Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_pause_ended_early_by_an_operator_books_at_once() {
    let a = app_with(settings("wake-pause"), None).await;
    let org = a.sb.state.settings().organisation_id;
    // Minimax answers 429 with Retry-After of an hour: the organisation pauses.
    a.sb.state.pause_org(org, Duration::from_secs(3600));
    let id = a.post(0).await;
    let rec = a.wait_state(&id, JobState::Delayed).await;
    assert!(rec.next_attempt_at.unwrap() > chrono::Utc::now() + chrono::Duration::minutes(30));
    let status = admin_status(&a.client, &a.app.base).await;
    assert!(status["budget"]["paused_until"].is_string(), "{status}");
    // Minimax lifts its limit early; the operator resumes the tenant.
    a.sb.state.pause_org(org, Duration::ZERO);
    let resumed = Instant::now();
    let body = a
        .admin(
            reqwest::Method::POST,
            &format!("/admin/tenants/{TENANT}/resume"),
            None,
        )
        .await;
    assert!(body["was_paused_until"].is_string(), "{body}");
    let took = time_to_done(&a, &id, resumed).await;
    println!(
        "booked {:.2} s after a 1 h pause was ended early",
        took.as_secs_f64()
    );
    assert!(took <= Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn retry_dead_after_a_settings_fix_books_at_once() {
    let mut s = settings("wake-dead");
    s.queue.backoff_base_ms = 50;
    s.queue.backoff_max_ms = 200;
    let a = app_with(s, None).await;
    // A payment gateway without a mapping is a setting to fix: dead at once.
    let mut o = order(0);
    o["order"]["payment_method"]["id"] = json!("unmapped-gateway");
    let body = serde_json::to_vec(&o).unwrap();
    let h = helpers::reqwest_headers(&helpers::generic_headers(
        "msg-dead",
        chrono::Utc::now().timestamp(),
        &body,
        helpers::SECRET,
    ));
    let res = a
        .client
        .post(a.app.url(&format!("/webhooks/generic/{TENANT}")))
        .headers(h)
        .body(body)
        .send()
        .await
        .unwrap();
    let id = res.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec = a.wait_state(&id, JobState::Dead).await;
    println!("dead as expected: {:?}", rec.last_error);
    let mut settings = booking();
    settings["payment_methods"]["unmapped-gateway"] = json!("Transakcijski račun");
    a.admin(
        reqwest::Method::PATCH,
        &format!("/admin/tenants/{TENANT}"),
        Some(json!({ "settings": settings })),
    )
    .await;
    let fixed = Instant::now();
    a.admin(
        reqwest::Method::POST,
        &format!("/admin/tenants/{TENANT}/jobs/retry-dead"),
        None,
    )
    .await;
    let took = time_to_done(&a, &id, fixed).await;
    println!("booked {:.2} s after retry-dead", took.as_secs_f64());
    assert!(took <= Duration::from_secs(5), "{took:?}");
}
