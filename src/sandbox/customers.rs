//! Customers and their contacts: create, read, update, delete, with Minimax's
//! validation (mandatory fields, unique code, home-country name prohibited).

use serde_json::{json, Map, Value};

use super::model::*;
use super::routes::{Collection, Req};

pub(super) const CUSTOMER_FIELDS: &[&str] = &[
    "Code",
    "Name",
    "Address",
    "PostalCode",
    "City",
    "Country",
    "CountryName",
    "TaxNumber",
    "RegistrationNumber",
    "VATIdentificationNumber",
    "SubjectToVAT",
    "ConsiderCountryForBookkeeping",
    "Currency",
    "ExpirationDays",
    "RebatePercent",
    "WebSiteURL",
    "EInvoiceIssuing",
    "InternalCustomerNumber",
    "GLN",
    "BudgetUserNumber",
    "Usage",
    "AssociationType",
];
pub(super) const CONTACT_FIELDS: &[&str] = &[
    "FullName",
    "PhoneNumber",
    "Fax",
    "MobilePhone",
    "Email",
    "Notes",
    "Default",
];

const CUSTOMERS: Collection = Collection {
    records: |o| &mut o.customers,
    list_row: |c| {
        project(
            c,
            &[
                "CustomerId",
                "Code",
                "Name",
                "Address",
                "PostalCode",
                "City",
                "Country",
                "TaxNumber",
                "Usage",
            ],
        )
    },
    search: &["Code", "Name", "TaxNumber", "City"],
    by_code: true,
    delete: true,
};

impl World {
    pub(super) fn customer_route(&mut self, req: &Req<'_>) -> Option<Out> {
        let (org_id, ctx, body) = (req.org_id, req.ctx, req.body);
        let out = match (req.method, req.seg) {
            ("POST", ["customers"]) => self.create_customer(org_id, ctx, body),
            ("PUT", ["customers", _]) => match req.id(1) {
                Some(id) => self.update_customer(org_id, id, body),
                None => Out::not_found(),
            },
            ("GET", ["customers", _, "contacts"]) => self.with_org(org_id, |o| {
                let cid = req.id(1).unwrap_or_default();
                if !o.customers.contains_key(&cid) {
                    return Out::not_found();
                }
                let rows = o
                    .contacts
                    .values()
                    .filter(|c| fk_id(c, "Customer") == Some(cid))
                    .cloned()
                    .collect();
                envelope(rows, ctx)
            }),
            ("POST", ["customers", _, "contacts"]) => match req.id(1) {
                Some(cid) => self.create_contact(org_id, cid, ctx, body),
                None => Out::not_found(),
            },
            ("GET", ["customers", _, "contacts", _]) => self.with_org(org_id, |o| {
                req.id(3)
                    .and_then(|id| o.contacts.get(&id))
                    .map(|c| Out::json(200, c.clone()))
                    .unwrap_or_else(Out::not_found)
            }),
            ("GET", ["contacts"]) => self.with_org(org_id, |o| {
                envelope(o.contacts.values().cloned().collect(), ctx)
            }),
            (_, ["customers", ..]) => return self.crud_arm(req, &CUSTOMERS),
            _ => return None,
        };
        Some(out)
    }

    // ------------------------------------------------------------ customers

