//! A tenant's jobs as a table (state, outcome, links), read through the admin API: the
//! tenant page, its job list and the dead letters show it.

use actix_web::web;
use serde_json::Value;

use super::{admin_ok, num, s, time_of, Ctx};
use crate::http::admin;
use crate::http::ui::html::{badge, esc, url_part};
use crate::http::ui::UiError;
use crate::queue::JobState;

/// The newest `n` jobs of a tenant in `state`, newest first, as the admin API lists them.
pub(super) async fn newest_jobs(
    ctx: &Ctx,
    tenant: &str,
    state: JobState,
    total: u64,
    n: usize,
) -> Result<Vec<Value>, UiError> {
    if total == 0 || n == 0 {
        return Ok(Vec::new());
    }
    let offset = (total as usize).saturating_sub(n);
    let query = admin::jobs::JobsQuery {
        state: Some(state.as_str().into()),
        order: None,
        offset: Some(offset),
        limit: Some(n.min(admin::jobs::MAX_LIMIT)),
    };
    let v = admin_ok(admin::jobs::list(
        web::Path::from(tenant.to_owned()),
        web::Query(query),
        ctx.state.clone(),
    ))
    .await?;
    let mut jobs = v["jobs"].as_array().cloned().unwrap_or_default();
    jobs.reverse();
    Ok(jobs)
}

pub(super) const STATES: [JobState; 5] = [
    JobState::Queued,
    JobState::Running,
    JobState::Delayed,
    JobState::Dead,
    JobState::Done,
];

/// A job's one-line outcome: the document number when booked, the error otherwise.
pub(super) fn outcome(j: &Value) -> String {
    let r = &j["result"];
    if s(j, "state") == "done" {
        let number = r["number"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| r["minimax_id"].as_i64().map(|id| format!("id {id}")));
        return match (r["document"].as_str(), number) {
            (Some(d), Some(n)) => format!("{} {n}", d.replace('_', " ")),
            (Some(d), None) => d.replace('_', " "),
            _ => r["status"].as_str().unwrap_or("done").to_owned(),
        };
    }
    j["last_error"].as_str().unwrap_or("").to_owned()
}

pub(super) fn jobs_table(tenant: &str, jobs: &[Value]) -> String {
    if jobs.is_empty() {
        return "<p class=\"muted\">No jobs.</p>".into();
    }
    let mut t = String::from(
        "<div class=\"scroll\"><table class=\"jobs cards\"><thead><tr><th scope=\"col\">Job</th>\
         <th scope=\"col\">State</th><th scope=\"col\">Order</th><th scope=\"col\">Event</th>\
         <th scope=\"col\">Total</th><th scope=\"col\">Attempts</th><th scope=\"col\">Updated</th>\
         <th scope=\"col\">Outcome</th></tr></thead><tbody>",
    );
    for j in jobs {
        let id = s(j, "id");
        let ev = &j["event"];
        let order = ev["order_number"]
            .as_str()
            .or(ev["shop_order_id"].as_str())
            .unwrap_or("—");
        let total = match (ev["total"].as_str(), ev["currency"].as_str()) {
            (Some(t), Some(c)) => format!("{t} {c}"),
            (Some(t), None) => t.to_owned(),
            _ => ev["total"].to_string().replace("null", "—"),
        };
        t.push_str(&format!(
            "<tr data-job=\"{}\" data-state=\"{}\"><td data-label=\"Job\"><a href=\"/ui/tenants/{}/jobs/{}\">{}</a></td>\
             <td data-label=\"State\">{}</td><td data-label=\"Order\">{}</td><td data-label=\"Event\">{}</td>\
             <td class=\"num\" data-label=\"Total\">{}</td><td class=\"num\" data-label=\"Attempts\">{}</td>\
             <td data-label=\"Updated\">{}</td><td class=\"outcome\" data-label=\"Outcome\">{}</td></tr>",
            esc(id),
            esc(s(j, "state")),
            url_part(tenant),
            url_part(id),
            esc(&id.chars().take(12).collect::<String>()),
            badge(s(j, "state"), s(j, "state")),
            esc(order),
            esc(s(ev, "kind")),
            esc(&total),
            num(&j["attempts"]),
            time_of(&j["updated_at"]),
            esc(&outcome(j)),
        ));
    }
    t.push_str("</tbody></table></div>");
    t
}
