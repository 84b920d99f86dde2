//! The documents an order becomes: the issued invoice (draft), the received order, the
//! credit note for a refund, and the items their rows reference.
//!
//! Guarantees: [`invoice_plan`] reconciles the invoice it returns against the shop (total
//! and VAT per rate, with correction rows where the shop rounded otherwise) and fails
//! with [`MappingError::TotalMismatch`] instead of returning a wrong document;
//! [`credit_note_plan`] returns a credit note that comes to minus the refunded amount and
//! minus the refunded VAT per rate, or fails. One row per shop line, its values exact to
//! the cent (see `amounts::price_row`). The received order (not reconciled: order rows
//! carry no VAT) uses the same lines on a net basis.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::prelude::*;

use crate::minimax::models::{
    Fk, IssuedInvoice, IssuedInvoicePaymentMethod, IssuedInvoiceRow, Order as MmOrder, OrderRow,
};
use crate::webshop::Order;

use super::amounts::{
    compute_totals, corrections, pct_key, price_row, reconcile, round2, row_vat_gross,
    shop_vat_by_percent, DocTotals, RowDiscount, Target,
};
use super::customer::{address_name, country, street};
use super::lines::{
    invoice_basis, is_paid, payment_method, plan_lines, resolve_rate, truncate, Basis, LineKind,
    PlannedLine, UNIT,
};
use super::settings::BookingSettings;
use super::{MappingError, OrgData};

/// An item the rows reference, with what is needed to create it if missing.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemNeed {
    pub code: String,
    pub name: String,
    /// `"B"` goods, `"S"` service.
    pub item_type: String,
    pub vat_rate_id: i64,
    /// Unit price on the order's basis (net, or gross when the shop's amounts include tax).
    pub price: Decimal,
    /// False under `BySkuRequireExisting`: a missing item fails the job naming the SKU.
    pub create_if_missing: bool,
}

/// An issued invoice to create, and the totals it must come to.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoicePlan {
    pub invoice: IssuedInvoice,
    pub expected: DocTotals,
}

pub(super) fn needs_of(lines: &[PlannedLine]) -> Vec<ItemNeed> {
    let mut out: Vec<ItemNeed> = Vec::new();
    for l in lines {
        if out.iter().any(|n| n.code == l.item_code) {
            continue;
        }
        let q = if l.quantity.is_zero() {
            Decimal::ONE
        } else {
            l.quantity.abs()
        };
        out.push(ItemNeed {
            code: l.item_code.clone(),
            name: l.item_name.clone(),
            item_type: l.item_type.to_owned(),
            vat_rate_id: l.rate.id,
            price: round2(l.subtotal.abs() / q),
            create_if_missing: l.create_if_missing,
        });
    }
    out
}

