//! Shopify webhooks: `orders/*`, `refunds/create` and `customers/*` bodies (bare REST
//! resources) into canonical events.
//!
//! Guarantees: amounts are read from one money bag for the whole order — what the
//! customer paid (`*_set.presentment_money`, the default) or the shop currency
//! (`*_set.shop_money`, `ParseSettings::booking_currency`), else from the plain field
//! (shop currency) only when the order has no money sets at all — so one order never
//! mixes currencies, and it carries the shop's exchange rate between the two; ids are
//! kept as exact text (they exceed 2^53); the event kind and the dedupe key come from the
//! signed body only (Shopify signs nothing else), so a replay with a rewritten topic,
//! event id or shop domain books nothing. A retry resends the same body, so it is the
//! same key.

use actix_web::http::header::HeaderMap;
use rust_decimal::Decimal;

use super::event::{
    single_rate, Address, Customer, Discount, DiscountKind, Fee, Line, LineTax, Order,
    PaymentMethod, Refund, RefundAdjustment, RefundLine, RefundShipping, ShippingLine, ShopEvent,
    TaxLine,
};
use super::money::{checked_mul, checked_sub, checked_sum};
use super::reader::Obj;
use super::{
    body_digest, first_header, parse_json, BookingCurrency, IncomingEvent, Intake, ParseSettings,
    Platform, Source, WebshopError,
};

/// Signature header names: classic webhooks, then the newer un-prefixed "Events" delivery.
pub const SIGNATURE_HEADERS: [&str; 2] = ["x-shopify-hmac-sha256", "shopify-hmac-sha256"];
const TOPIC_HEADERS: [&str; 2] = ["x-shopify-topic", "shopify-topic"];
const DOMAIN_HEADERS: [&str; 2] = ["x-shopify-shop-domain", "shopify-shop-domain"];

/// The Shopify topics we book, as constants (a topic in an error is never caller text).
const HANDLED_TOPICS: [&str; 8] = [
    "orders/create",
    "orders/paid",
    "orders/updated",
    "orders/cancelled",
    "refunds/create",
    "customers/create",
    "customers/update",
    "customers/delete",
];

/// What a body is, judged from its members alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Order,
    Refund,
    Customer,
    Unknown,
}

fn shape(root: &Obj<'_>) -> Shape {
    if root.has("line_items") || root.has("total_price") {
        Shape::Order
    } else if root.has("refund_line_items") || root.has("order_id") {
        Shape::Refund
    } else if root.has("orders_count") || root.has("addresses") || root.has("email") {
        Shape::Customer
    } else {
        Shape::Unknown
    }
}

