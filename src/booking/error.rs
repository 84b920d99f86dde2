//! The booking layer's one error type, and how each error becomes a queue decision:
//! Minimax's own disposition (retry, wait, give up), storage failures retry, mapping
//! problems and settings that name what Minimax lacks are permanent with a reason a
//! shop owner can act on, and work that depends on another job waits.

use chrono::{DateTime, Utc};

use crate::mapping::MappingError;
use crate::minimax::{Disposition, MinimaxError};
use crate::worker::JobError;

use super::records::RecordsError;

/// Errors of the booking layer; [`BookingError::into_job_error`] decides the queue's move.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error(transparent)]
    Minimax(#[from] MinimaxError),
    #[error("{0}")]
    Mapping(#[from] MappingError),
    #[error("storage: {0}")]
    Records(#[from] RecordsError),
    #[error("tenant storage: {0}")]
    Tenant(#[from] crate::tenants::TenantError),
    /// A setting names something Minimax does not have.
    #[error("{0}")]
    Setting(String),
    /// Must wait for something else to happen first (another job, the invoice).
    #[error("{reason}")]
    Wait {
        reason: String,
        until: DateTime<Utc>,
    },
    #[error("{0}")]
    Permanent(String),
}

impl BookingError {
    pub fn into_job_error(self) -> JobError {
        match self {
            BookingError::Minimax(e) => {
                let reason = e.to_string();
                match e.disposition() {
                    Disposition::Retry { after } => JobError::Retry {
                        reason,
                        not_before: after.and_then(|d| {
                            chrono::Duration::from_std(d).ok().map(|d| Utc::now() + d)
                        }),
                    },
                    Disposition::WaitUntil(until) => JobError::Wait { reason, until },
                    Disposition::Unavailable { after } => JobError::Unavailable {
                        reason,
                        not_before: after.and_then(|d| {
                            chrono::Duration::from_std(d).ok().map(|d| Utc::now() + d)
                        }),
                    },
                    Disposition::Permanent => JobError::Permanent { reason },
                }
            }
            e @ (BookingError::Records(_) | BookingError::Tenant(_)) => JobError::Retry {
                reason: e.to_string(),
                not_before: None,
            },
            BookingError::Wait { reason, until } => JobError::Wait { reason, until },
            e @ (BookingError::Mapping(_)
            | BookingError::Setting(_)
            | BookingError::Permanent(_)) => JobError::Permanent {
                reason: e.to_string(),
            },
        }
    }

    /// A booking record that should carry a Minimax id does not.
    pub(super) fn record_without_id() -> Self {
        BookingError::Permanent("booking record without a Minimax id".into())
    }
}

pub type Result<T> = std::result::Result<T, BookingError>;
