//! The organisation's code lists a booking needs (VAT rates, currency, countries,
//! payment methods, numbering, report templates, the cashier), each cached by the
//! client. A setting that names something Minimax does not have fails the job with a
//! reason naming the setting ([`BookingError::Setting`]).

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::mapping::{self, OrgData, PaymentMethodRef, VatRateRef};
use crate::minimax::{MinimaxError, TenantClient};
use crate::webshop::Order;

use super::error::{BookingError, Result};
use super::Ctx;

impl Ctx<'_> {
    /// The code lists and ids the mapping needs for `order` on `date`.
    pub(super) async fn org_data(&self, order: &Order, date: NaiveDate) -> Result<OrgData> {
        let s = self.settings();
        let vat_rates = self
            .client
            .vat_rates(date, None)
            .await?
            .into_iter()
            .filter_map(|r| {
                Some(VatRateRef {
                    id: r.vat_rate_id?,
                    code: r.code?,
                    percent: r.percent?,
                })
            })
            .collect();
        let home = self.tenant.country.code();
        let payment_methods = self
            .client
            .payment_methods()
            .await?
            .into_iter()
            .filter_map(|p| {
                Some(PaymentMethodRef {
                    id: p.payment_method_id?,
                    name: p.name?,
                    code: p.code,
                })
            })
            .collect();
        let document_numbering_id = match &s.document_numbering {
            None => None,
            Some(code) => Some(
                self.client
                    .document_numberings()
                    .await?
                    .into_iter()
                    .find(|n| n.code.as_deref() == Some(code) || n.name.as_deref() == Some(code))
                    .and_then(|n| n.document_numbering_id)
                    .ok_or_else(|| {
                        BookingError::Setting(format!(
                            "settings.document_numbering: Minimax has no document numbering {code:?}"
                        ))
                    })?,
            ),
        };
        let needs_templates =
            s.invoice_report_template.is_some() || s.credit_note_report_template.is_some();
        let templates = if needs_templates {
            self.client.report_templates().await?
        } else {
            Vec::new()
        };
        let template = |name: &Option<String>, key: &str| -> Result<Option<i64>> {
            match name {
                None => Ok(None),
                Some(n) => templates
                    .iter()
                    .find(|t| t.name.as_deref() == Some(n))
                    .and_then(|t| t.report_template_id)
                    .map(Some)
                    .ok_or_else(|| {
                        BookingError::Setting(format!(
                            "settings.{key}: Minimax has no report template {n:?}"
                        ))
                    }),
            }
        };
        let invoice_report_template_id =
            template(&s.invoice_report_template, "invoice_report_template")?;
        let credit_note_report_template_id = template(
            &s.credit_note_report_template,
            "credit_note_report_template",
        )?;
        let employee_id = match &s.cashier_employee {
            None => None,
            Some(name) => Some(
                self.client
                    .employees()
                    .await?
                    .into_iter()
                    .find(|e| {
                        let full = format!(
                            "{} {}",
                            e.first_name.as_deref().unwrap_or(""),
                            e.last_name.as_deref().unwrap_or("")
                        );
                        // By name as in Minimax, or by the employee's id.
                        full.trim() == name.trim()
                            || name.trim().parse::<i64>().ok() == e.employee_id
                    })
                    .and_then(|e| e.employee_id)
                    .ok_or_else(|| {
                        BookingError::Setting(format!(
                            "settings.cashier_employee: Minimax has no employee {name:?}"
                        ))
                    })?,
            ),
        };
        Ok(OrgData {
            home_country: home.to_owned(),
            vat_rates,
            currency_id: currency_id(self.client, &order.currency).await?,
            country_ids: country_ids(self.client, mapping::country_codes(order, home)).await?,
            payment_methods,
            document_numbering_id,
            invoice_report_template_id,
            credit_note_report_template_id,
            employee_id,
            analytic_id: s.analytic_id,
        })
    }
}

/// The Minimax id of currency `code` (ISO 4217).
pub(super) async fn currency_id(client: &TenantClient, code: &str) -> Result<i64> {
    client
        .currency_by_code(code)
        .await
        .map_err(|e| match e {
            MinimaxError::NotFound { .. } => BookingError::Setting(format!(
                "currency {code} is not known to the Minimax organisation"
            )),
            e => e.into(),
        })?
        .currency_id
        .ok_or_else(|| BookingError::Permanent("currency without id".into()))
}

/// ISO country code → Minimax country id, for every code given.
pub(super) async fn country_ids(
    client: &TenantClient,
    codes: Vec<String>,
) -> Result<BTreeMap<String, i64>> {
    let mut ids = BTreeMap::new();
    for cc in codes {
        match client.country_by_code(&cc).await {
            Ok(c) => {
                if let Some(id) = c.country_id {
                    ids.insert(cc, id);
                }
            }
            Err(MinimaxError::NotFound { .. }) => {
                return Err(BookingError::Setting(format!(
                    "country {cc} is not known to Minimax"
                )))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ids)
}
