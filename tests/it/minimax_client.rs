//! The Minimax client against the sandbox over real HTTP and a real Redis.
//!
//! Each test uses its own Redis prefix (`test:<uuid>`) and its own sandbox, and deletes
//! only the keys under its prefix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::str::FromStr;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use minimax_connector::minimax::models::{
    Customer, Fk, IssuedInvoice, IssuedInvoicePaymentMethod, IssuedInvoiceRow,
};
use minimax_connector::minimax::{
    AuthState, BudgetWindow, Country, Disposition, InvoiceAction, Minimax, MinimaxError,
    MinimaxLogin, MinimaxSettings, TenantClient, TenantCredentials,
};
use minimax_connector::sandbox::{Fault, FaultAction, Sandbox, SandboxHandle, SandboxSettings};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};

fn redis_pool() -> minimax_connector::redis_conn::RedisPool {
    crate::helpers::pool(&crate::helpers::redis_url())
}

struct Env {
    sandbox: SandboxHandle,
    prefix: String,
    settings: MinimaxSettings,
}

impl Env {
    async fn new(sandbox: SandboxSettings, tweak: impl FnOnce(&mut MinimaxSettings)) -> Env {
        let sandbox = Sandbox::spawn(sandbox).await.expect("sandbox");
        let mut settings = MinimaxSettings {
            rate_per_sec: 1000.0,
            burst: 1000,
            ..MinimaxSettings::default()
        };
        tweak(&mut settings);
        Env {
            sandbox,
            prefix: format!("test:{}", uuid::Uuid::new_v4()),
            settings,
        }
    }

    /// A new client instance (as another process would have), sharing Redis.
    fn instance(&self) -> Minimax {
        Minimax::new(
            self.settings.clone(),
            helpers::pool(&helpers::redis_url()),
            self.prefix.clone(),
            helpers::cipher(),
        )
        .expect("client")
    }

    fn creds(&self, tenant: &str) -> TenantCredentials {
        let s = self.sandbox.settings();
        TenantCredentials {
            tenant_id: tenant.to_string(),
            country: Country::SI,
            organisation_id: s.organisation_id,
            login: MinimaxLogin {
                username: s.username.clone(),
                password: s.password.clone(),
                client_id: Some(s.client_id.clone()),
                client_secret: Some(s.client_secret.clone()),
                api_base: Some(self.sandbox.api_base(Country::SI)),
                token_url: Some(self.sandbox.token_url(Country::SI)),
            },
        }
    }

    fn tenant(&self, mm: &Minimax) -> TenantClient {
        mm.tenant(self.creds("shop-1"))
    }

