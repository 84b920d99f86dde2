//! When a booking fails: lost answers adopted, dead jobs that name the fix, an operator's
//! retry, a wrong password, refused creates, a lost order lock.

use super::*;
use crate::helpers::tid;

/// The two ways a create's answer gets lost: an error after it was handled, or the
/// connection dropped after it was handled.
pub(crate) fn lost_answers() -> [(&'static str, FaultAction); 2] {
    [
        ("500 after creating", FaultAction::StatusAfterHandling(500)),
        (
            "connection dropped after creating",
            FaultAction::DropAfterHandling,
        ),
    ]
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_adopted_not_repeated() {
    for (label, fault) in lost_answers() {
        let env = env().await;
        env.sb
            .state
            .inject(Fault::new("/issuedinvoices", fault).method("POST").times(1));
        let body = helpers::fixture_body("woocommerce", "order.json");
        let id = env
            .woo("order.updated", &body, "https://lost.example/")
            .await;
        let rec = env.done(&id).await;
        assert_eq!(
            env.invoices_for("727").len(),
            1,
            "{label}: {:?}",
            env.invoices()
        );
        assert_eq!(rec.result.as_ref().unwrap()["adopted"], true, "{label}");
        assert!(rec.attempts >= 2, "{label}");
        // A later redelivery changes nothing.
        let again = env
            .woo("order.updated", &body, "https://lost-again.example/")
            .await;
        env.done(&again).await;
        assert_eq!(env.invoices_for("727").len(), 1, "{label}");
    }
}

#[tokio::test]
async fn dead_jobs_name_the_fix_and_book_after_it_and_a_retry() {
    let mut booking = base_settings();
    booking["item_strategy"] = json!("by_sku_require_existing");
    booking["payment_methods"]
        .as_object_mut()
        .unwrap()
        .remove("cod");
    let env = env_with(booking).await;

    // 1. An item that does not exist while items must exist.
    let id = env.generic(&generic_example(), "msg-dead-1").await;
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead);
    let reason = rec.last_error.unwrap();
    assert!(
        reason.contains("MUG-01") && reason.contains("item_strategy"),
        "{reason}"
    );
    assert_eq!(rec.attempts, 1, "not retried");

    // 2. Allow creating items: now the unmapped payment method stops it.
    let mut fixed = base_settings();
    fixed["payment_methods"]
        .as_object_mut()
        .unwrap()
        .remove("cod");
    update_settings(&env, fixed).await;
    env.app.queue.retry(&tid(TENANT), &id).await.unwrap();
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead);
    let reason = rec.last_error.unwrap();
    assert!(
        reason.contains("cod") && reason.contains("payment"),
        "{reason}"
    );

    // 3. Map the payment method: the retried job books.
    update_settings(&env, base_settings()).await;
    env.app.queue.retry(&tid(TENANT), &id).await.unwrap();
    let rec = env.done(&id).await;
    assert_booked(&env, &rec, dec("45.71"));

    // 4. An unreconcilable total: dead with both figures, nothing written.
    let mut wrong = generic_example();
    wrong["order"]["shop_order_id"] = json!("666");
    wrong["order"]["number"] = json!("WRONG-1");
    wrong["order"]["total"] = json!("46.71");
    let id = env.generic(&wrong, "msg-dead-4").await;
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead);
    let reason = rec.last_error.unwrap();
    assert!(
        reason.contains("46.71") && reason.contains("45.71"),
        "{reason}"
    );
    assert!(env.invoices_for("WRONG-1").is_empty());
}

pub(crate) async fn update_settings(env: &Env, booking: Value) {
    let store = helpers::tenant_store(&env.settings);
    let mut t = store.get(&tid(TENANT)).await.unwrap().unwrap();
    t.settings = serde_json::from_value(booking).unwrap();
    store.put(&t).await.unwrap();
}

