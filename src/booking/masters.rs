//! Customers and items: found by code, created when missing, updated only when the
//! shop's data changed.
//!
//! Guarantees:
//! - **Once per code.** Creating a customer or item is single-flight per
//!   (organisation, code) across instances and tenants: a Redis lock per code; the job
//!   that holds it looks in the shared code cache again (the previous holder put its id
//!   there) and creates only when the code is still unknown; the others wait for the
//!   lock and then read the winner's id, which costs no call.
//! - **A customer has its contact.** The e-mail (and phone) become the customer's
//!   default Contact on create, inside the lock; every path that adopts a customer it
//!   did not just create (found by code with no digest of ours, a 409 duplicate) makes
//!   sure the contact is there.
//! - **Writes only on change.** A digest of what was last written (body and contact) is
//!   kept per code; an unchanged customer costs no call, a changed one a read and a
//!   write when a field the connector owns differs, and a changed e-mail or phone a read
//!   of its contacts (and the new contact).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::mapping::{self, CustomerPlan, ItemNeed, OrgData};
use crate::minimax::models::{Contact, Fk, Item};
use crate::minimax::{MinimaxError, TenantClient};
use crate::tenants::Tenant;

use super::error::{BookingError, Result};
use super::records::Records;

/// How long a create lock lives when its holder dies (a create is one call).
const CREATE_LOCK_MS: u64 = 30_000;
/// How long a job waits for another job's create before it gives the worker back.
const CREATE_WAIT: Duration = Duration::from_secs(15);
const CREATE_POLL: Duration = Duration::from_millis(50);

/// Writes a booking's master data.
pub(super) struct Masters<'a> {
    pub tenant: &'a Tenant,
    pub client: &'a TenantClient,
    pub records: &'a Records,
}

/// What [`Masters::ensure_customer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CustomerWrite {
    pub id: i64,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Customer,
    Item,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Item => "item",
        }
    }
}

/// Who made a code that had to be created.
enum Made {
    /// This job created it (and everything that goes with it).
    Here(i64),
    /// Another job did, or Minimax already had it.
    Elsewhere(i64),
}

/// Item ids for planning before anything exists: ids do not change a document's totals.
pub(super) fn placeholder_ids(needs: &[ItemNeed]) -> BTreeMap<String, i64> {
    needs.iter().map(|n| (n.code.clone(), 0)).collect()
}

/// What was last written for a customer code, as two hashes: the customer body and
/// its contact (e-mail, phone), stored as `<body>:<contact>`, so a change of one costs
/// only the calls of that one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    body: String,
    contact: String,
}

impl Written {
    /// The currency is left out, as [`mapping::customer_needs_update`] leaves it out: a
    /// customer keeps its default currency when an order (or a customer event, in the
    /// home currency) brings another.
    fn of(plan: &CustomerPlan) -> Self {
        let owned = crate::minimax::models::Customer {
            currency: None,
            ..plan.customer.clone()
        };
        let body = serde_json::to_vec(&owned).unwrap_or_default();
        let mut contact = Sha256::new();
        contact.update(plan.email.as_deref().unwrap_or("").as_bytes());
        contact.update([0]);
        contact.update(plan.phone.as_deref().unwrap_or("").as_bytes());
        Written {
            body: crate::crypto::hex(&Sha256::digest(&body)),
            contact: crate::crypto::hex(&contact.finalize()),
        }
    }

    fn encode(&self) -> String {
        format!("{}:{}", self.body, self.contact)
    }

    /// A stored digest; `None` parts are unknown (never written, or an older format).
    fn parse(stored: Option<&str>) -> (Option<&str>, Option<&str>) {
        match stored.and_then(|s| s.split_once(':')) {
            Some((body, contact)) => (Some(body), Some(contact)),
            None => (None, None),
        }
    }
}

