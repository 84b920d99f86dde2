//! Typed Minimax models: the only place with Minimax's PascalCase field names.
//!
//! Field names and types follow Minimax's Swagger document (see docs/minimax-api.md). Every field is optional so a
//! partly filled object can be sent (JSON.NET treats missing and null alike) and unknown
//! response fields are ignored. Money and quantities are `rust_decimal::Decimal`, written
//! as exact JSON numbers (never through f64). Dates are naive local date-times as Minimax
//! sends them; input accepts `YYYY-MM-DD` and drops a trailing `Z` like Minimax does.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Minimax dates: naive date-times; tolerant on input.
pub mod mm_date {
    use chrono::{NaiveDate, NaiveDateTime};
    use serde::{Deserialize, Deserializer, Serializer};

    const OUT: &str = "%Y-%m-%dT%H:%M:%S%.3f";

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS[.fff][Z]`, or with a space separator.
    pub fn parse(input: &str) -> Option<NaiveDateTime> {
        let s = input.trim().trim_end_matches('Z');
        let s = s.split('+').next().unwrap_or(s);
        if let Ok(d) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
            return Some(d);
        }
        if let Ok(d) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
            return Some(d);
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    }

    pub fn format(value: &NaiveDateTime) -> String {
        value.format(OUT).to_string()
    }

    pub fn serialize<S: Serializer>(
        value: &Option<NaiveDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.serialize_str(&format(v)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NaiveDateTime>, D::Error> {
        let raw: Option<String> = Option::deserialize(deserializer)?;
        match raw {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Ok(None),
            Some(s) => parse(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("bad Minimax date {s:?}"))),
        }
    }
}

/// `mMApiFkField`: a reference. On input only `ID` matters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Fk {
    #[serde(rename = "ID")]
    pub id: Option<i64>,
    #[serde(rename = "Name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        rename = "ResourceUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_url: Option<String>,
}

impl Fk {
    pub fn id(id: i64) -> Self {
        Fk {
            id: Some(id),
            name: None,
            resource_url: None,
        }
    }
}

/// The list envelope `{Rows, TotalRows, CurrentPageNumber, PageSize}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub rows: Vec<T>,
    #[serde(default)]
    pub total_rows: i64,
    #[serde(default)]
    pub current_page_number: i64,
    #[serde(default)]
    pub page_size: i64,
}

/// `{ValidationMessages, Data}` returned by actions.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ActionResult {
    #[serde(default)]
    pub validation_messages: Vec<ApiValidationMessage>,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

