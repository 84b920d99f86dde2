//! The one error type of the Minimax client and what the worker should do with it.
//!
//! Error policy (see also `docs/minimax-client.md`):
//! - connection errors, timeouts, 5xx, a failed token-lock wait → [`MinimaxError::Transient`]
//!   → `Disposition::Unavailable` (with the server's `Retry-After` when it gave one):
//!   retried with capped backoff for the job's whole `max_age`, never dead-lettered by
//!   the attempt count; idempotent calls were already retried inside the attempt;
//! - the organisation's circuit breaker is open (a streak of such failures) →
//!   [`MinimaxError::CircuitOpen`] → `Disposition::WaitUntil` the next probe;
//! - `429` or our own per-organisation budget spent → [`MinimaxError::TenantPaused`] /
//!   [`MinimaxError::BudgetExhausted`] → `Disposition::WaitUntil` (the job waits without
//!   burning attempts);
//! - the token endpoint rejected the credentials → [`MinimaxError::CredentialsRejected`],
//!   and every later call with the same credentials → [`MinimaxError::CredentialsBlocked`];
//!   both `WaitUntil` a little ahead, so jobs wait until an operator changes the credentials;
//! - `401` on an API call is handled inside the client (refresh once, retry); if it
//!   persists it surfaces as [`MinimaxError::Unauthorized`] → `Retry`;
//! - 400/409 with messages → [`MinimaxError::Validation`] (HTML stripped) → `Permanent`;
//! - a stale `RowVersion` → [`MinimaxError::Concurrency`] (the client re-reads and retries
//!   once before surfacing it) → `Retry`;
//! - 404 → [`MinimaxError::NotFound`] → `Permanent`.
//!
//! No variant ever carries a password, client secret or token.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// What the caller (the booking worker) should do with a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Try again later with the usual backoff; `after` is a server hint (`Retry-After`).
    Retry { after: Option<Duration> },
    /// Minimax is unavailable (5xx, timeout, connection error): try again with the
    /// capped backoff until the job's maximum age, without an attempt limit.
    Unavailable { after: Option<Duration> },
    /// Paused tenant, budget spent or blocked credentials: wait until then without
    /// counting an attempt.
    WaitUntil(DateTime<Utc>),
    /// Retrying cannot help (validation, business rule, not found, a bug).
    Permanent,
}

/// Which of the per-organisation budgets is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetWindow {
    Rolling24h,
    Month,
}

impl std::fmt::Display for BudgetWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetWindow::Rolling24h => f.write_str("rolling 24 h"),
            BudgetWindow::Month => f.write_str("calendar month"),
        }
    }
}

/// One validation or business message from Minimax, HTML already stripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationMessage {
    pub message: String,
    pub property: Option<String>,
}

/// Every failure of the Minimax client.
#[derive(Debug, thiserror::Error)]
pub enum MinimaxError {
    #[error("transient Minimax failure: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    #[error("Minimax answered 401 again after a fresh token")]
    Unauthorized,
    #[error("Minimax rejected the credentials: {reason}")]
    CredentialsRejected {
        reason: String,
        retry_at: DateTime<Utc>,
    },
    #[error("credentials are blocked since {since} ({reason}); change them to unblock")]
    CredentialsBlocked {
        reason: String,
        since: DateTime<Utc>,
        retry_at: DateTime<Utc>,
    },
    #[error("tenant paused until {until}")]
    TenantPaused { until: DateTime<Utc> },
    #[error("Minimax is failing for this organisation (circuit {state}); next try at {until}")]
    CircuitOpen {
        state: super::breaker::CircuitState,
        until: DateTime<Utc>,
    },
    #[error("the {window} call budget of the organisation is spent until {until}")]
    BudgetExhausted {
        window: BudgetWindow,
        until: DateTime<Utc>,
    },
    #[error("Minimax refused the request ({status}): {}", join_messages(.messages))]
    Validation {
        status: u16,
        messages: Vec<ValidationMessage>,
    },
    #[error("concurrency error (stale RowVersion): {message}")]
    Concurrency { message: String },
    #[error("not found: {what}")]
    NotFound { what: String },
    #[error("unexpected Minimax response {status}: {detail}")]
    Unexpected { status: u16, detail: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("redis: {0}")]
    Redis(String),
}

fn join_messages(messages: &[ValidationMessage]) -> String {
    let texts: Vec<&str> = messages.iter().map(|m| m.message.as_str()).collect();
    texts.join("; ")
}

