//! Stagings: the lifecycle state machine of DM's staging manager, its state store, its events,
//! its audit log and its deploy backends.
//!
//! A [`StagingManager`] joins a [`StateStore`] (the embedded [`SqliteStore`] by default; with
//! the `postgres` feature, `PostgresStateStore` for several hosts, chosen by a `postgres://`
//! URL in [`StagingManager::open`]) and a [`Deployer`] ([`MockDeployer`], [`ScriptDeployer`], and with the
//! `kubernetes` feature `KubernetesDeployer`).
//! Commands follow the transition table in [`machine`]; one command at a time per staging,
//! enforced by compare-and-set in the state store so that several processes (or hosts) sharing
//! one state cannot run two commands on the same staging at once (the loser gets
//! [`Error::Busy`]). Events of every process sharing the state are read
//! with [`StagingManager::events_since`], [`StagingManager::wait_events`] or
//! [`StagingManager::follow`].
//!
//! # Blocking and async forms
//!
//! Every command has a blocking form named for the command (`create`, `update`, `delete`,
//! `restore`, `cleanup`, `reconcile`, …) that drives the shared runtime
//! ([`crate::runtime::block_on`]), and an async form with the `_async` suffix
//! (`create_async`, …) for hosts that run their own event loop (Node). Do not call the
//! blocking forms from inside an async task of your own runtime's current-thread flavour.
//!
//! # Private values
//!
//! Override values marked [`Visibility::Private`] are stored (restore needs them) but never
//! appear in events, the audit log, error messages, `Debug` output or CLI output: they are
//! held in a [`Secret`] whose `Debug`, `Display` and `Serialize` print `***`, and backend
//! output is scrubbed of them before it is stored or published.
//!
//! At rest they are sealed ([`sealed`]: XChaCha20-Poly1305 with a key file, by default
//! `staging.key` beside an SQLite `staging.db`), and the SQLite state file, its WAL and SHM
//! and the key file are mode 0600: a dump or a backup of the state holds no private value.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use capsa::staging::{ManagerOptions, MockDeployer, Override, Scope, StagingManager, Status};
//!
//! let dir = tempfile::tempdir()?;
//! let manager = StagingManager::open_sqlite(
//!     dir.path().join("staging.db"),
//!     Arc::new(MockDeployer::new()),
//!     ManagerOptions::default(),
//! )?;
//! let _events = manager.subscribe(|event| eprintln!("{event:?}"));
//! let password = Override::private(Scope::App, "DB_PASSWORD", "hunter2");
//! let web = manager.create("web", "1.0.0", vec![password])?;
//! assert_eq!(web.status, Status::Running);
//! assert!(!format!("{web:?}").contains("hunter2"));
//! assert_eq!(manager.delete("web")?.status, Status::Archived);
//! assert_eq!(manager.cleanup("web")?, None); // gone; its audit rows stay
//! assert_eq!(manager.audit_log(&Default::default())?.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod codec;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
mod ledger;
pub mod machine;
mod manager;
pub mod mock;
mod open;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod script;
pub mod sealed;
mod spelling;
pub mod sqlite;
pub mod store;

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{shown, Error, Result};

#[cfg(feature = "kubernetes")]
pub use kubernetes::KubernetesDeployer;
pub use manager::{
    CommandRequest, FeedFollower, ManagerOptions, PendingCommand, ReconcileLoop, ReconcileReport,
    StagingManager, Subscription,
};
pub use mock::{MockCall, MockDeployer};
pub use open::{
    default_state_path, is_postgres_url, open_store, open_store_with_key, BackendSettings,
    BackendSpec, OpenSettings, STATE_FILE_NAME,
};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStateStore};
pub use script::ScriptDeployer;
pub use sealed::{SealKey, KEY_FILE_ENV};
pub use sqlite::SqliteStore;
pub use store::StateStore;

/// How long a command may stay pending before reconcile marks it Failure
/// ([`ManagerOptions::pending_timeout`]'s default).
pub const DEFAULT_PENDING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// How long a control script may run before it is killed ([`ScriptDeployer`]'s default).
pub const DEFAULT_SCRIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// How long the Kubernetes backend's create and update wait for the workloads to be ready.
pub const DEFAULT_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// The `--project-name` scripts get by default.
pub const DEFAULT_PROJECT_NAME: &str = "capsa";
/// The `--base-domain` scripts get by default.
pub const DEFAULT_BASE_DOMAIN: &str = "localhost";

/// This host's name (recorded with a command's process id by a store shared by hosts).
pub(crate) fn this_host() -> String {
    crate::sys::host_name().to_string()
}

/// The status of a staging.
///
/// `Running`, `Failure` and `Archived` are stable; the three `*Pending` statuses mean a command
/// is in progress.
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

