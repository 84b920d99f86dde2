//! Table cases: rows, VAT rates, coupons, fees, currency, rounding and payment of one
//! order's invoice.

use super::*;

#[test]
fn net_prices_with_two_rates_shipping_and_a_fixed_coupon() {
    // 2 × 12.30 at 22 % with a 5.00 coupon, 3 × 4.10 at 9.5 %, shipping 3.90 at 22 %.
    let o = order(json!({
        "lines": [line("Mug", "MUG", "2", "24.60", "19.60", "4.31", "22"),
                  line("Tea", "TEA", "3", "12.30", "12.30", "1.17", "9.5")],
        "shipping_lines": [{"title": "Pošta", "subtotal": "3.90", "discount": "0",
                             "total": "3.90", "total_tax": "0.86", "tax_rate_percent": "22"}],
        "discounts": [{"code": "FIVE", "kind": "fixed", "amount": "5.00"}],
        "tax_lines": [tax_line("22", "5.17"), tax_line("9.5", "1.17")],
        "subtotal": "36.90", "discount_total": "5.00", "shipping_total": "3.90",
        "total_tax": "6.34", "total": "42.14"
    }));
    assert_books_to_the_cent(
        &o,
        &si_org(),
        &[(dec!(22), dec!(5.17)), (dec!(9.5), dec!(1.17))],
    );
    let p = plan(&o, &settings(), &si_org()).unwrap();
    let mug = &p.invoice.issued_invoice_rows[0];
    assert_eq!(
        (mug.price, mug.quantity),
        (Some(dec!(12.30)), Some(dec!(2)))
    );
    assert_eq!(mug.discount, Some(dec!(5.00)), "fixed coupon as an amount");
    assert_eq!(mug.vat_rate.as_ref().unwrap().id, Some(1));
    assert_eq!(mug.unit_of_measurement.as_deref(), Some("kos"));
    assert_eq!(mug.row_number, Some(1));
    let tea = &p.invoice.issued_invoice_rows[1];
    assert_eq!(tea.vat_rate.as_ref().unwrap().id, Some(2));
    assert_eq!(tea.price_with_vat, Some(dec!(4.4895)));
    assert_eq!(
        p.invoice.addressee_country_name, None,
        "home country: no name"
    );
    assert_eq!(p.invoice.date_due, p.invoice.date_issued);
    assert_eq!(p.invoice.invoice_type.as_deref(), Some("R"));
    assert_eq!(
        p.invoice.document_numbering.as_ref().unwrap().id,
        Some(52130)
    );
    assert_eq!(
        p.invoice
            .issued_invoice_report_template
            .as_ref()
            .unwrap()
            .id,
        Some(301)
    );
}

#[test]
fn gross_prices_use_prices_on_invoice_d() {
    // Shopify-style taxes included: 4 × 12.50 gross at 22 % with 10 % off = 45.00.
    let o = order(json!({
        "amounts_include_tax": true, "prices_include_tax": true,
        "lines": [line("Sock", "SOCK", "4", "50.00", "45.00", "8.11", "22")],
        "shipping_lines": [{"title": "DPD", "subtotal": "4.99", "discount": "0",
                             "total": "4.99", "total_tax": "0.90", "tax_rate_percent": "22"}],
        "tax_lines": [tax_line("22", "9.01")],
        "subtotal": "50.00", "discount_total": "5.00", "shipping_total": "4.99",
        "total_tax": "9.01", "total": "49.99"
    }));
    assert_books_to_the_cent(&o, &si_org(), &[(dec!(22), dec!(9.01))]);
    let p = plan(&o, &settings(), &si_org()).unwrap();
    assert_eq!(p.invoice.prices_on_invoice.as_deref(), Some("D"));
    let row = &p.invoice.issued_invoice_rows[0];
    assert_eq!(row.price_with_vat, Some(dec!(12.50)));
    assert_eq!(row.price, Some(dec!(10.2459)));
    assert_eq!(
        row.discount_percent,
        Some(dec!(10)),
        "percentage coupon as a percent"
    );
}

