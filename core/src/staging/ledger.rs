//! The staging lifecycle in the state store, written once for every store: what
//! [`StateStore::begin`](super::StateStore::begin), `refuse`, `finish` and `record_checks`
//! write, over the narrow transactional row interface [`StateTx`] that each store implements.
//!
//! The domain rules live here and only here: the transition table's answer
//! ([`super::machine`]), the status while a command runs and after it, `status_since` (moved
//! only when the status changes), the failure reason (kept on a failure, cleared on success),
//! the audit rows (`Pending` then completed, `Refused`, `reconcile`), the events (a status
//! change and a finished command), and the compare-and-set of every write ([`Guard`]): a
//! command starts only on a staging with no command in flight, finishes only if its operation
//! id is still the one in flight, and a health check applies only if the staging still has
//! the status it was checked in and no command in flight. The stores keep what is theirs: SQL
//! (the statements are rendered once in [`super::codec`]; the stores bind them), connections,
//! locking (`BEGIN IMMEDIATE`, `FOR UPDATE`, the feed lock), retries, `LISTEN/NOTIFY` and
//! migrations.
//!
//! # Why synchronous
//!
//! [`StateStore`](super::StateStore) is synchronous (see its documentation), and so is the
//! embedded SQLite store, the default. The ledger is sync over a sync [`StateTx`]: SQLite's
//! implementation calls rusqlite directly, and PostgreSQL's drives each statement on core's
//! runtime ([`crate::runtime::block_on`]) inside one transaction held for the whole call. That
//! keeps one plain copy of the rules without making SQLite pretend to be async or bringing an
//! executor into its path; the cost, one `block_on` per statement on PostgreSQL, is small next
//! to the round trip to the server it waits for.
//!
//! # Errors
//!
//! A ledger function returns a [`Step`]: `Err` is a failure of the store (or a stored value
//! that does not decode) and the store rolls the transaction back (PostgreSQL retries it when
//! it lost a race); `Ok` commits, also when it holds a refusal (`Busy`, `InvalidTransition`, a
//! value that cannot be stored), whose `Refused` audit row must stay.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::codec::{self, Cell, Cells};
use super::machine;
use super::sealed::SealKey;
use super::store::{Begin, Begun, CheckUpdate, Claim, Finish, Finished, StagingRecord};
use super::{Command, Event, EventKind, Outcome, Override, Status};
use crate::error::{Error, Result};

/// What a ledger function returns: `Err` rolls the transaction back; `Ok` commits and returns
/// its value, which may be a refusal.
pub(crate) type Step<T> = Result<Result<T>>;

/// Which row state a write applies to (compare-and-set); a write whose guard does not hold
/// changes nothing and says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// No command in flight.
    Idle,
    /// This operation in flight.
    Op(i64),
    /// This status and no command in flight.
    IdleIn(Status),
}

impl Guard {
    /// The conditions on the staging `name`'s row.
    pub fn cells(self, name: &str) -> Cells {
        let mut c = vec![("name", Cell::text(name))];
        match self {
            Guard::Idle => c.push(("op_id", Cell::Int(None))),
            Guard::Op(id) => c.push(("op_id", Cell::Int(Some(id)))),
            Guard::IdleIn(s) => {
                c.push(("status", Cell::text(s.as_str())));
                c.push(("op_id", Cell::Int(None)));
            }
        }
        c
    }
}

/// The in-flight marker of a staging row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    /// The operation id (its audit row id).
    pub id: i64,
    /// The command.
    pub command: Command,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The process that started it.
    pub pid: u32,
}

/// The columns of the in-flight marker (`None`: cleared). A store that records the host adds
/// `op_host` itself.
fn op_cells(op: Option<&Op>) -> Cells {
    vec![
        ("op_id", Cell::Int(op.map(|o| o.id))),
        ("op_command", Cell::opt_text(op.map(|o| o.command.as_str()))),
        (
            "op_started_at",
            Cell::Int(op.map(|o| codec::ms(o.started_at))),
        ),
        ("op_pid", Cell::Int(op.map(|o| i64::from(o.pid)))),
    ]
}

