//! The canonical event model: what every platform parser produces, what the queue stores
//! and what the `generic` platform accepts on the wire (see `docs/webhooks-generic.md`).
//!
//! Guarantees: all money is `Decimal` (serialised as JSON strings, read from strings or
//! numbers); every amount the shop reported is kept as reported so the mapping can
//! reproduce the shop's totals to the cent; the JSON form is versioned
//! (`"version": 1`) and tagged by `kind`, so queued events survive later model changes.
//!
//! Sign convention: order amounts are as the shop reports them (discounts positive);
//! refund amounts are positive magnitudes of what was given back.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::money::{serde_decimal, serde_decimal_opt};

/// Version written into (and required from) the wire form.
pub const EVENT_VERSION: u32 = 1;

/// A shop event in canonical form.
#[derive(Debug, Clone, PartialEq)]
pub enum ShopEvent {
    /// The order is paid (or the shop considers it paid/processing): book it.
    OrderPaid(Order),
    /// The order changed but is not (yet) paid, cancelled or refunded.
    OrderUpdated(Order),
    OrderCancelled(Order),
    /// Money was given back. `order` is the full order when the shop sent it (WooCommerce
    /// sends the order snapshot; Shopify's `refunds/create` sends only the refund).
    OrderRefunded {
        refund: Refund,
        order: Option<Box<Order>>,
    },
    CustomerUpserted(Customer),
    /// The shop deleted the customer; only `shop_customer_id` (and what else the shop
    /// still sent) is set.
    CustomerDeleted(Customer),
}

/// The `kind` tag of the wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    OrderPaid,
    OrderUpdated,
    OrderCancelled,
    OrderRefunded,
    CustomerUpserted,
    CustomerDeleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderPaid => "order_paid",
            EventKind::OrderUpdated => "order_updated",
            EventKind::OrderCancelled => "order_cancelled",
            EventKind::OrderRefunded => "order_refunded",
            EventKind::CustomerUpserted => "customer_upserted",
            EventKind::CustomerDeleted => "customer_deleted",
        }
    }
}

impl ShopEvent {
    pub fn kind(&self) -> EventKind {
        match self {
            ShopEvent::OrderPaid(_) => EventKind::OrderPaid,
            ShopEvent::OrderUpdated(_) => EventKind::OrderUpdated,
            ShopEvent::OrderCancelled(_) => EventKind::OrderCancelled,
            ShopEvent::OrderRefunded { .. } => EventKind::OrderRefunded,
            ShopEvent::CustomerUpserted(_) => EventKind::CustomerUpserted,
            ShopEvent::CustomerDeleted(_) => EventKind::CustomerDeleted,
        }
    }

    /// The order, when the event carries one.
    pub fn order(&self) -> Option<&Order> {
        match self {
            ShopEvent::OrderPaid(o) | ShopEvent::OrderUpdated(o) | ShopEvent::OrderCancelled(o) => {
                Some(o)
            }
            ShopEvent::OrderRefunded { order, .. } => order.as_deref(),
            ShopEvent::CustomerUpserted(_) | ShopEvent::CustomerDeleted(_) => None,
        }
    }

    /// The shop's order id for order and refund events.
    pub fn shop_order_id(&self) -> Option<&str> {
        match self {
            ShopEvent::OrderRefunded { refund, .. } => Some(&refund.shop_order_id),
            other => other.order().map(|o| o.shop_order_id.as_str()),
        }
    }
}

