//! The shared state store: PostgreSQL, for stagings managed from several hosts at once
//! (feature `postgres`).
//!
//! - Same tables as the SQLite store (`stagings`, `audit`, `events`), created by numbered
//!   migrations recorded in `schema_version`; opening applies the missing ones in one
//!   transaction under an advisory lock (so many processes may open at once) and refuses a
//!   database from a newer build (`Unsupported`).
//! - Every state change is one transaction. A command starts with `SELECT … FOR UPDATE` on the
//!   staging's row and a compare-and-set on its in-flight marker: the row lock serialises the
//!   hosts, and the loser sees the winner's pending status (`Busy`). No lock lives in memory.
//!   A new staging created by two hosts at once collides on the primary key; the loser's
//!   transaction is retried and then refused like any other.
//! - Writers of events take a table lock on `events` before inserting, so event sequence
//!   numbers are committed in order: a reader following `events_since` never skips an event
//!   committed late. Each such transaction also sends `NOTIFY capsa_staging_events`, which
//!   [`StateStore::event_signal`] turns into a wake-up for readers in every process.
//! - Connections come from a pool (deadpool-postgres) driven by the one runtime core owns
//!   ([`crate::runtime`]); a connection the server dropped is replaced on the next call, so a
//!   restarted server is picked up without reopening the store. A failure in the middle of a
//!   transaction rolls all of it back: nothing is half-written.
//! - TLS is not built in: connect over a trusted network or a local socket (`sslmode=disable`
//!   or the default `prefer`, which falls back to plain); `sslmode=require` is refused with
//!   `Unsupported` rather than silently connecting in the clear.
//! - Private override values are sealed ([`super::sealed`]) with the key file given in
//!   [`PostgresOptions::key_file`]; every host sharing the database needs a copy of the same
//!   file. Without one, public values work and a private value is refused (`InvalidArgument`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio::sync::watch;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::codec::{
    self, audit_entry, event, event_body, from_ms, ms, staging_record, Cell, Columns, Stmt,
    AUDIT_COLS, EVENT_COLS, STAGING_COLS,
};
use super::ledger::{self, AuditDone, AuditRow, Change, Guard, LeaseStmt, StateTx, Step};
use super::sealed::SealKey;
use super::store::{StagingRecord, StateStore};
use super::{AuditEntry, AuditQuery, Event, EventKind, Status};
use crate::error::{Error, Result};
use crate::runtime;

/// Schema migrations, applied in order; index + 1 is the schema version. Never edit one that
/// has shipped: add a new one.
fn migrations() -> [String; 2] {
    [
        codec::schema_v1("BIGINT", "BIGSERIAL PRIMARY KEY", true),
        codec::schema_v2("BIGINT"),
    ]
}

/// The `LISTEN/NOTIFY` channel on which event writers announce new events.
pub const NOTIFY_CHANNEL: &str = "capsa_staging_events";

/// The advisory lock key held while migrating ("capsaSTG").
const MIGRATION_LOCK: i64 = 0x6361_7073_6153_5447;

/// How often a transaction that lost a race (serialization failure, deadlock, a duplicate
/// key from a concurrent create) is retried before the error is returned.
const MAX_RETRIES: u32 = 20;

type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;
type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// How to reach the database.
#[derive(Clone)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/dbname?…` (any libpq-style URL or key=value string
    /// that `tokio-postgres` accepts).
    pub url: String,
    /// Keep the tables in this schema (created if missing; `[a-z_][a-z0-9_]*`) instead of the
    /// connection's default search path. Lets several independent state stores share one
    /// database.
    pub schema: Option<String>,
    /// Connections kept at most. Default 8.
    pub pool_size: usize,
    /// How long to wait for a connection (to the server, or from a full pool). Default 10 s.
    pub connect_timeout: Duration,
    /// The key file that seals private override values (created, mode 0600, if missing; its
    /// directory must exist). Every host sharing the database must use a copy of the same
    /// file. `None` (the default): private values are refused.
    pub key_file: Option<PathBuf>,
}

