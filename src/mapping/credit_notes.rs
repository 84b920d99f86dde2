//! The credit note for a refund: the refunded lines, shipping, adjustments and any
//! unitemised rest, from the refund's own data, as an issued invoice with negative
//! quantities.
//!
//! Guarantees: [`credit_note_plan`] returns a credit note that comes to exactly minus the
//! refunded money and minus the refunded VAT per rate (with correction rows where the
//! shop rounded otherwise), or fails naming the figures; amounts of Shopify
//! `taxes_included` refunds are read as gross (docs/mapping.md, "Credit notes").

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::prelude::*;

use crate::minimax::models::{Fk, IssuedInvoicePaymentMethod};
use crate::webshop::{Order, Refund};

use super::amounts::{compute_totals, pct_key, round2, row_vat_gross, Target};
use super::documents::{
    exchange_rate, invoice_header, invoice_rows, needs_of, order_reference, rounding_unit,
    with_corrections, InvoicePlan, ItemNeed,
};
use super::lines::{
    clean_name, item_for, line_rate, payment_method, plan_lines, resolve_rate, Basis, LineKind,
    PlannedLine, TaxFacts,
};
use super::settings::BookingSettings;
use super::{MappingError, OrgData};

/// The document lines of a credit note, amounts gross (tax included) and positive.
fn credit_lines(
    refund: &Refund,
    order: Option<&Order>,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<Vec<PlannedLine>, MappingError> {
    let planned = match order {
        Some(o) => plan_lines(o, settings, org, Basis::Gross)?,
        None => Vec::new(),
    };
    // Whether the refund's own amounts include tax (Shopify `taxes_included` shops):
    // as the parser found from the refund's transactions, else as the order's lines.
    let gross_basis = refund
        .amounts_include_tax
        .or(order.map(|o| o.amounts_include_tax))
        .unwrap_or(false);
    let with_tax = |amount: Decimal, tax: Decimal| {
        if gross_basis {
            amount
        } else {
            amount + tax
        }
    };
    let no_lines: &[crate::webshop::TaxLine] = &[];
    let mut out = Vec::new();
    for rl in &refund.lines {
        let name = clean_name(rl.name.as_deref().unwrap_or("Refunded item"));
        let matched = planned.iter().find(|p| {
            p.kind == LineKind::Product
                && ((rl.shop_line_id.is_some() && p.shop_line_id == rl.shop_line_id)
                    || (rl.shop_line_id.is_none() && rl.sku.is_some() && {
                        let sku = rl.sku.as_deref().map(str::trim);
                        Some(p.item_code.as_str()) == sku
                    }))
        });
        let gross = match (rl.subtotal, matched) {
            (Some(amount), _) => with_tax(amount, rl.tax.unwrap_or_default()),
            (None, Some(p)) if !p.quantity.is_zero() => round2(p.total * rl.quantity / p.quantity),
            _ => {
                return Err(MappingError::Unsupported(format!(
                    "refund line '{name}' has no amount and its order line is not known; \
                     book the credit note by hand"
                )))
            }
        };
        let line = match matched {
            Some(p) => PlannedLine {
                name: p.name.clone(),
                quantity: rl.quantity,
                subtotal: gross,
                total: gross,
                // A refund of quantities only: the VAT Minimax computes is the VAT.
                tax: rl
                    .tax
                    .unwrap_or_else(|| row_vat_gross(gross, p.rate.percent, true).0),
                ..p.clone()
            },
            None => {
                let tax = rl.tax.unwrap_or_default();
                let rate = line_rate(
                    &TaxFacts {
                        name: &name,
                        explicit: None,
                        taxes: &[],
                        total: gross,
                        tax,
                        subtotal: gross,
                        subtotal_tax: Some(tax),
                    },
                    true,
                    no_lines,
                    settings,
                    org,
                )?;
                let (code, item_name, item_type, create) =
                    item_for(settings, &rate, rl.sku.as_deref(), None, &name)?;
                PlannedLine {
                    kind: LineKind::Product,
                    shop_line_id: rl.shop_line_id.clone(),
                    name: name.clone(),
                    item_code: code,
                    item_name,
                    item_type,
                    create_if_missing: create,
                    rate,
                    quantity: rl.quantity,
                    subtotal: gross,
                    total: gross,
                    tax,
                }
            }
        };
        out.push(line);
    }
    for rs in &refund.shipping {
        let gross = with_tax(rs.amount, rs.tax);
        if gross.is_zero() {
            continue;
        }
        let name = clean_name(rs.title.as_deref().unwrap_or("Shipping"));
        let matched = planned
            .iter()
            .filter(|p| p.kind == LineKind::Shipping)
            .find(|p| rs.shop_line_id.is_none() || p.shop_line_id == rs.shop_line_id);
        let rate = match matched {
            Some(p) => p.rate.clone(),
            None => line_rate(
                &TaxFacts {
                    name: &name,
                    explicit: None,
                    taxes: &[],
                    total: gross,
                    tax: rs.tax,
                    subtotal: gross,
                    subtotal_tax: Some(rs.tax),
                },
                true,
                no_lines,
                settings,
                org,
            )?,
        };
        out.push(service_line(
            LineKind::Shipping,
            name,
            &settings.shipping_item_code,
            "Shipping",
            rate,
            gross,
            rs.tax,
        ));
    }
    for adj in &refund.adjustments {
        // A shipping refund adjustment next to refund shipping lines is the same money.
        if adj.kind.as_deref() == Some("shipping_refund") && !refund.shipping.is_empty() {
            continue;
        }
        // Adjustments are as the shop reports them: negative = given back.
        let tax = adj.tax.unwrap_or_default();
        let gross = -with_tax(adj.amount, tax);
        if gross.is_zero() {
            continue;
        }
        let label = adj
            .reason
            .as_deref()
            .or(adj.kind.as_deref())
            .unwrap_or("adjustment");
        let name = clean_name(&format!("Refund adjustment: {label}"));
        let rate = line_rate(
            &TaxFacts {
                name: &name,
                explicit: None,
                taxes: &[],
                total: gross,
                tax: -tax,
                subtotal: gross,
                subtotal_tax: Some(-tax),
            },
            true,
            no_lines,
            settings,
            org,
        )?;
        out.push(service_line(
            LineKind::Fee,
            name,
            &settings.fee_item_code,
            "Fees",
            rate,
            gross,
            -tax,
        ));
    }
    let itemised: Decimal = out.iter().map(|l| l.total).sum();
    let remainder = round2(refund.amount) - itemised;
    let refund_name = refund_label(refund);
    // A few cents over the money given back is rounding: the correction rows take it.
    let rounding = Decimal::new(1, 2) * Decimal::from(out.len() + 1);
    if remainder.is_sign_negative() && remainder.abs() <= rounding {
        return Ok(out);
    }
    if remainder.is_sign_negative() && !remainder.is_zero() {
        return Err(MappingError::TotalMismatch {
            shop_total: -round2(refund.amount),
            document_total: -itemised,
            details: format!(
                "{refund_name}: the refunded lines come to {itemised}, more than the refunded \
                 amount {}",
                round2(refund.amount)
            ),
        });
    }
    if !remainder.is_zero() {
        // Money given back without saying for what: at the order's VAT rate, when the
        // order has exactly one.
        let mut rates: Vec<_> = planned
            .iter()
            .filter(|p| !p.total.is_zero())
            .map(|p| p.rate.clone())
            .collect();
        rates.sort_by_key(|r| r.id);
        rates.dedup();
        let rate = match (order, rates.as_slice()) {
            (Some(_), [only]) => only.clone(),
            (Some(_), []) => resolve_rate(Decimal::ZERO, &refund_name, settings, org)?,
            (Some(_), many) => {
                return Err(MappingError::Unsupported(format!(
                    "{refund_name}: {remainder} is not itemised by line and the order has \
                     several VAT rates ({}); book the credit note by hand",
                    many.iter()
                        .map(|r| format!("{} %", r.percent.normalize()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            (None, _) => {
                return Err(MappingError::Unsupported(format!(
                    "{refund_name}: {remainder} is not itemised by line and the order is not \
                     known, so its VAT rate is not either; the orchestrator must pass the order"
                )))
            }
        };
        let name = clean_name(&match refund.reason.as_deref() {
            Some(r) if !r.trim().is_empty() => format!("Refund: {r}"),
            _ => "Refund".to_owned(),
        });
        let vat = row_vat_gross(remainder, rate.percent, true).0;
        out.push(service_line(
            LineKind::Fee,
            name,
            &settings.fee_item_code,
            "Fees",
            rate,
            remainder,
            vat,
        ));
    }
    Ok(out)
}

fn service_line(
    kind: LineKind,
    name: String,
    code: &str,
    item_name: &str,
    rate: super::VatRateRef,
    gross: Decimal,
    tax: Decimal,
) -> PlannedLine {
    PlannedLine {
        kind,
        shop_line_id: None,
        name,
        item_code: code.to_owned(),
        item_name: item_name.to_owned(),
        item_type: "S",
        create_if_missing: true,
        rate,
        quantity: Decimal::ONE,
        subtotal: gross,
        total: gross,
        tax,
    }
}

fn refund_label(refund: &Refund) -> String {
    match refund.shop_refund_id.as_deref() {
        Some(id) => format!("refund {id} of order {}", refund.shop_order_id),
        None => format!("refund of order {}", refund.shop_order_id),
    }
}

/// Items the credit note rows will reference (the refunded lines' items, the shipping
/// item, the fee item for adjustments and unitemised amounts).
pub fn credit_note_item_needs(
    refund: &Refund,
    order: Option<&Order>,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<Vec<ItemNeed>, MappingError> {
    Ok(needs_of(&credit_note_lines(refund, order, settings, org)?))
}

/// The credit note's lines: the refunded lines negated, plus the correction lines that
/// make it come to minus the refunded amount and minus the refunded VAT per rate.
fn credit_note_lines(
    refund: &Refund,
    order: Option<&Order>,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<Vec<PlannedLine>, MappingError> {
    let mut lines = credit_lines(refund, order, settings, org)?;
    let mut target = Target {
        total: -round2(refund.amount),
        vat: BTreeMap::new(),
    };
    for l in &mut lines {
        l.subtotal = -l.subtotal;
        l.total = -l.total;
        l.tax = -l.tax;
        *target.vat.entry(pct_key(l.rate.percent)).or_default() += round2(l.tax);
    }
    let currency = order.map_or_else(
        || refund.currency.clone().unwrap_or_default(),
        |o| o.currency.clone(),
    );
    let amounts = lines
        .iter()
        .flat_map(|l| [l.total, l.tax])
        .chain([refund.amount]);
    let unit = rounding_unit(&currency, amounts.collect::<Vec<_>>().into_iter());
    with_corrections(lines, Basis::Gross, false, &target, unit, settings, org).map_err(
        |e| match e {
            MappingError::TotalMismatch {
                shop_total,
                document_total,
                details,
            } => MappingError::TotalMismatch {
                shop_total,
                document_total,
                details: format!("{}: {details}", refund_label(refund)),
            },
            other => other,
        },
    )
}

/// A credit note for a (partial) refund: an issued invoice with `PricesOnInvoice = D`
/// whose rows are the refunded lines, shipping, adjustments and any unitemised rest as
/// negative quantities, `DocumentReference` `"<order number>/R<refund id>"`, coming to
/// exactly minus the refunded amount (gross rows are exact, so the total is too).
pub fn credit_note_plan(
    refund: &Refund,
    order: Option<&Order>,
    settings: &BookingSettings,
    org: &OrgData,
    customer_id: i64,
    item_ids: &BTreeMap<String, i64>,
    document_date: NaiveDate,
) -> Result<InvoicePlan, MappingError> {
    let lines = credit_note_lines(refund, order, settings, org)?;
    let mut invoice = invoice_header(order, settings, org, customer_id, document_date)?;
    invoice.issued_invoice_report_template = org.credit_note_report_template_id.map(Fk::id);
    let number = order.map_or_else(|| refund.shop_order_id.clone(), order_reference);
    // The refund's key, as the booking record uses: two refunds without shop ids never
    // share a reference, so adopting one after a lost answer cannot take the other.
    invoice.document_reference = Some(format!("{number}/R{}", refund.key()));
    invoice.prices_on_invoice = Some("D".into());
    invoice.exchange_rate = order.and_then(|o| exchange_rate(o, org));
    invoice.issued_invoice_rows = invoice_rows(&lines, true, false, Some(item_ids), org)?;
    let pm = order.and_then(|o| payment_method(o, settings, org).ok().flatten());
    if let Some(pm) = pm {
        invoice.issued_invoice_payment_methods = vec![IssuedInvoicePaymentMethod {
            payment_method: Some(Fk::id(pm.id)),
            amount: Some(-round2(refund.amount)),
            already_paid: Some("D".into()),
            ..IssuedInvoicePaymentMethod::default()
        }];
    }
    let expected = compute_totals(&invoice, &org.vat_rates);
    let want = -round2(refund.amount);
    if (round2(expected.gross) - want).abs() > settings.total_tolerance {
        return Err(MappingError::TotalMismatch {
            shop_total: want,
            document_total: round2(expected.gross),
            details: format!(
                "{}: the credit note must come to minus the refunded amount",
                refund_label(refund)
            ),
        });
    }
    Ok(InvoicePlan { invoice, expected })
}

/// True when the refund gives back the whole order and is its only refund (then the
/// orchestrator copies the booked invoice to a credit note instead).
pub fn is_full_refund(refund: &Refund, order: &Order) -> bool {
    let others = order.refunds.iter().any(|r| {
        !r.amount.is_zero()
            && (r.shop_refund_id.is_none() || r.shop_refund_id != refund.shop_refund_id)
    });
    !others && !order.total.is_zero() && round2(refund.amount) >= round2(order.total)
}
