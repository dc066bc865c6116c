//! The embedded state store: one SQLite file in WAL mode.
//!
//! - Schema migrations are numbered and recorded in `schema_version`; opening a file applies
//!   the missing ones in one transaction and refuses a file from a newer build.
//! - Every state change is one `BEGIN IMMEDIATE` transaction that reads the row and writes the
//!   new state (compare-and-set): two processes sharing the file serialise on SQLite's write
//!   lock and the second one sees the first one's pending status (`Busy`).
//! - `synchronous=NORMAL` in WAL mode: a committed transaction survives a process kill; a power
//!   loss may lose the last transactions but never corrupts the file.
//! - The file is created mode 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm`
//!   files the mode of the database file), and an existing file, WAL or SHM with a wider mode
//!   that this user owns is narrowed to 0600 on open. Private override values are sealed
//!   ([`super::sealed`]) with the key file beside the state file (or the one given).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::machine;
use super::sealed::{self, SealKey};
use super::store::{
    Begin, BeginPlan, Begun, CheckUpdate, Finish, Finished, InFlight, StagingRecord, StateStore,
};
use super::{
    AuditEntry, AuditQuery, Command, Event, EventKind, Outcome, Override, Scope, Secret, Staging,
    Status, Visibility,
};
use crate::error::{Error, Result};

/// Schema migrations, applied in order; index + 1 is the schema version. Never edit one that
/// has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: stagings, audit log, event feed.
    "CREATE TABLE stagings (
        name TEXT PRIMARY KEY NOT NULL,
        status TEXT NOT NULL,
        tag TEXT NOT NULL,
        overrides TEXT NOT NULL,
        reason TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        status_since INTEGER NOT NULL,
        checked_at INTEGER,
        op_id INTEGER,
        op_command TEXT,
        op_started_at INTEGER,
        op_pid INTEGER
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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
        started_at INTEGER NOT NULL,
        duration_ms INTEGER,
        output TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_by_name ON audit(name, id);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL
    );",
];

/// The SQLite state store. Cheap to share behind an `Arc`; one connection, used by one
/// thread at a time.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    key: SealKey,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("key_file", &self.key.path())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct StoredOverride {
    key: String,
    value: String,
    scope: Scope,
    visibility: Visibility,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| match e {
        // A capsa error raised while a row was read (a sealed value that does not open),
        // carried through rusqlite by `lift`: give it back as it was.
        rusqlite::Error::FromSqlConversionFailure(_, _, b) if b.is::<Error>() => {
            *b.downcast::<Error>().expect("checked by is")
        }
        e => Error::State {
            store: "sqlite",
            place: path.display().to_string(),
            message: e.to_string(),
        },
    }
}

/// Carry a capsa error raised inside a row mapping through rusqlite (see [`db_err`]).
fn lift(column: usize) -> impl Fn(Error) -> rusqlite::Error {
    move |e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e.into())
    }
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

