//! Stagings: the manager, its backends and its events.
//!
//! Commands run core's async forms on core's own runtime and return Promises: a command that
//! waits on its backend for minutes holds no thread of libuv's pool. `subscribe` delivers
//! events through a thread-safe function; the returned function unsubscribes, after which no
//! event arrives and nothing keeps the loop alive.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use capsa::staging::{
    BackendReply, BackendSpec, CommandOptions, CommandRequest, Deployer, Dialect, EventKind,
    Expiry, KubernetesDeployer, MockCall, MockDeployer, OpenSettings, Override, OverrideEdit,
    Scope, ScriptDeployer, ScriptNamespace, Settle, Staging, StagingManager, Subscription,
};
use napi::bindgen_prelude::{Either4, Function, JsObjectValue, Object, ToNapiValue};
use napi::threadsafe_function::UnknownReturnValue;
use napi::{Either, Env, JSON};
use napi_derive::napi;

use crate::error::{guard, promise, promise_blocking, Failure};
use crate::listener::{Listener, ListenerSwitch};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bad(what: &'static str, reason: impl Into<String>) -> capsa::Error {
    capsa::Error::InvalidArgument {
        what,
        reason: reason.into(),
    }
}

fn millis(what: &'static str, ms: f64) -> capsa::Result<Duration> {
    if (0.0..=1e15).contains(&ms) {
        Ok(Duration::from_millis(ms as u64))
    } else {
        Err(bad(
            what,
            format!("must be a number of milliseconds >= 0, got {ms}"),
        ))
    }
}

/// A reply the mock backend gives.
#[napi(object)]
pub struct MockReply {
    /// `'success'`, `'failed'` (the backend said no) or `'unavailable'` (it could not be asked).
    #[napi(ts_type = "'success' | 'failed' | 'unavailable'")]
    pub outcome: String,
    /// Why, for a failure.
    pub reason: Option<String>,
    /// Output to record in the audit log.
    pub output: Option<String>,
}

fn reply(r: Option<MockReply>) -> capsa::Result<BackendReply> {
    // Taken as optional so that `undefined` / `null` get a coded error, not a bare TypeError.
    let r = r.ok_or_else(|| {
        bad(
            "mock reply",
            "must be an object { outcome, reason?, output? }",
        )
    })?;
    let reason = r.reason.unwrap_or_default();
    let mut out = MockDeployer::reply(&r.outcome, reason)?;
    if let Some(o) = r.output {
        out.output = o;
    }
    Ok(out)
}

/// One call the mock backend received.
#[napi(object)]
pub struct MockCallRecord {
    /// The backend call.
    #[napi(
        ts_type = "'create' | 'update' | 'delete' | 'check' | 'cleanup' | 'archive_check' | 'tag_check'"
    )]
    pub call: String,
    /// The staging name.
    pub name: String,
}

/// An in-memory deploy backend with scriptable replies and delays, for tests.
#[napi(js_name = "MockBackend")]
pub struct JsMockBackend {
    inner: Arc<MockDeployer>,
}

#[napi]
impl JsMockBackend {
    /// A backend where every call succeeds at once.
    #[napi(constructor)]
    pub fn new(env: Env) -> napi::Result<JsMockBackend> {
        guard(&env, || {
            Ok(JsMockBackend {
                inner: Arc::new(MockDeployer::new()),
            })
        })
    }