    async fn cleanup(self) {
        helpers::delete_keys(&format!("{}:*", self.prefix)).await;
        self.sandbox.stop().await;
    }
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

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

async fn sample_invoice(client: &TenantClient) -> IssuedInvoice {
    let today = Utc::now().date_naive();
    let si = client.country_by_code("SI").await.unwrap();
    let eur = client.currency_by_code("EUR").await.unwrap();
    let code = format!("C-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let customer_id = client
        .create_customer(&Customer {
            code: Some(code.clone()),
            name: Some("Janez Kupec".into()),
            address: Some("Slovenska 1".into()),
            postal_code: Some("1000".into()),
            city: Some("Ljubljana".into()),
            country: Some(Fk::id(si.country_id.unwrap())),
            subject_to_vat: Some("N".into()),
            currency: Some(Fk::id(eur.currency_id.unwrap())),
            e_invoice_issuing: Some("SeNePripravlja".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        client.customer_id_by_code(&code).await.unwrap(),
        Some(customer_id)
    );
    let rates = client.vat_rates(today, None).await.unwrap();
    let rate = |code: &str| {
        rates
            .iter()
            .find(|r| r.code.as_deref() == Some(code))
            .cloned()
            .unwrap()
    };
    let (s, p) = (rate("S"), rate("P"));
    let item1 = client.item_id_by_code("ART-001").await.unwrap().unwrap();
    let item2 = client.item_id_by_code("ART-002").await.unwrap().unwrap();
    let trr = client
        .payment_methods()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind.as_deref() == Some("T"))
        .unwrap();
    let midnight = today.and_hms_opt(0, 0, 0).unwrap();
    IssuedInvoice {
        customer: Some(Fk::id(customer_id)),
        date_issued: Some(midnight),
        date_transaction: Some(midnight),
        date_due: Some(midnight),
        currency: Some(Fk::id(eur.currency_id.unwrap())),
        invoice_type: Some("R".into()),
        document_reference: Some("WEB-1001".into()),
        prices_on_invoice: Some("N".into()),
        issued_invoice_rows: vec![
            IssuedInvoiceRow {
                item: Some(Fk::id(item1)),
                row_number: Some(1),
                quantity: Some(dec("2")),
                unit_of_measurement: Some("kos".into()),
                price: Some(dec("20.00")),
                price_with_vat: Some(dec("24.40")),
                vat_percent: Some(dec("22")),
                vat_rate: Some(Fk::id(s.vat_rate_id.unwrap())),
                ..Default::default()
            },
            IssuedInvoiceRow {
                item: Some(Fk::id(item2)),
                row_number: Some(2),
                quantity: Some(dec("1")),
                price: Some(dec("15.00")),
                price_with_vat: Some(dec("15.75")),
                vat_percent: Some(dec("5")),
                vat_rate: Some(Fk::id(p.vat_rate_id.unwrap())),
                ..Default::default()
            },
        ],
        issued_invoice_payment_methods: vec![IssuedInvoicePaymentMethod {
            payment_method: Some(Fk::id(trr.payment_method_id.unwrap())),
            amount: Some(dec("64.55")),
            already_paid: Some("D".into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn create_reads_location_and_a_stale_row_version_is_retried() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let client = env.tenant(&env.instance());
    let org = env.sandbox.settings().organisation_id;
    let invoice = sample_invoice(&client).await;
    let id = client.create_issued_invoice(&invoice).await.unwrap();
    let stored = env
        .sandbox
        .invoice(org, id)
        .expect("stored under the Location id");
    assert_eq!(stored["Status"], "O");

    let draft = client.get_issued_invoice(id).await.unwrap();
    assert_eq!(draft.invoice_value, Some(dec("64.55")));
    let rv = draft.row_version.clone().unwrap();
    assert!(rv.contains('+'), "sandbox RowVersions contain '+': {rv}");

    // A stale RowVersion: the client re-reads and retries once.
    let result = client
        .issued_invoice_action(id, InvoiceAction::IssueAndGeneratePdf, Some("AAAAAAAAAAA="))
        .await
        .unwrap();
    let pdf = result.attachment().expect("attachment");
    assert_eq!(pdf.attachment_mime_type.as_deref(), Some("application/pdf"));
    assert!(pdf.attachment_data.is_some());
    let c = env.sandbox.counters();
    assert_eq!(
        c.kind("put issuedinvoices/{id}/actions/issueandgeneratepdf"),
        2
    );

    let issued = client.get_issued_invoice(id).await.unwrap();
    assert_eq!(issued.status.as_deref(), Some("I"));
    assert_eq!(issued.invoice_number, Some(1));
    assert_eq!(issued.payment_status.as_deref(), Some("Placan"));
    assert_eq!(issued.invoice_value, Some(dec("64.55")));
    assert_eq!(issued.paid_value, Some(dec("64.55")));
    assert_ne!(issued.row_version, draft.row_version);

    // Issuing again is a business error with a readable message.
    let err = client
        .issued_invoice_action(id, InvoiceAction::Issue, None)
        .await
        .unwrap_err();
    assert_eq!(err.disposition(), Disposition::Permanent);
    let messages = err.messages();
    assert_eq!(
        messages[0].message,
        "Izstavite lahko le izdane račune/predračune v osnutku."
    );
    assert_eq!(messages[0].property.as_deref(), Some("BusinessLogic"));

    // A second invoice gets the next number.
    let id2 = client.create_issued_invoice(&invoice).await.unwrap();
    client
        .issued_invoice_action(id2, InvoiceAction::Issue, None)
        .await
        .unwrap();
    assert_eq!(
        client.get_issued_invoice(id2).await.unwrap().invoice_number,
        Some(2)
    );
    env.cleanup().await;
}

#[tokio::test]
async fn validation_errors_come_back_readable() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let client = env.tenant(&env.instance());
    let err = client
        .create_customer(&Customer {
            code: Some("C-EMPTY".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.disposition(), Disposition::Permanent);
    let text = err.to_string();
    assert!(text.contains("Naziv je obvezen podatek."), "{text}");
    assert!(!text.contains('<'), "{text}");
    assert!(err
        .messages()
        .iter()
        .any(|m| m.property.as_deref() == Some("Country")));
    env.cleanup().await;
}

#[tokio::test]
async fn a_warm_lookup_makes_no_call() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let today = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
    let lookups = |client: TenantClient| async move {
        client.country_by_code("SI").await.unwrap();
        client.currency_by_code("EUR").await.unwrap();
        // The VAT-rate list of the date, as the booking looks rates up.
        client.vat_rates(today, None).await.unwrap();
        client.item_id_by_code("ART-001").await.unwrap().unwrap();
        client.payment_methods().await.unwrap();
        client.document_numberings().await.unwrap();
        client.report_templates().await.unwrap();
        client.employees().await.unwrap();
    };
    lookups(env.tenant(&env.instance())).await;
    let cold = env.sandbox.counters().api_calls;
    assert_eq!(cold, 8);
    // Another instance (empty process memory) is warm through Redis.
    lookups(env.tenant(&env.instance())).await;
    assert_eq!(env.sandbox.counters().api_calls, cold);
    // A missing item is not cached and answers None.
    let client = env.tenant(&env.instance());
    assert_eq!(client.item_id_by_code("NOPE/1+2").await.unwrap(), None);
    assert_eq!(env.sandbox.counters().kind("get items/code()"), 2);
    env.cleanup().await;
}

#[tokio::test]
async fn update_customer_survives_a_concurrent_change() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let client = env.tenant(&env.instance());
    let invoice = sample_invoice(&client).await;
    let id = invoice.customer.unwrap().id.unwrap();
    env.sandbox
        .inject(Fault::new("/customers/", FaultAction::ConcurrencyConflict).method("PUT"));
    let wrote = client
        .update_customer(id, |c| {
            c.city = Some("Maribor".into());
            true
        })
        .await
        .unwrap();
    assert!(wrote);
    let c = client.get_customer(id).await.unwrap();
    assert_eq!(c.city.as_deref(), Some("Maribor"));
    assert_eq!(c.name.as_deref(), Some("Janez Kupec"));
    let counters = env.sandbox.counters();
    assert_eq!(counters.kind("put customers/{id}"), 2);
    // Read, conflicting PUT, re-read, PUT, and the final check.
    assert_eq!(counters.kind("get customers/{id}"), 3);
    // Nothing to change: one read, no write.
    env.sandbox.reset_counters();
    let wrote = client.update_customer(id, |_| false).await.unwrap();
    assert!(!wrote);
    let counters = env.sandbox.counters();
    assert_eq!(
        (
            counters.kind("get customers/{id}"),
            counters.kind("put customers/{id}")
        ),
        (1, 0)
    );
    env.cleanup().await;
}

#[tokio::test]
async fn transient_failures_are_retryable() {
    let env = Env::new(SandboxSettings::default(), |s| s.request_timeout_ms = 500).await;
    let client = env.tenant(&env.instance());
    client.my_organisations().await.unwrap();
    // A read fails only when every try within the attempt fails (1 + call_retries).
    env.sandbox
        .inject(Fault::new("currentuser", FaultAction::Status(503)).times(3));
    let err = client.my_organisations().await.unwrap_err();
    assert!(
        matches!(err.disposition(), Disposition::Unavailable { .. }),
        "{err:?}"
    );
    env.sandbox
        .inject(Fault::new("currentuser", FaultAction::DropConnection).times(3));
    let err = client.my_organisations().await.unwrap_err();
    assert!(matches!(err, MinimaxError::Transient { .. }), "{err:?}");
    env.sandbox
        .inject(Fault::new("currentuser", FaultAction::Delay(Duration::from_secs(2))).times(3));
    let err = client.my_organisations().await.unwrap_err();
    assert!(matches!(err, MinimaxError::Transient { .. }), "{err:?}");
    // A create whose answer is lost still happened: the client finds it by its code
    // instead of creating a second one.
    let org = env.sandbox.settings().organisation_id;
    let before = env.sandbox.customers(org).len();
    env.sandbox
        .inject(Fault::new("customers", FaultAction::StatusAfterHandling(500)).method("POST"));
    let created = client
        .create_customer(&Customer {
            code: Some("C-LOST".into()),
            name: Some("Lost Reply".into()),
            country: Some(Fk::id(192)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(env.sandbox.customers(org).len(), before + 1);
    let found = client.customer_by_code("C-LOST").await.unwrap().unwrap();
    assert_eq!(found.customer_id, Some(created));
    // Secrets never appear in Debug output.
    let creds = env.creds("x");
    let debug = format!("{creds:?}");
    assert!(!debug.contains(creds.login.password.expose_secret()));
    env.cleanup().await;
}

#[tokio::test]
async fn received_orders_and_credit_notes() {
    use minimax_connector::minimax::models::{Order, OrderRow};
    use minimax_connector::minimax::OrderAction;
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let client = env.tenant(&env.instance());
    let invoice = sample_invoice(&client).await;
    let reference = format!("WEB-{}", uuid::Uuid::new_v4().simple());
    let order_id = client
        .create_order(&Order {
            received_issued: Some("P".into()),
            date: invoice.date_issued,
            customer: invoice.customer.clone(),
            currency: invoice.currency.clone(),
            reference: Some(reference.clone()),
            order_rows: vec![OrderRow {
                item: invoice.issued_invoice_rows[0].item.clone(),
                quantity: Some(dec("2")),
                price: Some(dec("20")),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let found = client.orders_by_reference(&reference).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].order_id, Some(order_id));
    assert!(client
        .orders_by_reference("WEB-none")
        .await
        .unwrap()
        .is_empty());
    client
        .order_action(order_id, OrderAction::Invalidate, None)
        .await
        .unwrap();
    assert_eq!(
        client.get_order(order_id).await.unwrap().status.as_deref(),
        Some("R")
    );

    let id = client.create_issued_invoice(&invoice).await.unwrap();
    client
        .issued_invoice_action(id, InvoiceAction::Issue, None)
        .await
        .unwrap();
    let credit = client
        .issued_invoice_action(id, InvoiceAction::CopyToCreditNote, None)
        .await
        .unwrap();
    let note: IssuedInvoice = serde_json::from_value(credit.data.unwrap()).unwrap();
    assert_eq!(note.status.as_deref(), Some("O"));
    assert_eq!(note.invoice_value, Some(dec("-64.55")));
    env.cleanup().await;
}

#[tokio::test]
async fn the_cached_token_is_sealed_in_redis() {
    let env = Env::new(SandboxSettings::default(), |_| {}).await;
    let client = env.tenant(&env.instance());
    client.my_organisations().await.unwrap();
    let issued = env.sandbox.issued_tokens();
    assert_eq!(issued.len(), 1);
    let mut conn = redis_pool().get().await.unwrap();
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
