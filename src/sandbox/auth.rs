//! The token endpoint (password grant, client credentials in the form or Basic, lockout
//! after N wrong passwords) and the per-organisation call limits (rolling 24 h and
//! month, `429` with `Retry-After` or a configured breach behaviour).

use std::collections::HashMap;

use actix_web::HttpRequest;
use base64::Engine;
use chrono::{Datelike, Utc};
use secrecy::ExposeSecret;
use serde_json::json;

use super::model::Out;
use super::*;

impl SandboxState {
    pub(super) fn token_endpoint(&self, req: &HttpRequest, body: &[u8]) -> Out {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let out = self.grant(req, &form);
        if out.status != 200 {
            lock(&self.shared.counters).token_rejections += 1;
        }
        out
    }

    fn grant(&self, req: &HttpRequest, form: &HashMap<String, String>) -> Out {
        let oauth = |error: &str, desc: &str| {
            Out::json(400, json!({"error": error, "error_description": desc}))
        };
        if form.get("grant_type").map(String::as_str) != Some("password") {
            return oauth(
                "unsupported_grant_type",
                "Only grant_type=password is supported.",
            );
        }
        let basic = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Basic ")
                    .or_else(|| v.strip_prefix("basic "))
            })
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            });
        let (client_id, client_secret) = match basic {
            Some(pair) => pair,
            None => (
                form.get("client_id").cloned().unwrap_or_default(),
                form.get("client_secret").cloned().unwrap_or_default(),
            ),
        };
        let settings = &self.shared.settings;
        if client_id != settings.client_id
            || client_secret != settings.client_secret.expose_secret()
        {
            return oauth("invalid_client", "The client credentials are invalid.");
        }
        if let Some(scope) = form.get("scope") {
            if !matches!(
                scope.as_str(),
                "" | "minimax.si" | "minimax.hr" | "minimax.rs"
            ) {
                return oauth("invalid_scope", "The requested scope is invalid.");
            }
        }
        let username = form.get("username").cloned().unwrap_or_default();
        let password = form.get("password").cloned().unwrap_or_default();
        {
            let mut world = lock(&self.shared.world);
            let Some(user) = world.users.get_mut(&username) else {
                return oauth("invalid_grant", "The user name or password is incorrect.");
            };
            if user.locked {
                return oauth("invalid_grant", "The user name or password is incorrect.");
            }
            if user.password != password {
                user.failures += 1;
                if user.failures >= settings.lockout_after {
                    user.locked = true;
                }
                return oauth("invalid_grant", "The user name or password is incorrect.");
            }
            user.failures = 0;
        }
        let token = format!(
            "sbx.{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let lifetime = self.shared.token_lifetime_secs.load(Ordering::Relaxed);
        lock(&self.shared.tokens).insert(
            token.clone(),
            TokenRec {
                username,
                expires: Utc::now() + chrono::Duration::seconds(lifetime as i64),
            },
        );
        Out::json(
            200,
            json!({"access_token": token, "token_type": "bearer", "expires_in": lifetime,
                   "refresh_token": uuid::Uuid::new_v4().simple().to_string(),
                   "scope": form.get("scope").cloned().unwrap_or_else(|| "minimax.si".into())}),
        )
    }

    /// Counts a call against the organisation's limits; `Some(retry_after)` if refused.
    pub(super) fn over_limit(&self, org: i64) -> Option<u64> {
        let now = Utc::now();
        let mut limits = lock(&self.shared.limits);
        if let Some(until) = limits.paused.get(&org) {
            if *until > now {
                return Some(((*until - now).num_seconds() + 1).max(1) as u64);
            }
        }
        let daily = self.shared.daily_limit.load(Ordering::Relaxed);
        let monthly = self.shared.monthly_limit.load(Ordering::Relaxed);
        let calls = limits.calls.entry(org).or_default();
        while calls
            .front()
            .is_some_and(|t| *t <= now - chrono::Duration::hours(24))
        {
            calls.pop_front();
        }
        if daily > 0 && calls.len() as u64 >= daily {
            let free_at = calls.front().map(|t| *t + chrono::Duration::hours(24));
            return Some(
                free_at
                    .map(|t| (t - now).num_seconds().max(1) as u64)
                    .unwrap_or(3600),
            );
        }
        let (y, m) = (now.year() as u32, now.month());
        let entry = limits.month.entry(org).or_insert((y, m, 0));
        if (entry.0, entry.1) != (y, m) {
            *entry = (y, m, 0);
        }
        if monthly > 0 && u64::from(entry.2) >= monthly {
            return Some(86_400);
        }
        entry.2 += 1;
        limits.calls.entry(org).or_default().push_back(now);
        None
    }
}
