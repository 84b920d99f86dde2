//! A customer (`customers/*` bodies, or an order's `customer`) and its addresses.

use crate::webshop::event::{Address, Customer};
use crate::webshop::reader::Obj;
use crate::webshop::WebshopError;

/// A customer (the body of `customers/*`, or an order's `customer`).
pub(super) fn customer_from(root: &Obj<'_>) -> Result<Customer, WebshopError> {
    let default_address = match root.opt_obj("default_address")? {
        Some(a) => address(&a)?,
        None => match root.objs("addresses")?.first() {
            Some(a) => address(a)?,
            None => None,
        },
    };
    Ok(Customer {
        shop_customer_id: Some(root.req_id("id")?),
        email: root.opt_text("email")?,
        first_name: root.opt_text("first_name")?,
        last_name: root.opt_text("last_name")?,
        company: default_address.as_ref().and_then(|a| a.company.clone()),
        // Shopify has no VAT number on customers (B2B ids live on company locations).
        vat_number: None,
        phone: match root.opt_text("phone")? {
            Some(p) => Some(p),
            None => default_address.as_ref().and_then(|a| a.phone.clone()),
        },
        tax_exempt: root.opt_bool("tax_exempt")?.unwrap_or(false),
        tax_exemptions: root.strings("tax_exemptions")?,
        billing: default_address,
        shipping: None,
    })
}

pub(super) fn address(a: &Obj<'_>) -> Result<Option<Address>, WebshopError> {
    let first_name = a.opt_text("first_name")?;
    let last_name = a.opt_text("last_name")?;
    let name = match a.opt_text("name")? {
        Some(n) => Some(n),
        None => Address::joined_name(&first_name, &last_name),
    };
    let street = [a.opt_text("address1")?, a.opt_text("address2")?]
        .into_iter()
        .flatten()
        .collect();
    let addr = Address {
        first_name,
        last_name,
        name,
        company: a.opt_text("company")?,
        street,
        city: a.opt_text("city")?,
        postcode: a.opt_text("zip")?,
        country_code: a.opt_text("country_code")?,
        state: match a.opt_text("province_code")? {
            Some(p) => Some(p),
            None => a.opt_text("province")?,
        },
        email: None,
        phone: a.opt_text("phone")?,
        vat_number: None,
    };
    Ok((!addr.is_empty()).then_some(addr))
}