    /// Queue a one-shot reply for the next `call`.
    #[napi(
        ts_args_type = "call: 'create' | 'update' | 'delete' | 'check' | 'cleanup' | 'archive_check' | 'tag_check', reply: MockReply"
    )]
    pub fn push(&self, env: Env, call: String, reply_: Option<MockReply>) -> napi::Result<()> {
        guard(&env, || {
            self.inner.push(MockCall::parse(&call)?, reply(reply_)?);
            Ok(())
        })
    }

    /// Set the reply `call` gives when nothing is queued.
    #[napi(
        ts_args_type = "call: 'create' | 'update' | 'delete' | 'check' | 'cleanup' | 'archive_check' | 'tag_check', reply: MockReply"
    )]
    pub fn set_default(
        &self,
        env: Env,
        call: String,
        reply_: Option<MockReply>,
    ) -> napi::Result<()> {
        guard(&env, || {
            self.inner
                .set_default(MockCall::parse(&call)?, reply(reply_)?);
            Ok(())
        })
    }

    /// Make `call` take `ms` milliseconds before it answers.
    #[napi(
        ts_args_type = "call: 'create' | 'update' | 'delete' | 'check' | 'cleanup' | 'archive_check' | 'tag_check', ms: number"
    )]
    pub fn set_delay(&self, env: Env, call: String, ms: f64) -> napi::Result<()> {
        guard(&env, || {
            self.inner
                .set_delay(MockCall::parse(&call)?, millis("delay", ms)?);
            Ok(())
        })
    }

    /// Hold `call`: it waits without answering until `release(call)`, so a command is
    /// certainly in flight while the test acts on it.
    #[napi(
        ts_args_type = "call: 'create' | 'update' | 'delete' | 'check' | 'cleanup' | 'archive_check' | 'tag_check'"
    )]
    pub fn hold(&self, env: Env, call: String) -> napi::Result<()> {
        guard(&env, || {
            self.inner.hold(MockCall::parse(&call)?);
            Ok(())
        })
    }

    /// Let the held `call`s answer, and stop holding `call`.
    #[napi(
        ts_args_type = "call: 'create' | 'update' | 'delete' | 'check' | 'cleanup' | 'archive_check' | 'tag_check'"
    )]
    pub fn release(&self, env: Env, call: String) -> napi::Result<()> {
        guard(&env, || {
            self.inner.release(MockCall::parse(&call)?);
            Ok(())
        })
    }

    /// How many `call`s are waiting at a hold now.
    #[napi(
        ts_args_type = "call: 'create' | 'update' | 'delete' | 'check' | 'cleanup' | 'archive_check' | 'tag_check'"
    )]
    pub fn held(&self, env: Env, call: String) -> napi::Result<u32> {
        guard(&env, || Ok(self.inner.held(MockCall::parse(&call)?) as u32))
    }

    /// Make `tag_check` reject tags lower than `min`.
    #[napi]
    pub fn set_min_tag(&self, env: Env, min: String) -> napi::Result<()> {
        guard(&env, || {
            self.inner.set_min_tag(min);
            Ok(())
        })
    }

    /// Every call made so far, in order.
    #[napi]
    pub fn calls(&self, env: Env) -> napi::Result<Vec<MockCallRecord>> {
        guard(&env, || {
            Ok(self
                .inner
                .calls()
                .into_iter()
                .map(|(c, name)| MockCallRecord {
                    call: c.as_str().to_string(),
                    name,
                })
                .collect())
        })
    }

    /// Forget the recorded calls.
    #[napi]
    pub fn clear_calls(&self, env: Env) -> napi::Result<()> {
        guard(&env, || {
            self.inner.clear_calls();
            Ok(())
        })
    }

    /// How many times `call` was made.
    #[napi(
        ts_args_type = "call: 'create' | 'update' | 'delete' | 'check' | 'cleanup' | 'archive_check' | 'tag_check'"
    )]
    pub fn count(&self, env: Env, call: String) -> napi::Result<u32> {
        guard(
            &env,
            || Ok(self.inner.count(MockCall::parse(&call)?) as u32),
        )
    }
}

/// Options of `ScriptBackend`, each absent one core's default.
#[napi(object)]
pub struct ScriptBackendOptions {
    /// `--project-name`.
    pub project_name: Option<String>,
    /// `--base-domain`.
    pub base_domain: Option<String>,
    /// Per-call timeout in milliseconds.
    pub timeout_ms: Option<f64>,
    /// `--namespace`: one namespace, or a pattern with `{name}`.
    pub namespace: Option<String>,
    /// The scripts' dialect: `'dm'` (the default) or `'octopod'`.
    #[napi(ts_type = "'dm' | 'octopod'")]
    pub dialect: Option<String>,
    /// When statuses settle: `'check'` (the default, as DM) or `'exit'`.
    #[napi(ts_type = "'check' | 'exit'")]
    pub settle: Option<String>,
}

/// DM's staging control scripts (`create`, `update`, `delete`, `check`, `cleanup`,
/// `archive_check`, `tag_check` executables in one directory) as a deploy backend.
#[napi(js_name = "ScriptBackend")]
pub struct JsScriptBackend {
    inner: Arc<ScriptDeployer>,
}

#[napi]
impl JsScriptBackend {
    /// The scripts in `dir`.
    #[napi(constructor)]
    pub fn new(env: Env, dir: String, options: Option<ScriptBackendOptions>) -> napi::Result<Self> {
        guard(&env, || {
            // As core's `script:DIR`: script locations from DM's environment variables first.
            let mut d = ScriptDeployer::new(dir).with_env_locations(|v| std::env::var_os(v));
            if let Some(o) = options {
                if let Some(n) = o.namespace {
                    d = d.with_namespace(ScriptNamespace::parse(&n)?);
                }
                if let Some(t) = o.dialect {
                    d = d.with_dialect(Dialect::parse(&t)?);
                }
                if let Some(t) = o.settle {
                    d = d.with_settle(Settle::parse(&t)?);
                }
                if let Some(p) = o.project_name {
                    d = d.with_project_name(p);
                }
                if let Some(b) = o.base_domain {
                    d = d.with_base_domain(b);
                }
                if let Some(ms) = o.timeout_ms {
                    d = d.with_timeout(millis("timeout", ms)?);
                }
            }
            Ok(JsScriptBackend { inner: Arc::new(d) })
        })
    }
}

