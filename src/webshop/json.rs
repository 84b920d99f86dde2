//! The JSON tree the platform parsers read: strings borrowed from the body where they
//! hold no escapes, objects as their entries in order, numbers as their source text.
//!
//! Why not `serde_json::Value`: intake builds one tree per webhook and reads a few
//! dozen of its fields; `Value` allocates every string and key and inserts each key
//! into a `BTreeMap`, which was about a tenth of the intake's CPU. Lookups here scan an
//! object's entries (objects of shop payloads are small); a duplicate key reads as its
//! last occurrence, as with `Value`. Numbers keep their exact text (the crate enables
//! `serde_json`'s `arbitrary_precision`), so money and 64-bit ids read from the tree
//! are exact. The deserializer's recursion limit still bounds nesting.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One JSON value of a body with lifetime `'a`.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// A number exactly as written.
    Number(Cow<'a, str>),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// The entries of an object.
    pub fn as_object(&self) -> Option<&[(Cow<'a, str>, Json<'a>)]> {
        match self {
            Json::Object(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// A member of an object (its last occurrence).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        lookup(self.as_object()?, key)
    }
}

/// The value of `key` among an object's entries (its last occurrence).
pub fn lookup<'e, 'a>(entries: &'e [(Cow<'a, str>, Json<'a>)], key: &str) -> Option<&'e Json<'a>> {
    entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// How `serde_json` (with `arbitrary_precision`) hands a number to a visitor: a map
/// with this one key and the number's text as its value.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(Json::Number(Cow::Owned(v.to_string())))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let Some(Text(first)) = map.next_key()? else {
            return Ok(Json::Object(Vec::new()));
        };
        if first == NUMBER_TOKEN {
            let Text(number) = map.next_value()?;
            return Ok(Json::Number(number));
        }
        let mut out = Vec::with_capacity(8);
        out.push((first, map.next_value()?));
        while let Some(Text(k)) = map.next_key()? {
            out.push((k, map.next_value()?));
        }
        Ok(Json::Object(out))
    }
}

/// A string that borrows from the input when it can (serde's own `Cow<str>` never does).
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strings_without_escapes_borrow_and_numbers_keep_their_text() {
        let body = r#"{"a":"plain","b":"esc\"aped","n":820982911946154508,"f":12.50,"z":null,"l":[true,{}]}"#;
        let v: Json = serde_json::from_str(body).unwrap();
        assert!(matches!(
            v.get("a"),
            Some(Json::String(Cow::Borrowed("plain")))
        ));
        assert_eq!(v.get("b").unwrap().as_str(), Some("esc\"aped"));
        assert_eq!(v.get("n"), Some(&Json::Number("820982911946154508".into())));
        assert_eq!(v.get("f"), Some(&Json::Number("12.50".into())));
        assert_eq!(v.get("z"), Some(&Json::Null));
        assert_eq!(
            v.get("l"),
            Some(&Json::Array(vec![Json::Bool(true), Json::Object(vec![])]))
        );
    }

    #[test]
    fn a_duplicate_key_reads_as_its_last_occurrence_like_serde_json_value() {
        let body = r#"{"k":1,"k":2}"#;
        let v: Json = serde_json::from_str(body).unwrap();
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v.get("k"), Some(&Json::Number("2".into())));
        assert_eq!(value["k"].to_string(), "2");
    }

    #[test]
    fn hostile_nesting_is_refused_not_a_stack_overflow() {
        let body = "[".repeat(100_000);
        assert!(serde_json::from_str::<Json>(&body).is_err());
    }
}