#[test]
fn percentage_coupon_that_is_not_exact_is_an_amount() {
    // 15 % off 3 × 6.99 = 20.97 → 17.82 (the shop rounded 17.8245).
    let o = order(json!({
        "lines": [line("Pen", "PEN", "3", "20.97", "17.82", "3.92", "22")],
        "discounts": [{"code": "P15", "kind": "percentage", "value": "15", "amount": "3.15"}],
        "tax_lines": [tax_line("22", "3.92")],
        "subtotal": "20.97", "discount_total": "3.15", "total_tax": "3.92", "total": "21.74"
    }));
    assert_books_to_the_cent(&o, &si_org(), &[(dec!(22), dec!(3.92))]);
    let row = &plan(&o, &settings(), &si_org())
        .unwrap()
        .invoice
        .issued_invoice_rows[0];
    assert_eq!(
        (row.discount_percent, row.discount),
        (None, Some(dec!(3.15)))
    );
}

#[test]
fn uneven_unit_price_stays_one_row_with_the_shops_quantity() {
    // 10.00 for 3 units without a discount: one row of 3 at 3.34 less 0.02, so Minimax
    // rounds the VAT once on 10.00 as the shop did (two rows would round it twice).
    let o = order(json!({
        "lines": [line("Pack", "PACK", "3", "10.00", "10.00", "2.20", "22")],
        "tax_lines": [tax_line("22", "2.20")],
        "subtotal": "10.00", "total_tax": "2.20", "total": "12.20"
    }));
    assert_books_to_the_cent(&o, &si_org(), &[(dec!(22), dec!(2.20))]);
    let rows = plan(&o, &settings(), &si_org())
        .unwrap()
        .invoice
        .issued_invoice_rows;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].quantity, rows[0].price, rows[0].discount),
        (Some(dec!(3)), Some(dec!(3.34)), Some(dec!(0.02)))
    );
}

#[test]
fn two_times_10_575_is_one_row_and_its_vat_is_the_shops() {
    // The case: 2 × 10.575 = 21.15 net at 22 % → tax 4.65 (on 21.15). Rows of
    // 10.57 and 10.58 would give 2.33 + 2.33 = 4.66.
    let o = order(json!({
        "lines": [line("Tea", "TEA", "2", "21.15", "21.15", "4.65", "22")],
        "tax_lines": [tax_line("22", "4.65")],
        "subtotal": "21.15", "total_tax": "4.65", "total": "25.80"
    }));
    assert_books_to_the_cent(&o, &si_org(), &[(dec!(22), dec!(4.65))]);
    let rows = plan(&o, &settings(), &si_org())
        .unwrap()
        .invoice
        .issued_invoice_rows;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].quantity, Some(dec!(2)));
}

#[test]
fn fees_including_negative_and_a_zero_rated_line() {
    let o = order(json!({
        "lines": [line("Book", "BOOK", "1", "20.00", "20.00", "1.00", "5"),
                  json!({"name": "Gift card", "sku": "GIFT", "quantity": "1", "subtotal": "10.00",
                          "discount": "0", "total": "10.00", "total_tax": "0"})],
        "fees": [{"name": "Cash on delivery", "total": "2.00", "total_tax": "0.44"},
                 {"name": "Loyalty discount", "total": "-1.00", "total_tax": "-0.22"}],
        "tax_lines": [tax_line("5", "1.00"), tax_line("22", "0.22")],
        "subtotal": "30.00", "total_tax": "1.22", "total": "32.22"
    }));
    assert_books_to_the_cent(
        &o,
        &si_org(),
        &[(dec!(5), dec!(1.00)), (dec!(22), dec!(0.22))],
    );
    let p = plan(&o, &settings(), &si_org()).unwrap();
    let rows = &p.invoice.issued_invoice_rows;
    assert_eq!(
        rows[1].vat_rate.as_ref().unwrap().id,
        Some(4),
        "zero tax → 0 % rate"
    );
    assert_eq!(rows[2].item_code.as_deref(), Some("FEE"));
    assert_eq!(
        (rows[3].quantity, rows[3].price),
        (Some(dec!(-1)), Some(dec!(1.00)))
    );
    let needs = item_needs(&o, &settings(), &si_org()).unwrap();
    let codes: Vec<&str> = needs.iter().map(|n| n.code.as_str()).collect();
    assert_eq!(codes, ["BOOK", "GIFT", "FEE"], "one need per code");
    assert_eq!(needs[2].item_type, "S");
    assert_eq!(needs[0].item_type, "B");
}

