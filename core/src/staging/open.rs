//! Opening a staging manager the same way from every binding and the CLI: the state (an
//! SQLite file or a `postgres://` URL), its default place in a store, and the deploy backend
//! named by a [`BackendSpec`] (`mock`, `script:DIR`, `octopod:DIR`, `kubernetes:DIR`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::script::{Dialect, ScriptNamespace, Settle};
use super::{Deployer, MockDeployer, ScriptDeployer, SqliteStore, StateStore, KEY_FILE_ENV};
#[cfg(feature = "postgres")]
use super::{PostgresOptions, PostgresStateStore};
use crate::error::{Error, Result};

/// The name of the state file in a store's internal directory (`<store>/.capsa/staging.db`).
pub const STATE_FILE_NAME: &str = "staging.db";

/// The default state of the store at `store_root`: `<store>/.capsa/staging.db`.
/// `InvalidStore` when `store_root` has no `.capsa` directory (not a store).
pub fn default_state_path(store_root: &Path) -> Result<PathBuf> {
    let internal = store_root.join(crate::store::INTERNAL_DIR);
    if !internal.is_dir() {
        return Err(Error::InvalidStore {
            path: store_root.to_path_buf(),
            reason: "no .capsa directory (initialise the store first, or name a state file)".into(),
        });
    }
    Ok(internal.join(STATE_FILE_NAME))
}

/// Open the state store named by `state`: a `postgres://` or `postgresql://` URL is a
/// PostgreSQL database (feature `postgres`; `Unsupported` in a build without it), anything
/// else the path of an SQLite state file (created if missing).
///
/// The key file that seals private values ([`sealed`]) is the one named by [`KEY_FILE_ENV`]
/// when that is set, else for SQLite the default beside the state file
/// ([`SealKey::default_path`]); a PostgreSQL store without one refuses private values.
pub fn open_store(state: impl AsRef<std::ffi::OsStr>) -> Result<Arc<dyn StateStore>> {
    open_store_with_key(state, None)
}

/// [`open_store`] with the key file `key_file` (created if missing) when it is `Some`; `None`
/// falls back to [`KEY_FILE_ENV`], then to the backend's default.
pub fn open_store_with_key(
    state: impl AsRef<std::ffi::OsStr>,
    key_file: Option<&Path>,
) -> Result<Arc<dyn StateStore>> {
    let state = state.as_ref();
    let key_file: Option<PathBuf> = key_file.map(Into::into).or_else(|| {
        std::env::var_os(KEY_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(Into::into)
    });
    if let Some(url) = state.to_str().filter(|s| is_postgres_url(s)) {
        #[cfg(feature = "postgres")]
        {
            let mut options = PostgresOptions::new(url);
            options.key_file = key_file;
            return Ok(Arc::new(PostgresStateStore::open_with(options)?));
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = url;
            return Err(Error::Unsupported {
                what: "a postgres:// state store: this build of capsa has no `postgres` feature"
                    .into(),
            });
        }
    }
    let path = Path::new(state);
    let store = match key_file {
        Some(k) => SqliteStore::open_with_key(path, k)?,
        None => SqliteStore::open(path)?,
    };
    Ok(Arc::new(store))
}

/// Whether `state` names a PostgreSQL database (`postgres://` or `postgresql://`) rather than
/// an SQLite file.
pub fn is_postgres_url(state: &str) -> bool {
    let s = state.trim_start().to_ascii_lowercase();
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// A deploy backend named as users write it: `mock`, `script:DIR` (control scripts in `DIR`,
/// in the dialect of [`BackendSettings::dialect`], DM's by default), `octopod:DIR` (Octopod's
/// control scripts in `DIR`) or `kubernetes:DIR` (the manifest templates in `DIR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSpec {
    /// The in-process mock ([`MockDeployer`]).
    Mock,
    /// Control scripts in a directory ([`ScriptDeployer`]), in the settings' dialect.
    Script(PathBuf),
    /// Octopod's control scripts in a directory ([`ScriptDeployer`] in
    /// [`Dialect::Octopod`], whatever the settings' dialect).
    Octopod(PathBuf),
    /// Manifest templates in a directory (`KubernetesDeployer`, feature `kubernetes`).
    Kubernetes(PathBuf),
}

/// The settings a backend is built with ([`BackendSpec::deployer`]); each backend uses the
/// ones that concern it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSettings {
    /// `--project-name` for scripts. Default [`super::DEFAULT_PROJECT_NAME`].
    pub project_name: String,
    /// `--base-domain` for scripts. Default [`super::DEFAULT_BASE_DOMAIN`].
    pub base_domain: String,
    /// How long a script may run. Default [`super::DEFAULT_SCRIPT_TIMEOUT`].
    pub script_timeout: Duration,
    /// `--namespace` for scripts. Default: the one namespace
    /// [`DEFAULT_SCRIPT_NAMESPACE`](super::script::DEFAULT_SCRIPT_NAMESPACE).
    pub namespace: ScriptNamespace,
    /// The scripts' dialect for `script:DIR` (`octopod:DIR` is always Octopod's). Default DM.
    pub dialect: Dialect,
    /// When a script backend's statuses settle. Default [`Settle::Check`], as DM.
    pub settle: Settle,
    /// The kubeconfig file (`None`: `KUBECONFIG`, `~/.kube/config`, else in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// How long Kubernetes creates and updates wait for readiness. Default
    /// [`super::DEFAULT_READY_TIMEOUT`].
    pub ready_timeout: Duration,
}

