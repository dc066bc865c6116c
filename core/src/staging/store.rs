//! The state store trait: where stagings, the audit log and the event feed live.
//!
//! Every state change is one transaction that checks the current state and writes the new one
//! (compare-and-set), so several processes sharing one store never run two commands on one
//! staging at once. The embedded implementation is [`SqliteStore`](super::SqliteStore); the
//! PostgreSQL store for several hosts (feature `postgres`) is `PostgresStateStore`.

use chrono::{DateTime, Utc};

use super::{
    AuditEntry, AuditQuery, Command, Event, Expiry, Override, OverrideEdit, Staging, Status,
};
use crate::error::Result;

/// The command in progress on a staging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The audit row id of the command (also its operation id).
    pub op_id: i64,
    /// The command.
    pub command: Command,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The process id that started it.
    pub pid: u32,
    /// The host that started it, when the store is shared by several hosts (`None`: this
    /// host, as for the embedded SQLite store). A process id means something only on its own
    /// host: a command started elsewhere is never taken for orphaned because no local process
    /// has its id; only the pending timeout resolves it.
    pub host: Option<String>,
}

/// A staging with its in-flight command, as the store holds it.
#[derive(Debug, Clone)]
pub struct StagingRecord {
    /// The staging (overrides carry their real values: do not print them unmasked).
    pub staging: Staging,
    /// The command in progress.
    pub in_flight: Option<InFlight>,
}

/// A request to start a command.
#[derive(Debug, Clone)]
pub struct Begin<'a> {
    /// The staging.
    pub name: &'a str,
    /// The command.
    pub command: Command,
    /// Who asks.
    pub actor: &'a str,
    /// The new tag (create and update); `None` keeps the stored one.
    pub tag: Option<&'a str>,
    /// The new overrides (create and update); `None` keeps the stored ones.
    pub overrides: Option<&'a [Override]>,
    /// Per-key changes applied, in order, to those overrides (create and update): checked
    /// against the row read in the same transaction, so a concurrent change is never lost.
    pub edits: &'a [OverrideEdit],
    /// What the command does to the staging's expiry.
    pub expiry: Expiry,
    /// This process.
    pub pid: u32,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A started command.
#[derive(Debug, Clone)]
pub struct Begun {
    /// The staging after the start (pending status; real override values).
    pub record: StagingRecord,
    /// The status before (`None`: a new staging).
    pub status_before: Option<Status>,
    /// The operation id (= its audit row id).
    pub op_id: i64,
    /// Events written by the start.
    pub events: Vec<Event>,
}

/// A request to finish a command (compare-and-set on its operation id).
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    /// The staging.
    pub name: &'a str,
    /// The operation id returned by [`StateStore::begin`].
    pub op_id: i64,
    /// The command.
    pub command: Command,
    /// Whether it succeeded.
    pub success: bool,
    /// Whether a success leaves the pending status for `reconcile` to settle by check
    /// ([`machine::finish_settled`](super::machine::finish_settled)).
    pub settle_by_check: bool,
    /// The failure reason (already scrubbed of private values).
    pub reason: Option<String>,
    /// The backend's exit code.
    pub exit_code: Option<i32>,
    /// The backend's output (bounded, scrubbed).
    pub output: &'a str,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A finished command.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Whether this call changed the staging (false when the operation had already been
    /// resolved by someone else, e.g. a `reconcile` that timed it out).
    pub applied: bool,
    /// The staging afterwards (`None`: gone).
    pub staging: Option<Staging>,
    /// Events written.
    pub events: Vec<Event>,
}

/// The result of one health check, to be recorded.
#[derive(Debug, Clone)]
pub struct CheckUpdate {
    /// The staging.
    pub name: String,
    /// The status it had when checked: the update applies only if it still has it and no
    /// command is in progress.
    pub expected: Status,
    /// The status the check implies (equal to `expected` for no change).
    pub new_status: Status,
    /// The reason (for a Failure).
    pub reason: Option<String>,
    /// When checked.
    pub now: DateTime<Utc>,
}

