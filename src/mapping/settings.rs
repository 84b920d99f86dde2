//! A tenant's booking settings: when and what to book, and how shop concepts map to
//! Minimax ones. Every field has a default that works for a typical Slovenian shop
//! that sells at standard VAT rates, so a new tenant needs only its credentials.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use crate::webshop::BookingCurrency;

/// When an order is booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BookingTrigger {
    /// When the shop reports it paid (WooCommerce `processing`/`completed` or
    /// `date_paid`; Shopify `orders/paid`).
    #[default]
    OnPaid,
    /// As soon as the order exists (e.g. bank transfer shops that invoice first).
    OnCreated,
}

/// Which Minimax document an order becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// An issued invoice left as a draft for the accountant to check and issue.
    #[default]
    InvoiceDraft,
    /// An issued invoice, issued at once (numbered, posted).
    InvoiceIssued,
    /// Issued, and the PDF generated; its attachment id is kept with the job result.
    InvoiceIssuedWithPdf,
    /// A received order (`orders`), for shops whose accountant invoices from orders.
    ReceivedOrder,
}

/// How shop customers become Minimax customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStrategy {
    /// One Minimax customer per shop customer, keyed by a stable code (shop customer
    /// id, or the billing e-mail for guests).
    #[default]
    PerShopCustomer,
    /// Every order on one catch-all customer (`catch_all_customer_code`).
    CatchAll,
}

/// When shop customers are written to Minimax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CustomerSync {
    /// On the shop's customer events (created, updated) as well as with orders, so the
    /// accountant has the customer before its first order and its new address after a
    /// move. An unchanged customer costs no call.
    #[default]
    OnCustomerEvents,
    /// Only when an order of the customer is booked (fewer calls).
    WithOrders,
}

/// How order lines find their Minimax item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ItemStrategy {
    /// The line's SKU is the Minimax item code; a missing item is created.
    #[default]
    BySkuCreateMissing,
    /// The line's SKU is the Minimax item code; a missing item fails the job with a
    /// reason naming the SKU (for shops whose items are managed in Minimax).
    BySkuRequireExisting,
    /// One generic service item per VAT rate; the product name goes on the row.
    GenericPerVatRate,
}

/// What a cancelled order does to a booked document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CancelAction {
    /// A draft is deleted; an issued invoice is credited in full.
    #[default]
    DeleteDraftOrCredit,
    /// Nothing is changed in Minimax; the cancellation is recorded with the job.
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BookingSettings {
    pub trigger: BookingTrigger,
    pub document: DocumentKind,
    pub customer_strategy: CustomerStrategy,
    pub customer_sync: CustomerSync,
    /// Prefix of customer codes made from shop ids (`WEB-123`, `WEB-jane@example.com`).
    pub customer_code_prefix: String,
    pub catch_all_customer_code: String,
    pub catch_all_customer_name: String,
    pub item_strategy: ItemStrategy,
    /// Item code prefix of the generic items (`<prefix><VAT rate code>`).
    pub generic_item_prefix: String,
    /// Service item for shipping rows.
    pub shipping_item_code: String,
    /// Service item for fee rows.
    pub fee_item_code: String,
    /// Service item of correction rows (rounding differences, docs/mapping.md).
    pub correction_item_code: String,
    /// Largest VAT (per rate) or total difference that correction rows may carry, in
    /// currency units. Unset: what rounding explains — one rounding unit per shop
    /// line plus one unit (a cent, or a whole unit for 0-decimal RSD/HUF shops). `0`
    /// turns corrections off.
    pub max_rounding_correction: Option<Decimal>,
    /// The currency an order is booked in: what the customer paid (Shopify presentment
    /// money, the WooCommerce order's currency) or the shop's own currency (Shopify
    /// shop money; WooCommerce orders carry only one currency).
    pub booking_currency: BookingCurrency,
    /// Shop tax rate (percent, as text: "22", "9.5") → Minimax VAT rate code. Rates not
    /// listed are matched automatically against the organisation's rates for the date.
    pub vat_rate_codes: BTreeMap<String, String>,
    /// Shop payment gateway id → Minimax payment method (name, code or id). Gateways not listed use
    /// `default_payment_method`; if that is empty, the job fails naming the gateway.
    pub payment_methods: BTreeMap<String, String>,
    pub default_payment_method: Option<String>,
    /// Minimax document numbering code (`DocumentNumbering.Code`); default numbering if unset.
    pub document_numbering: Option<String>,
    /// Report template names; Minimax's defaults if unset.
    pub invoice_report_template: Option<String>,
    pub credit_note_report_template: Option<String>,
    /// Cashier employee (name as in Minimax, or the employee's id), for cash-register style invoices.
    pub cashier_employee: Option<String>,
    /// Minimax analytic (id) put on every document, e.g. one per shop when several
    /// shops feed one organisation. An id, not a code: the Minimax API documents the
    /// `analytics` endpoint but not the fields a lookup by code would need.
    pub analytic_id: Option<i64>,
    /// Days until payment is due (the invoice's `DateDue`).
    pub payment_due_days: u32,
    /// Largest accepted difference between the planned document and the shop's totals.
    /// Zero means "to the cent" (amounts are compared after rounding to cents).
    pub total_tolerance: Decimal,
    pub cancel_action: CancelAction,
    /// Order meta keys holding the buyer's VAT number (WooCommerce plugins differ).
    pub woo_vat_meta_keys: Vec<String>,
    /// Book test orders (Shopify `test: true`).
    pub book_test_orders: bool,
}