/// Where an override applies: the application's environment or the staging's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Passed to scripts as `--app-env-override K=V`.
    App,
    /// Passed to scripts as `--staging-override K=V`.
    Staging,
}

spelling::spelled!(Scope, "override scope", { App => "app", Staging => "staging" });

/// Whether an override's value may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visibility {
    /// Shown in logs, events and output.
    Public,
    /// Stored, passed to the backend, masked (`***`) everywhere else.
    Private,
}

spelling::spelled!(Visibility, "override visibility", { Public => "public", Private => "private" });

/// The mask printed in place of a private value.
pub const MASK: &str = "***";

/// A value that must not be shown: `Debug`, `Display` and `Serialize` print `***`.
///
/// The real value is only available through [`Secret::expose`], which is called where the
/// backend needs it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The real value. Call only to hand it to a backend or the state store.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// One override: `key=value` in a scope, public or private.
///
/// `Debug` and `Serialize` show the value only when it is public.
#[derive(Clone, PartialEq, Eq)]
pub struct Override {
    /// The key (a non-empty string without `=`).
    pub key: String,
    /// The value; shown only when `visibility` is public.
    pub value: Secret,
    /// App environment or staging setting.
    pub scope: Scope,
    /// Public or private.
    pub visibility: Visibility,
}

impl Override {
    /// A public override.
    pub fn public(scope: Scope, key: impl Into<String>, value: impl Into<String>) -> Override {
        Override {
            key: key.into(),
            value: Secret::new(value),
            scope,
            visibility: Visibility::Public,
        }
    }

    /// A private override: its value is masked everywhere but the backend call.
    pub fn private(scope: Scope, key: impl Into<String>, value: impl Into<String>) -> Override {
        Override {
            key: key.into(),
            value: Secret::new(value),
            scope,
            visibility: Visibility::Private,
        }
    }

    /// Parse `KEY=VALUE` (the value may itself contain `=`).
    pub fn parse(scope: Scope, visibility: Visibility, kv: &str) -> Result<Override> {
        let (k, v) = kv.split_once('=').ok_or_else(|| Error::InvalidArgument {
            what: "override",
            reason: format!(
                "expected KEY=VALUE, got {:?}",
                shown(kv.split('=').next().unwrap_or(""))
            ),
        })?;
        let o = Override {
            key: k.to_string(),
            value: Secret::new(v),
            scope,
            visibility,
        };
        o.validate()?;
        Ok(o)
    }

    /// Check the key: non-empty, no `=`, no control characters, at most 256 characters.
    pub fn validate(&self) -> Result<()> {
        let k = &self.key;
        if k.is_empty() || k.len() > 256 || k.contains('=') || k.chars().any(char::is_control) {
            return Err(Error::InvalidArgument {
                what: "override key",
                reason: format!(
                    "{:?}: must be 1 to 256 characters without '=' or control characters",
                    shown(k)
                ),
            });
        }
        Ok(())
    }

    /// The value as it may be shown: the real value if public, `***` if private.
    pub fn shown_value(&self) -> &str {
        match self.visibility {
            Visibility::Public => self.value.expose(),
            Visibility::Private => MASK,
        }
    }

    /// `KEY=VALUE` with the real value, as passed to a backend.
    pub fn to_arg(&self) -> String {
        format!("{}={}", self.key, self.value.expose())
    }
}

impl fmt::Debug for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Override")
            .field("key", &self.key)
            .field("value", &self.shown_value())
            .field("scope", &self.scope)
            .field("visibility", &self.visibility)
            .finish()
    }
}

impl Serialize for Override {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Override", 4)?;
        st.serialize_field("key", &self.key)?;
        st.serialize_field("value", self.shown_value())?;
        st.serialize_field("scope", &self.scope)?;
        st.serialize_field("visibility", &self.visibility)?;
        st.end()
    }
}

/// Replace every private value of `overrides` found in `text` by `***`.
pub fn redact(text: &str, overrides: &[Override]) -> String {
    let mut out = text.to_string();
    for o in overrides {
        if o.visibility == Visibility::Private && !o.value.expose().is_empty() {
            out = out.replace(o.value.expose(), MASK);
        }
    }
    out
}

