//! The order's lines, shipping lines and fees as document lines: which Minimax item and
//! VAT rate each one uses, and its amounts on the document's price basis. Also the
//! payment method. Shared by invoices, received orders and item needs, so all three agree.
//!
//! Guarantees: a line's VAT rate is one of the organisation's (`OrgData::vat_rates`),
//! chosen by `settings.vat_rate_codes` or by percent; a rate that cannot be matched is an
//! error naming the percent and the line, never a silent default.

use rust_decimal::prelude::*;

use crate::webshop::{LineTax, Order, TaxLine};

use super::amounts::{pct_key, ratio_percent, round2};
use super::settings::{BookingSettings, ItemStrategy};
use super::{MappingError, OrgData, PaymentMethodRef, VatRateRef};

/// Longest Minimax item code (docs/minimax-api.md, "Rows and rounding").
pub(crate) const MAX_ITEM_CODE: usize = 30;
/// Unit of measurement on rows (≤ 3 characters, docs/minimax-api.md).
pub(crate) const UNIT: &str = "kos";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    Product,
    Shipping,
    Fee,
    /// A correction row (docs/mapping.md, "Correction rows"), not a shop line.
    Correction,
}

/// One order line as a document line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlannedLine {
    pub kind: LineKind,
    pub shop_line_id: Option<String>,
    /// Text for the row (`ItemName`).
    pub name: String,
    pub item_code: String,
    /// Name, type and whether a missing item is created, for [`super::ItemNeed`].
    pub item_name: String,
    pub item_type: &'static str,
    pub create_if_missing: bool,
    pub rate: VatRateRef,
    pub quantity: Decimal,
    /// Amount before discounts, on the document's basis (see [`Basis`]).
    pub subtotal: Decimal,
    /// Amount after discounts, on the document's basis.
    pub total: Decimal,
    /// Tax of the line as the shop reported it.
    pub tax: Decimal,
}

/// What a line looks like for VAT purposes.
pub(crate) struct TaxFacts<'a> {
    pub name: &'a str,
    /// The percent the shop states for the line, if any.
    pub explicit: Option<Decimal>,
    pub taxes: &'a [LineTax],
    pub total: Decimal,
    pub tax: Decimal,
    pub subtotal: Decimal,
    pub subtotal_tax: Option<Decimal>,
}

/// The Minimax item of a product line per the item strategy: its code, name, type and
/// whether it may be created. One rule for invoices and credit notes.
pub(crate) fn item_for(
    settings: &BookingSettings,
    rate: &VatRateRef,
    sku: Option<&str>,
    product_id: Option<&String>,
    name: &str,
) -> Result<(String, String, &'static str, bool), MappingError> {
    if settings.item_strategy == ItemStrategy::GenericPerVatRate {
        return Ok((
            format!("{}{}", settings.generic_item_prefix, rate.code),
            format!(
                "Web sales, VAT {} ({} %)",
                rate.code,
                rate.percent.normalize()
            ),
            "S",
            true,
        ));
    }
    let create = settings.item_strategy == ItemStrategy::BySkuCreateMissing;
    let missing = || MappingError::MissingSku {
        line: name.to_owned(),
    };
    let code = match sku.map(str::trim).filter(|s| !s.is_empty()) {
        Some(sku) => sku.to_owned(),
        // Creating items anyway: a stable code from the shop's product id.
        None if create => format!("WEB-P{}", product_id.ok_or_else(missing)?),
        None => return Err(missing()),
    };
    if code.chars().count() > MAX_ITEM_CODE {
        return Err(MappingError::Unsupported(format!(
            "SKU '{code}' of line '{name}' is longer than the {MAX_ITEM_CODE} \
             characters of a Minimax item code"
        )));
    }
    Ok((code, name.to_owned(), "B", create))
}

/// The price basis of a document: the shop lines' amounts with or without tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    Net,
    Gross,
}

