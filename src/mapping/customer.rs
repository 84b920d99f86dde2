//! The Minimax customer a document is for: its stable code (per the tenant's customer
//! strategy), the Customer body to create or compare, and the e-mail/phone for its
//! default Contact (Customer has no e-mail field; docs/minimax-client.md, "Customers").
//!
//! Guarantees: the same shop customer always gets the same code (≤ 30 characters),
//! whether it comes with an order or with a customer event of its own; `CountryName` is
//! only set abroad (Minimax prohibits it for the home country); `SubjectToVAT` is "D"
//! exactly when the buyer gave a VAT number.

use sha2::{Digest, Sha256};

use crate::minimax::models::{Customer, Fk};
use crate::webshop::{Address, Customer as ShopCustomer, Order};

use super::lines::truncate;
use super::settings::{BookingSettings, CustomerStrategy};
use super::{MappingError, OrgData};

/// Longest customer code we produce (the documented 10 is not enforced; keep ≤ 30,
/// docs/minimax-client.md, "Customers").
const MAX_CODE: usize = 30;

/// The customer the document is for.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerPlan {
    /// Stable Minimax `Code` (look up with `customers/code(...)`).
    pub code: String,
    /// Body for `POST customers` (and the fields compared by [`customer_needs_update`]).
    pub customer: Customer,
    /// For the default Contact.
    pub email: Option<String>,
    pub phone: Option<String>,
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Who a customer plan is made from: an order's customer and billing address, or a
/// shop customer of its own (customer events).
#[derive(Clone, Copy)]
struct Buyer<'a> {
    customer: Option<&'a ShopCustomer>,
    billing: Option<&'a Address>,
}

impl<'a> Buyer<'a> {
    fn of_order(order: &'a Order) -> Self {
        Buyer {
            customer: order.customer.as_ref(),
            billing: order.billing.as_ref(),
        }
    }

    fn of_customer(customer: &'a ShopCustomer) -> Self {
        Buyer {
            customer: Some(customer),
            billing: None,
        }
    }

