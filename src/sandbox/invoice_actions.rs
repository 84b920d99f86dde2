//! The issued-invoice actions (docs/minimax-api.md, "Issued invoices"): `issue`, `issueAndGeneratepdf`,
//! `generatepdf`, `issueCancellation`, `copytocreditnote`, with the numbering, payment
//! status and the PDF attachment they produce.

use base64::Engine;
use chrono::Datelike;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::model::*;
use crate::minimax::Country;

impl World {
    pub(super) fn make_pdf(&mut self, org_id: i64, ctx: &Ctx, title: &str) -> (i64, i64, Value) {
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

    pub(super) fn invoice_action(&mut self, org_id: i64, id: i64, action: &str, ctx: &Ctx) -> Out {
        let current = match self.current_for_action(Docs::Invoices, org_id, id, ctx) {
            Ok(c) => c,
            Err(out) => return out,
        };
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
                        // A single paid row is normalised to the total (docs/minimax-api.md, "Issued invoices").
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
}