/// A change to a staging row: the columns to set (`None`: unchanged).
#[derive(Debug, Default)]
pub(crate) struct Change<'a> {
    /// The status.
    pub status: Option<Status>,
    /// The tag.
    pub tag: Option<&'a str>,
    /// The overrides, encoded.
    pub overrides: Option<&'a str>,
    /// The failure reason (`Some(None)`: cleared).
    pub reason: Option<Option<&'a str>>,
    /// Last written.
    pub updated_at: Option<DateTime<Utc>>,
    /// Since when it has its status.
    pub status_since: Option<DateTime<Utc>>,
    /// Last checked.
    pub checked_at: Option<DateTime<Utc>>,
    /// The in-flight marker (`Some(None)`: cleared).
    pub op: Option<Option<Op>>,
    /// The expiry (`Some(None)`: cleared).
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

impl Change<'_> {
    /// The columns of the row of a new staging `name`, created `at`, with this change.
    pub fn new_row(&self, name: &str, at: DateTime<Utc>) -> Cells {
        let mut c = vec![("name", Cell::text(name)), ("created_at", Cell::time(at))];
        c.extend(self.cells());
        c
    }

    /// The columns it sets.
    pub fn cells(&self) -> Cells {
        let mut c = Vec::new();
        if let Some(s) = self.status {
            c.push(("status", Cell::text(s.as_str())));
        }
        if let Some(t) = self.tag {
            c.push(("tag", Cell::text(t)));
        }
        if let Some(o) = self.overrides {
            c.push(("overrides", Cell::text(o)));
        }
        if let Some(r) = self.reason {
            c.push(("reason", Cell::opt_text(r)));
        }
        for (col, t) in [
            ("updated_at", self.updated_at),
            ("status_since", self.status_since),
            ("checked_at", self.checked_at),
        ] {
            if let Some(t) = t {
                c.push((col, Cell::time(t)));
            }
        }
        if let Some(op) = &self.op {
            c.extend(op_cells(op.as_ref()));
        }
        if let Some(t) = self.expires_at {
            c.push(("expires_at", Cell::Int(t.map(codec::ms))));
        }
        c
    }
}

/// A new audit row.
#[derive(Debug)]
pub(crate) struct AuditRow<'a> {
    /// The staging.
    pub name: &'a str,
    /// The command, or `reconcile`.
    pub action: &'a str,
    /// Who.
    pub actor: &'a str,
    /// The tag.
    pub tag: Option<&'a str>,
    /// The overrides (stored masked).
    pub overrides: &'a [Override],
    /// The outcome so far.
    pub outcome: Outcome,
    /// The status before.
    pub before: Option<Status>,
    /// The status after (`None` while pending).
    pub after: Option<Status>,
    /// The reason.
    pub reason: Option<&'a str>,
    /// When it started.
    pub now: DateTime<Utc>,
    /// How long it took (`None` while pending).
    pub duration_ms: Option<i64>,
}

impl AuditRow<'_> {
    /// All its columns but the id.
    pub fn cells(&self) -> Cells {
        vec![
            ("name", Cell::text(self.name)),
            ("action", Cell::text(self.action)),
            ("actor", Cell::text(self.actor)),
            ("tag", Cell::opt_text(self.tag)),
            (
                "overrides",
                Cell::text(codec::masked_overrides(self.overrides)),
            ),
            ("outcome", Cell::text(self.outcome.as_str())),
            (
                "status_before",
                Cell::opt_text(self.before.map(Status::as_str)),
            ),
            (
                "status_after",
                Cell::opt_text(self.after.map(Status::as_str)),
            ),
            ("reason", Cell::opt_text(self.reason)),
            ("started_at", Cell::time(self.now)),
            ("duration_ms", Cell::Int(self.duration_ms)),
        ]
    }
}

/// The end of a command, written into its audit row.
#[derive(Debug)]
pub(crate) struct AuditDone<'a> {
    /// The outcome.
    pub outcome: Outcome,
    /// The status after (`None`: not written, as for a command resolved elsewhere; `Some(None)`:
    /// the staging is gone).
    pub after: Option<Option<Status>>,
    /// The reason.
    pub reason: Option<&'a str>,
    /// The backend's exit code.
    pub exit_code: Option<i32>,
    /// The backend's output.
    pub output: &'a str,
    /// When it ended.
    pub now: DateTime<Utc>,
    /// Only if the row is still `Pending`.
    pub only_pending: bool,
}

