//! The dashboard in a real headless Chromium, driven over WebDriver (`chromedriver`
//! started here on a free port). Nothing is skipped: without `chromium` and
//! `chromedriver` (Debian packages; `.ci/run` installs them) these tests fail.
//! Screenshots of every page land in docs/ui/.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use minimax_connector::config::Settings;
use serde_json::{json, Value};

use crate::helpers::tid;
use crate::helpers::{self, TestApp};

const TOKEN: &str = "demo-admin-token-change-me";
const WAIT: Duration = Duration::from_secs(40);

/// chromedriver on a free port with one headless Chromium session; both end on drop.
pub struct Browser {
    pub client: Client,
    // Held for its drop: chromedriver ends with the browser.
    _driver: Driver,
}

/// The chromedriver process, killed on drop (also when a test fails before it has a
/// session).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .find_map(|n| minimax_connector::private_redis::find_on_path(n, &path))
}

impl Browser {
    pub async fn start() -> Browser {
        let driver_bin = find_binary(&["chromedriver"]).expect(
            "chromedriver not found on PATH: the browser tests need Debian's `chromium` and \
             `chromium-driver` (apt-get install -y chromium chromium-driver; .ci/run does this)",
        );
        let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"])
            .expect("chromium not found on PATH: apt-get install -y chromium chromium-driver");
        let port = helpers::free_port();
        let driver = Driver(
            Command::new(driver_bin)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        let ok = helpers::eventually(Duration::from_secs(20), || async {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .await;
        assert!(ok.is_some(), "chromedriver did not listen on port {port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--no-first-run", "--disable-extensions"],
            }),
        );
        // chromedriver is on localhost: plain HTTP, no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session over WebDriver");
        Browser {
            client,
            _driver: driver,
        }
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Saves a PNG of the page as docs/ui/<name>.png.
    pub async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/ui");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the text of `css` satisfies `ok`; panics with what it saw otherwise.
    pub async fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let t = self.text(css).await;
            if ok(&t) {
                return t;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting on {css}; last text: {t:?}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    /// Signs in with the keyboard only: the token field has the focus, Enter submits.
    pub async fn sign_in(&self, app: &TestApp) {
        self.client.goto(&app.url("/ui/")).await.unwrap();
        assert!(self.path().await.starts_with("/ui/login"));
        let focused = self.client.active_element().await.unwrap();
        assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("token"));
        focused
            .send_keys(&format!("{TOKEN}\u{E007}"))
            .await
            .unwrap();
        self.wait_text("h1", |t| t == "Overview").await;
    }

    /// The `id`, or else the text, of the element holding the keyboard focus.
    pub async fn focused(&self) -> String {
        let e = self.client.active_element().await.unwrap();
        match e.attr("id").await.unwrap() {
            Some(id) if !id.is_empty() => format!("#{id}"),
            _ => e.text().await.unwrap_or_default(),
        }
    }

    pub async fn press(&self, keys: &str) {
        let e = self.client.active_element().await.unwrap();
        e.send_keys(keys).await.unwrap();
    }
}

/// The service in demo mode (sandbox, demo tenant) with a fast Minimax rate limit.
pub async fn demo_app(name: &str) -> (TestApp, Settings) {
    let mut settings = helpers::settings_for(&helpers::redis_url(), &helpers::unique_prefix(name));
    settings.demo.enabled = true;
    settings.apply_demo();
    settings.minimax.rate_per_sec = 500.0;
    settings.minimax.burst = 500;
    let app = helpers::spawn_app(settings.clone()).await;
    let store = helpers::tenant_store(&settings);
    helpers::eventually(Duration::from_secs(10), || async {
        store.get(&tid("demo")).await.ok().flatten()
    })
    .await
    .expect("demo tenant seeded");
    (app, settings)
}

pub fn example_order() -> Value {
    serde_json::from_str(include_str!("../../docs/examples/generic-order-paid.json")).unwrap()
}

/// Posts a signed generic webhook to the demo tenant; returns the job id.
pub async fn post_order(app: &TestApp, settings: &Settings, order: &Value, msg: &str) -> String {
    let body = serde_json::to_vec(order).unwrap();
    let h = helpers::reqwest_headers(&helpers::generic_headers(
        msg,
        chrono::Utc::now().timestamp(),
        &body,
        &settings.demo.webhook_secret,
    ));
    let res = reqwest::Client::new()
        .post(app.url("/webhooks/generic/demo"))
        .headers(h)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    res.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_order_becomes_an_invoice_on_the_page_without_reload() {
    let (app, settings) = demo_app("ui-browser-flow").await;
    let b = Browser::start().await;
    b.sign_in(&app).await;
    // Keyboard: the first Tab reaches the skip link, the next ones the navigation.
    b.press("\u{E004}").await;
    assert_eq!(b.focused().await, "Skip to content");
    b.press("\u{E004}").await;
    b.press("\u{E004}").await;
    assert_eq!(b.focused().await, "Tenants");
    b.press("\u{E007}").await;
    b.wait_text("tr[data-tenant='demo']", |t| t.contains("Demo shop"))
        .await;
    b.shot("tenants").await;

    b.click("tr[data-tenant='demo'] a").await;
    b.wait_text("h1", |t| t == "Tenant demo").await;
    // A marker in the page's window survives only if the page is never reloaded.
    b.client
        .execute("window.mmcMarker = 'still here'; return true;", vec![])
        .await
        .unwrap();
    let id = post_order(&app, &settings, &example_order(), "msg-ui-1").await;
    let row = format!("#tenant-jobs tr[data-job='{id}']");
    b.wait_text(&format!("{row} td[data-label='State']"), |t| t == "done")
        .await;
    let year = chrono::Utc::now().format("%Y").to_string();
    let outcome = b.text(&format!("{row} td.outcome")).await;
    assert_eq!(outcome, format!("issued invoice {year}-1"));
    let marker = b
        .client
        .execute("return window.mmcMarker || null;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!("still here"), "the page was reloaded");
    b.shot("tenant").await;

    b.click(&format!("{row} a")).await;
    let number = b
        .wait_text("#job-result td[data-key='number']", |t| !t.is_empty())
        .await;
    assert_eq!(number, format!("{year}-1"));
    b.shot("job").await;

    b.client
        .goto(&app.url("/ui/tenants/demo/jobs"))
        .await
        .unwrap();
    b.wait_text("#jobs-list", |t| t.contains("2025-00045"))
        .await;
    b.fill("#order", "2025-00045").await;
    b.click("form.filters button").await;
    b.wait_text("#jobs-list", |t| t.contains("done")).await;
    b.shot("jobs").await;

    b.client.goto(&app.url("/ui/sandbox")).await.unwrap();
    b.wait_text("#sandbox-invoices td.number", |t| t == format!("{year}-1"))
        .await;
    b.shot("sandbox").await;

    b.client.goto(&app.url("/ui/")).await.unwrap();
    b.wait_text("#overview figcaption", |t| t.contains("total 1"))
        .await;
    b.shot("overview").await;

    // Phone width: the tenants page still fits (tables scroll inside their box).
    b.client.set_window_size(390, 844).await.unwrap();
    b.client.goto(&app.url("/ui/tenants")).await.unwrap();
    b.wait_text("tr[data-tenant='demo']", |t| t.contains("demo"))
        .await;
    let overflow = b
        .client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, json!(true), "the page is wider than a phone");
    b.shot("tenants-phone").await;

    // Signed out, pages lead to the sign-in form.
    b.client.set_window_size(1280, 900).await.unwrap();
    b.click("form.logout button").await;
    b.wait_text("h1", |t| t == "Sign in").await;
    b.client.goto(&app.url("/ui/tenants/demo")).await.unwrap();
    b.wait_text("h1", |t| t == "Sign in").await;
    assert!(b.path().await.starts_with("/ui/login?next="));
    b.shot("sign-in").await;
    b.close().await;
}

#[tokio::test]
async fn a_dead_job_is_fixed_and_retried_and_shop_markup_stays_text() {
    let (app, settings) = demo_app("ui-browser-dead").await;
    let b = Browser::start().await;
    b.sign_in(&app).await;

    let evil = "<img src=x onerror=alert(1)>";
    let mut order = example_order();
    order["order"]["payment_method"] = json!({"id": "bitcoin", "title": "Bitcoin"});
    for who in ["customer", "billing"] {
        order["order"][who]["company"] = json!(evil);
    }
    let id = post_order(&app, &settings, &order, "msg-ui-dead").await;

    b.client.goto(&app.url("/ui/dead")).await.unwrap();
    let text = b.wait_text("#dead-list", |t| t.contains("bitcoin")).await;
    assert!(text.contains("1 dead"), "{text}");
    b.shot("dead-letters").await;

    // Fix the setting on the tenant page, then retry from the job page.
    b.client.goto(&app.url("/ui/tenants/demo")).await.unwrap();
    b.fill("#gateway", "bitcoin").await;
    // By its Minimax code: the localised name is not needed.
    b.fill("#method", "GOTOVINA").await;
    b.click("form[action$='/payment-methods'] button").await;
    b.wait_text("table.kv", |t| t.contains("\"bitcoin\":\"GOTOVINA\""))
        .await;
    b.client
        .goto(&app.url(&format!("/ui/tenants/demo/jobs/{id}")))
        .await
        .unwrap();
    b.wait_text("#job-state", |t| t == "dead").await;
    b.click("form[action$='/retry'] button").await;
    b.wait_text("#job-state", |t| t == "done").await;
    let number = b
        .wait_text("#job-result td[data-key='number']", |t| !t.is_empty())
        .await;
    assert!(number.ends_with("-1"), "{number}");

    // The customer's name is shown as text: no image element, no script ran.
    b.client.goto(&app.url("/ui/sandbox")).await.unwrap();
    let names = b
        .wait_text("#sandbox-customers", |t| t.contains(evil))
        .await;
    assert!(names.contains(evil), "{names}");
    let imgs = b.client.find_all(Locator::Css("main img")).await.unwrap();
    assert!(imgs.is_empty(), "markup from the shop became an element");
    assert!(
        b.client.get_alert_text().await.is_err(),
        "a script from the shop ran"
    );
    b.close().await;
}
