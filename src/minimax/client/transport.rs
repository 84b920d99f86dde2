//! The HTTP layer every call goes through: URLs, the token (refreshed once on `401`),
//! admission (rate limit, budgets, circuit breaker), `429` pauses, retries within the
//! attempt for reads and conditional writes, and the typed helpers the resources use
//! (`get_json`, `create`, `put`, `put_action`).

use chrono::Utc;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;
use url::Url;

use crate::minimax::breaker::CallOutcome;
use crate::minimax::error::{classify_status, parse_retry_after, MinimaxError, ValidationMessage};
use crate::minimax::models::ActionResult;
use crate::minimax::TenantClient;

/// A raw API answer (401 and 429 are already handled).
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) location: Option<String>,
    pub(super) retry_after: Option<std::time::Duration>,
    pub(super) body: String,
}

/// The new record's id from a `Location` header: the `id` query value, else the last
/// path segment (`…/api/orgs/1/items/7299224?id=7299224`).
pub fn id_from_location(location: &str) -> Option<i64> {
    let url = Url::parse(location)
        .or_else(|_| Url::parse("http://relative.invalid/").and_then(|b| b.join(location)))
        .ok()?;
    if let Some((_, v)) = url
        .query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case("id"))
    {
        if let Ok(id) = v.parse() {
            return Some(id);
        }
    }
    url.path_segments()?
        .rev()
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

pub(super) fn bad_input(message: &str) -> MinimaxError {
    MinimaxError::Validation {
        status: 0,
        messages: vec![ValidationMessage {
            message: message.to_string(),
            property: None,
        }],
    }
}

pub(super) fn code_segment(kind: &str, code: &str) -> Result<String, MinimaxError> {
    // Minimax answers an empty code with an error instead of 404: refuse it here.
    if code.trim().is_empty() {
        return Err(bad_input(&format!("empty {kind} code")));
    }
    Ok(format!("code({code})"))
}

fn parse_json<T: DeserializeOwned>(reply: &Reply, what: &str) -> Result<T, MinimaxError> {
    serde_json::from_str(&reply.body).map_err(|e| MinimaxError::Unexpected {
        status: reply.status,
        detail: format!("cannot read {what}: {e}"),
    })
}

pub(super) const LIST_PAGE: u32 = 1000;

/// Which calls may be sent again within the attempt when Minimax did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RetryPolicy {
    /// Reads: sending again changes nothing.
    Safe,
    /// Writes conditional on the `RowVersion` they were based on that also change it
    /// (updates; actions that change the document's status), so a second try cannot
    /// apply twice: if the first took effect, the second is refused as a concurrency
    /// error, and the booking verifies on its next attempt.
    Conditional,
    /// Creates, deletes and actions that make another document (credit note, invoice
    /// from an order) or a PDF without changing the `RowVersion`: a lost answer is
    /// settled by the booking's intents on its next attempt.
    Never,
}

/// Updates (`PUT` with the record's `RowVersion` in the body) are conditional.
fn retry_policy(method: &Method) -> RetryPolicy {
    match *method {
        Method::GET | Method::HEAD => RetryPolicy::Safe,
        Method::PUT => RetryPolicy::Conditional,
        _ => RetryPolicy::Never,
    }
}

fn action_policy(changes_row_version: bool) -> RetryPolicy {
    if changes_row_version {
        RetryPolicy::Conditional
    } else {
        RetryPolicy::Never
    }
}

/// A retried conditional write that Minimax refused because the record changed (the
/// first try's effect, most likely).
fn is_refused_write(reply: &Reply) -> bool {
    (400..500).contains(&reply.status)
        || crate::minimax::error::is_concurrency(&crate::minimax::error::extract_messages(
            &reply.body,
        ))
}

/// `base * 2^(try-1)`, ±50 % jitter, so retries of many jobs do not line up.
fn retry_delay(base_ms: u64, tries: u32) -> std::time::Duration {
    let ceiling = base_ms.saturating_mul(1u64 << tries.saturating_sub(1).min(10));
    let jittered =
        rand::Rng::gen_range(&mut rand::thread_rng(), ceiling / 2..=ceiling + ceiling / 2);
    std::time::Duration::from_millis(jittered)
}

