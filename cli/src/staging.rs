//! `capsa staging …`: the staging lifecycle from the command line.
//!
//! The state is `--state FILE` (or `CAPSA_STAGING_STATE`), else `<store>/.capsa/staging.db`
//! of `--store` / `CAPSA_STORE`; `--state postgres://…` shares the state of many hosts in
//! PostgreSQL. The backend is `--backend mock` (in-process, everything
//! succeeds unless told otherwise with `--mock-fail CALL`), `--backend script:DIR` (DM's
//! control scripts, or Octopod's with `--dialect octopod`), `--backend octopod:DIR`, or
//! `--backend kubernetes:TEMPLATE_DIR` (with `--kubeconfig FILE`, else `KUBECONFIG`).

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use capsa::error::one_line;
use capsa::staging;
use capsa::staging::{
    AuditEntry, AuditQuery, BackendReply, BackendSettings, BackendSpec, CommandOptions,
    CommandRequest, Deployer, Event, EventKind, Expiry, ManagerOptions, MockCall, MockDeployer,
    Override, OverrideEdit, Scope, Staging, StagingManager, StateStore, Status, Visibility,
};
use capsa::Error;

use crate::output::print_json;
use crate::remote::Remote;
use crate::Global;

/// Options shared by every staging subcommand: state file, backend, timeouts.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// State file (default: <store>/.capsa/staging.db), or a `postgres://` URL for a state
    /// shared by several hosts.
    #[arg(long, env = "CAPSA_STAGING_STATE", value_name = "FILE|URL")]
    state: Option<PathBuf>,
    /// Key file that seals private override values at rest (created, mode 0600, if missing).
    /// Default for a state file: beside it with the extension `.key`
    /// (<store>/.capsa/staging.key); a `postgres://` state has no default and refuses private
    /// values without one (give every host a copy of the same file).
    #[arg(long, env = capsa::staging::KEY_FILE_ENV, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Deploy backend: `mock`, `script:DIR`, `octopod:DIR` or `kubernetes:TEMPLATE_DIR`.
    #[arg(
        long,
        env = "CAPSA_STAGING_BACKEND",
        default_value = "mock",
        value_name = "BACKEND"
    )]
    backend: String,
    /// Seconds after which a pending status becomes Failure on reconcile.
    #[arg(long, value_name = "SECS", default_value_t = staging::DEFAULT_PENDING_TIMEOUT.as_secs())]
    pending_timeout: u64,
    /// Seconds a script may run before it is killed.
    #[arg(long, value_name = "SECS", default_value_t = staging::DEFAULT_SCRIPT_TIMEOUT.as_secs())]
    script_timeout: u64,
    /// Kubernetes backend: the kubeconfig file (default: `KUBECONFIG`, `~/.kube/config`, else
    /// the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubernetes backend: seconds create/update wait for the workloads to be ready.
    #[arg(long, value_name = "SECS", default_value_t = staging::DEFAULT_READY_TIMEOUT.as_secs())]
    ready_timeout: u64,
    /// `--project-name` passed to scripts.
    #[arg(long, env = "CAPSA_PROJECT_NAME", default_value = staging::DEFAULT_PROJECT_NAME)]
    project_name: String,
    /// `--base-domain` passed to scripts.
    #[arg(long, env = "CAPSA_BASE_DOMAIN", default_value = staging::DEFAULT_BASE_DOMAIN)]
    base_domain: String,
    /// `--namespace` passed to scripts: the installation's one namespace, or a pattern with
    /// `{name}` (`stg-{name}`) for one per staging.
    #[arg(long, env = "CAPSA_NAMESPACE", default_value = staging::script::DEFAULT_SCRIPT_NAMESPACE)]
    namespace: String,
    /// `script:DIR` backend: the scripts' dialect, `dm` (core's default) or `octopod`.
    #[arg(long, env = "CAPSA_SCRIPT_DIALECT")]
    dialect: Option<String>,
    /// Script backends: when a command's status settles: `check` (as DM: pending until
    /// `check` / `archive_check` passes, settled by `reconcile`) or `exit` (on the script's
    /// exit status). Default: core's, `check`.
    #[arg(long, env = "CAPSA_SETTLE", value_name = "check|exit")]
    settle: Option<String>,
    /// Who is issuing the command (audit log); default `$USER`.
    #[arg(long, env = "CAPSA_ACTOR")]
    actor: Option<String>,
    /// Notifications file (TOML: `[[webhook]]` and `[[command]]` hooks called on every status
    /// change). At exit a command waits up to the file's `grace` for queued deliveries.
    #[arg(long, env = capsa::staging::NOTIFICATIONS_ENV, value_name = "FILE")]
    notifications: Option<PathBuf>,
    /// Mock backend: make this call fail (create, update, delete, check, cleanup,
    /// archive_check, tag_check); repeatable.
    #[arg(long, value_name = "CALL")]
    mock_fail: Vec<String>,
    /// Mock backend: every command takes this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    mock_delay: u64,
    /// Mock backend: every command waits while FILE exists (remove it to let them finish).
    #[arg(long, value_name = "FILE")]
    mock_hold: Option<PathBuf>,
}

