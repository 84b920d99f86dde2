//! Master data a booking finds or creates: customers (and their contacts) and items,
//! with the code → id cache.

use super::transport::{code_segment, LIST_PAGE};
use crate::minimax::error::MinimaxError;
use crate::minimax::models::*;
use crate::minimax::TenantClient;

impl TenantClient {
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
}
