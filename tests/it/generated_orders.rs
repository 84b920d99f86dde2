//! Generated orders, built the way WooCommerce and Shopify compute them
//! (`shop_arithmetic`), must book exactly: the document's total and VAT per rate, as the
//! sandbox's own arithmetic computes them (`sandbox::document_totals`, written from
//! Minimax's rules independently of `mapping/`), equal the shop's to the cent, and no
//! order is refused.
//!
//! Thousands of cases go platform JSON → the platform parser → mapping → the sandbox's
//! arithmetic in process; a smaller sample is booked through the whole service (signed
//! webhooks, a real Redis, the sandbox over HTTP) into SI, HR and RS organisations.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use minimax_connector::mapping::{
    credit_note_item_needs, credit_note_plan, invoice_plan, item_needs, BookingSettings, OrgData,
    VatRateRef,
};
use minimax_connector::minimax::Country;
use minimax_connector::queue::JobState;
use minimax_connector::sandbox::{document_totals, Sandbox, SandboxSettings};
use minimax_connector::webshop::{Platform, ShopEvent};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers;
use crate::helpers::tid;
use crate::shop_arithmetic::{shopify_order, shopify_spec, woo_order, woo_spec, ShopFigures, Vat};

/// Cases per platform in process (each Shopify case with a refund checks two documents);
/// `GENERATED_ORDER_CASES` runs more (a longer search by hand).
const IN_PROCESS_CASES: u32 = 2_500;

fn in_process_cases() -> u32 {
    std::env::var("GENERATED_ORDER_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(IN_PROCESS_CASES)
}
/// Orders per platform booked through the whole service.
const END_TO_END_CASES: usize = 80;

fn org(vat: Vat) -> OrgData {
    let codes = ["S", "Z", "P"];
    let mut vat_rates: Vec<VatRateRef> = vat
        .rates()
        .iter()
        .enumerate()
        .map(|(i, _)| VatRateRef {
            id: i as i64 + 1,
            code: codes[i].into(),
            percent: vat.rate(i),
        })
        .collect();
    vat_rates.push(VatRateRef {
        id: 9,
        code: "O".into(),
        percent: Decimal::ZERO,
    });
    OrgData {
        home_country: vat.code().into(),
        vat_rates,
        currency_id: 7,
        country_ids: [("SI", 192), ("HR", 95), ("RS", 3)]
            .into_iter()
            .map(|(c, id)| (c.to_owned(), id))
            .collect(),
        ..OrgData::default()
    }
}

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 14).unwrap()
}

fn ids(needs: &[minimax_connector::mapping::ItemNeed]) -> BTreeMap<String, i64> {
    needs
        .iter()
        .enumerate()
        .map(|(i, n)| (n.code.clone(), 1000 + i as i64))
        .collect()
}

/// The sandbox's totals of a document body, with the percent of each rate id taken
/// from the document's own rows (`VATPercent`) or the organisation.
fn compare(
    doc: &Value,
    percent_of: &dyn Fn(i64) -> Option<Decimal>,
    want: &ShopFigures,
) -> Result<(), String> {
    let t = document_totals(doc, percent_of);
    let mut vat = t.vat_by_percent.clone();
    vat.retain(|_, v| !v.is_zero());
    if t.gross == want.total && vat == want.vat {
        Ok(())
    } else {
        Err(format!(
            "document total {} VAT {:?}, shop total {} VAT {:?}",
            t.gross, vat, want.total, want.vat
        ))
    }
}

/// Outcome counts of one run.
#[derive(Debug, Default)]
struct Tally {
    cases: u32,
    documents: u32,
    exact: u32,
    refused: u32,
    corrected: u32,
}

/// One generated order (and refund) as the platform delivers it, with its figures.
struct Case<'a> {
    platform: Platform,
    topic: &'a str,
    body: &'a Value,
    want: &'a ShopFigures,
    refund: Option<&'a (Value, ShopFigures)>,
    vat: Vat,
}