impl PostgresOptions {
    /// Options for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            schema: None,
            pool_size: 8,
            connect_timeout: Duration::from_secs(10),
            key_file: None,
        }
    }

    /// These options with the key file `path` (see [`PostgresOptions::key_file`]).
    pub fn with_key_file(mut self, path: impl Into<PathBuf>) -> PostgresOptions {
        self.key_file = Some(path.into());
        self
    }
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &"<hidden: may hold a password>")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("key_file", &self.key_file)
            .finish()
    }
}

/// The PostgreSQL state store. Cheap to share behind an `Arc`: a pool of connections inside.
pub struct PostgresStateStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// Where, for messages: `host:port/dbname` (never the password).
    place: String,
    host: String,
    signal: OnceLock<Arc<watch::Sender<u64>>>,
    key: Option<SealKey>,
}

impl std::fmt::Debug for PostgresStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStateStore")
            .field("database", &self.place)
            .finish()
    }
}

fn place_of(config: &tokio_postgres::Config, schema: Option<&str>) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    match schema {
        Some(s) => format!("postgres://{host}:{port}/{db} (schema {s})"),
        None => format!("postgres://{host}:{port}/{db}"),
    }
}

fn valid_schema(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// A row as [`codec`](super::codec)'s decoders read it.
struct PgRow<'r> {
    row: &'r Row,
    store: &'r PostgresStateStore,
}

impl Columns for PgRow<'_> {
    fn cell(&self, i: usize) -> Result<Cell> {
        let ty = self.row.columns().get(i).map(|c| c.type_().clone());
        let got = match ty {
            Some(Type::INT8) => self.row.try_get(i).map(Cell::Int),
            Some(Type::INT4) => self.row.try_get(i).map(Cell::Int32),
            _ => self.row.try_get(i).map(Cell::Text),
        };
        got.map_err(|e| self.store.err(&e))
    }
    fn place(&self) -> &Path {
        Path::new(&self.store.place)
    }
}

/// A statement's parameters as tokio-postgres takes them.
fn pg_params(cells: Vec<Cell>) -> Vec<Box<dyn ToSql + Sync + Send>> {
    cells
        .into_iter()
        .map(|c| -> Box<dyn ToSql + Sync + Send> {
            match c {
                Cell::Text(v) => Box::new(v),
                Cell::Int(v) => Box::new(v),
                Cell::Int32(v) => Box::new(v),
                Cell::SinceStart(v) => Box::new(v),
            }
        })
        .collect()
}

/// Take the feed lock: event writers commit in sequence order (released at commit).
async fn lock_feed(tx: &Tx<'_>) -> PgResult<()> {
    tx.batch_execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
        .await
}

/// The ledger's transaction on PostgreSQL: each statement runs on core's runtime inside the
/// one transaction [`PostgresStateStore::write`] holds.
struct PgTx<'a, 't> {
    tx: &'a Tx<'t>,
    store: &'a PostgresStateStore,
    /// The feed lock is held (taken before the first event is written).
    feed_locked: bool,
    /// The last event written, announced at commit.
    last_seq: Option<i64>,
    /// The database error that failed the transaction, if one did (to tell a lost race).
    failed: Option<tokio_postgres::Error>,
}

