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
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::machine;
use super::sealed::SealKey;
use super::sqlite::{
    decode_overrides, decode_overrides_masked, encode_overrides, from_ms, masked_overrides, ms,
};
use super::store::{
    Begin, BeginPlan, Begun, CheckUpdate, Finish, Finished, InFlight, StagingRecord, StateStore,
};
use super::{
    AuditEntry, AuditQuery, Command, Event, EventKind, Outcome, Override, Staging, Status,
};
use crate::error::{Error, Result};
use crate::runtime;

/// Schema migrations, applied in order; index + 1 is the schema version. Never edit one that
/// has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: stagings, audit log, event feed (the SQLite store's schema, with `op_host`).
    "CREATE TABLE stagings (
        name TEXT PRIMARY KEY NOT NULL,
        status TEXT NOT NULL,
        tag TEXT NOT NULL,
        overrides TEXT NOT NULL,
        reason TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        status_since BIGINT NOT NULL,
        checked_at BIGINT,
        op_id BIGINT,
        op_command TEXT,
        op_started_at BIGINT,
        op_pid BIGINT,
        op_host TEXT
    );
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
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
        started_at BIGINT NOT NULL,
        duration_ms BIGINT,
        output TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_by_name ON audit(name, id);
    CREATE TABLE events (
        seq BIGSERIAL PRIMARY KEY,
        at BIGINT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX events_by_at ON events(at);",
];

/// The `LISTEN/NOTIFY` channel on which event writers announce new events.
pub const NOTIFY_CHANNEL: &str = "capsa_staging_events";

/// The advisory lock key held while migrating ("capsaSTG").
const MIGRATION_LOCK: i64 = 0x6361_7073_6153_5447;

/// How often a transaction that lost a race (serialization failure, deadlock, a duplicate
/// key from a concurrent create) is retried before the error is returned.
const MAX_RETRIES: u32 = 20;

const STAGING_COLS: &str = "name, status, tag, overrides, reason, created_at, updated_at, \
     status_since, checked_at, op_id, op_command, op_started_at, op_pid, op_host";

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