/// Settings given to create and update.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Staging name (3-40 of a-z, 0-9, '-', starting with a letter).
    name: String,
    /// Tag to deploy.
    #[arg(long)]
    tag: String,
    /// App environment override KEY=VALUE (repeatable).
    #[arg(long = "app", value_name = "KEY=VALUE")]
    app: Vec<String>,
    /// Staging override KEY=VALUE (repeatable).
    #[arg(long = "staging", value_name = "KEY=VALUE")]
    staging: Vec<String>,
    /// Mark the override KEY as private: stored, passed to the backend, never shown.
    #[arg(long = "private", value_name = "KEY")]
    private: Vec<String>,
    /// Time to live (`3d`, `12h`, `90m`): reconcile archives the staging once it has passed;
    /// `never` drops a stored one. Without it an update keeps the stored expiry.
    #[arg(long, value_name = "DURATION")]
    ttl: Option<String>,
    /// Return at once with the pending status; the command finishes in the background.
    #[arg(long)]
    no_wait: bool,
}

/// Per-key override changes of an update (DM's and Octopod's flags): the other keys are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct Edits {
    /// Set one app environment override KEY=VALUE, keeping the others (repeatable).
    #[arg(long = "set-app-env-override", value_name = "KEY=VALUE")]
    set_app: Vec<String>,
    /// Remove one app environment override KEY, keeping the others (repeatable).
    #[arg(long = "unset-app-env-override", value_name = "KEY")]
    unset_app: Vec<String>,
    /// Set one staging override KEY=VALUE, keeping the others (repeatable).
    #[arg(long = "set-staging-override", value_name = "KEY=VALUE")]
    set_staging: Vec<String>,
    /// Remove one staging override KEY, keeping the others (repeatable).
    #[arg(long = "unset-staging-override", value_name = "KEY")]
    unset_staging: Vec<String>,
}

/// A command on an existing staging.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Staging name.
    name: String,
    /// Return at once with the pending status; the command finishes in the background.
    #[arg(long)]
    no_wait: bool,
}