impl PgTx<'_, '_> {
    /// Run `f` against the transaction on core's runtime; a database error is kept for
    /// [`PostgresStateStore::write`] to tell a lost race.
    fn on<T>(&mut self, f: impl AsyncFnOnce(&Tx<'_>) -> PgResult<T>) -> Result<T> {
        runtime::block_on(f(self.tx)).map_err(|e| {
            let err = self.store.err(&e);
            self.failed = Some(e);
            err
        })
    }

    fn execute(&mut self, stmt: Stmt) -> Result<u64> {
        let params = pg_params(stmt.params);
        self.on(async |tx| {
            let st = tx.prepare_cached(&stmt.sql).await?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
            tx.execute(&st, &refs).await
        })
    }

    /// Run `stmt` with `RETURNING col`; the value returned.
    fn returning(&mut self, mut stmt: Stmt, col: &str) -> Result<i64> {
        stmt.sql = format!("{} RETURNING {col}", stmt.sql);
        let params = pg_params(stmt.params);
        self.on(async |tx| {
            let st = tx.prepare_cached(&stmt.sql).await?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
            Ok(tx.query_one(&st, &refs).await?.get(0))
        })
    }

    /// The row of staging `name` (`cols`: what to select), locked until the transaction ends.
    fn locked_row(&mut self, cols: &str, name: &str) -> Result<Option<Row>> {
        let sql = format!("SELECT {cols} FROM stagings WHERE name = $1 FOR UPDATE");
        self.on(async |tx| {
            let st = tx.prepare_cached(&sql).await?;
            tx.query_opt(&st, &[&name]).await
        })
    }

    fn lock_feed(&mut self) -> Result<()> {
        if !self.feed_locked {
            self.on(async |tx| lock_feed(tx).await)?;
            self.feed_locked = true;
        }
        Ok(())
    }

    /// The in-flight host column to go with a change of the in-flight marker.
    fn host_cell(&self, op: Option<&Option<ledger::Op>>) -> Option<(&'static str, Cell)> {
        op.map(|op| {
            let host = op.as_ref().map(|_| self.store.host.as_str());
            ("op_host", Cell::opt_text(host))
        })
    }
}

impl StateTx for PgTx<'_, '_> {
    fn lease(&mut self, stmt: LeaseStmt<'_>) -> Result<bool> {
        Ok(self.execute(stmt.render('$'))? > 0)
    }

    fn key(&self) -> Option<&SealKey> {
        self.store.key.as_ref()
    }

    fn place(&self) -> &Path {
        Path::new(&self.store.place)
    }

    fn lock_stagings(&mut self, names: &[&str]) -> Result<()> {
        // Every row first, in one order, then the feed: no deadlock with commands, which lock
        // one row and then the feed.
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        self.on(async |tx| {
            tx.query(
                "SELECT name FROM stagings WHERE name = ANY($1) ORDER BY name FOR UPDATE",
                &[&names],
            )
            .await
        })?;
        self.lock_feed()
    }

    fn staging_for_update(&mut self, name: &str) -> Result<Option<StagingRecord>> {
        let row = self.locked_row(&format!("{STAGING_COLS}, op_host"), name)?;
        let store = self.store;
        row.map(|row| staging_record(&PgRow { row: &row, store }, store.key.as_ref()))
            .transpose()
    }

    fn status_of(&mut self, name: &str) -> Result<Option<Status>> {
        let row = self.locked_row("status", name)?;
        let store = self.store;
        row.map(|row| PgRow { row: &row, store }.req_text(0))
            .transpose()
            .map(|s| s.map(|s| Status::parse(&s).unwrap_or(Status::Failure)))
    }

    fn stored_settings(&mut self, name: &str) -> Result<Option<(String, String)>> {
        let row = self.locked_row("tag, overrides", name)?;
        let store = self.store;
        row.map(|row| {
            let r = PgRow { row: &row, store };
            Ok((r.req_text(0)?, r.req_text(1)?))
        })
        .transpose()
    }

    fn insert_staging(&mut self, name: &str, at: DateTime<Utc>, change: &Change<'_>) -> Result<()> {
        let mut cells = change.new_row(name, at);
        cells.extend(self.host_cell(change.op.as_ref()));
        self.execute(Stmt::insert('$', "stagings", cells)).map(drop)
    }

    fn update_staging(&mut self, name: &str, guard: Guard, change: &Change<'_>) -> Result<bool> {
        let mut cells = change.cells();
        cells.extend(self.host_cell(change.op.as_ref()));
        let stmt = Stmt::update('$', "stagings", cells, guard.cells(name));
        Ok(self.execute(stmt)? > 0)
    }

    fn delete_staging(&mut self, name: &str, guard: Guard) -> Result<bool> {
        Ok(self.execute(Stmt::delete('$', "stagings", guard.cells(name)))? > 0)
    }