impl Default for BackendSettings {
    fn default() -> Self {
        BackendSettings {
            project_name: super::DEFAULT_PROJECT_NAME.into(),
            base_domain: super::DEFAULT_BASE_DOMAIN.into(),
            script_timeout: super::DEFAULT_SCRIPT_TIMEOUT,
            namespace: ScriptNamespace::default(),
            dialect: Dialect::default(),
            settle: Settle::default(),
            kubeconfig: None,
            ready_timeout: super::DEFAULT_READY_TIMEOUT,
        }
    }
}

impl BackendSpec {
    /// Parse `mock`, `script:DIR`, `octopod:DIR` or `kubernetes:DIR`; `InvalidArgument`
    /// naming the forms otherwise (an empty `DIR` included).
    pub fn parse(text: &str) -> Result<BackendSpec> {
        let dir = |d: &str| (!d.is_empty()).then(|| PathBuf::from(d));
        let spec = if text == "mock" {
            Some(BackendSpec::Mock)
        } else if let Some(d) = text.strip_prefix("script:") {
            dir(d).map(BackendSpec::Script)
        } else if let Some(d) = text.strip_prefix("octopod:") {
            dir(d).map(BackendSpec::Octopod)
        } else if let Some(d) = text.strip_prefix("kubernetes:") {
            dir(d).map(BackendSpec::Kubernetes)
        } else {
            None
        };
        spec.ok_or_else(|| Error::InvalidArgument {
            what: "backend",
            reason: format!(
                "{:?}: expected `mock`, `script:DIR`, `octopod:DIR` or \
                 `kubernetes:TEMPLATE_DIR`",
                crate::error::shown(text)
            ),
        })
    }

