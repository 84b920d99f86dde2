//! WooCommerce webhooks: `order.*` and `customer.*` bodies (REST v3 resources) into
//! canonical events.
//!
//! WooCommerce has no paid/cancelled/refunded topics: they arrive as `order.updated`
//! snapshots and are derived here from `status`, `date_paid_gmt` and `refunds`. Bodies are
//! built at delivery time, so there is no stable event id; the dedupe key comes from the
//! signed body alone (resource id, `date_modified_gmt`, a digest of the bytes), never from
//! the unsigned topic, source or delivery headers. Amounts are kept as sent (line and
//! shipping amounts are always net of tax, per-rate taxes unrounded).

use super::json::Json;
use actix_web::http::header::HeaderMap;
use rust_decimal::Decimal;

use super::event::{
    single_rate, Address, Customer, Discount, DiscountKind, Fee, Line, LineTax, Order,
    PaymentMethod, Refund, RefundLine, RefundShipping, ShippingLine, ShopEvent, TaxLine,
};
use super::money::{checked_sub, checked_sum};
use super::reader::Obj;
use super::{
    body_digest, parse_json, required_header, IncomingEvent, Intake, ParseSettings, Platform,
    Source, WebshopError,
};

pub const SIGNATURE_HEADER: &str = "x-wc-webhook-signature";
pub const TOPIC_HEADER: &str = "x-wc-webhook-topic";
pub const SOURCE_HEADER: &str = "x-wc-webhook-source";

/// The WooCommerce topics we book, as constants (a topic in an error is never caller text).
const HANDLED_TOPICS: [&str; 5] = [
    "order.created",
    "order.updated",
    "customer.created",
    "customer.updated",
    "customer.deleted",
];

/// An order resource has these; a customer resource has none of them.
fn is_order_body(root: &Obj<'_>) -> bool {
    root.has("line_items") || root.has("order_key") || root.has("currency")
}

/// Parses a verified WooCommerce body.
///
/// Only the body is signed: the event kind comes from the order's `status`,
/// `date_paid_gmt` and `refunds`, the dedupe key from its id, `date_modified_gmt` and a
/// digest of the exact body. The topic header routes between order and customer and must
/// agree with the body's shape (else `topic_conflict`); the source, delivery id and
/// webhook id headers change nothing, so a replay with new ones is a duplicate.
pub fn parse(
    body: &[u8],
    headers: &HeaderMap,
    settings: &ParseSettings,
) -> Result<Intake, WebshopError> {
    let sent = required_header(headers, TOPIC_HEADER)?;
    let Some(topic) = HANDLED_TOPICS.iter().copied().find(|t| *t == sent) else {
        return Ok(Intake::Ignored {
            topic: sent.to_owned(),
        });
    };
    if topic == "customer.deleted" {
        return customer_deleted(body, headers);
    }
    let wants_order = topic.starts_with("order.");
    let site = required_header(headers, SOURCE_HEADER)?;
    let json = parse_json(body)?;
    let root = Obj::root(&json)?;
    let is_order = is_order_body(&root);
    if wants_order != is_order {
        return Err(WebshopError::TopicConflict {
            header: TOPIC_HEADER,
            topic,
            reason: if is_order {
                "the body is an order, not a customer"
            } else {
                "the body is not an order (no line_items, order_key or currency)"
            },
        });
    }
    let id = root.req_id("id")?;
    let modified = root
        .opt_str("date_modified_gmt")?
        .or(root.opt_str("date_modified")?)
        .ok_or_else(|| root.missing("date_modified_gmt"))?;
    let (resource, event) = if is_order {
        ("order", order_event(order_from(&root, settings)?))
    } else {
        (
            "customer",
            ShopEvent::CustomerUpserted(customer_from(&root, settings)?),
        )
    };
    Ok(Intake::Event(Box::new(IncomingEvent {
        dedupe_key: format!(
            "woocommerce:{resource}:{id}:{modified}:{}",
            body_digest(body)
        ),
        event,
        topic: topic.to_owned(),
        source: Source {
            platform: Platform::WooCommerce,
            shop: Some(site.to_owned()),
        },
    })))
}