impl Default for BookingSettings {
    fn default() -> Self {
        Self {
            trigger: BookingTrigger::default(),
            document: DocumentKind::default(),
            customer_strategy: CustomerStrategy::default(),
            customer_sync: CustomerSync::default(),
            customer_code_prefix: "WEB-".into(),
            catch_all_customer_code: "WEB".into(),
            catch_all_customer_name: "Web customers".into(),
            item_strategy: ItemStrategy::default(),
            generic_item_prefix: "WEB-VAT-".into(),
            shipping_item_code: "SHIPPING".into(),
            fee_item_code: "FEE".into(),
            correction_item_code: "ROUNDING".into(),
            max_rounding_correction: None,
            booking_currency: BookingCurrency::default(),
            vat_rate_codes: BTreeMap::new(),
            payment_methods: BTreeMap::new(),
            default_payment_method: None,
            document_numbering: None,
            invoice_report_template: None,
            credit_note_report_template: None,
            cashier_employee: None,
            analytic_id: None,
            payment_due_days: 0,
            total_tolerance: Decimal::ZERO,
            cancel_action: CancelAction::default(),
            woo_vat_meta_keys: crate::webshop::ParseSettings::default().woo_vat_meta_keys,
            book_test_orders: false,
        }
    }
}

impl BookingSettings {
    /// Problems a human can fix, one per field (`field: what is wrong`).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let code_ok = |s: &str| !s.trim().is_empty() && s.chars().count() <= 30;
        if !code_ok(&self.customer_code_prefix) && !self.customer_code_prefix.is_empty() {
            out.push("settings.customer_code_prefix: at most 30 characters".into());
        }
        if !code_ok(&self.catch_all_customer_code) {
            out.push("settings.catch_all_customer_code: expected 1-30 characters".into());
        }
        if !code_ok(&self.shipping_item_code) {
            out.push("settings.shipping_item_code: expected 1-30 characters".into());
        }
        if !code_ok(&self.fee_item_code) {
            out.push("settings.fee_item_code: expected 1-30 characters".into());
        }
        if !code_ok(&self.correction_item_code) {
            out.push("settings.correction_item_code: expected 1-30 characters".into());
        }
        if self
            .max_rounding_correction
            .is_some_and(|m| m < Decimal::ZERO || m > Decimal::ONE_HUNDRED)
        {
            out.push("settings.max_rounding_correction: expected 0 to 100 (currency units)".into());
        }
        for (rate, code) in &self.vat_rate_codes {
            if rate.parse::<Decimal>().is_err() {
                // The key is caller text: named by its shape, never repeated.
                out.push(
                    "settings.vat_rate_codes: every key must be a percentage like \"22\" or \"9.5\""
                        .into(),
                );
            }
            if code.trim().is_empty() {
                out.push(format!(
                    "settings.vat_rate_codes.{rate}: empty VAT rate code"
                ));
            }
        }
        if self.total_tolerance < Decimal::ZERO || self.total_tolerance > Decimal::ONE {
            out.push("settings.total_tolerance: expected 0 to 1 (currency units)".into());
        }
        if self.payment_due_days > 365 {
            out.push("settings.payment_due_days: expected at most 365".into());
        }
        out
    }
}
