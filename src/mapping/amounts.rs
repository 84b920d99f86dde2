//! Money arithmetic of documents: how Minimax computes a document's totals (the working
//! assumption of MINIMAX_API.md §5.2), how row values are chosen so that this computation
//! is exact to the cent, and the reconciliation against the shop's figures.
//!
//! Guarantees: [`price_row`] returns row values whose row amount (price × quantity minus
//! discount) is mathematically exactly the requested amount, so no rounding rule can move
//! it; [`reconcile`] fails with both figures whenever the document and the shop disagree by
//! more than the tolerance on the total or on the VAT of any rate.

use std::collections::BTreeMap;

use rust_decimal::prelude::*;

use crate::minimax::models::IssuedInvoice;
use crate::webshop::Order;

use super::{MappingError, VatRateRef};

const HUNDRED: Decimal = Decimal::ONE_HUNDRED;

/// Totals computed the way Minimax computes them, with VAT per percent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DocTotals {
    pub net: Decimal,
    pub vat: Decimal,
    pub gross: Decimal,
    /// VAT per rate percent (normalised, e.g. `22`, `9.5`); zero-VAT rates included.
    pub vat_by_percent: BTreeMap<Decimal, Decimal>,
}

/// Rounds to cents, half away from zero (the §5.2 assumption).
pub(crate) fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Rounds to cents away from zero (never below the magnitude).
pub(crate) fn ceil2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::AwayFromZero)
}

/// True when `d` has no more than `dp` decimals of value.
pub(crate) fn is_exact(d: Decimal, dp: u32) -> bool {
    d.round_dp(dp) == d
}

/// A percent as a map key: trailing zeros removed, so `22.00` and `22` are one key.
pub(crate) fn pct_key(p: Decimal) -> Decimal {
    p.round_dp(4).normalize()
}

/// Computes a document's totals per MINIMAX_API.md §5.2:
/// - `PricesOnInvoice = N`: net = round2((Price·Qty·(1 − DiscountPercent/100) − Discount)
///   · (1 − Rabate/100)); VAT = round2(net · p/100); gross = net + VAT.
/// - `PricesOnInvoice = D`: the same on `PriceWithVAT` gives the gross;
///   VAT = round2(gross − gross/(1 + p/100)); net = gross − VAT.
///
/// `p` is the percent of the row's `VatRate` in `rates` (the server's value); the row's
/// own `VATPercent` is used only when the rate is not in `rates`.
pub fn compute_totals(invoice: &IssuedInvoice, rates: &[VatRateRef]) -> DocTotals {
    let gross_mode = invoice.prices_on_invoice.as_deref() == Some("D");
    let rabate = invoice.rabate.unwrap_or_default();
    let mut t = DocTotals::default();
    for row in &invoice.issued_invoice_rows {
        let rate_id = row.vat_rate.as_ref().and_then(|f| f.id);
        let p = rates
            .iter()
            .find(|r| Some(r.id) == rate_id)
            .map(|r| r.percent)
            .or(row.vat_percent)
            .unwrap_or_default();
        let price = if gross_mode {
            row.price_with_vat
        } else {
            row.price
        }
        .unwrap_or_default();
        let qty = row.quantity.unwrap_or_default();
        let dp = row.discount_percent.unwrap_or_default();
        let disc = row.discount.unwrap_or_default();
        let value = (price * qty * (HUNDRED - dp) / HUNDRED - disc) * (HUNDRED - rabate) / HUNDRED;
        let (net, vat, gross) = if gross_mode {
            let gross = round2(value);
            let vat = round2(gross - gross / (Decimal::ONE + p / HUNDRED));
            (gross - vat, vat, gross)
        } else {
            let net = round2(value);
            let vat = round2(net * p / HUNDRED);
            (net, vat, net + vat)
        };
        t.net += net;
        t.vat += vat;
        t.gross += gross;
        *t.vat_by_percent.entry(pct_key(p)).or_default() += vat;
    }
    t
}

