//! Webshop intake: turns a raw webhook request (headers + exact body bytes) into a
//! canonical [`ShopEvent`].
//!
//! Pure code: no I/O, no clock (the caller passes `now`), no Redis. Guarantees:
//! * a body can only be parsed after [`verify`] accepted its signature ([`Verified`] has a
//!   private field, so no other code path can make one);
//! * every failure is a [`WebshopError`] with a 4xx status for caller mistakes, and its
//!   message never contains the secret or the body (at most a field path and a reason);
//! * money is `rust_decimal::Decimal` read from the JSON text, never through `f64`.

pub mod event;
pub mod generic;
pub mod json;
pub mod money;
pub mod reader;
pub mod shopify;
pub mod signature;
pub mod woocommerce;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use reader::{from_slice_with_path, from_value_with_path, FieldProblem, ROOT_PATH};

pub use event::{
    Address, Customer, Discount, DiscountKind, Fee, Line, LineTax, Order, PaymentMethod, Refund,
    RefundAdjustment, RefundLine, RefundShipping, ShippingLine, ShopEvent, TaxLine,
};
pub use money::BookingCurrency;

/// The shop platforms we accept webhooks from; the URL segment of `POST /webhooks/{platform}/…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Platform {
    #[serde(rename = "woocommerce")]
    WooCommerce,
    #[serde(rename = "shopify")]
    Shopify,
    #[serde(rename = "generic")]
    Generic,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::WooCommerce, Platform::Shopify, Platform::Generic];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::WooCommerce => "woocommerce",
            Platform::Shopify => "shopify",
            Platform::Generic => "generic",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The URL named a platform we do not know (the handler answers 404).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown webshop platform")]
pub struct UnknownPlatform;

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "woocommerce" => Ok(Platform::WooCommerce),
            "shopify" => Ok(Platform::Shopify),
            "generic" => Ok(Platform::Generic),
            _ => Err(UnknownPlatform),
        }
    }
}

/// Everything that can go wrong between the raw request and a [`ShopEvent`].
///
/// Messages name headers and field paths (`line_items[2].total: not a decimal`) but never
/// echo the secret or the body.
#[derive(Debug, thiserror::Error)]
pub enum WebshopError {
    #[error("missing signature header {0}")]
    MissingSignature(&'static str),
    #[error("signature does not match")]
    BadSignature,
    #[error("signature header {header} is malformed: {reason}")]
    MalformedSignature {
        header: &'static str,
        reason: &'static str,
    },
    #[error("webhook timestamp is outside the accepted tolerance")]
    TimestampOutOfTolerance,
    /// The submitted type is not repeated: it is caller text.
    #[error("unsupported content type, expected application/json")]
    UnsupportedContentType,
    #[error("{path}: malformed JSON: {reason}")]
    MalformedJson { path: String, reason: String },
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("header {header}: {reason}")]
    InvalidHeader {
        header: &'static str,
        reason: &'static str,
    },
    #[error("{field}: missing")]
    MissingField { field: String },
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    /// The canonical (generic) payload is valid JSON but does not match the schema.
    #[error("{path}: {reason}")]
    InvalidPayload { path: String, reason: String },
    /// The unsigned topic header contradicts the signed body: a replayed body with a
    /// rewritten topic, or a misconfigured hook. `topic` is one of the topics we handle
    /// (never caller text), `reason` says what the body shows instead.
    #[error("{header}: says {topic} but {reason}")]
    TopicConflict {
        header: &'static str,
        topic: &'static str,
        reason: &'static str,
    },
    /// Our configuration is wrong (e.g. a `whsec_` secret that is not base64): not the caller's fault.
    #[error("webhook secret is not usable: {0}")]
    InvalidSecret(&'static str),
}

impl WebshopError {
    /// HTTP status the webhook handler should answer with.
    pub fn status(&self) -> u16 {
        match self {
            WebshopError::MissingSignature(_)
            | WebshopError::BadSignature
            | WebshopError::MalformedSignature { .. }
            | WebshopError::TimestampOutOfTolerance => 401,
            WebshopError::UnsupportedContentType => 415,
            WebshopError::MalformedJson { .. }
            | WebshopError::MissingHeader(_)
            | WebshopError::InvalidHeader { .. } => 400,
            WebshopError::MissingField { .. }
            | WebshopError::InvalidField { .. }
            | WebshopError::InvalidPayload { .. }
            | WebshopError::TopicConflict { .. } => 422,
            WebshopError::InvalidSecret(_) => 500,
        }
    }

