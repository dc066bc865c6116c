//! The staging itself: its [`Status`], the [`Command`]s that move it, and the [`Staging`]
//! record the state store keeps.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Override;

/// The status of a staging.
///
/// `Running`, `Failure` and `Archived` are stable; the three `*Pending` statuses mean a command
/// is in progress, or (with a backend that settles by check, DM's way) that its script has
/// finished and `reconcile` awaits `check` / `archive_check` to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Deployed and healthy.
    Running,
    /// The last command or health check failed; see the staging's `reason`.
    Failure,
    /// A create or restore is in progress.
    CreatePending,
    /// An update is in progress.
    UpdatePending,
    /// A delete (archive) is in progress.
    DeletePending,
    /// Workloads removed, volumes kept; `restore` brings it back, `cleanup` removes it.
    Archived,
}

impl Status {
    /// All six statuses.
    pub const ALL: [Status; 6] = [
        Status::Running,
        Status::Failure,
        Status::CreatePending,
        Status::UpdatePending,
        Status::DeletePending,
        Status::Archived,
    ];

    /// The status name (`"Running"`, `"CreatePending"`, …), as used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "Running",
            Status::Failure => "Failure",
            Status::CreatePending => "CreatePending",
            Status::UpdatePending => "UpdatePending",
            Status::DeletePending => "DeletePending",
            Status::Archived => "Archived",
        }
    }

    /// Parse a status name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether a command is in progress in this status.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Status::CreatePending | Status::UpdatePending | Status::DeletePending
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staging command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// Create a new staging.
    Create,
    /// Update a staging's tag and overrides.
    Update,
    /// Archive a staging: workloads removed, volumes kept.
    Delete,
    /// Recreate an archived staging with its last settings.
    Restore,
    /// Remove volumes, claims, certificates and the record.
    Cleanup,
}

impl Command {
    /// All five commands.
    pub const ALL: [Command; 5] = [
        Command::Create,
        Command::Update,
        Command::Delete,
        Command::Restore,
        Command::Cleanup,
    ];

    /// The command name (`"create"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Create => "create",
            Command::Update => "update",
            Command::Delete => "delete",
            Command::Restore => "restore",
            Command::Cleanup => "cleanup",
        }
    }

    /// Parse a command name.
    pub fn parse(s: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staging as recorded in the state store (`Deserialize` reads its JSON form back, private
/// values masked: what a server answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staging {
    /// Its name (also its Kubernetes namespace and label).
    pub name: String,
    /// The tag (image or release version) last requested.
    pub tag: String,
    /// The overrides last requested (private values masked when shown).
    pub overrides: Vec<Override>,
    /// Its status.
    pub status: Status,
    /// Why it is in `Failure` (the last failure reason; kept until the next success).
    pub reason: Option<String>,
    /// The command in progress, if any (also set during `cleanup`, which has no pending status).
    pub command_in_progress: Option<Command>,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
    /// When the current status was entered.
    pub status_since: DateTime<Utc>,
    /// When the backend was last asked about it (`reconcile`).
    pub checked_at: Option<DateTime<Utc>>,
    /// When it expires: `reconcile` archives it (`delete`, by the actor
    /// [`TTL_ACTOR`](super::TTL_ACTOR)) once this has passed. Set by a command's time to
    /// live ([`Expiry`](super::Expiry)); `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
}