/// Options of `KubernetesBackend`, each absent one core's default.
#[napi(object)]
pub struct KubernetesBackendOptions {
    /// The kubeconfig file (absent: `KUBECONFIG`, `~/.kube/config`, else the in-cluster
    /// service account).
    pub kubeconfig: Option<String>,
    /// How long create and update wait for the workloads to be ready, in milliseconds.
    pub ready_timeout_ms: Option<f64>,
}

/// A Kubernetes cluster as a deploy backend: the manifests of a template directory
/// server-side applied into one namespace per staging.
#[napi(js_name = "KubernetesBackend")]
pub struct JsKubernetesBackend {
    inner: Arc<KubernetesDeployer>,
}

#[napi]
impl JsKubernetesBackend {
    /// The template in `templateDir`. Throws `INVALID_ARGUMENT` for a missing or bad
    /// template, `BACKEND` for an unusable kubeconfig.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        template_dir: String,
        options: Option<KubernetesBackendOptions>,
    ) -> napi::Result<Self> {
        guard(&env, || {
            let (kubeconfig, ready) = match options {
                Some(o) => (
                    o.kubeconfig,
                    o.ready_timeout_ms
                        .map(|ms| millis("readyTimeoutMs", ms))
                        .transpose()?,
                ),
                None => (None, None),
            };
            let mut d = KubernetesDeployer::new(template_dir, kubeconfig.map(Into::into))?;
            if let Some(t) = ready {
                d = d.with_ready_timeout(t);
            }
            Ok(JsKubernetesBackend { inner: Arc::new(d) })
        })
    }

    /// The template directory.
    #[napi(getter)]
    pub fn template_dir(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.template_dir().display().to_string()))
    }
}

/// An override: `key=value` for the app environment or the staging, public or private.
#[napi(object)]
pub struct OverrideInit {
    /// The key.
    pub key: String,
    /// The value (a private one never appears in events, errors or the audit log).
    pub value: String,
    /// `'app'` (the default) or `'staging'`.
    #[napi(ts_type = "'app' | 'staging'")]
    pub scope: Option<String>,
    /// Mask the value everywhere but the backend call.
    pub private: Option<bool>,
}

/// A key to remove from a scope (`CommandInit.unsetOverrides`).
#[napi(object)]
pub struct OverrideKey {
    /// The key.
    pub key: String,
    /// `'app'` (the default) or `'staging'`.
    #[napi(ts_type = "'app' | 'staging'")]
    pub scope: Option<String>,
}

/// Options of create, update and restore: core's `CommandOptions`.
#[napi(object)]
pub struct CommandInit {
    /// Time to live (`'3d'`, `'12h'`): `reconcile` archives the staging once it has passed;
    /// `'never'` drops a stored one. Absent: keep the stored expiry.
    pub ttl: Option<String>,
    /// Update: set single keys, keeping the others.
    pub set_overrides: Option<Vec<Option<OverrideInit>>>,
    /// Update: remove single keys, keeping the others (`INVALID_ARGUMENT` for a key that is
    /// not there).
    pub unset_overrides: Option<Vec<OverrideKey>>,
}

fn to_options(init: Option<CommandInit>) -> capsa::Result<CommandOptions> {
    let Some(init) = init else {
        return Ok(CommandOptions::default());
    };
    let mut edits: Vec<OverrideEdit> = to_overrides(init.set_overrides)?
        .into_iter()
        .map(OverrideEdit::Set)
        .collect();
    for k in init.unset_overrides.unwrap_or_default() {
        let scope = k.scope.as_deref().map_or(Ok(Scope::App), Scope::parse)?;
        edits.push(OverrideEdit::Unset { scope, key: k.key });
    }
    Ok(CommandOptions {
        expiry: init
            .ttl
            .as_deref()
            .map(Expiry::parse)
            .transpose()?
            .unwrap_or_default(),
        edits,
        ..CommandOptions::default()
    })
}

/// Run `req` with `init` and wait: the staging afterwards.
async fn run_with(
    m: StagingManager,
    req: CommandRequest,
    init: Option<CommandInit>,
) -> capsa::Result<StagingView> {
    let name = req.name().to_string();
    let s = m.run_with_async(req, to_options(init)?).await?;
    s.map(view).ok_or(capsa::Error::NotFound {
        what: "staging",
        name,
    })
}

