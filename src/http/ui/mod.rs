//! The dashboard under `/ui/`: server-rendered HTML on the same stores the admin API
//! uses (tenant store, queue, Minimax client, the sandbox in demo mode), with one small
//! script for in-place refresh. See docs/ui.md.
//!
//! Guarantees:
//! - every page but sign-in and the static assets needs a live session ([`session`]);
//!   signed out, a page answers `303` to `/ui/login`;
//! - every request that is not `GET`/`HEAD` is checked here, before any handler runs:
//!   the session's CSRF token must come as the form field `csrf` or the header
//!   `X-CSRF-Token`, and an `Origin` header, when sent, must be this host; otherwise
//!   `403` and nothing changes;
//! - every answer carries a strict Content-Security-Policy (scripts and styles only from
//!   this origin, no inline script, no framing), `nosniff`, `no-store` and
//!   `Referrer-Policy: same-origin`;
//! - assets are compiled into the binary: no CDN, no network at run time.

pub mod actions;
pub mod charts;
pub mod html;
pub mod pages;
pub mod session;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};

pub use charts::spawn_sampler;

use crate::http::AppState;
use crate::sandbox::SandboxState;
use html::{esc, Frame, Nav};
use session::Session;

/// What the dashboard needs besides [`AppState`].
#[derive(Clone)]
pub struct UiConfig {
    /// The embedded sandbox, in demo mode: its documents get a page.
    pub sandbox: Option<SandboxState>,
    /// The demo tenant's id, in demo mode (named on the sign-in page).
    pub demo_tenant: Option<String>,
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Registers `/ui` behind the session and CSRF checks.
pub fn configure(cfg: &mut web::ServiceConfig, ui: UiConfig) {
    cfg.route(
        "/ui",
        web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, "/ui/"))
                .finish()
        }),
    );
    cfg.service(
        web::scope("/ui")
            .app_data(web::Data::new(ui))
            .wrap(actix_web::middleware::from_fn(guard))
            // Pages are text tables: gzip takes the tenants page of 1,000 rows from
            // about 450 KB to a few tens.
            .wrap(actix_web::middleware::Compress::default())
            .route("/assets/app.js", web::get().to(app_js))
            .route("/assets/app.css", web::get().to(app_css))
            .route("/login", web::get().to(login_page))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .configure(pages::configure)
            .configure(actions::configure)
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(UiError::NotFound("no such page".into()))
            })),
    );
}

/// An answer of the dashboard that is not the page asked for.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("storage unavailable, retry later")]
    Unavailable,
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::NotFound(_) => StatusCode::NOT_FOUND,
            UiError::Refused(_) => StatusCode::FORBIDDEN,
            UiError::Conflict(_) => StatusCode::CONFLICT,
            UiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            UiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    fn error_response(&self) -> HttpResponse {
        let body = format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/ui/\">Back to the overview</a></p>",
            esc(&self.to_string())
        );
        let page = html::page(
            &Frame {
                title: self.status_code().canonical_reason().unwrap_or("Error"),
                nav: Nav::None,
                csrf: None,
                demo: false,
            },
            &body,
        );
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(page)
    }
}

/// The signed-in session of a request (put there by [`guard`]).
pub fn session_of(req: &HttpRequest) -> Option<Session> {
    req.extensions().get::<Session>().cloned()
}

fn public(path: &str) -> bool {
    path == "/ui/login" || path.starts_with("/ui/assets/")
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// True when the request names no other origin than this host. Only the host (and
/// port) is compared: behind a TLS proxy the service may see `http` while the browser
/// says `https`, and the CSRF token is the check that counts.
fn same_origin(req: &ServiceRequest) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let host = req.connection_info().host().to_ascii_lowercase();
    origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .and_then(|u| {
            let h = u.host_str()?.to_ascii_lowercase();
            Some(match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h,
            })
        })
        .is_some_and(|o| {
            o == host || host.strip_suffix(":443").or(host.strip_suffix(":80")) == Some(&o)
        })
}

async fn csrf_token(req: &mut ServiceRequest) -> Result<Option<String>, actix_web::Error> {
    if let Some(h) = req.headers().get("x-csrf-token") {
        return Ok(h.to_str().ok().map(str::to_owned));
    }
    // The form body is read here and handed on unchanged to the handler.
    let body = req.extract::<web::Bytes>().await?;
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    req.set_payload(body.into());
    Ok(token)
}