#[test]
fn a_negative_fee_taxed_at_two_rates_is_one_row_per_rate() {
    // WooCommerce split a -10.00 discount fee's tax over the classes of the lines (60.00 at
    // 22 %, 40.00 at 9.5 %): -1.32 and -0.38. One row at 31.5 % would be refused.
    let o = order(json!({
        "lines": [line("Shirt", "SHIRT", "1", "60.00", "60.00", "13.20", "22"),
                  line("Tea", "TEA", "1", "40.00", "40.00", "3.80", "9.5")],
        "fees": [{"name": "Discount", "total": "-10.00", "total_tax": "-1.70",
                  "taxes": [{"rate_percent": "22", "amount": "-1.32"},
                            {"rate_percent": "9.5", "amount": "-0.38"}]}],
        "tax_lines": [tax_line("22", "11.88"), tax_line("9.5", "3.42")],
        "subtotal": "100.00", "total_tax": "15.30", "total": "105.30"
    }));
    assert_books_to_the_cent(
        &o,
        &si_org(),
        &[(dec!(22), dec!(11.88)), (dec!(9.5), dec!(3.42))],
    );
    let rows = plan(&o, &settings(), &si_org())
        .unwrap()
        .invoice
        .issued_invoice_rows;
    let fee: Vec<_> = rows
        .iter()
        .filter(|r| r.item_code.as_deref() == Some("FEE"))
        .map(|r| {
            (
                r.item_name.clone().unwrap(),
                r.quantity.unwrap() * r.price.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fee,
        [
            ("Discount (VAT 9.5 %)".to_owned(), dec!(-4.00)),
            ("Discount (VAT 22 %)".to_owned(), dec!(-6.00))
        ]
    );
}

#[test]
fn a_tax_inclusive_woocommerce_line_is_booked_gross() {
    // The line: net 42.62 and tax 10.65 of a 53.27 gross price at 25 %. Net × 25 %
    // gives 10.66; the gross gives the shop's 10.65.
    let o = order(json!({
        "prices_include_tax": true,
        "lines": [line("Lamp", "LAMP", "1", "42.62", "42.62", "10.65", "25")],
        "tax_lines": [tax_line("25", "10.65")],
        "subtotal": "42.62", "total_tax": "10.65", "total": "53.27"
    }));
    let mut org = si_org();
    org.vat_rates.push(rate(7, "H", dec!(25)));
    assert_books_to_the_cent(&o, &org, &[(dec!(25), dec!(10.65))]);
    let inv = plan(&o, &settings(), &org).unwrap().invoice;
    assert_eq!(inv.prices_on_invoice.as_deref(), Some("D"));
    assert_eq!(inv.issued_invoice_rows[0].price_with_vat, Some(dec!(53.27)));
    assert_eq!(inv.issued_invoice_rows.len(), 1, "no correction needed");
}

#[test]
fn rate_without_percent_is_derived_from_the_tax() {
    // Line and tax line without a percent (old WooCommerce): 22 % from 0.44 on 2.00.
    let o = order(json!({
        "lines": [{"name": "Sticker", "sku": "ST", "quantity": "1", "subtotal": "2.00",
                    "discount": "0", "total": "2.00", "total_tax": "0.44",
                    "taxes": [{"rate_id": "7", "amount": "0.44"}]}],
        "tax_lines": [{"rate_id": "7", "label": "DDV", "amount": "0.44"}],
        "subtotal": "2.00", "total_tax": "0.44", "total": "2.44"
    }));
    assert_books_to_the_cent(&o, &si_org(), &[(dec!(22), dec!(0.44))]);
}

#[test]
fn usd_order_uses_the_orders_currency_id() {
    let mut org = si_org();
    org.currency_id = 2; // USD looked up by the orchestrator
    let o = order(json!({
        "currency": "USD",
        "billing": {"name": "Bob Norman", "street": ["Chestnut Street 92"], "city": "Louisville",
                     "postcode": "40202", "country_code": "US"},
        "lines": [line("Widget", "W", "1", "50.00", "50.00", "11.00", "22")],
        "tax_lines": [tax_line("22", "11.00")],
        "subtotal": "50.00", "total_tax": "11.00", "total": "61.00"
    }));
    let p = plan(&o, &settings(), &org).unwrap();
    assert_eq!(p.invoice.currency.as_ref().unwrap().id, Some(2));
    assert_eq!(p.invoice.addressee_country.as_ref().unwrap().id, Some(230));
    assert_eq!(p.invoice.addressee_country_name.as_deref(), Some("US"));
    let c = customer_plan(&o, &settings(), &org).unwrap();
    assert_eq!(c.customer.currency.as_ref().unwrap().id, Some(2));
    assert_eq!(c.customer.country_name.as_deref(), Some("US"));
}

#[test]
fn deliberately_wrong_shop_total_is_a_mismatch_with_both_figures() {
    let o = order(json!({
        "lines": [line("Mug", "MUG", "1", "10.00", "10.00", "2.20", "22")],
        "tax_lines": [tax_line("22", "2.20")],
        "subtotal": "10.00", "total_tax": "2.20", "total": "12.30"
    }));
    let err = plan(&o, &settings(), &si_org()).unwrap_err();
    assert_mismatch(Err(err.clone()), dec!(12.30), dec!(12.20));
    let msg = err.to_string();
    assert!(msg.contains("total differs by 0.10"), "{msg}");
    assert!(msg.contains("settings.max_rounding_correction"), "{msg}");
    // A tolerance of ten cents accepts it as it is (no correction rows).
    let mut s = settings();
    s.total_tolerance = dec!(0.10);
    let needs = item_needs(&o, &s, &si_org()).unwrap();
    let p = invoice_plan(&o, &s, &si_org(), 1, &ids_for(&needs), date()).unwrap();
    assert_eq!(p.invoice.issued_invoice_rows.len(), 1);
    // So does a larger correction limit, with a rounding row that books the shop's total.
    let mut s = settings();
    s.max_rounding_correction = Some(dec!(0.10));
    assert_books_to_the_cent_with(&o, &s, &si_org(), &[(dec!(22), dec!(2.20))]);
}

#[test]
fn a_cent_off_total_gets_a_rounding_row() {
    let o = order(json!({
        "lines": [line("Mug", "MUG", "1", "10.00", "10.00", "2.20", "22")],
        "tax_lines": [tax_line("22", "2.20")],
        "subtotal": "10.00", "total_tax": "2.20", "total": "12.21"
    }));
    assert_books_to_the_cent(&o, &si_org(), &[(dec!(22), dec!(2.20))]);
    let rows = plan(&o, &settings(), &si_org())
        .unwrap()
        .invoice
        .issued_invoice_rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].item_code.as_deref(), Some("ROUNDING"));
    assert_eq!(rows[1].item_name.as_deref(), Some("Rounding difference"));
}