/// Overrides in their stored form: JSON, each private value sealed with `key`.
///
/// Errors: `InvalidArgument` when there is a private value and no key (a PostgreSQL store
/// opened without a key file).
pub(super) fn encode_overrides(o: &[Override], key: Option<&SealKey>) -> Result<String> {
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
pub(super) fn decode_overrides(
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
pub(super) fn decode_overrides_masked(s: &str, place: &Path) -> Result<Vec<Override>> {
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
pub(super) fn masked_overrides(o: &[Override]) -> String {
    let v: Vec<String> = o
        .iter()
        .map(|o| {
            let scope = match o.scope {
                Scope::App => "app",
                Scope::Staging => "staging",
            };
            format!("{scope}:{}={}", o.key, o.shown_value())
        })
        .collect();
    serde_json::to_string(&v).expect("strings encode")
}

const STAGING_COLS: &str = "name, status, tag, overrides, reason, created_at, updated_at, \
     status_since, checked_at, op_id, op_command, op_started_at, op_pid";

fn row_to_record(
    r: &rusqlite::Row<'_>,
    key: &SealKey,
    place: &Path,
) -> rusqlite::Result<StagingRecord> {
    let status: String = r.get(1)?;
    let op_id: Option<i64> = r.get(9)?;
    let op_command: Option<String> = r.get(10)?;
    let in_flight = match (op_id, op_command.as_deref().and_then(Command::parse)) {
        (Some(op_id), Some(command)) => Some(InFlight {
            op_id,
            command,
            started_at: from_ms(r.get::<_, Option<i64>>(11)?.unwrap_or(0)),
            pid: r.get::<_, Option<i64>>(12)?.unwrap_or(0) as u32,
            host: None,
        }),
        _ => None,
    };
    let staging = Staging {
        name: r.get(0)?,
        status: Status::parse(&status).unwrap_or(Status::Failure),
        tag: r.get(2)?,
        overrides: decode_overrides(&r.get::<_, String>(3)?, Some(key), place).map_err(lift(3))?,
        reason: r.get(4)?,
        command_in_progress: in_flight.as_ref().map(|f| f.command),
        created_at: from_ms(r.get(5)?),
        updated_at: from_ms(r.get(6)?),
        status_since: from_ms(r.get(7)?),
        checked_at: r.get::<_, Option<i64>>(8)?.map(from_ms),
    };
    Ok(StagingRecord { staging, in_flight })
}

/// Create the state file with mode 0600 if it is missing (SQLite then gives its `-wal` and
/// `-shm` the same mode), and narrow an existing file, WAL or SHM that this user owns to 0600.
fn create_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking so that a FIFO in its place cannot hang the open; SQLite refuses it.
        match std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {} // a FIFO: SQLite says so
            Err(e) => return Err(Error::io("create", path, e)),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            sealed::tighten(Path::new(&p));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl SqliteStore {
    fn read_record(&self, tx: &Connection, name: &str) -> rusqlite::Result<Option<StagingRecord>> {
        tx.prepare_cached(&format!(
            "SELECT {STAGING_COLS} FROM stagings WHERE name = ?1"
        ))?
        .query_row([name], |r| row_to_record(r, &self.key, &self.path))
        .optional()
    }
}

fn insert_event(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
    name: &str,
    kind: EventKind,
) -> rusqlite::Result<Event> {
    let body = serde_json::to_string(&kind).expect("event encodes");
    tx.prepare_cached("INSERT INTO events (at, name, body) VALUES (?1, ?2, ?3)")?
        .execute(params![ms(now), name, body])?;
    Ok(Event {
        seq: tx.last_insert_rowid(),
        at: from_ms(ms(now)),
        name: name.to_string(),
        kind,
    })
}

#[allow(clippy::too_many_arguments)]
fn insert_audit(
    tx: &Transaction<'_>,
    name: &str,
    action: &str,
    actor: &str,
    tag: Option<&str>,
    overrides: &[Override],
    outcome: Outcome,
    before: Option<Status>,
    after: Option<Status>,
    reason: Option<&str>,
    now: DateTime<Utc>,
    duration_ms: Option<i64>,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO audit (name, action, actor, tag, overrides, outcome, status_before, \
         status_after, reason, started_at, duration_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        name,
        action,
        actor,
        tag,
        masked_overrides(overrides),
        outcome.as_str(),
        before.map(Status::as_str),
        after.map(Status::as_str),
        reason,
        ms(now),
        duration_ms,
    ])?;
    Ok(tx.last_insert_rowid())
}

impl SqliteStore {
    /// Open (creating if needed, with its parent directory, mode 0600) the state file at
    /// `path`, set WAL mode and apply missing migrations. Private values are sealed with the
    /// key file [`SealKey::default_path`] beside it (`staging.db` → `staging.key`), created if
    /// missing.
    ///
    /// `:memory:` is SQLite's in-memory database, as [`SqliteStore::open_in_memory`] (no file,
    /// no key file).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref();
        if path == Path::new(":memory:") {
            return SqliteStore::open_in_memory();
        }
        SqliteStore::open_with_key(path, SealKey::default_path(path))
    }

    /// [`SqliteStore::open`] with the key file at `key_file` (created if missing) instead of
    /// the default one. Errors besides the database's: those of [`SealKey::open_or_create`].
    pub fn open_with_key(
        path: impl AsRef<Path>,
        key_file: impl AsRef<Path>,
    ) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        if path == Path::new(":memory:") {
            let key = SealKey::open_or_create(key_file)?;
            let conn = Connection::open_in_memory().map_err(db_err(&path))?;
            return Self::setup(conn, path, key);
        }
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(Error::io_at("create directory", parent))?;
            }
        }
        let key = SealKey::open_or_create(key_file)?;
        create_private(&path)?;
        let conn = Connection::open(&path).map_err(db_err(&path))?;
        Self::setup(conn, path, key)
    }

    /// A private in-memory store (for tests and throwaway use), its key in memory too.
    pub fn open_in_memory() -> Result<SqliteStore> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(db_err(&path))?;
        Self::setup(conn, path, SealKey::ephemeral())
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key file that seals private values.
    pub fn key_file(&self) -> &Path {
        self.key.path()
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<u32> {
        let conn = self.conn();
        conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .map_err(db_err(&self.path))
    }

    fn setup(mut conn: Connection, path: PathBuf, key: SealKey) -> Result<SqliteStore> {
        Self::migrate(&mut conn, &path)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path,
            key,
        })
    }

    fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
        let err = db_err(path);
        conn.busy_timeout(Duration::from_secs(30)).map_err(&err)?;
        // journal_mode returns a row; in-memory databases answer "memory". Switching a new
        // file to WAL while another process opens it too can be refused as busy without the
        // busy handler being asked: retry it for as long as the busy timeout.
        let t0 = std::time::Instant::now();
        let _mode: String = loop {
            match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && t0.elapsed() < Duration::from_secs(30) =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                r => break r.map_err(&err)?,
            }
        };
        conn.execute_batch("PRAGMA synchronous=NORMAL;")
            .map_err(&err)?;
        conn.set_prepared_statement_cache_capacity(64);
        {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
            )
            .map_err(&err)?;
            let current: Option<u32> = tx
                .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
                .optional()
                .map_err(&err)?;
            let current = current.unwrap_or(0);
            if current as usize > MIGRATIONS.len() {
                return Err(Error::Unsupported {
                    what: format!(
                        "state file {} has schema version {current}, this build knows up to {}",
                        path.display(),
                        MIGRATIONS.len()
                    ),
                });
            }
            for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
                tracing::debug!(version = i + 1, "applying state store migration");
                tx.execute_batch(m).map_err(&err)?;
            }
            tx.execute("DELETE FROM schema_version", []).map_err(&err)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [MIGRATIONS.len() as u32],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
        }
        Ok(())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<std::result::Result<T, Error>>,
    ) -> Result<T> {
        let mut conn = self.conn();
        let err = db_err(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let out = f(&tx).map_err(&err)?;
        tx.commit().map_err(&err)?;
        out
    }
}

