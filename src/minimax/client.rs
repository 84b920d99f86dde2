//! HTTP transport and the operations a booking needs.
//!
//! Every request: a token (refreshed once on `401`), admission by the organisation's rate
//! limit, budgets and circuit breaker, then the call. `429` pauses the organisation. A
//! read or RowVersion-conditional `PUT` that Minimax does not answer (5xx, timeout,
//! dropped connection) is tried again up to `call_retries` times with a short jittered
//! backoff, each try admitted again; the call's final outcome feeds the breaker. Creates read the new
//! id from `Location`; actions and updates use a freshly read `RowVersion` and, on a
//! concurrency error, re-read and retry once. Paths use the canonical casing and
//! `code(...)` values are percent-encoded as one path segment.

use chrono::{NaiveDate, Utc};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;
use url::Url;

use super::breaker::CallOutcome;
use super::error::{classify_status, parse_retry_after, MinimaxError, ValidationMessage};
use super::models::*;
use super::TenantClient;

/// A raw API answer (401 and 429 are already handled).
struct Reply {
    status: u16,
    location: Option<String>,
    retry_after: Option<std::time::Duration>,
    body: String,
}

/// Actions on issued invoices (`PUT …/issuedinvoices/{id}/actions/{name}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceAction {
    Issue,
    IssueAndGeneratePdf,
    GeneratePdf,
    CopyToCreditNote,
}

impl InvoiceAction {
    /// Whether the action changes the invoice's own `RowVersion` (and nothing else).
    fn conditional(self) -> bool {
        matches!(
            self,
            InvoiceAction::Issue | InvoiceAction::IssueAndGeneratePdf
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceAction::Issue => "issue",
            InvoiceAction::IssueAndGeneratePdf => "issueAndGeneratepdf",
            InvoiceAction::GeneratePdf => "generatepdf",
            InvoiceAction::CopyToCreditNote => "copytocreditnote",
        }
    }
}

/// Actions on orders (`PUT …/orders/{id}/actions/{name}`): the ones the connector uses
/// (the API has more: confirm, complete, createissuedinvoice and their cancellations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    /// A cancelled shop order invalidates its received order (status `R`).
    Invalidate,
}

impl OrderAction {
    /// Whether the action only changes the order's status (and its `RowVersion`).
    fn conditional(self) -> bool {
        matches!(self, OrderAction::Invalidate)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderAction::Invalidate => "invalidate",
        }
    }
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

fn bad_input(message: &str) -> MinimaxError {
    MinimaxError::Validation {
        status: 0,
        messages: vec![ValidationMessage {
            message: message.to_string(),
            property: None,
        }],
    }
}

fn code_segment(kind: &str, code: &str) -> Result<String, MinimaxError> {
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

const LIST_PAGE: u32 = 1000;

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
        || super::error::is_concurrency(&super::error::extract_messages(&reply.body))
}

/// `base * 2^(try-1)`, ±50 % jitter, so retries of many jobs do not line up.
fn retry_delay(base_ms: u64, tries: u32) -> std::time::Duration {
    let ceiling = base_ms.saturating_mul(1u64 << tries.saturating_sub(1).min(10));
    let jittered =
        rand::Rng::gen_range(&mut rand::thread_rng(), ceiling / 2..=ceiling + ceiling / 2);
    std::time::Duration::from_millis(jittered)
}

