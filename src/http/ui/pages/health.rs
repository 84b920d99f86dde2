//! A tenant's health in one word (ok, blocked, breaker, …), its badge and its budget
//! line, as the tenant list, the tenant page and the overview show them.

use serde_json::Value;

use super::{num, s};
use crate::http::ui::html::esc;

/// One word for a tenant's state and the text that explains it.
pub fn health(status: &Value) -> (&'static str, String) {
    let cred = &status["credentials"];
    if s(cred, "state") == "blocked" {
        return (
            "blocked",
            format!(
                "credentials blocked since {}: {}",
                s(cred, "since"),
                s(cred, "reason")
            ),
        );
    }
    // The organisation's circuit breaker (`minimax_circuit` of the status).
    let circuit = &status["minimax_circuit"];
    match s(circuit, "state") {
        "open" => {
            return (
                "breaker",
                format!(
                    "Minimax unavailable: circuit open until {}",
                    s(circuit, "until")
                ),
            )
        }
        "half_open" => return ("breaker", "Minimax unavailable: probing (half-open)".into()),
        _ => {}
    }
    let budget = &status["budget"];
    if let Some(until) = budget["paused_until"].as_str() {
        return ("paused", format!("paused by Minimax until {until}"));
    }
    for (window, remaining) in [
        ("daily", "daily_remaining"),
        ("monthly", "monthly_remaining"),
    ] {
        if budget[remaining].as_u64() == Some(0) {
            return ("paused", format!("{window} call budget spent"));
        }
    }
    ("ok", "connected".into())
}

pub(super) fn health_badge(status: &Value) -> String {
    let (kind, text) = health(status);
    let class = match kind {
        "ok" => "ok",
        "paused" => "warn",
        _ => "bad",
    };
    let label = match kind {
        "ok" => "ok",
        "blocked" => "blocked",
        "breaker" => "breaker open",
        _ => "paused",
    };
    format!(
        "<span class=\"badge {class}\" title=\"{}\">{label}</span> <span class=\"why\">{}</span>",
        esc(&text),
        esc(&text)
    )
}

pub(super) fn budget_text(status: &Value) -> String {
    let b = &status["budget"];
    let part = |used: &str, limit: &str| match b[limit].as_u64() {
        Some(l) if l > 0 => format!("{} / {l}", num(&b[used])),
        _ => format!("{} / ∞", num(&b[used])),
    };
    format!(
        "24 h {} · month {}",
        part("last_24h", "daily_limit"),
        part("this_month", "monthly_limit")
    )
}

#[cfg(test)]
mod tests {
    use super::health;
    use serde_json::json;

    #[test]
    fn an_open_or_probing_circuit_shows_as_breaker() {
        let status = |state: &str| {
            json!({"credentials": {"state": "ok"}, "budget": {},
                   "minimax_circuit": {"state": state, "until": "2026-12-02T06:00:00Z"}})
        };
        let (word, text) = health(&status("open"));
        assert_eq!(word, "breaker");
        assert!(text.contains("2026-12-02T06:00:00Z"), "{text}");
        assert_eq!(health(&status("half_open")).0, "breaker");
        assert_ne!(health(&status("closed")).0, "breaker");
    }
}