impl Masters<'_> {
    fn organisation_id(&self) -> i64 {
        self.tenant.organisation_id
    }

    /// Finds or creates the Minimax customer of `plan`; updates it only when the shop's
    /// data changed since we last wrote it.
    pub async fn ensure_customer(&self, plan: &CustomerPlan) -> Result<CustomerWrite> {
        let digest = Written::of(plan);
        let tenant = &self.tenant.id;
        let id = match self.client.customer_id_by_code(&plan.code).await? {
            Some(id) => id,
            None => {
                let made = self
                    .create_once(Kind::Customer, &plan.code, || async {
                        let id = self.client.create_customer(&plan.customer).await?;
                        self.create_contact(id, plan).await?;
                        self.records
                            .set_customer_digest(tenant, &plan.code, &digest.encode())
                            .await?;
                        tracing::info!(customer_id = id, "customer created");
                        Ok(id)
                    })
                    .await?;
                match made {
                    Made::Here(id) => {
                        return Ok(CustomerWrite {
                            id,
                            change: Change::Created,
                        })
                    }
                    // The winner wrote the contact and the digest under the lock (the
                    // digest check below then costs nothing); a 409 adopts.
                    Made::Elsewhere(id) => id,
                }
            }
        };
        let stored = self.records.customer_digest(tenant, &plan.code).await?;
        let (body, contact) = Written::parse(stored.as_deref());
        let body_same = body == Some(digest.body.as_str());
        let contact_same = contact == Some(digest.contact.as_str());
        if body_same && contact_same {
            return Ok(CustomerWrite {
                id,
                change: Change::Unchanged,
            });
        }
        // Changed in the shop, or not written by us (adopted: a create whose answer was
        // lost, a customer made in Minimax): one read, the write only when a field we
        // own differs; the contact is checked when it is not known to be there.
        let wrote = !body_same && self.update_customer(id, plan).await?;
        let added = !contact_same && self.ensure_contact(id, plan).await?;
        self.records
            .set_customer_digest(tenant, &plan.code, &digest.encode())
            .await?;
        if wrote || added {
            tracing::info!(customer_id = id, "customer updated");
        }
        Ok(CustomerWrite {
            id,
            change: if wrote || added {
                Change::Updated
            } else {
                Change::Unchanged
            },
        })
    }

    /// Writes the fields the connector owns when one differs; true when it wrote.
    async fn update_customer(&self, id: i64, plan: &CustomerPlan) -> Result<bool> {
        let updated = self
            .client
            .update_customer(id, |c| {
                let changed = mapping::customer_needs_update(c, plan);
                if changed {
                    mapping::merge_customer(c, &plan.customer);
                }
                changed
            })
            .await;
        match updated {
            Ok(wrote) => Ok(wrote),
            Err(MinimaxError::NotFound { .. }) => {
                self.client.forget_customer_code(&plan.code).await;
                Err(BookingError::Minimax(MinimaxError::Transient {
                    reason: "cached customer no longer exists; looking it up again".into(),
                    retry_after: Some(Duration::from_secs(1)),
                }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the default contact unless one of the customer's contacts already has
    /// the plan's e-mail (or, without an e-mail, its phone). True when it created one.
    async fn ensure_contact(&self, id: i64, plan: &CustomerPlan) -> Result<bool> {
        if plan.email.is_none() && plan.phone.is_none() {
            return Ok(false);
        }
        let same = |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a.trim().eq_ignore_ascii_case(b.trim()));
        let contacts = self.client.customer_contacts(id).await?;
        let present = contacts.iter().any(|c| match &plan.email {
            Some(_) => same(&c.email, &plan.email),
            None => same(&c.phone_number, &plan.phone),
        });
        if present {
            return Ok(false);
        }
        self.create_contact(id, plan).await?;
        Ok(true)
    }

    async fn create_contact(&self, id: i64, plan: &CustomerPlan) -> Result<()> {
        if plan.email.is_none() && plan.phone.is_none() {
            return Ok(());
        }
        let contact = Contact {
            customer: Some(Fk::id(id)),
            full_name: plan.customer.name.clone(),
            email: plan.email.clone(),
            phone_number: plan.phone.clone(),
            default: Some("D".into()),
            ..Default::default()
        };
        self.client.create_contact(id, &contact).await?;
        Ok(())
    }

    /// The ids of the items that exist (cached, else one read each). A missing item
    /// that may not be created fails here, before anything is written.
    pub async fn existing_items(&self, needs: &[ItemNeed]) -> Result<BTreeMap<String, i64>> {
        let mut ids = BTreeMap::new();
        for need in needs {
            if ids.contains_key(&need.code) {
                continue;
            }
            match self.client.item_id_by_code(&need.code).await? {
                Some(id) => {
                    ids.insert(need.code.clone(), id);
                }
                None if !need.create_if_missing => {
                    return Err(BookingError::Setting(format!(
                        "item {:?} ({}) does not exist in Minimax; create it there or allow creating missing items (settings.item_strategy)",
                        need.code, need.name
                    )))
                }
                None => {}
            }
        }
        Ok(ids)
    }

    /// Creates every needed item not in `ids`, once per code, and adds its id.
    pub async fn create_missing_items(
        &self,
        needs: Vec<ItemNeed>,
        mut ids: BTreeMap<String, i64>,
        org: &OrgData,
    ) -> Result<BTreeMap<String, i64>> {
        for need in needs {
            if ids.contains_key(&need.code) {
                continue;
            }
            let item = Item {
                name: Some(need.name.clone()),
                code: Some(need.code.clone()),
                item_type: Some(need.item_type.clone()),
                vat_rate: Some(Fk::id(need.vat_rate_id)),
                price: Some(need.price),
                currency: Some(Fk::id(org.currency_id)),
                unit_of_measurement: Some("kos".into()),
                usage: Some("D".into()),
                ..Default::default()
            };
            let made = self
                .create_once(Kind::Item, &need.code, || async {
                    Ok(self.client.create_item(&item).await?)
                })
                .await?;
            let (Made::Here(id) | Made::Elsewhere(id)) = made;
            ids.insert(need.code, id);
        }
        Ok(ids)
    }

    /// Runs `create` for `code` unless another job (any instance) has made it: takes
    /// the code's create lock, waiting while another job holds it, then looks in the
    /// code cache, where every create leaves its id. A 409 (made outside our locks, or
    /// an earlier answer we lost) reads the id by code.
    async fn create_once<F, Fut>(&self, kind: Kind, code: &str, create: F) -> Result<Made>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64>>,
    {
        let org = self.organisation_id();
        let deadline = tokio::time::Instant::now() + CREATE_WAIT;
        let token = loop {
            if let Some(token) = self
                .records
                .lock_master(org, kind.as_str(), code, CREATE_LOCK_MS)
                .await?
            {
                break token;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BookingError::Wait {
                    reason: format!(
                        "another job is creating {} {code} in Minimax",
                        kind.as_str()
                    ),
                    until: chrono::Utc::now() + chrono::Duration::seconds(2),
                });
            }
            tokio::time::sleep(CREATE_POLL).await;
        };
        let result = async {
            if let Some(id) = self.known_id(kind, code).await {
                return Ok(Made::Elsewhere(id));
            }
            match create().await {
                Ok(id) => Ok(Made::Here(id)),
                Err(BookingError::Minimax(MinimaxError::Validation { status: 409, .. })) => self
                    .found_after_conflict(kind, code)
                    .await
                    .map(Made::Elsewhere),
                Err(e) => Err(e),
            }
        }
        .await;
        self.records
            .unlock_master(org, kind.as_str(), code, &token)
            .await;
        result
    }

    async fn known_id(&self, kind: Kind, code: &str) -> Option<i64> {
        match kind {
            Kind::Customer => self.client.known_customer_id(code).await,
            Kind::Item => self.client.known_item_id(code).await,
        }
    }

    async fn found_after_conflict(&self, kind: Kind, code: &str) -> Result<i64> {
        let found = match kind {
            Kind::Customer => {
                self.client.forget_customer_code(code).await;
                self.client.customer_id_by_code(code).await?
            }
            Kind::Item => {
                self.client.forget_item_code(code).await;
                self.client.item_id_by_code(code).await?
            }
        };
        found.ok_or_else(|| {
            BookingError::Permanent(format!(
                "Minimax refused {} {code} as a duplicate but cannot find it",
                kind.as_str()
            ))
        })
    }
}
