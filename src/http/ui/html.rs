//! HTML building for the dashboard: escaping and the page frame.
//!
//! Guarantee: every value that reaches a page goes through [`esc`] (text and attribute
//! values alike), so names, addresses, order numbers and error texts from shops are
//! shown as text and can never become markup. Pages are built with `format!`/`push_str`
//! of escaped values only; there is no "raw" escape hatch besides constant markup.

use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value (ids, order numbers).
pub fn url_part(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Which navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Tenants,
    Dead,
    Sandbox,
    None,
}

/// What the frame needs besides the content.
pub struct Frame<'a> {
    pub title: &'a str,
    pub nav: Nav,
    /// The session's CSRF token (forms and the refresh script read it); `None` signed out.
    pub csrf: Option<&'a str>,
    pub demo: bool,
}

/// The whole page: head, skip link, navigation, `<main>` with `body`.
pub fn page(f: &Frame<'_>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · minimax-connector</title>\
         <link rel=\"stylesheet\" href=\"/ui/assets/app.css\">\
         <script src=\"/ui/assets/app.js\" defer></script>",
        esc(f.title)
    );
    if let Some(token) = f.csrf {
        let _ = write!(out, "<meta name=\"csrf-token\" content=\"{}\">", esc(token));
    }
    out.push_str("</head><body><a class=\"skip\" href=\"#main\">Skip to content</a>");
    if let Some(token) = f.csrf {
        out.push_str(
            "<header><nav aria-label=\"Main\"><span class=\"brand\">minimax-connector</span><ul>",
        );
        let mut item = |nav: Nav, href: &str, label: &str| {
            let current = if nav == f.nav {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(out, "<li><a href=\"{href}\"{current}>{label}</a></li>");
        };
        item(Nav::Overview, "/ui/", "Overview");
        item(Nav::Tenants, "/ui/tenants", "Tenants");
        item(Nav::Dead, "/ui/dead", "Dead letters");
        if f.demo {
            item(Nav::Sandbox, "/ui/sandbox", "Sandbox");
        }
        let _ = write!(
            out,
            "</ul><form method=\"post\" action=\"/ui/logout\" class=\"logout\">{}\
             <button type=\"submit\">Sign out</button></form></nav></header>",
            csrf_field(token)
        );
    }
    let _ = write!(
        out,
        "<main id=\"main\" tabindex=\"-1\"><h1>{}</h1>{body}</main></body></html>",
        esc(f.title)
    );
    out
}

/// The hidden CSRF field of a form.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A one-button POST form (retry, discard, check…).
pub fn button_form(action: &str, csrf: &str, label: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{}<button type=\"submit\" class=\"{}\">{}</button></form>",
        esc(action),
        csrf_field(csrf),
        esc(class),
        esc(label)
    )
}

/// A region the page script refreshes in place: same id in the fragment answer.
pub fn live(id: &str, inner: &str) -> String {
    format!(
        "<section id=\"{}\" data-live aria-live=\"polite\">{inner}</section>",
        esc(id)
    )
}

/// A state badge; the class is one of a fixed set, the text escaped.
pub fn badge(kind: &str, text: &str) -> String {
    let class = match kind {
        "ok" | "done" => "ok",
        "warn" | "delayed" | "queued" | "running" | "paused" => "warn",
        "bad" | "dead" | "blocked" => "bad",
        _ => "muted",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(text))
}

/// A time as `2026-12-02 04:32:44 UTC`, or an em dash.
pub fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(
        || "—".into(),
        |t| {
            format!(
                "<time datetime=\"{}\">{}</time>",
                t.to_rfc3339(),
                t.format("%Y-%m-%d %H:%M:%S UTC")
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_from_shops_becomes_text() {
        assert_eq!(
            esc("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(esc("\"' &"), "&quot;&#39; &amp;");
        assert_eq!(url_part("a b/#?"), "a+b%2F%23%3F");
    }
}
