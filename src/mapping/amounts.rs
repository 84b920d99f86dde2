//! Money arithmetic of documents: how Minimax computes a document's totals (the working
//! assumption of docs/minimax-api.md, "Rows and rounding"), how a shop line's one row is chosen so that this
//! computation is exact to the cent, the correction rows for shops that round otherwise,
//! and the reconciliation against the shop's figures.
//!
//! Guarantees: [`price_row`] returns row values whose row amount (price × quantity minus
//! discount) is mathematically exactly the requested amount, so no rounding rule can move
//! it; [`corrections`] returns rows that make the document's VAT per rate and total the
//! shop's exactly, or the problems when a difference is more than rounding;
//! [`reconcile`] fails with both figures whenever the document and the shop disagree by
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

/// Rounds to cents, half away from zero (the working assumption of docs/minimax-api.md).
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

/// Computes a document's totals per docs/minimax-api.md ("Rows and rounding"):
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
    /// `Discount`, an amount off the row (subtracted after price × quantity, docs/minimax-api.md).
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

/// Decimals the mapping ever puts on a unit price. Minimax declares `Price` and
/// `PriceWithVAT` as doubles; the official samples send 4 decimals (10.6475) and nothing
/// published says more are kept, so 4 is the most a row may rely on.
pub(crate) const PRICE_DECIMALS: u32 = 4;

/// Chooses the values of the one row of a shop line whose amount before discounts is
/// `subtotal` and after discounts `total` (both on the document's price basis, whole
/// cents), for `quantity` (the shop's, kept; negative on credit notes).
///
/// Every result is exact: price × quantity × (1 − pct/100) − discount equals `total`
/// with no rounding, so Minimax rounds the row's VAT once, on the shop's line amount.
/// Preference: a 2-decimal price (the shop's unit price before discounts when there is a
/// discount) with the discount as an exact `DiscountPercent`, else as a `Discount`
/// amount; a line that does not divide by its quantity gets the unit price rounded up to
/// the cent and the cents over as `Discount`. With `amount_discounts = false` (received
/// orders and credit notes, where `Discount` is missing or its sign on a negative row is
/// unknown) the discount is folded into a price of up to [`PRICE_DECIMALS`]; if even that
/// is not exact the row becomes quantity ±1 at the line amount (`None` quantity in the
/// name is the caller's business).
pub(crate) fn price_row(
    subtotal: Decimal,
    total: Decimal,
    quantity: Decimal,
    amount_discounts: bool,
) -> RowAmounts {
    let negative = quantity.is_sign_negative() && !quantity.is_zero()
        || total.is_sign_negative() && !total.is_zero()
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
        return row(q, price, RowDiscount::None);
    }
    // A discount only where the shop gave one (else it is just the unit price's cents).
    if s != a && !before.is_zero() {
        let pct = (d / before * HUNDRED).normalize();
        if is_exact(pct, 2) && is_exact(price * (HUNDRED - pct) / HUNDRED, 2) {
            return row(q, price, RowDiscount::Percent(pct));
        }
    }
    let unit = a / q;
    // The shop's discount as an amount; without one, a unit price that divides.
    if amount_discounts && !negative && (s != a || !is_exact(unit, 2)) {
        return row(q, price, RowDiscount::Amount(d));
    }
    if is_exact(unit, 2) {
        return row(q, unit, RowDiscount::None);
    }
    if is_exact(unit, PRICE_DECIMALS) {
        return row(q, unit.normalize(), RowDiscount::None);
    }
    row(Decimal::ONE, a, RowDiscount::None)
}

/// What the document must come to: the shop's total and VAT per percent.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Target {
    pub total: Decimal,
    pub vat: BTreeMap<Decimal, Decimal>,
}

/// One correction row: its rate and its value on the document's basis (net in `N`
/// mode, gross in `D` mode).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Correction {
    pub rate: VatRateRef,
    pub value: Decimal,
}

/// Minimax's VAT of one row of `value` at `p` % (docs/minimax-api.md), and the row's gross.
pub(crate) fn row_vat_gross(value: Decimal, p: Decimal, gross_mode: bool) -> (Decimal, Decimal) {
    let value = round2(value);
    if gross_mode {
        let vat = round2(value - value / (Decimal::ONE + p / HUNDRED));
        (vat, value)
    } else {
        let vat = round2(value * p / HUNDRED);
        (vat, value + vat)
    }
}

