//! Reading a tenant body: a JSON object checked field by field (every wrong field named
//! by its path, no submitted value echoed), and the JSON merge patch a `PATCH` applies
//! to the stored tenant.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::http::admin::{internal, AdminError};
use crate::http::ApiError;
use crate::mapping::BookingSettings;
use crate::minimax::Country;
use crate::tenants::{shown_key, MinimaxLoginInput, Tenant, TenantInput};
use crate::webshop::{from_value_with_path, reader::problem_of, ROOT_PATH};

/// Parses a request body that must be a JSON object: malformed JSON is `400`, any other
/// JSON value `422`. Errors name the path and never the text around it.
pub(super) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, AdminError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut map)) => {
            map.values_mut().for_each(integral_numbers);
            Ok(map)
        }
        Ok(_) => Err(AdminError::Invalid(vec![format!(
            "{ROOT_PATH}: expected a JSON object"
        )])),
        Err(e) => {
            let p = problem_of(&e, body);
            Err(AdminError::Api(
                ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {p}"))
                    .with_field(p.path),
            ))
        }
    }
}

/// `1.0` and `1e3` are the integers 1 and 1000 (as JSON Schema counts them), so integer
/// fields accept them like the OpenAPI document says.
fn integral_numbers(v: &mut Value) {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(m) => m.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Checks one member's shape; a problem names its full path (`minimax.password`), never
/// the submitted value.
fn check_field<T: DeserializeOwned>(
    map: &Map<String, Value>,
    field: &str,
    required: bool,
    problems: &mut Vec<String>,
) {
    match map.get(field) {
        None if required => problems.push(format!("{field}: required")),
        None => {}
        Some(v) => {
            if let Err(p) = from_value_with_path::<T>(v) {
                let path = if p.path == ROOT_PATH {
                    field.to_owned()
                } else if p.path.starts_with('[') {
                    format!("{field}{}", p.path)
                } else {
                    format!("{field}.{}", p.path)
                };
                problems.push(format!("{path}: {}", p.reason));
            }
        }
    }
}

const TOP_LEVEL: [&str; 7] = [
    "id",
    "name",
    "country",
    "organisation_id",
    "minimax",
    "webhook_secrets",
    "settings",
];

/// Turns a JSON object into a [`TenantInput`], reporting every field whose shape is
/// wrong (serde alone stops at the first one and does not say which field it was).
pub(super) fn tenant_input(map: Map<String, Value>) -> Result<TenantInput, AdminError> {
    let mut problems = Vec::new();
    for key in map.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            problems.push(format!(
                "{}: unknown field (expected one of {})",
                shown_key(key),
                TOP_LEVEL.join(", ")
            ));
        }
    }
    check_field::<Option<String>>(&map, "id", false, &mut problems);
    check_field::<Option<String>>(&map, "name", false, &mut problems);
    check_field::<Country>(&map, "country", true, &mut problems);
    check_field::<i64>(&map, "organisation_id", true, &mut problems);
    check_field::<MinimaxLoginInput>(&map, "minimax", true, &mut problems);
    check_field::<BTreeMap<String, Option<SecretString>>>(
        &map,
        "webhook_secrets",
        false,
        &mut problems,
    );
    check_field::<Option<BookingSettings>>(&map, "settings", false, &mut problems);
    // A binary float cannot carry a decimal amount exactly: fractions come as strings.
    for field in ["total_tolerance", "max_rounding_correction"] {
        let amount = map.get("settings").and_then(|s| s.get(field));
        if amount.is_some_and(|t| t.is_number() && !t.is_i64() && !t.is_u64()) {
            problems.push(format!(
                "settings.{field}: give a fraction as a string (\"0.05\"), not a JSON number"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(AdminError::Invalid(problems));
    }
    from_value_with_path(&Value::Object(map)).map_err(|p| AdminError::Invalid(vec![p.to_string()]))
}

/// RFC 7396 JSON merge patch: objects merge member by member, `null` removes a member,
/// anything else replaces. One extension for lists (RFC 7396 can only replace them):
/// `{"$add": [..]}` / `{"$remove": [..]}` in place of a list appends the values it does
/// not hold yet / removes values, so a list can grow without resending its defaults.
pub(super) fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(members)
            if target.is_array()
                && !members.is_empty()
                && members
                    .iter()
                    .all(|(k, v)| (k == "$add" || k == "$remove") && v.is_array()) =>
        {
            if let Value::Array(list) = target {
                for (op, values) in members {
                    let Value::Array(values) = values else {
                        continue;
                    };
                    for v in values {
                        if op == "$remove" {
                            list.retain(|x| *x != v);
                        } else if !list.contains(&v) {
                            list.push(v);
                        }
                    }
                }
            }
        }
        Value::Object(members) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in members {
                    if v.is_null() {
                        t.remove(&k);
                    } else {
                        merge(t.entry(k).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other,
    }
}

/// The stored tenant as a merge-patch target: every field except the secrets, which
/// are not needed because [`TenantInput::into_tenant`] keeps what the input leaves out.
pub(super) fn patch_base(t: &Tenant) -> Result<Value, AdminError> {
    let settings = serde_json::to_value(&t.settings).map_err(|e| {
        tracing::error!(error = %e, "cannot serialise booking settings");
        AdminError::Api(internal())
    })?;
    Ok(json!({
        "name": t.name,
        "country": t.country,
        "organisation_id": t.organisation_id,
        "minimax": {
            "username": t.minimax.username,
            "client_id": t.minimax.client_id,
            "api_base": t.minimax.api_base,
            "token_url": t.minimax.token_url,
        },
        "webhook_secrets": {},
        "settings": settings,
    }))
}

/// Gives `null` its merge-patch meaning (remove) for the secrets: the client secret
/// becomes an empty string (what the tenant input reads as "remove"), the webhook secrets
/// are taken out of the patch and returned with their `null`s intact (the tenant input
/// reads `null` as "remove", while [`merge`] would drop them); the password cannot be
/// removed. Returns whether the settings are to be reset, and the webhook secrets.
pub(super) fn prepare_patch(
    patch: &mut Map<String, Value>,
    existing: &Tenant,
    problems: &mut Vec<String>,
) -> (bool, Option<Value>) {
    // Removing the name is going back to its default, the id.
    if let Some(v @ Value::Null) = patch.get_mut("name") {
        *v = Value::String(existing.id.to_string());
    }
    match patch.get_mut("minimax") {
        Some(Value::Null) => problems.push("minimax: cannot be removed".into()),
        Some(Value::Object(m)) => {
            if m.get("password").is_some_and(Value::is_null) {
                problems.push("minimax.password: cannot be removed; send the new one".into());
            }
            if m.get("username").is_some_and(Value::is_null) {
                problems.push("minimax.username: cannot be removed; send the new one".into());
            }
            if let Some(v @ Value::Null) = m.get_mut("client_secret") {
                *v = Value::String(String::new());
            }
        }
        _ => {}
    }
    let secrets = match patch.remove("webhook_secrets") {
        Some(Value::Null) => Some(Value::Object(
            existing
                .webhook_secrets
                .keys()
                .map(|k| (k.clone(), Value::Null))
                .collect(),
        )),
        other => other,
    };
    (patch.get("settings").is_some_and(Value::is_null), secrets)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix_web::http::StatusCode;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": 1, "s": {"x": 1, "y": 2}, "m": {"k": "v"}});
        merge(
            &mut doc,
            json!({"a": 2, "s": {"y": null, "z": 3}, "n": [1]}),
        );
        assert_eq!(
            doc,
            json!({"a": 2, "s": {"x": 1, "z": 3}, "m": {"k": "v"}, "n": [1]})
        );
    }

    #[test]
    fn merge_patch_can_add_to_and_remove_from_a_list() {
        let mut doc = json!({"keys": ["a", "b"], "o": {}});
        merge(
            &mut doc,
            json!({"keys": {"$add": ["c", "a"], "$remove": ["b"]}}),
        );
        assert_eq!(doc["keys"], json!(["a", "c"]));
        // Not a list: the object is an ordinary value.
        merge(&mut doc, json!({"o": {"$add": [1]}}));
        assert_eq!(doc["o"], json!({"$add": [1]}));
        // A plain list still replaces.
        merge(&mut doc, json!({"keys": ["z"]}));
        assert_eq!(doc["keys"], json!(["z"]));
    }

    #[test]
    fn type_errors_name_the_field_and_hide_the_value() {
        let body = json!({
            "country": "XX",
            "organisation_id": "not-a-number",
            "minimax": {"username": "u", "password": 12_345_678_987_i64},
            "bogus": 1,
        });
        let Err(AdminError::Invalid(p)) = tenant_input(body.as_object().unwrap().clone()) else {
            panic!("expected invalid");
        };
        let all = p.join("\n");
        assert!(all.contains("country: unknown variant"), "{all}");
        assert!(all.contains("minimax.password: expected"), "{all}");
        assert!(!all.contains("XX"), "{all}");
        assert!(all.contains("organisation_id:"), "{all}");
        assert!(all.contains("bogus: unknown field"), "{all}");
        assert!(!all.contains("12345678987"), "{all}");
        assert!(!all.contains("not-a-number"), "{all}");
    }

    #[test]
    fn integral_floats_count_as_integers() {
        let m =
            parse_object(br#"{"organisation_id": 149727468.0, "s": {"d": [3e2, 1.5]}}"#).unwrap();
        assert_eq!(m["organisation_id"], json!(149727468));
        assert_eq!(m["s"]["d"], json!([300, 1.5]));
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        match parse_object(b"{\"country\": ") {
            Err(AdminError::Api(e)) => assert_eq!(e.status, StatusCode::BAD_REQUEST),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(parse_object(b"[1]"), Err(AdminError::Invalid(_))));
    }
}