/// The basis an invoice for `order` uses: gross (`PricesOnInvoice = D`) when the shop's
/// prices include tax — Shopify `taxes_included`, WooCommerce `prices_include_tax` — since
/// the shop then took each line's tax out of its gross amount and only Minimax's
/// gross rule reproduces it; net otherwise.
pub(crate) fn invoice_basis(order: &Order) -> Basis {
    if order.amounts_include_tax || order.prices_include_tax {
        Basis::Gross
    } else {
        Basis::Net
    }
}

/// A shop line, shipping line or fee before it is planned: amounts as the order
/// reports them (gross when `amounts_include_tax`).
struct ShopItem<'a> {
    kind: LineKind,
    shop_line_id: Option<String>,
    name: String,
    sku: Option<&'a str>,
    product: Option<&'a String>,
    quantity: Decimal,
    explicit: Option<Decimal>,
    taxes: &'a [LineTax],
    subtotal: Decimal,
    subtotal_tax: Option<Decimal>,
    total: Decimal,
    tax: Decimal,
}

/// Plans every line, shipping line and fee of the order on `basis` (zero shipping and
/// fee lines are left out: they change nothing and only clutter the document). A line
/// taxed at several VAT rates (a WooCommerce fee or negative fee whose tax was split
/// over tax classes, a Shopify line with several tax lines) whose summed percent is no
/// rate of the organisation becomes one line per rate, see [`split_by_rate`].
pub(crate) fn plan_lines(
    order: &Order,
    settings: &BookingSettings,
    org: &OrgData,
    basis: Basis,
) -> Result<Vec<PlannedLine>, MappingError> {
    let mut items = Vec::new();
    for l in &order.lines {
        items.push(ShopItem {
            kind: LineKind::Product,
            shop_line_id: l.shop_line_id.clone(),
            name: clean_name(&l.name),
            sku: l.sku.as_deref(),
            product: l.variant_id.as_ref().or(l.product_id.as_ref()),
            quantity: l.quantity,
            explicit: l.tax_rate_percent,
            taxes: &l.taxes,
            subtotal: l.subtotal,
            subtotal_tax: l.subtotal_tax,
            total: l.total,
            tax: l.total_tax,
        });
    }
    for s in &order.shipping_lines {
        if s.total.is_zero() && s.subtotal.is_zero() && s.total_tax.is_zero() {
            continue;
        }
        items.push(ShopItem {
            kind: LineKind::Shipping,
            shop_line_id: s.shop_line_id.clone(),
            name: clean_name(&s.title),
            sku: None,
            product: None,
            quantity: Decimal::ONE,
            explicit: s.tax_rate_percent,
            taxes: &s.taxes,
            subtotal: s.subtotal,
            subtotal_tax: None,
            total: s.total,
            tax: s.total_tax,
        });
    }
    for f in &order.fees {
        if f.total.is_zero() && f.total_tax.is_zero() {
            continue;
        }
        items.push(ShopItem {
            kind: LineKind::Fee,
            shop_line_id: f.shop_line_id.clone(),
            name: clean_name(&f.name),
            sku: None,
            product: None,
            quantity: Decimal::ONE,
            explicit: f.tax_rate_percent,
            taxes: &f.taxes,
            subtotal: f.total,
            subtotal_tax: None,
            total: f.total,
            tax: f.total_tax,
        });
    }
    let mut out = Vec::new();
    for item in items {
        for (item, rate) in split_by_rate(item, order, settings, org)? {
            let (item_code, item_name, item_type, create) = match item.kind {
                LineKind::Product => item_for(settings, &rate, item.sku, item.product, &item.name)?,
                LineKind::Shipping => (
                    settings.shipping_item_code.clone(),
                    "Shipping".into(),
                    "S",
                    true,
                ),
                LineKind::Fee | LineKind::Correction => {
                    (settings.fee_item_code.clone(), "Fees".into(), "S", true)
                }
            };
            let (subtotal, total) = on_basis(&item, &rate, order.amounts_include_tax, basis);
            out.push(PlannedLine {
                kind: item.kind,
                shop_line_id: item.shop_line_id,
                name: item.name,
                item_code,
                item_name,
                item_type,
                create_if_missing: create,
                rate,
                quantity: item.quantity,
                subtotal,
                total,
                tax: item.tax,
            });
        }
    }
    Ok(out)
}