    /// The billing address, falling back to the customer's stored billing address.
    fn billing(self) -> Option<&'a Address> {
        self.billing
            .filter(|a| !a.is_empty())
            .or_else(|| self.customer.and_then(|c| c.billing.as_ref()))
            .filter(|a| !a.is_empty())
    }

    fn email(self) -> Option<String> {
        non_empty(self.customer.and_then(|c| c.email.as_deref()))
            .or_else(|| non_empty(self.billing().and_then(|b| b.email.as_deref())))
    }

    /// The buyer's VAT number, normalised (upper case, no spaces).
    fn vat_number(self) -> Option<String> {
        non_empty(self.customer.and_then(|c| c.vat_number.as_deref()))
            .or_else(|| non_empty(self.billing().and_then(|b| b.vat_number.as_deref())))
            .map(|v| v.split_whitespace().collect::<String>().to_uppercase())
    }

    fn shop_id(self) -> Option<String> {
        non_empty(self.customer.and_then(|c| c.shop_customer_id.as_deref())).filter(|id| id != "0")
    }

    /// The code key per the strategy: shop customer id, else the e-mail; `None` for the
    /// catch-all customer.
    fn key(self, settings: &BookingSettings) -> Option<String> {
        match settings.customer_strategy {
            CustomerStrategy::CatchAll => None,
            CustomerStrategy::PerShopCustomer => self
                .shop_id()
                .or_else(|| self.email().map(|e| e.to_lowercase())),
        }
    }

    /// A name for the customer, if the shop gave one (company or person).
    fn name(self) -> Option<String> {
        let c = self.customer;
        let person = [
            c.and_then(|c| c.first_name.as_deref()),
            c.and_then(|c| c.last_name.as_deref()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        self.billing()
            .and_then(address_name)
            .or_else(|| non_empty(c.and_then(|c| c.company.as_deref())))
            .or_else(|| non_empty(Some(&person)))
    }
}

/// Name shown for an address: the company when there is one, else the person.
pub(crate) fn address_name(a: &Address) -> Option<String> {
    non_empty(a.company.as_deref())
        .or_else(|| non_empty(a.name.as_deref()))
        .or_else(|| {
            let joined = [a.first_name.as_deref(), a.last_name.as_deref()]
                .into_iter()
                .flatten()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            non_empty(Some(&joined))
        })
}

pub(crate) fn street(a: &Address) -> Option<String> {
    non_empty(Some(&a.street.join(", ")))
}

/// Country FK and `CountryName` (only abroad) of an ISO code; `None` code = home.
pub(crate) fn country(
    code: Option<&str>,
    org: &OrgData,
) -> Result<(Fk, Option<String>), MappingError> {
    let code = non_empty(code)
        .unwrap_or_else(|| org.home_country.clone())
        .to_uppercase();
    let id = org.country_ids.get(&code).copied().ok_or_else(|| {
        MappingError::Unsupported(format!(
            "country '{code}' was not looked up in Minimax (OrgData.country_ids)"
        ))
    })?;
    let abroad = !code.eq_ignore_ascii_case(&org.home_country);
    Ok((Fk::id(id), abroad.then_some(code)))
}

/// ISO country codes the order's documents need (`OrgData::country_ids`): billing,
/// shipping and the home country.
pub fn country_codes(order: &Order, org_home_country: &str) -> Vec<String> {
    let mut out: Vec<String> = [order.billing.as_ref(), order.shipping.as_ref()]
        .into_iter()
        .flatten()
        .chain(order.customer.as_ref().and_then(|c| c.billing.as_ref()))
        .filter_map(|a| non_empty(a.country_code.as_deref()))
        .map(|c| c.to_uppercase())
        .chain(std::iter::once(org_home_country.to_uppercase()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A code from a shop key: prefix + key when it fits, else prefix + a hash of the key.
fn code_from(prefix: &str, key: &str) -> String {
    let plain = format!("{prefix}{key}");
    if plain.chars().count() <= MAX_CODE {
        return plain;
    }
    let hex = crate::crypto::hex(&Sha256::digest(key.as_bytes()));
    let room = MAX_CODE.saturating_sub(prefix.chars().count()).max(8);
    truncate(
        &format!("{prefix}{}", &hex[..room.min(hex.len())]),
        MAX_CODE,
    )
}

/// The customer plan per `settings.customer_strategy`. A guest without an e-mail has no
/// stable identity and goes on the catch-all customer (the buyer is still on the
/// document's addressee fields).
pub fn customer_plan(
    order: &Order,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<CustomerPlan, MappingError> {
    buyer_plan(Buyer::of_order(order), settings, org)
}

/// Why a shop customer event cannot become a Minimax customer of its own (`None`: it
/// can); the customer is then created with its first order, as before.
pub fn customer_event_gap(customer: &ShopCustomer, settings: &BookingSettings) -> Option<String> {
    let buyer = Buyer::of_customer(customer);
    let who = customer
        .shop_customer_id
        .as_deref()
        .unwrap_or("without an id");
    if buyer.key(settings).is_none() {
        return Some(match settings.customer_strategy {
            CustomerStrategy::CatchAll => {
                "shop customers are not Minimax customers: settings.customer_strategy is catch_all"
                    .into()
            }
            CustomerStrategy::PerShopCustomer => {
                format!("customer {who} has neither a shop id nor an e-mail to key it by")
            }
        });
    }
    if buyer.name().is_none() {
        return Some(format!(
            "customer {who} has no name (company, or first and last name); Minimax needs one, so it is created with its first order"
        ));
    }
    if buyer
        .billing()
        .and_then(|b| non_empty(b.country_code.as_deref()))
        .is_none()
    {
        return Some(format!(
            "customer {who} has no country in its billing address; Minimax needs one, so it is created with its first order"
        ));
    }
    None
}

/// The plan of a shop customer event: the same code and fields an order of that
/// customer would give it. Check [`customer_event_gap`] first.
pub fn customer_event_plan(
    customer: &ShopCustomer,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<CustomerPlan, MappingError> {
    buyer_plan(Buyer::of_customer(customer), settings, org)
}

/// ISO country codes a customer event's plan needs (`OrgData::country_ids`).
pub fn customer_country_codes(customer: &ShopCustomer, org_home_country: &str) -> Vec<String> {
    let mut out: Vec<String> = Buyer::of_customer(customer)
        .billing()
        .and_then(|a| non_empty(a.country_code.as_deref()))
        .map(|c| c.to_uppercase())
        .into_iter()
        .chain(std::iter::once(org_home_country.to_uppercase()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The code a shop customer event is recorded under (deleted customers), if any.
pub fn customer_event_code(customer: &ShopCustomer, settings: &BookingSettings) -> Option<String> {
    Buyer::of_customer(customer)
        .key(settings)
        .map(|key| code_from(&settings.customer_code_prefix, &key))
}

fn buyer_plan(
    buyer: Buyer<'_>,
    settings: &BookingSettings,
    org: &OrgData,
) -> Result<CustomerPlan, MappingError> {
    let email = buyer.email();
    let phone = non_empty(buyer.billing().and_then(|b| b.phone.as_deref()))
        .or_else(|| non_empty(buyer.customer.and_then(|c| c.phone.as_deref())));
    let Some(key) = buyer.key(settings) else {
        let (country, _) = country(None, org)?;
        return Ok(CustomerPlan {
            code: settings.catch_all_customer_code.clone(),
            customer: Customer {
                code: Some(settings.catch_all_customer_code.clone()),
                name: Some(settings.catch_all_customer_name.clone()),
                country: Some(country),
                subject_to_vat: Some("N".into()),
                currency: Some(Fk::id(org.currency_id)),
                e_invoice_issuing: Some("SeNePripravlja".into()),
                usage: Some("D".into()),
                ..Customer::default()
            },
            email: None,
            phone: None,
        });
    };
    let code = code_from(&settings.customer_code_prefix, &key);
    let addr = buyer.billing().cloned().unwrap_or_default();
    let name = buyer
        .name()
        .or_else(|| email.clone())
        .unwrap_or_else(|| code.clone());
    let (country_fk, country_name) = country(addr.country_code.as_deref(), org)?;
    let vat = buyer.vat_number();
    Ok(CustomerPlan {
        customer: Customer {
            code: Some(code.clone()),
            name: Some(truncate(&name, 250)),
            address: street(&addr).map(|s| truncate(&s, 250)),
            postal_code: non_empty(addr.postcode.as_deref()).map(|s| truncate(&s, 30)),
            city: non_empty(addr.city.as_deref()).map(|s| truncate(&s, 250)),
            country: Some(country_fk),
            country_name,
            subject_to_vat: Some(if vat.is_some() { "D" } else { "N" }.into()),
            vat_identification_number: vat.map(|v| truncate(&v, 30)),
            currency: Some(Fk::id(org.currency_id)),
            e_invoice_issuing: Some("SeNePripravlja".into()),
            usage: Some("D".into()),
            ..Customer::default()
        },
        code,
        email,
        phone,
    })
}

/// True when the stored customer differs from the plan in a field the connector owns:
/// name, address, postal code and city when the shop gave them (an accountant's entry is
/// not cleared by an order without it), and always the country, country name, VAT status
/// and VAT number. Blank and missing count as equal; the currency is not compared (an
/// existing customer keeps its default currency when one order is in another).
pub fn customer_needs_update(existing: &Customer, plan: &CustomerPlan) -> bool {
    let norm = |s: &Option<String>| non_empty(s.as_deref());
    let want = &plan.customer;
    let given_differs = [
        (&existing.name, &want.name),
        (&existing.address, &want.address),
        (&existing.postal_code, &want.postal_code),
        (&existing.city, &want.city),
    ]
    .iter()
    .any(|(a, b)| norm(b).is_some() && norm(a) != norm(b));
    let owned_differs = [
        (&existing.country_name, &want.country_name),
        (&existing.subject_to_vat, &want.subject_to_vat),
        (
            &existing.vat_identification_number,
            &want.vat_identification_number,
        ),
    ]
    .iter()
    .any(|(a, b)| norm(a) != norm(b));
    let country_differs =
        existing.country.as_ref().and_then(|f| f.id) != want.country.as_ref().and_then(|f| f.id);
    given_differs || owned_differs || country_differs
}

/// Copies the fields the mapping owns onto a customer read from Minimax (the fields
/// [`customer_needs_update`] compares); the rest stays as the accountant left it.
pub fn merge_customer(current: &mut Customer, wanted: &Customer) {
    let w = wanted.clone();
    current.name = w.name.or(current.name.take());
    current.address = w.address;
    current.postal_code = w.postal_code;
    current.city = w.city;
    current.country = w.country.or(current.country.take());
    current.country_name = w.country_name;
    current.vat_identification_number = w.vat_identification_number;
    current.subject_to_vat = w.subject_to_vat.or(current.subject_to_vat.take());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_short() {
        assert_eq!(code_from("WEB-", "42"), "WEB-42");
        let long = "someone.with.a.long.name@example.com";
        let a = code_from("WEB-", long);
        assert_eq!(a, code_from("WEB-", long));
        assert_eq!(a.chars().count(), MAX_CODE);
        assert_ne!(
            a,
            code_from("WEB-", "someone.else.with.a.long.name@example.com")
        );
    }
}