/// Items the invoice (or received order) rows will reference: one per distinct code,
/// in row order.
pub fn item_needs(
    order: &Order,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<Vec<ItemNeed>, MappingError> {
    // A document that will not reconcile fails in `invoice_plan` with the figures; its
    // items are still those of its lines.
    match invoice_lines(order, settings, org) {
        Ok(lines) => Ok(needs_of(&lines)),
        Err(MappingError::TotalMismatch { .. }) => Ok(needs_of(&plan_lines(
            order,
            settings,
            org,
            invoice_basis(order),
        )?)),
        Err(e) => Err(e),
    }
}

/// The invoice's lines: the shop's lines on the invoice's basis and the correction
/// lines that make it come to the shop's total and VAT per rate.
fn invoice_lines(
    order: &Order,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<Vec<PlannedLine>, MappingError> {
    let basis = invoice_basis(order);
    let lines = plan_lines(order, settings, org, basis)?;
    let target = Target {
        total: order.total,
        vat: shop_vat_by_percent(order),
    };
    let unit = rounding_unit(order.currency.as_str(), order_amounts(order));
    with_corrections(lines, basis, true, &target, unit, settings, org)
}

/// Currencies whose shops commonly price in whole units (0 price decimals).
const WHOLE_UNIT_CURRENCIES: [&str; 6] = ["RSD", "HUF", "JPY", "ISK", "KRW", "CLP"];

/// The shop's rounding unit: 1 for a whole-unit currency whose amounts are all whole
/// (a 0-decimal shop rounds each line's tax to whole units), else a cent.
pub(super) fn rounding_unit(currency: &str, mut amounts: impl Iterator<Item = Decimal>) -> Decimal {
    let whole = WHOLE_UNIT_CURRENCIES
        .iter()
        .any(|c| c.eq_ignore_ascii_case(currency.trim()));
    if whole && amounts.all(|a| a.fract().is_zero()) {
        Decimal::ONE
    } else {
        Decimal::new(1, 2)
    }
}

fn order_amounts(order: &Order) -> impl Iterator<Item = Decimal> + '_ {
    let lines = order.lines.iter().flat_map(|l| [l.total, l.total_tax]);
    let ship = order
        .shipping_lines
        .iter()
        .flat_map(|l| [l.total, l.total_tax]);
    let fees = order.fees.iter().flat_map(|l| [l.total, l.total_tax]);
    lines
        .chain(ship)
        .chain(fees)
        .chain([order.total, order.total_tax])
}

/// Adds the correction lines (docs/mapping.md, "Correction rows") that make `lines`
/// come to `target` as Minimax computes it, or fails naming the lines and figures when
/// the difference is more than rounding (one `unit` per line plus one, or
/// `settings.max_rounding_correction`).
pub(super) fn with_corrections(
    mut lines: Vec<PlannedLine>,
    basis: Basis,
    amount_discounts: bool,
    target: &Target,
    unit: Decimal,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<Vec<PlannedLine>, MappingError> {
    let gross = basis == Basis::Gross;
    let doc = totals_of(&lines, gross, amount_discounts, org);
    let mut rates: Vec<(super::VatRateRef, usize)> = Vec::new();
    for l in lines.iter().filter(|l| !l.total.is_zero()) {
        match rates.iter_mut().find(|(r, _)| r.id == l.rate.id) {
            Some((_, n)) => *n += 1,
            None => rates.push((l.rate.clone(), 1)),
        }
    }
    let tol = settings.total_tolerance;
    let within = |a: Decimal, b: Decimal| (round2(a) - round2(b)).abs() <= tol;
    let accepted = within(doc.gross, target.total)
        && target.vat.keys().chain(doc.vat_by_percent.keys()).all(|p| {
            let shop = target.vat.get(p).copied().unwrap_or_default();
            within(doc.vat_by_percent.get(p).copied().unwrap_or_default(), shop)
        });
    if accepted {
        // Equal, or within the tenant's tolerance: no correction rows.
        return Ok(lines);
    }
    let zero = resolve_rate(Decimal::ZERO, "rounding difference", settings, org).ok();
    // A shop's figures per line are each rounded to `unit` (its net and its tax, each
    // within half a unit), so a line's gross may be a unit off what was charged.
    let limit = |n: usize| {
        settings
            .max_rounding_correction
            .unwrap_or(unit * Decimal::from(n) + unit)
    };
    match corrections(&doc, target, gross, &rates, zero.as_ref(), &limit) {
        Ok(rows) => {
            for c in rows {
                let (vat, _) = row_vat_gross(c.value, c.rate.percent, gross);
                let name = if vat.is_zero() {
                    "Rounding difference".to_owned()
                } else {
                    format!("Rounding difference, VAT {} %", c.rate.percent.normalize())
                };
                lines.push(PlannedLine {
                    kind: LineKind::Correction,
                    shop_line_id: None,
                    name,
                    item_code: settings.correction_item_code.clone(),
                    item_name: "Rounding differences".into(),
                    item_type: "S",
                    create_if_missing: true,
                    rate: c.rate,
                    quantity: Decimal::ONE,
                    subtotal: c.value,
                    total: c.value,
                    tax: vat,
                });
            }
            Ok(lines)
        }
        Err(problems) => Err(MappingError::TotalMismatch {
            shop_total: round2(target.total),
            document_total: round2(doc.gross),
            details: format!(
                "{}{}; if the shop's figures are right, settings.max_rounding_correction                  allows larger rounding corrections (now {}), else check the shop's tax                  rates and settings.vat_rate_codes",
                problems.join("; "),
                culprits(&lines, gross, target, &doc),
                settings
                    .max_rounding_correction
                    .map_or_else(|| format!("automatic: {unit} per line + {unit}"), |m| m.to_string()),
            ),
        }),
    }
}

/// The lines of the rates whose VAT differs, with their figures: amount, the shop's
/// tax and Minimax's.
fn culprits(lines: &[PlannedLine], gross: bool, target: &Target, doc: &DocTotals) -> String {
    let mut out = Vec::new();
    for l in lines {
        let p = pct_key(l.rate.percent);
        let shop = target.vat.get(&p).copied().unwrap_or_default();
        let have = doc.vat_by_percent.get(&p).copied().unwrap_or_default();
        if round2(shop) == round2(have) && round2(target.total) == round2(doc.gross) {
            continue;
        }
        let (vat, _) = row_vat_gross(l.total, l.rate.percent, gross);
        out.push(format!(
            "line '{}': {} {}, shop tax {}, Minimax tax {vat} at {} %",
            l.name,
            if gross { "gross" } else { "net" },
            round2(l.total),
            round2(l.tax),
            l.rate.percent.normalize()
        ));
    }
    if out.is_empty() {
        String::new()
    } else {
        format!(" [{}]", out.join("; "))
    }
}

/// The totals Minimax computes for these lines.
fn totals_of(
    lines: &[PlannedLine],
    gross: bool,
    amount_discounts: bool,
    org: &OrgData,
) -> DocTotals {
    let probe = IssuedInvoice {
        prices_on_invoice: Some(if gross { "D" } else { "N" }.into()),
        issued_invoice_rows: invoice_rows(lines, gross, amount_discounts, None, org)
            .unwrap_or_default(),
        ..IssuedInvoice::default()
    };
    compute_totals(&probe, &org.vat_rates)
}

fn item_id(item_ids: &BTreeMap<String, i64>, code: &str) -> Result<i64, MappingError> {
    item_ids.get(code).copied().ok_or_else(|| {
        MappingError::Unsupported(format!(
            "item '{code}' was neither found nor created in Minimax (missing from item_ids)"
        ))
    })
}

fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_time(NaiveTime::MIN)
}

/// Invoice rows for planned lines, one per line. `gross_mode`: the lines' amounts include
/// tax and the invoice has `PricesOnInvoice = D`. Without `item_ids` (planning) the rows
/// reference item 0.
pub(super) fn invoice_rows(
    lines: &[PlannedLine],
    gross_mode: bool,
    amount_discounts: bool,
    item_ids: Option<&BTreeMap<String, i64>>,
    org: &OrgData,
) -> Result<Vec<IssuedInvoiceRow>, MappingError> {
    let mut rows = Vec::new();
    for l in lines {
        let id = match item_ids {
            Some(ids) => item_id(ids, &l.item_code)?,
            None => 0,
        };
        let factor = Decimal::ONE + l.rate.percent / Decimal::ONE_HUNDRED;
        let r = price_row(l.subtotal, l.total, l.quantity, amount_discounts);
        // The basis price is exact; the other one is informative (4 decimals, like
        // the official samples), since the server computes from the basis.
        let (price, with_vat) = if gross_mode {
            ((r.price / factor).round_dp(4), r.price)
        } else {
            (r.price, (r.price * factor).round_dp(4))
        };
        let (discount, discount_percent) = match r.discount {
            RowDiscount::None => (None, None),
            RowDiscount::Percent(p) => (None, Some(p)),
            RowDiscount::Amount(a) => (Some(a), None),
        };
        let name = if r.quantity.abs() == l.quantity.abs() || l.quantity.is_zero() {
            l.name.clone()
        } else {
            // The quantity did not divide the amount into a unit price Minimax keeps.
            truncate(
                &format!("{} ({} ×)", l.name, l.quantity.abs().normalize()),
                250,
            )
        };
        rows.push(IssuedInvoiceRow {
            item: Some(Fk::id(id)),
            item_name: Some(name),
            row_number: Some(i32::try_from(rows.len() + 1).unwrap_or(i32::MAX)),
            item_code: Some(l.item_code.clone()),
            quantity: Some(r.quantity),
            unit_of_measurement: Some(UNIT.into()),
            price: Some(price),
            price_with_vat: Some(with_vat),
            vat_percent: Some(l.rate.percent),
            discount,
            discount_percent,
            vat_rate: Some(Fk::id(l.rate.id)),
            analytic: org.analytic_id.map(Fk::id),
            ..IssuedInvoiceRow::default()
        });
    }
    Ok(rows)
}

/// Header fields common to invoices and credit notes.
pub(super) fn invoice_header(
    order: Option<&Order>,
    settings: &BookingSettings,
    org: &OrgData,
    customer_id: i64,
    document_date: NaiveDate,
) -> Result<IssuedInvoice, MappingError> {
    let due = due_date(document_date, settings)?;
    let mut inv = IssuedInvoice {
        invoice_type: Some("R".into()),
        customer: Some(Fk::id(customer_id)),
        date_issued: Some(midnight(document_date)),
        date_transaction: Some(midnight(document_date)),
        date_due: Some(midnight(due)),
        currency: Some(Fk::id(org.currency_id)),
        document_numbering: org.document_numbering_id.map(Fk::id),
        issued_invoice_report_template: org.invoice_report_template_id.map(Fk::id),
        employee: org.employee_id.map(Fk::id),
        analytic: org.analytic_id.map(Fk::id),
        ..IssuedInvoice::default()
    };
    let Some(order) = order else {
        return Ok(inv);
    };
    if let Some(a) = address_fields(order.billing.as_ref(), org, 250)? {
        inv.addressee_name = a.name;
        inv.addressee_address = a.address;
        inv.addressee_postal_code = a.postal_code;
        inv.addressee_city = a.city;
        inv.addressee_country = Some(a.country);
        inv.addressee_country_name = a.country_name;
    }
    if let Some(a) = address_fields(order.shipping.as_ref(), org, 250)? {
        inv.recipient_name = a.name;
        inv.recipient_address = a.address;
        inv.recipient_postal_code = a.postal_code;
        inv.recipient_city = a.city;
        inv.recipient_country = Some(a.country);
        inv.recipient_country_name = a.country_name;
    }
    Ok(inv)
}

/// An address as Minimax's addressee/recipient fields take it, within their lengths.
struct AddressFields {
    name: Option<String>,
    address: Option<String>,
    postal_code: Option<String>,
    city: Option<String>,
    country: Fk,
    /// Only abroad: Minimax refuses a country name for the home country.
    country_name: Option<String>,
}

fn address_fields(
    a: Option<&crate::webshop::Address>,
    org: &OrgData,
    name_max: usize,
) -> Result<Option<AddressFields>, MappingError> {
    let Some(a) = a.filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let (country, country_name) = country(a.country_code.as_deref(), org)?;
    Ok(Some(AddressFields {
        name: address_name(a).map(|s| truncate(&s, name_max)),
        address: street(a).map(|s| truncate(&s, 250)),
        postal_code: a.postcode.as_deref().map(|s| truncate(s, 30)),
        city: a.city.as_deref().map(|s| truncate(s, 250)),
        country,
        country_name,
    }))
}

fn due_date(
    document_date: NaiveDate,
    settings: &BookingSettings,
) -> Result<NaiveDate, MappingError> {
    document_date
        .checked_add_days(Days::new(u64::from(settings.payment_due_days)))
        .ok_or_else(|| MappingError::Unsupported("payment due date out of range".into()))
}

pub(super) fn order_reference(order: &Order) -> String {
    order
        .number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(&order.shop_order_id)
        .to_owned()
}

/// The issued invoice (draft) for an order, reconciled against the shop's total and
/// VAT per rate (within `settings.total_tolerance`).
pub fn invoice_plan(
    order: &Order,
    settings: &BookingSettings,
    org: &OrgData,
    customer_id: i64,
    item_ids: &BTreeMap<String, i64>,
    document_date: NaiveDate,
) -> Result<InvoicePlan, MappingError> {
    let lines = invoice_lines(order, settings, org)?;
    let gross_mode = invoice_basis(order) == Basis::Gross;
    let mut invoice = invoice_header(Some(order), settings, org, customer_id, document_date)?;
    invoice.document_reference = Some(order_reference(order));
    invoice.prices_on_invoice = Some(if gross_mode { "D" } else { "N" }.into());
    invoice.exchange_rate = exchange_rate(order, org);
    invoice.issued_invoice_rows = invoice_rows(&lines, gross_mode, true, Some(item_ids), org)?;
    if let Some(pm) = payment_method(order, settings, org)? {
        invoice.issued_invoice_payment_methods = vec![IssuedInvoicePaymentMethod {
            payment_method: Some(Fk::id(pm.id)),
            amount: Some(round2(order.total)),
            already_paid: Some(if is_paid(order) { "D" } else { "N" }.into()),
            ..IssuedInvoicePaymentMethod::default()
        }];
    }
    let expected = compute_totals(&invoice, &org.vat_rates);
    reconcile(&expected, order, settings.total_tolerance)?;
    Ok(InvoicePlan { invoice, expected })
}

/// The organisation's domestic currency (SI and HR: EUR, RS: RSD).
fn domestic_currency(org: &OrgData) -> &'static str {
    if org.home_country.eq_ignore_ascii_case("RS") {
        "RSD"
    } else {
        "EUR"
    }
}

