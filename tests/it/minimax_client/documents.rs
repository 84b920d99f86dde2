//! Records and documents: creates, stale RowVersions, validation errors, cached lookups,
//! concurrent updates, transient failures, received orders and credit notes.

use super::*;

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
