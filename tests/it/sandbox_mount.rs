//! The sandbox mounted under `/sandbox` in an actix app, as the main app will do it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use actix_web::{web, App, HttpServer};
use minimax_connector::minimax::models::Customer;
use minimax_connector::minimax::{
    Country, Minimax, MinimaxLogin, MinimaxSettings, TenantCredentials,
};
use minimax_connector::sandbox::{configure, SandboxSettings, SandboxState};
use secrecy::ExposeSecret;

#[tokio::test]
async fn mounted_under_a_prefix_with_case_insensitive_paths() {
    let state = SandboxState::new(SandboxSettings::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        let s = app_state.clone();
        App::new().service(web::scope("/sandbox").configure(move |c| configure(c, s)))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    let base = format!("http://127.0.0.1:{port}/sandbox");
    let settings = state.settings().clone();

    // Basic client credentials, lower-case path, no scope.
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{base}/si/aut/oauth20/token"))
        .basic_auth(
            &settings.client_id,
            Some(settings.client_secret.expose_secret()),
        )
        .form(&[
            ("grant_type", "password"),
            ("username", settings.username.as_str()),
            ("password", settings.password.expose_secret()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(token["expires_in"], 3600);
    let org = settings.organisation_id;
    let response = http
        .get(format!("{base}/si/api/API/orgs/{org}/Countries/code(si)"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let country: serde_json::Value = response.json().await.unwrap();
    assert_eq!(country["CountryId"], 192);
    let missing = http
        .get(format!("{base}/SI/API/api/orgs/{org}/customers/code(NOPE)"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The client against the mounted sandbox; Location carries the prefix.
    let pool = crate::helpers::pool(&crate::helpers::redis_url());
    let prefix = format!("test:{}", uuid::Uuid::new_v4());
    let mut mm_settings = MinimaxSettings::default();
    let si = mm_settings.country_mut(Country::SI);
    si.api_base = format!("{base}/SI/API/");
    si.token_url = format!("{base}/SI/AUT/OAuth20/Token");
    si.client_id = settings.client_id.clone();
    si.client_secret = settings.client_secret.clone();
    let mm = Minimax::new(mm_settings, pool.clone(), prefix.clone(), helpers::cipher()).unwrap();
    let client = mm.tenant(TenantCredentials {
        tenant_id: "mounted".into(),
        country: Country::SI,
        organisation_id: org,
        login: MinimaxLogin {
            username: settings.username.clone(),
            password: settings.password.clone(),
            client_id: None,
            client_secret: None,
            api_base: None,
            token_url: None,
        },
    });
    let id = client
        .create_customer(&Customer {
            code: Some("M-1".into()),
            name: Some("Mounted".into()),
            country: Some(minimax_connector::minimax::models::Fk::id(192)),
            ..Default::default()
        })
        .await
        .unwrap();
    let stored = state.customers(org);
    assert!(stored.iter().any(|c| c["CustomerId"] == id));
    let raw = http
        .post(format!("{base}/SI/API/api/orgs/{org}/customers"))
        .bearer_auth(access)
        .json(&serde_json::json!({"Code": "M-2", "Name": "Raw", "Country": {"ID": 192}}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 201);
    let location = raw.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{base}/SI/API/api/orgs/{org}/customers/")),
        "{location}"
    );

    helpers::delete_keys(&format!("{prefix}:*")).await;
    handle.stop(false).await;
}
