//! Path-tracking reader over a parsed JSON tree, used by the platform parsers.
//!
//! Shop payloads mix strings and numbers, use `""` and `null` for "absent", and differ
//! between versions, so platform parsers read them field by field through this reader
//! instead of derived structs. Every error names the full field path
//! (`line_items[2].total: not a decimal`) and never the value.

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use std::borrow::Cow;

use super::json::{lookup, Json};
use super::money::decimal_from_json;
use super::WebshopError;

/// A JSON object plus the path that led to it.
#[derive(Debug, Clone)]
pub(crate) struct Obj<'a> {
    path: String,
    map: &'a [(Cow<'a, str>, Json<'a>)],
}

impl<'a> Obj<'a> {
    /// The body's top-level object.
    pub fn root(value: &'a Json<'a>) -> Result<Self, WebshopError> {
        match value {
            Json::Object(map) => Ok(Obj {
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
    pub fn get(&self, key: &str) -> Option<&'a Json<'a>> {
        match lookup(self.map, key) {
            None | Some(Json::Null) => None,
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
            Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.as_ref().to_owned())),
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
            Some(Json::Number(n)) => Ok(Some(n.to_string())),
            Some(Json::Bool(b)) => Ok(Some(b.to_string())),
            _ => self.opt_str(key),
        }
    }

    /// An identifier: a non-negative integer (kept as its exact text, ids exceed 2^53) or a
    /// non-empty string.
    pub fn opt_id(&self, key: &str) -> Result<Option<String>, WebshopError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Number(n)) => {
                let text = n.to_string();
                if !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit())
                {
                    Ok(Some(text))
                } else {
                    Err(self.invalid(key, "not an integer id"))
                }
            }
            Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Json::String(s)) if s.len() <= 255 => Ok(Some(s.trim().to_owned())),
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
            Some(v) => decimal_from_json(v).map_err(|reason| self.invalid(key, reason)),
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
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.invalid(key, "not a boolean")),
        }
    }

    pub fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, WebshopError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Object(map)) => Ok(Some(Obj {
                path: self.path(key),
                map,
            })),
            // PHP encodes an empty associative array as `[]`.
            Some(Json::Array(a)) if a.is_empty() => Ok(None),
            Some(_) => Err(self.invalid(key, "not an object")),
        }
    }

    /// Array elements (absent or null: empty).
    pub fn array(&self, key: &str) -> Result<&'a [Json<'a>], WebshopError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Json::Array(a)) => Ok(a.as_slice()),
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
                Json::Object(map) => Ok(Obj {
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
                Json::String(s) if s.trim().is_empty() => {}
                Json::String(s) => out.push(s.as_ref().to_owned()),
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

/// A serde error turned into what an error answer may show: the JSON path of the field
/// it concerns and a reason that never contains a submitted value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// `order.lines[0].total`; `(body)` for the document as a whole.
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// The root of a document in error paths.
pub const ROOT_PATH: &str = "(body)";

/// Deserializes `body` as `T`; a failure names the JSON path (found from serde_json's
/// line and column by re-scanning the text up to that point) and a value-free reason.
pub fn from_slice_with_path<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, FieldProblem> {
    serde_json::from_slice(body).map_err(|e| problem_of(&e, body))
}

/// [`from_slice_with_path`] for a value already parsed (admin input): serialised once so
/// serde_json can report positions.
pub fn from_value_with_path<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, FieldProblem> {
    let text = serde_json::to_vec(value).unwrap_or_default();
    from_slice_with_path(&text)
}

/// The path and value-free reason of a serde_json error about `body`.
pub fn problem_of(e: &serde_json::Error, body: &[u8]) -> FieldProblem {
    let (reason, field) = scrub_reason(e);
    let mut offset = byte_offset(body, e.line(), e.column());
    // A wrong-typed array or object is reported just past its opening bracket: that
    // bracket belongs to the value in error, not to a level below it.
    if e.is_data() && offset > 0 && matches!(body[offset - 1], b'[' | b'{') {
        offset -= 1;
    }
    let mut path = path_at(body, offset, field.is_some());
    if let Some(field) = field {
        push_key(&mut path, &field);
    }
    FieldProblem {
        path: if path.is_empty() {
            ROOT_PATH.to_owned()
        } else {
            path
        },
        reason,
    }
}

/// serde's message without values (`invalid type: string "a@b.c", expected a boolean`
/// becomes `expected a boolean`) and without the position suffix. The second part is the
/// field a `missing field` / `duplicate field` message names (a schema name).
fn scrub_reason(e: &serde_json::Error) -> (String, Option<String>) {
    let full = e.to_string();
    let msg = match full.rfind(" at line ") {
        Some(i) => &full[..i],
        None => full.as_str(),
    };
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            return match rest.rsplit_once(", expected ") {
                Some((_, expected)) => (format!("expected {expected}"), None),
                None => ("invalid value".to_owned(), None),
            };
        }
    }
    for (prefix, what) in [
        ("unknown variant ", "unknown variant"),
        ("unknown field ", "unknown field"),
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            return match rest.split_once(", expected ") {
                Some((_, expected)) => (format!("{what}, expected {expected}"), None),
                None => (what.to_owned(), None),
            };
        }
    }
    for (prefix, what) in [
        ("missing field `", "missing"),
        ("duplicate field `", "duplicate field"),
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let name = rest.trim_end_matches('`');
            return (what.to_owned(), Some(name.to_owned()));
        }
    }
    if e.is_syntax() || e.is_eof() {
        // Syntax messages describe the grammar ("expected `,` or `}`"), never the text.
        return (format!("malformed JSON: {msg}"), None);
    }
    // Custom messages come from our own deserializers and name no values; cap them anyway.
    let mut out: String = msg.chars().take(160).collect();
    if out.is_empty() {
        out = "invalid value".to_owned();
    }
    (out, None)
}