/// Parses a verified Shopify body.
///
/// Only the body is signed, so the body decides: the event kind comes from the order's
/// `cancelled_at` and `financial_status`, the dedupe key from the resource id and a digest
/// of the exact body. The topic header only routes, and must agree with the body (an
/// order body is never a customer, `orders/cancelled` needs a cancelled order) or the
/// delivery is refused with `topic_conflict`. Event, webhook id and shop domain headers
/// change nothing: a replay with new ones is the same key, so a duplicate.
pub fn parse(
    body: &[u8],
    headers: &HeaderMap,
    settings: &ParseSettings,
) -> Result<Intake, WebshopError> {
    let m = Money::of(settings);
    let sent = first_header(headers, &TOPIC_HEADERS)?
        .ok_or(WebshopError::MissingHeader(TOPIC_HEADERS[0]))?;
    let Some(topic) = HANDLED_TOPICS.iter().copied().find(|t| *t == sent) else {
        return Ok(Intake::Ignored {
            topic: sent.to_owned(),
        });
    };
    let domain = first_header(headers, &DOMAIN_HEADERS)?
        .ok_or(WebshopError::MissingHeader(DOMAIN_HEADERS[0]))?;

    let json = parse_json(body)?;
    let root = Obj::root(&json)?;
    let conflict = |reason: &'static str| WebshopError::TopicConflict {
        header: TOPIC_HEADERS[0],
        topic,
        reason,
    };
    let shape = shape(&root);
    let (resource, event) = match topic {
        "refunds/create" => {
            if matches!(shape, Shape::Order | Shape::Customer) {
                return Err(conflict("the body is not a refund"));
            }
            let refund = refund_from(&root, None, m)?;
            (
                "refund",
                ShopEvent::OrderRefunded {
                    refund,
                    order: None,
                },
            )
        }
        "customers/create" | "customers/update" => {
            if matches!(shape, Shape::Order | Shape::Refund) {
                return Err(conflict("the body is not a customer"));
            }
            (
                "customer",
                ShopEvent::CustomerUpserted(customer_from(&root)?),
            )
        }
        "customers/delete" => {
            // Shopify's deletion body carries little more than the id.
            if matches!(shape, Shape::Order | Shape::Refund) {
                return Err(conflict("the body is not a customer"));
            }
            (
                "customer",
                ShopEvent::CustomerDeleted(Customer::deleted(root.req_id("id")?)),
            )
        }
        _ => {
            if shape != Shape::Order {
                return Err(conflict("the body is not an order"));
            }
            let event = order_event(order_from(&root, m)?);
            match (topic, &event) {
                ("orders/cancelled", ShopEvent::OrderCancelled(_)) => {}
                ("orders/cancelled", _) => {
                    return Err(conflict(
                        "the body is not cancelled (cancelled_at is empty)",
                    ))
                }
                ("orders/paid", ShopEvent::OrderCancelled(_)) => {
                    return Err(conflict(
                        "the body is a cancelled order (cancelled_at is set)",
                    ))
                }
                ("orders/paid", ShopEvent::OrderUpdated(_)) => {
                    return Err(conflict("the body is not paid (financial_status)"))
                }
                _ => {}
            }
            ("order", event)
        }
    };
    let id = root.opt_id("id")?.unwrap_or_default();
    // An order version is its id, `updated_at` and bytes; a refund never changes, so its
    // id is its key (the same key as the reconciliation poll's).
    let updated_at = root.opt_str("updated_at")?;
    let dedupe_key = match (resource, updated_at) {
        ("order", Some(at)) => order_version_key(&id, &at, body),
        ("refund", _) if !id.is_empty() => refund_key(&id),
        _ => format!("shopify:{resource}:{id}:{}", body_digest(body)),
    };
    Ok(Intake::Event(Box::new(IncomingEvent {
        dedupe_key,
        event,
        topic: topic.to_owned(),
        source: Source {
            platform: Platform::Shopify,
            shop: Some(domain.to_owned()),
        },
    })))
}

/// Chooses the event for an order body from what it says. Refunds are not derived from
/// order bodies: Shopify sends `refunds/create` for each, and deriving them here would
/// book them twice.
fn order_event(order: Order) -> ShopEvent {
    if order.cancelled_at.is_some() {
        return ShopEvent::OrderCancelled(order);
    }
    let paid = matches!(
        order.status.as_str(),
        "paid" | "partially_refunded" | "refunded"
    );
    if paid {
        ShopEvent::OrderPaid(order)
    } else {
        ShopEvent::OrderUpdated(order)
    }
}

/// The money bag amounts are read from.
#[derive(Debug, Clone, Copy)]
struct Money {
    bag: &'static str,
}

impl Money {
    fn of(settings: &ParseSettings) -> Money {
        Money {
            bag: match settings.booking_currency {
                BookingCurrency::Customer => "presentment_money",
                BookingCurrency::Shop => "shop_money",
            },
        }
    }

    /// `key_set.<bag>.amount` when the set is there, else `key` (which Shopify gives in
    /// the shop currency, the same as presentment for single-currency orders).
    fn get(self, o: &Obj<'_>, key: &str) -> Result<Option<Decimal>, WebshopError> {
        bag_amount(o, key, self.bag)?.map_or_else(|| o.opt_money(key), |a| Ok(Some(a)))
    }

    fn req(self, o: &Obj<'_>, key: &str) -> Result<Decimal, WebshopError> {
        self.get(o, key)?.ok_or_else(|| o.missing(key))
    }

    fn currency(self, o: &Obj<'_>, key: &str) -> Result<Option<String>, WebshopError> {
        bag_currency(o, key, self.bag)
    }
}