#[test]
fn vat_per_rate_is_corrected_at_each_rate_when_the_total_matches() {
    // The shop's tax lines put a cent more on 22 % and a cent less on 9.5 % than the
    // lines' own taxes (round-at-subtotal shops do this): one correction row per rate.
    let o = order(json!({
        "lines": [line("A", "A", "1", "10.00", "10.00", "2.20", "22"),
                  line("B", "B", "1", "10.00", "10.00", "0.95", "9.5")],
        "tax_lines": [tax_line("22", "2.21"), tax_line("9.5", "0.94")],
        "subtotal": "20.00", "total_tax": "3.15", "total": "23.15"
    }));
    assert_books_to_the_cent(
        &o,
        &si_org(),
        &[(dec!(22), dec!(2.21)), (dec!(9.5), dec!(0.94))],
    );
    let rows = plan(&o, &settings(), &si_org())
        .unwrap()
        .invoice
        .issued_invoice_rows;
    let names: Vec<_> = rows[2..]
        .iter()
        .filter_map(|r| r.item_name.clone())
        .collect();
    assert!(
        names.contains(&"Rounding difference, VAT 22 %".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"Rounding difference, VAT 9.5 %".to_owned()),
        "{names:?}"
    );
    // A euro on the wrong rate is not rounding: refused, naming the lines and figures.
    let o = order(json!({
        "lines": [line("A", "A", "1", "10.00", "10.00", "2.20", "22"),
                  line("B", "B", "1", "10.00", "10.00", "0.95", "9.5")],
        "tax_lines": [tax_line("22", "3.20"), tax_line("9.5", "-0.05")],
        "subtotal": "20.00", "total_tax": "3.15", "total": "23.15"
    }));
    let msg = plan(&o, &settings(), &si_org()).unwrap_err().to_string();
    assert!(msg.contains("VAT 22 %: document 2.20, shop 3.20"), "{msg}");
    assert!(
        msg.contains("line 'A': net 10.00, shop tax 2.20, Minimax tax 2.20 at 22 %"),
        "{msg}"
    );
}