fn to_overrides(list: Option<Vec<Option<OverrideInit>>>) -> capsa::Result<Vec<Override>> {
    list.unwrap_or_default()
        .into_iter()
        .map(|o| {
            // Elements are optional so that `null` gets a coded error, not a bare TypeError.
            let o = o.ok_or_else(|| {
                bad(
                    "override",
                    "must be an object { key, value, scope?, private? }",
                )
            })?;
            let scope = o.scope.as_deref().map_or(Ok(Scope::App), Scope::parse)?;
            let ov = if o.private.unwrap_or(false) {
                Override::private(scope, o.key, o.value)
            } else {
                Override::public(scope, o.key, o.value)
            };
            ov.validate()?;
            Ok(ov)
        })
        .collect()
}

/// An override as shown: private values are `'***'`.
#[napi(object)]
pub struct OverrideView {
    /// The key.
    pub key: String,
    /// The value, or `'***'` when private.
    pub value: String,
    /// `'app'` or `'staging'`.
    #[napi(ts_type = "'app' | 'staging'")]
    pub scope: String,
    /// Whether the value is private.
    pub private: bool,
}

/// A staging as recorded.
#[napi(object, js_name = "Staging")]
pub struct StagingView {
    /// Its name.
    pub name: String,
    /// The tag last requested.
    pub tag: String,
    /// The overrides last requested (private values masked).
    pub overrides: Vec<OverrideView>,
    /// `'Running'`, `'Failure'`, `'Archived'`, `'CreatePending'`, `'UpdatePending'` or `'DeletePending'`.
    #[napi(
        ts_type = "'Running' | 'Failure' | 'Archived' | 'CreatePending' | 'UpdatePending' | 'DeletePending'"
    )]
    pub status: String,
    /// Why it is in Failure.
    pub reason: Option<String>,
    /// The command in progress, if any.
    pub command_in_progress: Option<String>,
    /// When the record was created (ISO 8601).
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When the current status was entered.
    pub status_since: String,
    /// When the backend was last asked about it.
    pub checked_at: Option<String>,
    /// When it expires (`reconcile` archives it then); absent: never.
    pub expires_at: Option<String>,
}

fn view(s: Staging) -> StagingView {
    StagingView {
        name: s.name,
        tag: s.tag,
        overrides: s
            .overrides
            .iter()
            .map(|o| OverrideView {
                key: o.key.clone(),
                value: o.shown_value().to_string(),
                scope: o.scope.as_str().to_string(),
                private: o.visibility == capsa::staging::Visibility::Private,
            })
            .collect(),
        status: s.status.as_str().to_string(),
        reason: s.reason,
        command_in_progress: s.command_in_progress.map(|c| c.as_str().to_string()),
        created_at: s.created_at.to_rfc3339(),
        updated_at: s.updated_at.to_rfc3339(),
        status_since: s.status_since.to_rfc3339(),
        checked_at: s.checked_at.map(|t| t.to_rfc3339()),
        expires_at: s.expires_at.map(|t| t.to_rfc3339()),
    }
}

/// A staging event: a status change or a finished command.
#[napi(object)]
pub struct StagingEvent {
    /// Position in the store's event feed (increasing).
    pub seq: f64,
    /// When it happened (ISO 8601).
    pub at: String,
    /// The staging.
    pub name: String,
    /// What happened.
    #[napi(ts_type = "'StatusChanged' | 'CommandFinished'")]
    pub event: String,
    /// StatusChanged: the status before (absent for a new staging).
    #[napi(
        ts_type = "'Running' | 'Failure' | 'Archived' | 'CreatePending' | 'UpdatePending' | 'DeletePending'"
    )]
    pub from: Option<String>,
    /// StatusChanged: the status after (absent once cleaned up).
    #[napi(
        ts_type = "'Running' | 'Failure' | 'Archived' | 'CreatePending' | 'UpdatePending' | 'DeletePending'"
    )]
    pub to: Option<String>,
    /// The failure reason, if any.
    pub reason: Option<String>,
    /// CommandFinished: the command (or `'reconcile'`).
    pub action: Option<String>,
    /// CommandFinished: `'Pending'`, `'Success'`, `'Failure'` or `'Refused'`.
    #[napi(ts_type = "'Pending' | 'Success' | 'Failure' | 'Refused'")]
    pub outcome: Option<String>,
    /// CommandFinished: its audit row.
    pub audit_id: Option<f64>,
}