    fn insert_audit(&mut self, row: &AuditRow<'_>) -> Result<i64> {
        self.returning(Stmt::insert('$', "audit", row.cells()), "id")
    }

    fn complete_audit(&mut self, id: i64, done: &AuditDone<'_>) -> Result<()> {
        let (set, cond) = done.cells(id);
        self.execute(Stmt::update('$', "audit", set, cond))
            .map(drop)
    }

    fn append_event(&mut self, at: DateTime<Utc>, name: &str, kind: EventKind) -> Result<Event> {
        self.lock_feed()?;
        let cells = vec![
            ("at", Cell::time(at)),
            ("name", Cell::text(name)),
            ("body", Cell::text(event_body(&kind))),
        ];
        let seq = self.returning(Stmt::insert('$', "events", cells), "seq")?;
        self.last_seq = Some(seq);
        Ok(Event {
            seq,
            at: from_ms(ms(at)),
            name: name.to_string(),
            kind,
        })
    }
}

impl PostgresStateStore {
    /// Connect to the database at `url` (`postgres://…`) with default options and apply
    /// missing migrations. Errors: `Backend` (cannot connect), `Unsupported` (a schema from a
    /// newer build).
    pub fn open(url: &str) -> Result<PostgresStateStore> {
        PostgresStateStore::open_with(PostgresOptions::new(url))
    }

