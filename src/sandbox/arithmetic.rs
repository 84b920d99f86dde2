//! The sandbox's document arithmetic: how Minimax turns an issued invoice's rows into
//! row values, VAT and the invoice value. Written from docs/minimax-api.md, "Rows and
//! rounding" (the working
//! assumption, since Minimax publishes no rounding rules) and on purpose **not** from
//! `src/mapping/`: tests that book through the service and read the sandbox's figures
//! then check the mapping against this reading of the rules, not against itself.
//!
//! The rules:
//! - Unit prices are kept to [`PRICE_DECIMALS`] decimals (Swagger types `Price` and
//!   `PriceWithVAT` as doubles; the official samples send 4 decimals, e.g. 10.6475).
//! - The row's basis price is `PriceWithVAT` when `PricesOnInvoice = D`, else `Price`
//!   (the other one, if missing, is derived from it with the rate).
//! - Row value = (price · quantity · (1 − DiscountPercent/100) − Discount) · (1 −
//!   Rabate/100), rounded to cents half away from zero: the gross in `D` mode (VAT =
//!   round2(gross − gross / (1 + p/100)), net = gross − VAT), the net in `N` mode
//!   (VAT = round2(net · p/100), gross = net + VAT).
//! - `p` is the percent of the row's VAT rate in the organisation, never the
//!   `VATPercent` the client sent.
//! - `InvoiceValue` = Σ row gross. Credit notes are invoices with negative quantities;
//!   rounding away from zero makes a credit note the exact mirror of its invoice.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use super::model::{dec, fk_id, get, get_str, round2};

/// Decimals Minimax is taken to keep on `Price` and `PriceWithVAT`.
pub const PRICE_DECIMALS: u32 = 4;

const HUNDRED: Decimal = Decimal::ONE_HUNDRED;

fn round_price(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(PRICE_DECIMALS, RoundingStrategy::MidpointAwayFromZero)
}

/// One row's values as Minimax computes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowValues {
    pub price: Decimal,
    pub price_with_vat: Decimal,
    pub net: Decimal,
    pub vat: Decimal,
    pub gross: Decimal,
}

/// The inputs of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowInput {
    pub price: Option<Decimal>,
    pub price_with_vat: Option<Decimal>,
    pub quantity: Decimal,
    pub discount_percent: Decimal,
    pub discount: Decimal,
}

/// A row's values at `percent`, on the invoice's basis (`prices_include_vat`: `D`)
/// after the header discount `rabate` (percent). `None` without any price.
pub fn row_values(
    row: &RowInput,
    percent: Decimal,
    prices_include_vat: bool,
    rabate: Decimal,
) -> Option<RowValues> {
    let factor = Decimal::ONE + percent / HUNDRED;
    let price = row.price.map(round_price);
    let price_with_vat = row.price_with_vat.map(round_price);
    let basis = if prices_include_vat {
        price_with_vat.or_else(|| price.map(|p| round_price(p * factor)))?
    } else {
        price.or_else(|| price_with_vat.map(|p| round_price(p / factor)))?
    };
    let value = (basis * row.quantity * (HUNDRED - row.discount_percent) / HUNDRED - row.discount)
        * (HUNDRED - rabate)
        / HUNDRED;
    let (net, vat, gross) = if prices_include_vat {
        let gross = round2(value);
        let vat = round2(gross - gross / factor);
        (gross - vat, vat, gross)
    } else {
        let net = round2(value);
        let vat = round2(net * percent / HUNDRED);
        (net, vat, net + vat)
    };
    Some(RowValues {
        price: price.unwrap_or_else(|| round_price(basis / factor)),
        price_with_vat: price_with_vat.unwrap_or_else(|| round_price(basis * factor)),
        net,
        vat,
        gross,
    })
}

/// An invoice's totals, with VAT per rate percent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocumentTotals {
    pub net: Decimal,
    pub vat: Decimal,
    pub gross: Decimal,
    /// VAT per percent (trailing zeros removed: `22`, `9.5`).
    pub vat_by_percent: BTreeMap<Decimal, Decimal>,
}

/// The totals of an issued invoice body (Minimax field names) as the sandbox computes
/// them; `percent_of` gives the percent of a `VatRate` id. Rows whose rate or price is
/// unknown count as zero (the create validates them first).
pub fn document_totals(
    invoice: &Value,
    percent_of: impl Fn(i64) -> Option<Decimal>,
) -> DocumentTotals {
    let prices_include_vat = get_str(invoice, "PricesOnInvoice") == Some("D");
    let rabate = dec(get(invoice, "Rabate")).unwrap_or_default();
    let mut t = DocumentTotals::default();
    let rows = get(invoice, "IssuedInvoiceRows")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for row in rows {
        let Some(percent) = fk_id(row, "VatRate").and_then(&percent_of) else {
            continue;
        };
        let Some(v) = row_values(&row_input(row), percent, prices_include_vat, rabate) else {
            continue;
        };
        t.net += v.net;
        t.vat += v.vat;
        t.gross += v.gross;
        *t.vat_by_percent.entry(percent.normalize()).or_default() += v.vat;
    }
    t
}

/// The inputs of a row body.
pub(super) fn row_input(row: &Value) -> RowInput {
    RowInput {
        price: dec(get(row, "Price")),
        price_with_vat: dec(get(row, "PriceWithVAT")),
        quantity: dec(get(row, "Quantity")).unwrap_or_default(),
        discount_percent: dec(get(row, "DiscountPercent")).unwrap_or_default(),
        discount: dec(get(row, "Discount")).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn the_logged_invoice_and_its_credit_note() {
        // docs/minimax-api.md, "Rows and rounding": Price 58.50 at 22 %, `N` → 71.37; negated, −71.37.
        let inv = json!({"PricesOnInvoice": "N", "IssuedInvoiceRows": [
            {"Price": 58.5, "Quantity": 1, "VatRate": {"ID": 1}}]});
        let t = document_totals(&inv, |_| Some(dec!(22)));
        assert_eq!(
            (t.net, t.vat, t.gross),
            (dec!(58.50), dec!(12.87), dec!(71.37))
        );
        let cn = json!({"PricesOnInvoice": "N", "IssuedInvoiceRows": [
            {"Price": 58.5, "Quantity": -1, "VatRate": {"ID": 1}}]});
        let t = document_totals(&cn, |_| Some(dec!(22)));
        assert_eq!(t.gross, dec!(-71.37));
    }

    #[test]
    fn gross_rows_round_the_gross_then_take_the_vat_out() {
        let row = RowInput {
            price_with_vat: Some(dec!(12.99)),
            quantity: dec!(1),
            discount_percent: dec!(10),
            ..RowInput::default()
        };
        let v = row_values(&row, dec!(22), true, Decimal::ZERO).unwrap();
        // 12.99 · 0.9 = 11.691 → 11.69; VAT 11.69 − 11.69/1.22 = 2.108… → 2.11.
        assert_eq!(
            (v.gross, v.vat, v.net),
            (dec!(11.69), dec!(2.11), dec!(9.58))
        );
    }

    #[test]
    fn prices_keep_four_decimals() {
        let row = RowInput {
            price: Some(dec!(3.333333)),
            quantity: dec!(3),
            ..RowInput::default()
        };
        let v = row_values(&row, dec!(22), false, Decimal::ZERO).unwrap();
        assert_eq!((v.price, v.net), (dec!(3.3333), dec!(10.00)));
    }
}