fn event(e: &capsa::staging::Event) -> StagingEvent {
    let mut out = StagingEvent {
        seq: e.seq as f64,
        at: e.at.to_rfc3339(),
        name: e.name.clone(),
        event: String::new(),
        from: None,
        to: None,
        reason: None,
        action: None,
        outcome: None,
        audit_id: None,
    };
    match &e.kind {
        EventKind::StatusChanged { from, to, reason } => {
            out.event = e.kind.as_str().into();
            out.from = from.map(|s| s.as_str().to_string());
            out.to = to.map(|s| s.as_str().to_string());
            out.reason = reason.clone();
        }
        EventKind::CommandFinished {
            action,
            outcome,
            audit_id,
            reason,
        } => {
            out.event = e.kind.as_str().into();
            out.action = Some(action.clone());
            out.outcome = Some(outcome.as_str().to_string());
            out.audit_id = Some(*audit_id as f64);
            out.reason = reason.clone();
        }
    }
    out
}

/// What one `reconcile` did.
#[napi(object)]
pub struct ReconcileReport {
    /// Stagings whose health or archive state was asked.
    pub checked: u32,
    /// Stable stagings whose status changed.
    pub changed: u32,
    /// Backend calls that could not be made.
    pub transient_errors: u32,
    /// Interrupted commands finished from the backend's answer.
    pub resolved_pending: u32,
    /// Pending commands failed (timed out or answered failed).
    pub failed_pending: u32,
    /// Archived stagings not properly archived.
    pub archive_problems: u32,
    /// Stagings past their expiry whose archive was started.
    pub expired: u32,
    /// Stagings left to another reconcile sharing the state.
    pub skipped: u32,
}

/// Options of `StagingManager.open`: core's open settings (`OpenSettings`) in camelCase,
/// durations in milliseconds, each absent one core's default. An unknown key, a wrong type or
/// `null` is refused with `INVALID_ARGUMENT`. The backend settings (`projectName` to
/// `readyTimeoutMs`) go with a backend named by a string; a backend object carries its own.
#[napi(object)]
pub struct StagingManagerOptions {
    /// Who issues commands (the audit log's actor).
    pub actor: Option<String>,
    /// A pending status older than this becomes Failure on `reconcile`.
    pub pending_timeout_ms: Option<f64>,
    /// How often `reconcile` asks again about a stable staging.
    pub check_interval_ms: Option<f64>,
    /// `cleanArchived` removes archived stagings older than this.
    pub retention_ms: Option<f64>,
    /// Prefix of a staging's Kubernetes namespace.
    pub namespace_prefix: Option<String>,
    /// The key file sealing private override values (created if missing).
    pub key_file: Option<String>,
    /// The notifications file (webhooks and hook commands on every status change).
    pub notifications: Option<String>,
    /// `--project-name` of the scripts.
    pub project_name: Option<String>,
    /// `--base-domain` of the scripts.
    pub base_domain: Option<String>,
    /// How long a script may run.
    pub script_timeout_ms: Option<f64>,
    /// `--namespace` of the scripts: one namespace, or a pattern with `{name}`.
    pub namespace: Option<String>,
    /// The dialect of `script:DIR`: `'dm'` (the default) or `'octopod'`.
    pub dialect: Option<String>,
    /// When a script backend's statuses settle: `'check'` (the default, as DM) or `'exit'`.
    pub settle: Option<String>,
    /// The kubeconfig file.
    pub kubeconfig: Option<String>,
    /// How long Kubernetes creates and updates wait for readiness.
    pub ready_timeout_ms: Option<f64>,
}

/// Core's open settings from the JS `options` of `StagingManager.open`, as `JSON.stringify`
/// gives them ([`OpenSettings::from_camel_json`]).
fn open_settings(env: &Env, options: Option<Object>) -> Result<OpenSettings, Failure> {
    let Some(options) = options else {
        return Ok(OpenSettings::default());
    };
    let json: JSON = env.get_global()?.get_named_property_unchecked("JSON")?;
    let text = json
        .stringify(options)
        .map_err(|e| bad("options", e.reason))?;
    Ok(OpenSettings::from_camel_json(&text)?)
}

struct State {
    manager: Option<StagingManager>,
    subscriptions: HashMap<u64, (Subscription, ListenerSwitch)>,
    next: u64,
}

/// The staging lifecycle over a state store (SQLite or PostgreSQL) and a deploy backend.
#[napi(js_name = "StagingManager")]
pub struct JsStagingManager {
    state: Arc<Mutex<State>>,
}

impl JsStagingManager {
    fn manager(&self) -> capsa::Result<StagingManager> {
        let manager = lock(&self.state).manager.clone();
        manager.ok_or_else(|| capsa::Error::closed("staging manager"))
    }

