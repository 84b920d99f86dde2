//! Customers (B2B, consumers, guests, catch-all, updates), items (SKU, generic per rate)
//! and received orders.

use super::*;

#[test]
fn b2b_customer_with_a_vat_number() {
    let o = order(json!({
        "customer": {"shop_customer_id": "7", "email": "buy@firma.hr", "vat_number": "hr 12345678901"},
        "billing": {"company": "Firma d.o.o.", "name": "Iva Horvat", "street": ["Ilica 1", "2. kat"],
                     "city": "Zagreb", "postcode": "10000", "country_code": "HR",
                     "phone": "+385 1 111"}
    }));
    let c = customer_plan(&o, &settings(), &si_org()).unwrap();
    assert_eq!(c.code, "WEB-7");
    let m = &c.customer;
    assert_eq!(m.name.as_deref(), Some("Firma d.o.o."));
    assert_eq!(m.address.as_deref(), Some("Ilica 1, 2. kat"));
    assert_eq!(m.subject_to_vat.as_deref(), Some("D"));
    assert_eq!(
        m.vat_identification_number.as_deref(),
        Some("HR12345678901")
    );
    assert_eq!(m.country.as_ref().unwrap().id, Some(95));
    assert_eq!(m.country_name.as_deref(), Some("HR"));
    assert_eq!(m.e_invoice_issuing.as_deref(), Some("SeNePripravlja"));
    assert_eq!(m.usage.as_deref(), Some("D"));
    assert_eq!(c.email.as_deref(), Some("buy@firma.hr"));
    assert_eq!(c.phone.as_deref(), Some("+385 1 111"));
}

#[test]
fn consumer_and_guest_customers() {
    let o = order(json!({}));
    let c = customer_plan(&o, &settings(), &si_org()).unwrap();
    assert_eq!(c.code, "WEB-42");
    assert_eq!(c.customer.subject_to_vat.as_deref(), Some("N"));
    assert_eq!(c.customer.country_name, None, "home country");
    assert_eq!(c.customer.name.as_deref(), Some("Ana Novak"));
    // Guest: code from the e-mail, lower case.
    let guest = order(json!({"customer": {"email": "Guest.Buyer@Example.com"}}));
    let c = customer_plan(&guest, &settings(), &si_org()).unwrap();
    assert_eq!(c.code, "WEB-guest.buyer@example.com");
    // A long e-mail gets a stable hashed code of at most 30 characters.
    let long =
        order(json!({"customer": {"email": "a.very.long.address.indeed@subdomain.example.com"}}));
    let a = customer_plan(&long, &settings(), &si_org()).unwrap().code;
    let b = customer_plan(&long, &settings(), &si_org()).unwrap().code;
    assert_eq!(a, b);
    assert!(a.starts_with("WEB-") && a.chars().count() <= 30, "{a}");
    // A guest without e-mail goes on the catch-all customer.
    let anon = order(json!({"customer": null, "billing": {"name": "X", "country_code": "SI"}}));
    let c = customer_plan(&anon, &settings(), &si_org()).unwrap();
    assert_eq!(c.code, "WEB");
}

#[test]
fn a_customer_event_plans_the_customer_its_orders_plan() {
    for body in [
        json!({"customer": {"shop_customer_id": "7", "email": "buy@firma.hr", "vat_number": "hr 12345678901"},
               "billing": {"company": "Firma d.o.o.", "street": ["Ilica 1"], "city": "Zagreb",
                           "postcode": "10000", "country_code": "HR", "phone": "+385 1 111"}}),
        json!({}),
    ] {
        let o = order(body);
        let mut shop_customer = o.customer.clone().unwrap();
        shop_customer.billing = o.billing.clone();
        let from_order = customer_plan(&o, &settings(), &si_org()).unwrap();
        assert_eq!(
            customer_event_gap(&shop_customer, &settings()),
            None,
            "{shop_customer:?}"
        );
        let from_event = customer_event_plan(&shop_customer, &settings(), &si_org()).unwrap();
        assert_eq!(from_event, from_order);
    }
}

#[test]
fn a_customer_event_without_name_country_or_key_names_the_gap() {
    let o = order(json!({}));
    let mut c = o.customer.clone().unwrap();
    c.billing = o.billing.clone();
    let mut no_country = c.clone();
    no_country.billing.as_mut().unwrap().country_code = None;
    let gap = customer_event_gap(&no_country, &settings()).unwrap();
    assert!(gap.contains("no country"), "{gap}");
    let mut no_name = c.clone();
    no_name.first_name = None;
    no_name.last_name = None;
    no_name.company = None;
    let b = no_name.billing.as_mut().unwrap();
    b.first_name = None;
    b.last_name = None;
    b.name = None;
    b.company = None;
    let gap = customer_event_gap(&no_name, &settings()).unwrap();
    assert!(gap.contains("no name"), "{gap}");
    let mut catch_all = settings();
    catch_all.customer_strategy = CustomerStrategy::CatchAll;
    let gap = customer_event_gap(&c, &catch_all).unwrap();
    assert!(gap.contains("catch_all"), "{gap}");
}

