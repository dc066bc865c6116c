//! [`StagingManager`]: commands, reconcile, retention, events.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::broadcast;

use super::feed::{Feed, Take};
use super::notify::{HookStats, Notifier, NotifyConfig, NOTIFICATIONS_ENV};
use super::store::{Begin, Finish, StateStore};
use super::{
    redact, validate_name, validate_tag, AuditEntry, AuditQuery, BackendOutcome, BackendReply,
    Command, DeployRequest, Deployer, Event, Expiry, NamedUrl, Override, OverrideEdit, SqliteStore,
    Staging, Status,
};
use crate::error::{Error, Result};
use crate::runtime;

/// Backend output kept per command in the audit log, at most (bytes); backends bound their own
/// capture too.
const MAX_OUTPUT: usize = 128 * 1024;

/// Settings of a [`StagingManager`].
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// Who issues commands (recorded in the audit log). Default: `$USER`, else `"unknown"`.
    pub actor: String,
    /// A pending status older than this becomes Failure on `reconcile`. Default 600 s.
    pub pending_timeout: Duration,
    /// `reconcile` checks a stable staging again once this long has passed since its last
    /// check. Default 60 s; zero checks every staging on every call.
    pub check_interval: Duration,
    /// `clean_archived` removes archived stagings older than this. Default 14 days.
    pub retention: Duration,
    /// How many backend calls `reconcile` makes at once. Default 16.
    pub concurrency: usize,
    /// Prefix of the Kubernetes namespace (`namespace = prefix + name`). Default empty.
    pub namespace_prefix: String,
    /// The key file that seals private values, used by [`StagingManager::open_with`]
    /// (created if missing). Default `None`: [`super::KEY_FILE_ENV`], else the state's
    /// default ([`super::open_store_with_key`]).
    pub key_file: Option<PathBuf>,
    /// The installation's notification hooks ([`NotifyConfig`]). Default none;
    /// [`StagingManager::open_with`] reads the file named by [`NOTIFICATIONS_ENV`] when this
    /// has no hook.
    pub notifications: NotifyConfig,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            actor: std::env::var("USER")
                .or_else(|_| std::env::var("USERNAME"))
                .unwrap_or_else(|_| "unknown".into()),
            pending_timeout: super::DEFAULT_PENDING_TIMEOUT,
            check_interval: Duration::from_secs(60),
            retention: Duration::from_secs(14 * 24 * 3600),
            concurrency: 16,
            namespace_prefix: String::new(),
            key_file: None,
            notifications: NotifyConfig::default(),
        }
    }
}

/// What a command changes besides its [`CommandRequest`]: the staging's time to live and
/// per-key override changes ([`StagingManager::start_with_async`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOptions {
    /// Create, update and restore: the staging's expiry ([`Expiry::In`] a time to live from
    /// now, after which `reconcile` archives it; [`Expiry::Never`]). Default: keep.
    pub expiry: Expiry,
    /// Create and update: per-key changes applied in order to the overrides the command runs
    /// with (the request's, else the stored ones); the other keys are kept.
    pub edits: Vec<OverrideEdit>,
    /// Who issues this command (the audit log's actor), when not the manager's
    /// [`ManagerOptions::actor`]: a server's authenticated caller.
    pub actor: Option<String>,
}

/// A command to start with [`StagingManager::start_async`].
#[derive(Debug, Clone)]
pub enum CommandRequest {
    /// Create a staging.
    Create {
        /// Name.
        name: String,
        /// Tag.
        tag: String,
        /// Overrides.
        overrides: Vec<Override>,
    },
    /// Update a staging.
    Update {
        /// Name.
        name: String,
        /// Tag.
        tag: String,
        /// New overrides, replacing the stored ones; `None` keeps the stored ones.
        overrides: Option<Vec<Override>>,
    },
    /// Archive a staging.
    Delete {
        /// Name.
        name: String,
    },
    /// Recreate an archived staging with its last settings.
    Restore {
        /// Name.
        name: String,
    },
    /// Remove an archived or failed staging for good (its audit rows stay).
    Cleanup {
        /// Name.
        name: String,
    },
}

