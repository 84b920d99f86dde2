//! Issued invoices: create, update (RowVersion), delete drafts, the actions (issue,
//! PDFs, cancellation, credit-note copies), attachments and the search list.

use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::minimax::models::mm_date;

use super::arithmetic::{row_input, row_values};
use super::model::*;
use super::routes::Req;

pub(super) const INVOICE_FIELDS: &[&str] = &[
    "DocumentNumbering",
    "Customer",
    "DateIssued",
    "DateTransaction",
    "DateTransactionFrom",
    "DateDue",
    "DateCreditNote",
    "AddresseeName",
    "AddresseeAddress",
    "AddresseePostalCode",
    "AddresseeCity",
    "AddresseeCountryName",
    "AddresseeCountry",
    "AddresseeGLN",
    "RecipientName",
    "RecipientAddress",
    "RecipientPostalCode",
    "RecipientCity",
    "RecipientCountryName",
    "RecipientCountry",
    "RecipientGLN",
    "Rabate",
    "ExchangeRate",
    "DocumentReference",
    "Currency",
    "Analytic",
    "IssuedInvoiceReportTemplate",
    "DeliveryNoteReportTemplate",
    "DescriptionAbove",
    "DescriptionBelow",
    "DeliveryNoteDescriptionAbove",
    "DeliveryNoteDescriptionBelow",
    "Notes",
    "Employee",
    "PricesOnInvoice",
    "RecurringInvoice",
    "InvoiceForPeriod",
    "InvoiceType",
    "AssociationWithStock",
    "PurposeCode",
];
pub(super) const INVOICE_ROW_FIELDS: &[&str] = &[
    "Item",
    "ItemName",
    "RowNumber",
    "ItemCode",
    "SerialNumber",
    "BatchNumber",
    "Description",
    "Quantity",
    "UnitOfMeasurement",
    "Mass",
    "Price",
    "PriceWithVAT",
    "VATPercent",
    "Discount",
    "DiscountPercent",
    "VatRate",
    "VatRatePercentage",
    "Warehouse",
    "Analytic",
    "VatAccountingType",
];
pub(super) const PAYMENT_FIELDS: &[&str] = &[
    "PaymentMethod",
    "Amount",
    "AmountInDomesticCurrency",
    "AlreadyPaid",
    "RevenueDate",
];

impl World {
    pub(super) fn invoice_route(&mut self, req: &Req<'_>) -> Option<Out> {
        let (org_id, ctx, body, _method) = (req.org_id, req.ctx, req.body, req.method);
        let out = match (req.method, req.seg) {
            ("GET", ["issuedinvoices", "paymentmethods"]) => return self.code_route(req),
            ("GET", ["issuedinvoices"]) => self.with_org(org_id, |o| o.list_invoices(ctx)),
            ("POST", ["issuedinvoices"]) => self.create_invoice(org_id, ctx, body),
            ("GET", ["issuedinvoices", _]) => self.with_org(org_id, |o| {
                req.id(1)
                    .and_then(|id| o.invoices.get(&id))
                    .map(|c| Out::json(200, c.clone()))
                    .unwrap_or_else(Out::not_found)
            }),
            ("PUT", ["issuedinvoices", _]) => match req.id(1) {
                Some(id) => self.update_invoice(org_id, id, ctx, body),
                None => Out::not_found(),
            },
            ("DELETE", ["issuedinvoices", _]) => self.with_org(org_id, |o| {
                let Some(id) = req.id(1) else {
                    return Out::not_found();
                };
                match o.invoices.get(&id) {
                    None => Out::not_found(),
                    Some(inv) if get_str(inv, "Status") != Some("O") => {
                        Out::business("Izbrišete lahko le račune v osnutku.")
                    }
                    Some(_) => {
                        o.invoices.remove(&id);
                        Out::empty(200)
                    }
                }
            }),
            ("PUT", ["issuedinvoices", _, "actions", action]) => match req.id(1) {
                Some(id) => self.invoice_action(org_id, id, action, ctx),
                None => Out::not_found(),
            },
            ("GET", ["issuedinvoices", _, "attachments"]) => self.with_org(org_id, |o| {
                let Some(inv) = req.id(1).and_then(|id| o.invoices.get(&id)) else {
                    return Out::not_found();
                };
                let list: Vec<Value> = fk_id(inv, "InvoiceAttachment")
                    .and_then(|a| o.attachments.get(&a))
                    .cloned()
                    .into_iter()
                    .collect();
                Out::json(200, Value::Array(list))
            }),
            ("GET", ["documents", _]) => self.with_org(org_id, |o| {
                req.id(1)
                    .and_then(|id| o.documents.get(&id))
                    .map(|c| Out::json(200, c.clone()))
                    .unwrap_or_else(Out::not_found)
            }),
            ("GET", ["documents", _, "attachments", _]) => self.with_org(org_id, |o| {
                let Some(att) = req.id(3).and_then(|id| o.attachments.get(&id)) else {
                    return Out::not_found();
                };
                Out::json(
                    200,
                    json!({"DocumentAttachmentId": att["AttachmentId"], "Document": {"ID": req.id(1)}, "AttachmentData": att["AttachmentData"], "FileName": att["AttachmentFileName"], "MimeType": att["AttachmentMimeType"], "EntryDate": att["AttachmentDate"]}),
                )
            }),
            _ => return None,
        };
        Some(out)
    }

