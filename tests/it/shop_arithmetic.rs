//! Orders built the way each platform computes them, as webhook bodies, with the shop's
//! own figures (total and VAT per rate) the booked document must equal. Written from the
//! platforms' documentation and code (WooCommerce `WC_Cart_Totals`/`WC_Abstract_Order`,
//! Shopify's REST resources; docs/mapping.md says how the service books them), not from
//! the service's parsers or mapping, so a test built on these checks the service against
//! the platforms' arithmetic.
//!
//! WooCommerce: everything in minor units of the price decimals (`dp`);
//! line tax per rate from the line total (`calc_inclusive_tax` on gross prices, exclusive
//! otherwise), kept unrounded in `taxes[]`; per-line mode rounds each line's tax to `dp`
//! (half-down when prices include tax, half-up otherwise) and the order sums the rounded
//! taxes, round-at-subtotal mode sums unrounded taxes and rounds once per rate; stored line
//! totals are net (gross − unrounded tax on inclusive shops), REST shows them rounded;
//! coupons: `percent` floors per line and hands the rest out one minor unit at a time,
//! `fixed_cart` shares per unit the same way, both on the gross price of inclusive shops;
//! shipping costs are net, taxed at the first line's class; positive fees are net and taxed
//! at their class; a negative fee's tax is split over the classes in proportion to the
//! net of the non-negative lines, fees and shipping of each class.
//!
//! Shopify: `taxes_included` makes line, shipping and refund amounts gross;
//! a discount code is allocated over lines (`discount_allocations`); each line's and the
//! shipping line's tax is rounded to cents on its own and the order's tax is their sum;
//! every money field has `shop_money` and `presentment_money`; a refund carries its lines'
//! `subtotal` (on the order's basis) and `total_tax`, its shipping (`subtotal_amount_set`,
//! `tax_amount_set`), `order_adjustments` (`refund_discrepancy`, positive = kept by the
//! shop) and the refund transaction with the money given back.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};

/// A VAT country and its rates (percent), standard first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vat {
    Si,
    Hr,
    Rs,
}

impl Vat {
    pub fn rates(self) -> &'static [i64] {
        // Percent × 10, so 9.5 % fits an integer.
        match self {
            Vat::Si => &[220, 95, 50],
            Vat::Hr => &[250, 130, 50],
            Vat::Rs => &[200, 100],
        }
    }

    pub fn rate(self, class: usize) -> Decimal {
        let r = self.rates();
        Decimal::new(r[class % r.len()], 1)
    }

    pub fn code(self) -> &'static str {
        match self {
            Vat::Si => "SI",
            Vat::Hr => "HR",
            Vat::Rs => "RS",
        }
    }
}

/// What the shop says the document must come to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShopFigures {
    pub total: Decimal,
    /// VAT per percent (normalised), zero entries left out.
    pub vat: BTreeMap<Decimal, Decimal>,
}

impl ShopFigures {
    fn add_vat(&mut self, percent: Decimal, amount: Decimal) {
        *self.vat.entry(percent.normalize()).or_default() += amount;
    }

    fn finish(mut self) -> Self {
        self.vat.retain(|_, v| !v.is_zero());
        self
    }
}

/// An amount as `wc_format_decimal`/Shopify print it: rounded half up to `dp`.
fn money(d: Decimal, dp: u32) -> String {
    format!("{:.*}", dp as usize, round_half_up(d, dp))
}

fn six(d: Decimal) -> String {
    d.round_dp(6).normalize().to_string()
}