    /// A Promise of the future `job` makes from the manager (core's async form), run on
    /// core's runtime; a closed manager rejects it.
    fn run<'e, T, F>(
        &self,
        env: &'e Env,
        job: impl FnOnce(StagingManager) -> F + Send + 'static,
    ) -> napi::Result<Object<'e>>
    where
        T: ToNapiValue + Send + 'static,
        F: Future<Output = capsa::Result<T>> + Send + 'static,
    {
        guard(env, || {
            let manager = self.manager();
            promise(env, async move { job(manager?).await })
        })
    }

    /// A Promise of `job`, a blocking call core has no async form of, run on the blocking
    /// threads of core's runtime; a closed manager rejects it.
    fn run_blocking<'e, T: ToNapiValue + Send + 'static>(
        &self,
        env: &'e Env,
        job: impl FnOnce(StagingManager) -> capsa::Result<T> + Send + 'static,
    ) -> napi::Result<Object<'e>> {
        guard(env, || {
            let manager = self.manager();
            promise_blocking(env, move || job(manager?))
        })
    }
}

#[napi]
impl JsStagingManager {
    /// Open the state `state` with `backend`, through core's one opening (the same as every
    /// binding's and the CLI's). `state` is an SQLite state file (created if missing) or a
    /// `postgres://` URL; `backend` is `'mock'`, `'script:DIR'` or `'kubernetes:DIR'`, or a
    /// backend object. A command interrupted by a crash is found pending and finished or
    /// failed by `reconcile`.
    #[napi(
        ts_args_type = "state: string, backend: string | MockBackend | ScriptBackend | KubernetesBackend, options?: StagingManagerOptions",
        ts_return_type = "Promise<StagingManager>"
    )]
    pub fn open<'e>(
        env: &'e Env,
        state: String,
        backend: Either4<String, &JsMockBackend, &JsScriptBackend, &JsKubernetesBackend>,
        options: Option<Object>,
    ) -> napi::Result<Object<'e>> {
        guard(env, || {
            let settings = open_settings(env, options)?;
            let backend: Either<String, Arc<dyn Deployer>> = match backend {
                Either4::A(spec) => Either::A(spec),
                Either4::B(m) => Either::B(m.inner.clone()),
                Either4::C(s) => Either::B(s.inner.clone()),
                Either4::D(k) => Either::B(k.inner.clone()),
            };
            promise_blocking(env, move || {
                let manager = match backend {
                    Either::A(spec) => settings.open(&state, &BackendSpec::parse(&spec)?)?,
                    Either::B(deployer) => settings.open_with_deployer(&state, deployer)?,
                };
                let state = State {
                    manager: Some(manager),
                    subscriptions: HashMap::new(),
                    next: 1,
                };
                Ok(JsStagingManager {
                    state: Arc::new(Mutex::new(state)),
                })
            })
        })
    }

    /// Create a staging and wait for the backend: CreatePending, then Running (or Failure).
    /// `INVALID_TRANSITION` if it exists, `INVALID_NAME` for a bad name.
    #[napi(
        ts_args_type = "name: string, tag: string, overrides?: Array<OverrideInit>, options?: CommandInit",
        ts_return_type = "Promise<Staging>"
    )]
    pub fn create<'e>(
        &self,
        env: &'e Env,
        name: String,
        tag: String,
        overrides: Option<Vec<Option<OverrideInit>>>,
        options: Option<CommandInit>,
    ) -> napi::Result<Object<'e>> {
        self.run(env, move |m| async move {
            let overrides = to_overrides(overrides)?;
            let req = CommandRequest::Create {
                name,
                tag,
                overrides,
            };
            run_with(m, req, options).await
        })
    }

    /// Update a Running or Failure staging's tag and overrides (`undefined` overrides keep
    /// the stored ones): UpdatePending, then Running (or Failure). `BUSY` while another
    /// command runs on it.
    #[napi(
        ts_args_type = "name: string, tag: string, overrides?: Array<OverrideInit>, options?: CommandInit",
        ts_return_type = "Promise<Staging>"
    )]
    pub fn update<'e>(
        &self,
        env: &'e Env,
        name: String,
        tag: String,
        overrides: Option<Vec<Option<OverrideInit>>>,
        options: Option<CommandInit>,
    ) -> napi::Result<Object<'e>> {
        self.run(env, move |m| async move {
            let overrides = match overrides {
                Some(list) => Some(to_overrides(Some(list))?),
                None => None,
            };
            let req = CommandRequest::Update {
                name,
                tag,
                overrides,
            };
            run_with(m, req, options).await
        })
    }

    /// Archive a staging (workloads removed, volumes kept): DeletePending, then Archived.
    #[napi(ts_return_type = "Promise<Staging>")]
    pub fn delete<'e>(&self, env: &'e Env, name: String) -> napi::Result<Object<'e>> {
        self.run(env, move |m| async move {
            m.delete_async(&name).await.map(view)
        })
    }

    /// Recreate an archived staging with its last settings (`options.ttl`: a new time to
    /// live; without it an expiry that has passed is dropped).
    #[napi(
        ts_args_type = "name: string, options?: CommandInit",
        ts_return_type = "Promise<Staging>"
    )]
    pub fn restore<'e>(
        &self,
        env: &'e Env,
        name: String,
        options: Option<CommandInit>,
    ) -> napi::Result<Object<'e>> {
        self.run(env, move |m| async move {
            run_with(m, CommandRequest::Restore { name }, options).await
        })
    }

    /// Remove an archived or failed staging for good; resolves to `null` once it is gone.
    #[napi(ts_return_type = "Promise<Staging | null>")]
    pub fn cleanup<'e>(&self, env: &'e Env, name: String) -> napi::Result<Object<'e>> {
        self.run(env, move |m| async move {
            m.cleanup_async(&name).await.map(|s| s.map(view))
        })
    }

    /// One staging (`NOT_FOUND` if absent).
    #[napi(ts_return_type = "Promise<Staging>")]
    pub fn get<'e>(&self, env: &'e Env, name: String) -> napi::Result<Object<'e>> {
        self.run(
            env,
            move |m| async move { m.get_async(&name).await.map(view) },
        )
    }

    /// Every staging, sorted by name.
    #[napi(ts_return_type = "Promise<Array<Staging>>")]
    pub fn list<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        self.run(env, move |m| async move {
            m.list_async()
                .await
                .map(|v| v.into_iter().map(view).collect::<Vec<_>>())
        })
    }

    /// Ask the backend about the stagings due for a check (Running ⇄ Failure), fail pending
    /// commands past their timeout and finish interrupted ones.
    #[napi(ts_return_type = "Promise<ReconcileReport>")]
    pub fn reconcile<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        self.run(env, move |m| async move {
            let r = m.reconcile_async().await?;
            Ok(ReconcileReport {
                checked: r.checked as u32,
                changed: r.changed as u32,
                transient_errors: r.transient_errors as u32,
                resolved_pending: r.resolved_pending as u32,
                failed_pending: r.failed_pending as u32,
                archive_problems: r.archive_problems as u32,
                expired: r.expired as u32,
                skipped: r.skipped as u32,
            })
        })
    }

    /// Clean up archived stagings older than `olderThanMs` (the retention by default);
    /// resolves to their names.
    #[napi(ts_return_type = "Promise<Array<string>>")]
    pub fn clean_archived<'e>(
        &self,
        env: &'e Env,
        older_than_ms: Option<f64>,
    ) -> napi::Result<Object<'e>> {
        self.run(env, move |m| async move {
            let older = match older_than_ms {
                Some(ms) => Some(millis("olderThanMs", ms)?),
                None => None,
            };
            m.clean_archived_async(older).await
        })
    }

    /// The audit log (oldest first), private values masked.
    #[napi(ts_return_type = "Promise<Array<AuditEntry>>")]
    pub fn audit_log<'e>(
        &self,
        env: &'e Env,
        query: Option<AuditQuery>,
    ) -> napi::Result<Object<'e>> {
        self.run(env, move |m| async move {
            let q = query.unwrap_or(AuditQuery {
                name: None,
                after_id: None,
                limit: None,
            });
            let core = capsa::staging::AuditQuery {
                name: q.name,
                after_id: q.after_id,
                limit: q.limit.map(|l| l as usize),
            };
            let rows = m.audit_log_async(core).await?;
            Ok(rows.into_iter().map(audit).collect::<Vec<_>>())
        })
    }

    /// Events of every process sharing the state file with a sequence number above `after`
    /// (oldest first, at most `limit`, 1000 by default): poll it to follow changes made
    /// elsewhere.
    #[napi(ts_return_type = "Promise<Array<StagingEvent>>")]
    pub fn events_since<'e>(
        &self,
        env: &'e Env,
        after: i64,
        limit: Option<u32>,
    ) -> napi::Result<Object<'e>> {
        self.run_blocking(env, move |m| {
            let events = m.events_since(
                after,
                limit.map_or(capsa::staging::DEFAULT_EVENTS_LIMIT, |l| l as usize),
            )?;
            Ok(events.iter().map(event).collect::<Vec<_>>())
        })
    }

    /// The sequence number of the newest event in the feed (0 when empty).
    #[napi(ts_return_type = "Promise<number>")]
    pub fn last_event_seq<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        self.run_blocking(env, move |m| m.last_event_seq())
    }

    /// Call `listener` with every event this manager produces (status changes, finished
    /// commands), from the background. Returns a function that unsubscribes; after it, no
    /// event arrives and the subscription no longer keeps the process alive. A listener
    /// that throws does not crash the process: the error becomes a process warning named
    /// `'CapsaListenerError'`, and later events still arrive.
    #[napi(
        ts_args_type = "listener: (event: StagingEvent) => void",
        ts_return_type = "() => void"
    )]
    pub fn subscribe<'e>(
        &self,
        env: &'e Env,
        listener: Function<'_, StagingEvent, UnknownReturnValue>,
    ) -> napi::Result<Function<'e, (), ()>> {
        guard(env, || {
            let manager = self.manager()?;
            let listener = Listener::new(env, listener)?;
            let switch = listener.switch();
            let subscription = manager.subscribe(move |e| listener.send(event(e)));
            let id = {
                let mut st = lock(&self.state);
                let id = st.next;
                st.next += 1;
                st.subscriptions.insert(id, (subscription, switch));
                id
            };
            let state = Arc::downgrade(&self.state);
            let unsubscribe = env.create_function_from_closure("unsubscribe", move |ctx| {
                guard(ctx.env, || {
                    if let Some(state) = state.upgrade() {
                        // Dropping the subscription drops the listener: nothing keeps the
                        // loop alive.
                        let removed = lock(&state).subscriptions.remove(&id);
                        if let Some((subscription, switch)) = removed {
                            // Calls already queued are dropped too: none reaches the listener.
                            switch.off();
                            drop(subscription);
                        }
                    }
                    Ok(())
                })
            })?;
            Ok(unsubscribe)
        })
    }

    /// Close the manager: every subscription ends and later calls reject with
    /// `INVALID_ARGUMENT` ("… it is closed"). Closing twice is harmless.
    #[napi]
    pub fn close(&self, env: Env) -> napi::Result<()> {
        guard(&env, || {
            let (manager, subs) = {
                let mut st = lock(&self.state);
                (st.manager.take(), std::mem::take(&mut st.subscriptions))
            };
            for (subscription, switch) in subs.into_values() {
                switch.off();
                drop(subscription);
            }
            drop(manager);
            Ok(())
        })
    }

    /// Whether `close` was called.
    #[napi(getter)]
    pub fn closed(&self, env: Env) -> napi::Result<bool> {
        guard(&env, || Ok(lock(&self.state).manager.is_none()))
    }
}

