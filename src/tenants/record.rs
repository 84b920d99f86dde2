//! The tenant as the service uses it, its admin view and its submitted form, and the
//! checks a submitted tenant passes before it is stored.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::mapping::BookingSettings;
use crate::minimax::{Country, MinimaxLogin, MinimaxLoginView, TenantCredentials};
use crate::webshop::Platform;

use super::{TenantError, TenantId};

/// A tenant as the service uses it (secrets in the clear, in memory only).
#[derive(Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub country: Country,
    pub organisation_id: i64,
    pub minimax: MinimaxLogin,
    pub webhook_secrets: BTreeMap<String, SecretString>,
    pub settings: BookingSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("id", &self.id)
            .field("country", &self.country)
            .field("organisation_id", &self.organisation_id)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    pub fn credentials(&self) -> TenantCredentials {
        TenantCredentials {
            tenant_id: self.id.to_string(),
            country: self.country,
            organisation_id: self.organisation_id,
            login: self.minimax.clone(),
        }
    }

    /// The admin API's view: no secret values.
    pub fn view(&self) -> TenantView {
        TenantView {
            id: self.id.clone(),
            name: self.name.clone(),
            country: self.country,
            organisation_id: self.organisation_id,
            minimax: MinimaxLoginView::from(&self.minimax),
            webhook_secrets_set: Platform::ALL
                .into_iter()
                .map(|p| {
                    (
                        p.as_str().to_owned(),
                        self.webhook_secrets.contains_key(p.as_str()),
                    )
                })
                .collect(),
            settings: self.settings.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A tenant without secret values.
#[derive(Debug, Clone, Serialize)]
pub struct TenantView {
    pub id: TenantId,
    pub name: String,
    pub country: Country,
    pub organisation_id: i64,
    pub minimax: MinimaxLoginView,
    pub webhook_secrets_set: BTreeMap<String, bool>,
    pub settings: BookingSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The Minimax login as submitted; secrets may be left out to keep the stored ones.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MinimaxLoginInput {
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub api_base: Option<String>,
    pub token_url: Option<String>,
}

/// A tenant as submitted to `PUT /admin/tenants/{id}` or seeded from the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantInput {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub country: Country,
    pub organisation_id: i64,
    pub minimax: MinimaxLoginInput,
    /// Platform name → secret; `null` removes a secret. Degenerate secrets (empty, blank,
    /// short, `whsec_` that is not base64 of at least 16 bytes) are refused.
    #[serde(default)]
    pub webhook_secrets: BTreeMap<String, Option<SecretString>>,
    #[serde(default)]
    pub settings: Option<BookingSettings>,
}

/// Shortest accepted webhook secret, in characters (plain) or decoded bytes (`whsec_`).
pub const MIN_SECRET_LEN: usize = 16;
/// Longest accepted secret or password, in characters.
pub const MAX_SECRET_LEN: usize = 1024;
/// Longest accepted name, code, prefix or other short text, in characters.
pub const MAX_TEXT_LEN: usize = 255;
/// Longest accepted URL, in characters.
pub const MAX_URL_LEN: usize = 2048;
/// Most entries accepted in a settings list or map.
pub const MAX_ENTRIES: usize = 100;

/// Why a webhook secret is not worth the name, or `None` when it is. Never says what the
/// secret is. `whsec_` secrets are Standard Webhooks keys: base64 of the key bytes.
pub fn secret_problem(secret: &SecretString) -> Option<&'static str> {
    use base64::Engine as _;
    let raw = secret.expose_secret();
    if raw.trim().is_empty() {
        return Some("must not be empty or blank (send null to remove the secret)");
    }
    if raw.chars().count() > MAX_SECRET_LEN {
        return Some("expected at most 1024 characters");
    }
    if let Some(b64) = raw.strip_prefix("whsec_") {
        return match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            Err(_) => Some("a whsec_ secret must be valid base64"),
            Ok(key) if key.len() < MIN_SECRET_LEN => {
                Some("a whsec_ secret must decode to at least 16 bytes")
            }
            Ok(_) => None,
        };
    }
    if raw.chars().count() < MIN_SECRET_LEN {
        return Some("expected at least 16 characters");
    }
    None
}