/// The invoice's exchange rate: the shop's own (shop money ÷ what the customer paid),
/// when the customer paid in another currency and the shop's currency is the
/// organisation's domestic one. Else `None`: Minimax applies its own rate.
pub(super) fn exchange_rate(order: &Order, org: &OrgData) -> Option<Decimal> {
    let shop = order.shop_currency.as_deref()?;
    let domestic = domestic_currency(org);
    let foreign = !order.currency.eq_ignore_ascii_case(domestic);
    (foreign && shop.eq_ignore_ascii_case(domestic))
        .then_some(order.exchange_rate)
        .flatten()
}

/// A received order (`ReceivedIssued = "P"`, `Reference` = shop order number). Order rows
/// carry no VAT (it comes from the item), so prices are net: gross shop amounts have the
/// line's tax taken off. Discounts are shown as `DiscountPercent` when exact, else folded
/// into the price (order rows have no discount amount).
pub fn order_plan(
    order: &Order,
    settings: &BookingSettings,
    org: &OrgData,
    customer_id: i64,
    item_ids: &BTreeMap<String, i64>,
    document_date: NaiveDate,
) -> Result<MmOrder, MappingError> {
    let lines = plan_lines(order, settings, org, Basis::Net)?;
    let mut rows = Vec::new();
    for l in &lines {
        let id = item_id(item_ids, &l.item_code)?;
        let r = price_row(l.subtotal, l.total, l.quantity, false);
        rows.push(OrderRow {
            item: Some(Fk::id(id)),
            item_name: Some(l.name.clone()),
            item_code: Some(l.item_code.clone()),
            quantity: Some(r.quantity),
            price: Some(r.price),
            discount_percent: match r.discount {
                RowDiscount::Percent(p) => Some(p),
                _ => None,
            },
            unit_of_measurement: Some(UNIT.into()),
            ..OrderRow::default()
        });
    }
    let due = due_date(document_date, settings)?;
    let mut out = MmOrder {
        received_issued: Some("P".into()),
        date: Some(midnight(document_date)),
        due_date: Some(midnight(due)),
        customer: Some(Fk::id(customer_id)),
        reference: Some(order_reference(order)),
        currency: Some(Fk::id(org.currency_id)),
        analytic: org.analytic_id.map(Fk::id),
        notes: Some(format!(
            "Shop order {}: total {} {}",
            order_reference(order),
            round2(order.total),
            order.currency
        )),
        order_rows: rows,
        ..MmOrder::default()
    };
    // The order's customer name is limited to 100 characters (RS help page).
    if let Some(a) = address_fields(order.billing.as_ref(), org, 100)? {
        out.customer_name = a.name;
        out.customer_address = a.address;
        out.customer_postal_code = a.postal_code;
        out.customer_city = a.city;
        out.customer_country = Some(a.country);
        out.customer_country_name = a.country_name;
    }
    if let Some(a) = address_fields(order.shipping.as_ref(), org, 250)? {
        out.recipient_name = a.name;
        out.recipient_address = a.address;
        out.recipient_postal_code = a.postal_code;
        out.recipient_city = a.city;
        out.recipient_country = Some(a.country);
        out.recipient_country_name = a.country_name;
    }
    Ok(out)
}
