//! The sandbox's data model and JSON helpers: organisations with their code lists and
//! records, users, the response type, and the small readers every resource uses.
//!
//! Records are stored as JSON objects with Minimax's field names (this is a fake of
//! Minimax, so its wire names are its data model). Input is filtered to the documented
//! fields, matched case-insensitively, and unknown fields are ignored like JSON.NET does.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use chrono::NaiveDateTime;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Map, Value};

use crate::minimax::models::mm_date;
use crate::minimax::Country;

pub(crate) const CONCURRENCY_MESSAGE: &str =
    "Concurrency error - record changed by another action (RowVersion)";

/// A handler's answer.
pub(crate) struct Out {
    pub(crate) status: u16,
    pub(crate) body: OutBody,
    pub(crate) location: Option<String>,
    pub(crate) retry_after: Option<u64>,
}

pub(crate) enum OutBody {
    Empty,
    Json(Value),
    Text(String),
}

impl Out {
    pub fn json(status: u16, body: Value) -> Out {
        Out {
            status,
            body: OutBody::Json(body),
            location: None,
            retry_after: None,
        }
    }
    pub(super) fn empty(status: u16) -> Out {
        Out {
            status,
            body: OutBody::Empty,
            location: None,
            retry_after: None,
        }
    }
    pub fn message(status: u16, message: &str) -> Out {
        Out::json(status, json!({ "Message": message }))
    }
    pub fn iis_not_found() -> Out {
        Out {
            status: 404,
            body: OutBody::Text("The resource cannot be found.".into()),
            location: None,
            retry_after: None,
        }
    }
    pub(super) fn not_found() -> Out {
        Out::message(404, "Record not found.")
    }
    pub(super) fn validation(errors: Vec<(&str, String)>) -> Out {
        let list: Vec<Value> = errors
            .into_iter()
            .map(|(p, m)| json!({"Message": format!("<ul><li>{m}</li></ul>"), "PropertyName": p}))
            .collect();
        Out::json(400, Value::Array(list))
    }
    pub(super) fn conflict_array(property: &str, message: &str) -> Out {
        Out::json(
            409,
            json!([{ "Message": format!("<ul><li>{message}</li></ul>"), "PropertyName": property }]),
        )
    }
    pub(super) fn business(message: &str) -> Out {
        Out::json(
            409,
            json!({"ValidationMessages": [{"Message": format!("<ul><li>{message}</li></ul>"), "PropertyName": "BusinessLogic"}], "Data": null}),
        )
    }
    pub(super) fn action_ok(data: Value) -> Out {
        Out::json(200, json!({"ValidationMessages": [], "Data": data}))
    }
    pub(super) fn method_not_allowed(method: &str) -> Out {
        Out::message(
            405,
            &format!("The requested resource does not support http method '{method}'."),
        )
    }
}

/// Request context passed to handlers.
pub(crate) struct Ctx<'a> {
    pub(crate) username: &'a str,
    /// Absolute API root for `Location`, e.g. `http://127.0.0.1:1234/sandbox/SI/API`.
    pub(crate) api_root: String,
    pub(crate) query: &'a [(String, String)],
    pub(crate) now: NaiveDateTime,
}

impl Ctx<'_> {
    pub(super) fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

pub(crate) struct User {
    pub(crate) password: String,
    pub(crate) failures: u32,
    pub(crate) locked: bool,
    pub(crate) orgs: Vec<i64>,
}

#[derive(Clone)]
pub(crate) struct VatRec {
    pub(crate) id: i64,
    pub(crate) code: String,
    pub(crate) percent: Decimal,
    pub(crate) pct_id: i64,
    /// The country the rate belongs to (the org's home country or an OSS country).
    pub(crate) country_id: i64,
}

pub(crate) struct Org {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) country: Country,
    pub(crate) home_country_id: i64,
    pub(crate) countries: Vec<Value>,
    pub(crate) currencies: Vec<Value>,
    pub(crate) vat: Vec<VatRec>,
    pub(crate) payment_methods: Vec<Value>,
    pub(crate) numberings: Vec<Value>,
    pub(crate) report_templates: Vec<Value>,
    pub(crate) employees: Vec<Value>,
    pub(crate) customers: BTreeMap<i64, Value>,
    pub(crate) contacts: BTreeMap<i64, Value>,
    pub(crate) items: BTreeMap<i64, Value>,
    pub(crate) invoices: BTreeMap<i64, Value>,
    pub(crate) orders: BTreeMap<i64, Value>,
    pub(crate) documents: BTreeMap<i64, Value>,
    pub(crate) attachments: BTreeMap<i64, Value>,
    pub(crate) numbers: HashMap<(i64, i32), i64>,
    pub(crate) order_numbers: HashMap<i32, i32>,
}

pub(crate) struct World {
    pub(crate) next_id: i64,
    pub(crate) row_version: u32,
    pub(crate) users: HashMap<String, User>,
    pub(crate) orgs: BTreeMap<i64, Org>,
}

/// The two document collections that have drafts, RowVersions and actions.
#[derive(Clone, Copy)]
pub(super) enum Docs {
    Invoices,
    Orders,
}

impl World {
    fn document(&self, which: Docs, org_id: i64, id: i64) -> Option<&Value> {
        let org = self.orgs.get(&org_id)?;
        match which {
            Docs::Invoices => org.invoices.get(&id),
            Docs::Orders => org.orders.get(&id),
        }
    }