    // -------------------------------------------------------------- invoices

    /// Validates and normalises an invoice body; computes values (drafts carry them too).
    pub(super) fn invoice_from(
        &mut self,
        org_id: i64,
        ctx: &Ctx,
        input: &Value,
    ) -> Result<Map<String, Value>, Out> {
        let Some(org) = self.orgs.get(&org_id) else {
            return Err(Out::not_found());
        };
        let mut inv = pick(input, INVOICE_FIELDS);
        let mut errors: Vec<(&str, String)> = Vec::new();
        match fk_id(input, "Customer").and_then(|id| org.customers.get(&id)) {
            Some(c) => {
                let cid = id_of(c, "CustomerId");
                inv.insert(
                    "Customer".into(),
                    fk(org_id, "customers", cid, get_str(c, "Name")),
                );
                for (field, from) in [
                    ("AddresseeName", "Name"),
                    ("AddresseeAddress", "Address"),
                    ("AddresseePostalCode", "PostalCode"),
                    ("AddresseeCity", "City"),
                ] {
                    if !inv.contains_key(field) {
                        if let Some(v) = c.get(from) {
                            inv.insert(field.into(), v.clone());
                        }
                    }
                }
                if !inv.contains_key("AddresseeCountry") {
                    if let Some(v) = c.get("Country") {
                        inv.insert("AddresseeCountry".into(), v.clone());
                    }
                }
            }
            None => errors.push(("Customer", "Stranka je obvezen podatek.".into())),
        }
        for field in ["DateIssued", "DateDue"] {
            match date_field(input, field) {
                Ok(Some(d)) => {
                    let d = if field == "DateDue" {
                        d.date().and_hms_opt(0, 0, 0).unwrap_or(d)
                    } else {
                        d
                    };
                    inv.insert(field.into(), json!(fmt_date(&d)));
                }
                Ok(None) => errors.push((field, format!("{field} je obvezen podatek."))),
                Err(e) => errors.push((field, e)),
            }
        }
        for field in ["DateTransaction", "DateTransactionFrom", "DateCreditNote"] {
            match date_field(input, field) {
                Ok(Some(d)) => {
                    let d = d.date().and_hms_opt(0, 0, 0).unwrap_or(d);
                    inv.insert(field.into(), json!(fmt_date(&d)));
                }
                Ok(None) => {}
                Err(e) => errors.push((field, e)),
            }
        }
        let invoice_type = get_str(input, "InvoiceType").unwrap_or("");
        if !matches!(invoice_type, "R" | "P") {
            errors.push(("InvoiceType", "Vrsta računa mora biti R ali P.".into()));
        }
        match fk_id(input, "Currency").and_then(|id| org.currency_by_id(id)) {
            Some(v) => {
                inv.insert("Currency".into(), v);
            }
            None => errors.push(("Currency", "Valuta je obvezen podatek.".into())),
        }
        if get(input, "AddresseeCountryName").is_some()
            && fk_id(input, "AddresseeCountry").or_else(|| {
                inv.get("AddresseeCountry")
                    .and_then(|c| fk_id(&json!({"C": c}), "C"))
            }) == Some(org.home_country_id)
        {
            errors.push((
                "AddresseeCountryName",
                "Naziv države za domačo državo ni dovoljen.".into(),
            ));
        }
        let doc = if invoice_type == "P" { "PD" } else { "IR" };
        let numbering = match fk_id(input, "DocumentNumbering") {
            Some(id) => org
                .numberings
                .iter()
                .find(|n| id_of(n, "DocumentNumberingId") == id)
                .cloned(),
            None => org
                .numberings
                .iter()
                .find(|n| get_str(n, "Document") == Some(doc) && get_str(n, "Default") == Some("D"))
                .cloned(),
        };
        match numbering {
            Some(n) => {
                inv.insert(
                    "DocumentNumbering".into(),
                    fk(
                        org_id,
                        "document-numbering",
                        id_of(&n, "DocumentNumberingId"),
                        get_str(&n, "Code"),
                    ),
                );
            }
            None => errors.push(("DocumentNumbering", "Številčenje ne obstaja.".into())),
        }
        for (field, display) in [
            (
                "IssuedInvoiceReportTemplate",
                if invoice_type == "P" { "PR" } else { "IR" },
            ),
            ("DeliveryNoteReportTemplate", "DO"),
        ] {
            let chosen = match fk_id(input, field) {
                Some(id) => org
                    .report_templates
                    .iter()
                    .find(|t| id_of(t, "ReportTemplateId") == id),
                None => org
                    .report_templates
                    .iter()
                    .find(|t| get_str(t, "DisplayType") == Some(display)),
            };
            match chosen {
                Some(t) => {
                    inv.insert(
                        field.into(),
                        fk(
                            org_id,
                            "report-templates",
                            id_of(t, "ReportTemplateId"),
                            get_str(t, "Name"),
                        ),
                    );
                }
                None => errors.push((field, "Predloga izpisa ne obstaja.".into())),
            }
        }
        if let Some(eid) = fk_id(input, "Employee") {
            match org.employees.iter().find(|e| id_of(e, "EmployeeId") == eid) {
                Some(e) => {
                    let name = format!(
                        "{} {}",
                        get_str(e, "FirstName").unwrap_or(""),
                        get_str(e, "LastName").unwrap_or("")
                    );
                    inv.insert("Employee".into(), fk(org_id, "employees", eid, Some(&name)));
                }
                None => errors.push(("Employee", "Delavec ne obstaja.".into())),
            }
        }
        let prices_incl = get_str(input, "PricesOnInvoice").unwrap_or("N") == "D";
        inv.insert(
            "PricesOnInvoice".into(),
            json!(if prices_incl { "D" } else { "N" }),
        );
        let rabate = dec(get(input, "Rabate")).unwrap_or_default();

        let rows_in = get(input, "IssuedInvoiceRows")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if rows_in.is_empty() {
            errors.push((
                "IssuedInvoiceRows",
                "Račun mora imeti vsaj eno vrstico.".into(),
            ));
        }
        let mut rows = Vec::new();
        let mut total = Decimal::ZERO;
        for (i, row_in) in rows_in.iter().enumerate() {
            let mut row = pick(row_in, INVOICE_ROW_FIELDS);
            let n = i + 1;
            let Some(item) = fk_id(row_in, "Item").and_then(|id| org.items.get(&id)) else {
                errors.push(("Item", format!("Vrstica {n}: artikel je obvezen podatek.")));
                continue;
            };
            let item_id = id_of(item, "ItemId");
            row.insert(
                "Item".into(),
                fk(org_id, "items", item_id, get_str(item, "Name")),
            );
            row.entry("ItemName")
                .or_insert(item.get("Name").cloned().unwrap_or(Value::Null));
            row.entry("ItemCode")
                .or_insert(item.get("Code").cloned().unwrap_or(Value::Null));
            row.entry("RowNumber").or_insert(json!(n));
            let vat = fk_id(row_in, "VatRate").and_then(|id| org.vat.iter().find(|v| v.id == id));
            let Some(vat) = vat else {
                errors.push((
                    "VatRate",
                    format!("Vrstica {n}: stopnja DDV je obvezen podatek."),
                ));
                continue;
            };
            if let Some(uom) = get_str(row_in, "UnitOfMeasurement") {
                if uom.chars().count() > 3 {
                    errors.push((
                        "UnitOfMeasurement",
                        format!("Vrstica {n}: enota mere je predolga (največ 3 znaki)."),
                    ));
                }
            }
            let Some(qty) = dec(get(row_in, "Quantity")) else {
                errors.push((
                    "Quantity",
                    format!("Vrstica {n}: količina je obvezen podatek."),
                ));
                continue;
            };
            let p = vat.percent;
            let mut input = row_input(row_in);
            input.quantity = qty;
            let Some(values) = row_values(&input, p, prices_incl, rabate) else {
                errors.push(("Price", format!("Vrstica {n}: cena je obvezen podatek.")));
                continue;
            };
            total += values.gross;
            row.insert(
                "VatRate".into(),
                fk(org_id, "vatrates", vat.id, Some(vat.code.as_str())),
            );
            row.insert(
                "VatRatePercentage".into(),
                json!({"ID": vat.pct_id, "Name": p.normalize().to_string(), "ResourceUrl": null}),
            );
            row.insert("VATPercent".into(), num(p));
            row.insert("Price".into(), num(values.price));
            row.insert("PriceWithVAT".into(), num(values.price_with_vat));
            row.insert("Value".into(), num(values.net));
            rows.push(row);
        }
        let mut payments = Vec::new();
        for pm_in in get(input, "IssuedInvoicePaymentMethods")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let mut pm = pick(&pm_in, PAYMENT_FIELDS);
            match fk_id(&pm_in, "PaymentMethod").and_then(|id| {
                org.payment_methods
                    .iter()
                    .find(|p| id_of(p, "PaymentMethodId") == id)
            }) {
                Some(m) => {
                    pm.insert(
                        "PaymentMethod".into(),
                        fk(
                            org_id,
                            "paymentMethods",
                            id_of(m, "PaymentMethodId"),
                            get_str(m, "Name"),
                        ),
                    );
                }
                None => errors.push(("PaymentMethod", "Način plačila ne obstaja.".into())),
            }
            payments.push(pm);
        }
        if !errors.is_empty() {
            return Err(Out::validation(errors));
        }
        let mut rows_out = Vec::new();
        for mut row in rows {
            let id = self.id();
            let rv = self.rv();
            row.insert("IssuedInvoiceRowId".into(), json!(id));
            row.insert("RowVersion".into(), json!(rv));
            rows_out.push(Value::Object(row));
        }
        let mut pms_out = Vec::new();
        for mut pm in payments {
            let id = self.id();
            let rv = self.rv();
            pm.insert("IssuedInvoicePaymentMethodId".into(), json!(id));
            pm.insert("RowVersion".into(), json!(rv));
            pms_out.push(Value::Object(pm));
        }
        inv.insert("IssuedInvoiceRows".into(), Value::Array(rows_out));
        inv.insert("IssuedInvoicePaymentMethods".into(), Value::Array(pms_out));
        inv.insert("InvoiceValue".into(), num(total));
        inv.insert("RecordDtModified".into(), json!(fmt_date(&ctx.now)));
        Ok(inv)
    }

    pub(super) fn create_invoice(&mut self, org_id: i64, ctx: &Ctx, body: &Value) -> Out {
        let mut inv = match self.invoice_from(org_id, ctx, body) {
            Ok(inv) => inv,
            Err(out) => return out,
        };
        let id = self.id();
        let rv = self.rv();
        inv.insert("IssuedInvoiceId".into(), json!(id));
        inv.insert("Year".into(), Value::Null);
        inv.insert("InvoiceNumber".into(), Value::Null);
        inv.insert("Status".into(), json!("O"));
        inv.insert("PaymentStatus".into(), json!("Osnutek"));
        inv.insert("PaidValue".into(), json!(0));
        inv.insert("Document".into(), Value::Null);
        inv.insert("InvoiceAttachment".into(), Value::Null);
        inv.insert("RowVersion".into(), json!(rv));
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.invoices.insert(id, Value::Object(inv));
        }
        Self::created(ctx, org_id, "issuedinvoices", id)
    }

    pub(super) fn update_invoice(&mut self, org_id: i64, id: i64, ctx: &Ctx, body: &Value) -> Out {
        let current = match self.current_for_update(Docs::Invoices, org_id, id, body) {
            Ok(c) => c,
            Err(out) => return out,
        };
        if get_str(&current, "Status") != Some("O") {
            return Out::conflict_array("BusinessLogic", "Spreminjate lahko le račune v osnutku.");
        }
        let mut inv = match self.invoice_from(org_id, ctx, body) {
            Ok(inv) => inv,
            Err(out) => return out,
        };
        for keep in [
            "IssuedInvoiceId",
            "Year",
            "InvoiceNumber",
            "Status",
            "PaymentStatus",
            "PaidValue",
            "Document",
            "InvoiceAttachment",
        ] {
            inv.insert(
                keep.into(),
                current.get(keep).cloned().unwrap_or(Value::Null),
            );
        }
        let rv = self.rv();
        inv.insert("RowVersion".into(), json!(rv));
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.invoices.insert(id, Value::Object(inv));
        }
        Out::empty(200)
    }
}