    /// Stable snake_case code for JSON error bodies and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            WebshopError::MissingSignature(_) => "missing_signature",
            WebshopError::BadSignature => "bad_signature",
            WebshopError::MalformedSignature { .. } => "malformed_signature",
            WebshopError::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            WebshopError::UnsupportedContentType => "unsupported_content_type",
            WebshopError::MalformedJson { .. } => "malformed_json",
            WebshopError::MissingHeader(_) => "missing_header",
            WebshopError::InvalidHeader { .. } => "invalid_header",
            WebshopError::MissingField { .. } => "missing_field",
            WebshopError::InvalidField { .. } => "invalid_field",
            WebshopError::InvalidPayload { .. } => "invalid_payload",
            WebshopError::TopicConflict { .. } => "topic_conflict",
            WebshopError::InvalidSecret(_) => "invalid_secret",
        }
    }

    /// Where the problem is: a body path (`line_items[2].total`, `(body)`) or a header
    /// (`headers.x-shopify-topic`). `None` for a signature that does not match (the
    /// handler names the platform's signature header) and for our own secret problems.
    pub fn field(&self) -> Option<String> {
        let header = |h: &str| Some(format!("headers.{h}"));
        match self {
            WebshopError::MissingSignature(h)
            | WebshopError::MalformedSignature { header: h, .. }
            | WebshopError::MissingHeader(h)
            | WebshopError::InvalidHeader { header: h, .. }
            | WebshopError::TopicConflict { header: h, .. } => header(h),
            WebshopError::TimestampOutOfTolerance => header(signature::STD_TIMESTAMP_HEADER),
            WebshopError::UnsupportedContentType => header("content-type"),
            WebshopError::MalformedJson { path, .. }
            | WebshopError::InvalidPayload { path, .. } => Some(path.clone()),
            WebshopError::MissingField { field } | WebshopError::InvalidField { field, .. } => {
                Some(field.clone())
            }
            WebshopError::BadSignature | WebshopError::InvalidSecret(_) => None,
        }
    }

    pub(crate) fn missing(field: impl Into<String>) -> Self {
        WebshopError::MissingField {
            field: field.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        WebshopError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A body whose signature [`verify`] accepted. Only `verify` can construct it.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a> {
    platform: Platform,
    body: &'a [u8],
}

impl<'a> Verified<'a> {
    pub fn platform(&self) -> Platform {
        self.platform
    }

    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// Where an event came from; kept next to the event so logs and documents can name the shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub platform: Platform,
    /// WooCommerce: `X-WC-Webhook-Source` (site URL); Shopify: `X-Shopify-Shop-Domain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop: Option<String>,
}

/// A verified and parsed webhook, ready to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingEvent {
    /// Stable across redeliveries of the same shop event and built from signed data only
    /// (a replay with rewritten headers has the same key); the queue's idempotency key.
    pub dedupe_key: String,
    pub event: ShopEvent,
    /// The shop's topic (`order.updated`, `orders/paid`) or, for generic, the event kind.
    pub topic: String,
    pub source: Source,
}

/// Result of parsing a verified webhook.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// A topic we do not book (e.g. `product.updated`); the handler answers 2xx so the shop
    /// does not disable the hook.
    Ignored {
        topic: String,
    },
    Event(Box<IncomingEvent>),
}

/// Per-tenant knobs for parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSettings {
    /// WooCommerce `meta_data` keys that may hold the customer's VAT number, tried in order
    /// (order meta first, then customer meta). Core WooCommerce has no VAT field; plugins
    /// use different keys.
    pub woo_vat_meta_keys: Vec<String>,
    /// Which Shopify money set becomes the order's amounts.
    pub booking_currency: BookingCurrency,
}

impl Default for ParseSettings {
    fn default() -> Self {
        let keys = [
            "_billing_vat_number",
            "_vat_number",
            "vat_number",
            "_billing_vat_id",
            "_billing_vat",
            "billing_vat",
            "_billing_eu_vat_number",
            "VAT Number",
        ];
        ParseSettings {
            woo_vat_meta_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            booking_currency: BookingCurrency::default(),
        }
    }
}

/// Checks the request's signature (and, for generic, its timestamp) and that the body is
/// JSON. Signature problems are checked first, so an unauthenticated caller learns nothing
/// about what else we would accept.
pub fn verify<'a>(
    platform: Platform,
    secret: &SecretString,
    headers: &HeaderMap,
    body: &'a [u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<Verified<'a>, WebshopError> {
    match platform {
        Platform::WooCommerce => {
            signature::verify_body_hmac(secret, headers, &[woocommerce::SIGNATURE_HEADER], body)?
        }
        Platform::Shopify => {
            signature::verify_body_hmac(secret, headers, &shopify::SIGNATURE_HEADERS, body)?
        }
        Platform::Generic => {
            signature::verify_standard_webhooks(secret, headers, body, now, tolerance)?
        }
    }
    check_json_content_type(headers)?;
    Ok(Verified { platform, body })
}

/// Turns a verified body into an [`Intake`], with the parser of the platform it was
/// verified for.
pub fn parse(
    verified: &Verified<'_>,
    headers: &HeaderMap,
    settings: &ParseSettings,
) -> Result<Intake, WebshopError> {
    match verified.platform {
        Platform::WooCommerce => woocommerce::parse(verified.body, headers, settings),
        Platform::Shopify => shopify::parse(verified.body, headers, settings),
        Platform::Generic => generic::parse(verified.body, headers),
    }
}

