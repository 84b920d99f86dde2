//! `/sandbox` (demo mode): the documents the sandbox holds.

use actix_web::HttpResponse;
use serde_json::Value;

use super::{s, Ctx};
use crate::http::ui::html::{esc, live, Nav};
use crate::http::ui::UiError;

fn name_of(v: &Value) -> String {
    v["Name"].as_str().map(str::to_owned).unwrap_or_default()
}

/// `2026-1`: the year and the number within it, as the booking result shows it.
fn invoice_number(i: &Value) -> String {
    match (&i["Year"], &i["InvoiceNumber"]) {
        (Value::Null, _) | (_, Value::Null) => "—".into(),
        (y, n) => format!(
            "{}-{}",
            y.to_string().trim_matches('"'),
            n.to_string().trim_matches('"')
        ),
    }
}

pub(super) async fn sandbox(ctx: Ctx) -> Result<HttpResponse, UiError> {
    let Some(sb) = ctx.ui.sandbox.clone() else {
        return Err(UiError::NotFound(
            "the sandbox runs in demo mode only".into(),
        ));
    };
    let org = sb.settings().organisation_id;
    let mut invoices = sb.invoices(org);
    invoices.sort_by_key(|i| std::cmp::Reverse(i["IssuedInvoiceId"].as_i64()));
    let mut inner = String::from("<h2>Issued invoices and credit notes</h2>");
    if invoices.is_empty() {
        inner.push_str("<p class=\"muted\">None yet: send the demo order from the README.</p>");
    } else {
        inner.push_str(
            "<div class=\"scroll\"><table id=\"sandbox-invoices\"><thead><tr><th scope=\"col\">Number</th><th scope=\"col\">Kind</th>\
             <th scope=\"col\">Customer</th><th scope=\"col\">Issued</th><th scope=\"col\">Value</th><th scope=\"col\">Status</th></tr></thead><tbody>",
        );
        for i in &invoices {
            let kind = if s(i, "InvoiceType") == "P" {
                "credit note"
            } else {
                "invoice"
            };
            let status = match s(i, "Status") {
                "I" => "issued",
                "O" => "draft",
                other => other,
            };
            inner.push_str(&format!(
                "<tr><td class=\"number\">{}</td><td>{kind}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&invoice_number(i)),
                esc(&name_of(&i["Customer"])),
                esc(s(i, "DateIssued").get(..10).unwrap_or("")),
                esc(&i["InvoiceValue"].to_string()),
                esc(status),
            ));
        }
        inner.push_str("</tbody></table></div>");
    }
    inner.push_str("<h2>Customers</h2>");
    let customers = sb.customers(org);
    if customers.is_empty() {
        inner.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        inner.push_str(
            "<div class=\"scroll\"><table id=\"sandbox-customers\"><thead><tr><th scope=\"col\">Code</th><th scope=\"col\">Name</th>\
             <th scope=\"col\">Address</th><th scope=\"col\">City</th></tr></thead><tbody>",
        );
        for c in &customers {
            inner.push_str(&format!(
                "<tr><td>{}</td><td class=\"customer-name\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(s(c, "Code")),
                esc(&name_of(c)),
                esc(s(c, "Address")),
                esc(s(c, "City")),
            ));
        }
        inner.push_str("</tbody></table></div>");
    }
    let orders = sb.orders(org);
    inner.push_str(&format!(
        "<p class=\"muted\">Received orders: {}</p>",
        orders.len()
    ));
    Ok(ctx.page(
        "Sandbox documents",
        Nav::Sandbox,
        &live("sandbox-docs", &inner),
    ))
}
