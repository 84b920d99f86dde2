//! Alerts: one signed alert per change of state, also for tenants without a shop.

use super::*;
use crate::helpers::tid;

/// The alerts received so far, each checked against its Standard Webhooks signature.
fn verified_alerts(receiver: &AlertReceiver, secret: &str) -> Vec<Value> {
    let secret = secrecy::SecretString::from(secret.to_owned());
    receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(headers, body)| {
            minimax_connector::webshop::signature::verify_standard_webhooks(
                &secret,
                headers,
                body,
                Utc::now(),
                Duration::from_secs(300),
            )
            .expect("the alert is signed with the alert secret");
            serde_json::from_slice(body).unwrap()
        })
        .collect()
}

/// Waits for the alert `kind` of `tenant` in `state`, and returns it.
async fn alert(
    receiver: &AlertReceiver,
    secret: &str,
    tenant: &str,
    kind: &str,
    state: &str,
) -> Value {
    helpers::eventually(Duration::from_secs(30), || async {
        verified_alerts(receiver, secret).into_iter().find(|a| {
            a["tenant"] == tenant && a["type"] == format!("alert.{kind}") && a["state"] == state
        })
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no {kind} {state} alert for {tenant}: {:?}",
            verified_alerts(receiver, secret)
        )
    })
}