/// `customer.deleted` carries only the id (and no modification date): one event per
/// deleted customer, keyed on the signed body like every other delivery.
fn customer_deleted(body: &[u8], headers: &HeaderMap) -> Result<Intake, WebshopError> {
    let topic = "customer.deleted";
    let site = required_header(headers, SOURCE_HEADER)?;
    let json = parse_json(body)?;
    let root = Obj::root(&json)?;
    if is_order_body(&root) {
        return Err(WebshopError::TopicConflict {
            header: TOPIC_HEADER,
            topic,
            reason: "the body is an order, not a customer",
        });
    }
    let id = root.req_id("id")?;
    Ok(Intake::Event(Box::new(IncomingEvent {
        dedupe_key: format!("woocommerce:customer:{id}:deleted:{}", body_digest(body)),
        event: ShopEvent::CustomerDeleted(Customer::deleted(id)),
        topic: topic.to_owned(),
        source: Source {
            platform: Platform::WooCommerce,
            shop: Some(site.to_owned()),
        },
    })))
}

/// Chooses the event for an order snapshot. Cancellation wins over refunds (a cancelled
/// order is voided as a whole); any recorded refund makes it a refund event, carrying the
/// newest refund plus the full order (with all refunds) for reconciliation.
fn order_event(order: Order) -> ShopEvent {
    let status = order.status.as_str();
    if status == "cancelled" {
        return ShopEvent::OrderCancelled(order);
    }
    if status == "refunded" || !order.refunds.is_empty() {
        let refund = newest_refund(&order.refunds).cloned().unwrap_or_else(|| {
            // Status set to refunded without a refund record: the whole order is given back.
            Refund {
                shop_refund_id: None,
                shop_order_id: order.shop_order_id.clone(),
                currency: Some(order.currency.clone()),
                created_at: order.updated_at,
                reason: None,
                amount: order.total,
                lines: Vec::new(),
                shipping: Vec::new(),
                adjustments: Vec::new(),
                amounts_include_tax: None,
            }
        });
        return ShopEvent::OrderRefunded {
            refund,
            order: Some(Box::new(order)),
        };
    }
    if matches!(status, "processing" | "completed") || order.paid_at.is_some() {
        ShopEvent::OrderPaid(order)
    } else {
        ShopEvent::OrderUpdated(order)
    }
}