impl StateStore for SqliteStore {
    fn begin(&self, req: &Begin<'_>) -> Result<Begun> {
        self.write(|tx| {
            let cur = self.read_record(tx, req.name)?;
            let BeginPlan {
                cur_status,
                tag,
                overrides,
                running,
            } = req.plan(cur.as_ref());
            // Sealed before anything is written: a value that cannot be stored is a refusal.
            let planned = running.and_then(|r| Ok((r, encode_overrides(&overrides, Some(&self.key))?)));
            let (running, encoded) = match planned {
                Ok(r) => r,
                Err(e) => {
                    insert_audit(
                        tx,
                        req.name,
                        req.command.as_str(),
                        req.actor,
                        tag,
                        &overrides,
                        Outcome::Refused,
                        cur_status,
                        cur_status,
                        Some(&e.to_string()),
                        req.now,
                        Some(0),
                    )?;
                    return Ok(Err(e));
                }
            };
            let op_id = insert_audit(
                tx,
                req.name,
                req.command.as_str(),
                req.actor,
                tag,
                &overrides,
                Outcome::Pending,
                cur_status,
                None,
                None,
                req.now,
                None,
            )?;
            let now = ms(req.now);
            let new_status = running.or(cur_status).unwrap_or(Status::CreatePending);
            match &cur {
                None => {
                    tx.prepare_cached(
                        "INSERT INTO stagings (name, status, tag, overrides, reason, created_at, \
                         updated_at, status_since, checked_at, op_id, op_command, op_started_at, \
                         op_pid) VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?5, ?5, NULL, ?6, ?7, ?5, ?8)",
                    )?
                    .execute(params![
                        req.name,
                        new_status.as_str(),
                        tag.unwrap_or(""),
                        encoded,
                        now,
                        op_id,
                        req.command.as_str(),
                        req.pid,
                    ])?;
                }
                Some(c) => {
                    let since = if Some(new_status) != cur_status {
                        now
                    } else {
                        ms(c.staging.status_since)
                    };
                    tx.prepare_cached(
                        "UPDATE stagings SET status = ?2, tag = ?3, overrides = ?4, updated_at = ?5, \
                         status_since = ?6, op_id = ?7, op_command = ?8, op_started_at = ?5, \
                         op_pid = ?9 WHERE name = ?1",
                    )?
                    .execute(params![
                        req.name,
                        new_status.as_str(),
                        tag.unwrap_or(""),
                        encoded,
                        now,
                        since,
                        op_id,
                        req.command.as_str(),
                        req.pid,
                    ])?;
                }
            }
            let mut events = Vec::new();
            if running.is_some() {
                events.push(insert_event(
                    tx,
                    req.now,
                    req.name,
                    EventKind::StatusChanged {
                        from: cur_status,
                        to: Some(new_status),
                        reason: None,
                    },
                )?);
            }
            let record = self.read_record(tx, req.name)?.expect("row just written");
            Ok(Ok(Begun {
                record,
                status_before: cur_status,
                op_id,
                events,
            }))
        })
    }