impl ActionResult {
    /// `Data` as an attachment (`issueAndGeneratepdf`, `generatepdf`).
    pub fn attachment(&self) -> Option<Attachment> {
        self.data
            .as_ref()
            .and_then(|d| serde_json::from_value(d.clone()).ok())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ApiValidationMessage {
    pub message: Option<String>,
    pub property_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Attachment {
    pub attachment_id: Option<i64>,
    /// Base64 file content.
    pub attachment_data: Option<String>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub attachment_date: Option<NaiveDateTime>,
    pub attachment_file_name: Option<String>,
    pub attachment_mime_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UserOrganisation {
    pub organisation: Option<Fk>,
    #[serde(rename = "APIAccess")]
    pub api_access: Option<String>,
    pub mobile_access: Option<String>,
}

/// `SAOP.API.Models.Customer.Customer`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_number: Option<String>,
    #[serde(
        rename = "VATIdentificationNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub vat_identification_number: Option<String>,
    /// `D` VAT-registered business, `M` business not registered, `N` end user.
    #[serde(
        rename = "SubjectToVAT",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub subject_to_vat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consider_country_for_bookkeeping: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<i32>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub rebate_percent: Option<Decimal>,
    #[serde(
        rename = "WebSiteURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub web_site_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_invoice_issuing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_customer_number: Option<String>,
    #[serde(rename = "GLN", default, skip_serializing_if = "Option::is_none")]
    pub gln: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_user_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_type: Option<String>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub record_dt_modified: Option<NaiveDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_version: Option<String>,
}

/// `Contact` of a customer (email and phone live here, not on Customer).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fax: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub record_dt_modified: Option<NaiveDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_version: Option<String>,
}

/// `Item` (article or service).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Item {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(rename = "EANCode", default, skip_serializing_if = "Option::is_none")]
    pub ean_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `B` goods, `M` material, `P` semi-finished, `I` product, `S` service, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stocks_managed_only_by_quantity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<String>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub mass_per_unit: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_group: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_rate: Option<Fk>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<Decimal>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub rebate_percent: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Fk>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub record_dt_modified: Option<NaiveDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct VatRate {
    pub vat_rate_id: Option<i64>,
    pub code: Option<String>,
    #[serde(default, with = "rust_decimal::serde::arbitrary_precision_option")]
    pub percent: Option<Decimal>,
    #[serde(default)]
    pub vat_rate_percentage: Option<Fk>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Country {
    pub country_id: Option<i64>,
    pub code: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub currency: Option<Fk>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Currency {
    pub currency_id: Option<i64>,
    pub code: Option<String>,
    pub name: Option<String>,
}

/// Row of `GET paymentMethods` (`Type`: `T` account, `G` cash, `K` card, `D` other).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentMethod {
    pub payment_method_id: Option<i64>,
    pub name: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(rename = "Type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub usage: Option<String>,
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DocumentNumbering {
    pub document_numbering_id: Option<i64>,
    /// `IR` issued invoice, `PD` proforma, `PR` received invoice.
    pub document: Option<String>,
    pub code: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub usage: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ReportTemplate {
    pub report_template_id: Option<i64>,
    pub name: Option<String>,
    /// `IR` invoice, `PR` proforma, `DO` delivery note, `IN`/`PN` orders, …
    pub display_type: Option<String>,
    #[serde(default)]
    pub default: Option<String>,
}

/// Row of `GET employees`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct EmployeeSearch {
    pub employee_id: Option<i64>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(default)]
    pub tax_number: Option<String>,
    #[serde(default)]
    pub employment_type: Option<String>,
}

/// `IssuedInvoice`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IssuedInvoice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_invoice_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_numbering: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Fk>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub date_issued: Option<NaiveDateTime>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub date_transaction: Option<NaiveDateTime>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub date_transaction_from: Option<NaiveDateTime>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub date_due: Option<NaiveDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee_postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee_city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee_country_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee_country: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_country_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_country: Option<Fk>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub rabate: Option<Decimal>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub exchange_rate: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytic: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_invoice_report_template: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_note_report_template: Option<Fk>,
    /// `O` draft, `I` issued (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_above: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_below: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee: Option<Fk>,
    /// `D` prices include VAT, `N` VAT is added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices_on_invoice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_attachment: Option<Fk>,
    /// `R` invoice, `P` proforma.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<String>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub invoice_value: Option<Decimal>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub paid_value: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association_with_stock: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issued_invoice_rows: Vec<IssuedInvoiceRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issued_invoice_payment_methods: Vec<IssuedInvoicePaymentMethod>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub record_dt_modified: Option<NaiveDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IssuedInvoiceRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_invoice_row_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_number: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub quantity: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<String>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<Decimal>,
    #[serde(
        rename = "PriceWithVAT",
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub price_with_vat: Option<Decimal>,
    #[serde(
        rename = "VATPercent",
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub vat_percent: Option<Decimal>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub discount: Option<Decimal>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub discount_percent: Option<Decimal>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_rate: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_rate_percentage: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytic: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IssuedInvoicePaymentMethod {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_invoice_payment_method_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<Fk>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub amount: Option<Decimal>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub amount_in_domestic_currency: Option<Decimal>,
    /// `D` already paid when issued, `N` not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_paid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_version: Option<String>,
}

/// Row of `GET issuedinvoices`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IssuedInvoiceSearch {
    pub issued_invoice_id: Option<i64>,
    #[serde(default)]
    pub invoice_type: Option<String>,
    #[serde(default)]
    pub year: Option<i32>,
    #[serde(default)]
    pub invoice_number: Option<i64>,
    #[serde(default)]
    pub numbering: Option<String>,
    #[serde(default)]
    pub document_numbering: Option<Fk>,
    #[serde(default)]
    pub customer: Option<Fk>,
    #[serde(default, with = "mm_date")]
    pub date_issued: Option<NaiveDateTime>,
    #[serde(default, with = "mm_date")]
    pub date_due: Option<NaiveDateTime>,
    #[serde(default)]
    pub currency: Option<Fk>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub payment_status: Option<String>,
    #[serde(default, with = "rust_decimal::serde::arbitrary_precision_option")]
    pub invoice_value: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::arbitrary_precision_option")]
    pub paid_value: Option<Decimal>,
    #[serde(default)]
    pub row_version: Option<String>,
}

/// Documented list filters of `GET issuedinvoices` (docs/minimax-api.md, "Issued invoices"). There is no
/// `DocumentReference` filter: find candidates by customer and date, then read them.
#[derive(Debug, Clone, Default)]
pub struct IssuedInvoiceFilter {
    pub customer_id: Option<i64>,
    pub invoice_type: Option<String>,
    pub year: Option<i32>,
    pub invoice_number: Option<i64>,
    pub status: Option<String>,
    pub date_issued_from: Option<chrono::NaiveDate>,
    pub date_issued_to: Option<chrono::NaiveDate>,
    pub current_page: Option<u32>,
    pub page_size: Option<u32>,
}

/// `Order` (use `ReceivedIssued = "P"` for a webshop order).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Order {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_issued: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<i32>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_country: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_country_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_country: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_country_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytic: Option<Fk>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// `O` draft, `P` confirmed, `Z` completed, `R` invalidated (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_above: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_below: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_template: Option<Fk>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_rows: Vec<OrderRow>,
    #[serde(default, with = "mm_date", skip_serializing_if = "Option::is_none")]
    pub record_dt_modified: Option<NaiveDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct OrderRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_row_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<Fk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub quantity: Option<Decimal>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub discount_percent: Option<Decimal>,
    #[serde(
        default,
        with = "rust_decimal::serde::arbitrary_precision_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_version: Option<String>,
}

/// Row of `GET orders`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct OrderSearch {
    pub order_id: Option<i64>,
    #[serde(default)]
    pub received_issued: Option<String>,
    #[serde(default)]
    pub year: Option<i32>,
    #[serde(default)]
    pub number: Option<i32>,
    #[serde(default, with = "mm_date")]
    pub date: Option<NaiveDateTime>,
    #[serde(default)]
    pub customer: Option<Fk>,
    #[serde(default)]
    pub currency: Option<Fk>,
    #[serde(default)]
    pub status: Option<String>,
}

/// Token endpoint answer. Never logged (no Debug).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::str::FromStr;