impl TenantClient {
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, MinimaxError> {
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

    fn org_url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, MinimaxError> {
        let org = self.creds.organisation_id.to_string();
        let mut all = vec!["orgs", org.as_str()];
        all.extend_from_slice(segments);
        self.url(&all, query)
    }

    /// One logical call: admitted, sent, retried within the attempt when it is safe
    /// (see [`RetryPolicy`]) and Minimax did not answer, and fed to the breaker.
    async fn send(
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

    fn fail(reply: Reply, what: &str) -> MinimaxError {
        classify_status(reply.status, &reply.body, reply.retry_after, what)
    }

    async fn get_json<T: DeserializeOwned>(
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

    async fn get_opt<T: DeserializeOwned>(
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

    async fn create<B: Serialize>(
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
    async fn create_verified<B, F, Fut>(
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

    async fn put<B: Serialize>(
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

    async fn put_action(
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
        let messages = super::error::extract_messages(&reply.body);
        if super::error::is_concurrency(&messages) {
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

    // ---------------------------------------------------------------- user

    /// `GET api/currentuser/orgs`: organisations the user can access.
    pub async fn my_organisations(&self) -> Result<Vec<UserOrganisation>, MinimaxError> {
        let url = self.url(&["currentuser", "orgs"], &[])?;
        let page: Page<UserOrganisation> = self
            .get_json(url, "currentuser/orgs", "organisations")
            .await?;
        Ok(page.rows)
    }

    // ----------------------------------------------------------- customers

    /// `GET customers/code(…)`; `None` on 404 (and the cached id is dropped).
    pub async fn customer_by_code(&self, code: &str) -> Result<Option<Customer>, MinimaxError> {
        let seg = code_segment("customer", code)?;
        let url = self.org_url(&["customers", &seg], &[])?;
        let found: Option<Customer> = self.get_opt(url, "customers/code", "customer").await?;
        match &found {
            Some(c) => {
                if let Some(id) = c.customer_id {
                    self.remember_code("customer", code, id).await;
                }
            }
            None => self.forget_code("customer", code).await,
        }
        Ok(found)
    }

    /// The customer id for a code, from the cache when known (no call).
    pub async fn customer_id_by_code(&self, code: &str) -> Result<Option<i64>, MinimaxError> {
        if let Some(id) = self.known_customer_id(code).await {
            return Ok(Some(id));
        }
        Ok(self
            .customer_by_code(code)
            .await?
            .and_then(|c| c.customer_id))
    }

    /// `GET customers/{id}`. On a 404 the caller drops the code it looked the id up by
    /// ([`TenantClient::forget_customer_code`]): only it knows the code.
    pub async fn get_customer(&self, id: i64) -> Result<Customer, MinimaxError> {
        let url = self.org_url(&["customers", &id.to_string()], &[])?;
        self.get_json(url, "customers/id", "customer").await
    }

    /// `POST customers`; returns the new id and caches code → id. With a code, a
    /// create Minimax did not answer is verified by code before it is repeated.
    pub async fn create_customer(&self, customer: &Customer) -> Result<i64, MinimaxError> {
        let url = self.org_url(&["customers"], &[])?;
        let kind = ("customers/create", "customer");
        let Some(code) = customer.code.as_deref().filter(|c| !c.is_empty()) else {
            return self.create(url, customer, kind.0, kind.1).await;
        };
        let id = self
            .create_verified(url, customer, kind, || async {
                Ok(self
                    .customer_by_code(code)
                    .await?
                    .and_then(|c| c.customer_id))
            })
            .await?;
        self.remember_code("customer", code, id).await;
        Ok(id)
    }

    /// Reads the customer, lets `edit` change it, and PUTs it with the fresh
    /// `RowVersion` only when `edit` says it changed something (one read, no write,
    /// when nothing changed); on a concurrency error re-reads, re-applies and retries
    /// once. Returns whether it wrote.
    pub async fn update_customer<F>(&self, id: i64, edit: F) -> Result<bool, MinimaxError>
    where
        F: Fn(&mut Customer) -> bool + Send + Sync,
    {
        let url = self.org_url(&["customers", &id.to_string()], &[])?;
        let mut attempt = 0;
        loop {
            let mut customer = self.get_customer(id).await?;
            if !edit(&mut customer) {
                return Ok(false);
            }
            customer.customer_id = Some(id);
            match self
                .put(url.clone(), &customer, "customers/update", "customer")
                .await
            {
                Err(MinimaxError::Concurrency { .. }) if attempt == 0 => attempt += 1,
                other => return other.map(|()| true),
            }
        }
    }

    pub async fn create_contact(
        &self,
        customer_id: i64,
        contact: &Contact,
    ) -> Result<i64, MinimaxError> {
        let url = self.org_url(&["customers", &customer_id.to_string(), "contacts"], &[])?;
        let same = |c: &Contact| c.email == contact.email && c.full_name == contact.full_name;
        self.create_verified(url, contact, ("contacts/create", "contact"), || async {
            Ok(self
                .customer_contacts(customer_id)
                .await?
                .iter()
                .find(|c| same(c))
                .and_then(|c| c.contact_id))
        })
        .await
    }

    /// `GET customers/{id}/contacts`: the customer's contacts (first page of 1000).
    pub async fn customer_contacts(&self, customer_id: i64) -> Result<Vec<Contact>, MinimaxError> {
        let url = self.org_url(
            &["customers", &customer_id.to_string(), "contacts"],
            &[("PageSize", LIST_PAGE.to_string())],
        )?;
        let page: Page<Contact> = self.get_json(url, "contacts/list", "contacts").await?;
        Ok(page.rows)
    }

    /// The cached id of customer `code`, without a call (`None`: not known here).
    pub async fn known_customer_id(&self, code: &str) -> Option<i64> {
        self.cache_get(&format!("customer-code:{code}")).await
    }

    /// Drops a cached customer code → id mapping.
    pub async fn forget_customer_code(&self, code: &str) {
        self.forget_code("customer", code).await;
    }

    // --------------------------------------------------------------- items

    pub async fn item_by_code(&self, code: &str) -> Result<Option<Item>, MinimaxError> {
        let seg = code_segment("item", code)?;
        let url = self.org_url(&["items", &seg], &[])?;
        let found: Option<Item> = self.get_opt(url, "items/code", "item").await?;
        match &found {
            Some(item) => {
                if let Some(id) = item.item_id {
                    self.remember_code("item", code, id).await;
                }
            }
            None => self.forget_code("item", code).await,
        }
        Ok(found)
    }

    /// The item id for a code, from the cache when known (no call).
    pub async fn item_id_by_code(&self, code: &str) -> Result<Option<i64>, MinimaxError> {
        if let Some(id) = self.known_item_id(code).await {
            return Ok(Some(id));
        }
        Ok(self.item_by_code(code).await?.and_then(|i| i.item_id))
    }

    /// The cached id of item `code`, without a call (`None`: not known here).
    pub async fn known_item_id(&self, code: &str) -> Option<i64> {
        self.cache_get(&format!("item-code:{code}")).await
    }

    /// `POST items`, verified by code like [`TenantClient::create_customer`].
    pub async fn create_item(&self, item: &Item) -> Result<i64, MinimaxError> {
        let url = self.org_url(&["items"], &[])?;
        let Some(code) = item.code.as_deref().filter(|c| !c.is_empty()) else {
            return self.create(url, item, "items/create", "item").await;
        };
        let id = self
            .create_verified(url, item, ("items/create", "item"), || async {
                Ok(self.item_by_code(code).await?.and_then(|i| i.item_id))
            })
            .await?;
        self.remember_code("item", code, id).await;
        Ok(id)
    }

    pub async fn forget_item_code(&self, code: &str) {
        self.forget_code("item", code).await;
    }

    /// Code → id, kept without expiry (codes are stable in Minimax; docs/minimax-client.md,
    /// "Redis keys"): dropped when Minimax answers 404.
    async fn remember_code(&self, kind: &str, code: &str, id: i64) {
        self.cache_put(&format!("{kind}-code:{code}"), &id, None)
            .await;
    }

    async fn forget_code(&self, kind: &str, code: &str) {
        self.cache_del(&[format!("{kind}-code:{code}")]).await;
    }

    // ---------------------------------------------------------- code lists

    async fn cached_by_code<T: DeserializeOwned + Serialize>(
        &self,
        collection: &'static str,
        code: &str,
        query: &[(&str, String)],
        cache_what: String,
        ttl: u64,
    ) -> Result<T, MinimaxError> {
        if let Some(hit) = self.cache_get::<T>(&cache_what).await {
            return Ok(hit);
        }
        let seg = code_segment(collection, code)?;
        let url = self.org_url(&[collection, &seg], query)?;
        let value: T = self.get_json(url, collection, collection).await?;
        self.cache_put(&cache_what, &value, Some(ttl)).await;
        Ok(value)
    }

    async fn cached_list<T: DeserializeOwned + Serialize>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        kind: &'static str,
        cache_what: String,
        ttl: u64,
    ) -> Result<Vec<T>, MinimaxError> {
        if let Some(hit) = self.cache_get::<Vec<T>>(&cache_what).await {
            return Ok(hit);
        }
        let mut query = query.to_vec();
        query.push(("PageSize", LIST_PAGE.to_string()));
        let url = self.org_url(segments, &query)?;
        let page: Page<T> = self.get_json(url, kind, kind).await?;
        self.cache_put(&cache_what, &page.rows, Some(ttl)).await;
        Ok(page.rows)
    }

    /// `countries/code(SI)`, cached a day.
    pub async fn country_by_code(&self, code: &str) -> Result<Country, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_by_code("countries", code, &[], format!("country:{code}"), ttl)
            .await
    }

    /// `currencies/code(EUR)`, cached a day.
    pub async fn currency_by_code(&self, code: &str) -> Result<Currency, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_by_code("currencies", code, &[], format!("currency:{code}"), ttl)
            .await
    }

    /// `vatrates?date=…[&countryID=…]`, cached per date and country.
    pub async fn vat_rates(
        &self,
        date: NaiveDate,
        country_id: Option<i64>,
    ) -> Result<Vec<VatRate>, MinimaxError> {
        let ttl = self.inner.settings.vat_rate_ttl_secs;
        let mut query = vec![("date", date.format("%Y-%m-%d").to_string())];
        if let Some(c) = country_id {
            query.push(("countryID", c.to_string()));
        }
        let what = format!(
            "vatrates:{date}:{}",
            country_id.map(|c| c.to_string()).unwrap_or_default()
        );
        self.cached_list(&["vatrates"], &query, "vatrates", what, ttl)
            .await
    }

    /// `paymentMethods`, cached a day.
    pub async fn payment_methods(&self) -> Result<Vec<PaymentMethod>, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_list(
            &["paymentMethods"],
            &[],
            "paymentMethods",
            "paymentmethods".into(),
            ttl,
        )
        .await
    }

    /// `document-numbering`, cached a day.
    pub async fn document_numberings(&self) -> Result<Vec<DocumentNumbering>, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_list(
            &["document-numbering"],
            &[],
            "document-numbering",
            "numberings".into(),
            ttl,
        )
        .await
    }

    /// `report-templates`, cached a day.
    pub async fn report_templates(&self) -> Result<Vec<ReportTemplate>, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_list(
            &["report-templates"],
            &[],
            "report-templates",
            "reporttemplates".into(),
            ttl,
        )
        .await
    }

    /// `employees`, cached a day.
    pub async fn employees(&self) -> Result<Vec<EmployeeSearch>, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_list(&["employees"], &[], "employees", "employees".into(), ttl)
            .await
    }

    // ------------------------------------------------------ issued invoices

    /// `POST issuedinvoices` (creates a draft); returns the id from `Location`.
    pub async fn create_issued_invoice(
        &self,
        invoice: &IssuedInvoice,
    ) -> Result<i64, MinimaxError> {
        let url = self.org_url(&["issuedinvoices"], &[])?;
        self.create(url, invoice, "issuedinvoices/create", "issued invoice")
            .await
    }

    pub async fn get_issued_invoice(&self, id: i64) -> Result<IssuedInvoice, MinimaxError> {
        let url = self.org_url(&["issuedinvoices", &id.to_string()], &[])?;
        self.get_json(url, "issuedinvoices/id", "issued invoice")
            .await
    }

    /// `GET issuedinvoices` with the documented filters.
    pub async fn list_issued_invoices(
        &self,
        filter: &IssuedInvoiceFilter,
    ) -> Result<Page<IssuedInvoiceSearch>, MinimaxError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        let date = |d: &NaiveDate| d.format("%Y-%m-%d").to_string();
        if let Some(v) = filter.customer_id {
            query.push(("CustomerID", v.to_string()));
        }
        if let Some(v) = &filter.invoice_type {
            query.push(("InvoiceType", v.clone()));
        }
        if let Some(v) = filter.year {
            query.push(("Year", v.to_string()));
        }
        if let Some(v) = filter.invoice_number {
            query.push(("InvoiceNumber", v.to_string()));
        }
        if let Some(v) = &filter.status {
            query.push(("Status", v.clone()));
        }
        if let Some(v) = &filter.date_issued_from {
            query.push(("DateIssuedFrom", date(v)));
        }
        if let Some(v) = &filter.date_issued_to {
            query.push(("DateIssuedTo", date(v)));
        }
        if let Some(v) = filter.current_page {
            query.push(("CurrentPage", v.to_string()));
        }
        query.push(("PageSize", filter.page_size.unwrap_or(100).to_string()));
        let url = self.org_url(&["issuedinvoices"], &query)?;
        self.get_json(url, "issuedinvoices/list", "issued invoices")
            .await
    }

    /// `DELETE issuedinvoices/{id}`: only drafts can be deleted (issued ones are credited).
    pub async fn delete_issued_invoice(&self, id: i64) -> Result<(), MinimaxError> {
        let url = self.org_url(&["issuedinvoices", &id.to_string()], &[])?;
        let reply = self
            .send(Method::DELETE, url, None, "issuedinvoices/delete")
            .await?;
        if (200..300).contains(&reply.status) {
            Ok(())
        } else {
            Err(Self::fail(reply, "issued invoice"))
        }
    }

    async fn invoice_row_version(&self, id: i64) -> Result<String, MinimaxError> {
        self.get_issued_invoice(id)
            .await?
            .row_version
            .ok_or_else(|| MinimaxError::Unexpected {
                status: 200,
                detail: "issued invoice without RowVersion".into(),
            })
    }

    /// Runs an action with `row_version` (or a freshly read one); a concurrency error
    /// re-reads the `RowVersion` and retries once.
    pub async fn issued_invoice_action(
        &self,
        id: i64,
        action: InvoiceAction,
        row_version: Option<&str>,
    ) -> Result<ActionResult, MinimaxError> {
        let rv = match row_version {
            Some(rv) => rv.to_string(),
            None => self.invoice_row_version(id).await?,
        };
        let id_s = id.to_string();
        let segs = ["issuedinvoices", id_s.as_str()];
        match self
            .put_action(
                &segs,
                (action.as_str(), action.conditional()),
                &rv,
                "issuedinvoices/action",
            )
            .await
        {
            Err(MinimaxError::Concurrency { .. }) => {
                tracing::info!("stale RowVersion; re-reading and retrying once");
                let rv = self.invoice_row_version(id).await?;
                self.put_action(
                    &segs,
                    (action.as_str(), action.conditional()),
                    &rv,
                    "issuedinvoices/action",
                )
                .await
            }
            other => other,
        }
    }

    // -------------------------------------------------------------- orders

    /// `POST orders` (a received order when `ReceivedIssued = "P"`).
    pub async fn create_order(&self, order: &Order) -> Result<i64, MinimaxError> {
        let url = self.org_url(&["orders"], &[])?;
        self.create(url, order, "orders/create", "order").await
    }

    pub async fn get_order(&self, id: i64) -> Result<Order, MinimaxError> {
        let url = self.org_url(&["orders", &id.to_string()], &[])?;
        self.get_json(url, "orders/id", "order").await
    }

    /// `GET orders?Reference=…` (the documented idempotency lookup for orders).
    pub async fn orders_by_reference(
        &self,
        reference: &str,
    ) -> Result<Vec<OrderSearch>, MinimaxError> {
        if reference.trim().is_empty() {
            return Err(bad_input("empty order reference"));
        }
        let url = self.org_url(
            &["orders"],
            &[
                ("Reference", reference.to_string()),
                ("PageSize", "100".into()),
            ],
        )?;
        let page: Page<OrderSearch> = self.get_json(url, "orders/list", "orders").await?;
        Ok(page.rows)
    }

    async fn order_row_version(&self, id: i64) -> Result<String, MinimaxError> {
        self.get_order(id)
            .await?
            .row_version
            .ok_or_else(|| MinimaxError::Unexpected {
                status: 200,
                detail: "order without RowVersion".into(),
            })
    }

    /// Runs an order action like [`TenantClient::issued_invoice_action`].
    pub async fn order_action(
        &self,
        id: i64,
        action: OrderAction,
        row_version: Option<&str>,
    ) -> Result<ActionResult, MinimaxError> {
        let rv = match row_version {
            Some(rv) => rv.to_string(),
            None => self.order_row_version(id).await?,
        };
        let id_s = id.to_string();
        let segs = ["orders", id_s.as_str()];
        match self
            .put_action(
                &segs,
                (action.as_str(), action.conditional()),
                &rv,
                "orders/action",
            )
            .await
        {
            Err(MinimaxError::Concurrency { .. }) => {
                let rv = self.order_row_version(id).await?;
                self.put_action(
                    &segs,
                    (action.as_str(), action.conditional()),
                    &rv,
                    "orders/action",
                )
                .await
            }
            other => other,
        }
    }
}

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