#[test]
fn vat_rate_codes_override_the_percent_match() {
    let mut s = settings();
    s.vat_rate_codes.insert("0".into(), "X".into());
    let mut org = si_org();
    org.vat_rates.push(rate(9, "X", dec!(0)));
    let o = order(json!({
        "lines": [line("Export", "EX", "1", "10.00", "10.00", "0", "0")],
        "subtotal": "10.00", "total": "10.00"
    }));
    let needs = item_needs(&o, &s, &org).unwrap();
    assert_eq!(needs[0].vat_rate_id, 9);
    // A code the organisation does not have is named.
    s.vat_rate_codes.insert("0".into(), "Q".into());
    let err = item_needs(&o, &s, &org).unwrap_err();
    assert!(err.to_string().contains("'Q'"), "{err}");
}

#[test]
fn unmapped_payment_method_names_the_gateway() {
    let o = order(json!({
        "payment_method": {"id": "paypal", "title": "PayPal"},
        "lines": [line("Mug", "MUG", "1", "10.00", "10.00", "2.20", "22")],
        "tax_lines": [tax_line("22", "2.20")],
        "subtotal": "10.00", "total_tax": "2.20", "total": "12.20"
    }));
    let err = plan(&o, &settings(), &si_org()).unwrap_err();
    assert_eq!(
        err,
        MappingError::UnmappedPaymentMethod {
            gateway: "paypal".into()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("'paypal'") && msg.contains("settings.payment_methods"),
        "{msg}"
    );
    let mut s = settings();
    s.default_payment_method = Some("kartica".into());
    let p = plan(&o, &s, &si_org()).unwrap();
    assert_eq!(
        p.invoice.issued_invoice_payment_methods[0]
            .payment_method
            .as_ref()
            .unwrap()
            .id,
        Some(11)
    );
}

#[test]
fn payment_methods_may_be_given_by_name_code_or_id() {
    let pay = |gateway: &str, s: &BookingSettings, org: &OrgData| {
        let o = order(json!({
            "payment_method": {"id": gateway},
            "lines": [line("Mug", "MUG", "1", "10.00", "10.00", "2.20", "22")],
            "tax_lines": [tax_line("22", "2.20")],
            "subtotal": "10.00", "total_tax": "2.20", "total": "12.20"
        }));
        plan(&o, s, org).map(|p| {
            p.invoice.issued_invoice_payment_methods[0]
                .payment_method
                .as_ref()
                .unwrap()
                .id
        })
    };
    let mut org = si_org();
    org.payment_methods[2].code = Some("STR".into());
    let mut s = settings();
    s.payment_methods.insert("stripe".into(), "str".into());
    s.payment_methods.insert("bank".into(), " 12 ".into());
    assert_eq!(pay("stripe", &s, &org).unwrap(), Some(13), "by code");
    assert_eq!(pay("bank", &s, &org).unwrap(), Some(12), "by id");
    assert_eq!(pay("bacs", &s, &org).unwrap(), Some(12), "by name");
    // A gateway that happens to look like an id is not taken for one.
    assert!(matches!(
        pay("11", &s, &org),
        Err(MappingError::UnmappedPaymentMethod { .. })
    ));
    s.default_payment_method = Some("11".into());
    assert_eq!(pay("11", &s, &org).unwrap(), Some(11), "default by id");
    s.payment_methods.insert("cash".into(), "99".into());
    let err = pay("cash", &s, &org).unwrap_err().to_string();
    assert!(err.contains("name, code or id"), "{err}");
}

#[test]
fn unpaid_order_is_not_already_paid() {
    let o = order(json!({
        "status": "on-hold", "payment_method": {"id": "bacs"},
        "lines": [line("Mug", "MUG", "1", "10.00", "10.00", "2.20", "22")],
        "tax_lines": [tax_line("22", "2.20")],
        "subtotal": "10.00", "total_tax": "2.20", "total": "12.20"
    }));
    let mut s = settings();
    s.payment_due_days = 8;
    let needs = item_needs(&o, &s, &si_org()).unwrap();
    let p = invoice_plan(&o, &s, &si_org(), 1, &ids_for(&needs), date()).unwrap();
    assert_eq!(
        p.invoice.issued_invoice_payment_methods[0]
            .already_paid
            .as_deref(),
        Some("N")
    );
    assert_eq!(
        p.invoice.date_due.unwrap().date(),
        NaiveDate::from_ymd_opt(2025, 3, 22).unwrap()
    );
}
