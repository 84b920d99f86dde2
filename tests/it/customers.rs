//! Customer events through the service into the sandbox, with the platforms' real
//! customer bodies (tests/fixtures/webshop): a created shop customer becomes its
//! Minimax customer once, under the code its orders use; unchanged deliveries cost no
//! write; a move updates it; an order of that customer afterwards reuses it; business
//! customers are VAT subjects; customers Minimax cannot take and deleted customers are
//! explained in the job result. Also the master data of bookings: created once per
//! code across instances, contacts present after lost answers, nothing written for an
//! order that will be refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use minimax_connector::queue::JobState;
use minimax_connector::sandbox::{Fault, SandboxCounters};
use serde_json::{json, Value};
use std::collections::BTreeSet;

use crate::booking::{base_settings, env, env_tuned, env_with, generic_example, lost_answers, Env};
use crate::helpers;

/// Creates, updates and deletes of anything (every POST, PUT and DELETE).
fn writes(c: &SandboxCounters) -> u64 {
    c.by_kind
        .iter()
        .filter(|(k, _)| {
            k.starts_with("post ") || k.starts_with("put ") || k.starts_with("delete ")
        })
        .map(|(_, n)| n)
        .sum()
}

fn woo_customer() -> Value {
    helpers::fixture_value("woocommerce", "customer.json")
}

fn shopify_customer() -> Value {
    helpers::fixture_value("shopify", "customer.rest-2026-07.json")
}

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// The WooCommerce customer, re-saved in the shop at `modified` (a new delivery).
fn woo_saved(mut c: Value, modified: &str) -> Value {
    c["date_modified_gmt"] = json!(modified);
    c
}

impl Env {
    async fn woo_result(&self, topic: &str, customer: &Value, source: &str) -> Value {
        let id = self.woo(topic, &body(customer), source).await;
        self.done(&id).await.result.unwrap()
    }

    fn customers(&self) -> Vec<Value> {
        self.sb.state.customers(self.org)
    }

    fn contacts(&self) -> Vec<Value> {
        self.sb.state.contacts(self.org)
    }
}