    /// Connect with `options` and apply missing migrations.
    pub fn open_with(options: PostgresOptions) -> Result<PostgresStateStore> {
        let mut config =
            tokio_postgres::Config::from_str(&options.url).map_err(|e| Error::InvalidArgument {
                what: "postgres URL",
                reason: format!("does not parse: {e}"),
            })?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(Error::Unsupported {
                what: "sslmode=require: this build of capsa connects to PostgreSQL without TLS \
                       (use a trusted network or a local socket, and sslmode=disable or prefer)"
                    .into(),
            });
        }
        if let Some(s) = &options.schema {
            if !valid_schema(s) {
                return Err(Error::InvalidArgument {
                    what: "postgres schema",
                    reason: format!("{s:?}: expected [a-z_][a-z0-9_]*, at most 63 characters"),
                });
            }
            let mut opts = config.get_options().unwrap_or("").to_string();
            opts.push_str(&format!(" -c search_path={s}"));
            config.options(opts.trim());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("capsa");
        }
        let key = options
            .key_file
            .as_deref()
            .map(SealKey::open_or_create)
            .transpose()?;
        let place = place_of(&config, options.schema.as_deref());
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| Error::State {
                store: "postgres",
                place: place.clone(),
                message: format!("cannot make a connection pool: {e}"),
            })?;
        let store = PostgresStateStore {
            pool,
            config,
            place,
            host: super::this_host(),
            signal: OnceLock::new(),
            key,
        };
        runtime::block_on(store.migrate(options.schema.as_deref()))?;
        Ok(store)
    }

    /// The database, for messages (`postgres://host:port/dbname`; never the password).
    pub fn place(&self) -> &str {
        &self.place
    }

    /// The key file that seals private values, if the store was opened with one.
    pub fn key_file(&self) -> Option<&Path> {
        self.key.as_ref().map(SealKey::path)
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<u32> {
        runtime::block_on(async {
            let c = self.client().await?;
            let row = c
                .query_one("SELECT version FROM schema_version", &[])
                .await
                .map_err(|e| self.err(&e))?;
            Ok(row.get::<_, i32>(0) as u32)
        })
    }

    fn err(&self, e: &tokio_postgres::Error) -> Error {
        let detail = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        Error::State {
            store: "postgres",
            place: self.place.clone(),
            message: detail,
        }
    }

    fn pool_err(&self, e: PoolError) -> Error {
        let message = match &e {
            PoolError::Backend(b) => format!("cannot connect: {b}"),
            PoolError::Timeout(_) => {
                "no connection within the timeout (server down or pool exhausted)".to_string()
            }
            other => other.to_string(),
        };
        Error::State {
            store: "postgres",
            place: self.place.clone(),
            message,
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| self.pool_err(e))
    }

    async fn migrate(&self, schema: Option<&str>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.err(&e))?;
        let run = async {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            if let Some(s) = schema {
                tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}"))
                    .await?;
            }
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
            )
            .await?;
            let current: Option<i32> = tx
                .query_opt("SELECT version FROM schema_version", &[])
                .await?
                .map(|r| r.get(0));
            let current = current.unwrap_or(0).max(0) as usize;
            if current > migrations().len() {
                return Ok(Err(Error::Unsupported {
                    what: format!(
                        "state store {} has schema version {current}, this build knows up to {}",
                        self.place,
                        migrations().len()
                    ),
                }));
            }
            for (i, m) in migrations().iter().enumerate().skip(current) {
                tracing::debug!(version = i + 1, "applying state store migration");
                tx.batch_execute(m).await?;
            }
            if current < migrations().len() {
                tx.execute("DELETE FROM schema_version", &[]).await?;
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)",
                    &[&(migrations().len() as i32)],
                )
                .await?;
            }
            Ok(Ok(()))
        };
        let out = run.await.map_err(|e| self.err(&e))?;
        tx.commit().await.map_err(|e| self.err(&e))?;
        out
    }

    /// Run `f` in one transaction and commit (also when it returns a refusal, whose audit row
    /// must stay), announcing the events it wrote. Lost races are retried (so `f` may run more
    /// than once); any other failure rolls everything back.
    fn write<T>(&self, mut f: impl FnMut(&mut PgTx<'_, '_>) -> Step<T>) -> Result<T> {
        let mut attempt = 0u32;
        loop {
            let mut client = runtime::block_on(self.client())?;
            let tx = match runtime::block_on(client.transaction()) {
                Ok(tx) => tx,
                // A pooled connection the server dropped meanwhile: nothing has been sent;
                // take a fresh one (the pool discards closed ones when they come back).
                Err(e) if e.is_closed() && attempt == 0 => {
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(self.err(&e)),
            };
            let mut ptx = PgTx {
                tx: &tx,
                store: self,
                feed_locked: false,
                last_seq: None,
                failed: None,
            };
            let step = f(&mut ptx);
            let (failed, last_seq) = (ptx.failed.take(), ptx.last_seq);
            let e = match step {
                Ok(out) => match runtime::block_on(commit(tx, last_seq)) {
                    Ok(()) => return out,
                    Err(e) => e,
                },
                Err(err) => {
                    let _ = runtime::block_on(tx.rollback());
                    match failed {
                        Some(e) if retryable(&e) => e,
                        _ => return Err(err),
                    }
                }
            };
            if retryable(&e) && attempt < MAX_RETRIES {
                attempt += 1;
                tracing::debug!(
                    attempt,
                    "state store transaction lost a race; retrying: {e}"
                );
                std::thread::sleep(Duration::from_millis(2 * u64::from(attempt)));
                continue;
            }
            return Err(self.err(&e));
        }
    }

    /// Run a query outside any transaction and decode every row with `decode`.
    fn select<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        decode: impl Fn(&PgRow<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let rows = runtime::block_on(async {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await.map_err(|e| self.err(&e))?;
            c.query(&st, params).await.map_err(|e| self.err(&e))
        })?;
        rows.iter()
            .map(|row| decode(&PgRow { row, store: self }))
            .collect()
    }

    fn start_listener(&self) -> Arc<watch::Sender<u64>> {
        self.signal
            .get_or_init(|| {
                let (tx, _) = watch::channel(0u64);
                let tx = Arc::new(tx);
                let weak = Arc::downgrade(&tx);
                let config = self.config.clone();
                let place = self.place.clone();
                runtime::runtime().spawn(listen_loop(config, weak, place));
                tx
            })
            .clone()
    }
}

fn bump(signal: &Weak<watch::Sender<u64>>) -> bool {
    match signal.upgrade() {
        Some(s) => {
            s.send_modify(|v| *v = v.wrapping_add(1));
            true
        }
        None => false,
    }
}