/// serde_json positions: 1-based line, 1-based column counted in bytes (0 at EOF).
fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    let mut current = 1;
    if line > 1 {
        for (i, b) in body.iter().enumerate() {
            if *b == b'\n' {
                current += 1;
                if current == line {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    start.saturating_add(column).min(body.len())
}

enum Frame {
    /// `pending`: a string read where a key may stand, a key only once its `:` follows
    /// (in broken text it may be a stray value).
    Obj {
        key: Option<String>,
        pending: Option<String>,
        in_key: bool,
    },
    Arr {
        index: usize,
    },
}

/// The path of the value being read at byte `offset` of a JSON text. With
/// `inside_object`, a closing brace right before `offset` is not applied (serde reports a
/// missing field after reading the object's `}`), and the object's last key is dropped.
fn path_at(body: &[u8], offset: usize, inside_object: bool) -> String {
    let mut end = offset.min(body.len());
    if inside_object {
        while end > 0 && body[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        if end > 0 && body[end - 1] == b'}' {
            end -= 1;
        }
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match body[i] {
            b'{' => stack.push(Frame::Obj {
                key: None,
                pending: None,
                in_key: true,
            }),
            b'[' => stack.push(Frame::Arr { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Arr { index }) => *index += 1,
                Some(Frame::Obj {
                    key,
                    pending,
                    in_key,
                }) => {
                    *key = None;
                    *pending = None;
                    *in_key = true;
                }
                None => {}
            },
            b':' => {
                if let Some(Frame::Obj { key, pending, .. }) = stack.last_mut() {
                    *key = pending.take();
                }
            }
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < end && body[j] != b'"' {
                    j += if body[j] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Obj {
                    pending, in_key, ..
                }) = stack.last_mut()
                {
                    if *in_key {
                        let raw = &body[start..j.min(end)];
                        *pending = Some(String::from_utf8_lossy(raw).into_owned());
                        *in_key = false;
                    }
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    if inside_object {
        if let Some(Frame::Obj { key, .. }) = stack.last_mut() {
            *key = None;
        }
    }
    // A key whose value is in error has been committed by its `:`; a pending string
    // (no `:` yet) is where the text broke and is not shown.
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Obj { key: Some(k), .. } => push_key(&mut path, k),
            Frame::Obj { key: None, .. } => {}
            Frame::Arr { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// Appends a member name; names outside a plain identifier alphabet are caller text and
/// shown as `?` rather than echoed.
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(if plain { key } else { "?" });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn errors_name_the_path() {
        let v: Json = serde_json::from_str(
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
        let v: Json =
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
        let v: Json = serde_json::from_str(
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

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        order: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        prices_include_tax: bool,
        lines: Vec<LineDoc>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct LineDoc {
        total: u32,
    }

    #[test]
    fn serde_errors_name_the_path_and_hide_the_value() {
        let cases: [(&str, &str); 5] = [
            (
                r#"{"order": {"prices_include_tax": "ana@example.com", "lines": []}}"#,
                "order.prices_include_tax: expected a boolean",
            ),
            (
                "{\"order\": {\"prices_include_tax\": true,\n \"lines\": [{\"total\": 1}, {\"total\": \"secret-9\"}]}}",
                "order.lines[1].total: expected u32",
            ),
            (
                r#"{"order": {"lines": [], "prices_include_tax": false, "ana@example.com": 1}}"#,
                "order: unknown field, expected `prices_include_tax` or `lines`",
            ),
            (
                r#"{"order": {"lines": [{"total": 2}]}}"#,
                "order.prices_include_tax: missing",
            ),
            (r#"{"order": {"#, "order: malformed JSON: EOF while parsing an object"),
        ];
        for (body, expected) in cases {
            let err = from_slice_with_path::<Doc>(body.as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), expected, "{body}");
            assert!(!err.to_string().contains("ana@"), "{err}");
            assert!(!err.to_string().contains("secret-9"), "{err}");
        }
        let err = from_slice_with_path::<Doc>(b"\"x\"").unwrap_err();
        assert_eq!(err.path, ROOT_PATH);
    }
}