#[tokio::test]
async fn an_operator_fixes_the_setting_and_retries_through_the_admin_api() {
    let mut booking = base_settings();
    booking["payment_methods"]
        .as_object_mut()
        .unwrap()
        .remove("cod");
    let env = env_with(booking).await;
    let admin = |req: reqwest::RequestBuilder| req.bearer_auth("demo-admin-token-change-me");
    let id = env.generic(&generic_example(), "msg-admin-1").await;
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead);

    let dead: Value = admin(
        env.client.get(
            env.app
                .url(&format!("/admin/tenants/{TENANT}/jobs?state=dead")),
        ),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(dead.to_string().contains(&id), "{dead}");

    let res = admin(
        env.client
            .patch(env.app.url(&format!("/admin/tenants/{TENANT}"))),
    )
    .json(&json!({"settings": {"payment_methods": {"cod": "Gotovina"}}}))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = admin(
        env.client.post(
            env.app
                .url(&format!("/admin/tenants/{TENANT}/jobs/{id}/retry")),
        ),
    )
    .send()
    .await
    .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let rec = env.done(&id).await;
    assert_booked(&env, &rec, dec("45.71"));
    let job: Value = admin(
        env.client
            .get(env.app.url(&format!("/admin/tenants/{TENANT}/jobs/{id}"))),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(job["state"], "done");
    assert_eq!(job["result"]["document"], "issued_invoice");
}

#[tokio::test]
async fn a_wrong_password_makes_one_token_request_jobs_wait_and_book_after_the_fix() {
    let env = env_full(base_settings(), Some("not-the-password")).await;
    let admin = |req: reqwest::RequestBuilder| req.bearer_auth("demo-admin-token-change-me");
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut order = generic_example();
        order["order"]["shop_order_id"] = json!(format!("L{i}"));
        order["order"]["number"] = json!(format!("L-{i}"));
        ids.push(env.generic(&order, &format!("msg-lock-{i}")).await);
    }
    // Every job is waiting; they have looked again (recheck every second) without a
    // second token request.
    for id in &ids {
        let waiting = helpers::eventually(Duration::from_secs(10), || async {
            env.app
                .queue
                .get(&tid(TENANT), id)
                .await
                .unwrap()
                .filter(|r| {
                    r.state == JobState::Delayed
                        && r.history.iter().filter(|a| a.outcome == "wait").count() >= 2
                })
        })
        .await
        .expect("job waits");
        // Read in one go with the state: a waiting job has used no attempt (while it
        // is being looked at again, the running look counts as one).
        assert_eq!(waiting.attempts, 0, "waiting uses no attempts");
    }
    let c = env.sb.state.counters();
    assert_eq!(
        c.token_requests, 1,
        "exactly one login with the wrong password"
    );
    assert!(!env.sb.state.is_locked(&env.sb.state.settings().username));
    let status: Value = admin(
        env.client
            .get(env.app.url(&format!("/admin/tenants/{TENANT}/status"))),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(status["credentials"]["state"], "blocked", "{status}");
    let metrics = env
        .client
        .get(env.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "mmc_tenant_credentials_blocked{{tenant=\"{TENANT}\"}} 1"
        )),
        "{metrics}"
    );

    // The operator enters the right password: the waiting jobs go through.
    let password =
        secrecy::ExposeSecret::expose_secret(&env.sb.state.settings().password).to_owned();
    let res = admin(
        env.client
            .patch(env.app.url(&format!("/admin/tenants/{TENANT}"))),
    )
    .json(&json!({"minimax": {"password": password}}))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    for id in &ids {
        env.done(id).await;
    }
    assert_eq!(env.sb.state.counters().token_requests, 2);
    assert_eq!(env.invoices().len(), 5);
}

#[tokio::test]
async fn a_credit_note_whose_answer_is_lost_is_adopted_not_repeated() {
    let env = env().await;
    let paid = generic_example();
    env.done(&env.generic(&paid, "msg-c-paid").await).await;
    env.sb
        .state
        .inject(Fault::new("/actions/copytocreditnote", FaultAction::DropAfterHandling).times(1));
    let mut cancelled = paid.clone();
    cancelled["kind"] = json!("order_cancelled");
    let rec = env
        .done(&env.generic(&cancelled, "msg-c-cancel").await)
        .await;
    assert!(rec.attempts >= 2);
    let result = rec.result.unwrap();
    assert_eq!(result["adopted"], true, "{result}");
    let credits: Vec<_> = env
        .invoices()
        .into_iter()
        .filter(|i| value(&i["InvoiceValue"]) < Decimal::ZERO)
        .collect();
    assert_eq!(credits.len(), 1, "{credits:?}");
}

#[tokio::test]
async fn a_refused_create_leaves_no_intent_so_the_retry_does_not_search() {
    let env = env().await;
    env.sb.state.inject(
        Fault::new("/issuedinvoices", FaultAction::Status(400))
            .method("POST")
            .times(1),
    );
    let id = env.generic(&generic_example(), "msg-refused").await;
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead, "a 400 is not retried by itself");
    env.sb.state.reset_counters();
    env.app.queue.retry(&tid(TENANT), &id).await.unwrap();
    let rec = env.done(&id).await;
    assert_eq!(rec.result.unwrap()["adopted"], false);
    let by_kind = env.sb.state.counters().by_kind;
    assert!(
        !by_kind
            .keys()
            .any(|k| k.starts_with("get issuedinvoices") && !k.contains("{id}")),
        "no search for an earlier invoice: {by_kind:?}"
    );
}

#[tokio::test]
async fn a_job_that_lost_the_order_lock_cannot_renew_it() {
    let records = minimax_connector::booking::records::Records::new(
        helpers::pool(&helpers::redis_url()),
        helpers::unique_prefix("lock"),
    );
    let mine = records.lock(&tid("t"), "o1", 200).await.unwrap().unwrap();
    assert!(
        records.lock(&tid("t"), "o1", 200).await.unwrap().is_none(),
        "held"
    );
    assert!(records.refresh(&tid("t"), "o1", &mine, 200).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // It expired and another job took it: the first job must stop writing.
    let theirs = records
        .lock(&tid("t"), "o1", 10_000)
        .await
        .unwrap()
        .unwrap();
    assert!(!records
        .refresh(&tid("t"), "o1", &mine, 10_000)
        .await
        .unwrap());
    assert!(records
        .refresh(&tid("t"), "o1", &theirs, 10_000)
        .await
        .unwrap());
}