impl AuditDone<'_> {
    /// The columns it sets, and the conditions on audit row `id`.
    pub fn cells(&self, id: i64) -> (Cells, Cells) {
        let mut set = vec![("outcome", Cell::text(self.outcome.as_str()))];
        if let Some(after) = self.after {
            set.push(("status_after", Cell::opt_text(after.map(Status::as_str))));
        }
        set.extend([
            ("reason", Cell::opt_text(self.reason)),
            ("exit_code", Cell::Int32(self.exit_code)),
            ("duration_ms", Cell::SinceStart(codec::ms(self.now))),
            ("output", Cell::text(self.output)),
        ]);
        let mut cond = vec![("id", Cell::Int(Some(id)))];
        if self.only_pending {
            cond.push(("outcome", Cell::text(Outcome::Pending.as_str())));
        }
        (set, cond)
    }
}

/// One transaction on a state store, as the lifecycle sees it. Everything a value of this type
/// does commits or rolls back together; the store decides which from the [`Step`] the ledger
/// returns.
pub(crate) trait StateTx {
    /// The key that seals private values (`None`: private values are refused).
    fn key(&self) -> Option<&SealKey>;

    /// The store, for messages.
    fn place(&self) -> &Path;

    /// Lock these stagings' rows until the transaction ends, in one order (PostgreSQL: so that
    /// writers of several rows cannot deadlock; SQLite's transaction holds the write lock).
    fn lock_stagings(&mut self, names: &[&str]) -> Result<()>;

    /// A staging, its row locked until the transaction ends. Errors besides the store's: those
    /// of [`codec::decode_overrides`].
    fn staging_for_update(&mut self, name: &str) -> Result<Option<StagingRecord>>;

    /// A staging's status only (no override is decoded).
    fn status_of(&mut self, name: &str) -> Result<Option<Status>>;

    /// A staging's tag and stored overrides (as [`codec::encode_overrides`] wrote them).
    fn stored_settings(&mut self, name: &str) -> Result<Option<(String, String)>>;

