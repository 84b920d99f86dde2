//! The dashboard's pages (all `GET`): overview, tenants, tenant, jobs, job, dead
//! letters and, in demo mode, the sandbox's documents.
//!
//! Status, job lists and job details come from the admin API's own handlers, called in
//! process (no HTTP), so a page shows exactly what `/admin` answers and follows it when
//! it grows (the circuit breaker, new result fields). Regions marked live are refreshed
//! in place by the page script.

use std::future::Future;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::html::{self, badge, esc, live, url_part, Frame, Nav};
use super::session::Session;
use super::{charts, UiConfig, UiError};
use crate::http::admin::{self, AdminError};
use crate::http::AppState;
use crate::queue::JobState;
use crate::webshop::Platform;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(overview))
        .route("/tenants", web::get().to(tenants))
        .route("/tenants/{id}", web::get().to(tenant))
        .route("/tenants/{id}/jobs", web::get().to(jobs))
        .route("/tenants/{id}/jobs/{job}", web::get().to(job))
        .route("/dead", web::get().to(dead))
        .route("/sandbox", web::get().to(sandbox));
}

/// What every page handler needs: the stores, the dashboard settings, the session.
pub struct Ctx {
    pub state: web::Data<AppState>,
    pub ui: web::Data<UiConfig>,
    pub session: Session,
    pub req: HttpRequest,
}

impl FromRequest for Ctx {
    type Error = UiError;
    type Future = std::future::Ready<Result<Ctx, UiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = (|| {
            Some(Ctx {
                state: req.app_data::<web::Data<AppState>>()?.clone(),
                ui: req.app_data::<web::Data<UiConfig>>()?.clone(),
                session: super::session_of(req)?,
                req: req.clone(),
            })
        })();
        std::future::ready(ctx.ok_or_else(|| UiError::Refused("signed out".into())))
    }
}

impl Ctx {
    pub fn page(&self, title: &str, nav: Nav, body: &str) -> HttpResponse {
        let page = html::page(
            &Frame {
                title,
                nav,
                csrf: Some(&self.session.csrf),
                demo: self.ui.sandbox.is_some(),
            },
            body,
        );
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(page)
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }
}

