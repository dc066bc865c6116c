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

use chrono::{DateTime, Utc};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::codec::{
    self, audit_entry, event, event_body, from_ms, ms, staging_record, Cell, Columns, Stmt,
    AUDIT_COLS, EVENT_COLS, STAGING_COLS,
};
use super::ledger::{self, AuditDone, AuditRow, Change, Guard, LeaseStmt, StateTx, Step};
use super::sealed::{self, SealKey};
use super::store::{StagingRecord, StateStore};
use super::{AuditEntry, AuditQuery, Event, EventKind, Status};
use crate::error::{Error, Result};

/// Schema migrations, applied in order; index + 1 is the schema version. Never edit one that
/// has shipped: add a new one.
fn migrations() -> [String; 2] {
    [
        codec::schema_v1("INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT", false),
        codec::schema_v2("INTEGER"),
    ]
}

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

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::State {
        store: "sqlite",
        place: path.display().to_string(),
        message: e.to_string(),
    }
}

/// A row as [`codec`]'s decoders read it.
struct SqliteRow<'r> {
    row: &'r rusqlite::Row<'r>,
    path: &'r Path,
}

impl Columns for SqliteRow<'_> {
    fn cell(&self, i: usize) -> Result<Cell> {
        Ok(match self.row.get_ref(i).map_err(db_err(self.path))? {
            ValueRef::Null => Cell::Text(None),
            ValueRef::Integer(n) => Cell::Int(Some(n)),
            ValueRef::Text(t) => Cell::text(String::from_utf8_lossy(t)),
            ValueRef::Real(_) | ValueRef::Blob(_) => {
                return Err(self.mistyped(i, "text or integer"))
            }
        })
    }
    fn place(&self) -> &Path {
        self.path
    }
}