    /// The backend's name, as its deployer reports it (`mock`, `script`, `octopod`,
    /// `kubernetes`; `script:DIR` in the Octopod dialect reports `octopod`).
    pub fn name(&self) -> &'static str {
        match self {
            BackendSpec::Mock => "mock",
            BackendSpec::Script(_) => "script",
            BackendSpec::Octopod(_) => "octopod",
            BackendSpec::Kubernetes(_) => "kubernetes",
        }
    }

    /// Build the backend. A script or template directory that does not exist is
    /// `InvalidArgument`; `kubernetes:` in a build without the `kubernetes` feature is
    /// `Unsupported`. A script backend takes each script's path from the dialect's
    /// environment variable for it when that is set (DM's `CREATION_COMMAND` and siblings:
    /// [`ScriptDeployer::with_env_locations`]), else `DIR/<script name>`.
    pub fn deployer(&self, settings: &BackendSettings) -> Result<Arc<dyn Deployer>> {
        let existing = |dir: &Path, what: &str| {
            if dir.is_dir() {
                Ok(())
            } else {
                Err(Error::InvalidArgument {
                    what: "backend",
                    reason: format!("{what} directory {} does not exist", dir.display()),
                })
            }
        };
        match self {
            BackendSpec::Mock => Ok(Arc::new(MockDeployer::new())),
            BackendSpec::Script(dir) | BackendSpec::Octopod(dir) => {
                existing(dir, "script")?;
                let dialect = match self {
                    BackendSpec::Octopod(_) => Dialect::Octopod,
                    _ => settings.dialect,
                };
                Ok(Arc::new(
                    ScriptDeployer::new(dir)
                        .with_dialect(dialect)
                        .with_env_locations(|v| std::env::var_os(v))
                        .with_namespace(settings.namespace.clone())
                        .with_settle(settings.settle)
                        .with_project_name(&settings.project_name)
                        .with_base_domain(&settings.base_domain)
                        .with_timeout(settings.script_timeout),
                ))
            }
            BackendSpec::Kubernetes(dir) => {
                existing(dir, "template")?;
                #[cfg(feature = "kubernetes")]
                {
                    Ok(Arc::new(
                        super::KubernetesDeployer::new(dir, settings.kubeconfig.clone())?
                            .with_ready_timeout(settings.ready_timeout),
                    ))
                }
                #[cfg(not(feature = "kubernetes"))]
                {
                    Err(Error::Unsupported {
                        what: "the kubernetes backend: this build of capsa has no `kubernetes` \
                               feature"
                            .into(),
                    })
                }
            }
        }
    }
}

/// Everything a manager is opened with besides its state and backend, every field optional
/// (absent: core's default), as the C binding's options JSON spells it. Durations are in
/// milliseconds. Unknown fields are refused, so a misspelt option is never silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSettings {
    /// [`ManagerOptions::actor`](super::ManagerOptions::actor).
    pub actor: Option<String>,
    /// [`ManagerOptions::pending_timeout`](super::ManagerOptions::pending_timeout).
    pub pending_timeout_ms: Option<u64>,
    /// [`ManagerOptions::check_interval`](super::ManagerOptions::check_interval).
    pub check_interval_ms: Option<u64>,
    /// [`ManagerOptions::retention`](super::ManagerOptions::retention).
    pub retention_ms: Option<u64>,
    /// [`ManagerOptions::namespace_prefix`](super::ManagerOptions::namespace_prefix).
    pub namespace_prefix: Option<String>,
    /// [`ManagerOptions::key_file`](super::ManagerOptions::key_file).
    pub key_file: Option<PathBuf>,
    /// The notifications file ([`super::NotifyConfig::load`]); default `CAPSA_NOTIFICATIONS`.
    pub notifications: Option<PathBuf>,
    /// [`BackendSettings::project_name`].
    pub project_name: Option<String>,
    /// [`BackendSettings::base_domain`].
    pub base_domain: Option<String>,
    /// [`BackendSettings::script_timeout`].
    pub script_timeout_ms: Option<u64>,
    /// [`BackendSettings::namespace`]: a fixed namespace, or a pattern with `{name}`.
    pub namespace: Option<String>,
    /// [`BackendSettings::dialect`]: `dm` or `octopod`.
    pub dialect: Option<String>,
    /// [`BackendSettings::settle`]: `check` or `exit`.
    pub settle: Option<String>,
    /// [`BackendSettings::kubeconfig`].
    pub kubeconfig: Option<PathBuf>,
    /// [`BackendSettings::ready_timeout`].
    pub ready_timeout_ms: Option<u64>,
}

