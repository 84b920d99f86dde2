//! Tokens: one request per expiry across tasks and instances, one request for a wrong
//! password, blocks, sealed in Redis, shared by tenants of one login.

use super::*;

#[tokio::test]
async fn hundred_calls_make_one_token_request() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let client = env.tenant(&env.instance());
    for _ in 0..100 {
        let orgs = client.my_organisations().await.unwrap();
        assert_eq!(orgs.len(), 1);
    }
    let c = env.sandbox.counters();
    assert_eq!(c.token_requests, 1);
    assert_eq!(c.api_calls, 100);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_first_calls_on_two_instances_make_one_token_request() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    // A slow token endpoint keeps the lock held while everyone else arrives.
    env.sandbox.inject(Fault::new(
        "oauth20/token",
        FaultAction::Delay(Duration::from_millis(300)),
    ));
    let (a, b) = (env.tenant(&env.instance()), env.tenant(&env.instance()));
    let calls = (0..50).map(|i| {
        let client = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { client.my_organisations().await }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    let c = env.sandbox.counters();
    assert_eq!(c.token_requests, 1);
    assert_eq!(c.api_calls, 50);
    env.cleanup().await;
}

#[tokio::test]
async fn an_expired_token_is_replaced_once_transparently() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let client = env.tenant(&env.instance());
    client.my_organisations().await.unwrap();
    env.sandbox.expire_tokens();
    client.my_organisations().await.unwrap();
    client.my_organisations().await.unwrap();
    let c = env.sandbox.counters();
    assert_eq!(c.token_requests, 2);
    assert_eq!(c.unauthorized, 1);
    assert_eq!(c.api_calls, 4);

    // A short-lived token is renewed before it expires (no 401 at all).
    env.sandbox.set_token_lifetime(Duration::from_secs(2));
    env.sandbox.expire_tokens();
    client.my_organisations().await.unwrap(); // 401 → token 3 (lives 2 s, used for 1 s)
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    client.my_organisations().await.unwrap(); // token 4 fetched proactively
    let c = env.sandbox.counters();
    assert_eq!(c.token_requests, 4);
    assert_eq!(c.unauthorized, 2);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_makes_exactly_one_token_request() {
    let sandbox = SandboxSettings {
        lockout_after: 2,
        ..SandboxSettings::default()
    };
    let env = Env::new(sandbox, |_| {}).await;
    let mm = env.instance();
    let mut creds = env.creds("shop-wrong");
    creds.login.password = SecretString::from("not-the-password");
    let client = mm.tenant(creds.clone());

    let calls = (0..20).map(|_| {
        let client = client.clone();
        async move { client.my_organisations().await }
    });
    for result in futures::future::join_all(calls).await {
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                MinimaxError::CredentialsRejected { .. } | MinimaxError::CredentialsBlocked { .. }
            ),
            "{err:?}"
        );
        match err.disposition() {
            Disposition::WaitUntil(t) => assert!(t > Utc::now()),
            other => panic!("unexpected disposition {other:?}"),
        }
        // Never a secret in the message.
        assert!(!err.to_string().contains("not-the-password"));
    }
    // Another instance and more calls later: still no new token request.
    let other = env.instance().tenant(creds.clone());
    assert!(matches!(
        other.my_organisations().await,
        Err(MinimaxError::CredentialsBlocked { .. })
    ));
    assert_eq!(env.sandbox.counters().token_requests, 1);
    assert_eq!(env.sandbox.counters().api_calls, 0);
    assert!(!env.sandbox.is_locked(&env.sandbox.settings().username));
    match client.auth_state().await {
        AuthState::Blocked { reason, .. } => assert!(reason.contains("invalid_grant"), "{reason}"),
        AuthState::Ok => panic!("expected blocked"),
    }
    assert!(matches!(
        mm.auth_state(&creds).await,
        AuthState::Blocked { .. }
    ));

    // The operator fixes the password: a different fingerprint unblocks.
    let fixed = mm.tenant(env.creds("shop-wrong"));
    assert_eq!(fixed.auth_state().await, AuthState::Ok);
    fixed.my_organisations().await.unwrap();
    assert_eq!(env.sandbox.counters().token_requests, 2);
    assert_eq!(env.sandbox.counters().api_calls, 1);
    env.cleanup().await;
}

#[tokio::test]
async fn clear_block_allows_one_new_attempt() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let mm = env.instance();
    let mut creds = env.creds("shop-clear");
    creds.login.password = SecretString::from("wrong");
    let client = mm.tenant(creds);
    assert!(client.my_organisations().await.is_err());
    assert!(client.my_organisations().await.is_err());
    assert_eq!(env.sandbox.counters().token_requests, 1);
    client.clear_block().await.unwrap();
    assert_eq!(client.auth_state().await, AuthState::Ok);
    assert!(client.my_organisations().await.is_err());
    assert_eq!(env.sandbox.counters().token_requests, 2);
    env.cleanup().await;
}

#[tokio::test]
async fn the_cached_token_is_sealed_in_redis() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let client = env.tenant(&env.instance());
    client.my_organisations().await.unwrap();
    let issued = env.sandbox.issued_tokens();
    assert_eq!(issued.len(), 1);
    let mut conn = helpers::pool(&helpers::redis_url()).get().await.unwrap();
    // Tokens are kept per login: `{prefix}:{f:<fingerprint>}:token`.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:{{f:*}}:token", env.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let stored: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(stored.contains("enc:v1:"), "{stored}");
    assert!(!stored.contains(&issued[0]), "token stored in clear");
    // Another instance (same configuration) opens it: no second token request.
    env.tenant(&env.instance())
        .my_organisations()
        .await
        .unwrap();
    assert_eq!(env.sandbox.counters().token_requests, 1);
    env.cleanup().await;
}

#[tokio::test]
async fn tenants_sharing_a_login_share_its_token_and_its_block() {
    // Two shops booking into one organisation with the same Minimax login.
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let mm = env.instance();
    let a = mm.tenant(env.creds("shop-a"));
    let b = mm.tenant(env.creds("shop-b"));
    a.my_organisations().await.unwrap();
    b.my_organisations().await.unwrap();
    assert_eq!(
        env.sandbox.counters().token_requests,
        1,
        "one token for the login"
    );

    // The same wrong password on both: one rejected request in all, never two.
    let wrong = |t: &str| {
        let mut creds = env.creds(t);
        creds.login.password = SecretString::from("wrong-password");
        creds
    };
    env.sandbox.reset_counters();
    let err_a = mm
        .tenant(wrong("shop-a"))
        .my_organisations()
        .await
        .unwrap_err();
    let err_b = mm
        .tenant(wrong("shop-b"))
        .my_organisations()
        .await
        .unwrap_err();
    assert!(
        matches!(err_a.disposition(), Disposition::WaitUntil(_)),
        "{err_a}"
    );
    assert!(
        matches!(err_b, MinimaxError::CredentialsBlocked { .. }),
        "{err_b}"
    );
    assert_eq!(env.sandbox.counters().token_requests, 1);
    assert!(matches!(
        mm.tenant(wrong("shop-b")).auth_state().await,
        AuthState::Blocked { .. }
    ));
    // The right login is another key: not blocked.
    assert_eq!(
        mm.tenant(env.creds("shop-b")).auth_state().await,
        AuthState::Ok
    );
    env.cleanup().await;
}