impl CommandRequest {
    /// The command.
    pub fn command(&self) -> Command {
        match self {
            CommandRequest::Create { .. } => Command::Create,
            CommandRequest::Update { .. } => Command::Update,
            CommandRequest::Delete { .. } => Command::Delete,
            CommandRequest::Restore { .. } => Command::Restore,
            CommandRequest::Cleanup { .. } => Command::Cleanup,
        }
    }

    /// The staging name.
    pub fn name(&self) -> &str {
        match self {
            CommandRequest::Create { name, .. }
            | CommandRequest::Update { name, .. }
            | CommandRequest::Delete { name }
            | CommandRequest::Restore { name }
            | CommandRequest::Cleanup { name } => name,
        }
    }

    /// The new tag and overrides (`None` overrides: keep the stored ones).
    fn settings(&self) -> Option<(&str, Option<&[Override]>)> {
        match self {
            CommandRequest::Create { tag, overrides, .. } => Some((tag, Some(overrides))),
            CommandRequest::Update { tag, overrides, .. } => Some((tag, overrides.as_deref())),
            _ => None,
        }
    }
}

/// A command that has started: the staging is in its pending status and the backend call runs
/// on the shared runtime. It finishes even if this handle is dropped.
#[derive(Debug)]
pub struct PendingCommand {
    /// The staging as the command left it on start (pending status).
    pub staging: Staging,
    /// The audit row id of the command.
    pub audit_id: i64,
    handle: tokio::task::JoinHandle<Result<Option<Staging>>>,
}

impl PendingCommand {
    /// Wait for the backend's answer: the staging afterwards (`None`: removed by cleanup).
    pub async fn wait_async(self) -> Result<Option<Staging>> {
        match self.handle.await {
            Ok(r) => r,
            Err(e) => Err(Error::Backend {
                backend: "runtime".into(),
                message: format!("command task ended abnormally: {e}"),
            }),
        }
    }

    /// Blocking form of [`PendingCommand::wait_async`].
    pub fn wait(self) -> Result<Option<Staging>> {
        runtime::block_on(self.wait_async())
    }
}

type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

pub(super) struct Inner {
    pub(super) store: Arc<dyn StateStore>,
    pub(super) deployer: Arc<dyn Deployer>,
    pub(super) opts: ManagerOptions,
    subs: Mutex<Vec<(u64, Callback)>>,
    next_sub: AtomicU64,
    pub(super) running_ops: Mutex<HashSet<i64>>,
    /// Commands of this manager whose result could not be recorded (the state store was
    /// unreachable): `reconcile` settles them at once instead of waiting for the timeout.
    pub(super) abandoned_ops: Mutex<HashSet<i64>>,
    /// Reconcile leases being released after a cancelled round ([`super::ReconcileLoop::stop`]
    /// waits for them).
    pub(super) releases: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    channel: broadcast::Sender<Event>,
    /// The one reader of the store's event feed that every waiter shares.
    feed: Arc<Feed>,
    /// Status changes for the backend's [`Deployer::notify`], delivered in order by one
    /// background task (only for a backend that [`Deployer::notifies`]).
    notifier: Option<Notifier>,
}

/// The staging lifecycle: commands, `reconcile`, retention, audit log and events over a
/// [`StateStore`] and a [`Deployer`]. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct StagingManager {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for StagingManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagingManager")
            .field("backend", &self.inner.deployer.name())
            .field("options", &self.inner.opts)
            .finish()
    }
}

/// An event subscription; dropping it (or [`Subscription::unsubscribe`]) stops the callback.
#[must_use = "dropping a Subscription unsubscribes at once"]
pub struct Subscription {
    id: u64,
    inner: Weak<Inner>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Subscription {
    /// Stop receiving events.
    pub fn unsubscribe(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.subs).retain(|(id, _)| *id != self.id);
        }
    }
}

/// A follower of the event feed ([`StagingManager::follow`]); dropping it (or
/// [`FeedFollower::stop`]) stops it.
#[must_use = "dropping a FeedFollower stops it at once"]
#[derive(Debug)]
pub struct FeedFollower {
    handle: tokio::task::JoinHandle<()>,
}