impl Org {
    pub(super) fn list_invoices(&self, ctx: &Ctx) -> Out {
        let eq = |inv: &Value, field: &str, param: &str| -> bool {
            match ctx.q(param) {
                None => true,
                Some(want) => match get(inv, field) {
                    Some(Value::String(s)) => s.eq_ignore_ascii_case(want),
                    Some(Value::Number(n)) => n.to_string() == want,
                    _ => false,
                },
            }
        };
        let in_range = |inv: &Value, field: &str, from: &str, to: &str| -> bool {
            let value = date_field(inv, field).ok().flatten().map(|d| d.date());
            let bound = |p: &str| ctx.q(p).and_then(mm_date::parse).map(|d| d.date());
            match value {
                None => bound(from).is_none() && bound(to).is_none(),
                Some(v) => bound(from).is_none_or(|f| v >= f) && bound(to).is_none_or(|t| v <= t),
            }
        };
        let rows: Vec<Value> = self
            .invoices
            .values()
            .filter(|inv| {
                ctx.q("CustomerID").is_none_or(|c| {
                    fk_id(inv, "Customer").map(|x| x.to_string()) == Some(c.to_string())
                }) && ctx.q("CurrencyId").is_none_or(|c| {
                    fk_id(inv, "Currency").map(|x| x.to_string()) == Some(c.to_string())
                }) && eq(inv, "InvoiceType", "InvoiceType")
                    && eq(inv, "Year", "Year")
                    && eq(inv, "InvoiceNumber", "InvoiceNumber")
                    && eq(inv, "Status", "Status")
                    && eq(inv, "PaymentStatus", "PaymentStatus")
                    && in_range(inv, "DateIssued", "DateIssuedFrom", "DateIssuedTo")
                    && in_range(inv, "DateDue", "DateDueFrom", "DateDueTo")
                    && in_range(
                        inv,
                        "DateTransaction",
                        "DateTransactionFrom",
                        "DateTransactionTo",
                    )
            })
            .map(|inv| {
                let mut row = pick(
                    inv,
                    &[
                        "IssuedInvoiceId",
                        "InvoiceType",
                        "Year",
                        "InvoiceNumber",
                        "DocumentNumbering",
                        "Customer",
                        "DateIssued",
                        "DateTransaction",
                        "DateDue",
                        "Currency",
                        "Status",
                        "PaymentStatus",
                        "InvoiceValue",
                        "PaidValue",
                        "RecordDtModified",
                        "RowVersion",
                    ],
                );
                row.insert("Numbering".into(), inv["DocumentNumbering"]["Name"].clone());
                row.insert(
                    "Analytics".into(),
                    inv.get("Analytic").cloned().unwrap_or(Value::Null),
                );
                Value::Object(row)
            })
            .collect();
        envelope(search(rows, ctx, &["Numbering"]), ctx)
    }
}