#[tokio::test]
async fn each_alert_is_sent_once_per_state_change_signed_also_for_tenants_without_a_shop() {
    let receiver = AlertReceiver::spawn().await;
    let secret = "whsec_YWxlcnQtc2VjcmV0LW9mLXRoZS1hbGVydHMtdGVzdA==";
    let mut settings = base_settings(&helpers::unique_prefix("rec-alerts"));
    // Polling stays off: the alert checks run for every tenant anyway.
    settings.alerts.url = receiver.url.clone();
    settings.alerts.secret = secret.to_owned().into();
    settings.alerts.timeout = 5;
    let env = env_with(settings, None).await;
    let source = |i: u32| format!("https://alerts{i}.example/");

    // Job dead (no shop connection): two dead jobs, one alert; resolved when cleared.
    let bad = helpers::fixture_body("woocommerce", "order_with_coupon.ios.json");
    let mut dead = Vec::new();
    for i in 0..2 {
        // Two orders (distinct bodies: the same body twice is one job).
        let mut order: Value = serde_json::from_slice(&bad).unwrap();
        order["id"] = json!(9_000 + i);
        let body = serde_json::to_vec(&order).unwrap();
        dead.push(env.woo_webhook("order.updated", &body, &source(i)).await);
    }
    helpers::eventually(Duration::from_secs(30), || async {
        (env.app.queue.counts(&tid(TENANT)).await.unwrap().dead == 2).then_some(())
    })
    .await
    .expect("both jobs die");
    let a = alert(&receiver, secret, TENANT, "job_dead", "firing").await;
    assert!(a["details"]["dead"].as_u64().unwrap() >= 1, "{a}");
    for id in &dead {
        let (s, v) = env
            .admin(reqwest::Method::DELETE, &format!("/jobs/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
    }
    alert(&receiver, secret, TENANT, "job_dead", "resolved").await;

    // Tenant paused: Minimax answers 429 for a while; the booking waits, then books.
    // Long enough that the booking surely meets it on a loaded machine.
    env.sb.state.pause_org(env.org, Duration::from_secs(4));
    let order = helpers::fixture_body("woocommerce", "order.json");
    env.woo_webhook("order.updated", &order, &source(9)).await;
    let a = alert(&receiver, secret, TENANT, "tenant_paused", "firing").await;
    assert!(a["details"]["paused_until"].is_string(), "{a}");
    alert(&receiver, secret, TENANT, "tenant_paused", "resolved").await;
    env.drained().await;
    assert_eq!(env.invoices().len(), 1);

    // Tenant paused because Minimax stopped answering: the organisation's circuit is
    // open (as a streak of failures leaves it); resumed by the operator.
    let breaker = format!(
        "{}:{{o:{}}}:breaker",
        env.settings.redis.key_prefix, env.org
    );
    let until = Utc::now().timestamp_millis() + 3_600_000;
    let mut conn = env.app.queue.pool().get().await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&breaker)
        .arg("state")
        .arg("open")
        .arg("failures")
        .arg(5)
        .arg("until")
        .arg(until)
        .query_async(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let nth = |state: &'static str, n: usize| {
        let receiver = &receiver;
        async move {
            helpers::eventually(Duration::from_secs(30), || async {
                let all: Vec<Value> = verified_alerts(receiver, secret)
                    .into_iter()
                    .filter(|a| a["tenant"] == TENANT && a["type"] == "alert.tenant_paused")
                    .filter(|a| a["state"] == state)
                    .collect();
                (all.len() >= n).then(|| all[n - 1].clone())
            })
            .await
            .unwrap_or_else(|| panic!("no tenant_paused {state} alert number {n}"))
        }
    };
    let a = nth("firing", 2).await;
    assert!(
        a["message"].as_str().unwrap_or("").contains("circuit open"),
        "{a}"
    );
    let (s, v) = env.admin(reqwest::Method::POST, "/resume", None).await;
    assert_eq!(s, 200, "{v}");
    nth("resolved", 2).await;

    // Credentials blocked, on a second tenant without a shop connection.
    let sbs = env.sb.state.settings().clone();
    let blocked = "alert-blocked";
    let body = |password: &str| {
        json!({
            "country": "SI", "organisation_id": 424242,
            "minimax": {"username": sbs.username, "password": password, "client_id": sbs.client_id,
                "client_secret": secrecy::ExposeSecret::expose_secret(&sbs.client_secret),
                "api_base": env.sb.api_base(Country::SI), "token_url": env.sb.token_url(Country::SI)},
            "webhook_secrets": {"woocommerce": helpers::SECRET},
        })
    };
    let (s, v) = env
        .admin_of(blocked, reqwest::Method::PUT, "", Some(body("wrong")))
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, v) = env
        .admin_of(blocked, reqwest::Method::POST, "/check", None)
        .await;
    assert_eq!(v["blocked"], true, "{v}");
    let a = alert(&receiver, secret, blocked, "credentials_blocked", "firing").await;
    assert!(a["message"].as_str().unwrap().contains("blocked"), "{a}");
    let good = secrecy::ExposeSecret::expose_secret(&sbs.password).to_owned();
    let (s, v) = env
        .admin_of(
            blocked,
            reqwest::Method::PATCH,
            "",
            Some(json!({"minimax": {"password": good}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    alert(
        &receiver,
        secret,
        blocked,
        "credentials_blocked",
        "resolved",
    )
    .await;

    // Webhooks silent: the poll finds an order no webhook delivered, with the count.
    let shop = FakeShop::spawn(vec![woo_order("order.json", 900, 20)]).await;
    env.connect(&shop, "woocommerce", false).await;
    assert_eq!(env.poll().await["found_only_by_poll"], 1);
    let a = alert(&receiver, secret, TENANT, "webhooks_silent", "firing").await;
    assert_eq!(a["details"]["found_only_by_poll"], 1, "{a}");
    assert!(a["message"].as_str().unwrap().contains("1 order"), "{a}");
    assert_eq!(env.poll().await["found_only_by_poll"], 0);
    alert(&receiver, secret, TENANT, "webhooks_silent", "resolved").await;
    assert_eq!(env.poll().await["found_only_by_poll"], 0);
    env.drained().await;

    // A new dead job is a new state change: a second job_dead alert. By then the checks
    // have run many times; each state change above was sent exactly once.
    env.woo_webhook("order.updated", &bad, &source(5)).await;
    helpers::eventually(Duration::from_secs(30), || async {
        let n = verified_alerts(&receiver, secret)
            .iter()
            .filter(|a| a["type"] == "alert.job_dead" && a["state"] == "firing")
            .count();
        (n == 2).then_some(())
    })
    .await
    .expect("a second job_dead alert");
    let mut seen = std::collections::BTreeMap::new();
    for a in verified_alerts(&receiver, secret) {
        let k = format!("{} {} {}", a["tenant"], a["type"], a["state"]);
        *seen.entry(k).or_insert(0) += 1;
    }
    let expected: std::collections::BTreeMap<String, i32> = [
        (format!("\"{TENANT}\" \"alert.job_dead\" \"firing\""), 2),
        (format!("\"{TENANT}\" \"alert.job_dead\" \"resolved\""), 1),
        (
            format!("\"{TENANT}\" \"alert.tenant_paused\" \"firing\""),
            2,
        ),
        (
            format!("\"{TENANT}\" \"alert.tenant_paused\" \"resolved\""),
            2,
        ),
        (
            format!("\"{TENANT}\" \"alert.webhooks_silent\" \"firing\""),
            1,
        ),
        (
            format!("\"{TENANT}\" \"alert.webhooks_silent\" \"resolved\""),
            1,
        ),
        (
            format!("\"{blocked}\" \"alert.credentials_blocked\" \"firing\""),
            1,
        ),
        (
            format!("\"{blocked}\" \"alert.credentials_blocked\" \"resolved\""),
            1,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, expected);
    let text = format!("{:?}", receiver.received.lock().unwrap());
    assert!(
        !text.contains("cs_test") && !text.contains(&good),
        "no secrets in alerts"
    );
}
