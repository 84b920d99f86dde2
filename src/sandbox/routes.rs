//! Request routing: the top-level paths (`currentuser/*`, `orgs/{id}`), the dispatch of an
//! organisation's paths to the resource modules, and the record routes they share
//! (list, read by code or id, delete), written once.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::model::*;

impl World {
    // ------------------------------------------------------------- routing

    pub fn handle(
        &mut self,
        ctx: &Ctx,
        method: &str,
        lower: &[String],
        raw: &[String],
        body: &[u8],
    ) -> Out {
        let seg: Vec<&str> = lower.iter().map(String::as_str).collect();
        match seg.as_slice() {
            ["currentuser", "orgs"] => {
                if method != "GET" {
                    return Out::method_not_allowed(method);
                }
                let orgs = self
                    .users
                    .get(ctx.username)
                    .map(|u| u.orgs.clone())
                    .unwrap_or_default();
                let rows = orgs
                    .iter()
                    .filter_map(|o| self.orgs.get(o))
                    .map(|o| json!({"Organisation": {"ID": o.id, "Name": o.name, "ResourceUrl": format!("/api/orgs/{}", o.id)}, "APIAccess": "D", "MobileAccess": "N"}))
                    .collect();
                envelope(rows, ctx)
            }
            ["currentuser", "profile"] => Out::json(
                200,
                json!({"UserId": 1, "FullName": "Sandbox User", "Email": ctx.username, "MobilePhone": null, "Language": "sl"}),
            ),
            ["orgs", org, rest @ ..] => {
                let Ok(org_id) = org.parse::<i64>() else {
                    return Out::not_found();
                };
                let allowed = self
                    .users
                    .get(ctx.username)
                    .is_some_and(|u| u.orgs.contains(&org_id));
                if !allowed || !self.orgs.contains_key(&org_id) {
                    return Out::message(403, "Authorization has been denied for this request.");
                }
                let raw_rest = &raw[2..];
                if rest.is_empty() {
                    let Some(o) = self.orgs.get(&org_id) else {
                        return Out::not_found();
                    };
                    return Out::json(
                        200,
                        json!({"OrganisationId": o.id, "Title": o.name, "Country": fk(o.id, "countries", o.home_country_id, Some(o.country.code())), "Status": "V", "RowVersion": "AAAAAAAAAAE="}),
                    );
                }
                let body_json = if body.is_empty() {
                    Value::Null
                } else {
                    match serde_json::from_slice::<Value>(body) {
                        Ok(v) => v,
                        Err(_) => {
                            return Out::message(
                                400,
                                "The request is invalid. Body is not valid JSON.",
                            )
                        }
                    }
                };
                self.org_route(org_id, ctx, method, rest, raw_rest, &body_json)
            }
            _ => Out::iis_not_found(),
        }
    }

    /// Routes an organisation's request to the resource it names. Each resource answers
    /// `None` for a method/path it does not have.
    pub(super) fn org_route(
        &mut self,
        org_id: i64,
        ctx: &Ctx,
        method: &str,
        seg: &[&str],
        raw: &[String],
        body: &Value,
    ) -> Out {
        let req = Req {
            org_id,
            ctx,
            method,
            seg,
            raw,
            body,
        };
        let out = match seg.first().copied() {
            Some("customers" | "contacts") => self.customer_route(&req),
            Some("items") => self.item_route(&req),
            Some("issuedinvoices" | "documents") => self.invoice_route(&req),
            Some("orders") => self.order_route(&req),
            _ => self.code_route(&req),
        };
        match out {
            Some(out) => out,
            None if self.known_path(seg) => Out::method_not_allowed(method),
            None => Out::iis_not_found(),
        }
    }

    /// The record routes every stored collection shares: list (projected, searchable),
    /// read by `code(…)` or by id, delete. `None` for anything else.
    pub(super) fn crud_arm(&mut self, req: &Req<'_>, coll: &Collection) -> Option<Out> {
        let records = coll.records;
        let out = match (req.method, req.seg) {
            ("GET", [_]) => self.with_org(req.org_id, |o| {
                let rows = records(o).values().map(coll.list_row).collect();
                envelope(search(rows, req.ctx, coll.search), req.ctx)
            }),
            ("GET", [_, _]) if req.code(1).is_some() && coll.by_code => {
                let code = req.code(1).unwrap_or_default();
                if code.is_empty() {
                    return Some(Out::message(400, "Code is empty."));
                }
                self.with_org(req.org_id, |o| {
                    records(o)
                        .values()
                        .find(|c| get_str(c, "Code") == Some(code.as_str()))
                        .map(|c| Out::json(200, c.clone()))
                        .unwrap_or_else(Out::not_found)
                })
            }
            ("GET", [_, _]) => self.with_org(req.org_id, |o| {
                req.id(1)
                    .and_then(|id| records(o).get(&id))
                    .map(|c| Out::json(200, c.clone()))
                    .unwrap_or_else(Out::not_found)
            }),
            ("DELETE", [_, _]) if coll.delete => self.with_org(req.org_id, |o| {
                match req.id(1).and_then(|id| records(o).remove(&id)) {
                    Some(_) => Out::empty(200),
                    None => Out::not_found(),
                }
            }),
            _ => return None,
        };
        Some(out)
    }

    pub(super) fn known_path(&self, seg: &[&str]) -> bool {
        matches!(
            seg.first().copied(),
            Some(
                "customers"
                    | "contacts"
                    | "items"
                    | "countries"
                    | "currencies"
                    | "vatrates"
                    | "paymentmethods"
                    | "document-numbering"
                    | "report-templates"
                    | "employees"
                    | "issuedinvoices"
                    | "orders"
                    | "documents"
            )
        )
    }

    pub(super) fn with_org(&mut self, org_id: i64, f: impl FnOnce(&mut Org) -> Out) -> Out {
        match self.orgs.get_mut(&org_id) {
            Some(o) => f(o),
            None => Out::not_found(),
        }
    }

    pub(super) fn location(ctx: &Ctx, org: i64, coll: &str, id: i64) -> String {
        format!("{}/api/orgs/{org}/{coll}/{id}?id={id}", ctx.api_root)
    }

    pub(super) fn created(ctx: &Ctx, org: i64, coll: &str, id: i64) -> Out {
        Out {
            status: 201,
            body: OutBody::Empty,
            location: Some(Self::location(ctx, org, coll, id)),
            retry_after: None,
        }
    }
}

/// One organisation request, as the resource routes see it.
pub(super) struct Req<'a> {
    pub org_id: i64,
    pub ctx: &'a Ctx<'a>,
    pub method: &'a str,
    /// Lower-cased path segments after `orgs/{id}`.
    pub seg: &'a [&'a str],
    /// The same segments as sent (codes keep their case).
    pub raw: &'a [String],
    pub body: &'a Value,
}

impl Req<'_> {
    /// The `code(…)` argument of segment `i`, if it is one.
    pub fn code(&self, i: usize) -> Option<String> {
        self.raw.get(i).and_then(|s| code_arg(s))
    }

    /// Segment `i` as a record id.
    pub fn id(&self, i: usize) -> Option<i64> {
        self.seg.get(i).and_then(|s| s.parse::<i64>().ok())
    }
}

/// A stored collection as [`World::crud_arm`] serves it.
pub(super) struct Collection {
    pub records: fn(&mut Org) -> &mut BTreeMap<i64, Value>,
    /// The list row of a record (Minimax lists show fewer fields than a read).
    pub list_row: fn(&Value) -> Value,
    /// Fields `SearchString` looks in.
    pub search: &'static [&'static str],
    pub by_code: bool,
    pub delete: bool,
}
