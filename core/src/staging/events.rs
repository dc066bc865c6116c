//! The event feed: every change, published to subscribers and kept in the state store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Outcome, Status};

/// A change published to subscribers and recorded in the store's event feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

impl EventKind {
    /// The kind's name, as the JSON form (`"event"`) and every binding spell it:
    /// `StatusChanged` or `CommandFinished`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::StatusChanged { .. } => "StatusChanged",
            EventKind::CommandFinished { .. } => "CommandFinished",
        }
    }

    /// The same name in snake case (`status_changed`, `command_finished`), as Python spells
    /// its constants.
    pub fn snake_name(&self) -> &'static str {
        match self {
            EventKind::StatusChanged { .. } => "status_changed",
            EventKind::CommandFinished { .. } => "command_finished",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_json_tags() {
        let kinds = [
            EventKind::StatusChanged {
                from: None,
                to: Some(Status::Running),
                reason: None,
            },
            EventKind::CommandFinished {
                action: "create".into(),
                outcome: Outcome::Success,
                audit_id: 1,
                reason: None,
            },
        ];
        for (kind, snake) in kinds.iter().zip(["status_changed", "command_finished"]) {
            let json = serde_json::to_value(kind).expect("serializes");
            assert_eq!(json["event"], kind.as_str());
            assert_eq!(kind.snake_name(), snake);
        }
    }
}