/// [`redact`] for a piece of a longer text that was cut: besides every whole private value,
/// a fragment of one left at a cut edge is masked too (`cut_start`: the piece begins where
/// something was cut off before it; `cut_end`: the piece ends where something was cut off
/// after it). Masking must always happen before cutting: this is for the cuts that happen while
/// a stream is read, before the whole text exists.
pub fn redact_cut(text: &str, overrides: &[Override], cut_start: bool, cut_end: bool) -> String {
    let mut out = redact(text, overrides);
    for o in overrides {
        let v = o.value.expose();
        if o.visibility != Visibility::Private || v.is_empty() {
            continue;
        }
        // The shortest fragment worth masking: 2 bytes (a single character says little).
        let min = 2.min(v.len());
        if cut_end {
            let longest = (min..v.len())
                .rev()
                .filter(|&k| v.is_char_boundary(k))
                .find(|&k| out.ends_with(&v[..k]));
            if let Some(k) = longest {
                out.truncate(out.len() - k);
                out.push_str(MASK);
            }
        }
        if cut_start {
            let longest = (min..v.len())
                .rev()
                .filter(|&k| v.is_char_boundary(v.len() - k))
                .find(|&k| out.starts_with(&v[v.len() - k..]));
            if let Some(k) = longest {
                out = format!("{MASK}{}", &out[k..]);
            }
        }
        // A piece shorter than the value may be an inner fragment of it.
        if (cut_start || cut_end) && out.len() >= min && v.contains(out.as_str()) {
            out = MASK.to_string();
        }
    }
    out
}

/// A staging as recorded in the state store.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
}

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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// A filter for [`StagingManager::audit_log`].
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this staging.
    pub name: Option<String>,
    /// Only rows with an id greater than this.
    pub after_id: Option<i64>,
    /// At most this many rows (the newest ones), oldest first.
    pub limit: Option<usize>,
}

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

/// What a backend answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendOutcome {
    /// Success: for `check`, healthy; for `archive_check`, properly archived; for
    /// `tag_check`, a valid tag.
    Success,
    /// The backend answered "no" (a script's non-zero exit): the command failed, the staging
    /// is unhealthy, the tag is invalid.
    Failed {
        /// Why (for a script: the exit code and a tail of stderr).
        reason: String,
    },
    /// The backend could not be asked (spawn error, timeout, a script's exit code 75 =
    /// `EX_TEMPFAIL`). For a command this is a failure; for a check it is *not* an answer and
    /// changes nothing.
    Unavailable {
        /// Why.
        reason: String,
    },
}

impl BackendOutcome {
    /// `success`, `failed` or `unavailable`: the spelling every binding prints, and the one
    /// [`MockDeployer::reply`] parses.
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendOutcome::Success => "success",
            BackendOutcome::Failed { .. } => "failed",
            BackendOutcome::Unavailable { .. } => "unavailable",
        }
    }
}

/// A backend's reply to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendReply {
    /// The outcome.
    pub outcome: BackendOutcome,
    /// The exit code, for backends that run processes.
    pub exit_code: Option<i32>,
    /// Captured output (bounded).
    pub output: String,
}

impl BackendReply {
    /// A success without output.
    pub fn success() -> BackendReply {
        BackendReply {
            outcome: BackendOutcome::Success,
            exit_code: None,
            output: String::new(),
        }
    }

    /// A failure answer.
    pub fn failed(reason: impl Into<String>) -> BackendReply {
        BackendReply {
            outcome: BackendOutcome::Failed {
                reason: reason.into(),
            },
            exit_code: None,
            output: String::new(),
        }
    }

    /// An unavailable backend (transient error).
    pub fn unavailable(reason: impl Into<String>) -> BackendReply {
        BackendReply {
            outcome: BackendOutcome::Unavailable {
                reason: reason.into(),
            },
            exit_code: None,
            output: String::new(),
        }
    }

    /// The failure reason, if not a success.
    pub fn reason(&self) -> Option<&str> {
        match &self.outcome {
            BackendOutcome::Success => None,
            BackendOutcome::Failed { reason } | BackendOutcome::Unavailable { reason } => {
                Some(reason)
            }
        }
    }
}

/// What a backend is asked to act on.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The staging name.
    pub name: String,
    /// Its Kubernetes namespace.
    pub namespace: String,
    /// The tag, for create, update, restore and tag_check.
    pub tag: Option<String>,
    /// The overrides (with real private values: use [`Secret::expose`] only to deploy).
    pub overrides: Vec<Override>,
}