    pub(super) fn customer_from(
        &self,
        org: &Org,
        input: &Value,
        own_id: Option<i64>,
    ) -> Result<Map<String, Value>, Out> {
        let mut c = pick(input, CUSTOMER_FIELDS);
        let mut errors = Vec::new();
        match get_str(input, "Name") {
            None => errors.push(("Name", "Naziv je obvezen podatek.".to_string())),
            Some(n) if n.chars().count() > 250 => {
                errors.push(("Name", "Naziv je predolg (največ 250 znakov).".to_string()))
            }
            _ => {}
        }
        match fk_id(input, "Country").and_then(|id| org.country_by_id(id)) {
            Some(country) => {
                c.insert("Country".into(), country);
            }
            None => errors.push(("Country", "Država je obvezen podatek.".to_string())),
        }
        if let Some(cur) = fk_id(input, "Currency") {
            match org.currency_by_id(cur) {
                Some(v) => {
                    c.insert("Currency".into(), v);
                }
                None => errors.push(("Currency", "Valuta ne obstaja.".to_string())),
            }
        }
        if let Some(code) = get_str(input, "Code") {
            let dup = org.customers.values().any(|x| {
                get_str(x, "Code") == Some(code) && Some(id_of(x, "CustomerId")) != own_id
            });
            if dup && errors.is_empty() {
                return Err(Out::conflict_array(
                    "Code",
                    &format!("Stranka s šifro {code} že obstaja."),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(Out::validation(errors));
        }
        c.entry("SubjectToVAT").or_insert(json!("N"));
        c.entry("EInvoiceIssuing")
            .or_insert(json!("SeNePripravlja"));
        c.entry("Usage").or_insert(json!("D"));
        c.entry("ExpirationDays").or_insert(json!(0));
        c.entry("RebatePercent").or_insert(json!(0));
        Ok(c)
    }

    pub(super) fn create_customer(&mut self, org_id: i64, ctx: &Ctx, body: &Value) -> Out {
        let Some(org) = self.orgs.get(&org_id) else {
            return Out::not_found();
        };
        let mut c = match self.customer_from(org, body, None) {
            Ok(c) => c,
            Err(out) => return out,
        };
        let id = self.id();
        let rv = self.rv();
        c.insert("CustomerId".into(), json!(id));
        c.insert("RecordDtModified".into(), json!(fmt_date(&ctx.now)));
        c.insert("RowVersion".into(), json!(rv));
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.customers.insert(id, Value::Object(c));
        }
        Self::created(ctx, org_id, "customers", id)
    }

    pub(super) fn update_customer(&mut self, org_id: i64, id: i64, body: &Value) -> Out {
        let Some(org) = self.orgs.get(&org_id) else {
            return Out::not_found();
        };
        let Some(current) = org.customers.get(&id) else {
            return Out::not_found();
        };
        if get_str(body, "RowVersion") != get_str(current, "RowVersion") {
            return Out::conflict_array("RowVersion", CONCURRENCY_MESSAGE);
        }
        let mut c = match self.customer_from(org, body, Some(id)) {
            Ok(c) => c,
            Err(out) => return out,
        };
        let rv = self.rv();
        c.insert("CustomerId".into(), json!(id));
        c.insert(
            "RecordDtModified".into(),
            json!(fmt_date(&chrono::Local::now().naive_local())),
        );
        c.insert("RowVersion".into(), json!(rv));
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.customers.insert(id, Value::Object(c));
        }
        Out::empty(200)
    }

    pub(super) fn create_contact(
        &mut self,
        org_id: i64,
        customer_id: i64,
        ctx: &Ctx,
        body: &Value,
    ) -> Out {
        let Some(org) = self.orgs.get(&org_id) else {
            return Out::not_found();
        };
        let Some(customer) = org.customers.get(&customer_id) else {
            return Out::not_found();
        };
        let name = get_str(customer, "Name").map(str::to_string);
        let mut c = pick(body, CONTACT_FIELDS);
        c.entry("Default").or_insert(json!("N"));
        let id = self.id();
        let rv = self.rv();
        c.insert("ContactId".into(), json!(id));
        c.insert(
            "Customer".into(),
            fk(org_id, "customers", customer_id, name.as_deref()),
        );
        c.insert("RecordDtModified".into(), json!(fmt_date(&ctx.now)));
        c.insert("RowVersion".into(), json!(rv));
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.contacts.insert(id, Value::Object(c));
        }
        Self::created(
            ctx,
            org_id,
            &format!("customers/{customer_id}/contacts"),
            id,
        )
    }
}
