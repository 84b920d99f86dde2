//! Pure mapping from canonical shop events to Minimax documents (no I/O, no async):
//! everything it needs — tenant settings and looked-up Minimax ids — is passed in.
//!
//! Guarantees: a planned invoice or credit note comes to the shop's total and VAT per
//! rate, as Minimax computes it (the working assumption in docs/minimax-api.md, see
//! [`compute_totals`]) — one exact row per shop line, plus correction rows per VAT rate
//! where the shop rounded otherwise (docs/mapping.md) — or the planning fails with
//! [`MappingError::TotalMismatch`] naming the lines, both figures and the setting to
//! change; row amounts are exact to the cent before any rounding happens.
//! Money is `Decimal` throughout. See `docs/mapping.md`.

mod amounts;
mod credit_notes;
mod customer;
mod decide;
mod documents;
mod lines;
pub mod settings;

use std::collections::BTreeMap;

use rust_decimal::Decimal;

pub use amounts::{compute_totals, reconcile, DocTotals};
pub use credit_notes::{credit_note_item_needs, credit_note_plan, is_full_refund};
pub use customer::{
    country_codes, customer_country_codes, customer_event_code, customer_event_gap,
    customer_event_plan, customer_needs_update, customer_plan, merge_customer, CustomerPlan,
};
pub use decide::{decide, Decision};
pub use documents::{invoice_plan, item_needs, order_plan, InvoicePlan, ItemNeed};
pub use settings::*;

/// Minimax ids and code lists the orchestrator looked up for this booking.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrgData {
    /// ISO code of the organisation's country (`"SI"`).
    pub home_country: String,
    /// The organisation's VAT rates valid on the document date.
    pub vat_rates: Vec<VatRateRef>,
    /// Minimax id of the order's currency.
    pub currency_id: i64,
    /// ISO code → Minimax country id (billing/shipping countries, see [`country_codes`]).
    pub country_ids: BTreeMap<String, i64>,
    pub payment_methods: Vec<PaymentMethodRef>,
    pub document_numbering_id: Option<i64>,
    pub invoice_report_template_id: Option<i64>,
    pub credit_note_report_template_id: Option<i64>,
    pub employee_id: Option<i64>,
    pub analytic_id: Option<i64>,
}

/// A Minimax VAT rate (`VatRateId`, `Code`, `Percent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatRateRef {
    pub id: i64,
    pub code: String,
    pub percent: Decimal,
}

/// A Minimax payment method (`PaymentMethodId`, `Name`, `Code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethodRef {
    pub id: i64,
    pub name: String,
    pub code: Option<String>,
}

/// Why an event cannot be mapped. Every message names what is wrong and, where a setting
/// fixes it, which one. All variants are permanent: retrying does not help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MappingError {
    #[error(
        "no Minimax VAT rate of {percent} % among the organisation's rates valid on the \
         document date for line '{line}'; set settings.vat_rate_codes (e.g. \"{percent}\" = \"S\")"
    )]
    UnmappedVatRate { percent: Decimal, line: String },
    #[error(
        "payment gateway '{gateway}' has no Minimax payment method; map it in \
         settings.payment_methods (gateway → Minimax payment method name, code or id) or set \
         settings.default_payment_method"
    )]
    UnmappedPaymentMethod { gateway: String },
    #[error(
        "line '{line}' has no SKU, but the item strategy needs one to find its Minimax item; \
         give the product a SKU or set settings.item_strategy"
    )]
    MissingSku { line: String },
    #[error(
        "the planned document does not match the shop: shop total {shop_total}, document \
         total {document_total}; {details}"
    )]
    TotalMismatch {
        shop_total: Decimal,
        document_total: Decimal,
        details: String,
    },
    #[error("{0}")]
    Unsupported(String),
}