#[tokio::test]
async fn a_woocommerce_customer_is_created_once_unchanged_costs_nothing_moved_updates_and_its_order_reuses_it(
) {
    let env = env().await;
    let shop = "https://shop.example/";
    env.sb.state.reset_counters();
    let created = env
        .woo_result("customer.created", &woo_customer(), shop)
        .await;
    let new = env.sb.state.counters();
    assert_eq!(created["status"], "created", "{created}");
    assert_eq!(created["customer_code"], "WEB-25");
    let customers = env.customers();
    assert_eq!(customers.len(), 1, "{customers:?}");
    assert_eq!(customers[0]["Code"], "WEB-25");
    assert_eq!(customers[0]["Name"], "John Doe");
    assert_eq!(customers[0]["City"], "San Francisco");
    assert_eq!(customers[0]["SubjectToVAT"], "N");
    let contacts = env.contacts();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0]["Email"], "john.doe@example.com");
    assert_eq!(contacts[0]["Default"], "D");

    // WooCommerce re-sends `customer.updated` on every profile save: same data, no call.
    env.sb.state.reset_counters();
    let again = env
        .woo_result(
            "customer.updated",
            &woo_saved(woo_customer(), "2017-03-22T08:00:00"),
            shop,
        )
        .await;
    let unchanged = env.sb.state.counters();
    assert_eq!(again["status"], "unchanged", "{again}");
    assert_eq!(writes(&unchanged), 0, "{:?}", unchanged.by_kind);
    assert!(unchanged.api_calls <= 1, "{:?}", unchanged.by_kind);

    // An order of that customer: the customer costs no call, no second customer.
    let mut order: Value = helpers::fixture_value("woocommerce", "order.json");
    order["customer_id"] = json!(25);
    env.sb.state.reset_counters();
    let id = env.woo("order.updated", &body(&order), shop).await;
    env.done(&id).await;
    let c = env.sb.state.counters();
    assert_eq!(c.kind("post customers"), 0, "{:?}", c.by_kind);
    assert_eq!(c.kind("get customers/{id}"), 0, "{:?}", c.by_kind);
    assert_eq!(c.kind("put customers/{id}"), 0, "{:?}", c.by_kind);
    let invoice = &env.invoices_for("727")[0];
    assert_eq!(
        invoice["Customer"]["ID"], customers[0]["CustomerId"],
        "{invoice}"
    );
    assert_eq!(env.customers().len(), 1);

    // The customer moved: one read, one write.
    let mut moved = woo_saved(woo_customer(), "2017-04-01T10:00:00");
    moved["billing"]["city"] = json!("Oakland");
    moved["billing"]["postcode"] = json!("94607");
    env.sb.state.reset_counters();
    let updated = env.woo_result("customer.updated", &moved, shop).await;
    let changed = env.sb.state.counters();
    assert_eq!(updated["status"], "updated", "{updated}");
    assert_eq!(
        changed.kind("put customers/{id}"),
        1,
        "{:?}",
        changed.by_kind
    );
    assert_eq!(changed.kind("post customers"), 0);
    let customers = env.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0]["City"], "Oakland");
    assert_eq!(customers[0]["PostalCode"], "94607");
    assert_eq!(env.contacts().len(), 1, "the e-mail did not change");
    assert_eq!(changed.kind("get customers/{id}/contacts"), 0);

    // A new e-mail: the customer body is as written, the new address becomes a contact.
    let mut new_mail = woo_saved(moved.clone(), "2017-04-02T10:00:00");
    new_mail["email"] = json!("john@doe.example");
    env.sb.state.reset_counters();
    let result = env.woo_result("customer.updated", &new_mail, shop).await;
    let mail = env.sb.state.counters();
    assert_eq!(result["status"], "updated", "{result}");
    assert_eq!(
        (
            mail.kind("get customers/{id}/contacts"),
            mail.kind("post customers/{id}/contacts"),
            mail.kind("put customers/{id}"),
        ),
        (1, 1, 0),
        "{:?}",
        mail.by_kind
    );
    assert!(env
        .contacts()
        .iter()
        .any(|c| c["Email"] == "john@doe.example"));
    println!(
        "calls per customer event: new {} API ({} writes), changed {} API ({} writes), unchanged {} API ({} writes); new by kind: {:?}; changed by kind: {:?}",
        new.api_calls,
        writes(&new),
        changed.api_calls,
        writes(&changed),
        unchanged.api_calls,
        writes(&unchanged),
        new.by_kind,
        changed.by_kind
    );
}

#[tokio::test]
async fn a_shopify_customer_is_created_once_and_a_second_delivery_costs_no_write() {
    let env = env().await;
    let customer = body(&shopify_customer());
    let id = env
        .shopify("customers/create", &customer, "evt-cust-1")
        .await;
    let created = env.done(&id).await.result.unwrap();
    assert_eq!(created["status"], "created", "{created}");
    assert_eq!(created["customer_code"], "WEB-207119551");
    let customers = env.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0]["Name"], "Bob Norman");
    assert_eq!(customers[0]["City"], "Louisville");
    assert_eq!(customers[0]["CountryName"], "US");
    let contacts = env.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["Email"], "bob.norman@mail.example.com");

    env.sb.state.reset_counters();
    // The same body again (a retry, or a replay with a new event id) is the same job.
    let again = env
        .shopify("customers/create", &customer, "evt-cust-1-again")
        .await;
    assert_eq!(
        again, id,
        "a second delivery of the same body is a duplicate"
    );
    // A profile save that changed nothing Minimax keeps is a new job costing no write.
    let mut saved = shopify_customer();
    saved["updated_at"] = json!("2025-04-03T09:00:00-05:00");
    let id = env
        .shopify("customers/update", &body(&saved), "evt-cust-2")
        .await;
    assert_ne!(id, again);
    let result = env.done(&id).await.result.unwrap();
    assert_eq!(result["status"], "unchanged", "customers/update: {result}");
    let c = env.sb.state.counters();
    assert_eq!(writes(&c), 0, "{:?}", c.by_kind);
    assert_eq!(env.customers().len(), 1);
}

