//! `/`: the overview across tenants.

use actix_web::HttpResponse;

use super::{admin_json, s, Ctx};
use crate::http::ui::html::{badge, esc, live, Nav};
use crate::http::ui::{charts, UiError};

pub(super) async fn overview(ctx: Ctx) -> Result<HttpResponse, UiError> {
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