/// One staging a `reconcile` wants to ask the backend about ([`StateStore::claim`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The staging.
    pub name: String,
    /// Claim it only if it was last checked no later than this (`None`: whenever it was): the
    /// check is due. Tested in the same statement as the lease, so two reconciles of one
    /// period never both check it.
    pub due_before: Option<DateTime<Utc>>,
}

/// Where stagings, the audit log and events are kept. Every method must be one atomic
/// transaction; the lifecycle writes (`begin`, `refuse`, `finish`, `record_checks`) are the
/// same for every store and written once in the crate's ledger, which each store runs inside
/// its own transaction.
///
/// # Synchronous, on purpose
///
/// The trait is synchronous, and async callers (the manager's `_async` forms) run its methods
/// on tokio's blocking pool. This is the one direction: the default store, SQLite, is
/// synchronous and its calls are short, and a synchronous trait is what users' own stores
/// and tests implement and call without a runtime. A store whose driver is async
/// (PostgreSQL: tokio-postgres) drives it on core's runtime from inside its methods
/// ([`crate::runtime::block_on`]), which is safe on a blocking-pool thread. Making the trait
/// async instead would make SQLite fake an async API and still need a blocking thread for
/// each of its calls.
pub trait StateStore: Send + Sync {
    /// Start a command: check the transition table ([`super::machine::start`]) against the
    /// current row, set the running status and the in-flight marker, write a `Pending` audit
    /// row. A refused command writes a `Refused` audit row and returns the refusal error
    /// (`Busy`, `InvalidTransition`).
    fn begin(&self, req: &Begin<'_>) -> Result<Begun>;

    /// Record a command refused before [`StateStore::begin`] (a rejected tag, say).
    fn refuse(
        &self,
        name: &str,
        command: Command,
        actor: &str,
        settings: Option<(&str, &[Override])>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Finish a command if its operation is still the one in flight; complete its audit row.
    fn finish(&self, req: &Finish<'_>) -> Result<Finished>;

    /// One staging.
    fn get(&self, name: &str) -> Result<Option<StagingRecord>>;

    /// All stagings, sorted by name.
    fn list(&self) -> Result<Vec<StagingRecord>>;

    /// Record health-check results in one transaction; returns the events of the status
    /// changes made.
    fn record_checks(&self, updates: &[CheckUpdate]) -> Result<Vec<Event>>;

    /// Claim stagings for one reconcile: each staging of `claims` whose lease is free at
    /// `now` (and whose check is due, [`Claim::due_before`]) gets the lease `until`; returns
    /// the names claimed. Several hosts running `reconcile` on one shared store so ask the
    /// backend about each staging once. The default (a store of the user's own without
    /// leases) claims every one.
    fn claim(
        &self,
        claims: &[Claim],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let _ = (now, until);
        Ok(claims.iter().map(|c| c.name.clone()).collect())
    }

    /// Release the leases `until` that [`StateStore::claim`] gave these stagings (a lease
    /// taken over meanwhile, after it ran out, is left alone).
    fn release(&self, names: &[String], until: DateTime<Utc>) -> Result<()> {
        let _ = (names, until);
        Ok(())
    }

    /// Audit rows, oldest first.
    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    /// Events with a sequence number greater than `after`, oldest first, at most `limit`.
    fn events_since(&self, after: i64, limit: usize) -> Result<Vec<Event>>;

    /// The sequence number of the newest event (0 when there is none).
    fn last_event_seq(&self) -> Result<i64>;

    /// Drop events older than `before` from the feed (the audit log is never pruned).
    fn prune_events(&self, before: DateTime<Utc>) -> Result<usize>;

    /// A wake-up signal for the event feed: its value changes when events may have been added
    /// by any process sharing the store (PostgreSQL: `LISTEN/NOTIFY`). `None` (the default,
    /// and the SQLite store's answer) means there is no such signal and readers poll
    /// [`StateStore::events_since`]. A signal is a hint only: readers still read the feed.
    fn event_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
