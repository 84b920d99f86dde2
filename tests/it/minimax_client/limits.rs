//! Limits: `429` pauses, daily and monthly budgets, the rate limit's spacing.

use super::*;

#[tokio::test]
async fn a_429_pauses_only_that_tenant() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let org2 = 777_001;
    env.sandbox
        .add_organisation(org2, "Druga d.o.o. (SANDBOX)", Country::SI);
    env.sandbox
        .add_user("second@sandbox.invalid", "second-pass", &[org2]);
    let mm = env.instance();
    let a = env.tenant(&mm);
    let mut creds_b = env.creds("shop-2");
    creds_b.organisation_id = org2;
    creds_b.login.username = "second@sandbox.invalid".into();
    creds_b.login.password = SecretString::from("second-pass");
    let b = mm.tenant(creds_b);

    let org1 = env.sandbox.settings().organisation_id;
    env.sandbox.pause_org(org1, Duration::from_secs(120));
    let err = a.country_by_code("SI").await.unwrap_err();
    let until = match (&err, err.disposition()) {
        (MinimaxError::TenantPaused { until }, Disposition::WaitUntil(t)) => {
            assert_eq!(*until, t);
            t
        }
        other => panic!("unexpected {other:?}"),
    };
    assert!(until > Utc::now() + chrono::Duration::seconds(100));
    let served = env.sandbox.counters().org(org1);
    // The pause is kept in Redis: the next call does not reach Minimax.
    assert!(matches!(
        a.currency_by_code("EUR").await,
        Err(MinimaxError::TenantPaused { .. })
    ));
    assert_eq!(env.sandbox.counters().org(org1), served);
    assert!(a.usage().await.unwrap().paused_until.is_some());

    // The other tenant is unaffected.
    b.country_by_code("SI").await.unwrap();
    assert!(b.usage().await.unwrap().paused_until.is_none());
    env.cleanup().await;
}

#[tokio::test]
async fn the_daily_budget_is_counted_and_enforced() {
    let env = Env::new(SandboxSettings::default(), |s| s.daily_budget = 5).await;
    let mm = env.instance();
    let client = env.tenant(&mm);
    for _ in 0..5 {
        client.my_organisations().await.unwrap();
    }
    let err = client.my_organisations().await.unwrap_err();
    match &err {
        MinimaxError::BudgetExhausted { window, until } => {
            assert_eq!(*window, BudgetWindow::Rolling24h);
            assert!(*until > Utc::now() + chrono::Duration::hours(23));
            assert_eq!(err.disposition(), Disposition::WaitUntil(*until));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(env.sandbox.counters().api_calls, 5);
    let usage = mm
        .usage(env.sandbox.settings().organisation_id)
        .await
        .unwrap();
    assert_eq!(usage.last_24h, 5);
    assert_eq!(usage.this_month, 5);
    assert_eq!(usage.daily_limit, 5);
    assert_eq!(usage.monthly_limit, 20_000);
    env.cleanup().await;
}

#[tokio::test]
async fn the_sandbox_limit_answers_429_with_retry_after() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    env.sandbox.set_limits(3, 0);
    let client = env.tenant(&env.instance());
    for _ in 0..3 {
        client.item_by_code("ART-001").await.unwrap();
    }
    let err = client.item_by_code("ART-002").await.unwrap_err();
    // The pause lasts as long as Minimax's Retry-After says (here: until the oldest of
    // the 3 calls is 24 h old), not a default.
    match &err {
        MinimaxError::TenantPaused { until } => {
            assert!(*until > Utc::now() + chrono::Duration::hours(23), "{until}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(env.sandbox.counters().rate_limited, 1);
    env.cleanup().await;
}

#[tokio::test]
async fn the_monthly_budget_is_enforced_and_shared_by_instances() {
    let env = Env::new(SandboxSettings::default(), |s| s.monthly_budget = 4).await;
    // Two instances (two processes in production) spend one organisation's budget.
    let (one, two) = (env.tenant(&env.instance()), env.tenant(&env.instance()));
    one.my_organisations().await.unwrap();
    two.my_organisations().await.unwrap();
    one.my_organisations().await.unwrap();
    two.my_organisations().await.unwrap();
    let err = one.my_organisations().await.unwrap_err();
    match &err {
        MinimaxError::BudgetExhausted { window, until } => {
            assert_eq!(*window, BudgetWindow::Month);
            assert_eq!(until.day(), 1, "frees on the 1st: {until}");
            assert!(*until > Utc::now());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        two.my_organisations().await.unwrap_err(),
        MinimaxError::BudgetExhausted {
            window: BudgetWindow::Month,
            ..
        }
    ));
    assert_eq!(env.sandbox.counters().api_calls, 4);
    env.cleanup().await;
}

#[tokio::test]
async fn the_rate_limit_spaces_calls_and_gives_the_job_back_when_the_wait_is_too_long() {
    // 2 calls/s with a burst of 2: the 3rd and 4th call wait for tokens...
    let env = Env::new(SandboxSettings::default(), |s| {
        s.rate_per_sec = 2.0;
        s.burst = 2;
        s.max_rate_wait_ms = 2_000;
    })
    .await;
    let client = env.tenant(&env.instance());
    client.my_organisations().await.unwrap(); // token request is not rate-limited
    let started = std::time::Instant::now();
    for _ in 0..3 {
        client.my_organisations().await.unwrap();
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    env.cleanup().await;

    // ...and a wait longer than max_rate_wait_ms hands the call back as retryable.
    let env = Env::new(SandboxSettings::default(), |s| {
        s.rate_per_sec = 0.1;
        s.burst = 1;
        s.max_rate_wait_ms = 100;
    })
    .await;
    let client = env.tenant(&env.instance());
    client.my_organisations().await.unwrap();
    let err = client.my_organisations().await.unwrap_err();
    assert!(
        matches!(
            err.disposition(),
            Disposition::Unavailable { after: Some(_) }
        ),
        "{err:?}"
    );
    assert_eq!(env.sandbox.counters().api_calls, 1);
    env.cleanup().await;
}
