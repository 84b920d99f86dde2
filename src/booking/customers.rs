//! The shop's customer events: a created or updated shop customer becomes (or updates)
//! its Minimax customer, under the same code and by the same rules as when it comes
//! with an order ([`crate::mapping::customer_event_plan`]), so its next order costs no
//! customer write and never makes a second customer.
//!
//! Guarantees: written only when the shop's data changed since we last wrote it (the
//! digest of [`super::masters`]), so repeated `customer.updated` deliveries cost no
//! call; a customer Minimax cannot take (no name, no country) is skipped with the
//! reason; a deleted shop customer is recorded and its Minimax customer kept, because
//! it carries accounting history. `settings.customer_sync = with_orders` turns these
//! events off ([`crate::mapping::decide`]).

use serde::Serialize;

use crate::mapping::{self, OrgData};
use crate::minimax::{Country, TenantClient};
use crate::tenants::Tenant;
use crate::webshop::Customer;

use super::create::BookingOutcome;
use super::error::Result;
use super::lookups::{country_ids, currency_id};
use super::masters::{Change, Masters};
use super::records::Records;

/// The job result of a customer event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerOutcome {
    pub customer_code: String,
    pub minimax_id: Option<i64>,
    pub status: CustomerStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    Created,
    Updated,
    Unchanged,
    /// Deleted in the shop; kept in Minimax.
    DeletedInShop,
}

/// Handles one customer event of a tenant.
pub(super) struct CustomerEvents<'a> {
    pub tenant: &'a Tenant,
    pub client: &'a TenantClient,
    pub records: &'a Records,
}

/// The currency a customer gets when it is created before any order: the
/// organisation's home currency (an order in another currency keeps it, see
/// [`crate::mapping::customer_needs_update`]).
fn home_currency(country: Country) -> &'static str {
    match country {
        Country::SI | Country::HR => "EUR",
        Country::RS => "RSD",
    }
}

impl CustomerEvents<'_> {
    pub async fn upsert(&self, customer: &Customer) -> Result<BookingOutcome> {
        let settings = &self.tenant.settings;
        if let Some(reason) = mapping::customer_event_gap(customer, settings) {
            return Ok(BookingOutcome::skipped(reason));
        }
        let home = self.tenant.country.code();
        let org = OrgData {
            home_country: home.to_owned(),
            currency_id: currency_id(self.client, home_currency(self.tenant.country)).await?,
            country_ids: country_ids(self.client, mapping::customer_country_codes(customer, home))
                .await?,
            ..OrgData::default()
        };
        let plan = mapping::customer_event_plan(customer, settings, &org)?;
        let masters = Masters {
            tenant: self.tenant,
            client: self.client,
            records: self.records,
        };
        let write = masters.ensure_customer(&plan).await?;
        tracing::info!(customer_id = write.id, change = ?write.change, "customer event");
        Ok(BookingOutcome::Customer(CustomerOutcome {
            customer_code: plan.code,
            minimax_id: Some(write.id),
            status: match write.change {
                Change::Created => CustomerStatus::Created,
                Change::Updated => CustomerStatus::Updated,
                Change::Unchanged => CustomerStatus::Unchanged,
            },
            note: None,
        }))
    }

    pub async fn deleted(&self, customer: &Customer) -> Result<BookingOutcome> {
        let Some(code) = mapping::customer_event_code(customer, &self.tenant.settings) else {
            return Ok(BookingOutcome::skipped(
                "the deleted customer has no Minimax customer of its own",
            ));
        };
        let first = self
            .records
            .mark_customer_deleted(&self.tenant.id, &code)
            .await?;
        Ok(BookingOutcome::Customer(CustomerOutcome {
            minimax_id: self.client.known_customer_id(&code).await,
            customer_code: code,
            status: CustomerStatus::DeletedInShop,
            note: Some(
                if first {
                    "recorded; the Minimax customer is not deleted (it carries accounting history)"
                } else {
                    "recorded before; the Minimax customer is not deleted"
                }
                .into(),
            ),
        }))
    }
}