/// `capsa staging` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StagingCommand {
    /// Create a staging and wait for the backend.
    Create {
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        common: Common,
    },
    /// Update a staging's tag, and its overrides if any are given (`--app`/`--staging`
    /// replace the stored ones; `--set-…`/`--unset-…` change single keys and keep the rest;
    /// without any, the stored ones are kept).
    Update {
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        edits: Edits,
        /// Drop every stored override (when no new one is given).
        #[arg(long)]
        clear_overrides: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Archive a staging: workloads removed, volumes kept.
    Delete {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        common: Common,
    },
    /// Recreate an archived staging with its last settings.
    Restore {
        #[command(flatten)]
        target: Target,
        /// Time to live from now (`3d`); without it an expiry that has passed is dropped.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Remove an archived or failed staging for good (its audit log stays).
    Cleanup {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        common: Common,
    },
    /// List stagings.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Show one staging.
    Show {
        /// Staging name.
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Print the named URLs of a staging (the Octopod dialect's `info` script), one
    /// `NAME URL` a line.
    Info {
        /// Staging name.
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Show the audit log (of one staging, or all).
    Log {
        /// Staging name.
        name: Option<String>,
        /// Only the last N rows.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        common: Common,
    },
    /// Ask the backend about due stagings, finish or fail interrupted commands, archive
    /// expired ones; once, or as a status updater with `--every`.
    Reconcile {
        /// Check every staging now, whatever the check interval.
        #[arg(long)]
        all: bool,
        /// Also clean up stagings archived for longer than the retention (14 days).
        #[arg(long)]
        clean_archived: bool,
        /// Keep running: a round every DURATION (`30s`, as DM's status updater) until SIGTERM
        /// or SIGINT. Several hosts may run it on one shared PostgreSQL state: each staging is
        /// checked by one of them once a period.
        #[arg(long, value_name = "DURATION")]
        every: Option<String>,
        /// With `--every`: check a stable staging when this long has passed since its last
        /// check (default: the period).
        #[arg(long, value_name = "DURATION")]
        check_interval: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Print events as they happen (from every process sharing the state; with PostgreSQL,
    /// woken by LISTEN/NOTIFY).
    Watch {
        /// Start from the oldest event kept instead of now.
        #[arg(long)]
        from_start: bool,
        /// Exit after this many events.
        #[arg(long)]
        count: Option<usize>,
        #[command(flatten)]
        common: Common,
    },
}

fn state_path(common: &Common, global: &Global) -> anyhow::Result<PathBuf> {
    if let Some(p) = &common.state {
        return Ok(p.clone());
    }
    let Some(store) = &global.store else {
        return Err(Error::InvalidArgument {
            what: "state file",
            reason: "no state file: pass --state FILE (or CAPSA_STAGING_STATE), or a store with \
                     --store DIR (or CAPSA_STORE) to use <store>/.capsa/staging.db"
                .into(),
        }
        .into());
    };
    Ok(capsa::staging::default_state_path(store)?)
}

fn deployer(common: &Common) -> anyhow::Result<Arc<dyn Deployer>> {
    let spec = BackendSpec::parse(&common.backend)?;
    if spec != BackendSpec::Mock {
        let settings = BackendSettings {
            project_name: common.project_name.clone(),
            base_domain: common.base_domain.clone(),
            script_timeout: Duration::from_secs(common.script_timeout),
            namespace: staging::script::ScriptNamespace::parse(&common.namespace)?,
            dialect: common
                .dialect
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or_default(),
            settle: common
                .settle
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or_default(),
            kubeconfig: common.kubeconfig.clone(),
            ready_timeout: Duration::from_secs(common.ready_timeout),
        };
        return Ok(spec.deployer(&settings)?);
    }
    let mock = Arc::new(MockDeployer::new());
    for call in &common.mock_fail {
        let c = MockCall::parse(call)?;
        mock.set_default(c, BackendReply::failed(format!("mock {call} told to fail")));
    }
    let commands = [
        MockCall::Create,
        MockCall::Update,
        MockCall::Delete,
        MockCall::Cleanup,
    ];
    if common.mock_delay > 0 {
        for c in commands {
            mock.set_delay(c, Duration::from_millis(common.mock_delay));
        }
    }
    if let Some(file) = common.mock_hold.clone() {
        // Held while the file exists: a test removes it to let the command finish.
        for c in commands {
            mock.hold(c);
        }
        let held = mock.clone();
        std::thread::spawn(move || {
            while file.exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
            for c in commands {
                held.release(c);
            }
        });
    }
    Ok(mock)
}

/// A manager that, when the command is done with it, gives the queued notifications the
/// configured grace period to go out and says on stderr how many did not.
struct Opened(StagingManager);

impl std::ops::Deref for Opened {
    type Target = StagingManager;
    fn deref(&self) -> &StagingManager {
        &self.0
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let grace = self.0.options().notifications.grace;
        let left = self.0.flush_notifications(grace);
        if left > 0 {
            eprintln!("warning: {left} notification(s) not delivered within {grace:?}");
        }
    }
}

fn manager(common: &Common, global: &Global, check_all: bool) -> anyhow::Result<Opened> {
    manager_with(common, global, check_all.then_some(Duration::ZERO))
}

fn manager_with(
    common: &Common,
    global: &Global,
    check_interval: Option<Duration>,
) -> anyhow::Result<Opened> {
    Ok(Opened(open_manager(common, global, check_interval)?))
}

/// The staging manager the options name (state, backend, key file, notifications…), for a
/// caller that keeps it open (`capsa serve`).
pub fn open_manager(
    common: &Common,
    global: &Global,
    check_interval: Option<Duration>,
) -> anyhow::Result<StagingManager> {
    let path = state_path(common, global)?;
    let mut opts = ManagerOptions {
        pending_timeout: Duration::from_secs(common.pending_timeout),
        key_file: common.key_file.clone(),
        ..ManagerOptions::default()
    };
    if let Some(a) = &common.actor {
        opts.actor = a.clone();
    }
    if let Some(i) = check_interval {
        opts.check_interval = i;
    }
    if let Some(f) = &common.notifications {
        opts.notifications = staging::NotifyConfig::load(f)?;
    }
    Ok(StagingManager::open_with(&path, deployer(common)?, opts)?)
}

/// The overrides `--app` / `--staging` give; `--private` may also name a key of `also` (the
/// per-key sets of an update).
fn overrides(s: &Settings, also: &[&str]) -> anyhow::Result<Vec<Override>> {
    let mut out = Vec::new();
    for (scope, list) in [(Scope::App, &s.app), (Scope::Staging, &s.staging)] {
        for kv in list {
            let mut o = Override::parse(scope, Visibility::Public, kv)?;
            if s.private.contains(&o.key) {
                o.visibility = Visibility::Private;
            }
            out.push(o);
        }
    }
    for k in &s.private {
        if !out.iter().any(|o| &o.key == k) && !also.contains(&k.as_str()) {
            return Err(Error::InvalidArgument {
                what: "--private",
                reason: format!("no --app or --staging override has the key {k:?}"),
            }
            .into());
        }
    }
    Ok(out)
}

fn expiry(ttl: Option<&str>) -> anyhow::Result<Expiry> {
    Ok(ttl.map(Expiry::parse).transpose()?.unwrap_or_default())
}

/// The per-key changes, `--private` marking the set ones it names.
fn edits(e: &Edits, private: &[String]) -> anyhow::Result<Vec<OverrideEdit>> {
    let mut out = Vec::new();
    for (scope, set, unset) in [
        (Scope::App, &e.set_app, &e.unset_app),
        (Scope::Staging, &e.set_staging, &e.unset_staging),
    ] {
        for kv in set {
            let mut o = Override::parse(scope, Visibility::Public, kv)?;
            if private.contains(&o.key) {
                o.visibility = Visibility::Private;
            }
            out.push(OverrideEdit::Set(o));
        }
        for key in unset {
            out.push(OverrideEdit::Unset {
                scope,
                key: key.clone(),
            });
        }
    }
    Ok(out)
}

/// Run one `capsa staging` subcommand.
pub fn run(cmd: StagingCommand, global: &Global) -> anyhow::Result<()> {
    if global.server.server.is_some() && matches!(cmd, StagingCommand::Reconcile { .. }) {
        return Err(Error::Unsupported {
            what: "reconcile over --server (the server runs its own status updater)".into(),
        }
        .into());
    }
    match cmd {
        StagingCommand::Create { settings, common } => {
            let req = CommandRequest::Create {
                name: settings.name.clone(),
                tag: settings.tag.clone(),
                overrides: overrides(&settings, &[])?,
            };
            let opts = CommandOptions {
                expiry: expiry(settings.ttl.as_deref())?,
                ..CommandOptions::default()
            };
            command(req, opts, settings.no_wait, &common, global)
        }
        StagingCommand::Update {
            settings,
            edits: e,
            clear_overrides,
            common,
        } => {
            let edits = edits(&e, &settings.private)?;
            let set_keys: Vec<&str> = edits
                .iter()
                .filter_map(|e| match e {
                    OverrideEdit::Set(o) => Some(o.key.as_str()),
                    OverrideEdit::Unset { .. } => None,
                })
                .collect();
            let given = overrides(&settings, &set_keys)?;
            let req = CommandRequest::Update {
                name: settings.name.clone(),
                tag: settings.tag.clone(),
                overrides: (clear_overrides || !given.is_empty()).then_some(given),
            };
            let opts = CommandOptions {
                expiry: expiry(settings.ttl.as_deref())?,
                edits,
                ..CommandOptions::default()
            };
            command(req, opts, settings.no_wait, &common, global)
        }
        StagingCommand::Delete { target, common } => command(
            CommandRequest::Delete { name: target.name },
            CommandOptions::default(),
            target.no_wait,
            &common,
            global,
        ),
        StagingCommand::Restore {
            target,
            ttl,
            common,
        } => command(
            CommandRequest::Restore { name: target.name },
            CommandOptions {
                expiry: expiry(ttl.as_deref())?,
                ..CommandOptions::default()
            },
            target.no_wait,
            &common,
            global,
        ),
        StagingCommand::Cleanup { target, common } => command(
            CommandRequest::Cleanup { name: target.name },
            CommandOptions::default(),
            target.no_wait,
            &common,
            global,
        ),
        StagingCommand::List { common } => {
            let list = match Remote::of(&global.server)? {
                Some(r) => r.list()?,
                None => manager(&common, global, false)?.list()?,
            };
            if global.json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("no stagings");
            }
            for s in &list {
                let expires = s
                    .expires_at
                    .map(|t| format!(" expires {}", t.format("%Y-%m-%d %H:%M:%S")))
                    .unwrap_or_default();
                println!(
                    "{:<40} {:<14} {:<20} since {}{expires}",
                    s.name,
                    status_text(s),
                    s.tag,
                    s.status_since.format("%Y-%m-%d %H:%M:%S")
                );
            }
            Ok(())
        }
        StagingCommand::Show { name, common } => {
            let s = match Remote::of(&global.server)? {
                Some(r) => r.get_staging(&name)?,
                None => manager(&common, global, false)?.get(&name)?,
            };
            if global.json {
                return print_json(&s);
            }
            print_staging(&s);
            Ok(())
        }
        StagingCommand::Info { name, common } => {
            let urls = match Remote::of(&global.server)? {
                Some(r) => r.info(&name)?,
                None => manager(&common, global, false)?.info(&name)?,
            };
            if global.json {
                return print_json(&urls);
            }
            for u in &urls {
                println!("{} {}", one_line(&u.name), one_line(&u.url));
            }
            Ok(())
        }
        StagingCommand::Log {
            name,
            limit,
            common,
        } => {
            let q = AuditQuery {
                name,
                after_id: None,
                limit,
            };
            let rows = match Remote::of(&global.server)? {
                Some(r) => r.audit_log(&q)?,
                None => manager(&common, global, false)?.audit_log(&q)?,
            };
            if global.json {
                return print_json(&rows);
            }
            for r in &rows {
                print_audit(r);
            }
            Ok(())
        }
        StagingCommand::Reconcile {
            all,
            clean_archived,
            every: Some(every),
            check_interval,
            common,
        } => {
            let every = staging::parse_duration("--every", &every)?;
            let interval = match &check_interval {
                Some(i) => staging::parse_duration("--check-interval", i)?,
                None if all => Duration::ZERO,
                None => every,
            };
            let m = manager_with(&common, global, Some(interval))?;
            status_updater(&m, every, clean_archived)
        }
        StagingCommand::Reconcile {
            all,
            clean_archived,
            every: None,
            check_interval,
            common,
        } => {
            let interval = check_interval
                .map(|i| staging::parse_duration("--check-interval", &i))
                .transpose()?;
            let m = manager_with(&common, global, interval.or(all.then_some(Duration::ZERO)))?;
            let report = m.reconcile()?;
            let cleaned = if clean_archived {
                m.clean_archived(None)?
            } else {
                Vec::new()
            };
            if global.json {
                return print_json(&serde_json::json!({ "report": report, "cleaned": cleaned }));
            }
            println!(
                "checked {}, changed {}, transient errors {}, pending finished {}, pending failed {}, archive problems {}, expired {}, skipped {}",
                report.checked,
                report.changed,
                report.transient_errors,
                report.resolved_pending,
                report.failed_pending,
                report.archive_problems,
                report.expired,
                report.skipped
            );
            for c in cleaned {
                println!("cleaned up {c}");
            }
            Ok(())
        }
        StagingCommand::Watch {
            from_start,
            count,
            common,
        } => {
            let mut print = event_printer(count, global.json);
            // On stderr, so that stdout holds events only; tells a caller the watch is live.
            let live = |after: i64| eprintln!("watching for events after #{after}");
            match Remote::of(&global.server)? {
                Some(r) => r.follow_events(from_start.then_some(0), live, print),
                None => watch(
                    &*manager(&common, global, false)?,
                    from_start,
                    live,
                    &mut print,
                ),
            }
        }
    }
}

fn status_text(s: &Staging) -> String {
    match (s.status, s.command_in_progress) {
        (st, Some(c)) if !st.is_pending() => format!("{st} ({c}…)"),
        (st, _) => st.to_string(),
    }
}

fn print_staging(s: &Staging) {
    println!("{}: {}", s.name, status_text(s));
    println!("  tag:        {}", s.tag);
    if let Some(r) = &s.reason {
        println!("  reason:     {}", one_line(r));
    }
    for o in &s.overrides {
        println!(
            "  override:   {} {}={}",
            o.scope,
            o.key,
            one_line(o.shown_value())
        );
    }
    println!(
        "  created:    {}",
        s.created_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!(
        "  status since: {}",
        s.status_since.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if let Some(c) = s.checked_at {
        println!("  checked:    {}", c.format("%Y-%m-%d %H:%M:%S UTC"));
    }
    if let Some(t) = s.expires_at {
        println!("  expires:    {}", t.format("%Y-%m-%d %H:%M:%S UTC"));
    }
}

/// Install the SIGTERM and SIGINT handlers (inside the runtime) and return what resolves to
/// the name of the first that arrives.
pub fn termination() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// `reconcile --every`: run core's reconcile loop until SIGTERM or SIGINT, then stop it (a
/// round in progress is dropped, its leases released) and exit 0.
fn status_updater(m: &StagingManager, every: Duration, clean_archived: bool) -> anyhow::Result<()> {
    let wait = capsa::runtime::block_on(async {
        let signal = termination()?;
        let lp = m.spawn_reconcile_loop_with(staging::ReconcileLoopOptions {
            every,
            clean_archived,
        });
        // On stderr: tells a caller (and a test) that the loop and its signal handlers are up.
        eprintln!(
            "reconciling every {} s; SIGTERM or SIGINT stops",
            every.as_secs_f64()
        );
        let name = signal.await;
        lp.stop_async().await;
        Ok::<_, std::io::Error>(name)
    });
    let name = wait.context("cannot install the signal handlers")?;
    eprintln!("{name}: reconcile loop stopped");
    Ok(())
}

fn print_audit(r: &AuditEntry) {
    let st = |s: Option<Status>| s.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
    let mut line = format!(
        "#{:<5} {} {:<9} {:<20} by {:<10} {:<8} {} -> {}",
        r.id,
        r.started_at.format("%Y-%m-%d %H:%M:%S"),
        r.action,
        r.name,
        one_line(&r.actor),
        r.outcome.as_str(),
        st(r.status_before),
        st(r.status_after),
    );
    if let Some(t) = &r.tag {
        line.push_str(&format!(" tag={t}"));
    }
    if !r.overrides.is_empty() {
        line.push_str(&format!(
            " overrides=[{}]",
            one_line(&r.overrides.join(", "))
        ));
    }
    if let Some(d) = r.duration_ms {
        line.push_str(&format!(" {d}ms"));
    }
    if let Some(reason) = &r.reason {
        line.push_str(&format!("\n        reason: {}", one_line(reason)));
    }
    println!("{line}");
}

fn event_line(e: &Event) -> String {
    let st = |s: &Option<Status>| s.map(|s| s.to_string()).unwrap_or_else(|| "(none)".into());
    match &e.kind {
        EventKind::StatusChanged { from, to, reason } => format!(
            "{} {}: {} -> {}{}",
            e.at.format("%H:%M:%S%.3f"),
            e.name,
            st(from),
            st(to),
            reason
                .as_ref()
                .map(|r| format!(" ({})", one_line(r)))
                .unwrap_or_default()
        ),
        EventKind::CommandFinished {
            action,
            outcome,
            reason,
            ..
        } => format!(
            "{} {}: {action} {}{}",
            e.at.format("%H:%M:%S%.3f"),
            e.name,
            outcome.as_str(),
            reason
                .as_ref()
                .map(|r| format!(" ({})", one_line(r)))
                .unwrap_or_default()
        ),
    }
}

/// Print each event (a line, or JSON with `--json`) until `count` of them were printed:
/// answers whether to go on.
fn event_printer(
    count: Option<usize>,
    json: bool,
) -> impl FnMut(&capsa::staging::Event) -> anyhow::Result<bool> {
    let mut seen = 0usize;
    move |e| {
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
        } else {
            writeln!(out, "{}", event_line(e))?;
        }
        out.flush()?;
        seen += 1;
        Ok(count.is_none_or(|c| seen < c))
    }
}

fn watch(
    m: &StagingManager,
    from_start: bool,
    live: impl FnOnce(i64),
    each: &mut impl FnMut(&capsa::staging::Event) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut after = if from_start { 0 } else { m.last_event_seq()? };
    live(after);
    loop {
        let batch = m.wait_events(
            after,
            capsa::staging::DEFAULT_EVENTS_LIMIT,
            Duration::from_secs(5),
        )?;
        for e in &batch {
            after = e.seq;
            if !each(e)? {
                return Ok(());
            }
        }
    }
}

fn command(
    req: CommandRequest,
    opts: CommandOptions,
    no_wait: bool,
    common: &Common,
    global: &Global,
) -> anyhow::Result<()> {
    let name = req.name().to_string();
    let cmd = req.command();
    let remote = Remote::of(&global.server)?;
    let after = match (remote, no_wait) {
        (Some(r), no_wait) => r.command(&req, &opts, !no_wait)?,
        (None, true) => return detach(req.name(), common, global),
        (None, false) => {
            let m = manager(common, global, false)?;
            let pending = m.start_with(req, opts)?;
            pending.wait()?
        }
    };
    if global.json {
        match &after {
            Some(s) => print_json(s)?,
            None => {
                print_json(&serde_json::json!({ "name": name, "status": null, "removed": true }))?
            }
        }
    } else {
        match &after {
            Some(s) => {
                println!("{}: {}", s.name, status_text(s));
                if let Some(r) = &s.reason {
                    println!("  reason: {}", one_line(r));
                }
            }
            None => println!("{name}: removed"),
        }
    }
    match after {
        Some(s) if s.status == Status::Failure => Err(Error::Backend {
            backend: match &global.server.server {
                Some(url) => url.clone(),
                None => BackendSpec::parse(&common.backend)?.name().into(),
            },
            message: format!("{cmd} {name} failed: {}", s.reason.unwrap_or_default()),
        }
        .into()),
        _ => Ok(()),
    }
}

/// `--no-wait`: run the same command in a detached copy of this process and return once that
/// copy has put the staging in its pending status (or has failed to).
fn detach(name: &str, common: &Common, global: &Global) -> anyhow::Result<()> {
    let state = state_path(common, global)?;
    let exe = std::env::current_exe().context("cannot find the capsa executable")?;
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--no-wait")
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let errpath =
        std::env::temp_dir().join(format!("capsa-staging-{}-{nanos}.err", std::process::id()));
    let errfile = std::fs::File::create(&errpath).context("temporary file")?;
    let _cleanup = RemoveOnDrop(errpath.clone());
    let mut cmd = std::process::Command::new(exe);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(errfile);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().context("cannot start the background command")?;
    let store = capsa::staging::open_store_with_key(&state, common.key_file.as_deref())?;
    let store = store.as_ref();
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let err = std::fs::read_to_string(&errpath).unwrap_or_default();
            if status.success() || err.is_empty() {
                // Finished already: show where it ended.
                return show_after(store, name, global);
            }
            eprint!("{err}");
            drop(_cleanup);
            std::process::exit(status.code().unwrap_or(1));
        }
        if let Some(rec) = store.get(name)? {
            if rec.in_flight.as_ref().is_some_and(|f| f.pid == child.id()) {
                if global.json {
                    print_json(&rec.staging)?;
                } else {
                    println!("{}: {}", rec.staging.name, status_text(&rec.staging));
                }
                return Ok(());
            }
        }
        if t0.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("the background command did not start within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn show_after(store: &dyn StateStore, name: &str, global: &Global) -> anyhow::Result<()> {
    match store.get(name)? {
        Some(rec) if global.json => print_json(&rec.staging),
        Some(rec) => {
            println!("{}: {}", rec.staging.name, status_text(&rec.staging));
            Ok(())
        }
        None if global.json => {
            print_json(&serde_json::json!({ "name": name, "status": null, "removed": true }))
        }
        None => {
            println!("{name}: removed");
            Ok(())
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
