//! `/tenants/{id}`: a tenant's status, settings and newest jobs.

use actix_web::{web, HttpResponse};
use serde_json::Value;

use super::health::{budget_text, health_badge};
use super::job_table::{jobs_table, newest_jobs, STATES};
use super::{admin_ok, num, s, time_of, Ctx};
use crate::http::admin;
use crate::http::ui::html::{self, badge, esc, live, url_part, Nav};
use crate::http::ui::UiError;
use crate::tenants::TenantId;
use crate::webshop::Platform;

fn settings_table(view: &Value) -> String {
    let mut t = String::from("<table class=\"kv\"><tbody>");
    let mut row = |k: &str, v: String| {
        t.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{v}</td></tr>",
            esc(k)
        ));
    };
    let set = |b: &Value| {
        if b.as_bool() == Some(true) {
            badge("ok", "set")
        } else {
            badge("muted", "not set")
        }
    };
    row("Name", esc(s(view, "name")));
    row("Country", esc(s(view, "country")));
    row("Organisation", esc(&view["organisation_id"].to_string()));
    let m = &view["minimax"];
    row("Minimax user", esc(s(m, "username")));
    row("Minimax password", set(&m["password_set"]));
    row(
        "Client id",
        esc(m["client_id"].as_str().unwrap_or("(service default)")),
    );
    row("Client secret", set(&m["client_secret_set"]));
    row(
        "API base",
        esc(m["api_base"].as_str().unwrap_or("(country default)")),
    );
    for p in Platform::ALL {
        row(
            &format!("Webhook secret ({})", p.as_str()),
            set(&view["webhook_secrets_set"][p.as_str()]),
        );
    }
    if let Some(settings) = view["settings"].as_object() {
        for (k, v) in settings {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => "—".into(),
                other => other.to_string(),
            };
            row(&k.replace('_', " "), format!("<code>{}</code>", esc(&text)));
        }
    }
    t.push_str("</tbody></table>");
    t
}

fn status_section(id: &str, status: &Value) -> String {
    let jobs = &status["jobs"];
    let tid = url_part(id);
    format!(
        "<dl class=\"facts\"><div><dt>Health</dt><dd>{}</dd></div>\
         <div><dt>Minimax calls</dt><dd>{}</dd></div>\
         <div><dt>Queued</dt><dd><a href=\"/ui/tenants/{tid}/jobs?state=queued\">{}</a></dd></div>\
         <div><dt>Running</dt><dd>{}</dd></div>\
         <div><dt>Delayed</dt><dd><a href=\"/ui/tenants/{tid}/jobs?state=delayed\">{}</a></dd></div>\
         <div><dt>Dead</dt><dd><a href=\"/ui/tenants/{tid}/jobs?state=dead\">{}</a></dd></div>\
         <div><dt>Done</dt><dd>{}</dd></div>\
         <div><dt>Last booking</dt><dd>{}</dd></div></dl>",
        health_badge(status),
        budget_text(status),
        num(&jobs["queued"]),
        num(&jobs["running"]),
        num(&jobs["delayed"]),
        num(&jobs["dead"]),
        num(&jobs["done"]),
        time_of(&status["last_booking"]["finished_at"]),
    )
}

async fn recent_jobs(ctx: &Ctx, id: &str, status: &Value, n: usize) -> Result<Vec<Value>, UiError> {
    let mut all = Vec::new();
    for st in STATES {
        let total = num(&status["jobs"][st.as_str()]);
        all.extend(newest_jobs(ctx, id, st, total, n).await?);
    }
    all.sort_by(|a, b| s(b, "updated_at").cmp(s(a, "updated_at")));
    all.truncate(n);
    Ok(all)
}

/// The tenant page; `notice` shows the outcome of an action (connection check).
pub async fn tenant_page(
    ctx: &Ctx,
    id: &str,
    notice: Option<String>,
) -> Result<HttpResponse, UiError> {
    let status = admin_ok(admin::tenants::status(
        web::Path::from(id.to_owned()),
        ctx.state.clone(),
    ))
    .await?;
    let unknown = || UiError::NotFound(format!("unknown tenant {id:?}"));
    let parsed = TenantId::parse(id).map_err(|_| unknown())?;
    let tenant = ctx
        .state
        .tenants
        .get(&parsed)
        .await
        .map_err(|_| UiError::Unavailable)?
        .ok_or_else(unknown)?;
    let view = serde_json::to_value(tenant.view()).unwrap_or(Value::Null);
    let recent = recent_jobs(ctx, id, &status, 15).await?;
    let tid = url_part(id);
    let mut body = String::new();
    if let Some(n) = notice {
        body.push_str(&format!(
            "<p class=\"notice\" role=\"status\" id=\"notice\">{}</p>",
            esc(&n)
        ));
    }
    body.push_str(&format!("<p class=\"muted\">{}</p>", esc(&tenant.name)));
    body.push_str(&live("tenant-status", &status_section(id, &status)));
    body.push_str("<div class=\"actions\">");
    body.push_str(&html::button_form(
        &format!("/ui/tenants/{tid}/check"),
        ctx.csrf(),
        "Check connection",
        "",
    ));
    body.push_str(&html::button_form(
        &format!("/ui/tenants/{tid}/unblock"),
        ctx.csrf(),
        "Unblock credentials",
        "",
    ));
    body.push_str(&format!(
        "<a class=\"button\" href=\"/ui/tenants/{tid}/jobs\">All jobs</a></div>"
    ));
    body.push_str("<h2>Webhook URLs</h2><p>Paste these into the shop (the secret is the tenant's webhook secret).</p><ul class=\"urls\">");
    let info = ctx.req.connection_info();
    for p in Platform::ALL {
        body.push_str(&format!(
            "<li><span class=\"muted\">{}</span> <code>{}://{}/webhooks/{}/{}</code></li>",
            esc(p.as_str()),
            esc(info.scheme()),
            esc(info.host()),
            esc(p.as_str()),
            esc(id)
        ));
    }
    drop(info);
    body.push_str("</ul><h2>Recent jobs</h2>");
    body.push_str(&live("tenant-jobs", &jobs_table(id, &recent)));
    body.push_str(&format!(
        "<h2>Map a payment gateway</h2><form method=\"post\" action=\"/ui/tenants/{tid}/payment-methods\" class=\"card\">{}\
         <label for=\"gateway\">Shop gateway id</label><input id=\"gateway\" name=\"gateway\" required placeholder=\"bacs, stripe…\">\
         <label for=\"method\">Minimax payment method (name, code or id)</label><input id=\"method\" name=\"method\" required>\
         <button type=\"submit\">Save mapping</button></form>",
        html::csrf_field(ctx.csrf())
    ));
    body.push_str("<h2>Settings</h2>");
    body.push_str(&settings_table(&view));
    Ok(ctx.page(&format!("Tenant {id}"), Nav::Tenants, &body))
}

pub(super) async fn tenant(ctx: Ctx, path: web::Path<String>) -> Result<HttpResponse, UiError> {
    tenant_page(&ctx, &path, None).await
}