impl TenantClient {
    pub(super) fn url(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Url, MinimaxError> {
        let mut url = Url::parse(&self.api_base)
            .map_err(|e| MinimaxError::Config(format!("api_base: {e}")))?;
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|_| MinimaxError::Config("api_base cannot be a base URL".into()))?;
            segs.pop_if_empty().push("api");
            segs.extend(segments);
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    pub(super) fn org_url(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Url, MinimaxError> {
        let org = self.creds.organisation_id.to_string();
        let mut all = vec!["orgs", org.as_str()];
        all.extend_from_slice(segments);
        self.url(&all, query)
    }

    /// One logical call: admitted, sent, retried within the attempt when it is safe
    /// (see [`RetryPolicy`]) and Minimax did not answer, and fed to the breaker.
    pub(super) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        kind: &'static str,
    ) -> Result<Reply, MinimaxError> {
        let policy = retry_policy(&method);
        self.send_with(policy, method, url, body, kind).await
    }

    async fn send_with(
        &self,
        policy: RetryPolicy,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        kind: &'static str,
    ) -> Result<Reply, MinimaxError> {
        let span = tracing::debug_span!(
            "minimax_call",
            tenant = %self.creds.tenant_id,
            org = self.creds.organisation_id,
            kind,
            status = tracing::field::Empty
        );
        async move {
            let retries = self.inner.settings.call_retries;
            let mut tries = 0u32;
            let mut first_failure: Option<String> = None;
            loop {
                let (probe, result) = match self.send_once(&method, &url, body.as_deref()).await
                {
                    Ok(sent) => sent,
                    Err(e) => {
                        // A 429 or a second 401 is an answer: Minimax is up (a half-open
                        // probe must not be left hanging until it lapses).
                        if matches!(
                            e,
                            MinimaxError::TenantPaused { .. } | MinimaxError::Unauthorized
                        ) {
                            self.record_outcome(CallOutcome::Answered).await;
                        }
                        return Err(e);
                    }
                };
                let failure = match &result {
                    Ok(reply) if reply.status < 500 => None,
                    Ok(reply) => Some(format!("HTTP {} from Minimax", reply.status)),
                    Err(e) => Some(e.to_string()),
                };
                let Some(failure) = failure else {
                    self.record_outcome(CallOutcome::Answered).await;
                    let reply = result?;
                    if tries > 0 && policy == RetryPolicy::Conditional && is_refused_write(&reply)
                    {
                        // The first try may have taken effect (its answer was lost) and
                        // changed the RowVersion: the next attempt reads and verifies.
                        return Err(MinimaxError::transient(format!(
                            "{kind}: first try failed ({}); the retry found the record \
                             changed, so it is verified on the next attempt",
                            first_failure.unwrap_or_default()
                        )));
                    }
                    return Ok(reply);
                };
                tries += 1;
                if probe || policy == RetryPolicy::Never || tries > retries {
                    self.record_outcome(CallOutcome::Unanswered).await;
                    return result;
                }
                tracing::debug!(try_ = tries, error = %failure, "Minimax did not answer; trying again");
                first_failure.get_or_insert(failure);
                tokio::time::sleep(retry_delay(
                    self.inner.settings.call_retry_base_ms,
                    tries,
                ))
                .await;
            }
        }
        .instrument(span)
        .await
    }

    /// One HTTP exchange (with one token refresh on `401`). The outer error is for
    /// what stops the call before or around Minimax (admission, token, `429`); the
    /// inner result is Minimax's answer or a transport failure. The flag says whether
    /// this call was the half-open circuit's probe.
    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
    ) -> Result<(bool, Result<Reply, MinimaxError>), MinimaxError> {
        let mut stale: Option<SecretString> = None;
        loop {
            let token = self
                .access_token(stale.as_ref().map(|s| s.expose_secret()))
                .await?;
            let probe = self.admit().await?;
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(bytes) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.to_vec());
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    crate::metrics::MINIMAX_CALLS
                        .with_label_values(&["error"])
                        .inc();
                    return Ok((probe, Err(MinimaxError::from_reqwest(e))));
                }
            };
            let status = response.status().as_u16();
            crate::metrics::MINIMAX_CALLS
                .with_label_values(&[&status.to_string()])
                .inc();
            tracing::Span::current().record("status", status);
            let headers = response.headers();
            let location = headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let retry_after = headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now()));
            let text = match response.text().await {
                Ok(t) => t,
                Err(e) => return Ok((probe, Err(MinimaxError::from_reqwest(e)))),
            };
            match status {
                401 if stale.is_none() => {
                    tracing::info!("Minimax refused the token; refreshing once");
                    stale = Some(token);
                    continue;
                }
                401 => return Err(MinimaxError::Unauthorized),
                429 => {
                    let after = retry_after.unwrap_or(std::time::Duration::from_secs(
                        self.inner.settings.default_pause_secs,
                    ));
                    let after = chrono::Duration::from_std(after)
                        .unwrap_or_else(|_| chrono::Duration::hours(1));
                    let until = Utc::now() + after;
                    self.pause_until(until).await?;
                    return Err(MinimaxError::TenantPaused { until });
                }
                _ => {
                    return Ok((
                        probe,
                        Ok(Reply {
                            status,
                            location,
                            retry_after,
                            body: text,
                        }),
                    ))
                }
            }
        }
    }

    pub(super) fn fail(reply: Reply, what: &str) -> MinimaxError {
        classify_status(reply.status, &reply.body, reply.retry_after, what)
    }

    pub(super) async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        kind: &'static str,
        what: &str,
    ) -> Result<T, MinimaxError> {
        let reply = self.send(Method::GET, url, None, kind).await?;
        if (200..300).contains(&reply.status) {
            parse_json(&reply, what)
        } else {
            Err(Self::fail(reply, what))
        }
    }

    pub(super) async fn get_opt<T: DeserializeOwned>(
        &self,
        url: Url,
        kind: &'static str,
        what: &str,
    ) -> Result<Option<T>, MinimaxError> {
        match self.get_json(url, kind, what).await {
            Ok(v) => Ok(Some(v)),
            Err(MinimaxError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn create<B: Serialize>(
        &self,
        url: Url,
        body: &B,
        kind: &'static str,
        what: &str,
    ) -> Result<i64, MinimaxError> {
        let bytes = serde_json::to_vec(body).map_err(|e| bad_input(&e.to_string()))?;
        let reply = self.send(Method::POST, url, Some(bytes), kind).await?;
        if !(200..300).contains(&reply.status) {
            return Err(Self::fail(reply, what));
        }
        reply
            .location
            .as_deref()
            .and_then(id_from_location)
            .ok_or_else(|| MinimaxError::Unexpected {
                status: reply.status,
                detail: format!("{what} created without a usable Location header"),
            })
    }

    /// A create whose effect can be read back (a code, a contact's e-mail): when
    /// Minimax did not answer, the create may or may not have happened, so `find` looks
    /// for the record first — found: its id; not found: create again (up to
    /// `call_retries` times). Two jobs creating the same code meet the same way.
    pub(super) async fn create_verified<B, F, Fut>(
        &self,
        url: Url,
        body: &B,
        (kind, what): (&'static str, &str),
        find: F,
    ) -> Result<i64, MinimaxError>
    where
        B: Serialize + Sync,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<i64>, MinimaxError>>,
    {
        let mut tries = 0;
        loop {
            match self.create(url.clone(), body, kind, what).await {
                Err(MinimaxError::Transient { .. }) if tries < self.inner.settings.call_retries => {
                    tries += 1;
                    tokio::time::sleep(retry_delay(self.inner.settings.call_retry_base_ms, tries))
                        .await;
                    if let Some(id) = find().await? {
                        tracing::info!(
                            kind,
                            "the create's answer was lost; found the record it made"
                        );
                        return Ok(id);
                    }
                }
                other => return other,
            }
        }
    }

    pub(super) async fn put<B: Serialize>(
        &self,
        url: Url,
        body: &B,
        kind: &'static str,
        what: &str,
    ) -> Result<(), MinimaxError> {
        let bytes = serde_json::to_vec(body).map_err(|e| bad_input(&e.to_string()))?;
        let reply = self.send(Method::PUT, url, Some(bytes), kind).await?;
        if (200..300).contains(&reply.status) {
            Ok(())
        } else {
            Err(Self::fail(reply, what))
        }
    }

    pub(super) async fn put_action(
        &self,
        segments: &[&str],
        (action, conditional): (&str, bool),
        row_version: &str,
        kind: &'static str,
    ) -> Result<ActionResult, MinimaxError> {
        let mut all = segments.to_vec();
        all.extend_from_slice(&["actions", action]);
        // append_pair percent-encodes `+`, `/` and `=` of the base64 RowVersion.
        let url = self.org_url(&all, &[("rowVersion", row_version.to_string())])?;
        let reply = self
            .send_with(action_policy(conditional), Method::PUT, url, None, kind)
            .await?;
        if !(200..300).contains(&reply.status) {
            return Err(Self::fail(reply, action));
        }
        if reply.body.trim().is_empty() {
            return Ok(ActionResult::default());
        }
        let result: ActionResult = parse_json(&reply, action)?;
        let messages = crate::minimax::error::extract_messages(&reply.body);
        if crate::minimax::error::is_concurrency(&messages) {
            return Err(MinimaxError::Concurrency {
                message: messages
                    .iter()
                    .map(|m| m.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        Ok(result)
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_from_location() {
        assert_eq!(
            id_from_location(
                "https://moj.minimax.si/SI/API/api/orgs/183818/items/7299224?id=7299224"
            ),
            Some(7299224)
        );
        assert_eq!(id_from_location("/api/orgs/1/customers/42"), Some(42));
        assert_eq!(
            id_from_location("http://h/api/orgs/1/customers/x?ID=5"),
            Some(5)
        );
        assert_eq!(id_from_location("http://h/api/orgs/1/customers/"), None);
    }
}
