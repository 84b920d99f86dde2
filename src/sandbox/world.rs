//! The sandbox's data: organisations with seeded code lists, customers, items, issued
//! invoices and orders, and the request handlers that act on them.
//!
//! Records are stored as JSON objects with Minimax's field names (this is a fake of
//! Minimax, so its wire names are its data model). Input is filtered to the documented
//! fields, matched case-insensitively, and unknown fields are ignored like JSON.NET does.
//! Issuing follows MINIMAX_API.md §4.3 and the rounding assumption of §5.2.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use base64::Engine;
use chrono::{Datelike, NaiveDateTime};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Map, Value};

use crate::minimax::models::mm_date;
use crate::minimax::Country;

pub(crate) const CONCURRENCY_MESSAGE: &str =
    "Concurrency error - record changed by another action (RowVersion)";

/// A handler's answer.
pub(crate) struct Out {
    pub status: u16,
    pub body: OutBody,
    pub location: Option<String>,
    pub retry_after: Option<u64>,
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
    fn empty(status: u16) -> Out {
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
    fn not_found() -> Out {
        Out::message(404, "Record not found.")
    }
    fn validation(errors: Vec<(&str, String)>) -> Out {
        let list: Vec<Value> = errors
            .into_iter()
            .map(|(p, m)| json!({"Message": format!("<ul><li>{m}</li></ul>"), "PropertyName": p}))
            .collect();
        Out::json(400, Value::Array(list))
    }
    fn conflict_array(property: &str, message: &str) -> Out {
        Out::json(
            409,
            json!([{ "Message": format!("<ul><li>{message}</li></ul>"), "PropertyName": property }]),
        )
    }
    fn business(message: &str) -> Out {
        Out::json(
            409,
            json!({"ValidationMessages": [{"Message": format!("<ul><li>{message}</li></ul>"), "PropertyName": "BusinessLogic"}], "Data": null}),
        )
    }
    fn action_ok(data: Value) -> Out {
        Out::json(200, json!({"ValidationMessages": [], "Data": data}))
    }
    fn method_not_allowed(method: &str) -> Out {
        Out::message(
            405,
            &format!("The requested resource does not support http method '{method}'."),
        )
    }
}

/// Request context passed to handlers.
pub(crate) struct Ctx<'a> {
    pub username: &'a str,
    /// Absolute API root for `Location`, e.g. `http://127.0.0.1:1234/sandbox/SI/API`.
    pub api_root: String,
    pub query: &'a [(String, String)],
    pub now: NaiveDateTime,
}

impl Ctx<'_> {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

pub(crate) struct User {
    pub password: String,
    pub failures: u32,
    pub locked: bool,
    pub orgs: Vec<i64>,
}

#[derive(Clone)]
struct VatRec {
    id: i64,
    code: String,
    percent: Decimal,
    pct_id: i64,
    /// The country the rate belongs to (the org's home country or an OSS country).
    country_id: i64,
}

pub(crate) struct Org {
    pub id: i64,
    pub name: String,
    pub country: Country,
    home_country_id: i64,
    countries: Vec<Value>,
    currencies: Vec<Value>,
    vat: Vec<VatRec>,
    payment_methods: Vec<Value>,
    numberings: Vec<Value>,
    report_templates: Vec<Value>,
    employees: Vec<Value>,
    pub customers: BTreeMap<i64, Value>,
    pub contacts: BTreeMap<i64, Value>,
    pub items: BTreeMap<i64, Value>,
    pub invoices: BTreeMap<i64, Value>,
    pub orders: BTreeMap<i64, Value>,
    documents: BTreeMap<i64, Value>,
    attachments: BTreeMap<i64, Value>,
    numbers: HashMap<(i64, i32), i64>,
    order_numbers: HashMap<i32, i32>,
}

pub(crate) struct World {
    next_id: i64,
    row_version: u32,
    pub users: HashMap<String, User>,
    pub orgs: BTreeMap<i64, Org>,
}

// ------------------------------------------------------------------ helpers

