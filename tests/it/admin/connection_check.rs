//! The connection check against the sandbox: reported once, a rejected login never
//! repeated, unblocked by new credentials.

use super::*;

/// The sandbox as the Minimax the check logs in to: it accepts only [`GOOD_PASSWORD`]
/// for `checker` and lists organisation 1001.
async fn checker_sandbox() -> SandboxHandle {
    Sandbox::spawn(SandboxSettings {
        username: "checker".into(),
        password: SecretString::from(GOOD_PASSWORD),
        client_id: "checker-client".into(),
        client_secret: SecretString::from(CLIENT_SECRET),
        organisation_id: 1001,
        organisation_name: "Demo d.o.o.".into(),
        ..SandboxSettings::default()
    })
    .await
    .expect("sandbox")
}

/// Token requests the sandbox saw, refused ones included.
fn token_calls(sb: &SandboxHandle) -> u64 {
    sb.counters().token_requests
}

fn tenant_at(base: &str, password: &str) -> Value {
    json!({
        "country": "SI",
        "organisation_id": 1001,
        "minimax": {
            "username": "checker",
            "password": password,
            "client_id": "checker-client",
            "client_secret": CLIENT_SECRET,
            "api_base": format!("{base}/SI/API/"),
            "token_url": format!("{base}/SI/AUT/OAuth20/Token"),
        },
        "webhook_secrets": {"woocommerce": WOO_SECRET},
    })
}

#[tokio::test]
async fn connection_check_reports_and_never_repeats_a_rejected_login() {
    let env = env().await;
    let fake = checker_sandbox().await;
    let t = "/admin/tenants/checker";
    let (s, _) = env
        .call(Method::PUT, t, Some(tenant_at(&fake.base_url, PASSWORD)))
        .await;
    assert_eq!(s, 201);

    // Wrong password: one token request, reported, and the credentials are blocked.
    let (s, r) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"]["kind"], "credentials_rejected");
    assert_eq!(r["blocked"], true);
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));
    assert_eq!(token_calls(&fake), 1);

    // While blocked the check refuses to run: no second failed login.
    let (s, r) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(s, 409, "{r}");
    assert_eq!(r["error"], "credentials_blocked");
    assert_eq!(token_calls(&fake), 1);
    let (_, status) = env.call(Method::GET, &format!("{t}/status"), None).await;
    assert_eq!(status["credentials"]["state"], "blocked");
    assert!(status["credentials"]["reason"]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));
    assert!(status["credentials"]["since"].is_string());

    // Re-sending unchanged credentials does not lift the block.
    let (s, _) = env
        .call(Method::PUT, t, Some(tenant_at(&fake.base_url, PASSWORD)))
        .await;
    assert_eq!(s, 200);
    let (s, _) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(s, 409);

    // An explicit unblock allows exactly one more attempt.
    let (s, r) = env.call(Method::POST, &format!("{t}/unblock"), None).await;
    assert_eq!(s, 200);
    assert_eq!(r["was_blocked"], true);
    let (_, r) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(r["error"]["kind"], "credentials_rejected");
    assert_eq!(token_calls(&fake), 2);
    let (s, _) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(s, 409);

    // New credentials lift the block; the check then succeeds.
    let (s, _) = env
        .call(
            Method::PATCH,
            t,
            Some(json!({"minimax": {"password": GOOD_PASSWORD}})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, status) = env.call(Method::GET, &format!("{t}/status"), None).await;
    assert_eq!(status["credentials"]["state"], "ok");
    let (s, r) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["organisation"]["id"], 1001);
    assert_eq!(r["organisation"]["name"], "Demo d.o.o.");
    assert_eq!(token_calls(&fake), 3);
    assert_eq!(fake.counters().kind("GET currentuser/orgs"), 1);
    // The organisation read counted against the budget.
    let (_, status) = env.call(Method::GET, &format!("{t}/status"), None).await;
    assert_eq!(status["budget"]["last_24h"], 1);
    assert_eq!(status["budget"]["this_month"], 1);
    // A second check reuses the cached token.
    let (_, r) = env.call(Method::POST, &format!("{t}/check"), None).await;
    assert_eq!(r["ok"], true);
    assert_eq!(token_calls(&fake), 3);

    // An unreachable Minimax is reported as a transient error, without secrets.
    let (s, _) = env
        .call(
            Method::PUT,
            "/admin/tenants/unreachable",
            Some(tenant_at("http://127.0.0.1:9", GOOD_PASSWORD)),
        )
        .await;
    assert_eq!(s, 201);
    let (s, r) = env
        .call(Method::POST, "/admin/tenants/unreachable/check", None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"]["kind"], "transient");

    env.assert_no_secret_in_responses();
    assert_no_secret_in_logs();
}