impl OpenSettings {
    /// Parse the JSON object form; `InvalidArgument` naming the problem (an unknown field, a
    /// wrong type) otherwise.
    pub fn from_json(text: &str) -> Result<OpenSettings> {
        serde_json::from_str(text).map_err(|e| Error::InvalidArgument {
            what: "options",
            reason: crate::error::one_line(&e.to_string()).into_owned(),
        })
    }

    /// Parse the JSON object form with camelCase keys (`pendingTimeoutMs`), as JavaScript
    /// spells them. A `null` value (also what `JSON.stringify` makes of `NaN`) is refused,
    /// never taken for the default.
    pub fn from_camel_json(text: &str) -> Result<OpenSettings> {
        let bad = |reason: String| Error::InvalidArgument {
            what: "options",
            reason,
        };
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| bad(format!("must be an object: {e}")))?;
        let mut snake = serde_json::Map::new();
        for (key, value) in map {
            if value.is_null() {
                return Err(bad(format!("`{key}` is null or not a finite number")));
            }
            let mut k = String::new();
            for c in key.chars() {
                if c.is_ascii_uppercase() {
                    k.push('_');
                }
                k.push(c.to_ascii_lowercase());
            }
            snake.insert(k, value);
        }
        OpenSettings::from_json(&serde_json::Value::Object(snake).to_string())
    }

    /// The manager options: these settings over [`super::ManagerOptions::default`];
    /// `InvalidArgument` for a notifications file that does not parse.
    pub fn manager_options(&self) -> Result<super::ManagerOptions> {
        let d = super::ManagerOptions::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let notifications = match &self.notifications {
            Some(path) => super::NotifyConfig::load(path)?,
            None => d.notifications.clone(),
        };
        Ok(super::ManagerOptions {
            actor: self.actor.clone().unwrap_or(d.actor),
            pending_timeout: ms(self.pending_timeout_ms, d.pending_timeout),
            check_interval: ms(self.check_interval_ms, d.check_interval),
            retention: ms(self.retention_ms, d.retention),
            namespace_prefix: self.namespace_prefix.clone().unwrap_or(d.namespace_prefix),
            key_file: self.key_file.clone().or(d.key_file),
            notifications,
            ..d
        })
    }

    /// The backend settings: these settings over [`BackendSettings::default`].
    /// `InvalidArgument` for a namespace, dialect or settle value that does not parse.
    pub fn backend_settings(&self) -> Result<BackendSettings> {
        let d = BackendSettings::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        Ok(BackendSettings {
            project_name: self.project_name.clone().unwrap_or(d.project_name),
            base_domain: self.base_domain.clone().unwrap_or(d.base_domain),
            script_timeout: ms(self.script_timeout_ms, d.script_timeout),
            namespace: match &self.namespace {
                Some(n) => ScriptNamespace::parse(n)?,
                None => d.namespace,
            },
            dialect: match &self.dialect {
                Some(t) => Dialect::parse(t)?,
                None => d.dialect,
            },
            settle: match &self.settle {
                Some(t) => Settle::parse(t)?,
                None => d.settle,
            },
            kubeconfig: self.kubeconfig.clone().or(d.kubeconfig),
            ready_timeout: ms(self.ready_timeout_ms, d.ready_timeout),
        })
    }

    /// Open the manager of `state` with the backend `spec` and these settings.
    pub fn open(
        &self,
        state: impl AsRef<std::ffi::OsStr>,
        spec: &BackendSpec,
    ) -> Result<super::StagingManager> {
        let deployer = spec.deployer(&self.backend_settings()?)?;
        super::StagingManager::open_with(state, deployer, self.manager_options()?)
    }

    /// Open the manager of `state` with a backend the caller built, which carries its own
    /// settings: backend settings here are refused (`InvalidArgument`), never ignored.
    pub fn open_with_deployer(
        &self,
        state: impl AsRef<std::ffi::OsStr>,
        deployer: Arc<dyn Deployer>,
    ) -> Result<super::StagingManager> {
        if self.backend_settings()? != BackendSettings::default() {
            return Err(Error::InvalidArgument {
                what: "options",
                reason: "backend settings go with a backend named by its spec".into(),
            });
        }
        super::StagingManager::open_with(state, deployer, self.manager_options()?)
    }
}

