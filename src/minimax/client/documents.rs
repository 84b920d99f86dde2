//! Documents: issued invoices (draft, read, list, delete, actions) and orders (create,
//! read, find by reference, actions).

use chrono::NaiveDate;
use reqwest::Method;

use super::transport::bad_input;
use crate::minimax::error::MinimaxError;
use crate::minimax::models::*;
use crate::minimax::TenantClient;

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

impl TenantClient {
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