/// An order as the shop reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The shop's internal id (WooCommerce `id`, Shopify `id`; 64-bit, kept as text).
    pub shop_order_id: String,
    /// The human order number (WooCommerce `number`, Shopify `name` such as `#1001`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// ISO 4217 code of every amount in this order: what the customer paid in (Shopify
    /// presentment currency) unless the tenant books the shop currency.
    pub currency: String,
    /// The shop's own currency when it differs from `currency` (Shopify Markets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_currency: Option<String>,
    /// Shop currency per unit of `currency`, from the order's two money sets
    /// (`total_price_set.shop_money` ÷ `presentment_money`).
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub exchange_rate: Option<Decimal>,
    /// The shop's own status word (WooCommerce `status`, Shopify `financial_status`).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// The shop's catalogue setting: prices were entered including tax.
    #[serde(default)]
    pub prices_include_tax: bool,
    /// Whether the line, shipping, fee and discount amounts below include tax. WooCommerce
    /// always reports them net (`false`) even when `prices_include_tax` is set; Shopify
    /// reports them gross when `taxes_included`.
    #[serde(default)]
    pub amounts_include_tax: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Address>,
    #[serde(default)]
    pub lines: Vec<Line>,
    #[serde(default)]
    pub shipping_lines: Vec<ShippingLine>,
    #[serde(default)]
    pub fees: Vec<Fee>,
    #[serde(default)]
    pub discounts: Vec<Discount>,
    /// Tax totals per rate, as the shop summarised them.
    #[serde(default)]
    pub tax_lines: Vec<TaxLine>,
    /// Sum of line subtotals before discounts.
    #[serde(with = "serde_decimal")]
    pub subtotal: Decimal,
    /// Total discount (WooCommerce: net of tax, tax in `discount_tax`).
    #[serde(with = "serde_decimal")]
    pub discount_total: Decimal,
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub discount_tax: Option<Decimal>,
    #[serde(with = "serde_decimal")]
    pub shipping_total: Decimal,
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub shipping_tax: Option<Decimal>,
    /// All taxes of the order.
    #[serde(with = "serde_decimal")]
    pub total_tax: Decimal,
    /// What the customer pays: the amount the booked document must equal.
    #[serde(with = "serde_decimal")]
    pub total: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<PaymentMethod>,
    /// Refunds already recorded on the order.
    #[serde(default)]
    pub refunds: Vec<Refund>,
    /// A test order (Shopify `test`); the mapping may refuse to book it.
    #[serde(default)]
    pub test: bool,
}

/// A product line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_line_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub name: String,
    #[serde(with = "serde_decimal")]
    pub quantity: Decimal,
    /// Price per unit before discounts (Shopify `price`); `None` when the shop gives none.
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub unit_price: Option<Decimal>,
    /// Price per unit after discounts, unrounded (WooCommerce `price` = total ÷ quantity).
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub unit_price_discounted: Option<Decimal>,
    /// Line amount before discounts.
    #[serde(with = "serde_decimal")]
    pub subtotal: Decimal,
    /// Tax on `subtotal` (WooCommerce `subtotal_tax`).
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub subtotal_tax: Option<Decimal>,
    /// Discount on this line (`subtotal - total`).
    #[serde(with = "serde_decimal")]
    pub discount: Decimal,
    /// Line amount after discounts.
    #[serde(with = "serde_decimal")]
    pub total: Decimal,
    /// Tax on `total`.
    #[serde(with = "serde_decimal")]
    pub total_tax: Decimal,
    /// The tax rate in percent when the line has exactly one known rate.
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub tax_rate_percent: Option<Decimal>,
    /// Per-rate taxes of the line, unrounded where the shop sends them so.
    #[serde(default)]
    pub taxes: Vec<LineTax>,
}

/// The rate of a line taxed at exactly one known rate.
pub(crate) fn single_rate(taxes: &[LineTax]) -> Option<Decimal> {
    match taxes {
        [only] => only.rate_percent,
        _ => None,
    }
}

/// One tax rate's share of a line, shipping line or fee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineTax {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_percent: Option<Decimal>,
    /// Tax after discounts.
    #[serde(with = "serde_decimal")]
    pub amount: Decimal,
    /// Tax before discounts, when reported.
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub subtotal_amount: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippingLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_line_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_id: Option<String>,
    pub title: String,
    /// Before shipping discounts (Shopify `price`); equals `total` when not reported.
    #[serde(with = "serde_decimal")]
    pub subtotal: Decimal,
    #[serde(with = "serde_decimal")]
    pub discount: Decimal,
    /// After shipping discounts.
    #[serde(with = "serde_decimal")]
    pub total: Decimal,
    #[serde(with = "serde_decimal")]
    pub total_tax: Decimal,
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub tax_rate_percent: Option<Decimal>,
    #[serde(default)]
    pub taxes: Vec<LineTax>,
}

/// A fee line (WooCommerce `fee_lines`; Shopify tips). Can be negative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fee {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_line_id: Option<String>,
    pub name: String,
    #[serde(default = "default_true")]
    pub taxable: bool,
    #[serde(with = "serde_decimal")]
    pub total: Decimal,
    #[serde(with = "serde_decimal")]
    pub total_tax: Decimal,
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub tax_rate_percent: Option<Decimal>,
    #[serde(default)]
    pub taxes: Vec<LineTax>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    /// A fixed amount (WooCommerce `fixed_cart`/`fixed_product`, Shopify `fixed_amount`).
    Fixed,
    Percentage,
    FreeShipping,
    Other,
}

