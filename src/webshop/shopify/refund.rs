//! A refund (`refunds/create` bodies, or an element of an order's `refunds`).

use super::money_bag::Money;
use crate::webshop::event::{Refund, RefundAdjustment, RefundLine, RefundShipping};
use crate::webshop::money::checked_sum;
use crate::webshop::reader::Obj;
use crate::webshop::WebshopError;

/// A refund (the body of `refunds/create`, or an element of an order's `refunds`).
/// `amount` is the sum of successful refund transactions; without transactions, the sum
/// of the itemised refund.
pub(super) fn refund_from(
    root: &Obj<'_>,
    order_id: Option<&str>,
    m: Money,
) -> Result<Refund, WebshopError> {
    let shop_order_id = match root.opt_id("order_id")? {
        Some(id) => id,
        None => order_id
            .map(str::to_owned)
            .ok_or_else(|| root.missing("order_id"))?,
    };

    let mut lines = Vec::new();
    let mut currency = None;
    for l in root.objs("refund_line_items")? {
        let item = l.opt_obj("line_item")?;
        if currency.is_none() {
            currency = m.currency(&l, "subtotal")?;
        }
        lines.push(RefundLine {
            shop_line_id: l.opt_id("line_item_id")?,
            sku: match &item {
                Some(i) => i.opt_text("sku")?,
                None => None,
            },
            name: match &item {
                Some(i) => i.opt_text("name")?,
                None => None,
            },
            quantity: l.req_money("quantity")?,
            subtotal: m.get(&l, "subtotal")?,
            tax: m.get(&l, "total_tax")?,
        });
    }

    let mut shipping = Vec::new();
    for s in root.objs("refund_shipping_lines")? {
        let title = match s.opt_obj("shipping_line")? {
            Some(line) => line.opt_text("title")?,
            None => None,
        };
        shipping.push(RefundShipping {
            shop_line_id: s.opt_id("shipping_line_id")?,
            title,
            amount: m.get(&s, "subtotal_amount")?.unwrap_or_default().abs(),
            tax: m.get(&s, "tax_amount")?.unwrap_or_default().abs(),
        });
    }

    let mut adjustments = Vec::new();
    for a in root.objs("order_adjustments")? {
        adjustments.push(RefundAdjustment {
            kind: a.opt_text("kind")?,
            reason: a.opt_text("reason")?,
            amount: m.req(&a, "amount")?,
            tax: m.get(&a, "tax_amount")?,
        });
    }

    let mut paid_back = Vec::new();
    for t in root.objs("transactions")? {
        let kind = t.opt_text("kind")?;
        let status = t.opt_text("status")?;
        if kind.as_deref() == Some("refund") && matches!(status.as_deref(), None | Some("success"))
        {
            paid_back.push(m.req(&t, "amount")?.abs());
            let c = match m.currency(&t, "amount")? {
                Some(c) => Some(c),
                None => t.opt_text("currency")?,
            };
            if c.is_some() {
                currency = c;
            }
        }
    }
    // The refund's money on either reading of its amounts: tax on top (tax-excluded
    // shops) or contained (taxes_included shops). The transactions say which it is.
    let mut net_parts = Vec::new();
    let mut gross_parts = Vec::new();
    for l in &lines {
        net_parts.extend([l.subtotal.unwrap_or_default(), l.tax.unwrap_or_default()]);
        gross_parts.push(l.subtotal.unwrap_or_default());
    }
    for sh in &shipping {
        net_parts.extend([sh.amount, sh.tax]);
        gross_parts.push(sh.amount);
    }
    for a in &adjustments {
        if a.kind.as_deref() == Some("shipping_refund") && !shipping.is_empty() {
            continue;
        }
        net_parts.extend([-a.amount, -a.tax.unwrap_or_default()]);
        gross_parts.push(-a.amount);
    }
    let on_top = checked_sum(net_parts, "refund_line_items")?;
    let contained = checked_sum(gross_parts, "refund_line_items")?;
    let (amount, amounts_include_tax) = if paid_back.is_empty() {
        (on_top.abs(), None)
    } else {
        let paid = checked_sum(paid_back, "transactions")?;
        let basis = match (on_top == paid, contained == paid) {
            (false, true) => Some(true),
            (true, false) => Some(false),
            _ => None,
        };
        (paid, basis)
    };

    Ok(Refund {
        shop_refund_id: root.opt_id("id")?,
        shop_order_id,
        currency,
        created_at: match root.opt_datetime("processed_at")? {
            Some(t) => Some(t),
            None => root.opt_datetime("created_at")?,
        },
        reason: root.opt_text("note")?,
        amount,
        lines,
        shipping,
        adjustments,
        amounts_include_tax,
    })
}
