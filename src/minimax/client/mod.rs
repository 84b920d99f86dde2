//! HTTP transport and the operations a booking needs.
//!
//! Every request: a token (refreshed once on `401`), admission by the organisation's rate
//! limit, budgets and circuit breaker, then the call. `429` pauses the organisation. A
//! read or RowVersion-conditional `PUT` that Minimax does not answer (5xx, timeout,
//! dropped connection) is tried again up to `call_retries` times with a short jittered
//! backoff, each try admitted again; the call's final outcome feeds the breaker. Creates
//! read the new id from `Location`; actions and updates use a freshly read `RowVersion`
//! and, on a concurrency error, re-read and retry once. Paths use the canonical casing
//! and `code(...)` values are percent-encoded as one path segment.
//!
//! `transport` is that layer; `masters` (customers, contacts, items), `code_lists` and
//! `documents` (issued invoices, orders) are the resources on top of it.

mod code_lists;
mod documents;
mod masters;
mod transport;

pub use documents::{InvoiceAction, OrderAction};
pub use transport::id_from_location;

use super::error::MinimaxError;
use super::models::*;
use super::TenantClient;

impl TenantClient {
    /// `GET api/currentuser/orgs`: organisations the user can access.
    pub async fn my_organisations(&self) -> Result<Vec<UserOrganisation>, MinimaxError> {
        let url = self.url(&["currentuser", "orgs"], &[])?;
        let page: Page<UserOrganisation> = self
            .get_json(url, "currentuser/orgs", "organisations")
            .await?;
        Ok(page.rows)
    }
}
