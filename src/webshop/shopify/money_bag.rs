//! The money bag an order's amounts are read from (`presentment_money` or `shop_money`,
//! else the plain fields), and the tax lines and discount allocations read through it.

use rust_decimal::Decimal;

use crate::webshop::event::LineTax;
use crate::webshop::money::{checked_mul, checked_sum};
use crate::webshop::reader::Obj;
use crate::webshop::{BookingCurrency, ParseSettings, WebshopError};

/// The money bag amounts are read from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Money {
    pub(super) bag: &'static str,
}

impl Money {
    pub(super) fn of(settings: &ParseSettings) -> Money {
        Money {
            bag: match settings.booking_currency {
                BookingCurrency::Customer => "presentment_money",
                BookingCurrency::Shop => "shop_money",
            },
        }
    }

    /// `key_set.<bag>.amount` when the set is there, else `key` (which Shopify gives in
    /// the shop currency, the same as presentment for single-currency orders).
    pub(super) fn get(self, o: &Obj<'_>, key: &str) -> Result<Option<Decimal>, WebshopError> {
        bag_amount(o, key, self.bag)?.map_or_else(|| o.opt_money(key), |a| Ok(Some(a)))
    }

    pub(super) fn req(self, o: &Obj<'_>, key: &str) -> Result<Decimal, WebshopError> {
        self.get(o, key)?.ok_or_else(|| o.missing(key))
    }

    pub(super) fn currency(self, o: &Obj<'_>, key: &str) -> Result<Option<String>, WebshopError> {
        bag_currency(o, key, self.bag)
    }
}

pub(super) fn bag_amount(
    o: &Obj<'_>,
    key: &str,
    bag: &str,
) -> Result<Option<Decimal>, WebshopError> {
    match o.opt_obj(&format!("{key}_set"))? {
        Some(set) => match set.opt_obj(bag)? {
            Some(m) => m.opt_money("amount"),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

pub(super) fn bag_currency(
    o: &Obj<'_>,
    key: &str,
    bag: &str,
) -> Result<Option<String>, WebshopError> {
    match o.opt_obj(&format!("{key}_set"))? {
        Some(set) => match set.opt_obj(bag)? {
            Some(m) => m.opt_text("currency_code"),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

/// `tax_lines[]` of a line or shipping line: `{title, rate (fraction), price}`.
pub(super) fn taxes(o: &Obj<'_>, m: Money) -> Result<Vec<LineTax>, WebshopError> {
    let mut out = Vec::new();
    for t in o.objs("tax_lines")? {
        out.push(LineTax {
            rate_id: None,
            label: t.opt_text("title")?,
            rate_percent: percent(&t)?,
            amount: m.get(&t, "price")?.unwrap_or_default(),
            subtotal_amount: None,
        });
    }
    Ok(out)
}

/// Shopify rates are fractions (`0.06`); the model uses percent (`6`).
pub(super) fn percent(t: &Obj<'_>) -> Result<Option<Decimal>, WebshopError> {
    match t.opt_money("rate")? {
        Some(rate) => Ok(Some(
            checked_mul(rate, Decimal::ONE_HUNDRED, &t.path("rate"))?.normalize(),
        )),
        None => Ok(None),
    }
}

pub(super) fn allocations(o: &Obj<'_>, m: Money) -> Result<Option<Decimal>, WebshopError> {
    if !o.has("discount_allocations") {
        return Ok(None);
    }
    let mut amounts = Vec::new();
    for a in o.objs("discount_allocations")? {
        amounts.push(m.req(&a, "amount")?);
    }
    checked_sum(amounts, &o.path("discount_allocations")).map(Some)
}