fn book_in_process(case: &Case<'_>, tally: &mut Tally) -> Result<(), String> {
    let Case {
        platform,
        topic,
        body,
        want,
        vat,
        ..
    } = *case;
    let org = org(vat);
    let settings = BookingSettings::default();
    let percent = |id: i64| org.vat_rates.iter().find(|r| r.id == id).map(|r| r.percent);
    let bytes = serde_json::to_vec(body).unwrap();
    let ShopEvent::OrderPaid(order) = crate::shop::event_for(platform, topic, &bytes).event else {
        return Err("not an order_paid event".into());
    };
    tally.documents += 1;
    let needs = item_needs(&order, &settings, &org).map_err(|e| e.to_string())?;
    let plan = match invoice_plan(&order, &settings, &org, 1, &ids(&needs), date()) {
        Ok(p) => p,
        Err(e) => {
            tally.refused += 1;
            return Err(format!("refused: {e}"));
        }
    };
    // The shop's exchange rate goes on the invoice when the customer paid in a currency
    // other than the shop's (domestic) one.
    // (An order of 0.00 has no rate to take.)
    if !order.total.is_zero()
        && plan.invoice.exchange_rate.is_some() != order.shop_currency.is_some()
    {
        return Err(format!(
            "exchange rate {:?} for shop currency {:?}",
            plan.invoice.exchange_rate, order.shop_currency
        ));
    }
    let rows = &plan.invoice.issued_invoice_rows;
    if rows
        .iter()
        .any(|r| r.item_code.as_deref() == Some("ROUNDING"))
    {
        tally.corrected += 1;
    }
    compare(
        &serde_json::to_value(&plan.invoice).unwrap(),
        &percent,
        want,
    )?;
    tally.exact += 1;
    if let Some((refund, want)) = case.refund {
        let bytes = serde_json::to_vec(refund).unwrap();
        let ShopEvent::OrderRefunded { refund, .. } =
            crate::shop::event_for(platform, "refunds/create", &bytes).event
        else {
            return Err("not a refund event".into());
        };
        tally.documents += 1;
        let needs = credit_note_item_needs(&refund, Some(&order), &settings, &org)
            .map_err(|e| e.to_string())?;
        let plan = credit_note_plan(
            &refund,
            Some(&order),
            &settings,
            &org,
            1,
            &ids(&needs),
            date(),
        )
        .map_err(|e| {
            tally.refused += 1;
            format!("credit note refused: {e}")
        })?;
        compare(
            &serde_json::to_value(&plan.invoice).unwrap(),
            &percent,
            want,
        )?;
        tally.exact += 1;
    }
    Ok(())
}

