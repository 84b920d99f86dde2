//! The dashboard over plain HTTP: sign-in and sessions, CSRF, the security headers,
//! signed-out redirects, and demo mode's private redis-server.

use std::time::Duration;

use minimax_connector::queue::JobState;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers;
use crate::helpers::tid;
use crate::ui_browser::{demo_app, example_order, post_order};

const TOKEN: &str = "demo-admin-token-change-me";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in; returns the session cookie (`name=value`) and the page's CSRF token.
async fn sign_in(base: &str) -> (String, String) {
    let res = client()
        .post(format!("{base}/ui/login"))
        .form(&[("token", TOKEN), ("next", "/ui/tenants")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/ui/tenants");
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = client()
        .get(format!("{base}/ui/tenants"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

const PAGES: &[&str] = &[
    "/ui/",
    "/ui/tenants",
    "/ui/tenants/demo",
    "/ui/tenants/demo/jobs",
    "/ui/tenants/demo/jobs?state=dead",
    "/ui/tenants/demo/jobs/j1",
    "/ui/dead",
    "/ui/sandbox",
];

#[tokio::test]
async fn signed_out_every_page_redirects_to_sign_in_and_actions_are_refused() {
    let (app, _) = demo_app("ui-signed-out").await;
    for page in PAGES {
        for cookie in [
            None,
            Some("mmc_ui_session=00ff"),
            Some(&*format!("mmc_ui_session={}", "a".repeat(64))),
        ] {
            let mut req = client().get(app.url(page));
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{page}");
            let to = res.headers()["location"].to_str().unwrap();
            assert!(to.starts_with("/ui/login?next=%2Fui%2F"), "{page}: {to}");
        }
    }
    let res = client()
        .post(app.url("/ui/tenants/demo/unblock"))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The sign-in page and the assets need no session.
    for open in ["/ui/login", "/ui/assets/app.js", "/ui/assets/app.css"] {
        assert_eq!(
            client().get(app.url(open)).send().await.unwrap().status(),
            200,
            "{open}"
        );
    }
}

#[tokio::test]
async fn sign_in_sets_a_strict_session_cookie_and_sign_out_ends_the_session() {
    let (app, _) = demo_app("ui-session").await;
    let wrong = client()
        .post(app.url("/ui/login"))
        .form(&[("token", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());

    let res = client()
        .post(app.url("/ui/login"))
        .form(&[("token", TOKEN), ("next", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/ui/", "no open redirect");
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age="] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let tls = client()
        .post(app.url("/ui/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert!(tls.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));

    let (cookie, csrf) = sign_in(&app.base).await;
    let ok = client()
        .get(app.url("/ui/tenants"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let out = client()
        .post(app.url("/ui/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = client()
        .get(app.url("/ui/tenants"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        StatusCode::SEE_OTHER,
        "the old cookie still works"
    );
}

#[tokio::test]
async fn a_state_change_without_the_csrf_token_is_refused() {
    let (app, settings) = demo_app("ui-csrf").await;
    let mut order = example_order();
    order["order"]["payment_method"] = json!({"id": "bitcoin"});
    let id = post_order(&app, &settings, &order, "msg-csrf").await;
    helpers::eventually(Duration::from_secs(30), || async {
        app.queue
            .get(&tid("demo"), &id)
            .await
            .unwrap()
            .filter(|j| j.state == JobState::Dead)
    })
    .await
    .expect("job dead");
    let (cookie, csrf) = sign_in(&app.base).await;
    let retry = app.url(&format!("/ui/tenants/demo/jobs/{id}/retry"));
    let attempts: [(Option<&str>, Option<&str>); 4] = [
        (None, None),
        (Some("wrong"), None),
        (Some(""), None),
        (Some(csrf.as_str()), Some("https://evil.example")),
    ];
    for (token, origin) in attempts {
        let mut req = client().post(&retry).header("cookie", &cookie);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let req = match token {
            Some(t) => req.form(&[("csrf", t)]),
            None => req.form(&[("other", "1")]),
        };
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{token:?} {origin:?}");
        let body = res.text().await.unwrap();
        assert!(
            body.contains("CSRF") || body.contains("another site"),
            "{body}"
        );
        let job = app.queue.get(&tid("demo"), &id).await.unwrap().unwrap();
        assert_eq!(
            job.state,
            JobState::Dead,
            "the refused retry changed the job"
        );
    }
    // Header form (the page script) and form field both work with the right token.
    let res = client()
        .post(&retry)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let job = app.queue.get(&tid("demo"), &id).await.unwrap().unwrap();
    let retries = job
        .history
        .iter()
        .filter(|a| a.outcome == "manual_retry")
        .count();
    assert_eq!(
        retries, 1,
        "exactly the accepted retry ran: {:?}",
        job.history
    );
}

#[tokio::test]
async fn every_page_has_a_strict_csp_and_no_inline_script_or_style() {
    let (app, settings) = demo_app("ui-csp").await;
    let id = post_order(&app, &settings, &example_order(), "msg-csp").await;
    let (cookie, _) = sign_in(&app.base).await;
    let job_page = format!("/ui/tenants/demo/jobs/{id}");
    for page in PAGES.iter().copied().chain([job_page.as_str()]) {
        let res = client()
            .get(app.url(page))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let status = res.status();
        let body = res.text().await.unwrap();
        if page.ends_with("/j1") {
            assert_eq!(status, 404, "{page}");
        } else {
            assert_eq!(status, 200, "{page}: {body}");
        }
        assert_eq!(body.matches("<script").count(), 1, "{page}");
        assert!(body.contains("<script src=\"/ui/assets/app.js\" defer></script>"));
        assert!(!body.contains(" style="), "{page}");
        assert!(!body.contains(" onclick="), "{page}");
    }
}

#[tokio::test]
async fn demo_mode_starts_a_private_redis_when_none_answers_and_stops_it() {
    let port = helpers::free_port();
    let mut settings = helpers::settings_for(
        &format!("redis://127.0.0.1:{port}"),
        &helpers::unique_prefix("ui-private-redis"),
    );
    settings.demo.enabled = true;
    settings.apply_demo();
    let mut app = helpers::spawn_app(settings).await;
    let ready = helpers::eventually(Duration::from_secs(20), || async {
        let r = reqwest::get(app.url("/health/ready")).await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "demo mode without Redis never became ready"
    );
    let tenant = helpers::eventually(Duration::from_secs(20), || async {
        let r = client()
            .get(app.url("/admin/tenants/demo"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(tenant.is_some(), "the demo tenant was not seeded");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the configured port stays unused"
    );
    // Its address is logged, not configured: find it through the process table.
    let private_port = private_redis_ports();
    assert!(!private_port.is_empty(), "no private redis-server running");
    app.stop.stop();
    app.task.take().unwrap().await.unwrap().unwrap();
    let gone = helpers::eventually(Duration::from_secs(10), || async {
        let still: Vec<u16> = private_redis_ports()
            .into_iter()
            .filter(|p| private_port.contains(p))
            .filter(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
            .collect();
        still.is_empty().then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "the private redis-server outlived the service"
    );
}

/// Ports of running redis-servers working in a demo data directory (redis-server
/// changes into its `--dir` and retitles itself `redis-server 127.0.0.1:<port>`).
fn private_redis_ports() -> Vec<u16> {
    let mut ports = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let in_demo_dir = std::fs::read_link(entry.path().join("cwd"))
            .is_ok_and(|d| d.to_string_lossy().contains("mmc-demo-redis-"));
        if !in_demo_dir {
            continue;
        }
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let title = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if let Some(p) = title
            .split_whitespace()
            .find_map(|w| w.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        {
            ports.push(p);
        }
    }
    ports
}

#[tokio::test]
async fn production_mode_never_starts_a_private_redis() {
    let port = helpers::free_port();
    let settings = helpers::settings_for(
        &format!("redis://127.0.0.1:{port}"),
        &helpers::unique_prefix("ui-no-private-redis"),
    );
    assert!(!settings.demo.enabled);
    let app = helpers::spawn_app(settings).await;
    let res = reqwest::get(app.url("/health/ready")).await.unwrap();
    assert_eq!(res.status(), 503, "not ready without Redis, as configured");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[tokio::test]
async fn a_session_expires_when_idle_and_after_its_absolute_limit() {
    use sha2::{Digest, Sha256};
    let (app, _) = demo_app("ui-expiry").await;
    let (cookie, _) = sign_in(&app.base).await;
    let id = cookie.split_once('=').unwrap().1;
    let key = format!(
        "{}:ui:session:{}",
        app.queue.prefix(),
        minimax_connector::crypto::hex(&Sha256::digest(id.as_bytes()))
    );
    let mut conn = app.queue.pool().get().await.unwrap();
    // Idle expiry: the stored session lives at most two hours past its last use.
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=2 * 3600).contains(&ttl), "ttl {ttl}");

    // Signed in 13 hours ago: past the 12-hour limit however busy.
    let stored: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut session: serde_json::Value = serde_json::from_str(&stored).unwrap();
    session["created"] = serde_json::json!(chrono::Utc::now().timestamp() - 13 * 3600);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(session.to_string())
        .arg("EX")
        .arg(3600)
        .query_async(&mut conn)
        .await
        .unwrap();
    let res = client()
        .get(app.url("/ui/tenants"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "an expired session still works"
    );
    let left: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "the expired session is deleted");
}