    /// Insert the row of a new staging `name`, created `at`, with the columns of `change`.
    fn insert_staging(&mut self, name: &str, at: DateTime<Utc>, change: &Change<'_>) -> Result<()>;

    /// Change a staging row if `guard` holds; whether it did.
    fn update_staging(&mut self, name: &str, guard: Guard, change: &Change<'_>) -> Result<bool>;

    /// Delete a staging row if `guard` holds; whether it did.
    fn delete_staging(&mut self, name: &str, guard: Guard) -> Result<bool>;

    /// Insert an audit row; its id.
    fn insert_audit(&mut self, row: &AuditRow<'_>) -> Result<i64>;

    /// Complete audit row `id` (if it is still `Pending`, when `done.only_pending`).
    fn complete_audit(&mut self, id: i64, done: &AuditDone<'_>) -> Result<()>;

    /// Append an event to the feed; the event with its sequence number.
    fn append_event(&mut self, at: DateTime<Utc>, name: &str, kind: EventKind) -> Result<Event>;

    /// Run a lease statement ([`codec::claim_stmt`], [`codec::release_stmt`]); whether it
    /// changed a row.
    fn lease(&mut self, stmt: LeaseStmt) -> Result<bool>;
}

/// A lease statement, rendered by the store in its parameter dialect.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LeaseStmt<'a> {
    /// [`codec::claim_stmt`].
    Claim {
        /// The staging.
        name: &'a str,
        /// Due if last checked no later than this.
        due_before: Option<DateTime<Utc>>,
        /// Now.
        now: DateTime<Utc>,
        /// The lease's end.
        until: DateTime<Utc>,
    },
    /// [`codec::release_stmt`].
    Release {
        /// The staging.
        name: &'a str,
        /// The lease's end, as claimed.
        until: DateTime<Utc>,
    },
}

impl LeaseStmt<'_> {
    /// The statement with parameters marked `mark`.
    pub fn render(self, mark: char) -> codec::Stmt {
        match self {
            LeaseStmt::Claim {
                name,
                due_before,
                now,
                until,
            } => codec::claim_stmt(mark, name, due_before, now, until),
            LeaseStmt::Release { name, until } => codec::release_stmt(mark, name, until),
        }
    }
}

/// [`StateStore::claim`](super::StateStore::claim) in `tx`, in name order (so that claimers
/// lock rows in one order).
pub(crate) fn claim(
    tx: &mut impl StateTx,
    claims: &[Claim],
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Step<Vec<String>> {
    let mut sorted: Vec<&Claim> = claims.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted.dedup_by(|a, b| a.name == b.name);
    let mut got = Vec::new();
    for c in sorted {
        let stmt = LeaseStmt::Claim {
            name: &c.name,
            due_before: c.due_before,
            now,
            until,
        };
        if tx.lease(stmt)? {
            got.push(c.name.clone());
        }
    }
    Ok(Ok(got))
}

/// [`StateStore::release`](super::StateStore::release) in `tx`.
pub(crate) fn release(tx: &mut impl StateTx, names: &[String], until: DateTime<Utc>) -> Step<()> {
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    for name in sorted {
        tx.lease(LeaseStmt::Release { name, until })?;
    }
    Ok(Ok(()))
}

/// The lifecycle methods of [`StateStore`](super::StateStore) (`begin`, `refuse`, `finish`,
/// `record_checks`) for a store whose `write(|tx| …)` runs one ledger step in one transaction.
macro_rules! lifecycle_methods {
    () => {
        fn begin(
            &self,
            req: &$crate::staging::store::Begin<'_>,
        ) -> Result<$crate::staging::store::Begun> {
            self.write(|tx| $crate::staging::ledger::begin(tx, req))
        }

        fn refuse(
            &self,
            name: &str,
            command: $crate::staging::Command,
            actor: &str,
            settings: Option<(&str, &[$crate::staging::Override])>,
            reason: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<()> {
            self.write(|tx| {
                $crate::staging::ledger::refuse(tx, name, command, actor, settings, reason, now)
            })
        }

        fn finish(
            &self,
            req: &$crate::staging::store::Finish<'_>,
        ) -> Result<$crate::staging::store::Finished> {
            self.write(|tx| $crate::staging::ledger::finish(tx, req))
        }

        fn record_checks(
            &self,
            updates: &[$crate::staging::store::CheckUpdate],
        ) -> Result<Vec<$crate::staging::Event>> {
            if updates.is_empty() {
                return Ok(Vec::new());
            }
            self.write(|tx| $crate::staging::ledger::record_checks(tx, updates))
        }

        fn claim(
            &self,
            claims: &[$crate::staging::store::Claim],
            now: chrono::DateTime<chrono::Utc>,
            until: chrono::DateTime<chrono::Utc>,
        ) -> Result<Vec<String>> {
            if claims.is_empty() {
                return Ok(Vec::new());
            }
            self.write(|tx| $crate::staging::ledger::claim(tx, claims, now, until))
        }

        fn release(&self, names: &[String], until: chrono::DateTime<chrono::Utc>) -> Result<()> {
            if names.is_empty() {
                return Ok(());
            }
            self.write(|tx| $crate::staging::ledger::release(tx, names, until))
        }
    };
}
pub(crate) use lifecycle_methods;

/// [`StateStore::begin`](super::StateStore::begin) in `tx`.
pub(crate) fn begin(tx: &mut impl StateTx, req: &Begin<'_>) -> Step<Begun> {
    let cur = tx.staging_for_update(req.name)?;
    let cur_status = cur.as_ref().map(|c| c.staging.status);
    let in_prog = cur
        .as_ref()
        .and_then(|c| c.in_flight.as_ref().map(|f| f.command));
    // The command runs with the new tag and overrides, else the stored ones.
    let tag = req
        .tag
        .or_else(|| cur.as_ref().map(|c| c.staging.tag.as_str()));
    let base = match (req.overrides, &cur) {
        (Some(o), _) => o.to_vec(),
        (None, Some(c)) => c.staging.overrides.clone(),
        (None, None) => Vec::new(),
    };
    // Per-key changes apply to the row read here, locked: a concurrent change is not lost.
    let (overrides, bad_edit) = match super::overrides::apply_edits(&base, req.edits) {
        Ok(o) => (o, None),
        Err(e) => (base, Some(e)),
    };
    let audit = |outcome, after, reason, duration_ms| AuditRow {
        name: req.name,
        action: req.command.as_str(),
        actor: req.actor,
        tag,
        overrides: &overrides,
        outcome,
        before: cur_status,
        after,
        reason,
        now: req.now,
        duration_ms,
    };
    // Sealed before anything is written: a value that cannot be stored is a refusal.
    let planned = machine::start(req.name, req.command, cur_status, in_prog)
        .and_then(|r| bad_edit.map_or(Ok(r), Err))
        .and_then(|r| Ok((r, codec::encode_overrides(&overrides, tx.key())?)));
    let (running, encoded) = match planned {
        Ok(p) => p,
        Err(e) => {
            let reason = e.to_string();
            tx.insert_audit(&audit(Outcome::Refused, cur_status, Some(&reason), Some(0)))?;
            return Ok(Err(e));
        }
    };
    let op_id = tx.insert_audit(&audit(Outcome::Pending, None, None, None))?;
    let op = Op {
        id: op_id,
        command: req.command,
        started_at: req.now,
        pid: req.pid,
    };
    let new_status = running.or(cur_status).unwrap_or(Status::CreatePending);
    // `status_since` moves only with the status.
    let since = match &cur {
        Some(c) if Some(new_status) == cur_status => c.staging.status_since,
        _ => req.now,
    };
    let change = Change {
        status: Some(new_status),
        tag: Some(tag.unwrap_or("")),
        overrides: Some(&encoded),
        updated_at: Some(req.now),
        status_since: Some(since),
        op: Some(Some(op)),
        expires_at: req.expiry.column(
            req.now,
            cur.as_ref().and_then(|c| c.staging.expires_at),
            req.command == Command::Restore,
        ),
        ..Change::default()
    };
    match &cur {
        None => tx.insert_staging(req.name, req.now, &change)?,
        // The row is locked and was read idle; a store that breaks this rolls back.
        Some(c) => {
            if !tx.update_staging(req.name, Guard::Idle, &change)? {
                return Err(busy(req.name, c));
            }
        }
    }
    let mut events = Vec::new();
    if running.is_some() {
        let kind = EventKind::StatusChanged {
            from: cur_status,
            to: Some(new_status),
            reason: None,
        };
        events.push(tx.append_event(req.now, req.name, kind)?);
    }
    let record = tx
        .staging_for_update(req.name)?
        .ok_or_else(|| Error::NotFound {
            what: "staging",
            name: req.name.to_string(),
        })?;
    Ok(Ok(Begun {
        record,
        status_before: cur_status,
        op_id,
        events,
    }))
}

fn busy(name: &str, cur: &StagingRecord) -> Error {
    Error::Busy {
        name: name.to_string(),
        status: cur.staging.status.as_str().to_string(),
    }
}

/// [`StateStore::refuse`](super::StateStore::refuse) in `tx`.
pub(crate) fn refuse(
    tx: &mut impl StateTx,
    name: &str,
    command: Command,
    actor: &str,
    settings: Option<(&str, &[Override])>,
    reason: &str,
    now: DateTime<Utc>,
) -> Step<()> {
    let cur = tx.status_of(name)?;
    let (tag, overrides) = settings.unwrap_or(("", &[]));
    tx.insert_audit(&AuditRow {
        name,
        action: command.as_str(),
        actor,
        tag: Some(tag).filter(|t| !t.is_empty()),
        overrides,
        outcome: Outcome::Refused,
        before: cur,
        after: cur,
        reason: Some(reason),
        now,
        duration_ms: Some(0),
    })?;
    Ok(Ok(()))
}

/// [`StateStore::finish`](super::StateStore::finish) in `tx`.
pub(crate) fn finish(tx: &mut impl StateTx, req: &Finish<'_>) -> Step<Finished> {
    let cur = tx.staging_for_update(req.name)?;
    let outcome = if req.success {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let after = machine::finish_settled(req.command, req.success, req.settle_by_check);
    // A failure keeps its reason; a success clears the staging's.
    let reason = if req.success {
        None
    } else {
        req.reason.as_deref()
    };
    let guard = Guard::Op(req.op_id);
    let mut applied = false;
    if let Some(c) = cur
        .as_ref()
        .filter(|c| c.in_flight.as_ref().is_some_and(|f| f.op_id == req.op_id))
    {
        applied = match after {
            None => tx.delete_staging(req.name, guard)?,
            Some(st) => {
                let since = if st != c.staging.status {
                    req.now
                } else {
                    c.staging.status_since
                };
                let change = Change {
                    status: Some(st),
                    reason: Some(reason),
                    updated_at: Some(req.now),
                    status_since: Some(since),
                    checked_at: Some(req.now),
                    op: Some(None),
                    ..Change::default()
                };
                tx.update_staging(req.name, guard, &change)?
            }
        };
    }
    let done = AuditDone {
        outcome,
        after: applied.then_some(after),
        reason: req.reason.as_deref(),
        exit_code: req.exit_code,
        output: req.output,
        now: req.now,
        only_pending: !applied,
    };
    tx.complete_audit(req.op_id, &done)?;
    let Some(before) = cur.as_ref().filter(|_| applied).map(|c| c.staging.status) else {
        tracing::warn!(
            name = req.name,
            op_id = req.op_id,
            "command finished after its operation was resolved elsewhere"
        );
        return Ok(Ok(Finished {
            applied,
            staging: cur.map(|c| c.staging),
            events: Vec::new(),
        }));
    };
    let mut events = Vec::new();
    // A success settled by check keeps its pending status: no change to publish.
    let awaits_check = req.success && req.settle_by_check && after == Some(before);
    if !awaits_check {
        events.push(tx.append_event(
            req.now,
            req.name,
            EventKind::StatusChanged {
                from: Some(before),
                to: after,
                reason: reason.map(str::to_string),
            },
        )?);
    }
    events.push(tx.append_event(
        req.now,
        req.name,
        EventKind::CommandFinished {
            action: req.command.as_str().to_string(),
            outcome,
            audit_id: req.op_id,
            reason: req.reason.clone(),
        },
    )?);
    let staging = tx.staging_for_update(req.name)?.map(|r| r.staging);
    Ok(Ok(Finished {
        applied,
        staging,
        events,
    }))
}

/// [`StateStore::record_checks`](super::StateStore::record_checks) in `tx`.
pub(crate) fn record_checks(tx: &mut impl StateTx, updates: &[CheckUpdate]) -> Step<Vec<Event>> {
    let mut names: Vec<&str> = updates.iter().map(|u| u.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    tx.lock_stagings(&names)?;
    let mut events = Vec::new();
    for u in updates {
        // Only if the staging still has the status it was checked in and no command.
        let guard = Guard::IdleIn(u.expected);
        let checked = Change {
            checked_at: Some(u.now),
            ..Change::default()
        };
        if !tx.update_staging(&u.name, guard, &checked)? {
            continue; // changed meanwhile: this check's answer is stale
        }
        if u.new_status == u.expected {
            if u.new_status == Status::Failure && u.reason.is_some() {
                let change = Change {
                    reason: Some(u.reason.as_deref()),
                    ..Change::default()
                };
                tx.update_staging(&u.name, guard, &change)?;
            }
            continue;
        }
        let reason = if u.new_status == Status::Running {
            None
        } else {
            u.reason.clone()
        };
        let change = Change {
            status: Some(u.new_status),
            reason: Some(reason.as_deref()),
            status_since: Some(u.now),
            updated_at: Some(u.now),
            ..Change::default()
        };
        tx.update_staging(&u.name, guard, &change)?;
        let (tag, stored) = tx
            .stored_settings(&u.name)?
            .ok_or_else(|| Error::NotFound {
                what: "staging",
                name: u.name.clone(),
            })?;
        let overrides = codec::decode_overrides_masked(&stored, tx.place())?;
        let outcome = if u.new_status == Status::Running {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let audit_id = tx.insert_audit(&AuditRow {
            name: &u.name,
            action: "reconcile",
            actor: "reconcile",
            tag: Some(&tag),
            overrides: &overrides,
            outcome,
            before: Some(u.expected),
            after: Some(u.new_status),
            reason: u.reason.as_deref(),
            now: u.now,
            duration_ms: Some(0),
        })?;
        let changed = EventKind::StatusChanged {
            from: Some(u.expected),
            to: Some(u.new_status),
            reason: reason.clone(),
        };
        events.push(tx.append_event(u.now, &u.name, changed)?);
        let done = EventKind::CommandFinished {
            action: "reconcile".into(),
            outcome,
            audit_id,
            reason,
        };
        events.push(tx.append_event(u.now, &u.name, done)?);
    }
    Ok(Ok(events))
}