fn run<S: Strategy>(
    strategy: S,
    case: impl FnMut(S::Value, &mut Tally) -> Result<(), String>,
) -> Tally
where
    S::Value: std::fmt::Debug,
{
    let tally = RefCell::new(Tally::default());
    let case = RefCell::new(case);
    let mut runner = TestRunner::new(Config {
        cases: in_process_cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |spec| {
        let mut t = tally.borrow_mut();
        t.cases += 1;
        (case.borrow_mut())(spec, &mut t).map_err(TestCaseError::fail)
    });
    let tally = tally.into_inner();
    if let Err(e) = result {
        panic!("{e}\n{tally:?}");
    }
    tally
}

#[test]
fn generated_woocommerce_orders_book_exactly() {
    let id = std::cell::Cell::new(10_000);
    let tally = run(woo_spec(), |spec, tally| {
        id.set(id.get() + 1);
        let (body, want) = woo_order(&spec, id.get());
        let case = Case {
            platform: Platform::WooCommerce,
            topic: "order.updated",
            body: &body,
            want: &want,
            refund: None,
            vat: spec.vat,
        };
        book_in_process(&case, tally)
    });
    println!("generated WooCommerce orders: {tally:?}");
    assert_eq!(tally.exact, tally.documents);
    assert_eq!(tally.refused, 0);
    assert!(tally.cases >= in_process_cases());
}

#[test]
fn generated_shopify_orders_and_refunds_book_exactly() {
    let id = std::cell::Cell::new(20_000);
    let tally = run(shopify_spec(), |spec, tally| {
        id.set(id.get() + 1);
        let (body, want, refund) = shopify_order(&spec, id.get());
        let case = Case {
            platform: Platform::Shopify,
            topic: "orders/paid",
            body: &body,
            want: &want,
            refund: refund.as_ref(),
            vat: spec.vat,
        };
        book_in_process(&case, tally)
    });
    println!("generated Shopify orders and refunds: {tally:?}");
    assert_eq!(tally.exact, tally.documents);
    assert_eq!(tally.refused, 0);
    assert!(
        tally.documents > IN_PROCESS_CASES,
        "some cases have refunds"
    );
}

/// A sample of a strategy's values (deterministic per run of the test).
fn sample<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

struct Org {
    tenant: String,
    org: i64,
}

#[tokio::test]
async fn generated_orders_book_exactly_through_the_service() {
    let sb = Sandbox::spawn(SandboxSettings::default()).await.unwrap();
    let sbs = sb.state.settings().clone();
    let password = secrecy::ExposeSecret::expose_secret(&sbs.password).to_owned();
    let mut settings =
        helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix("generated"));
    settings.minimax.rate_per_sec = 5_000.0;
    settings.minimax.burst = 5_000;
    settings.queue.backoff_base_ms = 50;
    settings.queue.backoff_max_ms = 400;
    let mut orgs = BTreeMap::new();
    let mut org_ids = vec![sbs.organisation_id];
    for (vat, country, id) in [
        (Vat::Si, Country::SI, sbs.organisation_id),
        (Vat::Hr, Country::HR, 310_001),
        (Vat::Rs, Country::RS, 310_002),
    ] {
        if id != sbs.organisation_id {
            sb.state
                .add_organisation(id, &format!("Gen {country:?}"), country);
            org_ids.push(id);
        }
        let tenant = format!("gen-{}", vat.code().to_lowercase());
        orgs.insert(vat.code(), Org { tenant, org: id });
    }
    sb.state.add_user(&sbs.username, &password, &org_ids);
    for (code, o) in &orgs {
        let country = match *code {
            "HR" => Country::HR,
            "RS" => Country::RS,
            _ => Country::SI,
        };
        helpers::put_tenant(
            &settings,
            &o.tenant,
            json!({
                "country": code,
                "organisation_id": o.org,
                "minimax": {
                    "username": sbs.username,
                    "password": password,
                    "client_id": sbs.client_id,
                    "client_secret": secrecy::ExposeSecret::expose_secret(&sbs.client_secret),
                    "api_base": sb.api_base(country),
                    "token_url": sb.token_url(country),
                },
                "webhook_secrets": {"woocommerce": helpers::SECRET, "shopify": helpers::SECRET},
                "settings": {}
            }),
        )
        .await;
    }
    let app = helpers::spawn_app(settings.clone()).await;
    let client = reqwest::Client::new();
    let post = |platform: &'static str,
                tenant: String,
                headers: reqwest::header::HeaderMap,
                body: Vec<u8>| {
        let client = client.clone();
        let url = app.url(&format!("/webhooks/{platform}/{tenant}"));
        async move {
            let res = client
                .post(url)
                .headers(headers)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
            let v: Value = res.json().await.unwrap();
            v["job_id"].as_str().unwrap().to_owned()
        }
    };

    // (tenant, job, platform, figures, refund to send after the order is booked)
    let mut jobs = Vec::new();
    for (i, spec) in sample(woo_spec(), END_TO_END_CASES).into_iter().enumerate() {
        let (body, want) = woo_order(&spec, 50_000 + i as u64);
        let bytes = serde_json::to_vec(&body).unwrap();
        let tenant = orgs[spec.vat.code()].tenant.clone();
        let mut h = helpers::reqwest_headers(&helpers::woo_headers(
            "order.updated",
            &bytes,
            helpers::SECRET,
        ));
        h.insert(
            "x-wc-webhook-source",
            "https://gen.example.com/".parse().unwrap(),
        );
        let job = post("woocommerce", tenant.clone(), h, bytes).await;
        jobs.push((spec.vat, job, want, None));
    }
    for (i, spec) in sample(shopify_spec(), END_TO_END_CASES)
        .into_iter()
        .enumerate()
    {
        let (body, want, refund) = shopify_order(&spec, 60_000 + i as u64);
        let bytes = serde_json::to_vec(&body).unwrap();
        let tenant = orgs[spec.vat.code()].tenant.clone();
        let mut h = helpers::reqwest_headers(&helpers::shopify_headers(
            "orders/paid",
            &bytes,
            helpers::SECRET,
        ));
        h.insert(
            "x-shopify-event-id",
            format!("gen-order-{i}").parse().unwrap(),
        );
        let job = post("shopify", tenant, h, bytes).await;
        jobs.push((spec.vat, job, want, refund.map(|r| (i, r))));
    }

    let mut exact = 0;
    let mut documents = 0;
    let mut refunds = Vec::new();
    for (vat, job, want, refund) in &jobs {
        let o = &orgs[vat.code()];
        let rec = settle(&app, &o.tenant, job).await;
        documents += 1;
        assert_eq!(rec.state, JobState::Done, "refused: {:?}", rec.last_error);
        let id = rec
            .result
            .as_ref()
            .and_then(|r| r["minimax_id"].as_i64())
            .unwrap();
        let inv = sb.state.invoice(o.org, id).unwrap();
        check_booked(&inv, want);
        exact += 1;
        if let Some((i, (body, want))) = refund {
            let bytes = serde_json::to_vec(body).unwrap();
            let mut h = helpers::reqwest_headers(&helpers::shopify_headers(
                "refunds/create",
                &bytes,
                helpers::SECRET,
            ));
            h.insert(
                "x-shopify-event-id",
                format!("gen-refund-{i}").parse().unwrap(),
            );
            let job = post("shopify", o.tenant.clone(), h, bytes).await;
            refunds.push((*vat, job, want.clone()));
        }
    }
    for (vat, job, want) in &refunds {
        let o = &orgs[vat.code()];
        let rec = settle(&app, &o.tenant, job).await;
        documents += 1;
        assert_eq!(
            rec.state,
            JobState::Done,
            "refund refused: {:?}",
            rec.last_error
        );
        let id = rec
            .result
            .as_ref()
            .and_then(|r| r["minimax_id"].as_i64())
            .unwrap();
        check_booked(&sb.state.invoice(o.org, id).unwrap(), want);
        exact += 1;
    }
    println!(
        "generated orders through the service: {documents} documents, {exact} exact, 0 refused"
    );
    assert_eq!(exact, documents);
    assert!(documents >= 2 * END_TO_END_CASES);
}

