//! Received and issued orders: create, update, the actions (confirm, complete,
//! invalidate, their cancellations, copy to an issued invoice) and the search list.

use chrono::Datelike;
use serde_json::{json, Map, Value};

use super::model::*;
use super::routes::{Collection, Req};

pub(super) const ORDER_FIELDS: &[&str] = &[
    "ReceivedIssued",
    "Date",
    "Customer",
    "CustomerName",
    "CustomerAddress",
    "CustomerPostalCode",
    "CustomerCity",
    "CustomerCountry",
    "CustomerCountryName",
    "RecipientName",
    "RecipientAddress",
    "RecipientPostalCode",
    "RecipientCity",
    "RecipientCountryName",
    "RecipientCountry",
    "Analytic",
    "DueDate",
    "Reference",
    "Currency",
    "Notes",
    "DescriptionAbove",
    "DescriptionBelow",
    "ReportTemplate",
];
pub(super) const ORDER_ROW_FIELDS: &[&str] = &[
    "Item",
    "Warehouse",
    "ItemName",
    "ItemCode",
    "Description",
    "Quantity",
    "DiscountPercent",
    "Price",
    "UnitOfMeasurement",
];

const ORDERS: Collection = Collection {
    records: |o| &mut o.orders,
    list_row: Value::clone,
    search: &["Reference"],
    by_code: false,
    delete: true,
};

impl World {
    pub(super) fn order_route(&mut self, req: &Req<'_>) -> Option<Out> {
        let (org_id, ctx, body, method) = (req.org_id, req.ctx, req.body, req.method);
        let out = match (req.method, req.seg) {
            ("GET", ["orders"]) => self.with_org(org_id, |o| o.list_orders(ctx)),
            ("POST", ["orders"]) => self.create_order(org_id, ctx, body),
            ("GET" | "DELETE", ["orders", _]) => return self.crud_arm(req, &ORDERS),
            ("PUT", ["orders", _]) => match req.id(1) {
                Some(id) => self.update_order(org_id, id, ctx, body),
                None => Out::not_found(),
            },
            ("PUT", ["orders", _, "actions", action])
            | ("GET", ["orders", _, "actions", action]) => match req.id(1) {
                Some(id) => self.order_action(org_id, id, method, action, ctx),
                None => Out::not_found(),
            },
            _ => return None,
        };
        Some(out)
    }

    // ---------------------------------------------------------------- orders