    /// The document a PUT names, if the body carries its current `RowVersion`.
    pub(super) fn current_for_update(
        &self,
        which: Docs,
        org_id: i64,
        id: i64,
        body: &Value,
    ) -> Result<Value, Out> {
        let current = self
            .document(which, org_id, id)
            .ok_or_else(Out::not_found)?;
        if get_str(body, "RowVersion") != get_str(current, "RowVersion") {
            return Err(Out::conflict_array("RowVersion", CONCURRENCY_MESSAGE));
        }
        Ok(current.clone())
    }

    /// The document an action names, if the `rowVersion` query is its current one.
    pub(super) fn current_for_action(
        &self,
        which: Docs,
        org_id: i64,
        id: i64,
        ctx: &Ctx,
    ) -> Result<Value, Out> {
        let current = self
            .document(which, org_id, id)
            .ok_or_else(Out::not_found)?;
        let Some(rv) = ctx.q("rowVersion") else {
            return Err(Out::message(
                400,
                "The request is invalid. rowVersion is required.",
            ));
        };
        if Some(rv) != get_str(current, "RowVersion") {
            return Err(Out::json(
                409,
                json!({"ValidationMessages": [{"Message": CONCURRENCY_MESSAGE, "PropertyName": "RowVersion"}], "Data": null}),
            ));
        }
        Ok(current.clone())
    }
}

// ------------------------------------------------------------------ helpers

pub(super) fn dec(v: Option<&Value>) -> Option<Decimal> {
    match v? {
        Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s)
                .or_else(|_| Decimal::from_scientific(&s))
                .ok()
        }
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        _ => None,
    }
}

pub(crate) fn num(d: Decimal) -> Value {
    serde_json::Number::from_str(&d.normalize().to_string())
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

pub(super) fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Case-insensitive field read.
pub(super) fn get<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(name)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

pub(super) fn get_str<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    get(obj, name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

pub(super) fn fk_id(obj: &Value, name: &str) -> Option<i64> {
    let v = get(obj, name)?;
    let id = get(v, "ID")?;
    id.as_i64()
        .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
}

pub(super) fn fmt_date(d: &NaiveDateTime) -> String {
    let s = mm_date::format(d);
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

pub(super) fn date_field(obj: &Value, name: &str) -> Result<Option<NaiveDateTime>, String> {
    match get(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) => mm_date::parse(s)
            .map(Some)
            .ok_or_else(|| format!("Polje {name} ima neveljaven datum.")),
        Some(_) => Err(format!("Polje {name} ima neveljaven datum.")),
    }
}

/// Copies the listed fields (case-insensitively) under their canonical names.
pub(super) fn pick(input: &Value, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for f in fields {
        if let Some(v) = get(input, f) {
            out.insert((*f).to_string(), v.clone());
        }
    }
    out
}

pub(super) fn fk(org: i64, coll: &str, id: i64, name: Option<&str>) -> Value {
    json!({"ID": id, "Name": name, "ResourceUrl": format!("/api/orgs/{org}/{coll}/{id}")})
}

pub(super) fn id_of(v: &Value, field: &str) -> i64 {
    v.get(field).and_then(Value::as_i64).unwrap_or_default()
}

/// The list envelope with `SearchString` already applied; sorts and pages.
pub(super) fn envelope(mut rows: Vec<Value>, ctx: &Ctx) -> Out {
    if let Some(field) = ctx.q("SortField") {
        let key = |v: &Value| -> String {
            match get(v, field) {
                Some(Value::Number(n)) => format!("{:>30}", n.to_string()),
                Some(Value::String(s)) => s.to_lowercase(),
                Some(other) => other.to_string(),
                None => String::new(),
            }
        };
        rows.sort_by_key(key);
        if ctx.q("Order").is_some_and(|o| o.eq_ignore_ascii_case("D")) {
            rows.reverse();
        }
    }
    let page_size = ctx
        .q("PageSize")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(100);
    let page = ctx
        .q("CurrentPage")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let total = rows.len();
    let slice: Vec<Value> = rows
        .into_iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .collect();
    Out::json(
        200,
        json!({"Rows": slice, "TotalRows": total, "CurrentPageNumber": page, "PageSize": page_size}),
    )
}

pub(super) fn search(rows: Vec<Value>, ctx: &Ctx, fields: &[&str]) -> Vec<Value> {
    let Some(needle) = ctx.q("SearchString").map(str::to_lowercase) else {
        return rows;
    };
    rows.into_iter()
        .filter(|r| {
            fields.iter().any(|f| {
                get(r, f)
                    .map(|v| match v {
                        Value::String(s) => s.to_lowercase().contains(&needle),
                        other => other.to_string().to_lowercase().contains(&needle),
                    })
                    .unwrap_or(false)
            })
        })
        .collect()
}

pub(super) fn project(v: &Value, fields: &[&str]) -> Value {
    Value::Object(pick(v, fields))
}

pub(super) fn code_arg(seg: &str) -> Option<String> {
    let lower = seg.to_ascii_lowercase();
    if lower.starts_with("code(") && seg.ends_with(')') {
        Some(seg[5..seg.len() - 1].to_string())
    } else {
        None
    }
}
