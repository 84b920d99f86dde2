//! Path-tracking reader over a parsed JSON tree, used by the platform parsers.
//!
//! Shop payloads mix strings and numbers, use `""` and `null` for "absent", and differ
//! between versions, so platform parsers read them field by field through this reader
//! instead of derived structs. Every error names the full field path
//! (`line_items[2].total: not a decimal`) and never the value.

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::money::decimal_from_value;
use super::WebshopError;

/// A JSON object plus the path that led to it.
#[derive(Debug, Clone)]
pub(crate) struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    /// The body's top-level object.
    pub fn root(value: &'a Value) -> Result<Self, WebshopError> {
        match value {
            Value::Object(map) => Ok(Obj {
                path: String::new(),
                map,
            }),
            _ => Err(WebshopError::invalid("(body)", "not a JSON object")),
        }
    }

    pub fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn missing(&self, key: &str) -> WebshopError {
        WebshopError::missing(self.path(key))
    }

    pub fn invalid(&self, key: &str, reason: &str) -> WebshopError {
        WebshopError::invalid(self.path(key), reason)
    }

    /// The value, treating `null` like an absent key.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A string; absent, null and blank become `None`.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, WebshopError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.invalid(key, "not a string")),
        }
    }

    pub fn req_str(&self, key: &str) -> Result<String, WebshopError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// A string, tolerating scalars of other types (rendered as text) for free-text fields
    /// that some plugins fill with numbers.
    pub fn opt_text(&self, key: &str) -> Result<Option<String>, WebshopError> {
        match self.get(key) {
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            _ => self.opt_str(key),
        }
    }

    /// An identifier: a non-negative integer (kept as its exact text, ids exceed 2^53) or a
    /// non-empty string.
    pub fn opt_id(&self, key: &str) -> Result<Option<String>, WebshopError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let text = n.to_string();
                if !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit())
                {
                    Ok(Some(text))
                } else {
                    Err(self.invalid(key, "not an integer id"))
                }
            }
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) if s.len() <= 255 => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(self.invalid(key, "not an id")),
        }
    }

    pub fn req_id(&self, key: &str) -> Result<String, WebshopError> {
        self.opt_id(key)?.ok_or_else(|| self.missing(key))
    }

    /// An id where `0` means "none" (WooCommerce guests have `customer_id: 0`).
    pub fn opt_nonzero_id(&self, key: &str) -> Result<Option<String>, WebshopError> {
        Ok(self.opt_id(key)?.filter(|id| id != "0"))
    }

    pub fn opt_money(&self, key: &str) -> Result<Option<Decimal>, WebshopError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => decimal_from_value(v).map_err(|reason| self.invalid(key, reason)),
        }
    }

    pub fn req_money(&self, key: &str) -> Result<Decimal, WebshopError> {
        self.opt_money(key)?.ok_or_else(|| self.missing(key))
    }

    /// An amount that defaults to zero when absent or blank.
    pub fn money_or_zero(&self, key: &str) -> Result<Decimal, WebshopError> {
        Ok(self.opt_money(key)?.unwrap_or(Decimal::ZERO))
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, WebshopError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.invalid(key, "not a boolean")),
        }
    }

    pub fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, WebshopError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                path: self.path(key),
                map,
            })),
            // PHP encodes an empty associative array as `[]`.
            Some(Value::Array(a)) if a.is_empty() => Ok(None),
            Some(_) => Err(self.invalid(key, "not an object")),
        }
    }

    /// Array elements (absent or null: empty).
    pub fn array(&self, key: &str) -> Result<&'a [Value], WebshopError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a.as_slice()),
            Some(_) => Err(self.invalid(key, "not an array")),
        }
    }

    /// An array of objects, each carrying its indexed path (`line_items[2]`).
    pub fn objs(&self, key: &str) -> Result<Vec<Obj<'a>>, WebshopError> {
        let base = self.path(key);
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Object(map) => Ok(Obj {
                    path: format!("{base}[{i}]"),
                    map,
                }),
                _ => Err(WebshopError::invalid(
                    format!("{base}[{i}]"),
                    "not an object",
                )),
            })
            .collect()
    }

    /// An array of strings (non-strings rejected, blanks dropped).
    pub fn strings(&self, key: &str) -> Result<Vec<String>, WebshopError> {
        let base = self.path(key);
        let mut out = Vec::new();
        for (i, v) in self.array(key)?.iter().enumerate() {
            match v {
                Value::String(s) if s.trim().is_empty() => {}
                Value::String(s) => out.push(s.clone()),
                _ => {
                    return Err(WebshopError::invalid(
                        format!("{base}[{i}]"),
                        "not a string",
                    ))
                }
            }
        }
        Ok(out)
    }

    /// An RFC 3339 timestamp with offset (Shopify: `2008-01-10T11:00:00-05:00`).
    pub fn opt_datetime(&self, key: &str) -> Result<Option<DateTime<Utc>>, WebshopError> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(s) => DateTime::parse_from_rfc3339(s.trim())
                .map(|d| Some(d.with_timezone(&Utc)))
                .map_err(|_| self.invalid(key, "not an RFC 3339 timestamp")),
        }
    }

    /// A UTC timestamp without offset (WooCommerce `*_gmt`: `2017-03-22T19:28:08`); an
    /// explicit offset is accepted too.
    pub fn opt_naive_utc(&self, key: &str) -> Result<Option<DateTime<Utc>>, WebshopError> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(s) => {
                let s = s.trim();
                if let Ok(d) = DateTime::parse_from_rfc3339(s) {
                    return Ok(Some(d.with_timezone(&Utc)));
                }
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                    .map(|n| Some(n.and_utc()))
                    .map_err(|_| self.invalid(key, "not a timestamp (YYYY-MM-DDTHH:MM:SS)"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn errors_name_the_path() {
        let v: Value = serde_json::from_str(
            r#"{"line_items":[{"total":"1"},{"total":"1"},{"total":"x"}],"n":{"m":true}}"#,
        )
        .unwrap();
        let root = Obj::root(&v).unwrap();
        let lines = root.objs("line_items").unwrap();
        assert_eq!(lines[0].req_money("total").unwrap(), dec!(1));
        let err = lines[2].req_money("total").unwrap_err();
        assert_eq!(err.to_string(), "line_items[2].total: not a decimal");
        let err = root
            .opt_obj("n")
            .unwrap()
            .unwrap()
            .req_str("m")
            .unwrap_err();
        assert_eq!(err.to_string(), "n.m: not a string");
        assert_eq!(
            root.req_str("absent").unwrap_err().to_string(),
            "absent: missing"
        );
    }

    #[test]
    fn ids_keep_64_bit_precision() {
        let v: Value =
            serde_json::from_str(r#"{"a": 820982911946154508, "b": "x1", "c": 0, "d": -1}"#)
                .unwrap();
        let root = Obj::root(&v).unwrap();
        assert_eq!(root.req_id("a").unwrap(), "820982911946154508");
        assert_eq!(root.req_id("b").unwrap(), "x1");
        assert_eq!(root.opt_nonzero_id("c").unwrap(), None);
        assert!(root.opt_id("d").is_err());
    }

    #[test]
    fn timestamps() {
        let v: Value = serde_json::from_str(
            r#"{"a":"2017-03-22T19:28:08","b":"2008-01-10T11:00:00-05:00","c":"yesterday"}"#,
        )
        .unwrap();
        let root = Obj::root(&v).unwrap();
        assert_eq!(
            root.opt_naive_utc("a").unwrap().unwrap().to_rfc3339(),
            "2017-03-22T19:28:08+00:00"
        );
        assert_eq!(
            root.opt_datetime("b").unwrap().unwrap().to_rfc3339(),
            "2008-01-10T16:00:00+00:00"
        );
        assert!(root.opt_datetime("c").is_err());
        assert!(root.opt_naive_utc("c").is_err());
    }
}
