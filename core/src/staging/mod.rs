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

mod audit;
mod codec;
mod deployer;
mod events;
mod expiry;
mod feed;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
mod ledger;
pub mod machine;
mod manager;
pub mod mock;
mod model;
pub mod notify;
mod open;
mod overrides;
#[cfg(feature = "postgres")]
pub mod postgres;
mod reconcile;
pub mod script;
pub mod sealed;
mod spelling;
pub mod sqlite;
pub mod store;
mod validate;

#[cfg(feature = "kubernetes")]
pub use kubernetes::KubernetesDeployer;
pub use manager::{
    CommandOptions, CommandRequest, FeedFollower, ManagerOptions, PendingCommand, StagingManager,
    Subscription,
};
pub use mock::{MockCall, MockDeployer};
pub use open::{
    default_state_path, is_postgres_url, open_store, open_store_with_key, BackendSettings,
    BackendSpec, OpenSettings, STATE_FILE_NAME,
};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStateStore};
pub use reconcile::{ReconcileLoop, ReconcileLoopOptions, ReconcileReport};
pub use script::{Dialect, ScriptDeployer, ScriptNamespace, Settle};
pub use sealed::{SealKey, KEY_FILE_ENV};
pub use sqlite::SqliteStore;
pub use store::StateStore;

pub use audit::{AuditEntry, AuditQuery, Outcome};
pub use deployer::{BackendOutcome, BackendReply, DeployRequest, Deployer, NamedUrl};
pub use events::{Event, EventKind};
pub use expiry::{parse_duration, Expiry, TTL_ACTOR};
pub use model::{Command, Staging, Status};
pub use notify::{Hook, HookStats, NotifyConfig, NOTIFICATIONS_ENV};
pub use overrides::{
    apply_edits, redact, redact_cut, Override, OverrideEdit, Scope, Secret, Visibility, MASK,
};
pub use validate::{compare_tags, validate_actor, validate_name, validate_tag};

/// How long a command may stay pending before reconcile marks it Failure
/// ([`ManagerOptions::pending_timeout`]'s default).
pub const DEFAULT_PENDING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// How long a control script may run before it is killed ([`ScriptDeployer`]'s default).
pub const DEFAULT_SCRIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// How long the Kubernetes backend's create and update wait for the workloads to be ready.
pub const DEFAULT_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// How many events one read of the feed returns when the caller names no limit.
pub const DEFAULT_EVENTS_LIMIT: usize = 1000;
/// The `--project-name` scripts get by default.
pub const DEFAULT_PROJECT_NAME: &str = "capsa";
/// The `--base-domain` scripts get by default.
pub const DEFAULT_BASE_DOMAIN: &str = "localhost";

/// This host's name (recorded with a command's process id by a store shared by hosts).
pub(crate) fn this_host() -> String {
    crate::sys::host_name().to_string()
}
