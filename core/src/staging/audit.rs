//! The audit log: one row per command, with its [`Outcome`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Status;

/// The outcome of a command, as recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Started, not finished yet (or interrupted and not reconciled yet).
    Pending,
    /// The backend succeeded.
    Success,
    /// The backend failed, or the pending command timed out.
    Failure,
    /// Refused before anything happened (busy, invalid transition, tag rejected).
    Refused,
}

impl Outcome {
    /// The outcome name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "Pending",
            Outcome::Success => "Success",
            Outcome::Failure => "Failure",
            Outcome::Refused => "Refused",
        }
    }

    /// Parse an outcome name.
    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Pending,
            Outcome::Success,
            Outcome::Failure,
            Outcome::Refused,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One row of the audit log. Private override values are masked before the row is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Increasing id.
    pub id: i64,
    /// The staging name.
    pub name: String,
    /// `create`, `update`, `delete`, `restore`, `cleanup`, or `reconcile` for status changes
    /// made by a health check.
    pub action: String,
    /// Who asked.
    pub actor: String,
    /// The tag involved, if any.
    pub tag: Option<String>,
    /// Overrides as `KEY=VALUE` with private values masked.
    pub overrides: Vec<String>,
    /// The outcome.
    pub outcome: Outcome,
    /// The status before.
    pub status_before: Option<Status>,
    /// The status after (`None`: gone, or not finished).
    pub status_after: Option<Status>,
    /// Failure or refusal reason.
    pub reason: Option<String>,
    /// The backend's exit code, when it has one.
    pub exit_code: Option<i32>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, once finished.
    pub duration_ms: Option<u64>,
    /// The backend's output (bounded, private values masked).
    pub output: String,
}

/// A filter for [`StagingManager::audit_log`](super::StagingManager::audit_log).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this staging.
    pub name: Option<String>,
    /// Only rows with an id greater than this.
    pub after_id: Option<i64>,
    /// At most this many rows (the newest ones), oldest first.
    pub limit: Option<usize>,
}
