//! Exact decimal parsing for shop amounts.
//!
//! Shops send money as JSON strings (`"12.00"`, `"-5.5"`, `"0.352941"`) and as JSON numbers
//! (`17.647059`, `3`). With `serde_json`'s `arbitrary_precision` a number keeps its source
//! text, so both forms become a `Decimal` equal to what was written, never via `f64`.
//! Values that do not fit a `Decimal` exactly are rejected rather than rounded.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;

/// Which of a multi-currency order's money sets is booked (Shopify `*_set` bags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BookingCurrency {
    /// What the customer paid (`presentment_money`), with the shop's exchange rate.
    #[default]
    Customer,
    /// The shop's currency (`shop_money`), what payouts are in.
    Shop,
}

/// Why a value is not an amount; the caller prefixes the field path.
pub const NOT_A_DECIMAL: &str = "not a decimal";

/// Parses decimal text exactly: plain (`-12.50`) or scientific (`1.5E-7`) notation.
pub fn parse_decimal(text: &str) -> Result<Decimal, &'static str> {
    let t = text.trim();
    if t.is_empty() || t.len() > 64 {
        return Err(NOT_A_DECIMAL);
    }
    let plain_chars = t
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+');
    if plain_chars {
        // from_str_exact refuses to round digits beyond Decimal's 28-digit precision.
        return Decimal::from_str_exact(t).map_err(|_| NOT_A_DECIMAL);
    }
    if t.bytes().any(|b| b == b'e' || b == b'E') {
        let ok_chars = t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
        if ok_chars {
            return Decimal::from_scientific(t)
                .map(|d| d.normalize())
                .map_err(|_| NOT_A_DECIMAL);
        }
    }
    Err(NOT_A_DECIMAL)
}

/// Reads an amount from a JSON value: a string or a number, exactly as written.
/// `Ok(None)` for `null` and the empty string (WooCommerce uses `""` for "no value").
pub fn decimal_from_value(value: &Value) -> Result<Option<Decimal>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => parse_decimal(s).map(Some),
        Value::Number(n) => parse_decimal(&n.to_string()).map(Some),
        _ => Err(NOT_A_DECIMAL),
    }
}

/// [`decimal_from_value`] for the parsers' borrowed tree.
pub fn decimal_from_json(value: &super::json::Json<'_>) -> Result<Option<Decimal>, &'static str> {
    use super::json::Json;
    match value {
        Json::Null => Ok(None),
        Json::String(s) if s.trim().is_empty() => Ok(None),
        Json::String(s) | Json::Number(s) => parse_decimal(s).map(Some),
        _ => Err(NOT_A_DECIMAL),
    }
}

/// Serde adapter for required `Decimal` fields of the canonical model: written as a JSON
/// string (keeps the scale: `"12.00"`), read from a string or a number.
pub mod serde_decimal {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        // Going through Value keeps arbitrary-precision numbers as text for any serde_json
        // entry point (from_slice, from_value).
        let value = Value::deserialize(deserializer)?;
        match decimal_from_value(&value) {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(serde::de::Error::custom(
                "expected a decimal, found null or \"\"",
            )),
            Err(reason) => Err(serde::de::Error::custom(reason)),
        }
    }
}

/// Serde adapter for `Option<Decimal>`; use with `#[serde(default)]`.
pub mod serde_decimal_opt {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.collect_str(d),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        let value = Value::deserialize(deserializer)?;
        decimal_from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// Overflow-checked arithmetic: hostile amounts near `Decimal::MAX` must become a field
/// error, never a panic.
pub(crate) fn checked_add(
    a: Decimal,
    b: Decimal,
    field: &str,
) -> Result<Decimal, super::WebshopError> {
    a.checked_add(b)
        .ok_or_else(|| super::WebshopError::invalid(field, "amount out of range"))
}

pub(crate) fn checked_sub(
    a: Decimal,
    b: Decimal,
    field: &str,
) -> Result<Decimal, super::WebshopError> {
    a.checked_sub(b)
        .ok_or_else(|| super::WebshopError::invalid(field, "amount out of range"))
}

pub(crate) fn checked_mul(
    a: Decimal,
    b: Decimal,
    field: &str,
) -> Result<Decimal, super::WebshopError> {
    a.checked_mul(b)
        .ok_or_else(|| super::WebshopError::invalid(field, "amount out of range"))
}

/// Sums amounts, naming `field` if the sum overflows.
pub(crate) fn checked_sum<I: IntoIterator<Item = Decimal>>(
    items: I,
    field: &str,
) -> Result<Decimal, super::WebshopError> {
    items
        .into_iter()
        .try_fold(Decimal::ZERO, |acc, x| checked_add(acc, x, field))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn parses_strings_and_numbers_exactly() {
        assert_eq!(parse_decimal("12.00").unwrap().to_string(), "12.00");
        assert_eq!(parse_decimal("-5.5").unwrap(), dec!(-5.5));
        assert_eq!(parse_decimal("0.352941").unwrap(), dec!(0.352941));
        assert_eq!(parse_decimal("1.5E-7").unwrap(), dec!(0.00000015));
        assert_eq!(parse_decimal("1e2").unwrap(), dec!(100));
        for bad in ["", "abc", "1.2.3", "NaN", "--1", "1e", "0x10", "1,5"] {
            assert!(parse_decimal(bad).is_err(), "{bad:?} accepted");
        }
        // More digits than a Decimal holds must fail, not round.
        assert!(parse_decimal("0.12345678901234567890123456789012").is_err());
    }

    #[test]
    fn json_numbers_keep_their_text() {
        let v: Value =
            serde_json::from_str(r#"[17.647059, 3, 10.799999999999999, "", null, "-0"]"#).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(decimal_from_value(&a[0]).unwrap(), Some(dec!(17.647059)));
        assert_eq!(decimal_from_value(&a[1]).unwrap(), Some(dec!(3)));
        assert_eq!(
            decimal_from_value(&a[2]).unwrap().unwrap().to_string(),
            "10.799999999999999"
        );
        assert_eq!(decimal_from_value(&a[3]).unwrap(), None);
        assert_eq!(decimal_from_value(&a[4]).unwrap(), None);
        assert!(decimal_from_value(&a[5]).unwrap().unwrap().is_zero());
        assert!(decimal_from_value(&Value::Bool(true)).is_err());
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Amounts {
        #[serde(with = "serde_decimal")]
        a: Decimal,
        #[serde(default, with = "serde_decimal_opt")]
        b: Option<Decimal>,
    }

    #[test]
    fn serde_adapters_accept_both_forms_and_write_strings() {
        let x: Amounts = serde_json::from_str(r#"{"a": 0.1, "b": "2.50"}"#).unwrap();
        assert_eq!(x.a, dec!(0.1));
        assert_eq!(x.b, Some(dec!(2.50)));
        assert_eq!(
            serde_json::to_string(&x).unwrap(),
            r#"{"a":"0.1","b":"2.50"}"#
        );
        let y: Amounts = serde_json::from_str(r#"{"a": "7"}"#).unwrap();
        assert_eq!(y.b, None);
        let err = serde_json::from_str::<Amounts>(r#"{"a": "seven"}"#).unwrap_err();
        assert!(err.to_string().contains("not a decimal"), "{err}");
        let from_value: Amounts = serde_json::from_value(serde_json::json!({"a": 1.25})).unwrap();
        assert_eq!(from_value.a, dec!(1.25));
    }
}