/// The correction rows that make a document with totals `doc` come to `target` exactly.
///
/// Rule (docs/mapping.md, "Correction rows"): for every VAT rate whose VAT differs, one
/// row at that rate whose Minimax VAT is exactly the difference, of the value (among all
/// that give this VAT) that also takes up as much of the total's difference as possible;
/// what is left of the total goes on one row of the main rate when it carries no VAT
/// there, else on one row at 0 % (`zero`). `rates` are the document's rates with how
/// many shop lines each has. Returns the rows, or the problems when a difference is
/// larger than `limit(lines)` allows (not rounding, then, but something the shop and
/// the document disagree on).
pub(crate) fn corrections(
    doc: &DocTotals,
    target: &Target,
    gross_mode: bool,
    rates: &[(VatRateRef, usize)],
    zero: Option<&VatRateRef>,
    limit: &dyn Fn(usize) -> Decimal,
) -> Result<Vec<Correction>, Vec<String>> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let mut left = round2(target.total) - round2(doc.gross);
    let total_lines: usize = rates.iter().map(|(_, n)| n).sum();
    if left.abs() > limit(total_lines) {
        problems.push(format!(
            "total differs by {left}, more than the {} rounding of {total_lines} line(s) explains",
            limit(total_lines)
        ));
    }
    let mut keys: Vec<Decimal> = target
        .vat
        .keys()
        .chain(doc.vat_by_percent.keys())
        .copied()
        .collect();
    keys.sort();
    keys.dedup();
    for p in keys {
        let shop = round2(target.vat.get(&p).copied().unwrap_or_default());
        let have = round2(doc.vat_by_percent.get(&p).copied().unwrap_or_default());
        let dv = shop - have;
        if dv.is_zero() {
            continue;
        }
        let label = if p.is_sign_negative() {
            "VAT of a shop tax line of unknown rate".to_owned()
        } else {
            format!("VAT {p} %")
        };
        let found = rates.iter().find(|(r, _)| pct_key(r.percent) == p);
        let Some((rate, lines)) = found else {
            problems.push(format!(
                "{label}: document {have:.2}, shop {shop:.2} (no line of the order is at this rate)"
            ));
            continue;
        };
        if dv.abs() > limit(*lines) || rate.percent.is_zero() {
            problems.push(format!(
                "{label}: document {have:.2}, shop {shop:.2} (differs by {dv}, more than the {} \
                 rounding of {lines} line(s) explains)",
                limit(*lines)
            ));
            continue;
        }
        match value_for_vat(dv, rate.percent, gross_mode, left) {
            Some((value, gross)) => {
                left -= gross;
                out.push(Correction {
                    rate: rate.clone(),
                    value,
                });
            }
            None => problems.push(format!("{label}: no row value gives a VAT of {dv}")),
        }
    }
    if !left.is_zero() && problems.is_empty() {
        {
            // The main rate takes it when it gives no VAT there (a cent or two), else 0 %.
            let main = rates
                .iter()
                .filter(|(r, _)| !r.percent.is_zero())
                .max_by_key(|(_, n)| *n)
                .map(|(r, _)| r);
            let untaxed = main.and_then(|r| {
                value_for_vat(Decimal::ZERO, r.percent, gross_mode, left)
                    .filter(|(_, g)| *g == left)
                    .map(|(v, _)| (r.clone(), v))
            });
            match untaxed.or_else(|| zero.map(|z| (z.clone(), left))) {
                Some((rate, value)) => out.push(Correction { rate, value }),
                None => problems.push(format!(
                    "total differs by {left}, and the organisation has no 0 % VAT rate for a \
                     rounding row; set settings.vat_rate_codes (e.g. \"0\" = \"O\")"
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A row value (cents) whose Minimax VAT at `p` % is `vat`, with the gross closest to
/// `want`; `(value, gross)`.
fn value_for_vat(
    vat: Decimal,
    p: Decimal,
    gross_mode: bool,
    want: Decimal,
) -> Option<(Decimal, Decimal)> {
    if p.is_zero() {
        return vat.is_zero().then_some((want, want));
    }
    let cent = Decimal::new(1, 2);
    // The VAT of a row is about value·p/(100+p) (gross) or value·p/100 (net).
    let ideal = if gross_mode {
        vat * (HUNDRED + p) / p
    } else {
        vat * HUNDRED / p
    };
    let span = ((HUNDRED + p) / p).ceil() + Decimal::TWO;
    let mut best: Option<(Decimal, Decimal)> = None;
    let start = round2(ideal) - span * cent;
    let steps = (span * Decimal::TWO).to_i64().unwrap_or(0);
    for i in 0..=steps {
        let v = start + Decimal::from(i) * cent;
        let (got, gross) = row_vat_gross(v, p, gross_mode);
        if got != vat {
            continue;
        }
        let better = match best {
            None => true,
            Some((_, g)) => (gross - want).abs() < (g - want).abs(),
        };
        if better {
            best = Some((v, gross));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn price_row_is_one_exact_row() {
        let cases = [
            // subtotal, total, qty, amount discounts
            (dec!(6.00), dec!(6.00), dec!(2), true),
            (dec!(199.00), dec!(181.09), dec!(1), true),
            (dec!(199.00), dec!(195.66), dec!(1), true),
            (dec!(50.00), dec!(30.00), dec!(2), true),
            (dec!(10.00), dec!(10.00), dec!(3), true),
            (dec!(21.15), dec!(21.15), dec!(2), true),
            (dec!(10.00), dec!(9.99), dec!(3), true),
            (dec!(10.00), dec!(0.00), dec!(1.5), true),
            (dec!(10.00), dec!(7.00), dec!(3), false),
            (dec!(-5.00), dec!(-5.00), dec!(1), true),
            (dec!(-21.15), dec!(-21.15), dec!(-2), false),
            (dec!(7.77), dec!(7.77), dec!(1.5), false),
        ];
        for (s, t, q, amt) in cases {
            let r = price_row(s, t, q, amt);
            assert_eq!(r.amount(), t, "{s} {t} {q} {amt}: {r:?}");
            assert!(is_exact(r.price, PRICE_DECIMALS), "{r:?}");
            if !amt {
                assert!(!matches!(r.discount, RowDiscount::Amount(_)), "{r:?}");
            }
        }
    }

    #[test]
    fn a_line_that_does_not_divide_keeps_its_quantity() {
        // 2 × 10.575: one row of 2 at 10.58 less 0.01, not 10.57 + 10.58.
        let r = price_row(dec!(21.15), dec!(21.15), dec!(2), true);
        assert_eq!(
            (r.quantity, r.price, r.discount),
            (dec!(2), dec!(10.58), RowDiscount::Amount(dec!(0.01)))
        );
        let r = price_row(dec!(199.00), dec!(181.09), dec!(1), true);
        assert_eq!(r.discount, RowDiscount::Percent(dec!(9)));
    }

    #[test]
    fn corrections_carry_the_vat_difference_at_its_rate() {
        let s = VatRateRef {
            id: 1,
            code: "S".into(),
            percent: dec!(22),
        };
        let zero = VatRateRef {
            id: 2,
            code: "O".into(),
            percent: dec!(0),
        };
        let doc = DocTotals {
            gross: dec!(100.00),
            vat_by_percent: [(dec!(22), dec!(18.03))].into(),
            ..DocTotals::default()
        };
        let target = Target {
            total: dec!(100.01),
            vat: [(dec!(22), dec!(18.04))].into(),
        };
        for gross_mode in [true, false] {
            let rows = corrections(
                &doc,
                &target,
                gross_mode,
                &[(s.clone(), 3)],
                Some(&zero),
                &|n| Decimal::new(5, 3) * Decimal::from(n) + Decimal::new(1, 2),
            )
            .unwrap();
            let vat: Decimal = rows
                .iter()
                .map(|c| row_vat_gross(c.value, c.rate.percent, gross_mode).0)
                .sum();
            let gross: Decimal = rows
                .iter()
                .map(|c| row_vat_gross(c.value, c.rate.percent, gross_mode).1)
                .sum();
            assert_eq!((vat, gross), (dec!(0.01), dec!(0.01)), "{rows:?}");
        }
        // A euro off is not rounding.
        let far = Target {
            total: dec!(101.00),
            vat: [(dec!(22), dec!(19.03))].into(),
        };
        let err =
            corrections(&doc, &far, true, &[(s, 3)], Some(&zero), &|_| dec!(0.03)).unwrap_err();
        assert!(
            err.iter()
                .any(|e| e.contains("VAT 22 %: document 18.03, shop 19.03")),
            "{err:?}"
        );
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
        // docs/minimax-api.md, "Rows and rounding": Price 58.50 at 22 %, prices without VAT → 71.37.
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