/// The shop's VAT per percent, from the order's tax lines (percents taken from the tax
/// line, from a line tax of the same rate id, or derived from the lines' tax ÷ amount).
/// Without tax lines, the lines' own taxes are grouped by their percent.
pub fn shop_vat_by_percent(order: &Order) -> BTreeMap<Decimal, Decimal> {
    let mut out: BTreeMap<Decimal, Decimal> = BTreeMap::new();
    if order.tax_lines.is_empty() {
        for (amount, tax, pct) in taxed_items(order) {
            let p = pct.or_else(|| ratio_percent(tax, amount, order.amounts_include_tax));
            if let Some(p) = p {
                *out.entry(pct_key(p)).or_default() += tax;
            }
        }
        return out;
    }
    let single = order.tax_lines.len() == 1;
    for tl in &order.tax_lines {
        let p = tl
            .rate_percent
            .or_else(|| percent_of_rate_id(order, tl.rate_id.as_deref()))
            .or_else(|| {
                // One tax line without a percent: all taxed lines are at its rate.
                single
                    .then(|| {
                        let (net, tax) = taxed_items(order)
                            .filter(|(_, tax, _)| !tax.is_zero())
                            .fold((Decimal::ZERO, Decimal::ZERO), |(n, t), (a, x, _)| {
                                (n + a, t + x)
                            });
                        ratio_percent(tax, net, order.amounts_include_tax)
                    })
                    .flatten()
            });
        // A tax line whose percent cannot be found still counts, under a key no
        // document rate has, so its VAT is reported as missing rather than dropped.
        let key = p.map(pct_key).unwrap_or(Decimal::NEGATIVE_ONE);
        *out.entry(key).or_default() += tl.amount;
    }
    out
}

/// (amount, tax, percent) of every line, shipping line and fee, on the order's basis.
fn taxed_items(order: &Order) -> impl Iterator<Item = (Decimal, Decimal, Option<Decimal>)> + '_ {
    let lines = order
        .lines
        .iter()
        .map(|l| (l.total, l.total_tax, l.tax_rate_percent));
    let ship = order
        .shipping_lines
        .iter()
        .map(|l| (l.total, l.total_tax, l.tax_rate_percent));
    let fees = order
        .fees
        .iter()
        .map(|l| (l.total, l.total_tax, l.tax_rate_percent));
    lines.chain(ship).chain(fees)
}

/// The percent of a shop tax rate id: from any line tax that states it, else derived
/// from the lines that carry that rate (their tax ÷ their amount).
fn percent_of_rate_id(order: &Order, rate_id: Option<&str>) -> Option<Decimal> {
    let rate_id = rate_id?;
    let mut net = Decimal::ZERO;
    let mut tax = Decimal::ZERO;
    let groups = order
        .lines
        .iter()
        .map(|l| (&l.taxes, l.total))
        .chain(order.shipping_lines.iter().map(|l| (&l.taxes, l.total)))
        .chain(order.fees.iter().map(|l| (&l.taxes, l.total)));
    for (taxes, amount) in groups {
        for t in taxes
            .iter()
            .filter(|t| t.rate_id.as_deref() == Some(rate_id))
        {
            if let Some(p) = t.rate_percent {
                return Some(p);
            }
            net += amount;
            tax += t.amount;
        }
    }
    ratio_percent(tax, net, order.amounts_include_tax)
}

/// tax ÷ amount as a percent, to 2 decimals (`amount` gross when `gross`).
pub(crate) fn ratio_percent(tax: Decimal, amount: Decimal, gross: bool) -> Option<Decimal> {
    let base = if gross { amount - tax } else { amount };
    if base.is_zero() {
        return None;
    }
    Some((tax / base * HUNDRED).round_dp(2).normalize())
}

/// Compares a planned document with the shop's order: the total, and the VAT of every
/// rate, each within `tolerance` (after rounding both to cents).
pub fn reconcile(
    planned: &DocTotals,
    order: &Order,
    tolerance: Decimal,
) -> Result<(), MappingError> {
    let shop_total = round2(order.total);
    let document_total = round2(planned.gross);
    let mut problems = Vec::new();
    if (document_total - shop_total).abs() > tolerance {
        problems.push(format!(
            "total differs by {}",
            (document_total - shop_total).normalize()
        ));
    }
    let shop = shop_vat_by_percent(order);
    let doc: BTreeMap<Decimal, Decimal> = planned
        .vat_by_percent
        .iter()
        .map(|(p, v)| (pct_key(*p), *v))
        .collect();
    let mut keys: Vec<Decimal> = shop.keys().chain(doc.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    for p in keys {
        let s = round2(shop.get(&p).copied().unwrap_or_default());
        let d = round2(doc.get(&p).copied().unwrap_or_default());
        if (s - d).abs() > tolerance {
            let label = if p.is_sign_negative() {
                "VAT of a shop tax line of unknown rate".to_owned()
            } else {
                format!("VAT {p} %")
            };
            problems.push(format!("{label}: document {d:.2}, shop {s:.2}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(MappingError::TotalMismatch {
            shop_total,
            document_total,
            details: problems.join("; "),
        })
    }
}

/// How a row's discount is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowDiscount {
    None,
    /// `DiscountPercent`.
    Percent(Decimal),
    /// `Discount`, an amount off the row (§5.2: subtracted after price × quantity).
    Amount(Decimal),
}

/// Quantity, unit price and discount of one document row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowAmounts {
    pub quantity: Decimal,
    pub price: Decimal,
    pub discount: RowDiscount,
}

