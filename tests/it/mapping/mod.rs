//! Mapping tests: every WooCommerce and Shopify fixture order against the invoice it
//! becomes (total and VAT per rate to the cent, or a refusal naming both figures where
//! the fixture itself does not add up), and table cases for the concepts the mapping
//! handles (tax-inclusive prices, several rates, coupons, shipping, fees, customers,
//! items, payment methods, refunds, decisions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use helpers::*;
use minimax_connector::mapping::{
    compute_totals, credit_note_item_needs, credit_note_plan, customer_event_gap,
    customer_event_plan, customer_needs_update, customer_plan, decide, invoice_plan,
    is_full_refund, item_needs, order_plan, BookingSettings, BookingTrigger, CancelAction,
    CustomerStrategy, Decision, DocumentKind, InvoicePlan, ItemStrategy, MappingError, OrgData,
    PaymentMethodRef, VatRateRef,
};
use minimax_connector::minimax::models::IssuedInvoice;
use minimax_connector::webshop::{woocommerce, Order, ParseSettings, Platform, Refund, ShopEvent};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;

mod customers_and_items;
mod decide;
mod fixtures;
mod orders;
mod refunds;

const WOO: &str = "woocommerce";
const SHOP: &str = "shopify";

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 14).unwrap()
}

fn rate(id: i64, code: &str, percent: Decimal) -> VatRateRef {
    VatRateRef {
        id,
        code: code.into(),
        percent,
    }
}

/// A Slovenian organisation: S 22, N 9.5, P 5, O 0.
fn si_org() -> OrgData {
    OrgData {
        home_country: "SI".into(),
        vat_rates: vec![
            rate(1, "S", dec!(22)),
            rate(2, "N", dec!(9.5)),
            rate(3, "P", dec!(5)),
            rate(4, "O", dec!(0)),
        ],
        currency_id: 7,
        country_ids: [
            ("SI", 192),
            ("US", 230),
            ("CA", 40),
            ("HR", 95),
            ("DE", 80),
            ("BR", 31),
        ]
        .into_iter()
        .map(|(c, id)| (c.to_owned(), id))
        .collect(),
        payment_methods: vec![
            PaymentMethodRef {
                id: 11,
                name: "Kartica".into(),
                code: None,
            },
            PaymentMethodRef {
                id: 12,
                name: "Bančno nakazilo".into(),
                code: None,
            },
            PaymentMethodRef {
                id: 13,
                name: "STRIPE".into(),
                code: None,
            },
        ],
        document_numbering_id: Some(52130),
        invoice_report_template_id: Some(301),
        credit_note_report_template_id: Some(302),
        employee_id: None,
        analytic_id: None,
    }
}

/// The SI organisation plus the US/CA sales-tax rates the fixtures use, so that the
/// fixtures' arithmetic is what is tested (a Slovenian org would refuse them with
/// UnmappedVatRate, see `fixture_foreign_rate_is_unmapped_for_a_si_org`).
fn fixture_org() -> OrgData {
    let mut org = si_org();
    for (i, p) in [dec!(7.5), dec!(6), dec!(4.5), dec!(4), dec!(2)]
        .into_iter()
        .enumerate()
    {
        org.vat_rates
            .push(rate(100 + i as i64, &format!("US{i}"), p));
    }
    org
}

fn settings() -> BookingSettings {
    let mut s = BookingSettings::default();
    for (gw, name) in [
        ("bacs", "Bančno nakazilo"),
        ("woocommerce_payments", "Kartica"),
        ("bogus", "Kartica"),
        ("authorize_net", "Kartica"),
        ("card", "Kartica"),
    ] {
        s.payment_methods.insert(gw.into(), name.into());
    }
    s
}

/// Item ids for every item the order needs (as if looked up or created).
fn ids_for(needs: &[minimax_connector::mapping::ItemNeed]) -> BTreeMap<String, i64> {
    needs
        .iter()
        .enumerate()
        .map(|(i, n)| (n.code.clone(), 1000 + i as i64))
        .collect()
}

