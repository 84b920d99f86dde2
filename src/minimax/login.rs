//! A Minimax login, the one shape of a tenant's Minimax credentials: the tenant record
//! holds it, the client is bound to it ([`TenantCredentials`]) and the admin API shows
//! a view of it ([`MinimaxLoginView`]) that says whether each secret is set.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::Country;

/// A Minimax login. Left-out client credentials and URLs are the country's defaults
/// (`[minimax.<cc>]`). `Debug` shows no secret.
#[derive(Clone)]
pub struct MinimaxLogin {
    pub username: String,
    pub password: SecretString,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub api_base: Option<String>,
    pub token_url: Option<String>,
}

impl std::fmt::Debug for MinimaxLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinimaxLogin")
            .field("username", &self.username)
            .field("client_id", &self.client_id)
            .field("api_base", &self.api_base)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

/// A login as the admin API shows it: whether each secret is set, never its value.
#[derive(Debug, Clone, Serialize)]
pub struct MinimaxLoginView {
    pub username: String,
    pub password_set: bool,
    pub client_id: Option<String>,
    pub client_secret_set: bool,
    pub api_base: Option<String>,
    pub token_url: Option<String>,
}

impl From<&MinimaxLogin> for MinimaxLoginView {
    fn from(login: &MinimaxLogin) -> Self {
        MinimaxLoginView {
            username: login.username.clone(),
            password_set: !login.password.expose_secret().is_empty(),
            client_id: login.client_id.clone(),
            client_secret_set: login.client_secret.is_some(),
            api_base: login.api_base.clone(),
            token_url: login.token_url.clone(),
        }
    }
}

/// A tenant's Minimax identity: its login and the organisation it books into. `Debug`
/// shows no secret.
#[derive(Clone, Debug)]
pub struct TenantCredentials {
    pub tenant_id: String,
    pub country: Country,
    pub organisation_id: i64,
    pub login: MinimaxLogin,
}
