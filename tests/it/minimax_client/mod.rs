//! The Minimax client against the sandbox over real HTTP and a real Redis.
//!
//! Each test uses its own Redis prefix (`test:<uuid>`) and its own sandbox, and deletes
//! only the keys under its prefix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers;

use std::str::FromStr;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use minimax_connector::minimax::models::{
    Customer, Fk, IssuedInvoice, IssuedInvoicePaymentMethod, IssuedInvoiceRow,
};
use minimax_connector::minimax::{
    AuthState, BudgetWindow, Country, Disposition, InvoiceAction, Minimax, MinimaxError,
    MinimaxLogin, MinimaxSettings, TenantClient, TenantCredentials,
};
use minimax_connector::sandbox::{Fault, FaultAction, Sandbox, SandboxHandle, SandboxSettings};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};

mod documents;
mod limits;
mod tokens;

struct Env {
    sandbox: SandboxHandle,
    prefix: String,
    settings: MinimaxSettings,
}

impl Env {
    async fn new(sandbox: SandboxSettings, tweak: impl FnOnce(&mut MinimaxSettings)) -> Env {
        let sandbox = Sandbox::spawn(sandbox).await.expect("sandbox");
        let mut settings = MinimaxSettings {
            rate_per_sec: 1000.0,
            burst: 1000,
            ..MinimaxSettings::default()
        };
        tweak(&mut settings);
        Env {
            sandbox,
            prefix: format!("test:{}", uuid::Uuid::new_v4()),
            settings,
        }
    }

    /// A new client instance (as another process would have), sharing Redis.
    fn instance(&self) -> Minimax {
        Minimax::new(
            self.settings.clone(),
            helpers::pool(&helpers::redis_url()),
            self.prefix.clone(),
            helpers::cipher(),
        )
        .expect("client")
    }

    fn creds(&self, tenant: &str) -> TenantCredentials {
        let s = self.sandbox.settings();
        TenantCredentials {
            tenant_id: tenant.to_string(),
            country: Country::SI,
            organisation_id: s.organisation_id,
            login: MinimaxLogin {
                username: s.username.clone(),
                password: s.password.clone(),
                client_id: Some(s.client_id.clone()),
                client_secret: Some(s.client_secret.clone()),
                api_base: Some(self.sandbox.api_base(Country::SI)),
                token_url: Some(self.sandbox.token_url(Country::SI)),
            },
        }
    }

    fn tenant(&self, mm: &Minimax) -> TenantClient {
        mm.tenant(self.creds("shop-1"))
    }

    async fn cleanup(self) {
        helpers::delete_keys(&format!("{}:*", self.prefix)).await;
        self.sandbox.stop().await;
    }
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}