impl std::str::FromStr for BackendSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<BackendSpec> {
        BackendSpec::parse(text)
    }
}

impl std::fmt::Display for BackendSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendSpec::Mock => f.write_str("mock"),
            BackendSpec::Script(d) | BackendSpec::Octopod(d) | BackendSpec::Kubernetes(d) => {
                write!(f, "{}:{}", self.name(), d.display())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_specs_parse_and_print_back() {
        for text in [
            "mock",
            "script:/srv/scripts",
            "octopod:/srv/octopod",
            "kubernetes:deploy/templates",
        ] {
            let spec = BackendSpec::parse(text).unwrap();
            assert_eq!(spec.to_string(), text);
            assert!(text.starts_with(spec.name()));
        }
        for bad in [
            "",
            "Mock",
            "script:",
            "octopod:",
            "kubernetes:",
            "helm:x",
            "script",
        ] {
            let e = BackendSpec::parse(bad).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidArgument, "{bad}");
            assert!(e.to_string().contains("expected `mock`"), "{e}");
        }
    }

    #[test]
    fn a_missing_backend_directory_is_refused_before_anything_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let spec = BackendSpec::Script(dir.path().join("nope"));
        let e = spec.deployer(&BackendSettings::default()).err().unwrap();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument);
        assert!(e.to_string().contains("does not exist"), "{e}");
        let d = BackendSpec::Script(dir.path().into());
        assert_eq!(
            d.deployer(&BackendSettings::default()).unwrap().name(),
            "script"
        );
    }

    #[test]
    fn a_broken_state_file_is_a_state_error_named_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("staging.db");
        std::fs::write(&state, vec![0x5a; 8192]).unwrap();
        let e = open_store_with_key(&state, Some(&dir.path().join("k")))
            .err()
            .unwrap();
        assert_eq!(e.code(), crate::ErrorCode::State, "{e}");
        assert!(e.to_string().starts_with("sqlite state store "), "{e}");
        assert!(
            std::error::Error::source(&e).is_none(),
            "printed, not chained"
        );
    }

    #[test]
    fn an_io_error_prints_its_cause_once() {
        let e = crate::Error::io("read", "/x", std::io::Error::other("disk on fire"));
        assert_eq!(e.to_string(), "read /x: disk on fire");
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn open_settings_fill_in_core_defaults_and_refuse_unknown_fields() {
        let s = OpenSettings::from_json(r#"{"actor": "ana", "pending_timeout_ms": 1500}"#).unwrap();
        let o = s.manager_options().unwrap();
        assert_eq!(o.actor, "ana");
        assert_eq!(o.pending_timeout, Duration::from_millis(1500));
        assert_eq!(
            o.check_interval,
            super::super::ManagerOptions::default().check_interval
        );
        assert_eq!(
            s.backend_settings().unwrap().project_name,
            super::super::DEFAULT_PROJECT_NAME
        );
        let e = OpenSettings::from_json(r#"{"pending_timeout": 3}"#).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument);
        assert!(
            e.to_string().contains("unknown field `pending_timeout`"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let m = OpenSettings::default()
            .open(dir.path().join("s.db"), &BackendSpec::Mock)
            .unwrap();
        assert_eq!(
            m.create("web", "1", vec![]).unwrap().status,
            super::super::Status::Running
        );
    }

    #[test]
    fn a_manager_opened_with_mock_is_scripted_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let open = |spec: &BackendSpec| OpenSettings::default().open(dir.path().join("s.db"), spec);
        let m = open(&BackendSpec::Mock).unwrap();
        let mock = m.mock().unwrap();
        mock.control(r#"{"push": "create", "outcome": "failed", "reason": "boom"}"#)
            .unwrap();
        let web = m.create("web", "1", vec![]).unwrap();
        assert_eq!(web.reason.as_deref(), Some("boom"));
        assert_eq!(
            mock.control(r#"{"calls": true}"#).unwrap(),
            serde_json::json!([["tag_check", "web"], ["create", "web"]])
        );
        let script = open(&BackendSpec::Script(dir.path().into())).unwrap();
        let e = script.mock().unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument);
        assert!(e.to_string().contains("script, not mock"), "{e}");
    }

    #[test]
    fn the_default_state_lives_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let e = default_state_path(dir.path()).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidStore);
        std::fs::create_dir(dir.path().join(".capsa")).unwrap();
        assert_eq!(
            default_state_path(dir.path()).unwrap(),
            dir.path().join(".capsa").join("staging.db")
        );
    }

    #[test]
    fn script_settings_namespace_dialect_and_settle() {
        use crate::staging::script::{Dialect, ScriptNamespace, Settle};
        let s = OpenSettings::from_camel_json(
            r#"{"namespace": "stg-{name}", "dialect": "octopod", "settle": "exit"}"#,
        )
        .unwrap()
        .backend_settings()
        .unwrap();
        assert_eq!(s.namespace, ScriptNamespace::Pattern("stg-{name}".into()));
        assert_eq!(s.dialect, Dialect::Octopod);
        assert_eq!(s.settle, Settle::Exit);
        let d = BackendSettings::default();
        assert_eq!(d.namespace, ScriptNamespace::Fixed("stagings".into()));
        assert_eq!((d.dialect, d.settle), (Dialect::Dm, Settle::Check));
        for bad in [
            r#"{"namespace": ""}"#,
            r#"{"dialect": "helm"}"#,
            r#"{"settle": "soon"}"#,
        ] {
            let e = OpenSettings::from_json(bad)
                .unwrap()
                .backend_settings()
                .unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidArgument, "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let octopod = BackendSpec::parse(&format!("octopod:{}", dir.path().display())).unwrap();
        let dep = octopod.deployer(&BackendSettings::default()).unwrap();
        assert_eq!(dep.name(), "octopod");
        assert!(dep.settles_by_check() && dep.validates_config());
        let script = BackendSpec::Script(dir.path().into());
        let exit = BackendSettings {
            settle: Settle::Exit,
            ..BackendSettings::default()
        };
        let dep = script.deployer(&exit).unwrap();
        assert_eq!(dep.name(), "script");
        assert!(!dep.settles_by_check() && !dep.validates_config());
    }

    #[test]
    fn camel_case_settings_and_a_built_backend() {
        let s =
            OpenSettings::from_camel_json(r#"{"pendingTimeoutMs": 5, "keyFile": "k"}"#).unwrap();
        assert_eq!(s.pending_timeout_ms, Some(5));
        assert_eq!(s.key_file.as_deref(), Some(Path::new("k")));
        for bad in [r#"{"retentionMs": null}"#, r#"{"notAnOption": 1}"#, "[1]"] {
            let e = OpenSettings::from_camel_json(bad).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidArgument, "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let mock: Arc<dyn Deployer> = Arc::new(super::super::MockDeployer::new());
        let with_backend_setting = OpenSettings {
            project_name: Some("other".into()),
            ..OpenSettings::default()
        };
        let e = with_backend_setting
            .open_with_deployer(dir.path().join("s.db"), mock.clone())
            .unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument);
        OpenSettings::default()
            .open_with_deployer(dir.path().join("s.db"), mock)
            .unwrap();
    }
}