/// An admin handler's answer as status and JSON body.
pub async fn admin_json(res: Result<HttpResponse, AdminError>) -> (StatusCode, Value) {
    let res = res.unwrap_or_else(|e| e.error_response());
    let status = res.status();
    let body = actix_web::body::to_bytes(res.into_body())
        .await
        .unwrap_or_default();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// As [`admin_json`], with a non-success answer turned into the page's error.
pub async fn admin_ok(
    fut: impl Future<Output = Result<HttpResponse, AdminError>>,
) -> Result<Value, UiError> {
    let (status, body) = admin_json(fut.await).await;
    if status.is_success() {
        return Ok(body);
    }
    let message = body["message"]
        .as_str()
        .unwrap_or("the request failed")
        .to_owned();
    Err(match status {
        StatusCode::NOT_FOUND => UiError::NotFound(message),
        StatusCode::CONFLICT => UiError::Conflict(message),
        StatusCode::SERVICE_UNAVAILABLE => UiError::Unavailable,
        s if s.is_client_error() => UiError::Invalid(message),
        _ => UiError::Unavailable,
    })
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn time_of(v: &Value) -> String {
    html::time(
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
    )
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

// -------------------------------------------------------------------- health

/// One word for a tenant's state and the text that explains it.
pub fn health(status: &Value) -> (&'static str, String) {
    let cred = &status["credentials"];
    if s(cred, "state") == "blocked" {
        return (
            "blocked",
            format!(
                "credentials blocked since {}: {}",
                s(cred, "since"),
                s(cred, "reason")
            ),
        );
    }
    // The organisation's circuit breaker (`minimax_circuit` of the status).
    let circuit = &status["minimax_circuit"];
    match s(circuit, "state") {
        "open" => {
            return (
                "breaker",
                format!(
                    "Minimax unavailable: circuit open until {}",
                    s(circuit, "until")
                ),
            )
        }
        "half_open" => return ("breaker", "Minimax unavailable: probing (half-open)".into()),
        _ => {}
    }
    let budget = &status["budget"];
    if let Some(until) = budget["paused_until"].as_str() {
        return ("paused", format!("paused by Minimax until {until}"));
    }
    for (window, remaining) in [
        ("daily", "daily_remaining"),
        ("monthly", "monthly_remaining"),
    ] {
        if budget[remaining].as_u64() == Some(0) {
            return ("paused", format!("{window} call budget spent"));
        }
    }
    ("ok", "connected".into())
}

fn health_badge(status: &Value) -> String {
    let (kind, text) = health(status);
    let class = match kind {
        "ok" => "ok",
        "paused" => "warn",
        _ => "bad",
    };
    let label = match kind {
        "ok" => "ok",
        "blocked" => "blocked",
        "breaker" => "breaker open",
        _ => "paused",
    };
    format!(
        "<span class=\"badge {class}\" title=\"{}\">{label}</span> <span class=\"why\">{}</span>",
        esc(&text),
        esc(&text)
    )
}

fn budget_text(status: &Value) -> String {
    let b = &status["budget"];
    let part = |used: &str, limit: &str| match b[limit].as_u64() {
        Some(l) if l > 0 => format!("{} / {l}", num(&b[used])),
        _ => format!("{} / ∞", num(&b[used])),
    };
    format!(
        "24 h {} · month {}",
        part("last_24h", "daily_limit"),
        part("this_month", "monthly_limit")
    )
}

// ------------------------------------------------------------------- tenants

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
async fn tenant_name(state: web::Data<AppState>, id: String) -> Option<(String, String)> {
    match state.tenants.get(&id).await {
        Ok(Some(t)) => Some((id, t.name)),
        Ok(None) => None,
        // An unreadable tenant still gets its row (its status says what is wrong).
        Err(_) => Some((id, String::new())),
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

async fn tenants(ctx: Ctx, q: web::Query<TenantsQuery>) -> Result<HttpResponse, UiError> {
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

// -------------------------------------------------------------------- tenant

/// The newest `n` jobs of a tenant in `state`, newest first, as the admin API lists them.
async fn newest_jobs(
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

const STATES: [JobState; 5] = [
    JobState::Queued,
    JobState::Running,
    JobState::Delayed,
    JobState::Dead,
    JobState::Done,
];

/// A job's one-line outcome: the document number when booked, the error otherwise.
fn outcome(j: &Value) -> String {
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

fn jobs_table(tenant: &str, jobs: &[Value]) -> String {
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
    let tenant = ctx
        .state
        .tenants
        .get(id)
        .await
        .map_err(|_| UiError::Unavailable)?
        .ok_or_else(|| UiError::NotFound(format!("unknown tenant {id:?}")))?;
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

async fn tenant(ctx: Ctx, path: web::Path<String>) -> Result<HttpResponse, UiError> {
    tenant_page(&ctx, &path, None).await
}

// ---------------------------------------------------------------------- jobs

#[derive(Deserialize)]
pub struct JobsPageQuery {
    state: Option<String>,
    order: Option<String>,
}

async fn jobs(
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

async fn job(ctx: Ctx, path: web::Path<(String, String)>) -> Result<HttpResponse, UiError> {
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

// ---------------------------------------------------------------------- dead

async fn dead(ctx: Ctx) -> Result<HttpResponse, UiError> {
    let tenants = ctx
        .state
        .queue
        .tenants()
        .await
        .map_err(|_| UiError::Unavailable)?;
    let mut inner = String::new();
    let mut any = false;
    for t in tenants {
        let counts = ctx
            .state
            .queue
            .counts(&t)
            .await
            .map_err(|_| UiError::Unavailable)?;
        if counts.dead == 0 {
            continue;
        }
        any = true;
        let tid = url_part(&t);
        let jobs = newest_jobs(&ctx, &t, JobState::Dead, counts.dead, 10).await?;
        inner.push_str(&format!(
            "<section class=\"card wide\" data-tenant=\"{}\"><h2><a href=\"/ui/tenants/{tid}\">{}</a> · {} dead</h2>{}\
             <p><a href=\"/ui/tenants/{tid}/jobs?state=dead\">All dead jobs of {}</a></p>",
            esc(&t),
            esc(&t),
            counts.dead,
            html::button_form(&format!("/ui/tenants/{tid}/jobs/retry-dead"), ctx.csrf(), "Retry all", "primary"),
            esc(&t),
        ));
        inner.push_str(&jobs_table(&t, &jobs));
        inner.push_str("</section>");
    }
    if !any {
        inner.push_str("<p class=\"muted\">No dead jobs. Nothing is stuck.</p>");
    }
    Ok(ctx.page("Dead letters", Nav::Dead, &live("dead-list", &inner)))
}

// ------------------------------------------------------------------ overview

async fn overview(ctx: Ctx) -> Result<HttpResponse, UiError> {
    let (code, ready) = admin_json(Ok(crate::http::health::ready(ctx.state.clone()).await)).await;
    let q = &ctx.state.queue;
    let totals = charts::totals(q).await.unwrap_or_default();
    let hours = charts::done_per_hour(q).await.unwrap_or_default();
    let depth = charts::depth_series(q).await.unwrap_or_default();
    let mut body = String::new();
    let readiness = if code.is_success() {
        format!(
            "{} Redis {} · workers {}",
            badge("ok", "ready"),
            esc(s(&ready, "redis")),
            esc(s(&ready, "workers"))
        )
    } else {
        format!(
            "{} {}",
            badge("bad", "not ready"),
            esc(s(&ready, "message"))
        )
    };
    let mut facts = format!(
        "<dl class=\"facts\"><div><dt>Readiness</dt><dd id=\"readiness\">{readiness}</dd></div>\
         <div><dt>Queued</dt><dd>{}</dd></div><div><dt>Running</dt><dd>{}</dd></div>\
         <div><dt>Delayed</dt><dd>{}</dd></div><div><dt>Dead</dt><dd><a href=\"/ui/dead\">{}</a></dd></div></dl>",
        totals.queued, totals.running, totals.delayed, totals.dead
    );
    facts.push_str(&charts::bars(
        "Jobs finished per hour, last 24 h",
        &hours,
        "24 h ago",
        "now",
    ));
    let depth_values: Vec<u64> = depth.iter().map(|(_, d)| *d).collect();
    let first = depth
        .first()
        .and_then(|(t, _)| chrono::DateTime::from_timestamp_millis(*t))
        .map_or_else(|| "—".into(), |t| t.format("%H:%M UTC").to_string());
    facts.push_str(&charts::bars(
        "Queue depth (queued + delayed + running), 5-minute samples",
        &depth_values,
        &first,
        "now",
    ));
    body.push_str(&live("overview", &facts));
    Ok(ctx.page("Overview", Nav::Overview, &body))
}

// ------------------------------------------------------------------- sandbox

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

async fn sandbox(ctx: Ctx) -> Result<HttpResponse, UiError> {
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

#[cfg(test)]
mod tests {
    use super::health;
    use serde_json::json;

    #[test]
    fn an_open_or_probing_circuit_shows_as_breaker() {
        let status = |state: &str| {
            json!({"credentials": {"state": "ok"}, "budget": {},
                   "minimax_circuit": {"state": state, "until": "2026-12-02T06:00:00Z"}})
        };
        let (word, text) = health(&status("open"));
        assert_eq!(word, "breaker");
        assert!(text.contains("2026-12-02T06:00:00Z"), "{text}");
        assert_eq!(health(&status("half_open")).0, "breaker");
        assert_ne!(health(&status("closed")).0, "breaker");
    }
}