    fn refuse(
        &self,
        name: &str,
        command: Command,
        actor: &str,
        settings: Option<(&str, &[Override])>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            let cur: Option<String> = tx
                .prepare_cached("SELECT status FROM stagings WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()?;
            let cur = cur.map(|s| Status::parse(&s).unwrap_or(Status::Failure));
            let (tag, o) = settings.unwrap_or(("", &[]));
            insert_audit(
                tx,
                name,
                command.as_str(),
                actor,
                Some(tag).filter(|t| !t.is_empty()),
                o,
                Outcome::Refused,
                cur,
                cur,
                Some(reason),
                now,
                Some(0),
            )?;
            Ok(Ok(()))
        })
    }

    fn finish(&self, req: &Finish<'_>) -> Result<Finished> {
        self.write(|tx| {
            let cur = self.read_record(tx, req.name)?;
            let applied = cur
                .as_ref()
                .and_then(|c| c.in_flight.as_ref())
                .is_some_and(|f| f.op_id == req.op_id);
            let now = ms(req.now);
            let outcome = if req.success {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            let mut events = Vec::new();
            if !applied {
                tracing::warn!(
                    name = req.name,
                    op_id = req.op_id,
                    "command finished after its operation was resolved elsewhere"
                );
                tx.prepare_cached(
                    "UPDATE audit SET outcome = ?2, reason = ?3, exit_code = ?4, \
                     duration_ms = ?5 - started_at, output = ?6 WHERE id = ?1 AND outcome = 'Pending'",
                )?
                .execute(params![
                    req.op_id,
                    outcome.as_str(),
                    req.reason,
                    req.exit_code,
                    now,
                    req.output
                ])?;
                return Ok(Ok(Finished {
                    applied,
                    staging: cur.map(|c| c.staging),
                    events,
                }));
            }
            let cur = cur.expect("applied implies a row");
            let before = cur.staging.status;
            let after = machine::finish(req.command, req.success);
            match after {
                None => {
                    tx.prepare_cached("DELETE FROM stagings WHERE name = ?1")?
                        .execute([req.name])?;
                }
                Some(st) => {
                    let since = if st != before {
                        now
                    } else {
                        ms(cur.staging.status_since)
                    };
                    let reason = if req.success { None } else { req.reason.clone() };
                    tx.prepare_cached(
                        "UPDATE stagings SET status = ?2, reason = ?3, updated_at = ?4, \
                         status_since = ?5, checked_at = ?4, op_id = NULL, op_command = NULL, \
                         op_started_at = NULL, op_pid = NULL WHERE name = ?1",
                    )?
                    .execute(params![req.name, st.as_str(), reason, now, since])?;
                }
            }
            tx.prepare_cached(
                "UPDATE audit SET outcome = ?2, status_after = ?3, reason = ?4, exit_code = ?5, \
                 duration_ms = ?6 - started_at, output = ?7 WHERE id = ?1",
            )?
            .execute(params![
                req.op_id,
                outcome.as_str(),
                after.map(Status::as_str),
                req.reason,
                req.exit_code,
                now,
                req.output
            ])?;
            events.push(insert_event(
                tx,
                req.now,
                req.name,
                EventKind::StatusChanged {
                    from: Some(before),
                    to: after,
                    reason: if req.success { None } else { req.reason.clone() },
                },
            )?);
            events.push(insert_event(
                tx,
                req.now,
                req.name,
                EventKind::CommandFinished {
                    action: req.command.as_str().to_string(),
                    outcome,
                    audit_id: req.op_id,
                    reason: req.reason.clone(),
                },
            )?);
            let staging = self.read_record(tx, req.name)?.map(|r| r.staging);
            Ok(Ok(Finished {
                applied,
                staging,
                events,
            }))
        })
    }

    fn get(&self, name: &str) -> Result<Option<StagingRecord>> {
        self.read_record(&self.conn(), name)
            .map_err(db_err(&self.path))
    }

    fn list(&self) -> Result<Vec<StagingRecord>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {STAGING_COLS} FROM stagings ORDER BY name"
            ))
            .map_err(db_err(&self.path))?;
        let rows = st
            .query_map([], |r| row_to_record(r, &self.key, &self.path))
            .map_err(db_err(&self.path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err(&self.path))
    }

    fn record_checks(&self, updates: &[CheckUpdate]) -> Result<Vec<Event>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            let mut events = Vec::new();
            for u in updates {
                let now = ms(u.now);
                let n = tx
                    .prepare_cached(
                        "UPDATE stagings SET checked_at = ?3 WHERE name = ?1 AND status = ?2 \
                         AND op_id IS NULL",
                    )?
                    .execute(params![u.name, u.expected.as_str(), now])?;
                if n == 0 {
                    continue; // changed meanwhile: this check's answer is stale
                }
                if u.new_status == u.expected {
                    if u.new_status == Status::Failure && u.reason.is_some() {
                        tx.prepare_cached("UPDATE stagings SET reason = ?2 WHERE name = ?1")?
                            .execute(params![u.name, u.reason])?;
                    }
                    continue;
                }
                let reason = if u.new_status == Status::Running {
                    None
                } else {
                    u.reason.clone()
                };
                tx.prepare_cached(
                    "UPDATE stagings SET status = ?2, reason = ?3, status_since = ?4, \
                     updated_at = ?4 WHERE name = ?1",
                )?
                .execute(params![u.name, u.new_status.as_str(), reason, now])?;
                let (tag, overrides): (String, String) = tx
                    .prepare_cached("SELECT tag, overrides FROM stagings WHERE name = ?1")?
                    .query_row([&u.name], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let outcome = if u.new_status == Status::Running {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
                let audit_id = insert_audit(
                    tx,
                    &u.name,
                    "reconcile",
                    "reconcile",
                    Some(&tag),
                    &decode_overrides_masked(&overrides, &self.path).map_err(lift(0))?,
                    outcome,
                    Some(u.expected),
                    Some(u.new_status),
                    u.reason.as_deref(),
                    u.now,
                    Some(0),
                )?;
                events.push(insert_event(
                    tx,
                    u.now,
                    &u.name,
                    EventKind::StatusChanged {
                        from: Some(u.expected),
                        to: Some(u.new_status),
                        reason: reason.clone(),
                    },
                )?);
                events.push(insert_event(
                    tx,
                    u.now,
                    &u.name,
                    EventKind::CommandFinished {
                        action: "reconcile".into(),
                        outcome,
                        audit_id,
                        reason,
                    },
                )?);
            }
            Ok(Ok(events))
        })
    }

    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let conn = self.conn();
        let err = db_err(&self.path);
        let mut st = conn
            .prepare_cached(
                "SELECT id, name, action, actor, tag, overrides, outcome, status_before, \
                 status_after, reason, exit_code, started_at, duration_ms, output FROM audit \
                 WHERE (?1 IS NULL OR name = ?1) AND id > ?2 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(&err)?;
        let limit = q.limit.map(|l| l as i64).unwrap_or(-1);
        let rows = st
            .query_map(params![q.name, q.after_id.unwrap_or(0), limit], |r| {
                let st = |v: Option<String>| v.as_deref().and_then(Status::parse);
                Ok(AuditEntry {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    action: r.get(2)?,
                    actor: r.get(3)?,
                    tag: r.get(4)?,
                    overrides: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                    outcome: Outcome::parse(&r.get::<_, String>(6)?).unwrap_or(Outcome::Failure),
                    status_before: st(r.get(7)?),
                    status_after: st(r.get(8)?),
                    reason: r.get(9)?,
                    exit_code: r.get(10)?,
                    started_at: from_ms(r.get(11)?),
                    duration_ms: r.get::<_, Option<i64>>(12)?.map(|d| d.max(0) as u64),
                    output: r.get(13)?,
                })
            })
            .map_err(&err)?;
        let mut v = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&err)?;
        v.reverse();
        Ok(v)
    }

    fn events_since(&self, after: i64, limit: usize) -> Result<Vec<Event>> {
        let conn = self.conn();
        let err = db_err(&self.path);
        let mut st = conn
            .prepare_cached(
                "SELECT seq, at, name, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(&err)?;
        let rows = st
            .query_map(params![after, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at, name, body) = row.map_err(&err)?;
            let kind: EventKind = serde_json::from_str(&body)
                .map_err(|e| Error::corrupt(&self.path, format!("event {seq}: {e}")))?;
            out.push(Event {
                seq,
                at: from_ms(at),
                name,
                kind,
            });
        }
        Ok(out)
    }

    fn last_event_seq(&self) -> Result<i64> {
        self.conn()
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
            .map_err(db_err(&self.path))
    }

    fn prune_events(&self, before: DateTime<Utc>) -> Result<usize> {
        self.write(|tx| {
            Ok(Ok(tx.execute(
                "DELETE FROM events WHERE at < ?1",
                [ms(before)],
            )?))
        })
    }
}