#[tokio::test]
async fn a_business_customer_gets_its_vat_id_and_is_subject_to_vat() {
    let env = env().await;
    let mut c = woo_customer();
    c["billing"]["company"] = json!("Acme d.o.o.");
    c["billing"]["address_1"] = json!("Dunajska cesta 5");
    c["billing"]["city"] = json!("Ljubljana");
    c["billing"]["postcode"] = json!("1000");
    c["billing"]["country"] = json!("SI");
    c["meta_data"] = json!([{"id": 901, "key": "_billing_vat_number", "value": "SI 1234 5678"}]);
    let result = env
        .woo_result("customer.created", &c, "https://b2b.example/")
        .await;
    assert_eq!(result["status"], "created", "{result}");
    let customers = env.customers();
    assert_eq!(customers.len(), 1);
    let b2b = &customers[0];
    assert_eq!(b2b["Name"], "Acme d.o.o.");
    assert_eq!(b2b["SubjectToVAT"], "D");
    assert_eq!(b2b["VATIdentificationNumber"], "SI12345678");
    assert!(
        b2b["CountryName"].is_null() || b2b["CountryName"] == "",
        "home country: no CountryName ({b2b})"
    );
}

#[tokio::test]
async fn a_customer_without_a_country_or_name_is_skipped_with_the_reason() {
    let env = env().await;
    env.sb.state.reset_counters();
    let mut no_country = woo_customer();
    no_country["billing"]["country"] = json!("");
    let result = env
        .woo_result(
            "customer.created",
            &no_country,
            "https://nocountry.example/",
        )
        .await;
    let reason = result["skipped"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no country") && reason.contains("25"),
        "{result}"
    );

    let mut no_address = shopify_customer();
    no_address["addresses"] = json!([]);
    no_address["default_address"] = Value::Null;
    let id = env
        .shopify("customers/create", &body(&no_address), "evt-noaddr")
        .await;
    let result = env.done(&id).await.result.unwrap();
    assert!(
        result["skipped"]
            .as_str()
            .unwrap_or_default()
            .contains("no country"),
        "{result}"
    );

    let mut no_name = woo_customer();
    for field in ["first_name", "last_name"] {
        no_name[field] = json!("");
        no_name["billing"][field] = json!("");
    }
    let result = env
        .woo_result("customer.created", &no_name, "https://noname.example/")
        .await;
    assert!(
        result["skipped"]
            .as_str()
            .unwrap_or_default()
            .contains("no name"),
        "{result}"
    );
    assert!(env.customers().is_empty());
    assert_eq!(env.sb.state.counters().api_calls, 0);
}

#[tokio::test]
async fn a_deleted_customer_is_recorded_and_kept_in_minimax() {
    let env = env().await;
    let shop = "https://deleting.example/";
    env.woo_result("customer.created", &woo_customer(), shop)
        .await;
    env.sb.state.reset_counters();
    let result = env
        .woo_result("customer.deleted", &json!({"id": 25}), shop)
        .await;
    assert_eq!(result["status"], "deleted_in_shop", "{result}");
    assert_eq!(result["customer_code"], "WEB-25");
    assert!(result["minimax_id"].is_i64(), "{result}");
    assert!(
        result["note"].as_str().unwrap().contains("not deleted"),
        "{result}"
    );
    assert_eq!(env.customers().len(), 1);
    assert_eq!(writes(&env.sb.state.counters()), 0);

    let id = env
        .shopify(
            "customers/delete",
            &body(&json!({"id": 207119551, "phone": null, "addresses": [], "tax_exemptions": []})),
            "evt-del",
        )
        .await;
    let result = env.done(&id).await.result.unwrap();
    assert_eq!(result["status"], "deleted_in_shop", "{result}");
    assert_eq!(result["customer_code"], "WEB-207119551");
}

#[tokio::test]
async fn with_customer_sync_on_orders_only_a_customer_event_costs_no_call() {
    let mut booking = base_settings();
    booking["customer_sync"] = json!("with_orders");
    let env = env_with(booking).await;
    env.sb.state.reset_counters();
    let result = env
        .woo_result(
            "customer.created",
            &woo_customer(),
            "https://quiet.example/",
        )
        .await;
    assert!(
        result["skipped"]
            .as_str()
            .unwrap_or_default()
            .contains("settings.customer_sync"),
        "{result}"
    );
    assert_eq!(env.sb.state.counters().api_calls, 0);
    assert!(env.customers().is_empty());
}

// ------------------------------------------------------- master data of bookings