fn round_half_up(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// `wc_round_tax_total`: half-down when prices include tax, half-up otherwise.
fn wc_round_tax(d: Decimal, dp: u32, inclusive: bool) -> Decimal {
    let s = if inclusive {
        RoundingStrategy::MidpointTowardZero
    } else {
        RoundingStrategy::MidpointAwayFromZero
    };
    d.round_dp_with_strategy(dp, s)
}

// ------------------------------------------------------------------ WooCommerce

#[derive(Debug, Clone)]
pub enum WooCoupon {
    Percent(i64),
    /// A fixed cart amount in minor units.
    FixedCart(i64),
}

#[derive(Debug, Clone)]
pub struct WooSpec {
    pub vat: Vat,
    /// Price decimals (`woocommerce_price_num_decimals`).
    pub dp: u32,
    pub prices_include_tax: bool,
    pub round_at_subtotal: bool,
    /// Unit price in minor units, quantity, tax class.
    pub lines: Vec<(i64, i64, usize)>,
    pub coupon: Option<WooCoupon>,
    /// Shipping cost in minor units (0: free shipping).
    pub shipping: Option<i64>,
    /// Fees in minor units (negative: a discount as a fee) and their class.
    pub fees: Vec<(i64, usize)>,
}

fn minor(dp: u32) -> Decimal {
    Decimal::new(1, dp)
}

/// Discounts per line (minor units) as `WC_Discounts` hands them out.
fn woo_discounts(spec: &WooSpec, subtotals: &[i64]) -> Vec<i64> {
    let n = spec.lines.len();
    let mut out = vec![0i64; n];
    let Some(coupon) = &spec.coupon else {
        return out;
    };
    // Items sorted by line value, highest first.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(subtotals[i]));
    let units: Vec<i64> = spec.lines.iter().map(|l| l.1).collect();
    let total_target = match coupon {
        WooCoupon::Percent(p) => {
            for &i in &order {
                out[i] = subtotals[i] * p / 100;
            }
            let whole: i64 = subtotals.iter().sum();
            round_half_up(
                Decimal::from(whole) * Decimal::from(*p) / Decimal::ONE_HUNDRED,
                0,
            )
            .try_into()
            .unwrap_or(0i64)
        }
        WooCoupon::FixedCart(a) => {
            let all_units: i64 = units.iter().sum();
            let per_unit = a / all_units.max(1);
            for &i in &order {
                out[i] = (per_unit * units[i]).min(subtotals[i]);
            }
            *a.min(&subtotals.iter().sum())
        }
    };
    // The rest, one minor unit per unit of each line, in sort order.
    let mut rest = total_target - out.iter().sum::<i64>();
    while rest > 0 {
        let before = rest;
        for &i in &order {
            let room = subtotals[i] - out[i];
            let give = units[i].min(rest).min(room);
            out[i] += give;
            rest -= give;
            if rest == 0 {
                break;
            }
        }
        if rest == before {
            break;
        }
    }
    out
}

/// A WooCommerce order body (REST v3, as `order.updated` delivers it) and its figures.
pub fn woo_order(spec: &WooSpec, id: u64) -> (Value, ShopFigures) {
    let dp = spec.dp;
    let u = minor(dp);
    let incl = spec.prices_include_tax;
    let per_line = !spec.round_at_subtotal;
    let vat = spec.vat;
    let rate_id = |class: usize| (class % vat.rates().len()) as i64 + 1;
    let tax_of = |amount: Decimal, r: Decimal, inclusive: bool| {
        let t = if inclusive {
            amount * r / (Decimal::ONE_HUNDRED + r)
        } else {
            amount * r / Decimal::ONE_HUNDRED
        };
        t.round_dp(6)
    };
    // Per rate id: (items + fees tax, shipping tax), unrounded and rounded per line.
    let mut items_tax_u: BTreeMap<i64, Decimal> = BTreeMap::new();
    let mut items_tax_r: BTreeMap<i64, Decimal> = BTreeMap::new();
    let mut ship_tax_u: BTreeMap<i64, Decimal> = BTreeMap::new();
    let mut ship_tax_r: BTreeMap<i64, Decimal> = BTreeMap::new();
    let mut class_cost: BTreeMap<usize, Decimal> = BTreeMap::new();
    let mut net_sum_u = Decimal::ZERO;
    let mut net_sum_r = Decimal::ZERO;

    let subtotals: Vec<i64> = spec.lines.iter().map(|l| l.0 * l.1).collect();
    let discounts = woo_discounts(spec, &subtotals);
    let mut line_items = Vec::new();
    for (i, &(_, qty, class)) in spec.lines.iter().enumerate() {
        let r = vat.rate(class);
        let s = Decimal::from(subtotals[i]) * u;
        let t = Decimal::from(subtotals[i] - discounts[i]) * u;
        let ts_u = tax_of(s, r, incl);
        let t_u = tax_of(t, r, incl);
        let (net_s, net_t) = if incl { (s - ts_u, t - t_u) } else { (s, t) };
        let t_r = wc_round_tax(t_u, dp, incl);
        let ts_r = wc_round_tax(ts_u, dp, incl);
        *items_tax_u.entry(rate_id(class)).or_default() += t_u;
        *items_tax_r.entry(rate_id(class)).or_default() += t_r;
        *class_cost.entry(class % vat.rates().len()).or_default() += net_t;
        net_sum_u += net_t;
        net_sum_r += round_half_up(net_t, dp);
        let shown_tax = if per_line {
            t_r
        } else {
            round_half_up(t_u, dp)
        };
        line_items.push(json!({
            "id": 100 + i, "name": format!("Product {i}"), "product_id": 500 + i,
            "variation_id": 0, "quantity": qty, "tax_class": "", "sku": format!("GEN-{i}"),
            "subtotal": money(net_s, dp), "subtotal_tax": money(if per_line { ts_r } else { round_half_up(ts_u, dp) }, dp),
            "total": money(net_t, dp), "total_tax": money(shown_tax, dp),
            "taxes": [{"id": rate_id(class), "total": six(t_u), "subtotal": six(ts_u)}],
            "price": (net_t / Decimal::from(qty)).round_dp(6).normalize().to_string(),
            "meta_data": []
        }));
    }
    let mut shipping_lines = Vec::new();
    let mut ship_total = Decimal::ZERO;
    if let Some(cost) = spec.shipping {
        let class = spec.lines.first().map_or(0, |l| l.2);
        let r = vat.rate(class);
        let c = Decimal::from(cost) * u;
        // Shipping is always taxed on its net cost.
        let t_u = if cost == 0 {
            Decimal::ZERO
        } else {
            tax_of(c, r, false)
        };
        let t_r = wc_round_tax(t_u, dp, incl);
        if cost != 0 {
            *ship_tax_u.entry(rate_id(class)).or_default() += t_u;
            *ship_tax_r.entry(rate_id(class)).or_default() += t_r;
            *class_cost.entry(class % vat.rates().len()).or_default() += c;
        }
        ship_total = c;
        shipping_lines.push(json!({
            "id": 300, "method_title": if cost == 0 { "Free shipping" } else { "Flat rate" },
            "method_id": if cost == 0 { "free_shipping" } else { "flat_rate" },
            "total": money(c, dp),
            "total_tax": money(if per_line { t_r } else { round_half_up(t_u, dp) }, dp),
            "taxes": if cost == 0 { json!([]) } else { json!([{"id": rate_id(class), "total": six(t_u), "subtotal": ""}]) },
            "meta_data": []
        }));
    }
    let mut fee_lines = Vec::new();
    let mut fee_total = Decimal::ZERO;
    // Positive fees first: they count in the class costs a negative fee is split by.
    let mut fees = spec.fees.clone();
    fees.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (k, &(amount, class)) in fees.iter().enumerate() {
        let f = Decimal::from(amount) * u;
        let mut taxes = Vec::new();
        let mut tax_r_sum = Decimal::ZERO;
        let mut tax_u_sum = Decimal::ZERO;
        let parts: Vec<(usize, Decimal)> = if amount >= 0 {
            *class_cost.entry(class % vat.rates().len()).or_default() += f;
            vec![(class % vat.rates().len(), f)]
        } else {
            let all: Decimal = class_cost.values().sum();
            class_cost
                .iter()
                .filter(|(_, c)| !c.is_zero() && !all.is_zero())
                .map(|(cl, c)| (*cl, f * *c / all))
                .collect()
        };
        for (cl, share) in parts {
            let t_u = tax_of(share, vat.rate(cl), false);
            let t_r = wc_round_tax(t_u, dp, incl);
            *items_tax_u.entry(rate_id(cl)).or_default() += t_u;
            *items_tax_r.entry(rate_id(cl)).or_default() += t_r;
            tax_r_sum += t_r;
            tax_u_sum += t_u;
            taxes.push(json!({"id": rate_id(cl), "total": six(t_u), "subtotal": ""}));
        }
        fee_total += f;
        fee_lines.push(json!({
            "id": 400 + k, "name": if amount < 0 { "Discount" } else { "Handling" },
            "tax_class": "", "tax_status": "taxable", "total": money(f, dp),
            "total_tax": money(if per_line { tax_r_sum } else { round_half_up(tax_u_sum, dp) }, dp),
            "taxes": taxes, "meta_data": []
        }));
    }
    // The order's tax lines and total (`WC_Abstract_Order::update_taxes`, `calculate_totals`).
    let mut figures = ShopFigures::default();
    let mut tax_lines = Vec::new();
    let mut all_tax = Decimal::ZERO;
    let ids: Vec<i64> = items_tax_u
        .keys()
        .chain(ship_tax_u.keys())
        .copied()
        .collect();
    let mut ids = ids;
    ids.sort();
    ids.dedup();
    for id in ids {
        let (items, ship) = if per_line {
            (
                items_tax_r.get(&id).copied().unwrap_or_default(),
                ship_tax_r.get(&id).copied().unwrap_or_default(),
            )
        } else {
            (
                wc_round_tax(items_tax_u.get(&id).copied().unwrap_or_default(), dp, incl),
                wc_round_tax(ship_tax_u.get(&id).copied().unwrap_or_default(), dp, incl),
            )
        };
        let percent = Decimal::new(vat.rates()[(id - 1) as usize], 1);
        figures.add_vat(percent, items + ship);
        all_tax += items + ship;
        tax_lines.push(json!({
            "id": 900 + id, "rate_code": format!("{}-VAT-{id}", vat.code()), "rate_id": id,
            "label": "DDV", "compound": false, "tax_total": money(items, dp),
            "shipping_tax_total": money(ship, dp), "rate_percent": percent.normalize().to_string(),
            "meta_data": []
        }));
    }
    let lines_net = if per_line { net_sum_r } else { net_sum_u };
    let total = round_half_up(lines_net + fee_total + ship_total + all_tax, dp);
    figures.total = total;
    let currency = if vat == Vat::Rs { "RSD" } else { "EUR" };
    let body = json!({
        "id": id, "parent_id": 0, "number": id.to_string(), "order_key": format!("wc_order_{id}"),
        "created_via": "checkout", "version": "8.5.0", "status": "processing",
        "currency": currency, "prices_include_tax": incl,
        "date_created_gmt": "2025-03-14T09:00:00", "date_modified_gmt": format!("2025-03-14T09:{:02}:{:02}", id % 60, (id / 60) % 60),
        "date_paid_gmt": "2025-03-14T09:01:00",
        "discount_total": "0", "discount_tax": "0",
        "shipping_total": money(ship_total, dp), "shipping_tax": "0",
        "cart_tax": "0", "total": money(total, dp), "total_tax": money(all_tax, dp),
        "customer_id": 0,
        "billing": {"first_name": "Ana", "last_name": format!("Kupec{id}"), "company": "",
            "address_1": "Glavna 1", "address_2": "", "city": "Mesto", "state": "",
            "postcode": "1000", "country": vat.code(), "email": format!("ana{id}@example.com"), "phone": ""},
        "shipping": {"first_name": "", "last_name": "", "company": "", "address_1": "", "address_2": "",
            "city": "", "state": "", "postcode": "", "country": ""},
        "payment_method": "", "payment_method_title": "",
        "line_items": line_items, "tax_lines": tax_lines, "shipping_lines": shipping_lines,
        "fee_lines": fee_lines, "coupon_lines": [], "refunds": [], "meta_data": []
    });
    (body, figures.finish())
}

/// WooCommerce orders: 1–4 lines over the country's classes, prices with and without
/// tax, 2 price decimals (and 0 for RSD shops), per-line or subtotal rounding, percent
/// and fixed coupons, taxed or free shipping, positive and negative fees.
pub fn woo_spec() -> impl Strategy<Value = WooSpec> {
    (
        prop_oneof![Just(Vat::Si), Just(Vat::Hr), Just(Vat::Rs)],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((1i64..20_000, 1i64..6, 0usize..3), 1..5),
        prop_oneof![
            3 => Just(None),
            1 => (5i64..40).prop_map(|p| Some(WooCoupon::Percent(p))),
            1 => (100i64..1_500).prop_map(|a| Some(WooCoupon::FixedCart(a))),
        ],
        prop_oneof![Just(None), Just(Some(0i64)), (100i64..1_500).prop_map(Some)],
        prop::collection::vec((-800i64..1_000, 0usize..3), 0..3),
    )
        .prop_map(
            |(vat, incl, subtotal, zero_dp, lines, coupon, shipping, fees)| {
                // 0 price decimals only for dinars; amounts are then whole dinars.
                let dp = if vat == Vat::Rs && zero_dp { 0 } else { 2 };
                let fees = fees.into_iter().filter(|f| f.0 != 0).collect();
                WooSpec {
                    vat,
                    dp,
                    prices_include_tax: incl,
                    round_at_subtotal: subtotal,
                    lines,
                    coupon,
                    shipping,
                    fees,
                }
            },
        )
        .prop_filter("a negative fee may not exceed the lines", |s| {
            let lines: i64 = s.lines.iter().map(|l| l.0 * l.1).sum();
            let neg: i64 = s.fees.iter().filter(|f| f.0 < 0).map(|f| -f.0).sum();
            neg * 2 < lines
        })
}

// ---------------------------------------------------------------------- Shopify

#[derive(Debug, Clone)]
pub enum ShopifyDiscount {
    Percent(i64),
    /// Fixed amount in cents, allocated across the lines.
    Fixed(i64),
}

#[derive(Debug, Clone)]
pub struct ShopifyRefundSpec {
    /// (line index, quantity refunded).
    pub lines: Vec<(usize, i64)>,
    pub shipping: bool,
    /// A refund discrepancy in cents (positive: kept by the shop, e.g. restocking).
    pub adjustment: i64,
}

#[derive(Debug, Clone)]
pub struct ShopifySpec {
    pub vat: Vat,
    pub taxes_included: bool,
    /// Presentment currency and shop money per unit of it (`None`: single currency).
    pub presentment: Option<(&'static str, Decimal)>,
    /// Unit price in cents, quantity, class.
    pub lines: Vec<(i64, i64, usize)>,
    pub discount: Option<ShopifyDiscount>,
    /// Shipping price in cents and whether a free-shipping discount zeroes it.
    pub shipping: Option<(i64, bool)>,
    pub refund: Option<ShopifyRefundSpec>,
}

fn set(amount: Decimal, currency: &str, shop: &str, fx: Decimal) -> Value {
    json!({
        "shop_money": {"amount": money(round_half_up(amount * fx, 2), 2), "currency_code": shop},
        "presentment_money": {"amount": money(amount, 2), "currency_code": currency}
    })
}

/// A Shopify order (`orders/paid` body), its refund (`refunds/create` body, when the spec
/// has one) and the figures of each, in the currency the customer paid.
pub fn shopify_order(
    spec: &ShopifySpec,
    id: u64,
) -> (Value, ShopFigures, Option<(Value, ShopFigures)>) {
    let cent = Decimal::new(1, 2);
    let vat = spec.vat;
    let shop_cur = if vat == Vat::Rs { "RSD" } else { "EUR" };
    let (cur, fx) = spec.presentment.unwrap_or((shop_cur, Decimal::ONE));
    let m = |a: Decimal| set(a, cur, shop_cur, fx);
    let incl = spec.taxes_included;
    let tax_of = |amount: Decimal, r: Decimal| {
        let t = if incl {
            amount * r / (Decimal::ONE_HUNDRED + r)
        } else {
            amount * r / Decimal::ONE_HUNDRED
        };
        round_half_up(t, 2)
    };
    let line_amounts: Vec<i64> = spec.lines.iter().map(|l| l.0 * l.1).collect();
    let whole: i64 = line_amounts.iter().sum();
    let mut allocs = vec![0i64; spec.lines.len()];
    if let Some(d) = &spec.discount {
        let total = match d {
            ShopifyDiscount::Percent(p) => i64::try_from(round_half_up(
                Decimal::from(whole * p) / Decimal::ONE_HUNDRED,
                0,
            ))
            .unwrap_or(0),
            ShopifyDiscount::Fixed(f) => (*f).min(whole),
        };
        let mut given = 0;
        for (i, a) in line_amounts.iter().enumerate() {
            allocs[i] = total * a / whole.max(1);
            given += allocs[i];
        }
        if let Some(last) = allocs.last_mut() {
            *last += total - given;
        }
    }
    let mut figures = ShopFigures::default();
    let mut line_items = Vec::new();
    let mut line_net = Vec::new();
    let mut sum_amount = Decimal::ZERO;
    let mut sum_tax = Decimal::ZERO;
    let mut tax_by_rate: BTreeMap<Decimal, Decimal> = BTreeMap::new();
    for (i, &(price, qty, class)) in spec.lines.iter().enumerate() {
        let r = vat.rate(class);
        let amount = Decimal::from(line_amounts[i] - allocs[i]) * cent;
        let tax = tax_of(amount, r);
        sum_amount += amount;
        sum_tax += tax;
        *tax_by_rate.entry(r).or_default() += tax;
        figures.add_vat(r, tax);
        line_net.push((amount, tax, qty, r));
        let alloc = Decimal::from(allocs[i]) * cent;
        line_items.push(json!({
            "id": 7000 + i, "product_id": 8000 + i, "variant_id": 9000 + i,
            "name": format!("Item {i}"), "title": format!("Item {i}"), "sku": format!("SH-{i}"),
            "quantity": qty, "price": money(Decimal::from(price) * cent, 2),
            "price_set": m(Decimal::from(price) * cent),
            "total_discount": "0.00", "total_discount_set": m(Decimal::ZERO),
            "discount_allocations": if allocs[i] == 0 { json!([]) } else {
                json!([{"amount": money(alloc, 2), "amount_set": m(alloc), "discount_application_index": 0}])
            },
            "taxable": true,
            "tax_lines": [{"title": "VAT", "rate": (r / Decimal::ONE_HUNDRED).normalize().to_string(),
                "price": money(tax, 2), "price_set": m(tax), "channel_liable": false}]
        }));
    }
    let mut shipping_lines = Vec::new();
    let mut ship = Decimal::ZERO;
    let mut ship_tax = Decimal::ZERO;
    let ship_rate = vat.rate(0);
    if let Some((price, free)) = spec.shipping {
        let p = Decimal::from(price) * cent;
        ship = if free { Decimal::ZERO } else { p };
        ship_tax = tax_of(ship, ship_rate);
        if !ship_tax.is_zero() {
            *tax_by_rate.entry(ship_rate).or_default() += ship_tax;
            figures.add_vat(ship_rate, ship_tax);
        }
        shipping_lines.push(json!({
            "id": 6000, "title": "Standard", "code": "standard", "price": money(p, 2), "price_set": m(p),
            "discounted_price": money(ship, 2), "discounted_price_set": m(ship),
            "tax_lines": if ship_tax.is_zero() { json!([]) } else {
                json!([{"title": "VAT", "rate": (ship_rate / Decimal::ONE_HUNDRED).normalize().to_string(),
                    "price": money(ship_tax, 2), "price_set": m(ship_tax)}])
            }
        }));
    }
    let total_tax = sum_tax + ship_tax;
    let total = sum_amount + ship + if incl { Decimal::ZERO } else { total_tax };
    figures.total = total;
    let tax_lines: Vec<Value> = tax_by_rate
        .iter()
        .map(|(r, t)| json!({"title": "VAT", "rate": (r / Decimal::ONE_HUNDRED).normalize().to_string(), "price": money(*t, 2), "price_set": m(*t)}))
        .collect();
    let discount_total = Decimal::from(allocs.iter().sum::<i64>()) * cent;
    let order = json!({
        "id": id, "name": format!("#G{id}"), "order_number": id, "currency": shop_cur,
        "presentment_currency": cur, "financial_status": "paid", "taxes_included": incl,
        "created_at": "2025-03-14T10:00:00+01:00", "updated_at": "2025-03-14T10:00:00+01:00",
        "email": format!("kupec{id}@example.com"), "test": false,
        "total_price": money(total, 2), "total_price_set": m(total),
        "subtotal_price": money(sum_amount, 2), "subtotal_price_set": m(sum_amount),
        "total_line_items_price": money(Decimal::from(whole) * cent, 2),
        "total_line_items_price_set": m(Decimal::from(whole) * cent),
        "total_discounts": money(discount_total, 2), "total_discounts_set": m(discount_total),
        "total_shipping_price_set": m(ship),
        "total_tax": money(total_tax, 2), "total_tax_set": m(total_tax),
        "line_items": line_items, "shipping_lines": shipping_lines, "tax_lines": tax_lines,
        "discount_codes": [], "discount_applications": [], "refunds": [],
        "billing_address": {"first_name": "Mia", "last_name": format!("K{id}"), "address1": "Ulica 2",
            "city": "Grad", "zip": "10000", "country_code": vat.code()},
        "payment_gateway_names": []
    });
    let refund = spec.refund.as_ref().and_then(|r| {
        let mut figures = ShopFigures::default();
        let mut items = Vec::new();
        let mut paid = Decimal::ZERO;
        for &(i, k) in &r.lines {
            let (amount, tax, qty, rate) = line_net[i];
            let share = round_half_up(amount * Decimal::from(k) / Decimal::from(qty), 2);
            let share_tax = round_half_up(tax * Decimal::from(k) / Decimal::from(qty), 2);
            paid += share + if incl { Decimal::ZERO } else { share_tax };
            figures.add_vat(rate, -share_tax);
            items.push(json!({
                "id": 5000 + i, "line_item_id": 7000 + i, "quantity": k, "restock_type": "return",
                "subtotal": money(share, 2), "subtotal_set": m(share),
                "total_tax": money(share_tax, 2), "total_tax_set": m(share_tax),
                "line_item": {"id": 7000 + i, "sku": format!("SH-{i}"), "name": format!("Item {i}")}
            }));
        }
        let mut ship_lines = Vec::new();
        if r.shipping && !ship.is_zero() {
            paid += ship + if incl { Decimal::ZERO } else { ship_tax };
            figures.add_vat(ship_rate, -ship_tax);
            ship_lines.push(json!({
                "id": 4000, "shipping_line_id": 6000, "subtotal_amount_set": m(ship),
                "tax_amount_set": m(ship_tax), "shipping_line": {"id": 6000, "title": "Standard"}
            }));
        }
        let mut adjustments = Vec::new();
        let adj = Decimal::from(r.adjustment) * cent;
        if !adj.is_zero() && paid - adj > Decimal::ZERO {
            paid -= adj;
            adjustments.push(json!({
                "id": 3000, "order_id": id, "refund_id": 2000 + id, "kind": "refund_discrepancy",
                "reason": "Restocking fee", "amount": money(adj, 2), "amount_set": m(adj),
                "tax_amount": "0.00", "tax_amount_set": m(Decimal::ZERO)
            }));
        }
        if paid <= Decimal::ZERO {
            // Nothing given back: no refund.
            return None;
        }
        figures.total = -paid;
        let body = json!({
            "id": 2000 + id, "order_id": id, "created_at": "2025-03-20T10:00:00+01:00",
            "processed_at": "2025-03-20T10:00:00+01:00", "note": "Vračilo",
            "refund_line_items": items, "refund_shipping_lines": ship_lines,
            "order_adjustments": adjustments,
            "transactions": [{"id": 1000 + id, "kind": "refund", "status": "success",
                "amount": money(paid, 2), "currency": cur,
                "amount_set": m(paid)}]
        });
        Some((body, figures.finish()))
    });
    (order, figures.finish(), refund)
}

/// Shopify orders: tax included or excluded, percent or fixed discounts, shipping (also
/// free), single- or multi-currency (presentment EUR/USD/GBP/CHF against the shop's
/// currency), and in half of the cases a partial refund of lines, shipping and a
/// refund discrepancy.
pub fn shopify_spec() -> impl Strategy<Value = ShopifySpec> {
    (
        prop_oneof![Just(Vat::Si), Just(Vat::Hr), Just(Vat::Rs)],
        any::<bool>(),
        prop_oneof![
            2 => Just(None),
            1 => Just(Some(("USD", Decimal::new(9210, 4)))),
            1 => Just(Some(("GBP", Decimal::new(11742, 4)))),
            1 => Just(Some(("CHF", Decimal::new(10513, 4)))),
        ],
        prop::collection::vec((1i64..30_000, 1i64..5, 0usize..3), 1..5),
        prop_oneof![
            2 => Just(None),
            1 => (5i64..40).prop_map(|p| Some(ShopifyDiscount::Percent(p))),
            1 => (100i64..2_000).prop_map(|a| Some(ShopifyDiscount::Fixed(a))),
        ],
        prop_oneof![Just(None), (200i64..1_500, any::<bool>()).prop_map(Some)],
        prop::option::of((
            prop::collection::vec((0usize..4, 1i64..5), 1..3),
            any::<bool>(),
            prop_oneof![2 => Just(0i64), 1 => -300i64..300],
        )),
    )
        .prop_map(
            |(vat, incl, presentment, lines, discount, shipping, refund)| {
                let refund = refund.map(|(picks, shipping, adjustment)| {
                    let mut seen = Vec::new();
                    let mut out = Vec::new();
                    for (i, k) in picks {
                        let i = i % lines.len();
                        if seen.contains(&i) {
                            continue;
                        }
                        seen.push(i);
                        out.push((i, k.min(lines[i].1)));
                    }
                    // Partial: the first line keeps at least one unit unless there are others.
                    if out.len() == lines.len() && out.iter().all(|&(i, k)| k == lines[i].1) {
                        out.pop();
                    }
                    ShopifyRefundSpec {
                        lines: out,
                        shipping,
                        adjustment,
                    }
                });
                ShopifySpec {
                    vat,
                    taxes_included: incl,
                    presentment,
                    lines,
                    discount,
                    shipping,
                    refund: refund.filter(|r| !r.lines.is_empty() || r.shipping),
                }
            },
        )
}