fn dec(v: Option<&Value>) -> Option<Decimal> {
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

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Case-insensitive field read.
fn get<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(name)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

fn get_str<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    get(obj, name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn fk_id(obj: &Value, name: &str) -> Option<i64> {
    let v = get(obj, name)?;
    let id = get(v, "ID")?;
    id.as_i64()
        .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
}

fn fmt_date(d: &NaiveDateTime) -> String {
    let s = mm_date::format(d);
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

fn date_field(obj: &Value, name: &str) -> Result<Option<NaiveDateTime>, String> {
    match get(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) => mm_date::parse(s)
            .map(Some)
            .ok_or_else(|| format!("Polje {name} ima neveljaven datum.")),
        Some(_) => Err(format!("Polje {name} ima neveljaven datum.")),
    }
}

/// Copies the listed fields (case-insensitively) under their canonical names.
fn pick(input: &Value, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for f in fields {
        if let Some(v) = get(input, f) {
            out.insert((*f).to_string(), v.clone());
        }
    }
    out
}

fn fk(org: i64, coll: &str, id: i64, name: Option<&str>) -> Value {
    json!({"ID": id, "Name": name, "ResourceUrl": format!("/api/orgs/{org}/{coll}/{id}")})
}

fn id_of(v: &Value, field: &str) -> i64 {
    v.get(field).and_then(Value::as_i64).unwrap_or_default()
}

const CUSTOMER_FIELDS: &[&str] = &[
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
const CONTACT_FIELDS: &[&str] = &[
    "FullName",
    "PhoneNumber",
    "Fax",
    "MobilePhone",
    "Email",
    "Notes",
    "Default",
];
const ITEM_FIELDS: &[&str] = &[
    "Name",
    "Code",
    "EANCode",
    "Description",
    "ItemType",
    "StocksManagedOnlyByQuantity",
    "CalculationOfConsumptionTax",
    "UnitOfMeasurement",
    "MassPerUnit",
    "ProductGroup",
    "VatRate",
    "Price",
    "RebatePercent",
    "Usage",
    "Currency",
    "SerialNumbers",
    "BatchNumbers",
];
const INVOICE_FIELDS: &[&str] = &[
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
const INVOICE_ROW_FIELDS: &[&str] = &[
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
const PAYMENT_FIELDS: &[&str] = &[
    "PaymentMethod",
    "Amount",
    "AmountInDomesticCurrency",
    "AlreadyPaid",
    "RevenueDate",
];
const ORDER_FIELDS: &[&str] = &[
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
const ORDER_ROW_FIELDS: &[&str] = &[
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

/// The list envelope with `SearchString` already applied; sorts and pages.
fn envelope(mut rows: Vec<Value>, ctx: &Ctx) -> Out {
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

fn search(rows: Vec<Value>, ctx: &Ctx, fields: &[&str]) -> Vec<Value> {
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

fn project(v: &Value, fields: &[&str]) -> Value {
    Value::Object(pick(v, fields))
}

fn code_arg(seg: &str) -> Option<String> {
    let lower = seg.to_ascii_lowercase();
    if lower.starts_with("code(") && seg.ends_with(')') {
        Some(seg[5..seg.len() - 1].to_string())
    } else {
        None
    }
}

// ------------------------------------------------------------------- seed

const COUNTRIES: &[(i64, &str, &str, i64)] = &[
    (192, "SI", "Slovenija", 7),
    (95, "HR", "Hrvaška", 7),
    (14, "AT", "Avstrija", 7),
    (81, "DE", "Nemčija", 7),
    (107, "IT", "Italija", 7),
    (99, "HU", "Madžarska", 13),
    (3, "RS", "Srbija", 2),
    (42, "CH", "Švica", 12),
    (77, "GB", "Združeno kraljestvo", 11),
    (232, "US", "Združene države Amerike", 10),
    (40, "CA", "Kanada", 10),
    (75, "FR", "Francija", 7),
    (160, "NL", "Nizozemska", 7),
    (31, "BR", "Brazilija", 10),
];
const CURRENCIES: &[(i64, &str, &str)] = &[
    (7, "EUR", "Evro"),
    (10, "USD", "Ameriški dolar"),
    (11, "GBP", "Britanski funt"),
    (12, "CHF", "Švicarski frank"),
    (13, "HUF", "Madžarski forint"),
    (2, "RSD", "Srbski dinar"),
];

fn home_rates(country: Country) -> Vec<(&'static str, &'static str)> {
    match country {
        Country::SI => vec![
            ("S", "22"),
            ("Z", "9.5"),
            ("P", "5"),
            ("O", "0"),
            ("N", "0"),
        ],
        Country::HR => vec![("S", "25"), ("Z", "13"), ("P", "5"), ("O", "0"), ("N", "0")],
        Country::RS => vec![("S", "20"), ("Z", "10"), ("O", "0"), ("N", "0")],
    }
}

/// Rates of other EU countries for OSS (`vatrates?countryID=`).
const FOREIGN_RATES: &[(i64, &str, &str)] = &[
    (14, "S", "20"),
    (14, "Z", "10"),
    (81, "S", "19"),
    (81, "Z", "7"),
    (95, "S", "25"),
    (95, "Z", "13"),
    (107, "S", "22"),
    (107, "Z", "10"),
    (99, "S", "27"),
    (192, "S", "22"),
    (192, "Z", "9.5"),
];

impl World {
    pub fn new() -> World {
        World {
            next_id: 1_000_000,
            row_version: 0,
            users: HashMap::new(),
            orgs: BTreeMap::new(),
        }
    }

    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Base64 of an 8-byte rowversion. The fixed bytes make every value contain `+`, so a
    /// client that forgets to URL-encode it fails like it would against Minimax.
    fn rv(&mut self) -> String {
        self.row_version = self.row_version.wrapping_add(1) & 0x00ff_ffff;
        let c = self.row_version.to_be_bytes();
        base64::engine::general_purpose::STANDARD.encode([0, 0, 0, 0xfb, 0xef, c[1], c[2], c[3]])
    }

    /// Adds a VAT rate of the organisation's home country (tests of shops whose tax
    /// rates the seeded list lacks). Returns its id.
    pub fn add_vat_rate(&mut self, org_id: i64, code: &str, percent: Decimal) -> Option<i64> {
        let id = self.id();
        let org = self.orgs.get_mut(&org_id)?;
        let country_id = org.home_country_id;
        org.vat.push(VatRec {
            id,
            code: code.to_owned(),
            percent,
            pct_id: id + 1_000_000,
            country_id,
        });
        Some(id)
    }

    pub fn add_org(&mut self, id: i64, name: &str, country: Country) {
        let home_code = country.code();
        let home_country_id = COUNTRIES
            .iter()
            .find(|c| c.1 == home_code)
            .map(|c| c.0)
            .unwrap_or(192);
        let countries = COUNTRIES
            .iter()
            .map(|(cid, code, cname, cur)| {
                let cur_code = CURRENCIES.iter().find(|c| c.0 == *cur).map(|c| c.1);
                json!({"CountryId": cid, "Code": code, "Name": cname, "Currency": fk(id, "currencies", *cur, cur_code)})
            })
            .collect();
        let currencies = CURRENCIES
            .iter()
            .map(|(cid, code, cname)| json!({"CurrencyId": cid, "Code": code, "Name": cname}))
            .collect();
        let mut vat = Vec::new();
        for (i, (code, pct)) in home_rates(country).into_iter().enumerate() {
            let i = i as i64;
            vat.push(VatRec {
                id: 36 + i,
                code: code.to_string(),
                percent: Decimal::from_str(pct).unwrap_or_default(),
                pct_id: 136 + i,
                country_id: home_country_id,
            });
        }
        for (i, (cid, code, pct)) in FOREIGN_RATES.iter().enumerate() {
            if *cid == home_country_id {
                continue;
            }
            let i = i as i64;
            vat.push(VatRec {
                id: 500 + i,
                code: code.to_string(),
                percent: Decimal::from_str(pct).unwrap_or_default(),
                pct_id: 600 + i,
                country_id: *cid,
            });
        }
        let payment_methods = [
            (412535, "STRIPE", "STRIPE", "K", "N"),
            (412536, "Transakcijski račun", "TRR", "T", "D"),
            (412537, "Gotovina", "GOTOVINA", "G", "N"),
            (412538, "Kartica", "KARTICA", "K", "N"),
            (412539, "PayPal", "PYP", "D", "N"),
        ]
        .iter()
        .map(|(pid, n, c, t, d)| {
            json!({"PaymentMethodId": pid, "Name": n, "Code": c, "Type": t, "Usage": "D", "Default": d})
        })
        .collect();
        let numberings = [
            (33858, "IR", "R", "Računi", "D"),
            (33859, "IR", "139-3", "Davčno potrjevanje računov", "N"),
            (33860, "PD", "PR", "Predračuni", "D"),
        ]
        .iter()
        .map(|(nid, doc, code, n, d)| {
            json!({"DocumentNumberingId": nid, "Document": doc, "Code": code, "Name": n, "Default": d, "Usage": "D", "RowVersion": "AAAAAAAAAAE="})
        })
        .collect();
        let report_templates = [
            (5001, "Standardno - Izdan račun", "IR"),
            (5002, "Standardno - Dobavnica", "DO"),
            (5003, "Standardno - Predračun", "PR"),
            (5004, "Standardno - Dobropis", "DP"),
            (5005, "Standardno - Izdano naročilo", "IN"),
            (5006, "Standardno - Prejeto naročilo", "PN"),
        ]
        .iter()
        .map(|(rid, n, t)| json!({"ReportTemplateId": rid, "Name": n, "DisplayType": t, "Default": "D", "RowVersion": "AAAAAAAAAAE="}))
        .collect();
        let employees = vec![json!({
            "EmployeeId": 9001, "Code": "BLAG1", "FirstName": "Janez", "LastName": "Novak",
            "TaxNumber": "12345678", "EmploymentType": "ZD",
            "Country": fk(id, "countries", home_country_id, Some(home_code)),
            "RowVersion": "AAAAAAAAAAE="
        })];
        let mut org = Org {
            id,
            name: name.to_string(),
            country,
            home_country_id,
            countries,
            currencies,
            vat,
            payment_methods,
            numberings,
            report_templates,
            employees,
            customers: BTreeMap::new(),
            contacts: BTreeMap::new(),
            items: BTreeMap::new(),
            invoices: BTreeMap::new(),
            orders: BTreeMap::new(),
            documents: BTreeMap::new(),
            attachments: BTreeMap::new(),
            numbers: HashMap::new(),
            order_numbers: HashMap::new(),
        };
        for (code, item_name, kind, price, vat_code, uom) in [
            ("ART-001", "Majica", "B", "20.00", "S", "kos"),
            ("ART-002", "Knjiga", "B", "15.00", "P", "kos"),
            ("DOSTAVA", "Dostava", "S", "4.10", "S", "kos"),
        ] {
            let item_id = self.id();
            let rv = self.rv();
            let vat = org
                .vat
                .iter()
                .find(|v| v.code == vat_code && v.country_id == home_country_id)
                .or_else(|| org.vat.first())
                .map(|v| v.id)
                .unwrap_or(36);
            let item = json!({
                "ItemId": item_id, "Name": item_name, "Code": code, "ItemType": kind,
                "UnitOfMeasurement": uom, "Price": num(Decimal::from_str(price).unwrap_or_default()),
                "VatRate": fk(id, "vatrates", vat, Some(vat_code)), "Usage": "D",
                "Currency": fk(id, "currencies", 7, Some("EUR")),
                "RecordDtModified": "2024-01-01T00:00:00", "RowVersion": rv
            });
            org.items.insert(item_id, item);
        }
        self.orgs.insert(id, org);
    }

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

    fn org_route(
        &mut self,
        org_id: i64,
        ctx: &Ctx,
        method: &str,
        seg: &[&str],
        raw: &[String],
        body: &Value,
    ) -> Out {
        let code = |i: usize| raw.get(i).and_then(|s| code_arg(s));
        let idn = |i: usize| seg.get(i).and_then(|s| s.parse::<i64>().ok());
        match (method, seg) {
            ("GET", ["customers"]) => self.with_org(org_id, |o| {
                let rows = o
                    .customers
                    .values()
                    .map(|c| project(c, &["CustomerId", "Code", "Name", "Address", "PostalCode", "City", "Country", "TaxNumber", "Usage"]))
                    .collect();
                envelope(search(rows, ctx, &["Code", "Name", "TaxNumber", "City"]), ctx)
            }),
            ("POST", ["customers"]) => self.create_customer(org_id, ctx, body),
            ("GET", ["customers", _]) if code(1).is_some() => {
                let code = code(1).unwrap_or_default();
                if code.is_empty() {
                    return Out::message(400, "Code is empty.");
                }
                self.with_org(org_id, |o| {
                    o.customers
                        .values()
                        .find(|c| get_str(c, "Code") == Some(code.as_str()))
                        .map(|c| Out::json(200, c.clone()))
                        .unwrap_or_else(Out::not_found)
                })
            }
            ("GET", ["customers", _]) => self.with_org(org_id, |o| {
                idn(1)
                    .and_then(|id| o.customers.get(&id))
                    .map(|c| Out::json(200, c.clone()))
                    .unwrap_or_else(Out::not_found)
            }),
            ("PUT", ["customers", _]) => match idn(1) {
                Some(id) => self.update_customer(org_id, id, body),
                None => Out::not_found(),
            },
            ("DELETE", ["customers", _]) => self.with_org(org_id, |o| {
                match idn(1).and_then(|id| o.customers.remove(&id)) {
                    Some(_) => Out::empty(200),
                    None => Out::not_found(),
                }
            }),
            ("GET", ["customers", _, "contacts"]) => self.with_org(org_id, |o| {
                let cid = idn(1).unwrap_or_default();
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
            ("POST", ["customers", _, "contacts"]) => match idn(1) {
                Some(cid) => self.create_contact(org_id, cid, ctx, body),
                None => Out::not_found(),
            },
            ("GET", ["customers", _, "contacts", _]) => self.with_org(org_id, |o| {
                idn(3)
                    .and_then(|id| o.contacts.get(&id))
                    .map(|c| Out::json(200, c.clone()))
                    .unwrap_or_else(Out::not_found)
            }),
            ("GET", ["contacts"]) => self.with_org(org_id, |o| {
                envelope(o.contacts.values().cloned().collect(), ctx)
            }),
            ("GET", ["items"]) => self.with_org(org_id, |o| {
                let rows: Vec<Value> = o
                    .items
                    .values()
                    .map(|i| {
                        let mut row = pick(i, &["ItemId", "Code", "UnitOfMeasurement", "MassPerUnit", "ItemType", "VatRate", "Price", "Currency", "ProductGroup"]);
                        row.insert("Title".into(), i.get("Name").cloned().unwrap_or(Value::Null));
                        Value::Object(row)
                    })
                    .collect();
                envelope(search(rows, ctx, &["Code", "Title"]), ctx)
            }),
            ("POST", ["items"]) => self.create_item(org_id, ctx, body),
            ("GET", ["items", "settings"]) => Out::json(200, json!({"PricesIncludeVAT": "N"})),
            ("GET", ["items", _]) if code(1).is_some() => {
                let code = code(1).unwrap_or_default();
                if code.is_empty() {
                    return Out::message(400, "Code is empty.");
                }
                self.with_org(org_id, |o| {
                    o.items
                        .values()
                        .find(|c| get_str(c, "Code") == Some(code.as_str()))
                        .map(|c| Out::json(200, c.clone()))
                        .unwrap_or_else(Out::not_found)
                })
            }
            ("GET", ["items", _]) => self.with_org(org_id, |o| {
                idn(1)
                    .and_then(|id| o.items.get(&id))
                    .map(|c| Out::json(200, c.clone()))
                    .unwrap_or_else(Out::not_found)
            }),
            ("GET", ["countries"]) => self.with_org(org_id, |o| {
                envelope(search(o.countries.clone(), ctx, &["Code", "Name"]), ctx)
            }),
            ("GET", ["countries", _]) => self.with_org(org_id, |o| {
                find_code_or_id(&o.countries, "CountryId", code(1), idn(1))
            }),
            ("GET", ["currencies"]) => self.with_org(org_id, |o| {
                envelope(search(o.currencies.clone(), ctx, &["Code", "Name"]), ctx)
            }),
            ("GET", ["currencies", _]) => self.with_org(org_id, |o| {
                find_code_or_id(&o.currencies, "CurrencyId", code(1), idn(1))
            }),
            ("GET", ["vatrates"]) => self.with_org(org_id, |o| match o.vat_country(ctx) {
                Ok(country) => {
                    let rows = o
                        .vat
                        .iter()
                        .filter(|v| v.country_id == country)
                        .map(|v| o.vat_json(v))
                        .collect();
                    envelope(search(rows, ctx, &["Code"]), ctx)
                }
                Err(out) => out,
            }),
            ("GET", ["vatrates", _]) => self.with_org(org_id, |o| {
                let country = match o.vat_country(ctx) {
                    Ok(c) => c,
                    Err(out) => return out,
                };
                let found = match (code(1), idn(1)) {
                    (Some(c), _) if c.is_empty() => return Out::message(400, "Code is empty."),
                    (Some(c), _) => o
                        .vat
                        .iter()
                        .find(|v| v.code.eq_ignore_ascii_case(&c) && v.country_id == country),
                    (None, Some(id)) => o.vat.iter().find(|v| v.id == id),
                    _ => None,
                };
                found
                    .map(|v| Out::json(200, o.vat_json(v)))
                    .unwrap_or_else(Out::not_found)
            }),
            ("GET", ["paymentmethods"]) => self.with_org(org_id, |o| {
                let rows = o
                    .payment_methods
                    .iter()
                    .map(|p| project(p, &["PaymentMethodId", "Name", "Type", "Usage", "Default"]))
                    .collect();
                envelope(search(rows, ctx, &["Name"]), ctx)
            }),
            ("GET", ["issuedinvoices", "paymentmethods"]) => self.with_org(org_id, |o| {
                let rows = o
                    .payment_methods
                    .iter()
                    .map(|p| project(p, &["PaymentMethodId", "Name", "Code", "Type", "Usage"]))
                    .collect();
                envelope(search(rows, ctx, &["Name", "Code"]), ctx)
            }),
            ("GET", ["document-numbering"]) => {
                self.with_org(org_id, |o| envelope(o.numberings.clone(), ctx))
            }
            ("GET", ["document-numbering", _]) => self.with_org(org_id, |o| {
                find_code_or_id(&o.numberings, "DocumentNumberingId", None, idn(1))
            }),
            ("GET", ["report-templates"]) => self.with_org(org_id, |o| {
                envelope(search(o.report_templates.clone(), ctx, &["Name", "DisplayType"]), ctx)
            }),
            ("GET", ["report-templates", _]) => self.with_org(org_id, |o| {
                find_code_or_id(&o.report_templates, "ReportTemplateId", None, idn(1))
            }),
            ("GET", ["employees"]) => self.with_org(org_id, |o| {
                let rows = o
                    .employees
                    .iter()
                    .map(|e| project(e, &["EmployeeId", "FirstName", "LastName", "DateOfBirth", "TaxNumber", "EmploymentType", "Country"]))
                    .collect();
                envelope(search(rows, ctx, &["FirstName", "LastName", "TaxNumber"]), ctx)
            }),
            ("GET", ["employees", _]) => self.with_org(org_id, |o| {
                find_code_or_id(&o.employees, "EmployeeId", None, idn(1))
            }),
            ("GET", ["issuedinvoices"]) => self.with_org(org_id, |o| o.list_invoices(ctx)),
            ("POST", ["issuedinvoices"]) => self.create_invoice(org_id, ctx, body),
            ("GET", ["issuedinvoices", _]) => self.with_org(org_id, |o| {
                idn(1)
                    .and_then(|id| o.invoices.get(&id))
                    .map(|c| Out::json(200, c.clone()))
                    .unwrap_or_else(Out::not_found)
            }),
            ("PUT", ["issuedinvoices", _]) => match idn(1) {
                Some(id) => self.update_invoice(org_id, id, ctx, body),
                None => Out::not_found(),
            },
            ("DELETE", ["issuedinvoices", _]) => self.with_org(org_id, |o| {
                let Some(id) = idn(1) else {
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
            ("PUT", ["issuedinvoices", _, "actions", action]) => match idn(1) {
                Some(id) => self.invoice_action(org_id, id, action, ctx),
                None => Out::not_found(),
            },
            ("GET", ["issuedinvoices", _, "attachments"]) => self.with_org(org_id, |o| {
                let Some(inv) = idn(1).and_then(|id| o.invoices.get(&id)) else {
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
                idn(1)
                    .and_then(|id| o.documents.get(&id))
                    .map(|c| Out::json(200, c.clone()))
                    .unwrap_or_else(Out::not_found)
            }),
            ("GET", ["documents", _, "attachments", _]) => self.with_org(org_id, |o| {
                let Some(att) = idn(3).and_then(|id| o.attachments.get(&id)) else {
                    return Out::not_found();
                };
                Out::json(
                    200,
                    json!({"DocumentAttachmentId": att["AttachmentId"], "Document": {"ID": idn(1)}, "AttachmentData": att["AttachmentData"], "FileName": att["AttachmentFileName"], "MimeType": att["AttachmentMimeType"], "EntryDate": att["AttachmentDate"]}),
                )
            }),
            ("GET", ["orders"]) => self.with_org(org_id, |o| o.list_orders(ctx)),
            ("POST", ["orders"]) => self.create_order(org_id, ctx, body),
            ("GET", ["orders", _]) => self.with_org(org_id, |o| {
                idn(1)
                    .and_then(|id| o.orders.get(&id))
                    .map(|c| Out::json(200, c.clone()))
                    .unwrap_or_else(Out::not_found)
            }),
            ("PUT", ["orders", _]) => match idn(1) {
                Some(id) => self.update_order(org_id, id, ctx, body),
                None => Out::not_found(),
            },
            ("DELETE", ["orders", _]) => self.with_org(org_id, |o| {
                match idn(1).and_then(|id| o.orders.remove(&id)) {
                    Some(_) => Out::empty(200),
                    None => Out::not_found(),
                }
            }),
            ("PUT", ["orders", _, "actions", action]) | ("GET", ["orders", _, "actions", action]) => {
                match idn(1) {
                    Some(id) => self.order_action(org_id, id, method, action, ctx),
                    None => Out::not_found(),
                }
            }
            (_, _) => {
                if self.known_path(seg) {
                    Out::method_not_allowed(method)
                } else {
                    Out::iis_not_found()
                }
            }
        }
    }

    fn known_path(&self, seg: &[&str]) -> bool {
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

    fn with_org(&mut self, org_id: i64, f: impl FnOnce(&mut Org) -> Out) -> Out {
        match self.orgs.get_mut(&org_id) {
            Some(o) => f(o),
            None => Out::not_found(),
        }
    }

    fn location(ctx: &Ctx, org: i64, coll: &str, id: i64) -> String {
        format!("{}/api/orgs/{org}/{coll}/{id}?id={id}", ctx.api_root)
    }

    fn created(ctx: &Ctx, org: i64, coll: &str, id: i64) -> Out {
        Out {
            status: 201,
            body: OutBody::Empty,
            location: Some(Self::location(ctx, org, coll, id)),
            retry_after: None,
        }
    }

    // ------------------------------------------------------------ customers

    fn customer_from(
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

    fn create_customer(&mut self, org_id: i64, ctx: &Ctx, body: &Value) -> Out {
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

    fn update_customer(&mut self, org_id: i64, id: i64, body: &Value) -> Out {
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

    fn create_contact(&mut self, org_id: i64, customer_id: i64, ctx: &Ctx, body: &Value) -> Out {
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

    // ---------------------------------------------------------------- items

    fn create_item(&mut self, org_id: i64, ctx: &Ctx, body: &Value) -> Out {
        let Some(org) = self.orgs.get(&org_id) else {
            return Out::not_found();
        };
        let mut item = pick(body, ITEM_FIELDS);
        let mut errors = Vec::new();
        if get_str(body, "Name").is_none() {
            errors.push(("Name", "Naziv je obvezen podatek.".to_string()));
        }
        match get_str(body, "ItemType") {
            Some("B" | "M" | "P" | "I" | "S" | "A" | "AS" | "E" | "NM" | "NP" | "NI") => {}
            _ => errors.push(("ItemType", "Vrsta artikla je obvezen podatek.".to_string())),
        }
        match fk_id(body, "VatRate").and_then(|v| org.vat.iter().find(|r| r.id == v)) {
            Some(v) => {
                item.insert(
                    "VatRate".into(),
                    fk(org_id, "vatrates", v.id, Some(v.code.as_str())),
                );
            }
            None => errors.push(("VatRate", "Stopnja DDV je obvezen podatek.".to_string())),
        }
        if let Some(cur) = fk_id(body, "Currency") {
            match org.currency_by_id(cur) {
                Some(v) => {
                    item.insert("Currency".into(), v);
                }
                None => errors.push(("Currency", "Valuta ne obstaja.".to_string())),
            }
        }
        if !errors.is_empty() {
            return Out::validation(errors);
        }
        if let Some(code) = get_str(body, "Code") {
            if org.items.values().any(|x| get_str(x, "Code") == Some(code)) {
                return Out::conflict_array("Code", &format!("Artikel s šifro {code} že obstaja."));
            }
        }
        item.entry("Usage").or_insert(json!("D"));
        let id = self.id();
        let rv = self.rv();
        item.insert("ItemId".into(), json!(id));
        item.insert("RecordDtModified".into(), json!(fmt_date(&ctx.now)));
        item.insert("RowVersion".into(), json!(rv));
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.items.insert(id, Value::Object(item));
        }
        Self::created(ctx, org_id, "items", id)
    }

    // -------------------------------------------------------------- invoices

    /// Validates and normalises an invoice body; computes values (drafts carry them too).
    fn invoice_from(
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
            let factor = Decimal::ONE + p / Decimal::ONE_HUNDRED;
            let price = dec(get(row_in, "Price"));
            let price_vat = dec(get(row_in, "PriceWithVAT"));
            let dp = dec(get(row_in, "DiscountPercent")).unwrap_or_default();
            let discount = dec(get(row_in, "Discount")).unwrap_or_default();
            let unit = if prices_incl {
                price_vat.or_else(|| price.map(|x| x * factor))
            } else {
                price.or_else(|| price_vat.map(|x| x / factor))
            };
            let Some(unit) = unit else {
                errors.push(("Price", format!("Vrstica {n}: cena je obvezen podatek.")));
                continue;
            };
            let base = (unit * qty * (Decimal::ONE - dp / Decimal::ONE_HUNDRED) - discount)
                * (Decimal::ONE - rabate / Decimal::ONE_HUNDRED);
            let (net, gross) = if prices_incl {
                let gross = round2(base);
                let vat_amount = round2(gross - gross / factor);
                (gross - vat_amount, gross)
            } else {
                let net = round2(base);
                (net, net + round2(net * p / Decimal::ONE_HUNDRED))
            };
            total += gross;
            row.insert(
                "VatRate".into(),
                fk(org_id, "vatrates", vat.id, Some(vat.code.as_str())),
            );
            row.insert(
                "VatRatePercentage".into(),
                json!({"ID": vat.pct_id, "Name": p.normalize().to_string(), "ResourceUrl": null}),
            );
            row.insert("VATPercent".into(), num(p));
            if let Some(pr) = price.or_else(|| (!prices_incl).then_some(unit)) {
                row.insert("Price".into(), num(pr));
            } else {
                row.insert("Price".into(), num(round2(unit / factor)));
            }
            row.insert(
                "PriceWithVAT".into(),
                num(price_vat.unwrap_or_else(|| {
                    round2(unit * if prices_incl { Decimal::ONE } else { factor })
                })),
            );
            row.insert("Value".into(), num(net));
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

    fn create_invoice(&mut self, org_id: i64, ctx: &Ctx, body: &Value) -> Out {
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

    fn update_invoice(&mut self, org_id: i64, id: i64, ctx: &Ctx, body: &Value) -> Out {
        let Some(current) = self
            .orgs
            .get(&org_id)
            .and_then(|o| o.invoices.get(&id))
            .cloned()
        else {
            return Out::not_found();
        };
        if get_str(body, "RowVersion") != get_str(&current, "RowVersion") {
            return Out::conflict_array("RowVersion", CONCURRENCY_MESSAGE);
        }
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

    fn make_pdf(&mut self, org_id: i64, ctx: &Ctx, title: &str) -> (i64, i64, Value) {
        let doc_id = self.id();
        let att_id = self.id();
        let pdf = format!("%PDF-1.4\n% Minimax sandbox - not a real document\n({title})\n%%EOF\n");
        let file_name = format!("{}.pdf", title.replace(['/', ' '], "-"));
        let att = json!({
            "AttachmentId": att_id,
            "AttachmentData": base64::engine::general_purpose::STANDARD.encode(pdf.as_bytes()),
            "AttachmentDate": fmt_date(&ctx.now),
            "AttachmentFileName": file_name,
            "AttachmentMimeType": "application/pdf"
        });
        let rv = self.rv();
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.documents.insert(
                doc_id,
                json!({"DocumentId": doc_id, "DocumentDate": fmt_date(&ctx.now), "Description": title,
                       "Attachments": [{"DocumentAttachmentId": att_id, "Description": title, "FileName": file_name, "MimeType": "application/pdf", "EntryDate": fmt_date(&ctx.now)}],
                       "RowVersion": rv}),
            );
            org.attachments.insert(att_id, att.clone());
        }
        (doc_id, att_id, att)
    }

    fn invoice_action(&mut self, org_id: i64, id: i64, action: &str, ctx: &Ctx) -> Out {
        let Some(current) = self
            .orgs
            .get(&org_id)
            .and_then(|o| o.invoices.get(&id))
            .cloned()
        else {
            return Out::not_found();
        };
        let Some(rv) = ctx.q("rowVersion") else {
            return Out::message(400, "The request is invalid. rowVersion is required.");
        };
        if Some(rv) != get_str(&current, "RowVersion") {
            return Out::json(
                409,
                json!({"ValidationMessages": [{"Message": CONCURRENCY_MESSAGE, "PropertyName": "RowVersion"}], "Data": null}),
            );
        }
        let status = get_str(&current, "Status").unwrap_or("O").to_string();
        match action {
            "issue" | "issueandgeneratepdf" => {
                if status != "O" {
                    return Out::business("Izstavite lahko le izdane račune/predračune v osnutku.");
                }
                let Some(org) = self.orgs.get(&org_id) else {
                    return Out::not_found();
                };
                let cash = current["IssuedInvoicePaymentMethods"]
                    .as_array()
                    .is_some_and(|pms| {
                        pms.iter().any(|p| {
                            let id = fk_id(p, "PaymentMethod");
                            org.payment_methods.iter().any(|m| {
                                Some(id_of(m, "PaymentMethodId")) == id
                                    && matches!(get_str(m, "Type"), Some("G" | "K"))
                            })
                        })
                    });
                if cash && org.country != Country::RS && fk_id(&current, "Employee").is_none() {
                    return Out::business("Za davčno potrjevanje računa (gotovina/kartica) je obvezen podatek Blagajnik (Employee).");
                }
                let now = chrono::Local::now().naive_local();
                let year = now.year();
                let numbering = fk_id(&current, "DocumentNumbering").unwrap_or_default();
                let number = {
                    let Some(org) = self.orgs.get_mut(&org_id) else {
                        return Out::not_found();
                    };
                    let n = org.numbers.entry((numbering, year)).or_insert(0);
                    *n += 1;
                    *n
                };
                let value = dec(current.get("InvoiceValue")).unwrap_or_default();
                let paid: Decimal = current["IssuedInvoicePaymentMethods"]
                    .as_array()
                    .map(|pms| {
                        pms.iter()
                            .filter(|p| get_str(p, "AlreadyPaid") == Some("D"))
                            .map(|p| dec(p.get("Amount")).unwrap_or(value))
                            .sum()
                    })
                    .unwrap_or_default();
                let today = now.date();
                let overdue = date_field(&current, "DateDue")
                    .ok()
                    .flatten()
                    .is_some_and(|d| d.date() < today);
                let (payment_status, paid_value) =
                    if paid > Decimal::ZERO && paid >= value - Decimal::new(1, 2) {
                        // A single paid row is normalised to the total (MINIMAX_API.md §4.3).
                        ("Placan", value)
                    } else if paid > Decimal::ZERO {
                        (
                            if overdue {
                                "DelnoPlacanZapadel"
                            } else {
                                "DelnoPlacanNezapadel"
                            },
                            paid,
                        )
                    } else {
                        (
                            if overdue {
                                "NeplacanZapadel"
                            } else {
                                "NeplacanNezapadel"
                            },
                            Decimal::ZERO,
                        )
                    };
                let numbering_code = current["DocumentNumbering"]["Name"]
                    .as_str()
                    .unwrap_or("R")
                    .to_string();
                let title = format!("{numbering_code}-{year}-{number}");
                let (doc_id, att_id, att) = self.make_pdf(org_id, ctx, &title);
                let new_rv = self.rv();
                let mut inv = current;
                inv["Status"] = json!("I");
                inv["Year"] = json!(year);
                inv["InvoiceNumber"] = json!(number);
                inv["DateIssued"] = json!(fmt_date(&now));
                inv["PaymentStatus"] = json!(payment_status);
                inv["PaidValue"] = num(paid_value);
                inv["PaymentReference"] = json!(format!("SI00 {year}-{number}"));
                inv["Document"] = fk(org_id, "documents", doc_id, Some(&title));
                inv["InvoiceAttachment"] = json!({"ID": att_id, "Name": att["AttachmentFileName"], "ResourceUrl": format!("/api/orgs/{org_id}/issuedinvoices/{id}/attachments")});
                inv["RecordDtModified"] = json!(fmt_date(&now));
                inv["RowVersion"] = json!(new_rv);
                if let Some(org) = self.orgs.get_mut(&org_id) {
                    org.invoices.insert(id, inv.clone());
                }
                if action == "issue" {
                    Out::action_ok(inv)
                } else {
                    Out::action_ok(att)
                }
            }
            "generatepdf" => {
                let title = format!(
                    "{}-draft-{id}",
                    current["DocumentNumbering"]["Name"].as_str().unwrap_or("R")
                );
                let att = match fk_id(&current, "InvoiceAttachment").and_then(|a| {
                    self.orgs
                        .get(&org_id)
                        .and_then(|o| o.attachments.get(&a))
                        .cloned()
                }) {
                    Some(att) => att,
                    None => self.make_pdf(org_id, ctx, &title).2,
                };
                Out::action_ok(att)
            }
            "issuecancellation" => {
                if status != "I" {
                    return Out::business("Preklic izstavitve je mogoč le za izstavljene račune.");
                }
                let new_rv = self.rv();
                let mut inv = current;
                inv["Status"] = json!("O");
                inv["PaymentStatus"] = json!("Osnutek");
                inv["RowVersion"] = json!(new_rv);
                if let Some(org) = self.orgs.get_mut(&org_id) {
                    org.invoices.insert(id, inv);
                }
                Out::action_ok(Value::Null)
            }
            "copytocreditnote" => {
                if status != "I" {
                    return Out::business("Dobropis lahko naredite le iz izstavljenega računa.");
                }
                let new_id = self.id();
                let new_rv = self.rv();
                let mut copy = current.clone();
                copy["IssuedInvoiceId"] = json!(new_id);
                copy["Status"] = json!("O");
                copy["Year"] = Value::Null;
                copy["InvoiceNumber"] = Value::Null;
                copy["PaymentStatus"] = json!("Osnutek");
                copy["PaidValue"] = json!(0);
                copy["Document"] = Value::Null;
                copy["InvoiceAttachment"] = Value::Null;
                copy["DateIssued"] = json!(fmt_date(&ctx.now));
                copy["DateCreditNote"] = current["DateIssued"].clone();
                copy["RowVersion"] = json!(new_rv);
                copy["IssuedInvoicePaymentMethods"] = json!([]);
                let value = dec(current.get("InvoiceValue")).unwrap_or_default();
                copy["InvoiceValue"] = num(-value);
                if let Some(rows) = copy["IssuedInvoiceRows"].as_array_mut() {
                    for row in rows.iter_mut() {
                        if let Some(q) = dec(row.get("Quantity")) {
                            row["Quantity"] = num(-q);
                        }
                        if let Some(v) = dec(row.get("Value")) {
                            row["Value"] = num(-v);
                        }
                    }
                }
                if let Some(org) = self.orgs.get_mut(&org_id) {
                    org.invoices.insert(new_id, copy.clone());
                }
                Out::action_ok(copy)
            }
            _ => Out::business(&format!("Neznana akcija {action}.")),
        }
    }

    // ---------------------------------------------------------------- orders

    fn order_from(
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

    fn create_order(&mut self, org_id: i64, ctx: &Ctx, body: &Value) -> Out {
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

    fn update_order(&mut self, org_id: i64, id: i64, ctx: &Ctx, body: &Value) -> Out {
        let Some(current) = self
            .orgs
            .get(&org_id)
            .and_then(|o| o.orders.get(&id))
            .cloned()
        else {
            return Out::not_found();
        };
        if get_str(body, "RowVersion") != get_str(&current, "RowVersion") {
            return Out::conflict_array("RowVersion", CONCURRENCY_MESSAGE);
        }
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

    fn order_action(&mut self, org_id: i64, id: i64, method: &str, action: &str, ctx: &Ctx) -> Out {
        let Some(current) = self
            .orgs
            .get(&org_id)
            .and_then(|o| o.orders.get(&id))
            .cloned()
        else {
            return Out::not_found();
        };
        let Some(rv) = ctx.q("rowVersion") else {
            return Out::message(400, "The request is invalid. rowVersion is required.");
        };
        if Some(rv) != get_str(&current, "RowVersion") {
            return Out::json(
                409,
                json!({"ValidationMessages": [{"Message": CONCURRENCY_MESSAGE, "PropertyName": "RowVersion"}], "Data": null}),
            );
        }
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
    fn order_to_invoice(&mut self, org_id: i64, order: &Value, ctx: &Ctx) -> Out {
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

fn find_code_or_id(list: &[Value], id_field: &str, code: Option<String>, id: Option<i64>) -> Out {
    let found = match (code, id) {
        (Some(c), _) if c.is_empty() => return Out::message(400, "Code is empty."),
        (Some(c), _) => list
            .iter()
            .find(|v| get_str(v, "Code").is_some_and(|x| x.eq_ignore_ascii_case(&c))),
        (None, Some(id)) => list.iter().find(|v| id_of(v, id_field) == id),
        _ => None,
    };
    found
        .map(|v| Out::json(200, v.clone()))
        .unwrap_or_else(Out::not_found)
}

impl Org {
    fn country_by_id(&self, id: i64) -> Option<Value> {
        self.countries
            .iter()
            .find(|c| id_of(c, "CountryId") == id)
            .map(|c| fk(self.id, "countries", id, get_str(c, "Code")))
    }

    fn currency_by_id(&self, id: i64) -> Option<Value> {
        self.currencies
            .iter()
            .find(|c| id_of(c, "CurrencyId") == id)
            .map(|c| fk(self.id, "currencies", id, get_str(c, "Code")))
    }

    /// The country whose rates are asked for; `date` must parse if given.
    fn vat_country(&self, ctx: &Ctx) -> Result<i64, Out> {
        if let Some(d) = ctx.q("date") {
            if mm_date::parse(d).is_none() {
                return Err(Out::message(
                    400,
                    "The request is invalid. date has a bad format.",
                ));
            }
        }
        Ok(ctx
            .q("countryID")
            .and_then(|c| c.parse().ok())
            .unwrap_or(self.home_country_id))
    }

    fn vat_json(&self, v: &VatRec) -> Value {
        json!({"VatRateId": v.id, "Code": v.code, "Percent": num(v.percent),
               "VatRatePercentage": {"ID": v.pct_id, "Name": v.percent.normalize().to_string(), "ResourceUrl": null}})
    }

    fn list_invoices(&self, ctx: &Ctx) -> Out {
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

    fn list_orders(&self, ctx: &Ctx) -> Out {
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