    #[test]
    fn money_is_an_exact_json_number() {
        let row = IssuedInvoiceRow {
            price: Some(Decimal::from_str("10.6475").unwrap()),
            quantity: Some(Decimal::from_str("3").unwrap()),
            ..Default::default()
        };
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(json, r#"{"Quantity":3,"Price":10.6475}"#);
        let back: IssuedInvoiceRow =
            serde_json::from_str(r#"{"Price":71.37,"VATPercent":22.0,"Value":null}"#).unwrap();
        assert_eq!(back.price, Some(Decimal::from_str("71.37").unwrap()));
        assert_eq!(back.vat_percent, Some(Decimal::from_str("22.0").unwrap()));
    }

    #[test]
    fn dates_are_lenient() {
        let inv: IssuedInvoice = serde_json::from_str(
            r#"{"DateIssued":"2024-10-09T16:47:12.85","DateDue":"2024-10-09","DateTransaction":"2024-10-09T16:47:12.850Z"}"#,
        )
        .unwrap();
        assert_eq!(
            mm_date::format(&inv.date_issued.unwrap()),
            "2024-10-09T16:47:12.850"
        );
        assert_eq!(
            mm_date::format(&inv.date_due.unwrap()),
            "2024-10-09T00:00:00.000"
        );
        assert!(inv.date_transaction.is_some());
    }
}
