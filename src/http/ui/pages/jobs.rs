//! `/tenants/{id}/jobs` (a tenant's jobs by state) and `/tenants/{id}/jobs/{job}`
//! (one job: attempts, result, the webshop event).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::job_table::{jobs_table, newest_jobs, STATES};
use super::{admin_ok, num, s, time_of, Ctx};
use crate::http::admin;
use crate::http::ui::html::{self, badge, esc, live, url_part, Nav};
use crate::http::ui::UiError;
use crate::queue::JobState;

#[derive(Deserialize)]
pub struct JobsPageQuery {
    state: Option<String>,
    order: Option<String>,
}

pub(super) async fn jobs(
    ctx: Ctx,
    path: web::Path<String>,
    q: web::Query<JobsPageQuery>,
) -> Result<HttpResponse, UiError> {
    let id = path.into_inner();
    let status = admin_ok(admin::tenants::status(
        web::Path::from(id.clone()),
        ctx.state.clone(),
    ))
    .await?;
    let wanted: Option<JobState> = q.state.as_deref().and_then(|s| s.parse().ok());
    let order = q.order.as_deref().map(str::trim).filter(|o| !o.is_empty());
    let tid = url_part(&id);
    let mut body = format!(
        "<p><a href=\"/ui/tenants/{tid}\">← Tenant {}</a></p>",
        esc(&id)
    );
    body.push_str("<nav aria-label=\"Job states\" class=\"tabs\"><ul>");
    let cur = |x: bool| if x { " aria-current=\"page\"" } else { "" };
    body.push_str(&format!(
        "<li><a href=\"/ui/tenants/{tid}/jobs\"{}>all</a></li>",
        cur(wanted.is_none())
    ));
    for st in STATES {
        body.push_str(&format!(
            "<li><a href=\"/ui/tenants/{tid}/jobs?state={0}\"{1}>{0} ({2})</a></li>",
            st.as_str(),
            cur(wanted == Some(st)),
            num(&status["jobs"][st.as_str()])
        ));
    }
    body.push_str("</ul></nav>");
    body.push_str(&format!(
        "<form method=\"get\" class=\"filters\" role=\"search\"><label for=\"order\">Shop order number</label>\
         <input id=\"order\" name=\"order\" type=\"search\" value=\"{}\">{}<button type=\"submit\">Find</button></form>",
        esc(order.unwrap_or("")),
        wanted.map_or(String::new(), |w| format!("<input type=\"hidden\" name=\"state\" value=\"{}\">", w.as_str()))
    ));
    let mut list = Vec::new();
    if let Some(o) = order {
        // The admin API's order search (the newest jobs of each state).
        let query = admin::jobs::JobsQuery {
            state: wanted.map(|w| w.as_str().to_owned()),
            order: Some(o.to_owned()),
            offset: None,
            limit: Some(admin::jobs::MAX_LIMIT),
        };
        let v = admin_ok(admin::jobs::list(
            web::Path::from(id.clone()),
            web::Query(query),
            ctx.state.clone(),
        ))
        .await?;
        list = v["jobs"].as_array().cloned().unwrap_or_default();
    } else {
        for st in STATES
            .into_iter()
            .filter(|s| wanted.is_none_or(|w| w == *s))
        {
            let total = num(&status["jobs"][st.as_str()]);
            list.extend(newest_jobs(&ctx, &id, st, total, 100).await?);
        }
    }
    list.sort_by(|a, b| s(b, "updated_at").cmp(s(a, "updated_at")));
    if wanted == Some(JobState::Dead) && !list.is_empty() {
        body.push_str(&html::button_form(
            &format!("/ui/tenants/{tid}/jobs/retry-dead"),
            ctx.csrf(),
            "Retry all dead jobs",
            "primary",
        ));
    }
    body.push_str(&live("jobs-list", &jobs_table(&id, &list)));
    Ok(ctx.page(&format!("Jobs of {id}"), Nav::Tenants, &body))
}