impl RowAmounts {
    /// The row amount these values come to (exact; no rounding involved).
    #[cfg(test)]
    pub fn amount(&self) -> Decimal {
        let base = self.price * self.quantity;
        match self.discount {
            RowDiscount::None => base,
            RowDiscount::Percent(p) => base * (HUNDRED - p) / HUNDRED,
            RowDiscount::Amount(d) => base - d,
        }
    }
}

/// Chooses row values for a line whose amount before discounts is `subtotal` and after
/// discounts `total` (both on the document's price basis, whole cents), for `quantity`.
///
/// Every result is exact: price × quantity × (1 − pct/100) − discount equals `total`
/// with no rounding, and prices have at most 2 decimals (so also the unit price after a
/// percentage discount is whole cents). The discount is shown as a percentage when that
/// is exact, else as an amount. With `amount_discounts = false` (received orders, credit
/// notes: no or ambiguous `Discount` field) the discount is folded into the price, and a
/// line whose amount does not divide by its quantity is split into two rows of whole
/// cents (`n` units at `x` and `m` units at `x + 0.01`).
pub(crate) fn price_row(
    subtotal: Decimal,
    total: Decimal,
    quantity: Decimal,
    amount_discounts: bool,
) -> Vec<RowAmounts> {
    let negative = total.is_sign_negative() && !total.is_zero()
        || (total.is_zero() && subtotal.is_sign_negative() && !subtotal.is_zero());
    let sign = if negative {
        Decimal::NEGATIVE_ONE
    } else {
        Decimal::ONE
    };
    let a = round2(total.abs());
    let s = round2(subtotal.abs()).max(a);
    let q = if quantity.is_zero() {
        Decimal::ONE
    } else {
        quantity.abs()
    };
    let row = |quantity: Decimal, price: Decimal, discount| RowAmounts {
        quantity: sign * quantity,
        price,
        discount,
    };
    let price = ceil2(s / q);
    let before = price * q;
    let d = before - a;
    if d.is_zero() {
        return vec![row(q, price, RowDiscount::None)];
    }
    // Without a shop discount, a discount would only be a rounding artefact of the unit
    // price: fold instead.
    if s != a && !before.is_zero() {
        let pct = (d / before * HUNDRED).normalize();
        if is_exact(pct, 2) && is_exact(price * (HUNDRED - pct) / HUNDRED, 2) {
            return vec![row(q, price, RowDiscount::Percent(pct))];
        }
    }
    if amount_discounts && !negative && s != a {
        return vec![row(q, price, RowDiscount::Amount(d))];
    }
    // Fold the discount into the price.
    let unit = a / q;
    if is_exact(unit, 2) {
        return vec![row(q, unit, RowDiscount::None)];
    }
    if q.fract().is_zero() {
        let cents = a * HUNDRED;
        let low = (cents / q).floor();
        let high_units = cents - low * q;
        let low_price = low / HUNDRED;
        let mut rows = vec![row(q - high_units, low_price, RowDiscount::None)];
        if !high_units.is_zero() {
            rows.push(row(
                high_units,
                low_price + Decimal::new(1, 2),
                RowDiscount::None,
            ));
        }
        return rows;
    }
    // A fractional quantity whose amount does not divide: one unit of the whole amount.
    vec![row(Decimal::ONE, a, RowDiscount::None)]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn price_row_is_exact() {
        let cases = [
            // subtotal, total, qty, amount discounts
            (dec!(6.00), dec!(6.00), dec!(2), true),
            (dec!(199.00), dec!(181.09), dec!(1), true),
            (dec!(199.00), dec!(195.66), dec!(1), true),
            (dec!(50.00), dec!(30.00), dec!(2), true),
            (dec!(10.00), dec!(10.00), dec!(3), true),
            (dec!(10.00), dec!(9.99), dec!(3), true),
            (dec!(10.00), dec!(0.00), dec!(1.5), true),
            (dec!(10.00), dec!(7.00), dec!(3), false),
            (dec!(10.00), dec!(10.00), dec!(3), false),
            (dec!(-5.00), dec!(-5.00), dec!(1), true),
            (dec!(-10.00), dec!(-10.00), dec!(3), false),
            (dec!(7.77), dec!(7.77), dec!(1.5), false),
        ];
        for (s, t, q, amt) in cases {
            let rows = price_row(s, t, q, amt);
            let sum: Decimal = rows.iter().map(RowAmounts::amount).sum();
            assert_eq!(sum, t, "{s} {t} {q} {amt}: {rows:?}");
            for r in &rows {
                assert!(is_exact(r.price, 2), "{rows:?}");
                if !amt {
                    assert!(!matches!(r.discount, RowDiscount::Amount(_)), "{rows:?}");
                }
            }
            if q.fract().is_zero() {
                let qty: Decimal = rows.iter().map(|r| r.quantity).sum();
                assert_eq!(qty.abs(), q, "{rows:?}");
            }
        }
    }

    #[test]
    fn percentage_discount_is_shown_as_percent() {
        let rows = price_row(dec!(199.00), dec!(181.09), dec!(1), true);
        assert_eq!(rows[0].discount, RowDiscount::Percent(dec!(9)));
        assert_eq!(rows[0].price, dec!(199.00));
        let rows = price_row(dec!(199.00), dec!(195.66), dec!(1), true);
        assert_eq!(rows[0].discount, RowDiscount::Amount(dec!(3.34)));
    }

    #[test]
    fn uneven_split_keeps_quantity() {
        let rows = price_row(dec!(10.00), dec!(10.00), dec!(3), false);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].quantity, rows[0].price), (dec!(2), dec!(3.33)));
        assert_eq!((rows[1].quantity, rows[1].price), (dec!(1), dec!(3.34)));
    }
}