    pub(super) fn order_from(
        &mut self,
        org_id: i64,
        ctx: &Ctx,
        input: &Value,
    ) -> Result<Map<String, Value>, Out> {
        let Some(org) = self.orgs.get(&org_id) else {
            return Err(Out::not_found());
        };
        let mut order = pick(input, ORDER_FIELDS);
        let mut errors: Vec<(&str, String)> = Vec::new();
        if !matches!(get_str(input, "ReceivedIssued"), Some("P" | "I")) {
            errors.push((
                "ReceivedIssued",
                "Vrsta naročila (P/I) je obvezen podatek.".into(),
            ));
        }
        match date_field(input, "Date") {
            Ok(Some(d)) => {
                order.insert("Date".into(), json!(fmt_date(&d)));
            }
            Ok(None) => errors.push(("Date", "Datum je obvezen podatek.".into())),
            Err(e) => errors.push(("Date", e)),
        }
        match fk_id(input, "Customer").and_then(|id| org.customers.get(&id)) {
            Some(c) => {
                order.insert(
                    "Customer".into(),
                    fk(
                        org_id,
                        "customers",
                        id_of(c, "CustomerId"),
                        get_str(c, "Name"),
                    ),
                );
                order
                    .entry("CustomerName")
                    .or_insert(c.get("Name").cloned().unwrap_or(Value::Null));
            }
            None => errors.push(("Customer", "Stranka je obvezen podatek.".into())),
        }
        match fk_id(input, "Currency").and_then(|id| org.currency_by_id(id)) {
            Some(v) => {
                order.insert("Currency".into(), v);
            }
            None => errors.push(("Currency", "Valuta je obvezen podatek.".into())),
        }
        let mut rows = Vec::new();
        for (i, row_in) in get(input, "OrderRows")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let mut row = pick(row_in, ORDER_ROW_FIELDS);
            match fk_id(row_in, "Item").and_then(|id| org.items.get(&id)) {
                Some(item) => {
                    row.insert(
                        "Item".into(),
                        fk(
                            org_id,
                            "items",
                            id_of(item, "ItemId"),
                            get_str(item, "Name"),
                        ),
                    );
                    row.entry("ItemName")
                        .or_insert(item.get("Name").cloned().unwrap_or(Value::Null));
                    row.entry("ItemCode")
                        .or_insert(item.get("Code").cloned().unwrap_or(Value::Null));
                }
                None => errors.push((
                    "Item",
                    format!("Vrstica {}: artikel je obvezen podatek.", i + 1),
                )),
            }
            if dec(get(row_in, "Quantity")).is_none() {
                errors.push((
                    "Quantity",
                    format!("Vrstica {}: količina je obvezen podatek.", i + 1),
                ));
            }
            rows.push(row);
        }
        if !errors.is_empty() {
            return Err(Out::validation(errors));
        }
        let mut rows_out = Vec::new();
        for mut row in rows {
            let id = self.id();
            let rv = self.rv();
            row.insert("OrderRowId".into(), json!(id));
            row.insert("RowVersion".into(), json!(rv));
            rows_out.push(Value::Object(row));
        }
        order.insert("OrderRows".into(), Value::Array(rows_out));
        order.insert("RecordDtModified".into(), json!(fmt_date(&ctx.now)));
        Ok(order)
    }

    pub(super) fn create_order(&mut self, org_id: i64, ctx: &Ctx, body: &Value) -> Out {
        let mut order = match self.order_from(org_id, ctx, body) {
            Ok(o) => o,
            Err(out) => return out,
        };
        let id = self.id();
        let rv = self.rv();
        let year = ctx.now.year();
        let number = match self.orgs.get_mut(&org_id) {
            Some(org) => {
                let n = org.order_numbers.entry(year).or_insert(0);
                *n += 1;
                *n
            }
            None => return Out::not_found(),
        };
        order.insert("OrderId".into(), json!(id));
        order.insert("Year".into(), json!(year));
        order.insert("Number".into(), json!(number));
        order.insert("Status".into(), json!("O"));
        order.insert("RowVersion".into(), json!(rv));
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.orders.insert(id, Value::Object(order));
        }
        Self::created(ctx, org_id, "orders", id)
    }

    pub(super) fn update_order(&mut self, org_id: i64, id: i64, ctx: &Ctx, body: &Value) -> Out {
        let current = match self.current_for_update(Docs::Orders, org_id, id, body) {
            Ok(c) => c,
            Err(out) => return out,
        };
        let mut order = match self.order_from(org_id, ctx, body) {
            Ok(o) => o,
            Err(out) => return out,
        };
        for keep in [
            "OrderId",
            "Year",
            "Number",
            "Status",
            "DateConfirmed",
            "DateCompleted",
            "DateCanceled",
        ] {
            order.insert(
                keep.into(),
                current.get(keep).cloned().unwrap_or(Value::Null),
            );
        }
        let rv = self.rv();
        order.insert("RowVersion".into(), json!(rv));
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.orders.insert(id, Value::Object(order));
        }
        Out::empty(200)
    }

    pub(super) fn order_action(
        &mut self,
        org_id: i64,
        id: i64,
        method: &str,
        action: &str,
        ctx: &Ctx,
    ) -> Out {
        let current = match self.current_for_action(Docs::Orders, org_id, id, ctx) {
            Ok(c) => c,
            Err(out) => return out,
        };
        let status = get_str(&current, "Status").unwrap_or("O").to_string();
        if method == "GET" {
            return if action == "getorderpdf" {
                let title = format!("narocilo-{}-{}", current["Year"], current["Number"]);
                Out::action_ok(self.make_pdf(org_id, ctx, &title).2)
            } else {
                Out::method_not_allowed(method)
            };
        }
        let now = fmt_date(&ctx.now);
        let (from, to, date_field_name): (&[&str], &str, Option<&str>) = match action {
            "confirm" => (&["O"], "P", Some("DateConfirmed")),
            "cancelconfirmation" => (&["P"], "O", None),
            "complete" => (&["P"], "Z", Some("DateCompleted")),
            "cancelcompletion" => (&["Z"], "P", None),
            "invalidate" => (&["O", "P"], "R", Some("DateCanceled")),
            "cancelinvalidation" => (&["R"], "O", None),
            "createissuedinvoice" => return self.order_to_invoice(org_id, &current, ctx),
            "generatepdf" => {
                let title = format!("narocilo-{}-{}", current["Year"], current["Number"]);
                return Out::action_ok(self.make_pdf(org_id, ctx, &title).2);
            }
            _ => return Out::business(&format!("Neznana akcija {action}.")),
        };
        if !from.contains(&status.as_str()) {
            return Out::business(&format!(
                "Akcije {action} ni mogoče izvesti za naročilo v stanju {status}."
            ));
        }
        let new_rv = self.rv();
        let mut order = current;
        order["Status"] = json!(to);
        if let Some(f) = date_field_name {
            order[f] = json!(now);
        }
        order["RowVersion"] = json!(new_rv);
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.orders.insert(id, order);
        }
        Out::action_ok(Value::Null)
    }

    /// `createissuedinvoice`: a draft invoice from the order rows, VAT from each item.
    pub(super) fn order_to_invoice(&mut self, org_id: i64, order: &Value, ctx: &Ctx) -> Out {
        let Some(org) = self.orgs.get(&org_id) else {
            return Out::not_found();
        };
        let rows: Vec<Value> = order["OrderRows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        let item = fk_id(r, "Item").and_then(|i| org.items.get(&i));
                        let vat = item.and_then(|i| i.get("VatRate")).cloned().unwrap_or(Value::Null);
                        let price = r.get("Price").cloned().or_else(|| item.and_then(|i| i.get("Price")).cloned()).unwrap_or(json!(0));
                        json!({"Item": r["Item"], "ItemName": r["ItemName"], "Quantity": r["Quantity"], "Price": price,
                               "DiscountPercent": r.get("DiscountPercent").cloned().unwrap_or(Value::Null),
                               "UnitOfMeasurement": r.get("UnitOfMeasurement").cloned().unwrap_or(Value::Null), "VatRate": vat})
                    })
                    .collect()
            })
            .unwrap_or_default();
        let today = fmt_date(&ctx.now);
        let body = json!({
            "Customer": order["Customer"], "Currency": order["Currency"], "InvoiceType": "R",
            "DateIssued": today, "DateTransaction": today, "DateDue": today,
            "DocumentReference": order.get("Reference").cloned().unwrap_or(Value::Null),
            "IssuedInvoiceRows": rows
        });
        let out = self.create_invoice(org_id, ctx, &body);
        if out.status != 201 {
            return out;
        }
        let new_id = out
            .location
            .as_deref()
            .and_then(crate::minimax::id_from_location);
        let invoice = new_id
            .and_then(|i| self.orgs.get(&org_id).and_then(|o| o.invoices.get(&i)))
            .cloned()
            .unwrap_or(Value::Null);
        Out::action_ok(invoice)
    }
}