fn check_len(field: &str, v: Option<&str>, max: usize, problems: &mut Vec<String>) {
    if v.is_some_and(|v| v.chars().count() > max) {
        problems.push(format!("{field}: expected at most {max} characters"));
    }
}

/// Size limits of the booking settings' texts, lists and maps (they are stored with the
/// tenant and read on every booking).
fn settings_size_problems(s: &BookingSettings, problems: &mut Vec<String>) {
    let texts: [(&str, Option<&str>); 11] = [
        (
            "settings.customer_code_prefix",
            Some(&s.customer_code_prefix),
        ),
        (
            "settings.catch_all_customer_code",
            Some(&s.catch_all_customer_code),
        ),
        (
            "settings.catch_all_customer_name",
            Some(&s.catch_all_customer_name),
        ),
        ("settings.generic_item_prefix", Some(&s.generic_item_prefix)),
        ("settings.shipping_item_code", Some(&s.shipping_item_code)),
        ("settings.fee_item_code", Some(&s.fee_item_code)),
        (
            "settings.default_payment_method",
            s.default_payment_method.as_deref(),
        ),
        (
            "settings.document_numbering",
            s.document_numbering.as_deref(),
        ),
        (
            "settings.invoice_report_template",
            s.invoice_report_template.as_deref(),
        ),
        (
            "settings.credit_note_report_template",
            s.credit_note_report_template.as_deref(),
        ),
        ("settings.cashier_employee", s.cashier_employee.as_deref()),
    ];
    for (field, v) in texts {
        check_len(field, v, MAX_TEXT_LEN, problems);
    }
    let maps = [
        ("settings.vat_rate_codes", &s.vat_rate_codes),
        ("settings.payment_methods", &s.payment_methods),
    ];
    for (field, map) in maps {
        if map.len() > MAX_ENTRIES {
            problems.push(format!("{field}: expected at most {MAX_ENTRIES} entries"));
        }
        if map
            .iter()
            .any(|(k, v)| k.chars().count() > MAX_TEXT_LEN || v.chars().count() > MAX_TEXT_LEN)
        {
            problems.push(format!(
                "{field}: keys and values must be at most {MAX_TEXT_LEN} characters"
            ));
        }
    }
    if s.woo_vat_meta_keys.len() > MAX_ENTRIES {
        problems.push(format!(
            "settings.woo_vat_meta_keys: expected at most {MAX_ENTRIES} entries"
        ));
    }
    if s.woo_vat_meta_keys
        .iter()
        .any(|k| k.chars().count() > MAX_TEXT_LEN)
    {
        problems.push(format!(
            "settings.woo_vat_meta_keys: entries must be at most {MAX_TEXT_LEN} characters"
        ));
    }
}

/// A member name of caller input as it may appear in an error path: plain names as
/// they are, anything else as `?` (it is caller text).
pub fn shown_key(key: &str) -> &str {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        key
    } else {
        "?"
    }
}

fn check_url(field: &str, v: &Option<String>, problems: &mut Vec<String>) {
    if let Some(u) = v {
        if url::Url::parse(u)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            problems.push(format!("{field}: expected an http(s) URL"));
        }
    }
}

