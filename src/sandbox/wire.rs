//! The HTTP side of the sandbox's answers: percent-decoding of path segments, the
//! request kind counters use, and rendering an [`Out`] (or a dropped connection).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::model::{Out, OutBody};

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn kind_of(method: &str, lower: &[String]) -> String {
    let rest = if lower.first().map(String::as_str) == Some("orgs") && lower.len() > 2 {
        &lower[2..]
    } else {
        lower
    };
    let parts: Vec<String> = rest
        .iter()
        .map(|s| {
            if s.parse::<i64>().is_ok() {
                "{id}".to_string()
            } else if s.starts_with("code(") {
                "code()".to_string()
            } else {
                s.clone()
            }
        })
        .collect();
    format!("{} {}", method.to_lowercase(), parts.join("/"))
}

pub(super) fn render(out: Out) -> HttpResponse {
    let mut builder = HttpResponse::build(
        StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    builder.insert_header(("Cache-Control", "no-cache"));
    builder.insert_header(("X-Sandbox", "minimax-fake"));
    if let Some(location) = out.location {
        builder.insert_header(("Location", location));
    }
    if let Some(secs) = out.retry_after {
        builder.insert_header(("Retry-After", secs.to_string()));
    }
    match out.body {
        OutBody::Empty => builder.finish(),
        OutBody::Json(v) => builder
            .content_type("application/json; charset=utf-8")
            .body(serde_json::to_vec(&v).unwrap_or_default()),
        OutBody::Text(t) => builder.content_type("text/html; charset=utf-8").body(t),
    }
}

pub(super) fn dropped() -> HttpResponse {
    // Headers go out, then the body fails: the client sees a broken connection.
    HttpResponse::Ok().streaming(futures::stream::once(async {
        Err::<web::Bytes, std::io::Error>(std::io::Error::other("sandbox dropped the connection"))
    }))
}