/// A filter for `auditLog`.
#[napi(object)]
pub struct AuditQuery {
    /// Only this staging.
    pub name: Option<String>,
    /// Only rows with an id greater than this.
    pub after_id: Option<i64>,
    /// At most this many rows (the newest), oldest first.
    pub limit: Option<u32>,
}

/// One row of the audit log (private override values masked).
#[napi(object)]
pub struct AuditEntry {
    /// Row id.
    pub id: f64,
    /// The staging.
    pub name: String,
    /// The command (or `reconcile`).
    pub action: String,
    /// Who issued it.
    pub actor: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The overrides as `KEY=VALUE`, private values masked.
    pub overrides: Vec<String>,
    /// `'Pending'`, `'Success'`, `'Failure'` or `'Refused'`.
    #[napi(ts_type = "'Pending' | 'Success' | 'Failure' | 'Refused'")]
    pub outcome: String,
    /// Status before.
    pub status_before: Option<String>,
    /// Status after.
    pub status_after: Option<String>,
    /// Failure reason.
    pub reason: Option<String>,
    /// Exit code of a script backend.
    pub exit_code: Option<i32>,
    /// When it started (ISO 8601).
    pub started_at: String,
    /// How long it took.
    pub duration_ms: Option<f64>,
    /// Backend output (bounded, private values masked).
    pub output: String,
}

fn audit(a: capsa::staging::AuditEntry) -> AuditEntry {
    AuditEntry {
        id: a.id as f64,
        name: a.name,
        action: a.action,
        actor: a.actor,
        tag: a.tag,
        overrides: a.overrides,
        outcome: a.outcome.as_str().to_string(),
        status_before: a.status_before.map(|s| s.as_str().to_string()),
        status_after: a.status_after.map(|s| s.as_str().to_string()),
        reason: a.reason,
        exit_code: a.exit_code,
        started_at: a.started_at.to_rfc3339(),
        duration_ms: a.duration_ms.map(|d| d as f64),
        output: a.output,
    }
}