impl TenantInput {
    /// Builds the tenant to store: `existing` supplies secrets the input leaves out.
    pub fn into_tenant(self, id: &str, existing: Option<&Tenant>) -> Result<Tenant, TenantError> {
        let mut problems = Vec::new();
        let parsed = TenantId::parse(id);
        if let Err(e) = &parsed {
            problems.push(format!("id: {e}"));
        }
        if let Some(body_id) = &self.id {
            if body_id != id {
                problems.push("id: differs from the id in the URL path".into());
            }
        }
        check_len("name", self.name.as_deref(), MAX_TEXT_LEN, &mut problems);
        let m = &self.minimax;
        check_len(
            "minimax.username",
            m.username.as_deref(),
            MAX_TEXT_LEN,
            &mut problems,
        );
        check_len(
            "minimax.password",
            m.password.as_ref().map(|p| p.expose_secret()),
            MAX_SECRET_LEN,
            &mut problems,
        );
        check_len(
            "minimax.client_id",
            m.client_id.as_deref(),
            MAX_TEXT_LEN,
            &mut problems,
        );
        check_len(
            "minimax.client_secret",
            m.client_secret.as_ref().map(|p| p.expose_secret()),
            MAX_SECRET_LEN,
            &mut problems,
        );
        check_len(
            "minimax.api_base",
            m.api_base.as_deref(),
            MAX_URL_LEN,
            &mut problems,
        );
        check_len(
            "minimax.token_url",
            m.token_url.as_deref(),
            MAX_URL_LEN,
            &mut problems,
        );
        if self.organisation_id <= 0 {
            problems.push(
                "organisation_id: expected the Minimax organisation id (a positive number)".into(),
            );
        }
        let username = self
            .minimax
            .username
            .clone()
            .or_else(|| existing.map(|e| e.minimax.username.clone()))
            .unwrap_or_default();
        if username.trim().is_empty() {
            problems.push("minimax.username: required".into());
        }
        let password = match (&self.minimax.password, existing) {
            (Some(p), _) if !p.expose_secret().is_empty() => Some(p.clone()),
            (_, Some(e)) => Some(e.minimax.password.clone()),
            _ => None,
        };
        if password.is_none() {
            problems.push("minimax.password: required for a new tenant".into());
        }
        let client_secret = match (&self.minimax.client_secret, existing) {
            (Some(s), _) if s.expose_secret().is_empty() => None,
            (Some(s), _) => Some(s.clone()),
            (None, Some(e)) => e.minimax.client_secret.clone(),
            (None, None) => None,
        };
        check_url("minimax.api_base", &self.minimax.api_base, &mut problems);
        check_url("minimax.token_url", &self.minimax.token_url, &mut problems);
        let mut secrets = existing
            .map(|e| e.webhook_secrets.clone())
            .unwrap_or_default();
        for (platform, secret) in self.webhook_secrets {
            if platform.parse::<Platform>().is_err() {
                problems.push(format!(
                    "webhook_secrets.{}: unknown platform (expected woocommerce, shopify or generic)",
                    shown_key(&platform)
                ));
                continue;
            }
            match secret {
                None => {
                    secrets.remove(&platform);
                }
                Some(secret) => match secret_problem(&secret) {
                    Some(problem) => {
                        problems.push(format!("webhook_secrets.{platform}: {problem}"))
                    }
                    None => {
                        secrets.insert(platform, secret);
                    }
                },
            }
        }
        let settings = self
            .settings
            .or_else(|| existing.map(|e| e.settings.clone()))
            .unwrap_or_default();
        problems.extend(settings.problems());
        settings_size_problems(&settings, &mut problems);
        let id = match parsed {
            Ok(id) if problems.is_empty() => id,
            _ => return Err(TenantError::Invalid(problems)),
        };
        let now = Utc::now();
        Ok(Tenant {
            id: id.clone(),
            name: self
                .name
                .or_else(|| existing.map(|e| e.name.clone()))
                .unwrap_or_else(|| id.to_string()),
            country: self.country,
            organisation_id: self.organisation_id,
            minimax: MinimaxLogin {
                username,
                password: password.unwrap_or_default(),
                client_id: self.minimax.client_id.filter(|c| !c.is_empty()),
                client_secret,
                api_base: self.minimax.api_base,
                token_url: self.minimax.token_url,
            },
            webhook_secrets: secrets,
            settings,
            created_at: existing.map(|e| e.created_at).unwrap_or(now),
            updated_at: now,
        })
    }
}