/// Return a refusal (an `Err` of the inner `Result`) from a transaction body: the transaction
/// commits what it wrote before (nothing, where this is used).
macro_rules! or_refuse {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

fn row_to_record(r: &Row, key: Option<&SealKey>, place: &str) -> Result<StagingRecord> {
    let status: String = r.get(1);
    let op_id: Option<i64> = r.get(9);
    let op_command: Option<String> = r.get(10);
    let in_flight = match (op_id, op_command.as_deref().and_then(Command::parse)) {
        (Some(op_id), Some(command)) => Some(InFlight {
            op_id,
            command,
            started_at: from_ms(r.get::<_, Option<i64>>(11).unwrap_or(0)),
            pid: r.get::<_, Option<i64>>(12).unwrap_or(0) as u32,
            host: r.get(13),
        }),
        _ => None,
    };
    let staging = Staging {
        name: r.get(0),
        status: Status::parse(&status).unwrap_or(Status::Failure),
        tag: r.get(2),
        overrides: decode_overrides(r.get::<_, &str>(3), key, Path::new(place))?,
        reason: r.get(4),
        command_in_progress: in_flight.as_ref().map(|f| f.command),
        created_at: from_ms(r.get(5)),
        updated_at: from_ms(r.get(6)),
        status_since: from_ms(r.get(7)),
        checked_at: r.get::<_, Option<i64>>(8).map(from_ms),
    };
    Ok(StagingRecord { staging, in_flight })
}

/// The staging's row; the inner `Err` is a stored value that does not decode (a sealed value
/// and the wrong key, or none).
async fn read_record(
    store: &PostgresStateStore,
    c: &impl GenericClient,
    name: &str,
    for_update: bool,
) -> PgResult<Result<Option<StagingRecord>>> {
    let sql = if for_update {
        format!("SELECT {STAGING_COLS} FROM stagings WHERE name = $1 FOR UPDATE")
    } else {
        format!("SELECT {STAGING_COLS} FROM stagings WHERE name = $1")
    };
    let st = c.prepare_cached(&sql).await?;
    Ok(c.query_opt(&st, &[&name])
        .await?
        .as_ref()
        .map(|r| row_to_record(r, store.key.as_ref(), &store.place))
        .transpose())
}

/// Take the feed lock: event writers commit in sequence order (released at commit).
async fn lock_feed(tx: &Tx<'_>) -> PgResult<()> {
    tx.batch_execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
        .await
}

async fn insert_event(
    tx: &Tx<'_>,
    now: DateTime<Utc>,
    name: &str,
    kind: EventKind,
) -> PgResult<Event> {
    let body = serde_json::to_string(&kind).expect("event encodes");
    let st = tx
        .prepare_cached("INSERT INTO events (at, name, body) VALUES ($1, $2, $3) RETURNING seq")
        .await?;
    let row = tx.query_one(&st, &[&ms(now), &name, &body]).await?;
    Ok(Event {
        seq: row.get(0),
        at: from_ms(ms(now)),
        name: name.to_string(),
        kind,
    })
}

/// Announce new events; delivered to listeners when (and only if) the transaction commits.
async fn notify(tx: &Tx<'_>, events: &[Event]) -> PgResult<()> {
    if let Some(last) = events.last() {
        let st = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
        tx.execute(&st, &[&NOTIFY_CHANNEL, &last.seq.to_string()])
            .await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_audit(
    tx: &Tx<'_>,
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
) -> PgResult<i64> {
    let st = tx
        .prepare_cached(
            "INSERT INTO audit (name, action, actor, tag, overrides, outcome, status_before, \
             status_after, reason, started_at, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .await?;
    let row = tx
        .query_one(
            &st,
            &[
                &name,
                &action,
                &actor,
                &tag,
                &masked_overrides(overrides),
                &outcome.as_str(),
                &before.map(Status::as_str),
                &after.map(Status::as_str),
                &reason,
                &ms(now),
                &duration_ms,
            ],
        )
        .await?;
    Ok(row.get(0))
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
                .map_err(|e| self.err(e))?;
            Ok(row.get::<_, i32>(0) as u32)
        })
    }

    fn err(&self, e: tokio_postgres::Error) -> Error {
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
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
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
            if current > MIGRATIONS.len() {
                return Ok(Err(Error::Unsupported {
                    what: format!(
                        "state store {} has schema version {current}, this build knows up to {}",
                        self.place,
                        MIGRATIONS.len()
                    ),
                }));
            }
            for (i, m) in MIGRATIONS.iter().enumerate().skip(current) {
                tracing::debug!(version = i + 1, "applying state store migration");
                tx.batch_execute(m).await?;
            }
            if current < MIGRATIONS.len() {
                tx.execute("DELETE FROM schema_version", &[]).await?;
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)",
                    &[&(MIGRATIONS.len() as i32)],
                )
                .await?;
            }
            Ok(Ok(()))
        };
        let out = run.await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        out
    }

    /// Run `f` in a transaction and commit (also when it returns a refusal, whose audit row
    /// must stay). Lost races are retried; any other database error rolls everything back.
    async fn write<T>(&self, mut f: impl AsyncFnMut(&Tx<'_>) -> PgResult<Result<T>>) -> Result<T> {
        let mut attempt = 0u32;
        loop {
            let mut client = self.client().await?;
            let tx = match client.transaction().await {
                Ok(tx) => tx,
                // A pooled connection the server dropped meanwhile: nothing has been sent;
                // take a fresh one (the pool discards closed ones when they come back).
                Err(e) if e.is_closed() && attempt == 0 => {
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(self.err(e)),
            };
            let e = match f(&tx).await {
                Ok(out) => match tx.commit().await {
                    Ok(()) => return out,
                    Err(e) => e,
                },
                Err(e) => {
                    let _ = tx.rollback().await;
                    e
                }
            };
            if retryable(&e) && attempt < MAX_RETRIES {
                attempt += 1;
                tracing::debug!(
                    attempt,
                    "state store transaction lost a race; retrying: {e}"
                );
                tokio::time::sleep(Duration::from_millis(2 * u64::from(attempt))).await;
                continue;
            }
            return Err(self.err(e));
        }
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

impl StateStore for PostgresStateStore {
    fn begin(&self, req: &Begin<'_>) -> Result<Begun> {
        runtime::block_on(self.write(async |tx| {
            let cur = or_refuse!(read_record(self, tx, req.name, true).await?);
            let BeginPlan {
                cur_status,
                tag,
                overrides,
                running,
            } = req.plan(cur.as_ref());
            // Sealed before anything is written: a value that cannot be stored (a private one
            // and no key file) is a refusal, audited as such.
            let planned =
                running.and_then(|r| Ok((r, encode_overrides(&overrides, self.key.as_ref())?)));
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
                    )
                    .await?;
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
            )
            .await?;
            let now = ms(req.now);
            let new_status = running.or(cur_status).unwrap_or(Status::CreatePending);
            let pid = i64::from(req.pid);
            let tag = tag.unwrap_or("");
            match &cur {
                None => {
                    let st = tx
                        .prepare_cached(
                            "INSERT INTO stagings (name, status, tag, overrides, reason, \
                             created_at, updated_at, status_since, checked_at, op_id, op_command, \
                             op_started_at, op_pid, op_host) \
                             VALUES ($1, $2, $3, $4, NULL, $5, $5, $5, NULL, $6, $7, $5, $8, $9)",
                        )
                        .await?;
                    tx.execute(
                        &st,
                        &[
                            &req.name,
                            &new_status.as_str(),
                            &tag,
                            &encoded,
                            &now,
                            &op_id,
                            &req.command.as_str(),
                            &pid,
                            &self.host,
                        ],
                    )
                    .await?;
                }
                Some(c) => {
                    let since = if Some(new_status) != cur_status {
                        now
                    } else {
                        ms(c.staging.status_since)
                    };
                    // Compare-and-set: the row is locked, and it must still have no command.
                    let st = tx
                        .prepare_cached(
                            "UPDATE stagings SET status = $2, tag = $3, overrides = $4, \
                             updated_at = $5, status_since = $6, op_id = $7, op_command = $8, \
                             op_started_at = $5, op_pid = $9, op_host = $10 \
                             WHERE name = $1 AND op_id IS NULL",
                        )
                        .await?;
                    let n = tx
                        .execute(
                            &st,
                            &[
                                &req.name,
                                &new_status.as_str(),
                                &tag,
                                &encoded,
                                &now,
                                &since,
                                &op_id,
                                &req.command.as_str(),
                                &pid,
                                &self.host,
                            ],
                        )
                        .await?;
                    debug_assert_eq!(n, 1, "the locked row has no command in flight");
                }
            }
            let mut events = Vec::new();
            if running.is_some() {
                lock_feed(tx).await?;
                events.push(
                    insert_event(
                        tx,
                        req.now,
                        req.name,
                        EventKind::StatusChanged {
                            from: cur_status,
                            to: Some(new_status),
                            reason: None,
                        },
                    )
                    .await?,
                );
                notify(tx, &events).await?;
            }
            let record = or_refuse!(read_record(self, tx, req.name, false).await?)
                .expect("row just written");
            Ok(Ok(Begun {
                record,
                status_before: cur_status,
                op_id,
                events,
            }))
        }))
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
        runtime::block_on(self.write(async |tx| {
            let cur = tx
                .query_opt("SELECT status FROM stagings WHERE name = $1", &[&name])
                .await?
                .map(|r| Status::parse(r.get::<_, &str>(0)).unwrap_or(Status::Failure));
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
            )
            .await?;
            Ok(Ok(()))
        }))
    }

    fn finish(&self, req: &Finish<'_>) -> Result<Finished> {
        runtime::block_on(self.write(async |tx| {
            let cur = or_refuse!(read_record(self, tx, req.name, true).await?);
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
                let st = tx
                    .prepare_cached(
                        "UPDATE audit SET outcome = $2, reason = $3, exit_code = $4, \
                         duration_ms = $5 - started_at, output = $6 \
                         WHERE id = $1 AND outcome = 'Pending'",
                    )
                    .await?;
                tx.execute(
                    &st,
                    &[
                        &req.op_id,
                        &outcome.as_str(),
                        &req.reason,
                        &req.exit_code,
                        &now,
                        &req.output,
                    ],
                )
                .await?;
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
                    let st = tx
                        .prepare_cached("DELETE FROM stagings WHERE name = $1")
                        .await?;
                    tx.execute(&st, &[&req.name]).await?;
                }
                Some(s) => {
                    let since = if s != before {
                        now
                    } else {
                        ms(cur.staging.status_since)
                    };
                    let reason = if req.success {
                        None
                    } else {
                        req.reason.clone()
                    };
                    let st = tx
                        .prepare_cached(
                            "UPDATE stagings SET status = $2, reason = $3, updated_at = $4, \
                             status_since = $5, checked_at = $4, op_id = NULL, op_command = NULL, \
                             op_started_at = NULL, op_pid = NULL, op_host = NULL WHERE name = $1",
                        )
                        .await?;
                    tx.execute(&st, &[&req.name, &s.as_str(), &reason, &now, &since])
                        .await?;
                }
            }
            let st = tx
                .prepare_cached(
                    "UPDATE audit SET outcome = $2, status_after = $3, reason = $4, \
                     exit_code = $5, duration_ms = $6 - started_at, output = $7 WHERE id = $1",
                )
                .await?;
            tx.execute(
                &st,
                &[
                    &req.op_id,
                    &outcome.as_str(),
                    &after.map(Status::as_str),
                    &req.reason,
                    &req.exit_code,
                    &now,
                    &req.output,
                ],
            )
            .await?;
            lock_feed(tx).await?;
            events.push(
                insert_event(
                    tx,
                    req.now,
                    req.name,
                    EventKind::StatusChanged {
                        from: Some(before),
                        to: after,
                        reason: if req.success {
                            None
                        } else {
                            req.reason.clone()
                        },
                    },
                )
                .await?,
            );
            events.push(
                insert_event(
                    tx,
                    req.now,
                    req.name,
                    EventKind::CommandFinished {
                        action: req.command.as_str().to_string(),
                        outcome,
                        audit_id: req.op_id,
                        reason: req.reason.clone(),
                    },
                )
                .await?,
            );
            notify(tx, &events).await?;
            let staging =
                or_refuse!(read_record(self, tx, req.name, false).await?).map(|r| r.staging);
            Ok(Ok(Finished {
                applied,
                staging,
                events,
            }))
        }))
    }

    fn get(&self, name: &str) -> Result<Option<StagingRecord>> {
        runtime::block_on(async {
            let c = self.client().await?;
            read_record(self, &c, name, false)
                .await
                .map_err(|e| self.err(e))?
        })
    }

    fn list(&self) -> Result<Vec<StagingRecord>> {
        runtime::block_on(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {STAGING_COLS} FROM stagings ORDER BY name COLLATE \"C\""
                ))
                .await
                .map_err(|e| self.err(e))?;
            let rows = c.query(&st, &[]).await.map_err(|e| self.err(e))?;
            rows.iter()
                .map(|r| row_to_record(r, self.key.as_ref(), &self.place))
                .collect()
        })
    }

    fn record_checks(&self, updates: &[CheckUpdate]) -> Result<Vec<Event>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        runtime::block_on(self.write(async |tx| {
            // Lock every row first, in one order, then the feed: no deadlock with commands,
            // which lock one row and then the feed.
            let names: Vec<String> = updates.iter().map(|u| u.name.clone()).collect();
            tx.query(
                "SELECT name FROM stagings WHERE name = ANY($1) ORDER BY name FOR UPDATE",
                &[&names],
            )
            .await?;
            lock_feed(tx).await?;
            let mut events = Vec::new();
            for u in updates {
                let now = ms(u.now);
                let n = tx
                    .execute(
                        "UPDATE stagings SET checked_at = $3 WHERE name = $1 AND status = $2 \
                         AND op_id IS NULL",
                        &[&u.name, &u.expected.as_str(), &now],
                    )
                    .await?;
                if n == 0 {
                    continue; // changed meanwhile: this check's answer is stale
                }
                if u.new_status == u.expected {
                    if u.new_status == Status::Failure && u.reason.is_some() {
                        tx.execute(
                            "UPDATE stagings SET reason = $2 WHERE name = $1",
                            &[&u.name, &u.reason],
                        )
                        .await?;
                    }
                    continue;
                }
                let reason = if u.new_status == Status::Running {
                    None
                } else {
                    u.reason.clone()
                };
                let row = tx
                    .query_one(
                        "UPDATE stagings SET status = $2, reason = $3, status_since = $4, \
                         updated_at = $4 WHERE name = $1 RETURNING tag, overrides",
                        &[&u.name, &u.new_status.as_str(), &reason, &now],
                    )
                    .await?;
                let (tag, overrides): (String, String) = (row.get(0), row.get(1));
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
                    &or_refuse!(decode_overrides_masked(&overrides, Path::new(&self.place))),
                    outcome,
                    Some(u.expected),
                    Some(u.new_status),
                    u.reason.as_deref(),
                    u.now,
                    Some(0),
                )
                .await?;
                events.push(
                    insert_event(
                        tx,
                        u.now,
                        &u.name,
                        EventKind::StatusChanged {
                            from: Some(u.expected),
                            to: Some(u.new_status),
                            reason: reason.clone(),
                        },
                    )
                    .await?,
                );
                events.push(
                    insert_event(
                        tx,
                        u.now,
                        &u.name,
                        EventKind::CommandFinished {
                            action: "reconcile".into(),
                            outcome,
                            audit_id,
                            reason,
                        },
                    )
                    .await?,
                );
            }
            notify(tx, &events).await?;
            Ok(Ok(events))
        }))
    }

    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        runtime::block_on(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT id, name, action, actor, tag, overrides, outcome, status_before, \
                     status_after, reason, exit_code, started_at, duration_ms, output FROM audit \
                     WHERE ($1::TEXT IS NULL OR name = $1) AND id > $2 ORDER BY id DESC LIMIT $3",
                )
                .await
                .map_err(|e| self.err(e))?;
            let limit = q.limit.map(|l| l as i64);
            let rows = c
                .query(&st, &[&q.name, &q.after_id.unwrap_or(0), &limit])
                .await
                .map_err(|e| self.err(e))?;
            let st = |v: Option<String>| v.as_deref().and_then(Status::parse);
            let mut v: Vec<AuditEntry> = rows
                .iter()
                .map(|r| AuditEntry {
                    id: r.get(0),
                    name: r.get(1),
                    action: r.get(2),
                    actor: r.get(3),
                    tag: r.get(4),
                    overrides: serde_json::from_str(r.get::<_, &str>(5)).unwrap_or_default(),
                    outcome: Outcome::parse(r.get::<_, &str>(6)).unwrap_or(Outcome::Failure),
                    status_before: st(r.get(7)),
                    status_after: st(r.get(8)),
                    reason: r.get(9),
                    exit_code: r.get(10),
                    started_at: from_ms(r.get(11)),
                    duration_ms: r.get::<_, Option<i64>>(12).map(|d| d.max(0) as u64),
                    output: r.get(13),
                })
                .collect();
            v.reverse();
            Ok(v)
        })
    }

    fn events_since(&self, after: i64, limit: usize) -> Result<Vec<Event>> {
        runtime::block_on(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT seq, at, name, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .await
                .map_err(|e| self.err(e))?;
            let rows = c
                .query(&st, &[&after, &(limit.min(i64::MAX as usize) as i64)])
                .await
                .map_err(|e| self.err(e))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let seq: i64 = r.get(0);
                let kind: EventKind = serde_json::from_str(r.get::<_, &str>(3))
                    .map_err(|e| Error::corrupt(self.place.clone(), format!("event {seq}: {e}")))?;
                out.push(Event {
                    seq,
                    at: from_ms(r.get(1)),
                    name: r.get(2),
                    kind,
                });
            }
            Ok(out)
        })
    }

    fn last_event_seq(&self) -> Result<i64> {
        runtime::block_on(async {
            let c = self.client().await?;
            let row = c
                .query_one("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM events", &[])
                .await
                .map_err(|e| self.err(e))?;
            Ok(row.get(0))
        })
    }

    fn prune_events(&self, before: DateTime<Utc>) -> Result<usize> {
        runtime::block_on(self.write(async |tx| {
            let n = tx
                .execute("DELETE FROM events WHERE at < $1", &[&ms(before)])
                .await?;
            Ok(Ok(n as usize))
        }))
    }

    fn event_signal(&self) -> Option<watch::Receiver<u64>> {
        Some(self.start_listener().subscribe())
    }
}