impl MinimaxError {
    /// What the worker should do with this error.
    pub fn disposition(&self) -> Disposition {
        match self {
            MinimaxError::Transient { retry_after, .. } => Disposition::Unavailable {
                after: *retry_after,
            },
            MinimaxError::Unauthorized
            | MinimaxError::Concurrency { .. }
            | MinimaxError::Redis(_) => Disposition::Retry { after: None },
            MinimaxError::CredentialsRejected { retry_at, .. }
            | MinimaxError::CredentialsBlocked { retry_at, .. } => {
                Disposition::WaitUntil(*retry_at)
            }
            MinimaxError::TenantPaused { until }
            | MinimaxError::BudgetExhausted { until, .. }
            | MinimaxError::CircuitOpen { until, .. } => Disposition::WaitUntil(*until),
            MinimaxError::Validation { .. }
            | MinimaxError::NotFound { .. }
            | MinimaxError::Config(_) => Disposition::Permanent,
            // An unexpected 4xx will not change by itself; anything else may.
            MinimaxError::Unexpected { status, .. } => {
                if (400..500).contains(status) {
                    Disposition::Permanent
                } else {
                    Disposition::Retry { after: None }
                }
            }
        }
    }

    /// The stripped validation messages, empty for other variants.
    pub fn messages(&self) -> &[ValidationMessage] {
        match self {
            MinimaxError::Validation { messages, .. } => messages,
            _ => &[],
        }
    }

    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        MinimaxError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        // The reqwest error text can contain the URL, never headers or bodies; URLs carry
        // no secrets here (tokens go in headers, passwords in the form body).
        let kind = if err.is_timeout() {
            "timeout"
        } else if err.is_connect() {
            "connect error"
        } else if err.is_body() || err.is_decode() {
            "broken response body"
        } else {
            "request error"
        };
        MinimaxError::transient(format!("{kind}: {}", err.without_url()))
    }
}

impl From<redis::RedisError> for MinimaxError {
    fn from(err: redis::RedisError) -> Self {
        MinimaxError::Redis(err.to_string())
    }
}

impl From<deadpool_redis::PoolError> for MinimaxError {
    fn from(err: deadpool_redis::PoolError) -> Self {
        MinimaxError::Redis(err.to_string())
    }
}

/// Removes HTML tags and decodes the few entities Minimax uses, collapsing whitespace.
/// `<li>` boundaries become "; " so a list of messages stays readable on one line.
pub fn strip_html(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut in_tag = false;
    let mut tag = String::new();
    for ch in input.chars() {
        match (in_tag, ch) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let name = tag.trim_start_matches('/').to_ascii_lowercase();
                let name = name.split_whitespace().next().unwrap_or("");
                if matches!(name, "li" | "br" | "br/" | "p" | "div" | "tr") {
                    out.push_str("; ");
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let parts: Vec<String> = decoded
        .split("; ")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    parts.join("; ")
}

/// Parses `Retry-After`: delta seconds or an HTTP date. Past dates give zero.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    let delta = date.with_timezone(&Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(rename = "Message", alias = "message")]
    message: Option<String>,
    #[serde(rename = "PropertyName", alias = "propertyName")]
    property_name: Option<String>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "ValidationMessages", alias = "validationMessages")]
    validation_messages: Option<Vec<RawMessage>>,
    #[serde(rename = "Message", alias = "message")]
    message: Option<String>,
}