/// A coupon or discount code applied to the order. The amounts are already contained in
/// the lines' `discount`; this records what was applied and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub kind: DiscountKind,
    /// The shop's own kind word (`fixed_cart`, `percent`, `fixed_amount`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_kind: Option<String>,
    /// Nominal value: percent for percentage discounts, amount for fixed ones.
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Decimal>,
    /// Discount actually granted (WooCommerce: net of tax).
    #[serde(with = "serde_decimal")]
    pub amount: Decimal,
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub amount_tax: Option<Decimal>,
}

/// Order-level tax total of one rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaxLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_code: Option<String>,
    pub label: String,
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_percent: Option<Decimal>,
    #[serde(default)]
    pub compound: bool,
    /// All tax of this rate (items + shipping + fees).
    #[serde(with = "serde_decimal")]
    pub amount: Decimal,
    /// WooCommerce `tax_total` (items and fees).
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub items_amount: Option<Decimal>,
    /// WooCommerce `shipping_tax_total`.
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub shipping_amount: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod {
    /// Gateway id (`bacs`, `stripe`, Shopify gateway name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A customer: the shop account when there is one, else the order's billing identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// `None` for guest checkouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default)]
    pub tax_exempt: bool,
    /// Shopify `tax_exemptions` (e.g. `EU_REVERSE_CHARGE_EXEMPTION_RULE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tax_exemptions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Address>,
}