/// Run a query and decode every row with `decode`.
fn select<T>(
    conn: &Connection,
    path: &Path,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl Fn(&SqliteRow<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let err = db_err(path);
    let mut st = conn.prepare_cached(sql).map_err(&err)?;
    let mut rows = st.query(params).map_err(&err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(&err)? {
        out.push(decode(&SqliteRow { row, path })?);
    }
    Ok(out)
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
    fn read_record(&self, conn: &Connection, name: &str) -> Result<Option<StagingRecord>> {
        let sql = format!("SELECT {STAGING_COLS}, NULL FROM stagings WHERE name = ?1");
        let found = select(conn, &self.path, &sql, [name], |r| {
            staging_record(r, Some(&self.key))
        })?;
        Ok(found.into_iter().next())
    }
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
            if current as usize > migrations().len() {
                return Err(Error::Unsupported {
                    what: format!(
                        "state file {} has schema version {current}, this build knows up to {}",
                        path.display(),
                        migrations().len()
                    ),
                });
            }
            for (i, m) in migrations().iter().enumerate().skip(current as usize) {
                tracing::debug!(version = i + 1, "applying state store migration");
                tx.execute_batch(m).map_err(&err)?;
            }
            tx.execute("DELETE FROM schema_version", []).map_err(&err)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [migrations().len() as u32],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
        }
        Ok(())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` in one `BEGIN IMMEDIATE` transaction: committed when it returns `Ok` (also a
    /// refusal, whose audit row must stay), rolled back when it returns `Err`.
    fn write<T>(&self, f: impl FnOnce(&mut SqliteTx<'_, '_>) -> Step<T>) -> Result<T> {
        let mut conn = self.conn();
        let err = db_err(&self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let out = f(&mut SqliteTx {
            tx: &tx,
            store: self,
        })?;
        tx.commit().map_err(&err)?;
        out
    }
}

/// The ledger's transaction on the SQLite store (which holds SQLite's write lock throughout).
struct SqliteTx<'t, 's> {
    tx: &'t Transaction<'t>,
    store: &'s SqliteStore,
}

impl SqliteTx<'_, '_> {
    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        db_err(&self.store.path)
    }

    fn run(&self, stmt: Stmt) -> Result<usize> {
        let params = stmt.params.into_iter().map(|c| match c {
            Cell::Text(v) => v.map_or(Value::Null, Value::Text),
            Cell::Int(v) => v.map_or(Value::Null, Value::Integer),
            Cell::SinceStart(v) => Value::Integer(v),
            Cell::Int32(v) => v.map_or(Value::Null, |v| Value::Integer(v.into())),
        });
        self.tx
            .prepare_cached(&stmt.sql)
            .and_then(|mut st| st.execute(rusqlite::params_from_iter(params)))
            .map_err(self.err())
    }
}

impl StateTx for SqliteTx<'_, '_> {
    fn lease(&mut self, stmt: LeaseStmt<'_>) -> Result<bool> {
        Ok(self.run(stmt.render('?'))? > 0)
    }

    fn key(&self) -> Option<&SealKey> {
        Some(&self.store.key)
    }

    fn place(&self) -> &Path {
        &self.store.path
    }

    fn lock_stagings(&mut self, _names: &[&str]) -> Result<()> {
        Ok(()) // the transaction holds the write lock
    }

    fn staging_for_update(&mut self, name: &str) -> Result<Option<StagingRecord>> {
        self.store.read_record(self.tx, name)
    }

    fn status_of(&mut self, name: &str) -> Result<Option<Status>> {
        let cur: Option<String> = self
            .tx
            .prepare_cached("SELECT status FROM stagings WHERE name = ?1")
            .and_then(|mut st| st.query_row([name], |r| r.get(0)).optional())
            .map_err(self.err())?;
        Ok(cur.map(|s| Status::parse(&s).unwrap_or(Status::Failure)))
    }

    fn stored_settings(&mut self, name: &str) -> Result<Option<(String, String)>> {
        self.tx
            .prepare_cached("SELECT tag, overrides FROM stagings WHERE name = ?1")
            .and_then(|mut st| {
                st.query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(self.err())
    }

    fn insert_staging(&mut self, name: &str, at: DateTime<Utc>, change: &Change<'_>) -> Result<()> {
        let stmt = Stmt::insert('?', "stagings", change.new_row(name, at));
        self.run(stmt).map(drop)
    }

    fn update_staging(&mut self, name: &str, guard: Guard, change: &Change<'_>) -> Result<bool> {
        let stmt = Stmt::update('?', "stagings", change.cells(), guard.cells(name));
        Ok(self.run(stmt)? > 0)
    }

    fn delete_staging(&mut self, name: &str, guard: Guard) -> Result<bool> {
        Ok(self.run(Stmt::delete('?', "stagings", guard.cells(name)))? > 0)
    }

    fn insert_audit(&mut self, row: &AuditRow<'_>) -> Result<i64> {
        self.run(Stmt::insert('?', "audit", row.cells()))?;
        Ok(self.tx.last_insert_rowid())
    }

    fn complete_audit(&mut self, id: i64, done: &AuditDone<'_>) -> Result<()> {
        let (set, cond) = done.cells(id);
        self.run(Stmt::update('?', "audit", set, cond)).map(drop)
    }

    fn append_event(&mut self, at: DateTime<Utc>, name: &str, kind: EventKind) -> Result<Event> {
        let body = event_body(&kind);
        let cells = vec![
            ("at", Cell::time(at)),
            ("name", Cell::text(name)),
            ("body", Cell::Text(Some(body))),
        ];
        self.run(Stmt::insert('?', "events", cells))?;
        Ok(Event {
            seq: self.tx.last_insert_rowid(),
            at: from_ms(ms(at)),
            name: name.to_string(),
            kind,
        })
    }
}

impl StateStore for SqliteStore {
    ledger::lifecycle_methods!();

    fn get(&self, name: &str) -> Result<Option<StagingRecord>> {
        self.read_record(&self.conn(), name)
    }

    fn list(&self) -> Result<Vec<StagingRecord>> {
        let sql = format!("SELECT {STAGING_COLS}, NULL FROM stagings ORDER BY name");
        select(&self.conn(), &self.path, &sql, [], |r| {
            staging_record(r, Some(&self.key))
        })
    }

    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE (?1 IS NULL OR name = ?1) AND id > ?2 \
             ORDER BY id DESC LIMIT ?3"
        );
        let limit = q.limit.map(|l| l as i64).unwrap_or(-1);
        let args = params![q.name, q.after_id.unwrap_or(0), limit];
        let mut v = select(&self.conn(), &self.path, &sql, args, |r| audit_entry(r))?;
        v.reverse();
        Ok(v)
    }

    fn events_since(&self, after: i64, limit: usize) -> Result<Vec<Event>> {
        let sql = format!("SELECT {EVENT_COLS} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2");
        let limit = limit.min(i64::MAX as usize) as i64;
        select(&self.conn(), &self.path, &sql, params![after, limit], |r| {
            event(r)
        })
    }

    fn last_event_seq(&self) -> Result<i64> {
        self.conn()
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
            .map_err(db_err(&self.path))
    }

    fn prune_events(&self, before: DateTime<Utc>) -> Result<usize> {
        self.write(|tx| {
            let n = tx.run(Stmt {
                sql: "DELETE FROM events WHERE at < ?1".into(),
                params: vec![Cell::time(before)],
            })?;
            Ok(Ok(n))
        })
    }
}