/// A shop item's subtotal and total on the document's basis. The gross of a net line is
/// its net plus the shop's (rounded) tax — what the customer was charged for it.
fn on_basis(
    item: &ShopItem<'_>,
    rate: &VatRateRef,
    gross_in: bool,
    basis: Basis,
) -> (Decimal, Decimal) {
    let tax = round2(item.tax);
    let sub_tax = item.subtotal_tax.map(round2).unwrap_or_else(|| {
        if item.total == item.subtotal {
            tax
        } else {
            let base = if gross_in {
                item.subtotal - item.subtotal / (Decimal::ONE + rate.percent / Decimal::ONE_HUNDRED)
            } else {
                item.subtotal * rate.percent / Decimal::ONE_HUNDRED
            };
            round2(base)
        }
    });
    match (gross_in, basis) {
        (true, Basis::Gross) | (false, Basis::Net) => (item.subtotal, item.total),
        (false, Basis::Gross) => (item.subtotal + sub_tax, item.total + tax),
        (true, Basis::Net) => (item.subtotal - sub_tax, item.total - tax),
    }
}

/// The percent of one of a line's taxes: its own, else the order tax line's of its id.
fn tax_percent(t: &LineTax, tax_lines: &[TaxLine]) -> Option<Decimal> {
    t.rate_percent.or_else(|| {
        tax_lines
            .iter()
            .find(|tl| tl.rate_id.is_some() && tl.rate_id == t.rate_id)
            .and_then(|tl| tl.rate_percent)
    })
}

/// One item per VAT rate with that rate. An item whose non-zero taxes are of one
/// percent, or whose summed percent is a rate of the organisation (stacked taxes on one
/// base), stays whole. Otherwise each rate's share of the net is the whole-cent amount
/// whose tax at that rate, rounded, is the shop's tax of the rate (closest to tax ÷
/// rate); a rest of more than a cent per rate is an untaxed (0 %) share, a smaller
/// one goes to the share with the most tax.
fn split_by_rate<'a>(
    item: ShopItem<'a>,
    order: &Order,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<Vec<(ShopItem<'a>, VatRateRef)>, MappingError> {
    let parts: Vec<(Decimal, Decimal)> = item
        .taxes
        .iter()
        .filter(|t| !t.amount.is_zero())
        .map(|t| tax_percent(t, &order.tax_lines).map(|p| (pct_key(p), t.amount)))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default();
    let mut percents: Vec<Decimal> = parts.iter().map(|(p, _)| *p).collect();
    percents.sort();
    percents.dedup();
    let whole = |item: ShopItem<'a>| -> Result<Vec<(ShopItem<'a>, VatRateRef)>, MappingError> {
        let rate = line_rate(
            &TaxFacts {
                name: &item.name,
                explicit: item.explicit,
                taxes: item.taxes,
                total: item.total,
                tax: item.tax,
                subtotal: item.subtotal,
                subtotal_tax: item.subtotal_tax,
            },
            order.amounts_include_tax,
            &order.tax_lines,
            settings,
            org,
        )?;
        Ok(vec![(item, rate)])
    };
    if percents.len() < 2 {
        return whole(item);
    }
    let summed: Decimal = percents.iter().sum();
    if resolve_rate(summed, &item.name, settings, org).is_ok() {
        return whole(item);
    }
    let net = if order.amounts_include_tax {
        item.total - item.tax
    } else {
        item.total
    };
    let mut shares: Vec<(Decimal, Decimal, Decimal)> = Vec::new(); // percent, tax, net share
    for p in &percents {
        let tax: Decimal = parts.iter().filter(|(q, _)| q == p).map(|(_, t)| *t).sum();
        shares.push((*p, round2(tax), share_for_tax(round2(tax), *p)));
    }
    let rest = net - shares.iter().map(|(_, _, n)| *n).sum::<Decimal>();
    let cent = Decimal::new(1, 2);
    let mut untaxed = None;
    if rest.abs() <= cent * Decimal::from(shares.len()) {
        if let Some(big) = shares.iter_mut().max_by_key(|(_, t, _)| t.abs()) {
            big.2 += rest;
        }
    } else {
        untaxed = Some(rest);
    }
    let mut out = Vec::new();
    let gross_in = order.amounts_include_tax;
    let mut push = |p: Decimal, tax: Decimal, share: Decimal| -> Result<(), MappingError> {
        let name = clean_name(&format!("{} (VAT {} %)", item.name, p.normalize()));
        let rate = resolve_rate(p, &name, settings, org)?;
        let amount = if gross_in { share + tax } else { share };
        out.push((
            ShopItem {
                kind: item.kind,
                shop_line_id: item.shop_line_id.clone(),
                name,
                sku: item.sku,
                product: item.product,
                quantity: Decimal::ONE,
                explicit: Some(p),
                taxes: &[],
                subtotal: amount,
                subtotal_tax: Some(tax),
                total: amount,
                tax,
            },
            rate,
        ));
        Ok(())
    };
    for (p, tax, share) in shares {
        push(p, tax, share)?;
    }
    if let Some(rest) = untaxed {
        push(Decimal::ZERO, Decimal::ZERO, rest)?;
    }
    Ok(out)
}

