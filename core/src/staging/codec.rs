//! The stored form of a staging, shared by both state stores: times as milliseconds, overrides
//! as JSON with private values sealed ([`super::sealed`]), audit overrides masked, and the
//! statements the [`ledger`](super::ledger) writes, rendered once for both SQL dialects (they
//! differ here only in the parameter mark: `?1` for SQLite, `$1` for PostgreSQL).

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::sealed::{self, SealKey};
use super::store::{InFlight, StagingRecord};
use super::{
    AuditEntry, Command, Event, EventKind, Outcome, Override, Secret, Staging, Status, Visibility,
};
use crate::error::{Error, Result};

/// A time as stored: milliseconds since the Unix epoch.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored time back (the epoch for one out of range).
pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

#[derive(Serialize, Deserialize)]
struct StoredOverride {
    key: String,
    value: String,
    scope: super::Scope,
    visibility: Visibility,
}

/// Overrides in their stored form: JSON, each private value sealed with `key`.
///
/// Errors: `InvalidArgument` when there is a private value and no key (a PostgreSQL store
/// opened without a key file).
pub(crate) fn encode_overrides(o: &[Override], key: Option<&SealKey>) -> Result<String> {
    let v = o
        .iter()
        .map(|o| {
            let value = match o.visibility {
                Visibility::Public => o.value.expose().to_string(),
                Visibility::Private => match key {
                    Some(k) => k.seal(&o.key, o.value.expose()),
                    None => return Err(no_key_file("store the private value of", &o.key)),
                },
            };
            Ok(StoredOverride {
                key: o.key.clone(),
                value,
                scope: o.scope,
                visibility: o.visibility,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(serde_json::to_string(&v).expect("overrides encode"))
}

fn no_key_file(doing: &str, key: &str) -> Error {
    Error::InvalidArgument {
        what: "key file",
        reason: format!(
            "cannot {doing} override {key:?}: private values are stored sealed and this state \
             store has no key file (pass --key-file FILE or set {})",
            sealed::KEY_FILE_ENV
        ),
    }
}

fn parse_stored(s: &str, place: &Path) -> Result<Vec<StoredOverride>> {
    serde_json::from_str::<Vec<StoredOverride>>(s)
        .map_err(|e| Error::corrupt(place, format!("stored overrides do not parse: {e}")))
}

/// Overrides from their stored form, private values opened with `key`. A private value stored
/// in clear by an earlier build is taken as it is (and sealed when the staging is next
/// written).
///
/// Errors: `Corrupt` (the JSON does not parse), `InvalidArgument` naming the key file (a
/// sealed value that does not open with `key`, or no key at all).
pub(crate) fn decode_overrides(
    s: &str,
    key: Option<&SealKey>,
    place: &Path,
) -> Result<Vec<Override>> {
    parse_stored(s, place)?
        .into_iter()
        .map(|o| {
            let value = if o.visibility == Visibility::Private && sealed::is_sealed(&o.value) {
                match key {
                    Some(k) => k.open(&o.key, &o.value)?,
                    None => return Err(no_key_file("read the private value of", &o.key)),
                }
            } else {
                o.value
            };
            Ok(Override {
                key: o.key,
                value: Secret::new(value),
                scope: o.scope,
                visibility: o.visibility,
            })
        })
        .collect()
}

/// Overrides from their stored form for the audit log only: private values are never opened
/// (they are masked there anyway), so no key is needed.
pub(crate) fn decode_overrides_masked(s: &str, place: &Path) -> Result<Vec<Override>> {
    Ok(parse_stored(s, place)?
        .into_iter()
        .map(|o| {
            let value = match o.visibility {
                Visibility::Public => o.value,
                Visibility::Private => super::MASK.to_string(),
            };
            Override {
                key: o.key,
                value: Secret::new(value),
                scope: o.scope,
                visibility: o.visibility,
            }
        })
        .collect())
}

/// Overrides as masked `scope:KEY=VALUE` strings for the audit log.
pub(crate) fn masked_overrides(o: &[Override]) -> String {
    let v: Vec<String> = o
        .iter()
        .map(|o| format!("{}:{}={}", o.scope.as_str(), o.key, o.shown_value()))
        .collect();
    serde_json::to_string(&v).expect("strings encode")
}

/// The schema's first version (migration 1) in a store's dialect: `int` is its 64-bit integer
/// type and `serial` an auto-numbered 64-bit primary key; `shared` adds what only a store
/// shared by hosts has: the host of a command in flight and an index to prune the feed by.
/// Never change what this renders for a store that has shipped: add a migration.
pub(crate) fn schema_v1(int: &str, serial: &str, shared: bool) -> String {
    let (host, feed_index) = if shared {
        (
            ",\n        op_host TEXT",
            "\n    CREATE INDEX events_by_at ON events(at);",
        )
    } else {
        ("", "")
    };
    format!(
        "CREATE TABLE stagings (
        name TEXT PRIMARY KEY NOT NULL,
        status TEXT NOT NULL,
        tag TEXT NOT NULL,
        overrides TEXT NOT NULL,
        reason TEXT,
        created_at {int} NOT NULL,
        updated_at {int} NOT NULL,
        status_since {int} NOT NULL,
        checked_at {int},
        op_id {int},
        op_command TEXT,
        op_started_at {int},
        op_pid {int}{host}
    );
    CREATE TABLE audit (
        id {serial},
        name TEXT NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        tag TEXT,
        overrides TEXT NOT NULL,
        outcome TEXT NOT NULL,
        status_before TEXT,
        status_after TEXT,
        reason TEXT,
        exit_code INTEGER,
        started_at {int} NOT NULL,
        duration_ms {int},
        output TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_by_name ON audit(name, id);
    CREATE TABLE events (
        seq {serial},
        at {int} NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL
    );{feed_index}"
    )
}

/// Schema version 2: a staging's expiry (its time to live) and the reconcile lease
/// (`check_lease`: until when one reconcile has claimed the staging's check, so that several
/// hosts sharing the state do not each make it).
pub(crate) fn schema_v2(int: &str) -> String {
    format!(
        "ALTER TABLE stagings ADD COLUMN expires_at {int};
    ALTER TABLE stagings ADD COLUMN check_lease {int};"
    )
}

/// The columns of a staging row as the stores select them, `op_host` last (a store without
/// that column selects `NULL` in its place).
pub(crate) const STAGING_COLS: &str = "name, status, tag, overrides, reason, created_at, \
     updated_at, status_since, checked_at, op_id, op_command, op_started_at, op_pid, expires_at";

/// `UPDATE stagings SET check_lease = until` for the staging `name` if no other reconcile
/// holds its lease at `now` and (with `due_before`) it was last checked no later than that:
/// one statement, so that of several reconciles only one claims it.
pub(crate) fn claim_stmt(
    mark: char,
    name: &str,
    due_before: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Stmt {
    let mut s = Stmt {
        sql: String::new(),
        params: Vec::new(),
    };
    let set = s.push(mark, Cell::time(until));
    let n = s.push(mark, Cell::text(name));
    let at = s.push(mark, Cell::time(now));
    let mut sql = format!(
        "UPDATE stagings SET check_lease = {set} WHERE name = {n} \
         AND (check_lease IS NULL OR check_lease <= {at})"
    );
    if let Some(t) = due_before {
        let due = s.push(mark, Cell::time(t));
        sql.push_str(&format!(" AND (checked_at IS NULL OR checked_at <= {due})"));
    }
    s.sql = sql;
    s
}

/// Release the lease `until` of the staging `name` (if it is still that one).
pub(crate) fn release_stmt(mark: char, name: &str, until: DateTime<Utc>) -> Stmt {
    Stmt::update(
        mark,
        "stagings",
        vec![("check_lease", Cell::Int(None))],
        vec![
            ("name", Cell::text(name)),
            ("check_lease", Cell::time(until)),
        ],
    )
}

/// The columns of an audit row as the stores select them.
pub(crate) const AUDIT_COLS: &str = "id, name, action, actor, tag, overrides, outcome, \
     status_before, status_after, reason, exit_code, started_at, duration_ms, output";

/// The columns of an event as the stores select them.
pub(crate) const EVENT_COLS: &str = "seq, at, name, body";

/// A result row, as the decoders below read it. Each store implements [`Columns::cell`] over
/// its driver's row; `NULL` comes back as a `None` of any kind.
pub(crate) trait Columns {
    /// Column `i` (never [`Cell::SinceStart`]).
    fn cell(&self, i: usize) -> Result<Cell>;
    /// The store, for messages.
    fn place(&self) -> &Path;

    /// A text column.
    fn text(&self, i: usize) -> Result<Option<String>> {
        match self.cell(i)? {
            Cell::Text(v) => Ok(v),
            Cell::Int(None) | Cell::Int32(None) => Ok(None),
            _ => Err(self.mistyped(i, "text")),
        }
    }
    /// An integer column (64 bits).
    fn int(&self, i: usize) -> Result<Option<i64>> {
        match self.cell(i)? {
            Cell::Int(v) => Ok(v),
            Cell::Int32(v) => Ok(v.map(i64::from)),
            Cell::Text(None) => Ok(None),
            _ => Err(self.mistyped(i, "an integer")),
        }
    }
    /// An integer column that fits 32 bits.
    fn int32(&self, i: usize) -> Result<Option<i32>> {
        self.int(i)?
            .map(|v| i32::try_from(v).map_err(|_| self.mistyped(i, "a 32-bit integer")))
            .transpose()
    }
    /// A text column that must not be `NULL`.
    fn req_text(&self, i: usize) -> Result<String> {
        self.text(i)?
            .ok_or_else(|| self.mistyped(i, "text, not NULL"))
    }
    /// An integer column that must not be `NULL`.
    fn req_int(&self, i: usize) -> Result<i64> {
        self.int(i)?
            .ok_or_else(|| self.mistyped(i, "an integer, not NULL"))
    }
    /// The error for a column that does not hold what the schema says.
    fn mistyped(&self, i: usize, want: &str) -> Error {
        Error::corrupt(self.place(), format!("column {i} does not hold {want}"))
    }
}

fn status(s: &str) -> Status {
    Status::parse(s).unwrap_or(Status::Failure)
}

/// A staging row ([`STAGING_COLS`] then `op_host`), its private values opened with `key`.
pub(crate) fn staging_record(r: &impl Columns, key: Option<&SealKey>) -> Result<StagingRecord> {
    let op_command = r.text(10)?;
    let in_flight = match (r.int(9)?, op_command.as_deref().and_then(Command::parse)) {
        (Some(op_id), Some(command)) => Some(InFlight {
            op_id,
            command,
            started_at: from_ms(r.int(11)?.unwrap_or(0)),
            pid: r.int(12)?.unwrap_or(0) as u32,
            host: r.text(14)?,
        }),
        _ => None,
    };
    let staging = Staging {
        name: r.req_text(0)?,
        status: status(&r.req_text(1)?),
        tag: r.req_text(2)?,
        overrides: decode_overrides(&r.req_text(3)?, key, r.place())?,
        reason: r.text(4)?,
        command_in_progress: in_flight.as_ref().map(|f| f.command),
        created_at: from_ms(r.req_int(5)?),
        updated_at: from_ms(r.req_int(6)?),
        status_since: from_ms(r.req_int(7)?),
        checked_at: r.int(8)?.map(from_ms),
        expires_at: r.int(13)?.map(from_ms),
    };
    Ok(StagingRecord { staging, in_flight })
}

/// An audit row ([`AUDIT_COLS`]).
pub(crate) fn audit_entry(r: &impl Columns) -> Result<AuditEntry> {
    let opt_status = |i| Ok::<_, Error>(r.text(i)?.as_deref().and_then(Status::parse));
    Ok(AuditEntry {
        id: r.req_int(0)?,
        name: r.req_text(1)?,
        action: r.req_text(2)?,
        actor: r.req_text(3)?,
        tag: r.text(4)?,
        overrides: serde_json::from_str(&r.req_text(5)?).unwrap_or_default(),
        outcome: Outcome::parse(&r.req_text(6)?).unwrap_or(Outcome::Failure),
        status_before: opt_status(7)?,
        status_after: opt_status(8)?,
        reason: r.text(9)?,
        exit_code: r.int32(10)?,
        started_at: from_ms(r.req_int(11)?),
        duration_ms: r.int(12)?.map(|d| d.max(0) as u64),
        output: r.text(13)?.unwrap_or_default(),
    })
}

/// An event row ([`EVENT_COLS`]).
pub(crate) fn event(r: &impl Columns) -> Result<Event> {
    let seq = r.req_int(0)?;
    let kind: EventKind = serde_json::from_str(&r.req_text(3)?)
        .map_err(|e| Error::corrupt(r.place(), format!("event {seq}: {e}")))?;
    Ok(Event {
        seq,
        at: from_ms(r.req_int(1)?),
        name: r.req_text(2)?,
        kind,
    })
}

/// The body of an event as stored.
pub(crate) fn event_body(kind: &EventKind) -> String {
    serde_json::to_string(kind).expect("event encodes")
}

/// One column value of a statement. In a condition, a `None` value means `IS NULL`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// A `TEXT` column.
    Text(Option<String>),
    /// A `BIGINT` column (SQLite: `INTEGER`).
    Int(Option<i64>),
    /// An `INTEGER` column (32 bits in PostgreSQL).
    Int32(Option<i32>),
    /// In a `SET` only: the milliseconds from the row's `started_at` to this time (an audit
    /// row's duration).
    SinceStart(i64),
}

impl Cell {
    /// A text value.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(Some(s.into()))
    }
    /// An optional text value.
    pub fn opt_text(s: Option<&str>) -> Cell {
        Cell::Text(s.map(str::to_string))
    }
    /// A time, stored as milliseconds.
    pub fn time(t: DateTime<Utc>) -> Cell {
        Cell::Int(Some(ms(t)))
    }
}

/// Named column values.
pub(crate) type Cells = Vec<(&'static str, Cell)>;

/// A statement with its parameters, in a dialect whose parameters are `{mark}1`, `{mark}2`, …
#[derive(Debug)]
pub(crate) struct Stmt {
    /// The SQL text.
    pub sql: String,
    /// The parameters, in order.
    pub params: Vec<Cell>,
}

impl Stmt {
    fn push(&mut self, mark: char, cell: Cell) -> String {
        self.params.push(cell);
        format!("{mark}{}", self.params.len())
    }

    fn conditions(&mut self, mark: char, cond: Cells) -> String {
        let mut parts = Vec::with_capacity(cond.len());
        for (col, cell) in cond {
            match cell {
                Cell::Text(None) | Cell::Int(None) | Cell::Int32(None) => {
                    parts.push(format!("{col} IS NULL"));
                }
                cell => {
                    let p = self.push(mark, cell);
                    parts.push(format!("{col} = {p}"));
                }
            }
        }
        parts.join(" AND ")
    }

    /// `INSERT INTO table (…) VALUES (…)`.
    pub fn insert(mark: char, table: &str, cells: Cells) -> Stmt {
        let mut s = Stmt {
            sql: String::new(),
            params: Vec::new(),
        };
        let cols: Vec<&str> = cells.iter().map(|(c, _)| *c).collect();
        let marks: Vec<String> = cells.into_iter().map(|(_, v)| s.push(mark, v)).collect();
        s.sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            cols.join(", "),
            marks.join(", ")
        );
        s
    }

    /// `UPDATE table SET … WHERE …` (`cond` must not be empty).
    pub fn update(mark: char, table: &str, set: Cells, cond: Cells) -> Stmt {
        let mut s = Stmt {
            sql: String::new(),
            params: Vec::new(),
        };
        let sets: Vec<String> = set
            .into_iter()
            .map(|(col, cell)| match cell {
                Cell::SinceStart(t) => {
                    let p = s.push(mark, Cell::Int(Some(t)));
                    format!("{col} = {p} - started_at")
                }
                cell => format!("{col} = {}", s.push(mark, cell)),
            })
            .collect();
        let cond = s.conditions(mark, cond);
        s.sql = format!("UPDATE {table} SET {} WHERE {cond}", sets.join(", "));
        s
    }

    /// `DELETE FROM table WHERE …` (`cond` must not be empty).
    pub fn delete(mark: char, table: &str, cond: Cells) -> Stmt {
        let mut s = Stmt {
            sql: String::new(),
            params: Vec::new(),
        };
        let cond = s.conditions(mark, cond);
        s.sql = format!("DELETE FROM {table} WHERE {cond}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_render_for_both_marks() {
        let s = Stmt::update(
            '$',
            "stagings",
            vec![
                ("status", Cell::text("Running")),
                ("reason", Cell::Text(None)),
            ],
            vec![("name", Cell::text("web")), ("op_id", Cell::Int(None))],
        );
        assert_eq!(
            s.sql,
            "UPDATE stagings SET status = $1, reason = $2 WHERE name = $3 AND op_id IS NULL"
        );
        assert_eq!(s.params.len(), 3);
        let s = Stmt::update(
            '?',
            "audit",
            vec![("duration_ms", Cell::SinceStart(7))],
            vec![("id", Cell::Int(Some(1)))],
        );
        assert_eq!(
            s.sql,
            "UPDATE audit SET duration_ms = ?1 - started_at WHERE id = ?2"
        );
        let s = Stmt::insert(
            '?',
            "t",
            vec![("a", Cell::Int32(Some(1))), ("b", Cell::text("x"))],
        );
        assert_eq!(s.sql, "INSERT INTO t (a, b) VALUES (?1, ?2)");
        let s = Stmt::delete('$', "t", vec![("a", Cell::text("x"))]);
        assert_eq!(s.sql, "DELETE FROM t WHERE a = $1");
    }
}
