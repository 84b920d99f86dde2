//! Code lists read by code or listed whole, cached for `code_list_ttl_secs`: countries,
//! currencies, VAT rates, payment methods, document numberings, report templates,
//! employees.

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::transport::{code_segment, LIST_PAGE};
use crate::minimax::error::MinimaxError;
use crate::minimax::models::*;
use crate::minimax::TenantClient;

impl TenantClient {
    // ---------------------------------------------------------- code lists

    async fn cached_by_code<T: DeserializeOwned + Serialize>(
        &self,
        collection: &'static str,
        code: &str,
        query: &[(&str, String)],
        cache_what: String,
        ttl: u64,
    ) -> Result<T, MinimaxError> {
        if let Some(hit) = self.cache_get::<T>(&cache_what).await {
            return Ok(hit);
        }
        let seg = code_segment(collection, code)?;
        let url = self.org_url(&[collection, &seg], query)?;
        let value: T = self.get_json(url, collection, collection).await?;
        self.cache_put(&cache_what, &value, Some(ttl)).await;
        Ok(value)
    }

    async fn cached_list<T: DeserializeOwned + Serialize>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        kind: &'static str,
        cache_what: String,
        ttl: u64,
    ) -> Result<Vec<T>, MinimaxError> {
        if let Some(hit) = self.cache_get::<Vec<T>>(&cache_what).await {
            return Ok(hit);
        }
        let mut query = query.to_vec();
        query.push(("PageSize", LIST_PAGE.to_string()));
        let url = self.org_url(segments, &query)?;
        let page: Page<T> = self.get_json(url, kind, kind).await?;
        self.cache_put(&cache_what, &page.rows, Some(ttl)).await;
        Ok(page.rows)
    }

    /// `countries/code(SI)`, cached a day.
    pub async fn country_by_code(&self, code: &str) -> Result<Country, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_by_code("countries", code, &[], format!("country:{code}"), ttl)
            .await
    }

    /// `currencies/code(EUR)`, cached a day.
    pub async fn currency_by_code(&self, code: &str) -> Result<Currency, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_by_code("currencies", code, &[], format!("currency:{code}"), ttl)
            .await
    }

    /// `vatrates?date=…[&countryID=…]`, cached per date and country.
    pub async fn vat_rates(
        &self,
        date: NaiveDate,
        country_id: Option<i64>,
    ) -> Result<Vec<VatRate>, MinimaxError> {
        let ttl = self.inner.settings.vat_rate_ttl_secs;
        let mut query = vec![("date", date.format("%Y-%m-%d").to_string())];
        if let Some(c) = country_id {
            query.push(("countryID", c.to_string()));
        }
        let what = format!(
            "vatrates:{date}:{}",
            country_id.map(|c| c.to_string()).unwrap_or_default()
        );
        self.cached_list(&["vatrates"], &query, "vatrates", what, ttl)
            .await
    }

    /// `paymentMethods`, cached a day.
    pub async fn payment_methods(&self) -> Result<Vec<PaymentMethod>, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_list(
            &["paymentMethods"],
            &[],
            "paymentMethods",
            "paymentmethods".into(),
            ttl,
        )
        .await
    }

    /// `document-numbering`, cached a day.
    pub async fn document_numberings(&self) -> Result<Vec<DocumentNumbering>, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_list(
            &["document-numbering"],
            &[],
            "document-numbering",
            "numberings".into(),
            ttl,
        )
        .await
    }

    /// `report-templates`, cached a day.
    pub async fn report_templates(&self) -> Result<Vec<ReportTemplate>, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_list(
            &["report-templates"],
            &[],
            "report-templates",
            "reporttemplates".into(),
            ttl,
        )
        .await
    }

    /// `employees`, cached a day.
    pub async fn employees(&self) -> Result<Vec<EmployeeSearch>, MinimaxError> {
        let ttl = self.inner.settings.code_list_ttl_secs;
        self.cached_list(&["employees"], &[], "employees", "employees".into(), ttl)
            .await
    }
}
