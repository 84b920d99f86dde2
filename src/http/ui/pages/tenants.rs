//! `/tenants`: every tenant with its health, filtered and paged.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::health::{budget_text, health, health_badge};
use super::{admin_json, num, time_of, Ctx};
use crate::http::admin;
use crate::http::ui::html::{esc, live, url_part, Nav};
use crate::http::ui::UiError;
use crate::http::AppState;
use crate::tenants::TenantId;

#[derive(Deserialize)]
pub struct TenantsQuery {
    q: Option<String>,
    health: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

struct Row {
    id: String,
    name: String,
    status: Value,
}

/// A tenant's name; `None` once it is gone (deleted between the list and the read).
async fn tenant_name(state: web::Data<AppState>, id: TenantId) -> Option<(String, String)> {
    match state.tenants.get(&id).await {
        Ok(Some(t)) => Some((id.into(), t.name)),
        Ok(None) => None,
        // An unreadable tenant still gets its row (its status says what is wrong).
        Err(_) => Some((id.into(), String::new())),
    }
}

async fn tenant_row(state: web::Data<AppState>, (id, name): (String, String)) -> Option<Row> {
    let (code, status) =
        admin_json(admin::tenants::status(web::Path::from(id.clone()), state.clone()).await).await;
    if code == StatusCode::NOT_FOUND {
        return None;
    }
    let status = if code.is_success() {
        status
    } else {
        // One unreadable tenant must not hide the others.
        serde_json::json!({"credentials": {"state": "blocked", "since": "?", "reason": "status unavailable"}})
    };
    Some(Row { id, name, status })
}

async fn rows_of(state: &web::Data<AppState>, tenants: Vec<(String, String)>) -> Vec<Row> {
    futures::stream::iter(tenants)
        .map(|t| tenant_row(state.clone(), t))
        .buffered(16)
        .filter_map(|r| async move { r })
        .collect()
        .await
}

pub(super) async fn tenants(
    ctx: Ctx,
    q: web::Query<TenantsQuery>,
) -> Result<HttpResponse, UiError> {
    let ids = ctx.state.tenants.list().await.map_err(|e| {
        tracing::error!(error = %e, "ui: listing tenants failed");
        UiError::Unavailable
    })?;
    let needle = q.q.as_deref().unwrap_or("").trim().to_lowercase();
    let want = q.health.as_deref().unwrap_or("all");
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let offset = q.offset.unwrap_or(0);
    let named: Vec<(String, String)> = futures::stream::iter(ids.clone())
        .map(|id| tenant_name(ctx.state.clone(), id))
        .buffered(32)
        .filter_map(|t| async move { t })
        .filter(|(id, name)| {
            let keep = needle.is_empty()
                || id.to_lowercase().contains(&needle)
                || name.to_lowercase().contains(&needle);
            async move { keep }
        })
        .collect()
        .await;
    // Without a health filter only the rows shown need their status.
    let (matched, shown) = if want == "all" {
        let page = named.iter().skip(offset).take(limit).cloned().collect();
        (named.len(), rows_of(&ctx.state, page).await)
    } else {
        let mut kept = Vec::new();
        for row in rows_of(&ctx.state, named).await {
            let (kind, _) = health(&row.status);
            let jobs = &row.status["jobs"];
            let keep = match want {
                "ok" => kind == "ok",
                "attention" => kind != "ok" || num(&jobs["dead"]) > 0,
                "dead" => num(&jobs["dead"]) > 0,
                "waiting" => num(&jobs["queued"]) + num(&jobs["delayed"]) > 0,
                _ => true,
            };
            if keep {
                kept.push(row);
            }
        }
        let n = kept.len();
        (n, kept.into_iter().skip(offset).take(limit).collect())
    };
    let mut body = String::new();
    body.push_str("<form method=\"get\" action=\"/ui/tenants\" class=\"filters\" role=\"search\">");
    body.push_str(&format!(
        "<label for=\"q\">Search</label><input id=\"q\" name=\"q\" type=\"search\" value=\"{}\" placeholder=\"id or name\">",
        esc(&needle)
    ));
    body.push_str("<label for=\"health\">Show</label><select id=\"health\" name=\"health\">");
    for (v, label) in [
        ("all", "all tenants"),
        ("attention", "needing attention"),
        ("ok", "healthy"),
        ("dead", "with dead jobs"),
        ("waiting", "with waiting jobs"),
    ] {
        let sel = if v == want { " selected" } else { "" };
        body.push_str(&format!("<option value=\"{v}\"{sel}>{label}</option>"));
    }
    body.push_str("</select><button type=\"submit\">Filter</button></form>");
    let mut table = format!(
        "<p class=\"muted\">{matched} of {} tenant(s)</p><div class=\"scroll\"><table class=\"tenants cards\">\
         <caption class=\"sr\">Tenants</caption><thead><tr><th scope=\"col\">Tenant</th>\
         <th scope=\"col\">Health</th><th scope=\"col\">Minimax calls</th>\
         <th scope=\"col\">Queued</th><th scope=\"col\">Delayed</th><th scope=\"col\">Dead</th>\
         <th scope=\"col\">Last booking</th></tr></thead><tbody>",
        ids.len()
    );
    for row in &shown {
        let jobs = &row.status["jobs"];
        let dead = num(&jobs["dead"]);
        let dead_cell = if dead > 0 {
            format!(
                "<a class=\"bad\" href=\"/ui/tenants/{}/jobs?state=dead\">{dead}</a>",
                url_part(&row.id)
            )
        } else {
            "0".into()
        };
        table.push_str(&format!(
            "<tr data-tenant=\"{}\"><th scope=\"row\"><a href=\"/ui/tenants/{}\">{}</a><div class=\"muted\">{}</div></th>\
             <td data-label=\"Health\">{}</td><td data-label=\"Minimax calls\">{}</td><td data-label=\"Queued\">{}</td>\
             <td data-label=\"Delayed\">{}</td><td data-label=\"Dead\">{dead_cell}</td><td data-label=\"Last booking\">{}</td></tr>",
            esc(&row.id),
            url_part(&row.id),
            esc(&row.id),
            esc(&row.name),
            health_badge(&row.status),
            budget_text(&row.status),
            num(&jobs["queued"]),
            num(&jobs["delayed"]),
            time_of(&row.status["last_booking"]["finished_at"]),
        ));
    }
    table.push_str("</tbody></table></div>");
    if offset + limit < matched {
        table.push_str(&format!(
            "<p><a href=\"/ui/tenants?q={}&amp;health={}&amp;offset={}&amp;limit={limit}\">Next {limit}</a></p>",
            url_part(&needle),
            url_part(want),
            offset + limit
        ));
    }
    body.push_str(&live("tenants-table", &table));
    body.push_str("<span hidden data-refresh-ms=\"10000\"></span>");
    Ok(ctx.page("Tenants", Nav::Tenants, &body))
}