/// The booked document, as the sandbox stored it: its `InvoiceValue` and the VAT of its
/// rows (each row's rate percent as the sandbox set it) equal the shop's figures.
fn check_booked(inv: &Value, want: &ShopFigures) {
    let percents: BTreeMap<i64, Decimal> = inv["IssuedInvoiceRows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["VatRate"]["ID"].as_i64().unwrap(),
                crate::shop::dec(&r["VATPercent"]),
            )
        })
        .collect();
    compare(inv, &|id| percents.get(&id).copied(), want).unwrap_or_else(|e| panic!("{e}: {inv}"));
    assert_eq!(crate::shop::dec(&inv["InvoiceValue"]), want.total, "{inv}");
}

async fn settle(
    app: &helpers::TestApp,
    tenant: &str,
    job: &str,
) -> minimax_connector::queue::JobRecord {
    helpers::eventually(Duration::from_secs(60), || async {
        app.queue
            .get(&tid(tenant), job)
            .await
            .unwrap()
            .filter(|r| matches!(r.state, JobState::Done | JobState::Dead))
    })
    .await
    .unwrap_or_else(|| panic!("job {job} did not finish"))
}

/// Where the mapping and the sandbox must agree: the mapping reconciles documents with
/// its own reading of Minimax's rules (`mapping::compute_totals`), the sandbox books
/// them with its own (`sandbox::document_totals`). On any rows — both price bases,
/// discounts as percent or amount, negative (credit-note) quantities, 2- and 4-decimal
/// prices — the two give the same totals and VAT per rate.
#[test]
fn mapping_and_sandbox_agree_on_the_document_arithmetic() {
    use minimax_connector::mapping::compute_totals;
    use minimax_connector::minimax::models::{Fk, IssuedInvoice, IssuedInvoiceRow};
    let row = (
        1i64..2_000_000,
        prop_oneof![Just(2u32), Just(4u32)],
        -5i64..6,
        0usize..3,
        prop_oneof![
            Just(None),
            (1i64..5_000).prop_map(|d| Some(Decimal::new(d, 2)))
        ],
        prop_oneof![Just(None), (1i64..40).prop_map(|d| Some(Decimal::from(d)))],
    );
    let strategy = (any::<bool>(), prop::collection::vec(row, 1..6));
    let vat = Vat::Si;
    let org = org(vat);
    let mut runner = TestRunner::new(Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(gross, rows)| {
            let rows: Vec<IssuedInvoiceRow> = rows
                .into_iter()
                .filter(|r| r.2 != 0)
                .map(|(price, dp, qty, class, discount, pct)| {
                    let price = Decimal::new(price, dp);
                    IssuedInvoiceRow {
                        price: Some(price),
                        price_with_vat: Some(price),
                        quantity: Some(Decimal::from(qty)),
                        vat_rate: Some(Fk::id(class as i64 + 1)),
                        discount: discount.filter(|_| qty > 0),
                        discount_percent: pct,
                        ..IssuedInvoiceRow::default()
                    }
                })
                .collect();
            let inv = IssuedInvoice {
                prices_on_invoice: Some(if gross { "D" } else { "N" }.into()),
                issued_invoice_rows: rows,
                ..IssuedInvoice::default()
            };
            let mapping = compute_totals(&inv, &org.vat_rates);
            let percent = |id: i64| org.vat_rates.iter().find(|r| r.id == id).map(|r| r.percent);
            let sandbox = document_totals(&serde_json::to_value(&inv).unwrap(), percent);
            prop_assert_eq!(mapping.gross, sandbox.gross);
            prop_assert_eq!(mapping.vat, sandbox.vat);
            let mut m = mapping.vat_by_percent.clone();
            m.retain(|_, v| !v.is_zero());
            let mut s = sandbox.vat_by_percent.clone();
            s.retain(|_, v| !v.is_zero());
            prop_assert_eq!(m, s);
            Ok(())
        })
        .unwrap();
}