fn secure_headers<B>(res: &mut ServiceResponse<B>) {
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD);
    let path = req.path().to_owned();
    let refuse = |req: ServiceRequest, e: UiError| {
        let mut res = req.into_response(e.error_response()).map_into_right_body();
        secure_headers(&mut res);
        Ok(res)
    };
    if changes && !same_origin(&req) {
        return refuse(
            req,
            UiError::Refused("the request came from another site".into()),
        );
    }
    if !public(&path) {
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            return refuse(req, UiError::Unavailable);
        };
        let cookie = cookie_value(req.headers(), session::COOKIE);
        let session = match cookie {
            Some(id) => match session::load(&state.queue, &id).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "ui: session storage error");
                    return refuse(req, UiError::Unavailable);
                }
            },
            None => None,
        };
        let Some(session) = session else {
            let res = if changes {
                UiError::Refused("signed out: sign in again".into()).error_response()
            } else {
                let next = req
                    .uri()
                    .path_and_query()
                    .map_or("/ui/", |p| p.as_str())
                    .to_owned();
                see_other(&format!("/ui/login?next={}", html::url_part(&next)))
            };
            let mut res = req.into_response(res).map_into_right_body();
            secure_headers(&mut res);
            return Ok(res);
        };
        if changes {
            let presented = csrf_token(&mut req).await?;
            if !session::csrf_ok(&session, presented.as_deref()) {
                tracing::warn!(%path, "ui: state change without a valid CSRF token refused");
                return refuse(
                    req,
                    UiError::Refused(
                        "this form is stale or did not come from the dashboard (CSRF token \
                         missing or wrong); reload the page and try again"
                            .into(),
                    ),
                );
            }
        }
        req.extensions_mut().insert(session);
    }
    let mut res = next.call(req).await?.map_into_left_body();
    secure_headers(&mut res);
    Ok(res)
}

async fn app_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .body(APP_JS)
}

async fn app_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .body(APP_CSS)
}

#[derive(serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only dashboard paths are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/ui/".into(),
    }
}

fn login_form(next: &str, problem: Option<&str>, ui: &UiConfig) -> String {
    let mut body = String::new();
    if let Some(p) = problem {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>",
            esc(p)
        ));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/ui/login\" class=\"card login\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"token\">Operator token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Sign in</button></form>",
        esc(next)
    ));
    if ui.demo_tenant.is_some() {
        body.push_str(
            "<p class=\"muted\">Demo mode: the operator token is in config/default.toml \
             (<code>security.admin_tokens</code>).</p>",
        );
    }
    body
}

fn login_response(status: StatusCode, body: &str) -> HttpResponse {
    let page = html::page(
        &Frame {
            title: "Sign in",
            nav: Nav::None,
            csrf: None,
            demo: false,
        },
        body,
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page)
}

async fn login_page(q: web::Query<NextQuery>, ui: web::Data<UiConfig>) -> HttpResponse {
    let next = safe_next(q.next.as_deref());
    login_response(StatusCode::OK, &login_form(&next, None, &ui))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie_value(headers: &header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// `Set-Cookie` for the session: `HttpOnly`, `SameSite=Strict`, `Secure` over TLS.
fn session_cookie(req: &HttpRequest, value: &str, max_age: i64) -> (header::HeaderName, String) {
    let secure = if req.connection_info().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    (
        header::SET_COOKIE,
        format!(
            "{}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
            session::COOKIE
        ),
    )
}

async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    state: web::Data<AppState>,
    ui: web::Data<UiConfig>,
) -> Result<HttpResponse, UiError> {
    let next = safe_next(form.next.as_deref());
    let presented = HeaderValue::from_str(&format!("Bearer {}", form.token.trim())).ok();
    if !crate::http::admin::authorized(&state.admin_tokens, presented.as_ref()) {
        tracing::warn!("ui: sign-in with a wrong operator token");
        return Ok(login_response(
            StatusCode::UNAUTHORIZED,
            &login_form(&next, Some("That token is not an operator token."), &ui),
        ));
    }
    let (id, _) = session::create(&state.queue).await.map_err(|e| {
        tracing::error!(error = %e, "ui: cannot store the session");
        UiError::Unavailable
    })?;
    tracing::info!("ui: operator signed in");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next))
        .insert_header(session_cookie(&req, &id, session::MAX_SECS))
        .finish())
}

async fn logout(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, UiError> {
    if let Some(c) = cookie_value(req.headers(), session::COOKIE) {
        session::delete(&state.queue, &c)
            .await
            .map_err(|_| UiError::Unavailable)?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/login"))
        .insert_header(session_cookie(&req, "", 0))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dashboard_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/ui/tenants?q=a")), "/ui/tenants?q=a");
        for bad in [
            "//evil.example/ui/",
            "https://evil.example",
            "/admin/",
            "/ui\\x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/ui/", "{bad}");
        }
        assert_eq!(safe_next(None), "/ui/");
    }
}
