//! The fixture orders (WooCommerce and Shopify bodies) planned into invoices, to the cent
//! or refused, and the refused fixtures' own figures.

use super::*;

#[test]
fn woo_order_books_to_the_cent() {
    let order = order_of(&event(
        Platform::WooCommerce,
        WOO,
        "order.json",
        "order.updated",
    ));
    assert_books_to_the_cent(&order, &fixture_org(), &[(dec!(7.5), dec!(1.35))]);
    let p = plan(&order, &settings(), &fixture_org()).unwrap();
    let inv = &p.invoice;
    assert_eq!(inv.prices_on_invoice.as_deref(), Some("N"));
    assert_eq!(inv.document_reference.as_deref(), Some("727"));
    assert_eq!(inv.issued_invoice_rows.len(), 3, "2 lines + shipping");
    let ship = &inv.issued_invoice_rows[2];
    assert_eq!(ship.item_code.as_deref(), Some("SHIPPING"));
    assert_eq!(ship.vat_percent, Some(dec!(0)), "untaxed shipping at 0 %");
    assert_eq!(inv.addressee_country_name.as_deref(), Some("US"));
    let pay = &inv.issued_invoice_payment_methods[0];
    assert_eq!(pay.payment_method.as_ref().unwrap().id, Some(12));
    assert_eq!(pay.amount, Some(dec!(29.35)));
    assert_eq!(pay.already_paid.as_deref(), Some("D"), "processing = paid");
}