fn job_section(ctx: &Ctx, tenant: &str, j: &Value) -> String {
    let state = s(j, "state");
    let tid = url_part(tenant);
    let jid = url_part(s(j, "id"));
    let mut out = format!(
        "<dl class=\"facts\"><div><dt>State</dt><dd id=\"job-state\">{}</dd></div>\
         <div><dt>Attempts</dt><dd>{}</dd></div><div><dt>Created</dt><dd>{}</dd></div>\
         <div><dt>Updated</dt><dd>{}</dd></div><div><dt>Next attempt</dt><dd>{}</dd></div>\
         <div><dt>Finished</dt><dd>{}</dd></div></dl>",
        badge(state, state),
        num(&j["attempts"]),
        time_of(&j["created_at"]),
        time_of(&j["updated_at"]),
        time_of(&j["next_attempt_at"]),
        time_of(&j["finished_at"]),
    );
    // A finished job's last error is history (in the attempts), not its state.
    if state != "done" {
        if let Some(e) = j["last_error"].as_str() {
            out.push_str(&format!(
                "<p class=\"error\" id=\"job-error\">{}</p>",
                esc(e)
            ));
        }
    }
    out.push_str("<h2>Result</h2>");
    match j["result"].as_object() {
        Some(r) => {
            out.push_str("<table class=\"kv\" id=\"job-result\"><tbody>");
            for (k, v) in r {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                out.push_str(&format!(
                    "<tr><th scope=\"row\">{}</th><td data-key=\"{}\">{}</td></tr>",
                    esc(&k.replace('_', " ")),
                    esc(k),
                    esc(&text)
                ));
            }
            out.push_str("</tbody></table>");
        }
        None => out.push_str("<p class=\"muted\" id=\"job-result\">Not booked yet.</p>"),
    }
    out.push_str("<div class=\"actions\">");
    if matches!(state, "dead" | "delayed") {
        out.push_str(&html::button_form(
            &format!("/ui/tenants/{tid}/jobs/{jid}/retry"),
            ctx.csrf(),
            "Retry",
            "primary",
        ));
    }
    if state != "running" {
        out.push_str(&html::button_form(
            &format!("/ui/tenants/{tid}/jobs/{jid}/discard"),
            ctx.csrf(),
            "Discard",
            "danger",
        ));
    }
    out.push_str("</div><h2>Attempts</h2>");
    let hist = j["history"].as_array().cloned().unwrap_or_default();
    if hist.is_empty() {
        out.push_str("<p class=\"muted\">No attempt yet.</p>");
    } else {
        out.push_str(
            "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Started</th>\
             <th scope=\"col\">Duration</th><th scope=\"col\">Outcome</th><th scope=\"col\">Error</th></tr></thead><tbody>",
        );
        for a in &hist {
            out.push_str(&format!(
                "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{} ms</td><td>{}</td><td>{}</td></tr>",
                num(&a["attempt"]),
                time_of(&a["started_at"]),
                num(&a["duration_ms"]),
                esc(s(a, "outcome")),
                esc(s(a, "message")),
            ));
        }
        out.push_str("</tbody></table></div>");
    }
    out
}

fn event_section(j: &Value) -> String {
    let mut out = String::from("<table class=\"kv\"><tbody>");
    if let Some(ev) = j["event"].as_object() {
        for (k, v) in ev {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            out.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                esc(&k.replace('_', " ")),
                esc(&text)
            ));
        }
    } else {
        out.push_str("<tr><td>The payload is not a job type this release knows.</td></tr>");
    }
    out.push_str("</tbody></table>");
    out
}

pub(super) async fn job(
    ctx: Ctx,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    let (tenant, job_id) = path.into_inner();
    let j = admin_ok(admin::jobs::get(
        web::Path::from((tenant.clone(), job_id.clone())),
        ctx.state.clone(),
    ))
    .await?;
    let mut body = format!(
        "<p><a href=\"/ui/tenants/{}/jobs\">← Jobs of {}</a></p>",
        url_part(&tenant),
        esc(&tenant)
    );
    body.push_str(&live("job-detail", &job_section(&ctx, &tenant, &j)));
    body.push_str("<h2>Event</h2>");
    body.push_str(&event_section(&j));
    Ok(ctx.page(&format!("Job {job_id}"), Nav::Tenants, &body))
}