/// Keep one connection listening on [`NOTIFY_CHANNEL`] and bump the signal on every
/// notification; reconnect when the connection drops (and bump then too: events may have been
/// missed). Ends once the store is gone.
async fn listen_loop(
    config: tokio_postgres::Config,
    signal: Weak<watch::Sender<u64>>,
    place: String,
) {
    let mut logged = false;
    loop {
        if signal.strong_count() == 0 {
            return;
        }
        match config.connect(NoTls).await {
            Ok((client, mut conn)) => {
                let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                        match m {
                            Ok(AsyncMessage::Notification(_)) => {
                                if ntx.send(()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
                    .await
                    .is_ok()
                {
                    logged = false;
                    if !bump(&signal) {
                        driver.abort();
                        return;
                    }
                    loop {
                        tokio::select! {
                            m = nrx.recv() => match m {
                                Some(()) => {
                                    if !bump(&signal) {
                                        driver.abort();
                                        return;
                                    }
                                }
                                None => break,
                            },
                            _ = tokio::time::sleep(Duration::from_secs(2)) => {
                                if signal.strong_count() == 0 {
                                    driver.abort();
                                    return;
                                }
                            }
                        }
                    }
                }
                driver.abort();
                bump(&signal);
            }
            Err(e) => {
                if !logged {
                    tracing::warn!("state store {place}: event listener cannot connect: {e}");
                    logged = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Announce the last event written (delivered to listeners when, and only if, the transaction
/// commits), then commit.
async fn commit(tx: Tx<'_>, last_seq: Option<i64>) -> PgResult<()> {
    if let Some(seq) = last_seq {
        let st = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
        tx.execute(&st, &[&NOTIFY_CHANNEL, &seq.to_string()])
            .await?;
    }
    tx.commit().await
}

impl StateStore for PostgresStateStore {
    ledger::lifecycle_methods!();

    fn get(&self, name: &str) -> Result<Option<StagingRecord>> {
        let sql = format!("SELECT {STAGING_COLS}, op_host FROM stagings WHERE name = $1");
        let found = self.select(&sql, &[&name], |r| staging_record(r, self.key.as_ref()))?;
        Ok(found.into_iter().next())
    }

    fn list(&self) -> Result<Vec<StagingRecord>> {
        let sql =
            format!("SELECT {STAGING_COLS}, op_host FROM stagings ORDER BY name COLLATE \"C\"");
        self.select(&sql, &[], |r| staging_record(r, self.key.as_ref()))
    }

    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE ($1::TEXT IS NULL OR name = $1) AND id > $2 \
             ORDER BY id DESC LIMIT $3"
        );
        let limit = q.limit.map(|l| l as i64);
        let args: [&(dyn ToSql + Sync); 3] = [&q.name, &q.after_id.unwrap_or(0), &limit];
        let mut v = self.select(&sql, &args, |r| audit_entry(r))?;
        v.reverse();
        Ok(v)
    }

    fn events_since(&self, after: i64, limit: usize) -> Result<Vec<Event>> {
        let sql = format!("SELECT {EVENT_COLS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2");
        let limit = limit.min(i64::MAX as usize) as i64;
        self.select(&sql, &[&after, &limit], |r| event(r))
    }

    fn last_event_seq(&self) -> Result<i64> {
        let seq = self.select(
            "SELECT COALESCE(MAX(seq), 0)::BIGINT FROM events",
            &[],
            |r| r.req_int(0),
        )?;
        Ok(seq.into_iter().next().unwrap_or(0))
    }

    fn prune_events(&self, before: DateTime<Utc>) -> Result<usize> {
        self.write(|tx| {
            let n = tx.execute(Stmt {
                sql: "DELETE FROM events WHERE at < $1".into(),
                params: vec![Cell::time(before)],
            })?;
            Ok(Ok(n as usize))
        })
    }

    fn event_signal(&self) -> Option<watch::Receiver<u64>> {
        Some(self.start_listener().subscribe())
    }
}
