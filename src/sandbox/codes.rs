//! The organisations' code lists: the seed (countries, currencies, VAT rates per
//! country, payment methods, numberings, report templates, employees, items), the
//! read-only code-list routes, and the lookups the documents use.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use base64::Engine;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::minimax::models::mm_date;
use crate::minimax::Country;

use super::model::*;
use super::routes::Req;

// ------------------------------------------------------------------- seed

pub(super) const COUNTRIES: &[(i64, &str, &str, i64)] = &[
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
pub(super) const CURRENCIES: &[(i64, &str, &str)] = &[
    (7, "EUR", "Evro"),
    (10, "USD", "Ameriški dolar"),
    (11, "GBP", "Britanski funt"),
    (12, "CHF", "Švicarski frank"),
    (13, "HUF", "Madžarski forint"),
    (2, "RSD", "Srbski dinar"),
];

pub(super) fn home_rates(country: Country) -> Vec<(&'static str, &'static str)> {
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
pub(super) const FOREIGN_RATES: &[(i64, &str, &str)] = &[
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
    pub(super) fn code_route(&mut self, req: &Req<'_>) -> Option<Out> {
        let (org_id, ctx, _body, _method) = (req.org_id, req.ctx, req.body, req.method);
        let out = match (req.method, req.seg) {
            ("GET", ["countries"]) => self.with_org(org_id, |o| {
                envelope(search(o.countries.clone(), ctx, &["Code", "Name"]), ctx)
            }),
            ("GET", ["countries", _]) => self.with_org(org_id, |o| {
                find_code_or_id(&o.countries, "CountryId", req.code(1), req.id(1))
            }),
            ("GET", ["currencies"]) => self.with_org(org_id, |o| {
                envelope(search(o.currencies.clone(), ctx, &["Code", "Name"]), ctx)
            }),
            ("GET", ["currencies", _]) => self.with_org(org_id, |o| {
                find_code_or_id(&o.currencies, "CurrencyId", req.code(1), req.id(1))
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
                let found = match (req.code(1), req.id(1)) {
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
                find_code_or_id(&o.numberings, "DocumentNumberingId", None, req.id(1))
            }),
            ("GET", ["report-templates"]) => self.with_org(org_id, |o| {
                envelope(
                    search(o.report_templates.clone(), ctx, &["Name", "DisplayType"]),
                    ctx,
                )
            }),
            ("GET", ["report-templates", _]) => self.with_org(org_id, |o| {
                find_code_or_id(&o.report_templates, "ReportTemplateId", None, req.id(1))
            }),
            ("GET", ["employees"]) => self.with_org(org_id, |o| {
                let rows = o
                    .employees
                    .iter()
                    .map(|e| {
                        project(
                            e,
                            &[
                                "EmployeeId",
                                "FirstName",
                                "LastName",
                                "DateOfBirth",
                                "TaxNumber",
                                "EmploymentType",
                                "Country",
                            ],
                        )
                    })
                    .collect();
                envelope(
                    search(rows, ctx, &["FirstName", "LastName", "TaxNumber"]),
                    ctx,
                )
            }),
            ("GET", ["employees", _]) => self.with_org(org_id, |o| {
                find_code_or_id(&o.employees, "EmployeeId", None, req.id(1))
            }),
            _ => return None,
        };
        Some(out)
    }

    pub fn new() -> World {
        World {
            next_id: 1_000_000,
            row_version: 0,
            users: HashMap::new(),
            orgs: BTreeMap::new(),
        }
    }

    pub(super) fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Base64 of an 8-byte rowversion. The fixed bytes make every value contain `+`, so a
    /// client that forgets to URL-encode it fails like it would against Minimax.
    pub(super) fn rv(&mut self) -> String {
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
}

pub(super) fn find_code_or_id(
    list: &[Value],
    id_field: &str,
    code: Option<String>,
    id: Option<i64>,
) -> Out {
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
    pub(super) fn country_by_id(&self, id: i64) -> Option<Value> {
        self.countries
            .iter()
            .find(|c| id_of(c, "CountryId") == id)
            .map(|c| fk(self.id, "countries", id, get_str(c, "Code")))
    }

    pub(super) fn currency_by_id(&self, id: i64) -> Option<Value> {
        self.currencies
            .iter()
            .find(|c| id_of(c, "CurrencyId") == id)
            .map(|c| fk(self.id, "currencies", id, get_str(c, "Code")))
    }

    /// The country whose rates are asked for; `date` must parse if given.
    pub(super) fn vat_country(&self, ctx: &Ctx) -> Result<i64, Out> {
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

    pub(super) fn vat_json(&self, v: &VatRec) -> Value {
        json!({"VatRateId": v.id, "Code": v.code, "Percent": num(v.percent),
               "VatRatePercentage": {"ID": v.pct_id, "Name": v.percent.normalize().to_string(), "ResourceUrl": null}})
    }
}