impl Org {
    pub(super) fn list_orders(&self, ctx: &Ctx) -> Out {
        let rows: Vec<Value> = self
            .orders
            .values()
            .filter(|o| {
                ctx.q("Reference")
                    .is_none_or(|r| get_str(o, "Reference") == Some(r))
                    && ctx.q("CustomerID").is_none_or(|c| {
                        fk_id(o, "Customer").map(|x| x.to_string()) == Some(c.to_string())
                    })
                    && ctx
                        .q("Status")
                        .is_none_or(|s| get_str(o, "Status") == Some(s))
                    && ctx
                        .q("ReceivedIssued")
                        .is_none_or(|s| get_str(o, "ReceivedIssued") == Some(s))
                    && ctx
                        .q("Year")
                        .is_none_or(|y| o.get("Year").map(|v| v.to_string()) == Some(y.to_string()))
                    && ctx.q("Number").is_none_or(|n| {
                        o.get("Number").map(|v| v.to_string()) == Some(n.to_string())
                    })
            })
            .map(|o| {
                project(
                    o,
                    &[
                        "OrderId",
                        "ReceivedIssued",
                        "Year",
                        "Number",
                        "Date",
                        "Customer",
                        "Analytic",
                        "Currency",
                        "Status",
                    ],
                )
            })
            .collect();
        envelope(rows, ctx)
    }
}
