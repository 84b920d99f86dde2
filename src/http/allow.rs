//! `405 Method Not Allowed` with the `Allow` header (RFC 9110) for every documented path.
//!
//! The methods of each path are read once from the served OpenAPI document, so the
//! header can never disagree with the contract (and `tests/it/admin.rs` checks that the
//! document names every route). A request whose path matches a documented template but
//! whose method none of the matching templates lists answers `405` with `Allow`;
//! everything else passes untouched (unknown paths stay `404`, and `/admin` answers
//! `401` before this sees a route).

use std::sync::OnceLock;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::HttpResponse;

use crate::http::error::ErrorBody;

struct Template {
    segments: Vec<String>,
    methods: Vec<String>,
}

fn templates() -> &'static [Template] {
    static T: OnceLock<Vec<Template>> = OnceLock::new();
    T.get_or_init(|| {
        let doc: serde_json::Value =
            serde_json::from_str(crate::http::openapi::OPENAPI_JSON).unwrap_or_default();
        let Some(paths) = doc["paths"].as_object() else {
            return Vec::new();
        };
        paths
            .iter()
            .map(|(path, item)| Template {
                segments: path.split('/').map(str::to_owned).collect(),
                methods: item
                    .as_object()
                    .map(|m| {
                        m.keys()
                            .filter(|k| {
                                matches!(
                                    k.as_str(),
                                    "get"
                                        | "put"
                                        | "post"
                                        | "delete"
                                        | "patch"
                                        | "head"
                                        | "options"
                                )
                            })
                            .map(|k| k.to_uppercase())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    })
}

/// The methods of the documented path `path` stands for; `None` if it matches none.
/// Where templates overlap (`…/jobs/retry-dead` and `…/jobs/{job_id}`), the one with
/// more literal segments is the path meant, as the router decides.
pub fn allowed(path: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, &Template)> = None;
    for t in templates() {
        let fits = t.segments.len() == parts.len()
            && t.segments.iter().zip(&parts).all(|(s, p)| {
                if s.starts_with('{') && s.ends_with('}') {
                    !p.is_empty()
                } else {
                    s == p
                }
            });
        if !fits {
            continue;
        }
        let literal = t.segments.iter().filter(|s| !s.starts_with('{')).count();
        if best.is_none_or(|(n, _)| literal > n) {
            best = Some((literal, t));
        }
    }
    best.map(|(_, t)| t.methods.clone())
}

pub async fn method_not_allowed(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let method = req.method().as_str().to_owned();
    let decided = allowed(req.path()).filter(|m| !m.contains(&method));
    let Some(methods) = decided else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let res = next.call(req).await?;
    if !matches!(
        res.status(),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    ) {
        return Ok(res.map_into_left_body());
    }
    let list = methods.join(", ");
    let answer = HttpResponse::MethodNotAllowed()
        .insert_header((
            header::ALLOW,
            HeaderValue::from_str(&list).unwrap_or(HeaderValue::from_static("GET")),
        ))
        .json(ErrorBody {
            error: "method_not_allowed".into(),
            message: format!("the method is not allowed here; allowed: {list}"),
            field: None,
        });
    let (req, _) = res.into_parts();
    Ok(ServiceResponse::new(req, answer).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_template_decides() {
        let post = vec!["POST".to_owned()];
        assert_eq!(allowed("/admin/tenants/a/jobs/retry-dead"), Some(post));
        let job = allowed("/admin/tenants/a/jobs/j1").unwrap_or_default();
        assert!(job.contains(&"GET".to_owned()) && job.contains(&"DELETE".to_owned()));
        assert_eq!(allowed("/metrics"), Some(vec!["GET".to_owned()]));
        assert_eq!(allowed("/ui/tenants"), None);
        assert_eq!(allowed("/admin/tenants//status"), None);
    }
}