/// Extracts the messages of an error body in any of the shapes Minimax uses:
/// `{"ValidationMessages":[…]}`, a top-level array `[{"Message":…}]`, `{"Message":…}`,
/// or plain text/HTML.
pub fn extract_messages(body: &str) -> Vec<ValidationMessage> {
    fn convert(raw: Vec<RawMessage>) -> Vec<ValidationMessage> {
        raw.into_iter()
            .filter_map(|m| {
                let text = strip_html(m.message.as_deref().unwrap_or(""));
                (!text.is_empty()).then(|| ValidationMessage {
                    message: text,
                    property: m.property_name.filter(|p| !p.is_empty()),
                })
            })
            .collect()
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    if let Ok(list) = serde_json::from_str::<Vec<RawMessage>>(trimmed) {
        return convert(list);
    }
    if let Ok(env) = serde_json::from_str::<RawEnvelope>(trimmed) {
        if let Some(list) = env.validation_messages.filter(|l| !l.is_empty()) {
            return convert(list);
        }
        if let Some(message) = env.message {
            return convert(vec![RawMessage {
                message: Some(message),
                property_name: None,
            }]);
        }
        return Vec::new();
    }
    let text = strip_html(trimmed);
    let text: String = text.chars().take(500).collect();
    if text.is_empty() {
        Vec::new()
    } else {
        vec![ValidationMessage {
            message: text,
            property: None,
        }]
    }
}

/// Whether any message reports a stale RowVersion (matched by substring, whatever the status).
pub fn is_concurrency(messages: &[ValidationMessage]) -> bool {
    messages
        .iter()
        .any(|m| m.message.to_ascii_lowercase().contains("concurrency error"))
}

/// Classifies a non-success API response (not 401, which the client handles itself,
/// and not 429, which needs the tenant pause in Redis).
pub fn classify_status(
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
    what: &str,
) -> MinimaxError {
    let messages = extract_messages(body);
    if is_concurrency(&messages) {
        return MinimaxError::Concurrency {
            message: join_messages(&messages),
        };
    }
    match status {
        404 => MinimaxError::NotFound {
            what: what.to_string(),
        },
        400 | 409 | 422 if !messages.is_empty() => MinimaxError::Validation { status, messages },
        500..=599 => MinimaxError::Transient {
            reason: format!("HTTP {status} from Minimax"),
            retry_after,
        },
        401 => MinimaxError::Unauthorized,
        _ => MinimaxError::Unexpected {
            status,
            detail: join_messages(&messages),
        },
    }
}

/// Token-endpoint error body (`{"error":"invalid_grant","error_description":"…"}`).
#[derive(Deserialize, Default)]
pub(crate) struct OAuthError {
    pub error: Option<String>,
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn strips_html_lists() {
        assert_eq!(
            strip_html("<ul><li>Izstavite lahko le izdane račune.</li></ul>"),
            "Izstavite lahko le izdane račune."
        );
        assert_eq!(
            strip_html("<ul><li>First &amp; one</li><li>Second</li></ul>"),
            "First & one; Second"
        );
        assert_eq!(strip_html("plain  text\n here"), "plain text here");
        assert_eq!(strip_html("<b>bold</b> word"), "bold word");
    }

    #[test]
    fn parses_retry_after() {
        let now = Utc.with_ymd_and_hms(2024, 10, 9, 12, 0, 0).unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 09 Oct 2024 12:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 09 Oct 2024 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn classifies_envelope_409_as_validation() {
        let body = r#"{"ValidationMessages":[{"Message":"<ul><li>Izstavite lahko le izdane račune/predračune v osnutku.</li></ul>","PropertyName":"BusinessLogic"}],"Data":null}"#;
        let err = classify_status(409, body, None, "x");
        assert_eq!(err.disposition(), Disposition::Permanent);
        assert_eq!(
            err.messages()[0].message,
            "Izstavite lahko le izdane račune/predračune v osnutku."
        );
        assert_eq!(err.messages()[0].property.as_deref(), Some("BusinessLogic"));
    }

    #[test]
    fn classifies_array_form_and_concurrency() {
        let body = r#"[{"Message":"<ul><li>Name is required</li></ul>","PropertyName":"Name"}]"#;
        let err = classify_status(400, body, None, "x");
        assert!(matches!(err, MinimaxError::Validation { status: 400, .. }));
        let body =
            r#"[{"Message":"Concurrency error - record changed by another action (RowVersion)"}]"#;
        assert!(matches!(
            classify_status(409, body, None, "x"),
            MinimaxError::Concurrency { .. }
        ));
        let body = r#"{"Message":"Concurrency error - record changed"}"#;
        assert!(matches!(
            classify_status(400, body, None, "x"),
            MinimaxError::Concurrency { .. }
        ));
    }

    #[test]
    fn classifies_status_codes() {
        assert!(matches!(
            classify_status(404, "", None, "customer"),
            MinimaxError::NotFound { .. }
        ));
        let err = classify_status(503, "<html>down</html>", Some(Duration::from_secs(5)), "x");
        assert_eq!(
            err.disposition(),
            Disposition::Unavailable {
                after: Some(Duration::from_secs(5))
            }
        );
        assert_eq!(
            classify_status(403, "", None, "x").disposition(),
            Disposition::Permanent
        );
        let until = Utc::now();
        assert_eq!(
            MinimaxError::TenantPaused { until }.disposition(),
            Disposition::WaitUntil(until)
        );
        assert_eq!(
            MinimaxError::CredentialsBlocked {
                reason: "invalid_grant".into(),
                since: until,
                retry_at: until
            }
            .disposition(),
            Disposition::WaitUntil(until)
        );
    }
}
