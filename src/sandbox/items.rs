//! Items: create and read, with Minimax's validation (code, VAT rate, currency).

use serde_json::{json, Value};

use super::model::*;
use super::routes::{Collection, Req};

pub(super) const ITEM_FIELDS: &[&str] = &[
    "Name",
    "Code",
    "EANCode",
    "Description",
    "ItemType",
    "StocksManagedOnlyByQuantity",
    "CalculationOfConsumptionTax",
    "UnitOfMeasurement",
    "MassPerUnit",
    "ProductGroup",
    "VatRate",
    "Price",
    "RebatePercent",
    "Usage",
    "Currency",
    "SerialNumbers",
    "BatchNumbers",
];

const ITEMS: Collection = Collection {
    records: |o| &mut o.items,
    list_row: |i| {
        let mut row = pick(
            i,
            &[
                "ItemId",
                "Code",
                "UnitOfMeasurement",
                "MassPerUnit",
                "ItemType",
                "VatRate",
                "Price",
                "Currency",
                "ProductGroup",
            ],
        );
        // Item lists name it `Title` (docs/minimax-api.md).
        row.insert(
            "Title".into(),
            i.get("Name").cloned().unwrap_or(Value::Null),
        );
        Value::Object(row)
    },
    search: &["Code", "Title"],
    by_code: true,
    delete: true,
};

impl World {
    pub(super) fn item_route(&mut self, req: &Req<'_>) -> Option<Out> {
        match (req.method, req.seg) {
            ("POST", ["items"]) => Some(self.create_item(req.org_id, req.ctx, req.body)),
            ("GET", ["items", "settings"]) => {
                Some(Out::json(200, json!({"PricesIncludeVAT": "N"})))
            }
            _ => self.crud_arm(req, &ITEMS),
        }
    }

    // ---------------------------------------------------------------- items

    pub(super) fn create_item(&mut self, org_id: i64, ctx: &Ctx, body: &Value) -> Out {
        let Some(org) = self.orgs.get(&org_id) else {
            return Out::not_found();
        };
        let mut item = pick(body, ITEM_FIELDS);
        let mut errors = Vec::new();
        if get_str(body, "Name").is_none() {
            errors.push(("Name", "Naziv je obvezen podatek.".to_string()));
        }
        match get_str(body, "ItemType") {
            Some("B" | "M" | "P" | "I" | "S" | "A" | "AS" | "E" | "NM" | "NP" | "NI") => {}
            _ => errors.push(("ItemType", "Vrsta artikla je obvezen podatek.".to_string())),
        }
        match fk_id(body, "VatRate").and_then(|v| org.vat.iter().find(|r| r.id == v)) {
            Some(v) => {
                item.insert(
                    "VatRate".into(),
                    fk(org_id, "vatrates", v.id, Some(v.code.as_str())),
                );
            }
            None => errors.push(("VatRate", "Stopnja DDV je obvezen podatek.".to_string())),
        }
        if let Some(cur) = fk_id(body, "Currency") {
            match org.currency_by_id(cur) {
                Some(v) => {
                    item.insert("Currency".into(), v);
                }
                None => errors.push(("Currency", "Valuta ne obstaja.".to_string())),
            }
        }
        if !errors.is_empty() {
            return Out::validation(errors);
        }
        if let Some(code) = get_str(body, "Code") {
            if org.items.values().any(|x| get_str(x, "Code") == Some(code)) {
                return Out::conflict_array("Code", &format!("Artikel s šifro {code} že obstaja."));
            }
        }
        item.entry("Usage").or_insert(json!("D"));
        let id = self.id();
        let rv = self.rv();
        item.insert("ItemId".into(), json!(id));
        item.insert("RecordDtModified".into(), json!(fmt_date(&ctx.now)));
        item.insert("RowVersion".into(), json!(rv));
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.items.insert(id, Value::Object(item));
        }
        Self::created(ctx, org_id, "items", id)
    }
}