#[tokio::test]
async fn a_customer_adopted_after_a_lost_create_answer_gets_its_contact() {
    for (label, fault) in lost_answers() {
        let env = env().await;
        // The first POST under /customers is the customer's create (its contact follows).
        env.sb
            .state
            .inject(Fault::new("/customers", fault).method("POST").times(1));
        let id = env.generic(&generic_example(), "msg-lost-cust").await;
        env.done(&id).await;
        let customers = env.customers();
        assert_eq!(customers.len(), 1, "{label}: {customers:?}");
        let contacts = env.contacts();
        assert_eq!(contacts.len(), 1, "{label}: {contacts:?}");
        assert_eq!(contacts[0]["Email"], "ana.novak@example.si", "{label}");
        assert_eq!(
            contacts[0]["Customer"]["ID"], customers[0]["CustomerId"],
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_refused_order_makes_no_minimax_write() {
    let env = env().await;
    let mut wrong = generic_example();
    wrong["order"]["total"] = json!("46.71");
    let seeded_items = env.sb.state.items(env.org).len();
    env.sb.state.reset_counters();
    let id = env.generic(&wrong, "msg-refused").await;
    let rec = env.settle(&id).await;
    assert_eq!(rec.state, JobState::Dead);
    let reason = rec.last_error.unwrap();
    assert!(
        reason.contains("46.71") && reason.contains("45.71"),
        "{reason}"
    );
    let c = env.sb.state.counters();
    assert_eq!(writes(&c), 0, "{:?}", c.by_kind);
    assert!(env.customers().is_empty());
    assert_eq!(env.sb.state.items(env.org).len(), seeded_items);
    assert!(env.contacts().is_empty());
    println!(
        "a refused cold order: {} API calls, {} writes ({:?})",
        c.api_calls,
        writes(&c),
        c.by_kind
    );
}

/// The i-th of `n` cold orders: 5 customers, 6 product SKUs (2 lines an order), and
/// every order's shipping and fee items, all shared.
fn shared_order(i: usize) -> Value {
    let mut o = generic_example();
    let order = &mut o["order"];
    order["shop_order_id"] = json!(format!("SF-{i}"));
    order["number"] = json!(format!("SF-{i}"));
    let c = i % 5;
    order["customer"]["shop_customer_id"] = json!(format!("SF-C{c}"));
    order["customer"]["email"] = json!(format!("buyer{c}@example.si"));
    order["billing"]["email"] = json!(format!("buyer{c}@example.si"));
    order["lines"][0]["sku"] = json!(format!("SF-MUG-{}", i % 3));
    order["lines"][1]["sku"] = json!(format!("SF-BOOK-{}", i % 3));
    o
}

#[tokio::test]
async fn fifty_cold_orders_on_two_instances_create_each_item_and_customer_once() {
    let env = env_tuned(base_settings(), None, |s| {
        s.queue.per_tenant_concurrency = 8;
        s.worker.concurrency = 8;
    })
    .await;
    // A second instance on the same Redis: its workers drain the same queue.
    let second = helpers::spawn_app(env.settings.clone()).await;
    let seeded_items = env.sb.state.items(env.org).len();
    env.sb.state.reset_counters();
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(env.generic(&shared_order(i), &format!("msg-sf-{i}")).await);
    }
    for id in &ids {
        env.done(id).await;
    }
    let c = env.sb.state.counters();
    let items: BTreeSet<String> = (0..50)
        .flat_map(|i| {
            let o = shared_order(i);
            [0, 1].map(|l| o["order"]["lines"][l]["sku"].as_str().unwrap().to_owned())
        })
        .chain(["SHIPPING".to_owned(), "FEE".to_owned()])
        .collect();
    assert_eq!(
        c.kind("post items") as usize,
        items.len(),
        "{:?}",
        c.by_kind
    );
    assert_eq!(c.kind("post customers"), 5, "{:?}", c.by_kind);
    assert_eq!(
        env.sb.state.items(env.org).len(),
        seeded_items + items.len()
    );
    assert_eq!(env.customers().len(), 5);
    assert_eq!(env.contacts().len(), 5);
    assert_eq!(env.invoices().len(), 50);
    drop(second);
    println!(
        "50 cold orders, 2 instances × concurrency 8: {} API calls, {} item creates ({} codes), {} customer creates",
        c.api_calls,
        c.kind("post items"),
        items.len(),
        c.kind("post customers")
    );
}