fn newest_refund(refunds: &[Refund]) -> Option<&Refund> {
    // Refund ids grow with time; WooCommerce lists newest first, but do not rely on order.
    refunds
        .iter()
        .max_by_key(|r| {
            r.shop_refund_id
                .as_deref()
                .and_then(|id| id.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .or(refunds.first())
}

/// Rate details from the order's `tax_lines`, looked up by `rate_id` from line taxes.
struct Rate {
    id: String,
    label: Option<String>,
    percent: Option<Decimal>,
}

/// Parses an order resource (the webhook body of `order.*`, or `GET /orders/<id>`).
pub fn parse_order(body: &[u8], settings: &ParseSettings) -> Result<Order, WebshopError> {
    let json = parse_json(body)?;
    order_from(&Obj::root(&json)?, settings)
}

fn order_from(root: &Obj<'_>, settings: &ParseSettings) -> Result<Order, WebshopError> {
    let shop_order_id = root.req_id("id")?;
    let currency = root.req_str("currency")?;

    let mut tax_lines = Vec::new();
    let mut rates = Vec::new();
    for t in root.objs("tax_lines")? {
        let items = t.opt_money("tax_total")?;
        let shipping = t.opt_money("shipping_tax_total")?;
        let amount = checked_sum(
            [items.unwrap_or_default(), shipping.unwrap_or_default()],
            &t.path("tax_total"),
        )?;
        let rate_id = t.opt_id("rate_id")?;
        let label = t.opt_text("label")?;
        let percent = t.opt_money("rate_percent")?;
        if let Some(id) = &rate_id {
            rates.push(Rate {
                id: id.clone(),
                label: label.clone(),
                percent,
            });
        }
        tax_lines.push(TaxLine {
            rate_id,
            rate_code: t.opt_text("rate_code")?,
            label: label.unwrap_or_default(),
            rate_percent: percent,
            compound: t.opt_bool("compound")?.unwrap_or(false),
            amount,
            items_amount: items,
            shipping_amount: shipping,
        });
    }

    let mut lines = Vec::new();
    for l in root.objs("line_items")? {
        let subtotal = l.req_money("subtotal")?;
        let total = l.req_money("total")?;
        let taxes = line_taxes(&l, &rates)?;
        lines.push(Line {
            shop_line_id: l.opt_id("id")?,
            product_id: l.opt_nonzero_id("product_id")?,
            variant_id: l.opt_nonzero_id("variation_id")?,
            sku: l.opt_text("sku")?,
            name: l.opt_text("name")?.unwrap_or_default(),
            quantity: l.req_money("quantity")?,
            unit_price: None,
            unit_price_discounted: l.opt_money("price")?,
            subtotal,
            subtotal_tax: l.opt_money("subtotal_tax")?,
            discount: checked_sub(subtotal, total, &l.path("total"))?,
            total,
            total_tax: l.money_or_zero("total_tax")?,
            tax_rate_percent: single_rate(&taxes),
            taxes,
        });
    }

    let mut shipping_lines = Vec::new();
    for s in root.objs("shipping_lines")? {
        let total = s.req_money("total")?;
        let taxes = line_taxes(&s, &rates)?;
        shipping_lines.push(ShippingLine {
            shop_line_id: s.opt_id("id")?,
            method_id: s.opt_text("method_id")?,
            title: s.opt_text("method_title")?.unwrap_or_default(),
            subtotal: total,
            discount: Decimal::ZERO,
            total,
            total_tax: s.money_or_zero("total_tax")?,
            tax_rate_percent: single_rate(&taxes),
            taxes,
        });
    }

    let mut fees = Vec::new();
    for f in root.objs("fee_lines")? {
        let taxes = line_taxes(&f, &rates)?;
        fees.push(Fee {
            shop_line_id: f.opt_id("id")?,
            name: f.opt_text("name")?.unwrap_or_default(),
            taxable: f.opt_str("tax_status")?.as_deref() != Some("none"),
            total: f.req_money("total")?,
            total_tax: f.money_or_zero("total_tax")?,
            tax_rate_percent: single_rate(&taxes),
            taxes,
        });
    }

    let mut discounts = Vec::new();
    for c in root.objs("coupon_lines")? {
        let coupon_data = meta_object(&c, "coupon_data");
        let shop_kind = match c.opt_str("discount_type")? {
            Some(k) => Some(k),
            None => coupon_data
                .as_ref()
                .and_then(|d| d.opt_str("discount_type").ok().flatten()),
        };
        let value = match c.opt_money("nominal_amount")? {
            Some(v) => Some(v),
            None => coupon_data
                .as_ref()
                .and_then(|d| d.opt_money("amount").ok().flatten()),
        };
        discounts.push(Discount {
            code: c.opt_text("code")?,
            kind: discount_kind(shop_kind.as_deref()),
            shop_kind,
            value,
            amount: c.money_or_zero("discount")?,
            amount_tax: c.opt_money("discount_tax")?,
        });
    }

    let mut refunds = Vec::new();
    for r in root.objs("refunds")? {
        refunds.push(Refund {
            shop_refund_id: r.opt_id("id")?,
            shop_order_id: shop_order_id.clone(),
            currency: Some(currency.clone()),
            created_at: None,
            reason: r.opt_text("reason")?,
            // WooCommerce lists refunds with negative totals; the model keeps magnitudes.
            amount: r.req_money("total")?.abs(),
            lines: Vec::new(),
            shipping: Vec::new(),
            adjustments: Vec::new(),
            amounts_include_tax: None,
        });
    }

    let billing = match root.opt_obj("billing")? {
        Some(b) => address(&b)?,
        None => None,
    };
    let shipping = match root.opt_obj("shipping")? {
        Some(s) => address(&s)?,
        None => None,
    };
    let customer_id = root.opt_nonzero_id("customer_id")?;
    let vat_number = vat_number(root, settings, billing.as_ref());
    let customer = if customer_id.is_some() || billing.is_some() {
        let b = billing.clone().unwrap_or_default();
        Some(Customer {
            shop_customer_id: customer_id,
            email: b.email.clone(),
            first_name: b.first_name.clone(),
            last_name: b.last_name.clone(),
            company: b.company.clone(),
            vat_number,
            phone: b.phone.clone(),
            tax_exempt: meta_string(root, "is_vat_exempt").as_deref() == Some("yes"),
            tax_exemptions: Vec::new(),
            billing: billing.clone(),
            shipping: shipping.clone(),
        })
    } else {
        None
    };

    let payment_id = root.opt_text("payment_method")?;
    let payment_title = root.opt_text("payment_method_title")?;
    let payment_method = if payment_id.is_some() || payment_title.is_some() {
        Some(PaymentMethod {
            id: payment_id,
            title: payment_title,
        })
    } else {
        None
    };

    Ok(Order {
        number: root
            .opt_text("number")?
            .or_else(|| Some(shop_order_id.clone())),
        status: root.req_str("status")?,
        created_at: root.opt_naive_utc("date_created_gmt")?,
        updated_at: root.opt_naive_utc("date_modified_gmt")?,
        paid_at: root.opt_naive_utc("date_paid_gmt")?,
        cancelled_at: None,
        prices_include_tax: root.opt_bool("prices_include_tax")?.unwrap_or(false),
        amounts_include_tax: false,
        customer,
        billing,
        shipping,
        subtotal: checked_sum(lines.iter().map(|l| l.subtotal), "line_items")?,
        lines,
        shipping_lines,
        fees,
        discounts,
        tax_lines,
        discount_total: root.money_or_zero("discount_total")?,
        discount_tax: root.opt_money("discount_tax")?,
        shipping_total: root.money_or_zero("shipping_total")?,
        shipping_tax: root.opt_money("shipping_tax")?,
        total_tax: root.money_or_zero("total_tax")?,
        total: root.req_money("total")?,
        payment_method,
        refunds,
        test: false,
        shop_order_id,
        currency,
        // WooCommerce keeps one currency per order: the one the customer paid in.
        shop_currency: None,
        exchange_rate: None,
    })
}

fn customer_from(root: &Obj<'_>, settings: &ParseSettings) -> Result<Customer, WebshopError> {
    let billing = match root.opt_obj("billing")? {
        Some(b) => address(&b)?,
        None => None,
    };
    let shipping = match root.opt_obj("shipping")? {
        Some(s) => address(&s)?,
        None => None,
    };
    let b = billing.clone().unwrap_or_default();
    Ok(Customer {
        shop_customer_id: Some(root.req_id("id")?),
        email: root.opt_text("email")?.or(b.email.clone()),
        first_name: root.opt_text("first_name")?.or(b.first_name.clone()),
        last_name: root.opt_text("last_name")?.or(b.last_name.clone()),
        company: b.company.clone(),
        vat_number: vat_number(root, settings, billing.as_ref()),
        phone: b.phone.clone(),
        tax_exempt: false,
        tax_exemptions: Vec::new(),
        billing,
        shipping,
    })
}

/// Parses a refund resource (`GET /orders/<id>/refunds/<rid>`), for callers that fetch
/// refund details; webhooks only carry the refund summary inside the order. Amounts in the
/// resource are negative; the model keeps magnitudes.
pub fn parse_refund(
    shop_order_id: &str,
    currency: Option<&str>,
    body: &[u8],
) -> Result<Refund, WebshopError> {
    let json = parse_json(body)?;
    let root = Obj::root(&json)?;
    let mut lines = Vec::new();
    for l in root.objs("line_items")? {
        lines.push(RefundLine {
            shop_line_id: meta_string(&l, "_refunded_item_id").or(l.opt_id("id")?),
            sku: l.opt_text("sku")?,
            name: l.opt_text("name")?,
            quantity: l.req_money("quantity")?.abs(),
            subtotal: l.opt_money("total")?.map(|d| d.abs()),
            tax: l.opt_money("total_tax")?.map(|d| d.abs()),
        });
    }
    let mut shipping = Vec::new();
    for s in root.objs("shipping_lines")? {
        shipping.push(RefundShipping {
            shop_line_id: meta_string(&s, "_refunded_item_id").or(s.opt_id("id")?),
            title: s.opt_text("method_title")?,
            amount: s.req_money("total")?.abs(),
            tax: s.money_or_zero("total_tax")?.abs(),
        });
    }
    Ok(Refund {
        shop_refund_id: root.opt_id("id")?,
        shop_order_id: shop_order_id.to_owned(),
        currency: currency.map(str::to_owned),
        created_at: root.opt_naive_utc("date_created_gmt")?,
        reason: root.opt_text("reason")?,
        amount: root.req_money("amount")?.abs(),
        lines,
        shipping,
        adjustments: Vec::new(),
        amounts_include_tax: Some(false),
    })
}

/// `taxes[]` of a line/shipping/fee: `{id, total, subtotal}` with unrounded strings.
fn line_taxes(item: &Obj<'_>, rates: &[Rate]) -> Result<Vec<LineTax>, WebshopError> {
    let mut out = Vec::new();
    for t in item.objs("taxes")? {
        let amount = t.opt_money("total")?;
        let subtotal_amount = t.opt_money("subtotal")?;
        if amount.is_none() && subtotal_amount.is_none() {
            continue;
        }
        let rate_id = t.opt_id("id")?;
        let rate = rate_id
            .as_deref()
            .and_then(|id| rates.iter().find(|r| r.id == id));
        out.push(LineTax {
            label: rate.and_then(|r| r.label.clone()),
            rate_percent: rate.and_then(|r| r.percent),
            rate_id,
            amount: amount.unwrap_or_default(),
            subtotal_amount,
        });
    }
    Ok(out)
}

fn discount_kind(shop_kind: Option<&str>) -> DiscountKind {
    match shop_kind {
        Some("percent") | Some("percentage") => DiscountKind::Percentage,
        Some("fixed_cart") | Some("fixed_product") => DiscountKind::Fixed,
        _ => DiscountKind::Other,
    }
}

fn address(a: &Obj<'_>) -> Result<Option<Address>, WebshopError> {
    let first_name = a.opt_text("first_name")?;
    let last_name = a.opt_text("last_name")?;
    let name = Address::joined_name(&first_name, &last_name);
    let street = [a.opt_text("address_1")?, a.opt_text("address_2")?]
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
        postcode: a.opt_text("postcode")?,
        country_code: a.opt_text("country")?,
        state: a.opt_text("state")?,
        email: a.opt_text("email")?,
        phone: a.opt_text("phone")?,
        // Germanized Pro exposes the VAT id on the address.
        vat_number: a.opt_text("vat_id")?,
    };
    Ok((!addr.is_empty()).then_some(addr))
}

/// VAT number: configured meta keys first, then Germanized's `billing.vat_id`, then the
/// top-level `vat_number` older EU VAT Number versions added.
fn vat_number(
    root: &Obj<'_>,
    settings: &ParseSettings,
    billing: Option<&Address>,
) -> Option<String> {
    settings
        .woo_vat_meta_keys
        .iter()
        .find_map(|k| meta_string(root, k))
        .or_else(|| billing.and_then(|b| b.vat_number.clone()))
        .or_else(|| root.opt_text("vat_number").ok().flatten())
}

/// A non-blank string value of `meta_data[key]`. Lenient: meta is free-form plugin data,
/// and an odd entry must not block booking the order.
fn meta_string(item: &Obj<'_>, key: &str) -> Option<String> {
    meta_value(item, key).and_then(|v| match v {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Json::Number(n) => Some(n.as_ref().to_owned()),
        _ => None,
    })
}

fn meta_value<'a>(item: &Obj<'a>, key: &str) -> Option<&'a Json<'a>> {
    item.array("meta_data").ok()?.iter().find_map(|m| {
        (m.get("key")?.as_str()? == key)
            .then(|| m.get("value"))
            .flatten()
    })
}

fn meta_object<'a>(item: &Obj<'a>, key: &str) -> Option<Obj<'a>> {
    let value = meta_value(item, key)?;
    // Re-root so paths inside read as `coupon_data.*`; only used for optional hints.
    Obj::root(value).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn order(v: serde_json::Value) -> Order {
        parse_order(&serde_json::to_vec(&v).unwrap(), &ParseSettings::default()).unwrap()
    }

    fn minimal() -> serde_json::Value {
        json!({
            "id": 5, "currency": "EUR", "status": "pending", "total": "12.20",
            "total_tax": "2.20",
            "line_items": [{"id": 1, "name": "A", "quantity": 1, "subtotal": "10.00",
                "total": "10.00", "total_tax": "2.20", "price": 10,
                "taxes": [{"id": 3, "total": "2.2", "subtotal": "2.2"}]}],
            "tax_lines": [{"rate_id": 3, "label": "DDV", "rate_percent": 22,
                "tax_total": "2.20", "shipping_tax_total": "0.00"}],
            "refunds": []
        })
    }

    #[test]
    fn line_rate_comes_from_order_tax_lines() {
        let o = order(minimal());
        assert_eq!(o.lines[0].tax_rate_percent, Some(dec!(22)));
        assert_eq!(o.lines[0].taxes[0].label.as_deref(), Some("DDV"));
        assert_eq!(o.customer, None, "no billing, no customer id");
        assert_eq!(o.number.as_deref(), Some("5"), "number falls back to id");
    }

    #[test]
    fn cancellation_wins_over_refunds() {
        let mut v = minimal();
        v["status"] = json!("cancelled");
        v["refunds"] = json!([{"id": 9, "reason": "", "total": "-1.00"}]);
        assert!(matches!(
            order_event(order(v.clone())),
            ShopEvent::OrderCancelled(_)
        ));
        v["status"] = json!("processing");
        match order_event(order(v)) {
            ShopEvent::OrderRefunded { refund, .. } => assert_eq!(refund.amount, dec!(1.00)),
            other => panic!("unexpected {:?}", other.kind()),
        }
    }

    #[test]
    fn newest_refund_is_chosen_by_id() {
        let mut v = minimal();
        v["status"] = json!("completed");
        v["refunds"] = json!([
            {"id": 7, "total": "-1.00"}, {"id": 12, "total": "-2.50"}, {"id": 9, "total": "-3.00"}
        ]);
        match order_event(order(v)) {
            ShopEvent::OrderRefunded { refund, .. } => {
                assert_eq!(refund.shop_refund_id.as_deref(), Some("12"));
                assert_eq!(refund.amount, dec!(2.50));
            }
            other => panic!("unexpected {:?}", other.kind()),
        }
    }
}
