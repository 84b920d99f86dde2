//! Write-back: once a document is booked, its Minimax number (and date) is written to
//! the shop order — a private order note on WooCommerce, the `minimax.document`
//! metafield on Shopify — when the tenant's shop connection has `write_back` on.
//!
//! Guarantees:
//! - its own job kind (`shop_write_back.v1`) with the queue's retries; a failed
//!   write-back ends its own job (retry, then dead with the reason) and never touches
//!   the booking: nothing is un-booked or booked again;
//! - **once per document**: the job's dedupe key names the tenant's order, document
//!   kind and Minimax id, so a booking job that ran twice enqueues one write-back, and
//!   a marker written after the shop accepted the note makes a repeated write-back job
//!   (crash between the write and the ack) a no-op.
//!
//! [`Dispatch`] is the worker's job handler: it routes write-back jobs here and every
//! other job to the booking, and enqueues the write-back after a booking finished.

use std::sync::{Arc, LazyLock};

use chrono::Utc;
use prometheus::IntCounterVec;
use redis::AsyncCommands;
use serde_json::{json, Value};

use crate::booking::records::{Doc, Records};
use crate::jobs::Job;
pub use crate::jobs::WriteBackJob;
use crate::queue::{ClaimedJob, Queue};
use crate::shop_api::{ShopApiError, ShopClient, ShopStore};
use crate::tenants::tenant_key;
use crate::tenants::TenantId;
use crate::worker::{JobError, JobHandler};

/// Write-back job outcomes: written, already_written, disabled, retry, failed.
pub static WRITE_BACKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    crate::metrics::counter_vec(
        "mmc_write_back_total",
        "Invoice-number write-backs to the shop, by outcome",
        &["outcome"],
    )
});

impl WriteBackJob {
    /// The text of the note: what was booked, its number and date.
    pub fn note(&self) -> String {
        let what = match self.document.as_str() {
            "issued_invoice" => "invoice",
            "received_order" => "order",
            "credit_note" => "credit note",
            other => other,
        };
        match self.date {
            Some(d) => format!("Minimax {what} {} of {d}", self.number),
            None => format!("Minimax {what} {}", self.number),
        }
    }

    fn identity(&self) -> String {
        format!(
            "{}:{}:{}",
            self.shop_order_id,
            self.document,
            self.minimax_id
                .map(|i| i.to_string())
                .unwrap_or_else(|| self.number.clone())
        )
    }
}

/// The worker's handler: booking plus write-back.
pub struct Dispatch {
    booking: Arc<dyn JobHandler>,
    queue: Queue,
    shops: ShopStore,
    records: Records,
    http: reqwest::Client,
}

impl Dispatch {
    pub fn new(
        booking: Arc<dyn JobHandler>,
        queue: Queue,
        shops: ShopStore,
        records: Records,
    ) -> Self {
        LazyLock::force(&WRITE_BACKS);
        Self {
            booking,
            queue,
            shops,
            records,
            http: reqwest::Client::new(),
        }
    }

    /// After a booking: the write-back job for the document it names, if the tenant
    /// wants one. A failure here is logged and leaves the booking as it is.
    async fn after_booking(&self, tenant: &TenantId, result: &Value) {
        let (Some(order), Some(document), Some(number)) = (
            result["shop_order_id"].as_str(),
            result["document"].as_str(),
            result["number"].as_str(),
        ) else {
            return;
        };
        let res: Result<(), String> = async {
            let Some(conn) = self.shops.get(tenant).await.map_err(|e| e.to_string())? else {
                return Ok(());
            };
            if !conn.write_back {
                return Ok(());
            }
            let doc = match document {
                "issued_invoice" => Some(Doc::Invoice),
                "received_order" => Some(Doc::ReceivedOrder),
                _ => None,
            };
            let date = match doc {
                Some(d) => self
                    .records
                    .get(tenant, order, &d)
                    .await
                    .map_err(|e| e.to_string())?
                    .and_then(|r| r.document_date),
                None => None,
            };
            let wb = WriteBackJob {
                shop_order_id: order.to_owned(),
                document: document.to_owned(),
                minimax_id: result["minimax_id"].as_i64(),
                number: number.to_owned(),
                date,
            };
            let dedupe = format!("writeback:{}", wb.identity());
            let payload = Job::ShopWriteBackV1(wb)
                .to_payload()
                .map_err(|e| e.to_string())?;
            self.queue
                .enqueue(tenant, Some(&dedupe), &payload, None)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        .await;
        if let Err(e) = res {
            tracing::warn!(%tenant, order, error = %e, "cannot enqueue the write-back; the booking stands");
        }
    }

    async fn write_back(&self, tenant: &TenantId, wb: &WriteBackJob) -> Result<Value, JobError> {
        let retry = |reason: String| JobError::Retry {
            reason,
            not_before: None,
        };
        let marker = tenant_key(
            self.shops.prefix(),
            tenant,
            &format!("written:{}", wb.identity()),
        );
        let mut conn = self
            .shops
            .pool()
            .get()
            .await
            .map_err(|e| retry(e.to_string()))?;
        let done: Option<String> = conn.get(&marker).await.map_err(|e| retry(e.to_string()))?;
        if done.is_some() {
            WRITE_BACKS.with_label_values(&["already_written"]).inc();
            return Ok(json!({"write_back": "already written", "shop_order_id": wb.shop_order_id}));
        }
        let Some(shop) = self
            .shops
            .get(tenant)
            .await
            .map_err(|e| retry(e.to_string()))?
        else {
            WRITE_BACKS.with_label_values(&["disabled"]).inc();
            return Ok(json!({"skipped": "the tenant has no shop connection any more"}));
        };
        if !shop.write_back {
            WRITE_BACKS.with_label_values(&["disabled"]).inc();
            return Ok(json!({"skipped": "write-back was turned off"}));
        }
        let client = ShopClient::new(shop, self.http.clone());
        let note = wb.note();
        match client
            .write_note(&wb.shop_order_id, &note, &wb.number)
            .await
        {
            Ok(()) => {
                let _: Result<(), _> = conn
                    .set_ex(&marker, Utc::now().to_rfc3339(), 400 * 24 * 3600)
                    .await;
                WRITE_BACKS.with_label_values(&["written"]).inc();
                Ok(
                    json!({"write_back": "written", "shop_order_id": wb.shop_order_id, "note": note, "shop_calls": client.calls()}),
                )
            }
            Err(e @ (ShopApiError::Invalid(_) | ShopApiError::Unauthorized(_))) => {
                WRITE_BACKS.with_label_values(&["failed"]).inc();
                Err(JobError::Permanent {
                    reason: format!("write-back refused: {e}"),
                })
            }
            Err(e) => {
                WRITE_BACKS.with_label_values(&["retry"]).inc();
                Err(retry(format!("write-back: {e}")))
            }
        }
    }
}

#[async_trait::async_trait]
impl JobHandler for Dispatch {
    async fn handle(&self, job: &ClaimedJob) -> Result<Value, JobError> {
        if let Ok(Job::ShopWriteBackV1(wb)) = Job::from_payload(&job.payload) {
            return self.write_back(&job.tenant, &wb).await;
        }
        let result = self.booking.handle(job).await?;
        self.after_booking(&job.tenant, &result).await;
        Ok(result)
    }
}