#[test]
fn fixture_foreign_rate_is_unmapped_for_a_si_org() {
    let order = order_of(&event(
        Platform::WooCommerce,
        WOO,
        "order.json",
        "order.updated",
    ));
    let err = plan(&order, &settings(), &si_org()).unwrap_err();
    assert_eq!(
        err,
        MappingError::UnmappedVatRate {
            percent: dec!(7.5),
            line: "Woo Single #1".into()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("7.5 %") && msg.contains("Woo Single #1"),
        "{msg}"
    );
    assert!(msg.contains("settings.vat_rate_codes"), "{msg}");
    // Mapping the percent to a rate code fixes it.
    let mut s = settings();
    s.vat_rate_codes.insert("7.5".into(), "S".into());
    let mut org = si_org();
    org.vat_rates[0].percent = dec!(7.5);
    assert!(plan(&order, &s, &org).is_ok());
}

#[test]
fn woo_prices_include_tax_books_to_the_cent() {
    let order = order_of(&event(
        Platform::WooCommerce,
        WOO,
        "order_prices_include_tax.ios.json",
        "order.updated",
    ));
    assert!(order.prices_include_tax && !order.amounts_include_tax);
    assert_books_to_the_cent(&order, &fixture_org(), &[(dec!(2), dec!(0.65))]);
}

#[test]
fn woo_partially_refunded_order_books_to_the_cent() {
    let ev = event(
        Platform::WooCommerce,
        WOO,
        "order_partially_refunded.ios.json",
        "order.updated",
    );
    let order = order_of(&ev);
    assert_books_to_the_cent(&order, &si_org(), &[]);
    let p = plan(&order, &settings(), &si_org()).unwrap();
    // 3 × 10.80 and 5 × 8.10: whole-cent unit prices, no discounts.
    let row = &p.invoice.issued_invoice_rows[2];
    assert_eq!(
        (row.quantity, row.price),
        (Some(dec!(3)), Some(dec!(10.80)))
    );
    assert_eq!(
        p.invoice.issued_invoice_payment_methods[0]
            .payment_method
            .as_ref()
            .unwrap()
            .id,
        Some(13),
        "stripe matches STRIPE by name"
    );
}

#[test]
fn woo_list_orders_book_to_the_cent() {
    let v: serde_json::Value =
        serde_json::from_slice(&raw_fixture(WOO, "orders_list_with_refunds.json")).unwrap();
    for o in v.as_array().unwrap() {
        let body = serde_json::to_vec(o).unwrap();
        let order = order_of(&event_for(Platform::WooCommerce, "order.updated", &body).event);
        let taxes: Vec<(Decimal, Decimal)> = if order.total_tax.is_zero() {
            vec![]
        } else {
            vec![(dec!(7.5), order.total_tax)]
        };
        assert_books_to_the_cent(&order, &fixture_org(), &taxes);
    }
}

#[test]
fn woo_coupon_fixture_does_not_add_up_and_is_refused() {
    // The scrambled iOS fixture: lines 30.00 + tax 1.20, shipping 133.00 and a fee of
    // 125.50, but total 31.20 and a tax line of 7.71. Booking it would be wrong.
    let order = order_of(&event(
        Platform::WooCommerce,
        WOO,
        "order_with_coupon.ios.json",
        "order.updated",
    ));
    assert_mismatch(
        plan(&order, &settings(), &fixture_org()),
        dec!(31.20),
        dec!(289.70),
    );
}

#[test]
fn shopify_percentage_discount_order_books_to_the_cent() {
    let order = order_of(&event(
        Platform::Shopify,
        SHOP,
        "order_with_percentage_discount.rest-2026-07.json",
        "orders/paid",
    ));
    assert_books_to_the_cent(&order, &si_org(), &[]);
    let p = plan(&order, &settings(), &si_org()).unwrap();
    let row = &p.invoice.issued_invoice_rows[0];
    assert_eq!(row.price, Some(dec!(199.00)));
    assert_eq!(
        row.discount_percent,
        Some(dec!(9)),
        "FAKE30 gives 9 %: exact"
    );
    assert_eq!(p.invoice.document_reference.as_deref(), Some("#1002"));
    assert!(
        p.invoice.issued_invoice_payment_methods.is_empty(),
        "no gateway and no default: no payment row"
    );
    assert_eq!(p.invoice.recipient_name.as_deref(), Some("Jane Smith"));
    assert_eq!(p.invoice.addressee_name.as_deref(), Some("John Smith"));
}

#[test]
fn shopify_reference_orders_do_not_add_up_and_are_refused() {
    // Shopify's REST example: three lines of 195.66/195.67 at 6 % with 3.98 tax each
    // (6 % of 66.33, not of the line); the total 598.94 assumes the 3.98s.
    for (name, topic) in [
        ("order.rest-2026-07.json", "orders/paid"),
        ("order_cancelled.rest-2026-07.json", "orders/cancelled"),
    ] {
        let order = order_of(&event(Platform::Shopify, SHOP, name, topic));
        assert_mismatch(
            plan(&order, &settings(), &fixture_org()),
            dec!(598.94),
            dec!(622.22),
        );
    }
    // The 2015 fixture has untaxed lines but a 6 % tax line of 11.94 (it is only
    // authorized, so it comes as an order update: `orders/paid` would contradict it).
    let order = order_of(&event(
        Platform::Shopify,
        SHOP,
        "order.python-fixture.json",
        "orders/create",
    ));
    let err = plan(&order, &settings(), &fixture_org()).unwrap_err();
    assert_mismatch(Err(err.clone()), dec!(409.94), dec!(597.00));
    assert!(
        err.to_string()
            .contains("VAT 6 %: document 0.00, shop 11.94"),
        "{err}"
    );
}

/// The three fixture orders the service refuses, read straight from their JSON (not
/// through the parsers): each one's own figures contradict each other, so no document
/// can equal "the shop". Every other fixture order and refund books exactly (the tests
/// above).
#[test]
fn refused_fixtures_are_inconsistent_in_their_own_data() {
    let sum = |v: &serde_json::Value, fields: &[&str]| -> Decimal {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| fields.iter().map(|f| dec(&x[*f])).sum::<Decimal>())
            .sum()
    };
    // WooCommerce (iOS fixture): lines 30.00 + 1.20 tax, shipping 133.00, a fee 125.50 →
    // 289.70; the order's total is 31.20 and its tax line 7.71 against total_tax 1.20.
    let raw: serde_json::Value =
        serde_json::from_slice(&raw_fixture(WOO, "order_with_coupon.ios.json")).unwrap();
    let o = &raw["data"];
    let parts = sum(&o["line_items"], &["total", "total_tax"])
        + sum(&o["shipping_lines"], &["total", "total_tax"])
        + sum(&o["fee_lines"], &["total", "total_tax"]);
    assert_eq!((parts, dec(&o["total"])), (dec!(289.70), dec!(31.20)));
    assert_eq!(
        (sum(&o["tax_lines"], &["tax_total"]), dec(&o["total_tax"])),
        (dec!(7.71), dec!(1.20))
    );
    // Shopify REST reference order: three lines of 199.00 less 3.34/3.33/3.33 at 6 % carry
    // 3.98 tax each (6 % of 66.33); 6 % of the lines is 35.22, the order says 11.94.
    let raw: serde_json::Value =
        serde_json::from_slice(&raw_fixture(SHOP, "order.rest-2026-07.json")).unwrap();
    let o = &raw["order"];
    let lines = o["line_items"].as_array().unwrap();
    let mut net = Decimal::ZERO;
    let mut six_percent = Decimal::ZERO;
    for l in lines {
        let amount =
            dec(&l["price"]) * dec(&l["quantity"]) - sum(&l["discount_allocations"], &["amount"]);
        net += amount;
        six_percent += (amount * dec!(0.06)).round_dp(2);
        assert_eq!(sum(&l["tax_lines"], &["price"]), dec!(3.98));
    }
    assert_eq!((net, six_percent), (dec!(587.00), dec!(35.22)));
    assert_eq!(
        (dec(&o["total_tax"]), dec(&o["total_price"])),
        (dec!(11.94), dec!(598.94))
    );
    // Shopify 2015 fixture: three untaxed lines of 199.00 (597.00) but subtotal 398.00
    // and a 6 % tax line of 11.94.
    let raw: serde_json::Value =
        serde_json::from_slice(&raw_fixture(SHOP, "order.python-fixture.json")).unwrap();
    let o = &raw["order"];
    let lines: Decimal = o["line_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| dec(&l["price"]) * dec(&l["quantity"]))
        .sum();
    assert!(o["line_items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l.get("tax_lines").is_none()));
    assert_eq!(
        (
            lines,
            dec(&o["subtotal_price"]),
            sum(&o["tax_lines"], &["price"])
        ),
        (dec!(597.00), dec!(398.00), dec!(11.94))
    );
    // Shopify REST reference refund: the refunded lines come to 399.29 with tax, the
    // refund transaction gave back 209.00.
    let raw: serde_json::Value =
        serde_json::from_slice(&raw_fixture(SHOP, "refund.rest-2026-07.json")).unwrap();
    let r = &raw["refund"];
    assert_eq!(
        (
            sum(&r["refund_line_items"], &["subtotal", "total_tax"]),
            sum(&r["transactions"], &["amount"])
        ),
        (dec!(399.29), dec!(209.00))
    );
}