impl Customer {
    /// A deleted shop customer: its id is all the shops send.
    pub fn deleted(shop_customer_id: String) -> Self {
        Customer {
            shop_customer_id: Some(shop_customer_id),
            email: None,
            first_name: None,
            last_name: None,
            company: None,
            vat_number: None,
            phone: None,
            tax_exempt: false,
            tax_exemptions: Vec::new(),
            billing: None,
            shipping: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Full name when the shop gives one; otherwise first and last name joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// Street lines, blanks removed.
    #[serde(default)]
    pub street: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_number: Option<String>,
}

impl Address {
    /// True when no field is set (shops send all-blank address objects for "none").
    pub fn is_empty(&self) -> bool {
        *self == Address::default()
    }

    /// "First Last" from whichever parts are present.
    pub(crate) fn joined_name(first: &Option<String>, last: &Option<String>) -> Option<String> {
        let parts: Vec<&str> = [first.as_deref(), last.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// Money given back to the customer. All amounts are positive magnitudes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_refund_id: Option<String>,
    pub shop_order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Total refunded (tax included).
    #[serde(with = "serde_decimal")]
    pub amount: Decimal,
    /// Refunded items, when the shop itemised the refund.
    #[serde(default)]
    pub lines: Vec<RefundLine>,
    #[serde(default)]
    pub shipping: Vec<RefundShipping>,
    /// Shopify `order_adjustments`, amounts as the shop reports them (negative = refunded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjustments: Vec<RefundAdjustment>,
    /// Whether the line, shipping and adjustment amounts include their tax (Shopify
    /// `taxes_included` shops), when the parser could tell from the refund's
    /// transactions; `None`: as the order's amounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amounts_include_tax: Option<bool>,
}

impl Refund {
    /// A stable key of this refund across deliveries: the shop's id, else a digest of
    /// what was given back and when (bookings and credit-note references use it).
    pub fn key(&self) -> String {
        match &self.shop_refund_id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                h.update(self.amount.to_string().as_bytes());
                h.update(
                    self.created_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default()
                        .as_bytes(),
                );
                format!("h{}", &crate::crypto::hex(&h.finalize())[..16])
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundLine {
    /// The refunded order line (`Line::shop_line_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_line_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(with = "serde_decimal")]
    pub quantity: Decimal,
    /// Refunded amount of the line before tax, when reported.
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub subtotal: Option<Decimal>,
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub tax: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundShipping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_line_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(with = "serde_decimal")]
    pub amount: Decimal,
    #[serde(with = "serde_decimal")]
    pub tax: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundAdjustment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(with = "serde_decimal")]
    pub amount: Decimal,
    #[serde(
        default,
        with = "serde_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub tax: Option<Decimal>,
}

// The wire form is `{"version":1,"kind":"order_paid","order":{…}}`. It is written by hand
// instead of `#[serde(tag = "kind")]`: internally tagged enums buffer their content, which
// breaks `arbitrary_precision` numbers.

#[derive(Serialize)]
struct WireOut<'a> {
    version: u32,
    kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<&'a Order>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund: Option<&'a Refund>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<&'a Customer>,
}

#[derive(Deserialize)]
struct WireIn {
    version: u32,
    kind: EventKind,
    #[serde(default)]
    order: Option<Order>,
    #[serde(default)]
    refund: Option<Refund>,
    #[serde(default)]
    customer: Option<Customer>,
}

impl Serialize for ShopEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut wire = WireOut {
            version: EVENT_VERSION,
            kind: self.kind(),
            order: None,
            refund: None,
            customer: None,
        };
        match self {
            ShopEvent::OrderPaid(o) | ShopEvent::OrderUpdated(o) | ShopEvent::OrderCancelled(o) => {
                wire.order = Some(o)
            }
            ShopEvent::OrderRefunded { refund, order } => {
                wire.refund = Some(refund);
                wire.order = order.as_deref();
            }
            ShopEvent::CustomerUpserted(c) | ShopEvent::CustomerDeleted(c) => {
                wire.customer = Some(c)
            }
        }
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ShopEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = WireIn::deserialize(deserializer)?;
        if wire.version != EVENT_VERSION {
            return Err(D::Error::custom(format_args!(
                "unsupported version, expected {EVENT_VERSION}"
            )));
        }
        let need = |what: &'static str| {
            D::Error::custom(format_args!(
                "kind `{}` requires field `{what}`",
                wire.kind.as_str()
            ))
        };
        Ok(match wire.kind {
            EventKind::OrderPaid => ShopEvent::OrderPaid(wire.order.ok_or_else(|| need("order"))?),
            EventKind::OrderUpdated => {
                ShopEvent::OrderUpdated(wire.order.ok_or_else(|| need("order"))?)
            }
            EventKind::OrderCancelled => {
                ShopEvent::OrderCancelled(wire.order.ok_or_else(|| need("order"))?)
            }
            EventKind::OrderRefunded => ShopEvent::OrderRefunded {
                refund: wire.refund.ok_or_else(|| need("refund"))?,
                order: wire.order.map(Box::new),
            },
            EventKind::CustomerUpserted => {
                ShopEvent::CustomerUpserted(wire.customer.ok_or_else(|| need("customer"))?)
            }
            EventKind::CustomerDeleted => {
                ShopEvent::CustomerDeleted(wire.customer.ok_or_else(|| need("customer"))?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    fn customer() -> Customer {
        Customer {
            shop_customer_id: Some("25".into()),
            email: Some("a@example.com".into()),
            first_name: None,
            last_name: None,
            company: None,
            vat_number: Some("SI12345678".into()),
            phone: None,
            tax_exempt: false,
            tax_exemptions: vec![],
            billing: None,
            shipping: None,
        }
    }

    #[test]
    fn wire_form_is_versioned_and_tagged() {
        let ev = ShopEvent::CustomerUpserted(customer());
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["kind"], "customer_upserted");
        assert_eq!(json["customer"]["vat_number"], "SI12345678");
        let back: ShopEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn wrong_version_or_missing_payload_is_rejected() {
        let err = serde_json::from_str::<ShopEvent>(
            r#"{"version":2,"kind":"customer_upserted","customer":{}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unsupported version"), "{err}");
        let err =
            serde_json::from_str::<ShopEvent>(r#"{"version":1,"kind":"order_paid"}"#).unwrap_err();
        assert!(err.to_string().contains("requires field `order`"), "{err}");
    }

    #[test]
    fn refund_amounts_round_trip_exactly() {
        let ev = ShopEvent::OrderRefunded {
            refund: Refund {
                shop_refund_id: Some("1".into()),
                shop_order_id: "9".into(),
                currency: Some("EUR".into()),
                created_at: None,
                reason: None,
                amount: dec!(10.00),
                lines: vec![RefundLine {
                    shop_line_id: None,
                    sku: None,
                    name: None,
                    quantity: dec!(1),
                    subtotal: Some(dec!(0.352941)),
                    tax: None,
                }],
                shipping: vec![],
                adjustments: vec![],
                amounts_include_tax: None,
            },
            order: None,
        };
        let text = serde_json::to_string(&ev).unwrap();
        assert!(text.contains(r#""amount":"10.00""#), "{text}");
        let back: ShopEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ev);
        assert_eq!(back.shop_order_id(), Some("9"));
    }
}