/// A deploy backend: DM's staging control contract (`create`, `update`, `delete`, `check`,
/// `cleanup`, `archive_check`, `tag_check`).
///
/// Object-safe (`Arc<dyn Deployer>`). Every call returns a [`BackendReply`]; a backend never
/// panics on a failed call and never reports "gone" from a failed read: a call it could not
/// make is [`BackendOutcome::Unavailable`].
#[async_trait::async_trait]
pub trait Deployer: Send + Sync {
    /// A short backend name for messages (`mock`, `script`, `kubernetes`).
    fn name(&self) -> &str;
    /// Deploy a new staging (also used by restore).
    async fn create(&self, req: &DeployRequest) -> BackendReply;
    /// Redeploy with a new tag and overrides.
    async fn update(&self, req: &DeployRequest) -> BackendReply;
    /// Archive: remove workloads, keep volumes.
    async fn delete(&self, req: &DeployRequest) -> BackendReply;
    /// Health check of a running (or failed) staging.
    async fn check(&self, req: &DeployRequest) -> BackendReply;
    /// Remove volumes, claims and certificates.
    async fn cleanup(&self, req: &DeployRequest) -> BackendReply;
    /// Check that an archived staging is properly archived.
    async fn archive_check(&self, req: &DeployRequest) -> BackendReply;
    /// Validate a tag before a create or update.
    async fn tag_check(&self, req: &DeployRequest) -> BackendReply;
}

/// Check a staging name: usable as a Kubernetes namespace and label value: lowercase ASCII
/// letters, digits and `-`, starting with a letter, not ending with `-`, 3 to 40 characters.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |rule: &str| {
        Err(Error::InvalidName {
            what: "staging name",
            value: shown(name),
            rule: rule.to_string(),
        })
    };
    let n = name.chars().count();
    if !(3..=40).contains(&n) {
        return bad("must be 3 to 40 characters long");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("must start with a lowercase letter (a-z)");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return bad("may contain only lowercase letters a-z, digits 0-9 and '-'");
    }
    if name.ends_with('-') {
        return bad("must not end with '-'");
    }
    Ok(())
}

/// Check a tag's form: 1 to 128 characters of letters, digits, `.`, `_`, `-`, `+`.
/// Whether the backend accepts it is its `tag_check`'s business.
pub fn validate_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what: "tag",
            value: shown(tag),
            rule: "must be 1 to 128 characters of letters, digits, '.', '_', '-', '+'".into(),
        })
    }
}

/// Check an actor (who issues commands, recorded in the audit log): 1 to 128 characters, no
/// control characters (a newline in an actor could forge a row of `staging log`).
pub fn validate_actor(actor: &str) -> Result<()> {
    let n = actor.chars().count();
    if (1..=128).contains(&n) && !actor.chars().any(char::is_control) {
        return Ok(());
    }
    Err(Error::InvalidName {
        what: "actor",
        value: shown(actor),
        rule: "must be 1 to 128 characters with no control characters".into(),
    })
}

/// Compare two tags: as semantic versions when both parse as one (an optional leading `v`
/// allowed), otherwise as strings.
pub fn compare_tags(a: &str, b: &str) -> Ordering {
    fn sv(t: &str) -> Option<semver::Version> {
        semver::Version::parse(t.strip_prefix('v').unwrap_or(t)).ok()
    }
    match (sv(a), sv(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        // Every listed case is asserted (issue 23: a length guard used to skip some, and "s1",
        // 2 characters, is in fact too short).
        for ok in [
            "abc",
            "a-b-c",
            "s12",
            "a1b",
            "stage-42",
            "a--b",
            &"a".repeat(40),
        ] {
            validate_name(ok).unwrap_or_else(|e| panic!("{ok:?} refused: {e}"));
        }
        for bad in [
            "ab",
            "s1",
            "Abc",
            "1abc",
            "-abc",
            "abc-",
            "a_b",
            "a.b.c",
            "ab c",
            &"a".repeat(41),
            "",
        ] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidName, "{bad}");
        }
    }

    #[test]
    fn secrets_are_masked() {
        let o = Override::private(Scope::App, "PASSWORD", "hunter2");
        assert!(!format!("{o:?}").contains("hunter2"));
        assert!(!format!("{}", o.value).contains("hunter2"));
        assert!(!serde_json::to_string(&o).unwrap().contains("hunter2"));
        assert_eq!(o.to_arg(), "PASSWORD=hunter2");
        let p = Override::public(Scope::App, "A", "b=c");
        assert!(serde_json::to_string(&p).unwrap().contains("b=c"));
        assert_eq!(redact("x hunter2 y", &[o]), "x *** y");
    }

    #[test]
    fn override_parse_keeps_equals_in_value() {
        let o = Override::parse(Scope::Staging, Visibility::Public, "K=a=b c").unwrap();
        assert_eq!(o.key, "K");
        assert_eq!(o.value.expose(), "a=b c");
        assert!(Override::parse(Scope::Staging, Visibility::Public, "novalue").is_err());
    }

    #[test]
    fn tags_compare_as_semver() {
        assert_eq!(compare_tags("1.10.0", "1.9.0"), Ordering::Greater);
        assert_eq!(compare_tags("v2.0.0", "1.9.9"), Ordering::Greater);
        assert_eq!(compare_tags("abc", "abd"), Ordering::Less);
    }
}