#[test]
fn catch_all_customer() {
    let mut s = settings();
    s.customer_strategy = CustomerStrategy::CatchAll;
    s.catch_all_customer_code = "SPLET".into();
    s.catch_all_customer_name = "Spletni kupci".into();
    let c = customer_plan(&order(json!({})), &s, &si_org()).unwrap();
    assert_eq!(c.code, "SPLET");
    assert_eq!(c.customer.name.as_deref(), Some("Spletni kupci"));
    assert_eq!(c.customer.country.as_ref().unwrap().id, Some(192));
    assert_eq!(c.email, None);
}

#[test]
fn customer_update_only_for_owned_fields() {
    let o = order(json!({}));
    let plan = customer_plan(&o, &settings(), &si_org()).unwrap();
    let mut stored = plan.customer.clone();
    stored.customer_id = Some(9);
    stored.row_version = Some("AAAA".into());
    stored.web_site_url = Some("https://ana.si".into());
    stored.currency = Some(minimax_connector::minimax::models::Fk::id(99));
    assert!(!customer_needs_update(&stored, &plan));
    stored.city = Some("Maribor".into());
    assert!(customer_needs_update(&stored, &plan));
    stored.city = plan.customer.city.clone();
    stored.vat_identification_number = Some("SI1".into());
    assert!(customer_needs_update(&stored, &plan));
}

#[test]
fn generic_items_per_vat_rate() {
    let mut s = settings();
    s.item_strategy = ItemStrategy::GenericPerVatRate;
    let o = order(json!({
        "lines": [line("Mug", "", "1", "10.00", "10.00", "2.20", "22"),
                  line("Tea", "", "1", "10.00", "10.00", "0.95", "9.5"),
                  line("Cup", "", "1", "5.00", "5.00", "1.10", "22")],
        "tax_lines": [tax_line("22", "3.30"), tax_line("9.5", "0.95")],
        "subtotal": "25.00", "total_tax": "4.25", "total": "29.25"
    }));
    let needs = item_needs(&o, &s, &si_org()).unwrap();
    let codes: Vec<&str> = needs.iter().map(|n| n.code.as_str()).collect();
    assert_eq!(codes, ["WEB-VAT-S", "WEB-VAT-N"]);
    assert!(needs
        .iter()
        .all(|n| n.create_if_missing && n.item_type == "S"));
    let p = invoice_plan(&o, &s, &si_org(), 1, &ids_for(&needs), date()).unwrap();
    assert_eq!(
        p.invoice.issued_invoice_rows[2].item_name.as_deref(),
        Some("Cup")
    );
}

#[test]
fn missing_sku() {
    let o = order(json!({
        "lines": [json!({"name": "Loose tea", "product_id": "77", "quantity": "1", "subtotal": "5.00",
                          "discount": "0", "total": "5.00", "total_tax": "0.48", "tax_rate_percent": "9.5"})],
        "tax_lines": [tax_line("9.5", "0.48")],
        "subtotal": "5.00", "total_tax": "0.48", "total": "5.48"
    }));
    let mut s = settings();
    s.item_strategy = ItemStrategy::BySkuRequireExisting;
    let err = item_needs(&o, &s, &si_org()).unwrap_err();
    assert_eq!(
        err,
        MappingError::MissingSku {
            line: "Loose tea".into()
        }
    );
    assert!(err.to_string().contains("'Loose tea'"));
    // Creating missing items: a code from the product id.
    let needs = item_needs(&o, &settings(), &si_org()).unwrap();
    assert_eq!(needs[0].code, "WEB-P77");
    assert!(needs[0].create_if_missing);
    // Require-existing items are not to be created.
    let o2 = order(json!({"lines": [line("Mug", "MUG", "1", "1.00", "1.00", "0.22", "22")]}));
    assert!(!item_needs(&o2, &s, &si_org()).unwrap()[0].create_if_missing);
}

#[test]
fn item_missing_from_item_ids_is_an_error() {
    let o = order(json!({
        "lines": [line("Mug", "MUG", "1", "10.00", "10.00", "2.20", "22")],
        "tax_lines": [tax_line("22", "2.20")],
        "subtotal": "10.00", "total_tax": "2.20", "total": "12.20"
    }));
    let err = invoice_plan(&o, &settings(), &si_org(), 1, &BTreeMap::new(), date()).unwrap_err();
    assert!(err.to_string().contains("'MUG'"), "{err}");
}

#[test]
fn received_order_has_net_prices_and_reference() {
    let o = order(json!({
        "amounts_include_tax": true,
        "lines": [line("Sock", "SOCK", "2", "24.40", "24.40", "4.40", "22")],
        "tax_lines": [tax_line("22", "4.40")],
        "subtotal": "24.40", "total_tax": "4.40", "total": "24.40"
    }));
    let needs = item_needs(&o, &settings(), &si_org()).unwrap();
    let mo = order_plan(&o, &settings(), &si_org(), 3, &ids_for(&needs), date()).unwrap();
    assert_eq!(mo.received_issued.as_deref(), Some("P"));
    assert_eq!(mo.reference.as_deref(), Some("1001"));
    assert_eq!(mo.customer.as_ref().unwrap().id, Some(3));
    let row = &mo.order_rows[0];
    assert_eq!(
        (row.quantity, row.price),
        (Some(dec!(2)), Some(dec!(10.00)))
    );
}