fn plan(
    order: &Order,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<InvoicePlan, MappingError> {
    let needs = item_needs(order, settings, org)?;
    invoice_plan(order, settings, org, 555, &ids_for(&needs), date())
}

fn event(platform: Platform, dir: &str, name: &str, topic: &str) -> ShopEvent {
    event_for(platform, topic, &fixture_body(dir, name)).event
}

fn order_of(ev: &ShopEvent) -> Order {
    ev.order().cloned().expect("event has an order")
}

/// The invoice's VAT per percent, as Minimax computes it.
fn vat(inv: &IssuedInvoice, org: &OrgData) -> BTreeMap<Decimal, Decimal> {
    compute_totals(inv, &org.vat_rates)
        .vat_by_percent
        .into_iter()
        .filter(|(_, v)| !v.is_zero())
        .collect()
}

/// The shop's tax lines by percent (percents as the test knows them).
fn assert_books_to_the_cent(order: &Order, org: &OrgData, expect_vat: &[(Decimal, Decimal)]) {
    assert_books_to_the_cent_with(order, &settings(), org, expect_vat)
}

fn assert_books_to_the_cent_with(
    order: &Order,
    settings: &BookingSettings,
    org: &OrgData,
    expect_vat: &[(Decimal, Decimal)],
) {
    let p =
        plan(order, settings, org).unwrap_or_else(|e| panic!("order {}: {e}", order.shop_order_id));
    let totals = compute_totals(&p.invoice, &org.vat_rates);
    assert_eq!(totals.gross, order.total, "order {}", order.shop_order_id);
    assert_eq!(p.expected, totals);
    let want: BTreeMap<Decimal, Decimal> = expect_vat
        .iter()
        .map(|(p, v)| (p.normalize(), *v))
        .filter(|(_, v)| !v.is_zero())
        .collect();
    assert_eq!(vat(&p.invoice, org), want, "order {}", order.shop_order_id);
    let tax_lines: Decimal = order.tax_lines.iter().map(|t| t.amount).sum();
    assert_eq!(totals.vat, tax_lines, "VAT equals the shop's tax lines");
}

fn assert_mismatch(result: Result<InvoicePlan, MappingError>, shop: Decimal, doc: Decimal) {
    match result {
        Err(e @ MappingError::TotalMismatch { .. }) => {
            let MappingError::TotalMismatch {
                shop_total,
                document_total,
                ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!((*shop_total, *document_total), (shop, doc), "{e}");
            let msg = e.to_string();
            assert!(msg.contains(&shop.to_string()), "{msg}");
            assert!(msg.contains(&doc.to_string()), "{msg}");
        }
        other => panic!("expected TotalMismatch, got {other:?}"),
    }
}

/// A canonical order from JSON (money as strings), with defaults for the boring parts.
fn order(extra: serde_json::Value) -> Order {
    let mut base = json!({
        "shop_order_id": "1001",
        "number": "1001",
        "currency": "EUR",
        "status": "processing",
        "customer": {"shop_customer_id": "42", "email": "Ana@Example.com",
                      "first_name": "Ana", "last_name": "Novak"},
        "billing": {"first_name": "Ana", "last_name": "Novak", "street": ["Slovenska 1"],
                     "city": "Ljubljana", "postcode": "1000", "country_code": "SI",
                     "email": "ana@example.com", "phone": "+386 1 000 000"},
        "payment_method": {"id": "card", "title": "Card"},
        "subtotal": "0", "discount_total": "0", "shipping_total": "0",
        "total_tax": "0", "total": "0"
    });
    let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) else {
        unreachable!()
    };
    for (k, v) in e {
        b.insert(k.clone(), v.clone());
    }
    serde_json::from_value(base).unwrap()
}

fn line(
    name: &str,
    sku: &str,
    qty: &str,
    subtotal: &str,
    total: &str,
    tax: &str,
    pct: &str,
) -> serde_json::Value {
    json!({"name": name, "sku": sku, "quantity": qty, "subtotal": subtotal,
           "discount": "0", "total": total, "total_tax": tax, "tax_rate_percent": pct})
}

fn tax_line(pct: &str, amount: &str) -> serde_json::Value {
    json!({"label": format!("DDV {pct} %"), "rate_percent": pct, "amount": amount})
}

fn refund(amount: &str, lines: serde_json::Value) -> Refund {
    serde_json::from_value(json!({
        "shop_refund_id": "77", "shop_order_id": "1001", "amount": amount, "lines": lines
    }))
    .unwrap()
}

fn two_rate_order() -> Order {
    order(json!({
        "lines": [json!({"shop_line_id": "1", "name": "Mug", "sku": "MUG", "quantity": "2",
                          "subtotal": "20.00", "discount": "0", "total": "20.00",
                          "total_tax": "4.40", "tax_rate_percent": "22"}),
                  json!({"shop_line_id": "2", "name": "Tea", "sku": "TEA", "quantity": "1",
                          "subtotal": "10.00", "discount": "0", "total": "10.00",
                          "total_tax": "0.95", "tax_rate_percent": "9.5"})],
        "tax_lines": [tax_line("22", "4.40"), tax_line("9.5", "0.95")],
        "subtotal": "30.00", "total_tax": "5.35", "total": "35.35"
    }))
}

fn credit(r: &Refund, o: Option<&Order>) -> Result<InvoicePlan, MappingError> {
    let needs = credit_note_item_needs(r, o, &settings(), &si_org())?;
    credit_note_plan(r, o, &settings(), &si_org(), 555, &ids_for(&needs), date())
}