#[cfg(test)]
mod totals_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::minimax::models::{Fk, IssuedInvoiceRow};
    use rust_decimal_macros::dec;

    fn rates() -> Vec<VatRateRef> {
        vec![VatRateRef {
            id: 36,
            code: "S".into(),
            percent: dec!(22),
        }]
    }

    fn row(price: Decimal, with_vat: Decimal, qty: Decimal) -> IssuedInvoiceRow {
        IssuedInvoiceRow {
            price: Some(price),
            price_with_vat: Some(with_vat),
            quantity: Some(qty),
            vat_rate: Some(Fk::id(36)),
            // Deliberately wrong: the server's percent (from the rate) wins.
            vat_percent: Some(dec!(20)),
            ..IssuedInvoiceRow::default()
        }
    }

    #[test]
    fn the_logged_invoice_comes_to_71_37() {
        // MINIMAX_API.md §4.3: Price 58.50 at 22 %, prices without VAT → 71.37.
        let inv = IssuedInvoice {
            prices_on_invoice: Some("N".into()),
            issued_invoice_rows: vec![row(dec!(58.50), dec!(0), dec!(1))],
            ..IssuedInvoice::default()
        };
        let t = compute_totals(&inv, &rates());
        assert_eq!(
            (t.net, t.vat, t.gross),
            (dec!(58.50), dec!(12.87), dec!(71.37))
        );
        assert_eq!(t.vat_by_percent[&dec!(22)], dec!(12.87));
    }

    #[test]
    fn gross_prices_split_vat_out_of_the_gross() {
        let mut r = row(dec!(0), dec!(12.99), dec!(1));
        r.discount_percent = Some(dec!(10));
        let inv = IssuedInvoice {
            prices_on_invoice: Some("D".into()),
            issued_invoice_rows: vec![r],
            ..IssuedInvoice::default()
        };
        // 12.99 · 0.9 = 11.691 → 11.69; VAT = 11.69 − 11.69/1.22 = 2.108… → 2.11.
        let t = compute_totals(&inv, &rates());
        assert_eq!(
            (t.gross, t.vat, t.net),
            (dec!(11.69), dec!(2.11), dec!(9.58))
        );
    }
}