impl FeedFollower {
    /// Stop following, and wait until the follower has stopped: no callback runs after this
    /// returns (dropping it stops it too, without waiting; drop it, not `stop`, from inside
    /// its own callback, which `stop` would wait on forever).
    pub fn stop(mut self) {
        self.handle.abort();
        let _ = runtime::block_on(&mut self.handle);
    }
}

impl Drop for FeedFollower {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bound_output(s: &str) -> String {
    if s.len() <= MAX_OUTPUT {
        return s.to_string();
    }
    let mut head = MAX_OUTPUT / 2;
    while !s.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = s.len() - MAX_OUTPUT / 2;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}\n[… {} bytes not kept …]\n{}",
        &s[..head],
        tail - head,
        &s[tail..]
    )
}

/// Run a state store call on tokio's blocking pool. This is the one direction between sync and
/// async in the manager: the [`StateStore`] trait is synchronous (see why there), the
/// manager's `_async` forms hand each store call to a blocking thread, and its blocking forms
/// drive the `_async` forms with [`runtime::block_on`]. A store whose driver is async
/// (PostgreSQL) drives it from inside its own methods, which is safe on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(Error::Backend {
            backend: "runtime".into(),
            message: format!("state store task ended abnormally: {e}"),
        }),
    }
}

impl StagingManager {
    /// A manager over `store` and `deployer`.
    pub fn new(
        store: Arc<dyn StateStore>,
        deployer: Arc<dyn Deployer>,
        options: ManagerOptions,
    ) -> StagingManager {
        let (channel, _) = broadcast::channel(1024);
        let notifier =
            Notifier::start(&options.notifications, &deployer, &options.namespace_prefix);
        StagingManager {
            inner: Arc::new(Inner {
                store,
                deployer,
                opts: options,
                subs: Mutex::new(Vec::new()),
                next_sub: AtomicU64::new(1),
                running_ops: Mutex::new(HashSet::new()),
                abandoned_ops: Mutex::new(HashSet::new()),
                releases: Mutex::new(Vec::new()),
                channel,
                feed: Feed::new(),
                notifier,
            }),
        }
    }

    /// Open the state named by `state` with default options: a `postgres://` or
    /// `postgresql://` URL is a shared PostgreSQL database (feature `postgres`); anything else
    /// is the path of an embedded SQLite state file (created if missing). This is what every
    /// binding's `StagingManager.open(state, backend)` calls.
    pub fn open(state: impl AsRef<OsStr>, deployer: Arc<dyn Deployer>) -> Result<StagingManager> {
        StagingManager::open_with(state, deployer, ManagerOptions::default())
    }

    /// [`StagingManager::open`] with options (the key file among them): the one way every
    /// binding and the CLI open a manager.
    pub fn open_with(
        state: impl AsRef<OsStr>,
        deployer: Arc<dyn Deployer>,
        mut options: ManagerOptions,
    ) -> Result<StagingManager> {
        if options.notifications.hooks.is_empty() {
            if let Some(file) = std::env::var_os(NOTIFICATIONS_ENV).filter(|v| !v.is_empty()) {
                options.notifications = NotifyConfig::load(Path::new(&file))?;
            }
        }
        let store = super::open_store_with_key(state, options.key_file.as_deref())?;
        Ok(StagingManager::new(store, deployer, options))
    }

    /// A manager over the SQLite state file at `path` (created if missing).
    pub fn open_sqlite(
        path: impl AsRef<Path>,
        deployer: Arc<dyn Deployer>,
        options: ManagerOptions,
    ) -> Result<StagingManager> {
        let store = SqliteStore::open(path)?;
        Ok(StagingManager::new(Arc::new(store), deployer, options))
    }

    /// Wait until every queued notification is delivered (or given up), at most `grace`; the
    /// number still pending then. A short-lived process (a CLI command) calls this before it
    /// exits with [`NotifyConfig::grace`]; commands themselves never wait for hooks.
    pub async fn flush_notifications_async(&self, grace: Duration) -> usize {
        match &self.inner.notifier {
            Some(n) => n.flush(grace).await,
            None => 0,
        }
    }

    /// The blocking form of [`StagingManager::flush_notifications_async`].
    pub fn flush_notifications(&self, grace: Duration) -> usize {
        runtime::block_on(self.flush_notifications_async(grace))
    }

