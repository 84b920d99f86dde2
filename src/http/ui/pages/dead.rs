//! `/dead`: the dead letters of every tenant.

use actix_web::HttpResponse;

use super::job_table::{jobs_table, newest_jobs};
use super::Ctx;
use crate::http::ui::html::{self, esc, live, url_part, Nav};
use crate::http::ui::UiError;
use crate::queue::JobState;

pub(super) async fn dead(ctx: Ctx) -> Result<HttpResponse, UiError> {
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