/// The whole-cent net whose tax at `p` %, rounded to cents, is `tax`, closest to the
/// exact tax ÷ rate.
fn share_for_tax(tax: Decimal, p: Decimal) -> Decimal {
    if p.is_zero() {
        return Decimal::ZERO;
    }
    let ideal = tax * Decimal::ONE_HUNDRED / p;
    let centre = round2(ideal);
    let cent = Decimal::new(1, 2);
    (0..=8)
        .map(|i| {
            let k = Decimal::from((i + 1) / 2) * cent;
            if i % 2 == 0 {
                centre + k
            } else {
                centre - k
            }
        })
        .find(|n| round2(n * p / Decimal::ONE_HUNDRED) == tax)
        .unwrap_or(centre)
}

/// The percent the shop states for a line: its own rate, else the sum of its non-zero
/// taxes' rates (from the tax itself or the order tax line with the same rate id).
fn explicit_percent(facts: &TaxFacts<'_>, tax_lines: &[TaxLine]) -> Option<Decimal> {
    if facts.explicit.is_some() {
        return facts.explicit;
    }
    let taxes: Vec<&LineTax> = facts.taxes.iter().filter(|t| !t.amount.is_zero()).collect();
    if taxes.is_empty() {
        return None;
    }
    let mut sum = Decimal::ZERO;
    for t in taxes {
        let p = t.rate_percent.or_else(|| {
            tax_lines
                .iter()
                .find(|tl| tl.rate_id.is_some() && tl.rate_id == t.rate_id)
                .and_then(|tl| tl.rate_percent)
        })?;
        sum += p;
    }
    Some(sum)
}