    /// Delivery counts of each notification hook (the backend's own first), since the
    /// manager was made.
    pub fn notification_stats(&self) -> Vec<HookStats> {
        self.inner
            .notifier
            .as_ref()
            .map(Notifier::stats)
            .unwrap_or_default()
    }

    /// The options.
    pub fn options(&self) -> &ManagerOptions {
        &self.inner.opts
    }

    /// The state store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.inner.store
    }

    /// The mock backend, to script it ([`MockDeployer::control`](super::MockDeployer::control)
    /// is how the C and C++ APIs do); `InvalidArgument` when the backend is another one.
    pub fn mock(&self) -> Result<&super::MockDeployer> {
        let d = &self.inner.deployer;
        d.as_mock().ok_or_else(|| Error::InvalidArgument {
            what: "backend",
            reason: format!("the manager's backend is {}, not mock", d.name()),
        })
    }

    /// Call `callback` for every event this manager produces (status changes and command
    /// results). Callbacks run on the thread that made the change, after its transaction has
    /// committed and with no lock held; keep them short. A panicking callback is caught and
    /// logged. Events made by other processes sharing the store are read with
    /// [`StagingManager::events_since`], waited for with [`StagingManager::wait_events`], or
    /// delivered to a callback by [`StagingManager::follow`].
    pub fn subscribe(&self, callback: impl Fn(&Event) + Send + Sync + 'static) -> Subscription {
        let id = self.inner.next_sub.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.subs).push((id, Arc::new(callback)));
        Subscription {
            id,
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// A channel receiving this manager's events (for async hosts). A slow receiver may miss
    /// events (`RecvError::Lagged`) and can catch up with [`StagingManager::events_since`].
    pub fn event_channel(&self) -> broadcast::Receiver<Event> {
        self.inner.channel.subscribe()
    }

    pub(super) fn emit(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let subs: Vec<Callback> = lock(&self.inner.subs)
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        for e in events {
            if let Some(n) = &self.inner.notifier {
                n.send(&e);
            }
            for cb in &subs {
                if catch_unwind(AssertUnwindSafe(|| cb(&e))).is_err() {
                    tracing::error!(seq = e.seq, "an event callback panicked");
                }
            }
            let _ = self.inner.channel.send(e);
        }
        self.inner.feed.written();
    }

    // ----- commands -----

    /// Start a command and return once the staging is in its pending status; the backend call
    /// goes on in the background ([`PendingCommand::wait_async`] waits for it).
    ///
    /// Errors: `InvalidName`, `InvalidArgument` (tag rejected by the backend's `tag_check`),
    /// `Busy`, `InvalidTransition`, `State` (state store unavailable), `Backend` (`tag_check` unavailable).
    pub async fn start_async(&self, req: CommandRequest) -> Result<PendingCommand> {
        self.start_with_async(req, CommandOptions::default()).await
    }

    /// [`StagingManager::start_async`] with a time to live or per-key override changes.
    /// `InvalidArgument` for options the command does not take (edits other than on create
    /// and update, an expiry on delete or cleanup) and for an unset of a key that is not
    /// there (recorded as refused).
    pub async fn start_with_async(
        &self,
        req: CommandRequest,
        opts: CommandOptions,
    ) -> Result<PendingCommand> {
        let actor = opts
            .actor
            .clone()
            .unwrap_or_else(|| self.inner.opts.actor.clone());
        self.start_as(req, opts, actor).await
    }

    /// Blocking form of [`StagingManager::start_with_async`].
    pub fn start_with(&self, req: CommandRequest, opts: CommandOptions) -> Result<PendingCommand> {
        runtime::block_on(self.start_with_async(req, opts))
    }

    pub(super) async fn start_as(
        &self,
        req: CommandRequest,
        opts: CommandOptions,
        actor: String,
    ) -> Result<PendingCommand> {
        let name = req.name().to_string();
        validate_name(&name)?;
        let command = req.command();
        super::validate_actor(&actor)?;
        if !opts.edits.is_empty() && req.settings().is_none() {
            return Err(Error::InvalidArgument {
                what: "override",
                reason: format!(
                    "per-key override changes apply to create and update, not {command}"
                ),
            });
        }
        if opts.expiry != Expiry::Keep && matches!(command, Command::Delete | Command::Cleanup) {
            return Err(Error::InvalidArgument {
                what: "ttl",
                reason: format!(
                    "a time to live applies to create, update and restore, not {command}"
                ),
            });
        }
        for e in &opts.edits {
            e.validate()?;
        }
        if let Some((tag, overrides)) = req.settings() {
            let overrides = overrides.unwrap_or(&[]);
            validate_tag(tag)?;
            for o in overrides {
                o.validate()?;
            }
            let config = self.inner.deployer.validates_config();
            // A configuration check sees the configuration the command will run with: an
            // update that keeps its overrides keeps the stored ones, with the edits applied.
            let mut checked = overrides.to_vec();
            if config && req.settings().is_some_and(|(_, o)| o.is_none()) {
                let store = self.inner.store.clone();
                let n = name.clone();
                if let Some(rec) = blocking(move || store.get(&n)).await? {
                    checked = rec.staging.overrides;
                }
            }
            if config {
                checked = super::apply_edits(&checked, &opts.edits)?;
            }
            let dreq = DeployRequest {
                name: name.clone(),
                namespace: self.namespace(&name),
                tag: Some(tag.to_string()),
                overrides: checked,
            };
            let reply = self.inner.deployer.tag_check(&dreq).await;
            let refusal = match reply.outcome {
                BackendOutcome::Success => None,
                BackendOutcome::Failed { reason } if config => Some(Error::InvalidArgument {
                    what: "configuration",
                    reason: crate::error::one_line(&redact(&reason, &dreq.overrides)).into_owned(),
                }),
                BackendOutcome::Failed { reason } => Some(Error::InvalidArgument {
                    what: "tag",
                    reason: format!("{tag} rejected: {}", redact(&reason, overrides)),
                }),
                BackendOutcome::Unavailable { reason } => Some(Error::Backend {
                    backend: self.inner.deployer.name().to_string(),
                    message: format!(
                        "{}: {}",
                        if config { "config_check" } else { "tag_check" },
                        redact(&reason, &dreq.overrides)
                    ),
                }),
            };
            if let Some(e) = refusal {
                let store = self.inner.store.clone();
                let (n, t, o, a, msg) = (
                    name.clone(),
                    tag.to_string(),
                    overrides.to_vec(),
                    actor.clone(),
                    e.to_string(),
                );
                blocking(move || store.refuse(&n, command, &a, Some((&t, &o)), &msg, Utc::now()))
                    .await?;
                return Err(e);
            }
        }
        let store = self.inner.store.clone();
        let new_tag = req.settings().map(|(t, _)| t.to_string());
        let new_overrides = req
            .settings()
            .and_then(|(_, o)| o.map(<[Override]>::to_vec));
        let n = name.clone();
        let begun = blocking(move || {
            store.begin(&Begin {
                name: &n,
                command,
                actor: &actor,
                tag: new_tag.as_deref(),
                overrides: new_overrides.as_deref(),
                edits: &opts.edits,
                expiry: opts.expiry,
                pid: std::process::id(),
                now: Utc::now(),
            })
        })
        .await?;
        let op_id = begun.op_id;
        lock(&self.inner.running_ops).insert(op_id);
        self.emit(begun.events);
        let staging = begun.record.staging;
        tracing::debug!(name = %name, %command, op_id, "command started");
        let dreq = DeployRequest {
            name: name.clone(),
            namespace: self.namespace(&name),
            tag: Some(staging.tag.clone()),
            overrides: staging.overrides.clone(),
        };
        let this = self.clone();
        let handle = runtime::runtime().spawn(async move {
            let started = Instant::now();
            let d = &this.inner.deployer;
            let reply = match command {
                Command::Create => d.create(&dreq).await,
                Command::Restore => d.restore(&dreq).await,
                Command::Update => d.update(&dreq).await,
                Command::Delete => d.delete(&dreq).await,
                Command::Cleanup => d.cleanup(&dreq).await,
            };
            tracing::debug!(name = %dreq.name, %command, ms = started.elapsed().as_millis() as u64, "backend answered");
            let settle = this.inner.deployer.settles_by_check();
            let r = this
                .finish_op(&dreq, command, op_id, reply, None, settle)
                .await;
            if let Err(e) = &r {
                tracing::warn!(name = %dreq.name, %command, op_id, "the command's result could not be recorded; reconcile will settle it: {e}");
                lock(&this.inner.abandoned_ops).insert(op_id);
            }
            lock(&this.inner.running_ops).remove(&op_id);
            r
        });
        Ok(PendingCommand {
            staging,
            audit_id: op_id,
            handle,
        })
    }

    /// Blocking form of [`StagingManager::start_async`].
    pub fn start(&self, req: CommandRequest) -> Result<PendingCommand> {
        runtime::block_on(self.start_async(req))
    }

    pub(super) async fn finish_op(
        &self,
        dreq: &DeployRequest,
        command: Command,
        op_id: i64,
        reply: BackendReply,
        reason_prefix: Option<String>,
        settle_by_check: bool,
    ) -> Result<Option<Staging>> {
        let success = reply.outcome == BackendOutcome::Success;
        let reason = reply.reason().map(|r| {
            let r = redact(r, &dreq.overrides);
            match &reason_prefix {
                Some(p) => format!("{p}: {r}"),
                None => r,
            }
        });
        let output = bound_output(&redact(&reply.output, &dreq.overrides));
        let store = self.inner.store.clone();
        let name = dreq.name.clone();
        let exit_code = reply.exit_code;
        let finished = blocking(move || {
            store.finish(&Finish {
                name: &name,
                op_id,
                command,
                success,
                settle_by_check,
                reason,
                exit_code,
                output: &output,
                now: Utc::now(),
            })
        })
        .await?;
        self.emit(finished.events);
        Ok(finished.staging)
    }

    async fn run_async(&self, req: CommandRequest) -> Result<Option<Staging>> {
        self.run_with_async(req, CommandOptions::default()).await
    }

    /// Start a command with options ([`StagingManager::start_with_async`]) and wait for the
    /// backend: the staging afterwards (`None`: removed by cleanup).
    pub async fn run_with_async(
        &self,
        req: CommandRequest,
        opts: CommandOptions,
    ) -> Result<Option<Staging>> {
        self.start_with_async(req, opts).await?.wait_async().await
    }

    /// Blocking form of [`StagingManager::run_with_async`].
    pub fn run_with(&self, req: CommandRequest, opts: CommandOptions) -> Result<Option<Staging>> {
        runtime::block_on(self.run_with_async(req, opts))
    }

    fn expect_staging(name: &str, s: Option<Staging>) -> Result<Staging> {
        s.ok_or_else(|| Error::NotFound {
            what: "staging",
            name: name.to_string(),
        })
    }

    /// Create a staging and wait for the backend: the staging is then Running or Failure
    /// (with the reason). See [`StagingManager::start_async`] for the errors.
    pub async fn create_async(
        &self,
        name: &str,
        tag: &str,
        overrides: Vec<Override>,
    ) -> Result<Staging> {
        let r = self
            .run_async(CommandRequest::Create {
                name: name.into(),
                tag: tag.into(),
                overrides,
            })
            .await?;
        Self::expect_staging(name, r)
    }

    /// Blocking form of [`StagingManager::create_async`].
    pub fn create(&self, name: &str, tag: &str, overrides: Vec<Override>) -> Result<Staging> {
        runtime::block_on(self.create_async(name, tag, overrides))
    }

    /// Update a Running or Failure staging to `tag` and wait: Running or Failure.
    /// `overrides` replace the stored ones; `None` keeps them.
    pub async fn update_async(
        &self,
        name: &str,
        tag: &str,
        overrides: Option<Vec<Override>>,
    ) -> Result<Staging> {
        let r = self
            .run_async(CommandRequest::Update {
                name: name.into(),
                tag: tag.into(),
                overrides,
            })
            .await?;
        Self::expect_staging(name, r)
    }

    /// Blocking form of [`StagingManager::update_async`].
    pub fn update(
        &self,
        name: &str,
        tag: &str,
        overrides: Option<Vec<Override>>,
    ) -> Result<Staging> {
        runtime::block_on(self.update_async(name, tag, overrides))
    }

    /// Archive a Running or Failure staging (workloads removed, volumes kept) and wait:
    /// Archived or Failure.
    pub async fn delete_async(&self, name: &str) -> Result<Staging> {
        let r = self
            .run_async(CommandRequest::Delete { name: name.into() })
            .await?;
        Self::expect_staging(name, r)
    }

    /// Blocking form of [`StagingManager::delete_async`].
    pub fn delete(&self, name: &str) -> Result<Staging> {
        runtime::block_on(self.delete_async(name))
    }

    /// Recreate an Archived staging with its last settings and wait: Running or Failure.
    pub async fn restore_async(&self, name: &str) -> Result<Staging> {
        let r = self
            .run_async(CommandRequest::Restore { name: name.into() })
            .await?;
        Self::expect_staging(name, r)
    }

    /// Blocking form of [`StagingManager::restore_async`].
    pub fn restore(&self, name: &str) -> Result<Staging> {
        runtime::block_on(self.restore_async(name))
    }

    /// Remove an Archived or Failure staging (volumes, claims, certificates, then its record)
    /// and wait: `None` when gone, the staging in Failure otherwise. Its audit rows stay.
    pub async fn cleanup_async(&self, name: &str) -> Result<Option<Staging>> {
        self.run_async(CommandRequest::Cleanup { name: name.into() })
            .await
    }

    /// Blocking form of [`StagingManager::cleanup_async`].
    pub fn cleanup(&self, name: &str) -> Result<Option<Staging>> {
        runtime::block_on(self.cleanup_async(name))
    }

    // ----- queries -----

    /// One staging (`NotFound` if there is none).
    pub fn get(&self, name: &str) -> Result<Staging> {
        validate_name(name)?;
        let r = self.inner.store.get(name)?.map(|r| r.staging);
        Self::expect_staging(name, r)
    }

    /// Async form of [`StagingManager::get`].
    pub async fn get_async(&self, name: &str) -> Result<Staging> {
        let this = self.clone();
        let name = name.to_string();
        blocking(move || this.get(&name)).await
    }

    /// All stagings, sorted by name.
    pub fn list(&self) -> Result<Vec<Staging>> {
        Ok(self
            .inner
            .store
            .list()?
            .into_iter()
            .map(|r| r.staging)
            .collect())
    }

    /// Async form of [`StagingManager::list`].
    pub async fn list_async(&self) -> Result<Vec<Staging>> {
        let this = self.clone();
        blocking(move || this.list()).await
    }

    /// Audit rows matching `query`, oldest first. Rows outlive their staging's record.
    pub fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.inner.store.audit(query)
    }

    /// Async form of [`StagingManager::audit_log`].
    pub async fn audit_log_async(&self, query: AuditQuery) -> Result<Vec<AuditEntry>> {
        let this = self.clone();
        blocking(move || this.audit_log(&query)).await
    }

    /// Events of every process sharing the store with a sequence number above `after`
    /// (oldest first, at most `limit`): poll this to follow changes made elsewhere.
    pub fn events_since(&self, after: i64, limit: usize) -> Result<Vec<Event>> {
        self.inner.store.events_since(after, limit)
    }

    /// Wait up to `timeout` for events of any process sharing the store with a sequence number
    /// above `after` and return them (oldest first, at most `limit`; empty when none came).
    /// One reader per manager follows the store for every waiter: this process's own events
    /// wake it at once, and so does, with PostgreSQL, a `NOTIFY` from another process; other
    /// processes' events on other stores are seen within 200 ms. Events of one staging come
    /// in the order they happened, and none is skipped: follow the feed by passing the last
    /// `seq` seen.
    pub async fn wait_events_async(
        &self,
        after: i64,
        limit: usize,
        timeout: Duration,
    ) -> Result<Vec<Event>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let feed = &self.inner.feed;
        let mut head = feed.watch(&self.inner.store);
        loop {
            head.borrow_and_update();
            let batch = match feed.take(after, limit) {
                Take::Events(batch) => batch,
                Take::Behind => {
                    let store = self.inner.store.clone();
                    blocking(move || store.events_since(after, limit)).await?
                }
            };
            if !batch.is_empty() {
                return Ok(batch);
            }
            match tokio::time::timeout_at(deadline, head.changed()).await {
                Ok(Ok(())) => {}
                // Timed out (or the feed is gone, which it is not while the manager lives).
                _ => return Ok(batch),
            }
        }
    }

    /// Call `callback` for every event of every process sharing the store (this one
    /// included), in feed order, from `after` on (`None`: from now), until the returned handle
    /// is dropped. With PostgreSQL, a subscriber in one process sees the status changes made by
    /// the others as they commit (`LISTEN/NOTIFY`); other stores are polled. Callbacks run on
    /// the shared runtime, one at a time; keep them short. A panicking callback is caught and
    /// logged; a store that cannot be read is retried every second.
    pub fn follow(
        &self,
        after: Option<i64>,
        callback: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Result<FeedFollower> {
        let start = match after {
            Some(a) => a,
            None => self.last_event_seq()?,
        };
        let this = self.clone();
        let handle = runtime::runtime().spawn(async move {
            let mut after = start;
            loop {
                match this
                    .wait_events_async(after, 1000, Duration::from_secs(30))
                    .await
                {
                    Ok(batch) => {
                        for e in batch {
                            after = e.seq;
                            if catch_unwind(AssertUnwindSafe(|| callback(&e))).is_err() {
                                tracing::error!(seq = e.seq, "an event callback panicked");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!("following the event feed: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(FeedFollower { handle })
    }

    /// Blocking form of [`StagingManager::wait_events_async`].
    pub fn wait_events(&self, after: i64, limit: usize, timeout: Duration) -> Result<Vec<Event>> {
        runtime::block_on(self.wait_events_async(after, limit, timeout))
    }

    /// The sequence number of the newest event in the store's feed (0 when empty): start
    /// [`StagingManager::events_since`] from here to see only what happens next.
    pub fn last_event_seq(&self) -> Result<i64> {
        self.inner.store.last_event_seq()
    }

    /// The named URLs of staging `name` from its backend ([`Deployer::info`]: the Octopod
    /// dialect's `info` script, a two-column CSV). `NotFound` without such a staging,
    /// `Unsupported` for a backend without info, `Backend` when the script fails.
    pub async fn info_async(&self, name: &str) -> Result<Vec<NamedUrl>> {
        let staging = self.get_async(name).await?;
        let dreq = DeployRequest {
            name: staging.name.clone(),
            namespace: self.namespace(&staging.name),
            tag: Some(staging.tag.clone()),
            overrides: staging.overrides.clone(),
        };
        self.inner.deployer.info(&dreq).await
    }

    /// Blocking form of [`StagingManager::info_async`].
    pub fn info(&self, name: &str) -> Result<Vec<NamedUrl>> {
        runtime::block_on(self.info_async(name))
    }

    pub(super) fn namespace(&self, name: &str) -> String {
        format!("{}{name}", self.inner.opts.namespace_prefix)
    }

    /// Clean up every Archived staging archived for longer than `older_than` (default: the
    /// retention option, 14 days), and drop events older than that from the event feed.
    /// Returns the names removed; a staging whose cleanup failed is left in Failure.
    pub async fn clean_archived_async(&self, older_than: Option<Duration>) -> Result<Vec<String>> {
        let older_than = older_than.unwrap_or(self.inner.opts.retention);
        let cutoff =
            Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        let list = self.list_async().await?;
        let mut removed = Vec::new();
        for s in list {
            if s.status != Status::Archived
                || s.command_in_progress.is_some()
                || s.status_since > cutoff
            {
                continue;
            }
            match self.cleanup_async(&s.name).await {
                Ok(None) => removed.push(s.name),
                Ok(Some(_)) => tracing::warn!(name = %s.name, "retention cleanup failed"),
                Err(e) => tracing::warn!(name = %s.name, "retention cleanup refused: {e}"),
            }
        }
        let store = self.inner.store.clone();
        blocking(move || store.prune_events(cutoff)).await?;
        Ok(removed)
    }

    /// Blocking form of [`StagingManager::clean_archived_async`].
    pub fn clean_archived(&self, older_than: Option<Duration>) -> Result<Vec<String>> {
        runtime::block_on(self.clean_archived_async(older_than))
    }
}