fn bag_amount(o: &Obj<'_>, key: &str, bag: &str) -> Result<Option<Decimal>, WebshopError> {
    match o.opt_obj(&format!("{key}_set"))? {
        Some(set) => match set.opt_obj(bag)? {
            Some(m) => m.opt_money("amount"),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

fn bag_currency(o: &Obj<'_>, key: &str, bag: &str) -> Result<Option<String>, WebshopError> {
    match o.opt_obj(&format!("{key}_set"))? {
        Some(set) => match set.opt_obj(bag)? {
            Some(m) => m.opt_text("currency_code"),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

/// `tax_lines[]` of a line or shipping line: `{title, rate (fraction), price}`.
fn taxes(o: &Obj<'_>, m: Money) -> Result<Vec<LineTax>, WebshopError> {
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
fn percent(t: &Obj<'_>) -> Result<Option<Decimal>, WebshopError> {
    match t.opt_money("rate")? {
        Some(rate) => Ok(Some(
            checked_mul(rate, Decimal::ONE_HUNDRED, &t.path("rate"))?.normalize(),
        )),
        None => Ok(None),
    }
}

fn allocations(o: &Obj<'_>, m: Money) -> Result<Option<Decimal>, WebshopError> {
    if !o.has("discount_allocations") {
        return Ok(None);
    }
    let mut amounts = Vec::new();
    for a in o.objs("discount_allocations")? {
        amounts.push(m.req(&a, "amount")?);
    }
    checked_sum(amounts, &o.path("discount_allocations")).map(Some)
}

/// Parses an order resource (the webhook body of `orders/*`, without REST's `{"order": …}`).
pub fn parse_order(body: &[u8]) -> Result<Order, WebshopError> {
    parse_order_with(body, &ParseSettings::default())
}

/// [`parse_order`] with the tenant's parse settings (which money set is booked).
pub fn parse_order_with(body: &[u8], settings: &ParseSettings) -> Result<Order, WebshopError> {
    let json = parse_json(body)?;
    order_from(&Obj::root(&json)?, Money::of(settings))
}

fn order_from(root: &Obj<'_>, m: Money) -> Result<Order, WebshopError> {
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

/// A refund (the body of `refunds/create`, or an element of an order's `refunds`).
/// `amount` is the sum of successful refund transactions; without transactions, the sum
/// of the itemised refund.
fn refund_from(root: &Obj<'_>, order_id: Option<&str>, m: Money) -> Result<Refund, WebshopError> {
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

/// A customer (the body of `customers/*`, or an order's `customer`).
fn customer_from(root: &Obj<'_>) -> Result<Customer, WebshopError> {
    let default_address = match root.opt_obj("default_address")? {
        Some(a) => address(&a)?,
        None => match root.objs("addresses")?.first() {
            Some(a) => address(a)?,
            None => None,
        },
    };
    Ok(Customer {
        shop_customer_id: Some(root.req_id("id")?),
        email: root.opt_text("email")?,
        first_name: root.opt_text("first_name")?,
        last_name: root.opt_text("last_name")?,
        company: default_address.as_ref().and_then(|a| a.company.clone()),
        // Shopify has no VAT number on customers (B2B ids live on company locations).
        vat_number: None,
        phone: match root.opt_text("phone")? {
            Some(p) => Some(p),
            None => default_address.as_ref().and_then(|a| a.phone.clone()),
        },
        tax_exempt: root.opt_bool("tax_exempt")?.unwrap_or(false),
        tax_exemptions: root.strings("tax_exemptions")?,
        billing: default_address,
        shipping: None,
    })
}

fn address(a: &Obj<'_>) -> Result<Option<Address>, WebshopError> {
    let first_name = a.opt_text("first_name")?;
    let last_name = a.opt_text("last_name")?;
    let name = match a.opt_text("name")? {
        Some(n) => Some(n),
        None => Address::joined_name(&first_name, &last_name),
    };
    let street = [a.opt_text("address1")?, a.opt_text("address2")?]
        .into_iter()
        .flatten()
        .collect();
    let addr = Address {
        first_name,
        last_name,
        name,
        company: a.opt_text("company")?,
        street,
        city: a.opt_text("city")?,
        postcode: a.opt_text("zip")?,
        country_code: a.opt_text("country_code")?,
        state: match a.opt_text("province_code")? {
            Some(p) => Some(p),
            None => a.opt_text("province")?,
        },
        email: None,
        phone: a.opt_text("phone")?,
        vat_number: None,
    };
    Ok((!addr.is_empty()).then_some(addr))
}

/// The dedupe key of one version of a Shopify order: order id, `updated_at` (normalised
/// to UTC, so `-04:00` and `Z` spellings of one instant agree) and a digest of the body.
/// All of it is signed data (keys are per tenant, so no shop domain). The digest keeps
/// two different bodies of one second apart (an order created and paid within the same
/// second must not be a duplicate); a retry or a replay resends the same bytes, and a
/// re-poll of an unchanged order reads the same bytes, so both stay duplicates.
pub fn order_version_key(order_id: &str, updated_at: &str, body: &[u8]) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(updated_at)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        })
        .unwrap_or_else(|_| updated_at.to_owned());
    format!("shopify:order:{order_id}:{at}:{}", body_digest(body))
}

/// The dedupe key of a Shopify refund (refunds never change once created).
pub fn refund_key(refund_id: &str) -> String {
    format!("shopify:refund:{refund_id}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn presentment_money_is_booked_and_rates_become_percent() {
        let v = json!({
            "id": 1, "currency": "USD", "financial_status": "paid",
            "total_price": "10.00",
            "total_price_set": {"shop_money": {"amount": "10.00", "currency_code": "USD"},
                                "presentment_money": {"amount": "9.10", "currency_code": "EUR"}},
            "line_items": [{"id": 2, "name": "A", "quantity": 2, "price": "5.00",
                "tax_lines": [{"title": "VAT", "rate": 0.095, "price": "0.87"}]}],
            "total_tip_received": "1.50"
        });
        let o = parse_order(&serde_json::to_vec(&v).unwrap()).unwrap();
        // The customer paid 9.10 EUR; the shop's books are in USD.
        assert_eq!(o.total, dec!(9.10));
        assert_eq!(o.currency, "EUR");
        assert_eq!(o.shop_currency.as_deref(), Some("USD"));
        assert_eq!(o.exchange_rate, Some(dec!(1.098901)));
        let settings = ParseSettings {
            booking_currency: BookingCurrency::Shop,
            ..ParseSettings::default()
        };
        let shop = parse_order_with(&serde_json::to_vec(&v).unwrap(), &settings).unwrap();
        assert_eq!((shop.total, shop.currency.as_str()), (dec!(10.00), "USD"));
        assert_eq!(shop.shop_currency, None);
        assert_eq!(o.lines[0].subtotal, dec!(10.00));
        assert_eq!(o.lines[0].tax_rate_percent, Some(dec!(9.5)));
        assert_eq!(o.fees[0].total, dec!(1.50), "tips are kept as a fee");
        assert!(matches!(order_event(o), ShopEvent::OrderPaid(_)));
    }

    #[test]
    fn removed_shipping_lines_are_skipped() {
        let v = json!({
            "id": 1, "currency": "USD", "total_price": "5.00",
            "shipping_lines": [
                {"id": 1, "title": "Old", "price": "9.00", "is_removed": true},
                {"id": 2, "title": "New", "price": "5.00", "discounted_price": "4.00"}
            ]
        });
        let o = parse_order(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(o.shipping_lines.len(), 1);
        assert_eq!(o.shipping_lines[0].discount, dec!(1.00));
        assert_eq!(o.shipping_total, dec!(4.00));
    }

    #[test]
    fn one_order_version_has_one_key_whatever_the_offset_spelling() {
        let a = order_version_key("1073459981", "2025-04-02T11:31:38-05:00", b"{}");
        let b = order_version_key("1073459981", "2025-04-02T16:31:38Z", b"{}");
        assert_eq!(a, b);
        assert!(
            a.starts_with("shopify:order:1073459981:2025-04-02T16:31:38Z:"),
            "{a}"
        );
        assert_ne!(
            a,
            order_version_key("1073459981", "2025-04-02T16:31:39Z", b"{}")
        );
        assert_ne!(
            a,
            order_version_key("1073459981", "2025-04-02T16:31:38Z", b"{ }")
        );
    }
}