/// The Minimax VAT rate of a line: a line without tax is at 0 %; a stated percent is
/// used as is; otherwise the organisation rate (or configured percent) whose tax on the
/// line's amount, rounded to cents, is the shop's tax, closest to tax ÷ amount.
pub(crate) fn line_rate(
    facts: &TaxFacts<'_>,
    gross: bool,
    tax_lines: &[TaxLine],
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<VatRateRef, MappingError> {
    if !facts.total.is_zero() && facts.tax.is_zero() {
        return resolve_rate(Decimal::ZERO, facts.name, settings, org);
    }
    if let Some(p) = explicit_percent(facts, tax_lines) {
        return resolve_rate(p, facts.name, settings, org);
    }
    let (amount, tax) = if facts.total.is_zero() {
        (facts.subtotal, facts.subtotal_tax.unwrap_or_default())
    } else {
        (facts.total, facts.tax)
    };
    if amount.is_zero() || tax.is_zero() {
        return resolve_rate(Decimal::ZERO, facts.name, settings, org);
    }
    let Some(ratio) = ratio_percent(tax, amount, gross) else {
        return resolve_rate(Decimal::ZERO, facts.name, settings, org);
    };
    let configured = settings
        .vat_rate_codes
        .keys()
        .filter_map(|k| k.trim().parse::<Decimal>().ok());
    let candidates = org.vat_rates.iter().map(|r| r.percent).chain(configured);
    let want = round2(tax);
    let best = candidates
        .filter(|p| {
            let t = if gross {
                round2(amount - amount / (Decimal::ONE + p / Decimal::ONE_HUNDRED))
            } else {
                round2(amount * p / Decimal::ONE_HUNDRED)
            };
            t == want
        })
        .min_by_key(|p| (p - ratio).abs());
    match best {
        Some(p) => resolve_rate(p, facts.name, settings, org),
        None => Err(MappingError::UnmappedVatRate {
            percent: ratio,
            line: facts.name.to_owned(),
        }),
    }
}

fn same_percent(a: Decimal, b: Decimal) -> bool {
    (a - b).abs() < Decimal::new(1, 3)
}

/// A percent → the organisation's VAT rate: `settings.vat_rate_codes` first, else the
/// first organisation rate of that percent.
pub(crate) fn resolve_rate(
    percent: Decimal,
    line: &str,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<VatRateRef, MappingError> {
    let configured = settings.vat_rate_codes.iter().find(|(k, _)| {
        k.trim()
            .parse::<Decimal>()
            .is_ok_and(|k| same_percent(k, percent))
    });
    if let Some((_, code)) = configured {
        return org
            .vat_rates
            .iter()
            .find(|r| r.code.eq_ignore_ascii_case(code.trim()))
            .cloned()
            .ok_or_else(|| {
                MappingError::Unsupported(format!(
                    "settings.vat_rate_codes maps {} % to '{code}', but the organisation has \
                     no VAT rate '{code}' valid on the document date (line '{line}')",
                    percent.normalize()
                ))
            });
    }
    org.vat_rates
        .iter()
        .find(|r| same_percent(r.percent, percent))
        .cloned()
        .ok_or_else(|| MappingError::UnmappedVatRate {
            percent: pct_key(percent),
            line: line.to_owned(),
        })
}

/// The Minimax payment method of the order: `settings.payment_methods` by gateway id
/// (or title), else an organisation method named like the gateway, else
/// `settings.default_payment_method`. `None` when the order names no gateway and no
/// default is set (the document then has no payment row). A configured method may be
/// given by its name (as the user sees it, localised), its Minimax code or its id.
pub(crate) fn payment_method(
    order: &Order,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<Option<PaymentMethodRef>, MappingError> {
    let by_name = |name: &str| {
        org.payment_methods
            .iter()
            .find(|m| m.name.trim().eq_ignore_ascii_case(name.trim()))
            .cloned()
    };
    // Only configured values are matched by code or id: a gateway id such as "11" must
    // not pick method 11 by accident.
    let configured = |value: &str| {
        let v = value.trim();
        by_name(v)
            .or_else(|| {
                org.payment_methods
                    .iter()
                    .find(|m| {
                        m.code
                            .as_deref()
                            .is_some_and(|c| c.trim().eq_ignore_ascii_case(v))
                    })
                    .cloned()
            })
            .or_else(|| {
                let id: i64 = v.parse().ok()?;
                org.payment_methods.iter().find(|m| m.id == id).cloned()
            })
    };
    let pm = order.payment_method.as_ref();
    let keys: Vec<&str> = pm
        .into_iter()
        .flat_map(|p| [p.id.as_deref(), p.title.as_deref()])
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect();
    for key in &keys {
        if let Some(name) = settings.payment_methods.get(*key) {
            return configured(name).map(Some).ok_or_else(|| {
                MappingError::Unsupported(format!(
                    "settings.payment_methods maps gateway '{key}' to '{name}', but the \
                     organisation has no payment method with that name, code or id"
                ))
            });
        }
    }
    if let Some(found) = keys.iter().find_map(|k| by_name(k)) {
        return Ok(Some(found));
    }
    if let Some(default) = settings.default_payment_method.as_deref() {
        return configured(default).map(Some).ok_or_else(|| {
            MappingError::Unsupported(format!(
                "settings.default_payment_method is '{default}', but the organisation has no \
                 payment method with that name, code or id"
            ))
        });
    }
    match keys.first() {
        Some(gateway) => Err(MappingError::UnmappedPaymentMethod {
            gateway: (*gateway).to_owned(),
        }),
        None => Ok(None),
    }
}

/// True when the shop reports the order as paid.
pub(crate) fn is_paid(order: &Order) -> bool {
    order.paid_at.is_some()
        || matches!(
            order.status.to_ascii_lowercase().as_str(),
            "processing" | "completed" | "paid" | "partially_refunded" | "refunded"
        )
}

/// A shop text as a Minimax row name: common HTML entities decoded (WooCommerce sends
/// `&ndash;`), whitespace trimmed, at most 250 characters.
pub(crate) fn clean_name(raw: &str) -> String {
    const ENTITIES: [(&str, &str); 11] = [
        ("&ndash;", "–"),
        ("&#8211;", "–"),
        ("&mdash;", "—"),
        ("&#8212;", "—"),
        ("&quot;", "\""),
        ("&#039;", "'"),
        ("&#39;", "'"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&nbsp;", " "),
        ("&amp;", "&"),
    ];
    let mut s = raw.to_owned();
    for (from, to) in ENTITIES {
        s = s.replace(from, to);
    }
    truncate(s.trim(), 250)
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    fn org() -> OrgData {
        OrgData {
            vat_rates: vec![
                VatRateRef {
                    id: 1,
                    code: "S".into(),
                    percent: dec!(22),
                },
                VatRateRef {
                    id: 2,
                    code: "N".into(),
                    percent: dec!(9.5),
                },
            ],
            ..OrgData::default()
        }
    }

    #[test]
    fn names_are_decoded_and_trimmed() {
        assert_eq!(
            clean_name(" Ship Your Idea &ndash; Color: Black &amp; White "),
            "Ship Your Idea – Color: Black & White"
        );
        assert_eq!(clean_name(&"x".repeat(300)).chars().count(), 250);
    }

    #[test]
    fn percent_matches_with_trailing_zeros_and_overrides() {
        let s = BookingSettings::default();
        assert_eq!(resolve_rate(dec!(9.50), "Tea", &s, &org()).unwrap().id, 2);
        let err = resolve_rate(dec!(8.5), "Tea", &s, &org()).unwrap_err();
        assert_eq!(
            err,
            MappingError::UnmappedVatRate {
                percent: dec!(8.5),
                line: "Tea".into()
            }
        );
        let mut s = BookingSettings::default();
        s.vat_rate_codes.insert("8.5".into(), "n".into());
        assert_eq!(resolve_rate(dec!(8.5), "Tea", &s, &org()).unwrap().id, 2);
    }

    #[test]
    fn derived_rate_prefers_the_rate_that_reproduces_the_tax() {
        // 0.02 on 0.10 looks like 20 %, but only 22 % gives 0.02 after rounding.
        let facts = TaxFacts {
            name: "Pin",
            explicit: None,
            taxes: &[],
            total: dec!(0.10),
            tax: dec!(0.02),
            subtotal: dec!(0.10),
            subtotal_tax: None,
        };
        let r = line_rate(&facts, false, &[], &BookingSettings::default(), &org()).unwrap();
        assert_eq!(r.code, "S");
    }
}
