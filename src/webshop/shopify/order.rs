//! An order resource (`orders/*` bodies) into the canonical order: lines, shipping,
//! fees, discounts, taxes, payment, the customer and the refunds it carries.

use rust_decimal::Decimal;

use super::customer::{address, customer_from};
use super::money_bag::{allocations, bag_amount, bag_currency, percent, taxes, Money};
use super::refund::refund_from;
use crate::webshop::event::{
    single_rate, Customer, Discount, DiscountKind, Fee, Line, Order, PaymentMethod, ShippingLine,
    TaxLine,
};
use crate::webshop::money::{checked_mul, checked_sub, checked_sum};
use crate::webshop::reader::Obj;
use crate::webshop::{parse_json, ParseSettings, WebshopError};

/// Parses an order resource (the webhook body of `orders/*`, without REST's `{"order": …}`).
pub fn parse_order(body: &[u8]) -> Result<Order, WebshopError> {
    parse_order_with(body, &ParseSettings::default())
}

/// [`parse_order`] with the tenant's parse settings (which money set is booked).
pub fn parse_order_with(body: &[u8], settings: &ParseSettings) -> Result<Order, WebshopError> {
    let json = parse_json(body)?;
    order_from(&Obj::root(&json)?, Money::of(settings))
}

pub(super) fn order_from(root: &Obj<'_>, m: Money) -> Result<Order, WebshopError> {
    let shop_order_id = root.req_id("id")?;
    let currency = match m.currency(root, "total_price")? {
        Some(c) => c,
        None if m.bag == "presentment_money" => match root.opt_text("presentment_currency")? {
            Some(c) => c,
            None => root.req_str("currency")?,
        },
        None => root.req_str("currency")?,
    };
    let shop_currency = match bag_currency(root, "total_price", "shop_money")? {
        Some(c) => Some(c),
        None => root.opt_text("currency")?,
    };
    let exchange_rate = match (
        bag_amount(root, "total_price", "shop_money")?,
        m.get(root, "total_price")?,
    ) {
        (Some(shop), Some(paid)) if !paid.is_zero() => Some((shop / paid).round_dp(6).normalize()),
        _ => None,
    };
    let (shop_currency, exchange_rate) = match shop_currency {
        Some(c) if !c.eq_ignore_ascii_case(&currency) => (Some(c), exchange_rate),
        _ => (None, None),
    };
    let amounts_include_tax = root.opt_bool("taxes_included")?.unwrap_or(false);

    let mut lines = Vec::new();
    for l in root.objs("line_items")? {
        let quantity = l.req_money("quantity")?;
        let unit_price = m.req(&l, "price")?;
        let subtotal = checked_mul(unit_price, quantity, &l.path("price"))?;
        // Allocations are authoritative; `total_discount` may stay 0.00 next to them.
        let discount = match allocations(&l, m)? {
            Some(d) => d,
            None => m.get(&l, "total_discount")?.unwrap_or_default(),
        };
        let taxes = taxes(&l, m)?;
        lines.push(Line {
            shop_line_id: l.opt_id("id")?,
            product_id: l.opt_id("product_id")?,
            variant_id: l.opt_id("variant_id")?,
            sku: l.opt_text("sku")?,
            name: match l.opt_text("name")? {
                Some(n) => n,
                None => l.opt_text("title")?.unwrap_or_default(),
            },
            quantity,
            unit_price: Some(unit_price),
            unit_price_discounted: None,
            subtotal,
            subtotal_tax: None,
            discount,
            total: checked_sub(subtotal, discount, &l.path("discount_allocations"))?,
            total_tax: checked_sum(taxes.iter().map(|t| t.amount), &l.path("tax_lines"))?,
            tax_rate_percent: single_rate(&taxes),
            taxes,
        });
    }

    let mut shipping_lines = Vec::new();
    for s in root.objs("shipping_lines")? {
        // Lines removed by an order edit no longer count towards the order's totals.
        if s.opt_bool("is_removed")?.unwrap_or(false) {
            continue;
        }
        let subtotal = m.req(&s, "price")?;
        let total = m.get(&s, "discounted_price")?.unwrap_or(subtotal);
        let taxes = taxes(&s, m)?;
        shipping_lines.push(ShippingLine {
            shop_line_id: s.opt_id("id")?,
            method_id: s.opt_text("code")?,
            title: s.opt_text("title")?.unwrap_or_default(),
            subtotal,
            discount: checked_sub(subtotal, total, &s.path("discounted_price"))?,
            total,
            total_tax: checked_sum(taxes.iter().map(|t| t.amount), &s.path("tax_lines"))?,
            tax_rate_percent: single_rate(&taxes),
            taxes,
        });
    }

    let mut fees = Vec::new();
    if let Some(tip) = root.opt_money("total_tip_received")? {
        if !tip.is_zero() {
            // Tips are part of total_price but not of any line; keep them so totals add up.
            fees.push(Fee {
                shop_line_id: None,
                name: "Tip".to_owned(),
                taxable: false,
                total: tip,
                total_tax: Decimal::ZERO,
                tax_rate_percent: None,
                taxes: Vec::new(),
            });
        }
    }

    let applications = root.objs("discount_applications")?;
    let mut discounts = Vec::new();
    for d in root.objs("discount_codes")? {
        let code = d.opt_text("code")?;
        let shop_kind = d.opt_text("type")?;
        let mut value = None;
        for a in &applications {
            let matches =
                code.is_some() && (a.opt_text("code")? == code || a.opt_text("title")? == code);
            if matches {
                value = a.opt_money("value")?;
                break;
            }
        }
        discounts.push(Discount {
            kind: match shop_kind.as_deref() {
                Some("fixed_amount") => DiscountKind::Fixed,
                Some("percentage") => DiscountKind::Percentage,
                Some("shipping") => DiscountKind::FreeShipping,
                _ => DiscountKind::Other,
            },
            code,
            shop_kind,
            value,
            amount: d.money_or_zero("amount")?,
            amount_tax: None,
        });
    }

    let mut tax_lines = Vec::new();
    for t in root.objs("tax_lines")? {
        tax_lines.push(TaxLine {
            rate_id: None,
            rate_code: None,
            label: t.opt_text("title")?.unwrap_or_default(),
            rate_percent: percent(&t)?,
            compound: false,
            amount: m.get(&t, "price")?.unwrap_or_default(),
            items_amount: None,
            shipping_amount: None,
        });
    }

    let mut refunds = Vec::new();
    for r in root.objs("refunds")? {
        refunds.push(refund_from(&r, Some(&shop_order_id), m)?);
    }

    let billing = match root.opt_obj("billing_address")? {
        Some(a) => address(&a)?,
        None => None,
    };
    let shipping = match root.opt_obj("shipping_address")? {
        Some(a) => address(&a)?,
        None => None,
    };
    let order_email = match root.opt_text("email")? {
        Some(e) => Some(e),
        None => root.opt_text("contact_email")?,
    };
    let customer = match root.opt_obj("customer")? {
        Some(c) => {
            let mut customer = customer_from(&c)?;
            customer.email = customer.email.or(order_email);
            customer.company = customer
                .company
                .or_else(|| billing.as_ref().and_then(|b| b.company.clone()));
            // The order's addresses are what this sale was made to.
            customer.billing = billing.clone().or(customer.billing);
            customer.shipping = shipping.clone();
            Some(customer)
        }
        None if billing.is_some() || order_email.is_some() => {
            let b = billing.clone().unwrap_or_default();
            Some(Customer {
                shop_customer_id: None,
                email: order_email,
                first_name: b.first_name.clone(),
                last_name: b.last_name.clone(),
                company: b.company.clone(),
                vat_number: None,
                phone: b.phone.clone(),
                tax_exempt: root.opt_bool("tax_exempt")?.unwrap_or(false),
                tax_exemptions: Vec::new(),
                billing: billing.clone(),
                shipping: shipping.clone(),
            })
        }
        None => None,
    };

    let gateway = match root.strings("payment_gateway_names")?.into_iter().next() {
        Some(g) => Some(g),
        None => root.opt_text("gateway")?,
    };

    let subtotal = match m.get(root, "total_line_items_price")? {
        Some(s) => s,
        None => checked_sum(lines.iter().map(|l| l.subtotal), "line_items")?,
    };
    let shipping_total = match m.get(root, "total_shipping_price")? {
        Some(s) => s,
        None => checked_sum(shipping_lines.iter().map(|s| s.total), "shipping_lines")?,
    };

    Ok(Order {
        number: match root.opt_text("name")? {
            Some(n) => Some(n),
            None => root.opt_id("order_number")?,
        },
        status: root
            .opt_text("financial_status")?
            .unwrap_or_else(|| "unknown".to_owned()),
        created_at: root.opt_datetime("created_at")?,
        updated_at: root.opt_datetime("updated_at")?,
        // Shopify reports no payment time on the order; transactions carry it.
        paid_at: None,
        cancelled_at: root.opt_datetime("cancelled_at")?,
        prices_include_tax: amounts_include_tax,
        amounts_include_tax,
        customer,
        billing,
        shipping,
        subtotal,
        discount_total: m.get(root, "total_discounts")?.unwrap_or_default(),
        discount_tax: None,
        shipping_total,
        shipping_tax: Some(checked_sum(
            shipping_lines.iter().map(|s| s.total_tax),
            "shipping_lines",
        )?),
        total_tax: m.get(root, "total_tax")?.unwrap_or_default(),
        total: m.req(root, "total_price")?,
        payment_method: gateway.map(|g| PaymentMethod {
            id: Some(g.clone()),
            title: Some(g),
        }),
        refunds,
        test: root.opt_bool("test")?.unwrap_or(false),
        lines,
        shipping_lines,
        fees,
        discounts,
        tax_lines,
        shop_order_id,
        currency,
        shop_currency,
        exchange_rate,
    })
}