/// WooCommerce pings a new webhook with the unsigned form body `webhook_id=<n>` and expects
/// exactly 200; the handler must answer it without verifying or parsing.
pub fn is_woocommerce_ping(headers: &HeaderMap, body: &[u8]) -> bool {
    if headers.contains_key(woocommerce::SIGNATURE_HEADER) {
        return false;
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    match text.trim().strip_prefix("webhook_id=") {
        Some(id) => !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), WebshopError> {
    let Some(value) = headers.get(actix_web::http::header::CONTENT_TYPE) else {
        return Err(WebshopError::UnsupportedContentType);
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(WebshopError::UnsupportedContentType)
    }
}

/// A header as UTF-8 text; `None` when absent.
pub(crate) fn header_str<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, WebshopError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| WebshopError::InvalidHeader {
                header: name,
                reason: "not visible ASCII",
            }),
    }
}

/// The first of `names` that is present with a non-empty value (platforms deliver the
/// same header under a legacy and a newer name).
pub(crate) fn first_header<'h>(
    headers: &'h HeaderMap,
    names: &[&'static str],
) -> Result<Option<&'h str>, WebshopError> {
    for name in names {
        if let Some(v) = header_str(headers, name)? {
            if !v.is_empty() {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// A required, non-empty header.
pub(crate) fn required_header<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<&'h str, WebshopError> {
    match header_str(headers, name)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(WebshopError::MissingHeader(name)),
    }
}

/// SHA-256 of the exact body, hex: the part of a dedupe key an attacker cannot vary
/// without breaking the signature.
pub(crate) fn body_digest(body: &[u8]) -> String {
    use sha2::Digest as _;
    crate::crypto::hex(&sha2::Sha256::digest(body))
}

/// Parses a body into a JSON tree. `serde_json`'s `arbitrary_precision` keeps numbers as
/// their source text, so money read from the tree is exact; its recursion limit keeps
/// hostile nesting from exhausting the stack.
pub(crate) fn parse_json(body: &[u8]) -> Result<json::Json<'_>, WebshopError> {
    // Validating the whole body as UTF-8 once is cheaper than serde_json checking each
    // string it reads from bytes; invalid UTF-8 is left to from_slice to locate.
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
    .map_err(|e| json_error(&e, body))
}

/// A serde_json error about `body` as a [`WebshopError`] naming the path: syntax errors
/// are `400 malformed_json`, a well-formed body of the wrong shape `422 invalid_payload`.
pub(crate) fn json_error(e: &serde_json::Error, body: &[u8]) -> WebshopError {
    let FieldProblem { path, reason } = reader::problem_of(e, body);
    if e.is_data() {
        WebshopError::InvalidPayload { path, reason }
    } else {
        let reason = reason
            .strip_prefix("malformed JSON: ")
            .map(str::to_owned)
            .unwrap_or(reason);
        WebshopError::MalformedJson { path, reason }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn platform_round_trips_through_str() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>(), Ok(p));
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        assert!("WooCommerce".parse::<Platform>().is_err());
    }

    #[test]
    fn woocommerce_ping_is_recognised_only_unsigned() {
        assert!(is_woocommerce_ping(&HeaderMap::new(), b"webhook_id=17"));
        assert!(is_woocommerce_ping(&HeaderMap::new(), b"webhook_id=17\n"));
        assert!(!is_woocommerce_ping(&HeaderMap::new(), b"webhook_id="));
        assert!(!is_woocommerce_ping(&HeaderMap::new(), b"webhook_id=1x"));
        assert!(!is_woocommerce_ping(&HeaderMap::new(), b"{\"id\":1}"));
        let signed = headers(&[("x-wc-webhook-signature", "abc")]);
        assert!(!is_woocommerce_ping(&signed, b"webhook_id=17"));
    }

    #[test]
    fn content_type_must_be_json() {
        assert!(check_json_content_type(&headers(&[("content-type", "application/json")])).is_ok());
        assert!(check_json_content_type(&headers(&[(
            "content-type",
            "Application/JSON; charset=UTF-8"
        )]))
        .is_ok());
        let err = check_json_content_type(&headers(&[(
            "content-type",
            "application/x-www-form-urlencoded",
        )]))
        .unwrap_err();
        assert_eq!(err.status(), 415);
        assert_eq!(
            check_json_content_type(&HeaderMap::new())
                .unwrap_err()
                .code(),
            "unsupported_content_type"
        );
    }

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(WebshopError::BadSignature.status(), 401);
        assert_eq!(WebshopError::TimestampOutOfTolerance.status(), 401);
        assert_eq!(WebshopError::missing("id").status(), 422);
        assert_eq!(
            WebshopError::MalformedJson {
                path: ROOT_PATH.into(),
                reason: String::new()
            }
            .status(),
            400
        );
        assert_eq!(
            WebshopError::invalid("line_items[2].total", "not a decimal").to_string(),
            "line_items[2].total: not a decimal"
        );
    }
}
