//! The event feed: every change, published to subscribers and kept in the state store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Outcome, Status};

/// A change published to subscribers and recorded in the store's event feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Position in the store's event feed (increasing).
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The staging.
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What an [`Event`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum EventKind {
    /// The staging's status changed (`to: None`: the record is gone).
    StatusChanged {
        /// The status before (`None`: new staging).
        from: Option<Status>,
        /// The status after (`None`: removed by cleanup).
        to: Option<Status>,
        /// The reason, for a failure.
        reason: Option<String>,
    },
    /// A command finished.
    CommandFinished {
        /// The command (or `reconcile`).
        action: String,
        /// Its outcome.
        outcome: Outcome,
        /// Its audit row.
        audit_id: i64,
        /// The failure reason.
        reason: Option<String>,
    },
}
