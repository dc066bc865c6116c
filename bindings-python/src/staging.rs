//! `capsa.StagingManager`, its backends (`MockBackend`, `ScriptBackend`,
//! `KubernetesBackend`), `Override`,
//! `Status`, and the records it answers with (`Staging`, `Event`, `AuditEntry`,
//! `ReconcileReport`), plus `Subscription`: events delivered to a Python callback from a
//! background thread, or iterated.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use capsa::staging::{
    self, AuditEntry, AuditQuery, BackendReply, CommandOptions, CommandRequest, Deployer, Dialect,
    Event, EventKind, Expiry, KubernetesDeployer, ManagerOptions, MockCall, MockDeployer, Override,
    OverrideEdit, ReconcileReport, Scope, ScriptDeployer, ScriptNamespace, Settle, Staging,
    StagingManager,
};
use chrono::{DateTime, Datelike, Timelike, Utc};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::errors::IntoPyResult;
use crate::wait;

fn bad_arg(what: &'static str, reason: String) -> PyErr {
    crate::errors::to_py(capsa::Error::InvalidArgument { what, reason })
}

fn seconds(what: &'static str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| bad_arg(what, format!("{s} is not a duration")))
}

/// A UTC `datetime.datetime` for a core timestamp.
pub(crate) fn to_datetime<'py>(py: Python<'py>, t: &DateTime<Utc>) -> PyResult<Bound<'py, PyAny>> {
    static CLASSES: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();
    let (cls, utc) = CLASSES.get_or_try_init(py, || -> PyResult<_> {
        let m = py.import("datetime")?;
        let utc = m.getattr("timezone")?.getattr("utc")?;
        Ok((m.getattr("datetime")?.unbind(), utc.unbind()))
    })?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("tzinfo", utc.bind(py))?;
    cls.bind(py).call(
        (
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.timestamp_subsec_micros().min(999_999),
        ),
        Some(&kwargs),
    )
}

fn opt_datetime<'py>(
    py: Python<'py>,
    t: &Option<DateTime<Utc>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    t.as_ref().map(|t| to_datetime(py, t)).transpose()
}

// ---- Status -------------------------------------------------------------------------------

/// The status of a staging. Running, Failure and Archived are stable; the `*Pending` ones
/// mean a command is in progress.
#[pyclass(name = "Status", module = "capsa", eq, eq_int, frozen, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyStatus {
    /// Deployed and healthy.
    Running,
    /// The last command or health check failed.
    Failure,
    /// A create or restore is in progress.
    CreatePending,
    /// An update is in progress.
    UpdatePending,
    /// A delete (archive) is in progress.
    DeletePending,
    /// Workloads removed, volumes kept.
    Archived,
}

impl From<staging::Status> for PyStatus {
    fn from(s: staging::Status) -> Self {
        match s {
            staging::Status::Running => PyStatus::Running,
            staging::Status::Failure => PyStatus::Failure,
            staging::Status::CreatePending => PyStatus::CreatePending,
            staging::Status::UpdatePending => PyStatus::UpdatePending,
            staging::Status::DeletePending => PyStatus::DeletePending,
            staging::Status::Archived => PyStatus::Archived,
        }
    }
}

impl PyStatus {
    fn core(self) -> staging::Status {
        match self {
            PyStatus::Running => staging::Status::Running,
            PyStatus::Failure => staging::Status::Failure,
            PyStatus::CreatePending => staging::Status::CreatePending,
            PyStatus::UpdatePending => staging::Status::UpdatePending,
            PyStatus::DeletePending => staging::Status::DeletePending,
            PyStatus::Archived => staging::Status::Archived,
        }
    }
}

#[pymethods]
impl PyStatus {
    /// The status name (`"Running"`, `"CreatePending"`…).
    #[getter]
    fn value(&self) -> &'static str {
        self.core().as_str()
    }

    /// Whether a command is in progress in this status.
    #[getter]
    fn pending(&self) -> bool {
        self.core().is_pending()
    }

    /// The status of a name (`InvalidArgumentError` for an unknown one).
    #[staticmethod]
    fn parse(name: &str) -> PyResult<Self> {
        staging::Status::parse(name)
            .map(PyStatus::from)
            .ok_or_else(|| bad_arg("status", format!("{name:?} is not a staging status")))
    }

    fn __str__(&self) -> &'static str {
        self.core().as_str()
    }
}

// ---- Override -----------------------------------------------------------------------------

/// One override, `key=value`, for the app environment (`scope="app"`) or the staging's
/// settings (`scope="staging"`). A private value is passed to the backend and masked
/// (`***`) everywhere else, this object's `value` and `repr` included.
#[pyclass(name = "Override", module = "capsa", frozen)]
#[derive(Clone)]
pub struct PyOverride {
    inner: Override,
}

#[pymethods]
impl PyOverride {
    #[new]
    #[pyo3(signature = (key, value, scope = "app", private = false))]
    fn new(key: String, value: String, scope: &str, private: bool) -> PyResult<Self> {
        let scope = Scope::parse(scope).py_err()?;
        let inner = if private {
            Override::private(scope, key, value)
        } else {
            Override::public(scope, key, value)
        };
        inner.validate().py_err()?;
        Ok(PyOverride { inner })
    }

    /// The key.
    #[getter]
    fn key(&self) -> &str {
        &self.inner.key
    }

    /// The value, or `"***"` if private.
    #[getter]
    fn value(&self) -> &str {
        self.inner.shown_value()
    }

    /// `"app"` or `"staging"`.
    #[getter]
    fn scope(&self) -> &'static str {
        self.inner.scope.as_str()
    }

    /// Whether the value is private.
    #[getter]
    fn private(&self) -> bool {
        self.inner.visibility == staging::Visibility::Private
    }

    fn __repr__(&self) -> String {
        format!(
            "Override({:?}, {:?}, scope={:?}{})",
            self.inner.key,
            self.inner.shown_value(),
            self.scope(),
            if self.private() { ", private=True" } else { "" }
        )
    }
}

// ---- backends -----------------------------------------------------------------------------

fn mock_call(name: &str) -> PyResult<MockCall> {
    MockCall::parse(name).py_err()
}

fn reply(outcome: &str, reason: String) -> PyResult<BackendReply> {
    MockDeployer::reply(outcome, reason).py_err()
}

/// The in-memory backend, for tests: every call succeeds at once unless told otherwise.
#[pyclass(name = "MockBackend", module = "capsa", frozen)]
pub struct PyMockBackend {
    inner: Arc<MockDeployer>,
}

#[pymethods]
impl PyMockBackend {
    /// A backend where everything succeeds; `min_tag` makes `tag_check` refuse lower tags.
    #[new]
    #[pyo3(signature = (min_tag = None))]
    fn new(min_tag: Option<String>) -> Self {
        let inner = Arc::new(MockDeployer::new());
        if let Some(t) = min_tag {
            inner.set_min_tag(t);
        }
        PyMockBackend { inner }
    }

    /// Queue a one-shot reply for the next `call` (`"create"`, `"check"`…): `outcome` is
    /// `"success"`, `"failed"` or `"unavailable"`.
    #[pyo3(signature = (call, outcome, reason = None))]
    fn push(&self, call: &str, outcome: &str, reason: Option<String>) -> PyResult<()> {
        let reason = reason.unwrap_or_default();
        self.inner.push(mock_call(call)?, reply(outcome, reason)?);
        Ok(())
    }

    /// Set the reply `call` gives when nothing is queued.
    #[pyo3(signature = (call, outcome, reason = None))]
    fn set_default(&self, call: &str, outcome: &str, reason: Option<String>) -> PyResult<()> {
        let reason = reason.unwrap_or_default();
        self.inner
            .set_default(mock_call(call)?, reply(outcome, reason)?);
        Ok(())
    }

    /// Make `call` take `delay` seconds before it answers.
    fn set_delay(&self, call: &str, delay: f64) -> PyResult<()> {
        self.inner
            .set_delay(mock_call(call)?, seconds("delay", delay)?);
        Ok(())
    }

    /// Hold `call`: it waits without answering until `release(call)`, so a command is
    /// certainly in flight while the test acts on it.
    fn hold(&self, call: &str) -> PyResult<()> {
        self.inner.hold(mock_call(call)?);
        Ok(())
    }

    /// Let the held `call`s answer, and stop holding `call`.
    fn release(&self, call: &str) -> PyResult<()> {
        self.inner.release(mock_call(call)?);
        Ok(())
    }

    /// How many `call`s are waiting at a hold now.
    fn held(&self, call: &str) -> PyResult<usize> {
        Ok(self.inner.held(mock_call(call)?))
    }

    /// Every call made so far as `(call, staging name)`, in order.
    fn calls(&self) -> Vec<(&'static str, String)> {
        self.inner
            .calls()
            .into_iter()
            .map(|(c, n)| (c.as_str(), n))
            .collect()
    }

    /// How many times `call` was made.
    fn count(&self, call: &str) -> PyResult<usize> {
        Ok(self.inner.count(mock_call(call)?))
    }

    /// Make `tag_check` refuse tags lower than `min` (as `min_tag` does at construction).
    fn set_min_tag(&self, min: String) {
        self.inner.set_min_tag(min);
    }

    /// Forget the recorded calls.
    fn clear_calls(&self) {
        self.inner.clear_calls();
    }
}

/// DM's staging control scripts: executables `create`, `update`, `delete`, `check`,
/// `cleanup`, `archive_check`, `tag_check` in `dir` (or Octopod's, `dialect="octopod"`);
/// `namespace` is one namespace or a pattern with `{name}`; `settle` is `"check"` (DM: pending
/// until `check` passes) or `"exit"`.
#[pyclass(name = "ScriptBackend", module = "capsa", frozen)]
pub struct PyScriptBackend {
    inner: Arc<ScriptDeployer>,
}

#[pymethods]
impl PyScriptBackend {
    #[new]
    #[pyo3(signature = (
        dir, project_name = None, base_domain = None, timeout = None, output_limit = None,
        namespace = None, dialect = None, settle = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        dir: PathBuf,
        project_name: Option<String>,
        base_domain: Option<String>,
        timeout: Option<f64>,
        output_limit: Option<usize>,
        namespace: Option<String>,
        dialect: Option<String>,
        settle: Option<String>,
    ) -> PyResult<Self> {
        // As core's `script:DIR`: script locations from DM's environment variables first.
        let mut d = ScriptDeployer::new(dir).with_env_locations(|v| std::env::var_os(v));
        if let Some(n) = namespace {
            d = d.with_namespace(ScriptNamespace::parse(&n).py_err()?);
        }
        if let Some(t) = dialect {
            d = d.with_dialect(Dialect::parse(&t).py_err()?);
        }
        if let Some(t) = settle {
            d = d.with_settle(Settle::parse(&t).py_err()?);
        }
        if let Some(p) = project_name {
            d = d.with_project_name(p);
        }
        if let Some(b) = base_domain {
            d = d.with_base_domain(b);
        }
        if let Some(t) = timeout {
            d = d.with_timeout(seconds("timeout", t)?);
        }
        if let Some(n) = output_limit {
            d = d.with_output_limit(n);
        }
        Ok(PyScriptBackend { inner: Arc::new(d) })
    }

    /// The scripts directory.
    #[getter]
    fn dir(&self) -> PathBuf {
        self.inner.dir().to_path_buf()
    }
}

/// A Kubernetes cluster: the manifests of `template_dir` server-side applied into one
/// namespace per staging, through the kubeconfig file `kubeconfig` (else `KUBECONFIG`,
/// `~/.kube/config`, or the in-cluster service account).
#[pyclass(name = "KubernetesBackend", module = "capsa", frozen)]
pub struct PyKubernetesBackend {
    inner: Arc<KubernetesDeployer>,
}

#[pymethods]
impl PyKubernetesBackend {
    #[new]
    #[pyo3(signature = (template_dir, kubeconfig = None, ready_timeout = None))]
    fn new(
        py: Python<'_>,
        template_dir: PathBuf,
        kubeconfig: Option<PathBuf>,
        ready_timeout: Option<f64>,
    ) -> PyResult<Self> {
        let ready = ready_timeout
            .map(|t| seconds("ready_timeout", t))
            .transpose()?;
        let mut d = py
            .detach(|| KubernetesDeployer::new(template_dir, kubeconfig))
            .py_err()?;
        if let Some(t) = ready {
            d = d.with_ready_timeout(t);
        }
        Ok(PyKubernetesBackend { inner: Arc::new(d) })
    }

    /// The template directory.
    #[getter]
    fn template_dir(&self) -> PathBuf {
        self.inner.template_dir().to_path_buf()
    }
}

/// What `StagingManager.open` accepts as a backend.
#[derive(FromPyObject)]
pub(crate) enum BackendArg<'py> {
    Mock(Bound<'py, PyMockBackend>),
    Script(Bound<'py, PyScriptBackend>),
    Kubernetes(Bound<'py, PyKubernetesBackend>),
}

impl BackendArg<'_> {
    fn deployer(&self) -> Arc<dyn Deployer> {
        match self {
            BackendArg::Mock(m) => m.get().inner.clone(),
            BackendArg::Script(s) => s.get().inner.clone(),
            BackendArg::Kubernetes(k) => k.get().inner.clone(),
        }
    }
}

// ---- records ------------------------------------------------------------------------------

/// A staging as recorded in the state store.
#[pyclass(name = "Staging", module = "capsa", frozen)]
pub struct PyStaging {
    inner: Staging,
}

#[pymethods]
impl PyStaging {
    /// Its name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// The tag last requested.
    #[getter]
    fn tag(&self) -> &str {
        &self.inner.tag
    }

    /// The overrides last requested (private values masked).
    #[getter]
    fn overrides(&self) -> Vec<PyOverride> {
        self.inner
            .overrides
            .iter()
            .map(|o| PyOverride { inner: o.clone() })
            .collect()
    }

    /// Its status.
    #[getter]
    fn status(&self) -> PyStatus {
        self.inner.status.into()
    }

    /// Why it is in Failure.
    #[getter]
    fn reason(&self) -> Option<&str> {
        self.inner.reason.as_deref()
    }

    /// The command in progress (`"create"`…), if any.
    #[getter]
    fn command_in_progress(&self) -> Option<&'static str> {
        self.inner.command_in_progress.map(|c| c.as_str())
    }

    /// When the record was created (UTC).
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_datetime(py, &self.inner.created_at)
    }

    /// When the record last changed (UTC).
    #[getter]
    fn updated_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_datetime(py, &self.inner.updated_at)
    }

    /// When the current status was entered (UTC).
    #[getter]
    fn status_since<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_datetime(py, &self.inner.status_since)
    }

    /// When the backend was last asked about it (UTC), if ever.
    #[getter]
    fn checked_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, &self.inner.checked_at)
    }

    /// When it expires (UTC): `reconcile` archives it then. `None`: never.
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, &self.inner.expires_at)
    }

    fn __repr__(&self) -> String {
        format!(
            "Staging({:?}, tag={:?}, status={})",
            self.inner.name, self.inner.tag, self.inner.status
        )
    }
}

/// A change: a staging's status changed (`kind == "status_changed"`) or a command finished
/// (`kind == "command_finished"`).
#[pyclass(name = "Event", module = "capsa", frozen)]
pub struct PyEvent {
    inner: Event,
}

#[pymethods]
impl PyEvent {
    /// Position in the store's event feed (increasing).
    #[getter]
    fn seq(&self) -> i64 {
        self.inner.seq
    }

    /// When it happened (UTC).
    #[getter]
    fn at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_datetime(py, &self.inner.at)
    }

    /// The staging.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// `"status_changed"` or `"command_finished"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.snake_name()
    }

    /// For a status change: the status before (`None` for a new staging).
    #[getter]
    fn old_status(&self) -> Option<PyStatus> {
        match &self.inner.kind {
            EventKind::StatusChanged { from, .. } => from.map(PyStatus::from),
            EventKind::CommandFinished { .. } => None,
        }
    }

    /// For a status change: the status after (`None` once removed by cleanup).
    #[getter]
    fn new_status(&self) -> Option<PyStatus> {
        match &self.inner.kind {
            EventKind::StatusChanged { to, .. } => to.map(PyStatus::from),
            EventKind::CommandFinished { .. } => None,
        }
    }

    /// For a finished command: the command (or `"reconcile"`).
    #[getter]
    fn action(&self) -> Option<&str> {
        match &self.inner.kind {
            EventKind::CommandFinished { action, .. } => Some(action),
            EventKind::StatusChanged { .. } => None,
        }
    }

    /// For a finished command: `"Success"`, `"Failure"`, `"Refused"` or `"Pending"`.
    #[getter]
    fn outcome(&self) -> Option<&'static str> {
        match &self.inner.kind {
            EventKind::CommandFinished { outcome, .. } => Some(outcome.as_str()),
            EventKind::StatusChanged { .. } => None,
        }
    }

    /// For a finished command: its audit row id.
    #[getter]
    fn audit_id(&self) -> Option<i64> {
        match &self.inner.kind {
            EventKind::CommandFinished { audit_id, .. } => Some(*audit_id),
            EventKind::StatusChanged { .. } => None,
        }
    }

    /// The failure reason, if any.
    #[getter]
    fn reason(&self) -> Option<&str> {
        match &self.inner.kind {
            EventKind::StatusChanged { reason, .. } | EventKind::CommandFinished { reason, .. } => {
                reason.as_deref()
            }
        }
    }

    fn __repr__(&self) -> String {
        match &self.inner.kind {
            EventKind::StatusChanged { from, to, .. } => format!(
                "Event({}, {:?}, status {} -> {})",
                self.inner.seq,
                self.inner.name,
                from.map_or("none", |s| s.as_str()),
                to.map_or("none", |s| s.as_str())
            ),
            EventKind::CommandFinished {
                action, outcome, ..
            } => format!(
                "Event({}, {:?}, {action} {})",
                self.inner.seq,
                self.inner.name,
                outcome.as_str()
            ),
        }
    }
}

/// One row of the audit log (private values masked).
#[pyclass(name = "AuditEntry", module = "capsa", frozen)]
pub struct PyAuditEntry {
    inner: AuditEntry,
}

#[pymethods]
impl PyAuditEntry {
    /// Increasing id.
    #[getter]
    fn id(&self) -> i64 {
        self.inner.id
    }

    /// The staging name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// `create`, `update`, `delete`, `restore`, `cleanup` or `reconcile`.
    #[getter]
    fn action(&self) -> &str {
        &self.inner.action
    }

    /// Who asked.
    #[getter]
    fn actor(&self) -> &str {
        &self.inner.actor
    }

    /// The tag involved.
    #[getter]
    fn tag(&self) -> Option<&str> {
        self.inner.tag.as_deref()
    }

    /// Overrides as `KEY=VALUE`, private values masked.
    #[getter]
    fn overrides(&self) -> Vec<String> {
        self.inner.overrides.clone()
    }

    /// `"Pending"`, `"Success"`, `"Failure"` or `"Refused"`.
    #[getter]
    fn outcome(&self) -> &'static str {
        self.inner.outcome.as_str()
    }

    /// The status before.
    #[getter]
    fn status_before(&self) -> Option<PyStatus> {
        self.inner.status_before.map(PyStatus::from)
    }

    /// The status after (`None`: gone, or not finished).
    #[getter]
    fn status_after(&self) -> Option<PyStatus> {
        self.inner.status_after.map(PyStatus::from)
    }

    /// Failure or refusal reason.
    #[getter]
    fn reason(&self) -> Option<&str> {
        self.inner.reason.as_deref()
    }

    /// The backend's exit code.
    #[getter]
    fn exit_code(&self) -> Option<i32> {
        self.inner.exit_code
    }

    /// When it started (UTC).
    #[getter]
    fn started_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_datetime(py, &self.inner.started_at)
    }

    /// How long it took, in milliseconds, once finished.
    #[getter]
    fn duration_ms(&self) -> Option<u64> {
        self.inner.duration_ms
    }

    /// The backend's output (bounded, private values masked).
    #[getter]
    fn output(&self) -> &str {
        &self.inner.output
    }

    fn __repr__(&self) -> String {
        format!(
            "AuditEntry({}, {:?}, {}, {})",
            self.inner.id,
            self.inner.name,
            self.inner.action,
            self.inner.outcome.as_str()
        )
    }
}

/// What one `reconcile` did.
#[pyclass(name = "ReconcileReport", module = "capsa", frozen, get_all)]
pub struct PyReconcileReport {
    /// Stagings asked about.
    checked: usize,
    /// Stable stagings whose status changed.
    changed: usize,
    /// Backend calls that could not be made.
    transient_errors: usize,
    /// Interrupted commands finished from the backend's answer.
    resolved_pending: usize,
    /// Pending commands failed (timed out or answered "failed").
    failed_pending: usize,
    /// Archived stagings not properly archived.
    archive_problems: usize,
    /// Stagings past their expiry whose archive was started.
    expired: usize,
    /// Stagings left to another reconcile sharing the state.
    skipped: usize,
}

impl From<ReconcileReport> for PyReconcileReport {
    fn from(r: ReconcileReport) -> Self {
        PyReconcileReport {
            checked: r.checked,
            changed: r.changed,
            transient_errors: r.transient_errors,
            resolved_pending: r.resolved_pending,
            failed_pending: r.failed_pending,
            archive_problems: r.archive_problems,
            expired: r.expired,
            skipped: r.skipped,
        }
    }
}

#[pymethods]
impl PyReconcileReport {
    fn __repr__(&self) -> String {
        format!(
            "ReconcileReport(checked={}, changed={}, transient_errors={})",
            self.checked, self.changed, self.transient_errors
        )
    }
}

// ---- subscription -------------------------------------------------------------------------

/// Events for iteration: core's event channel ([`StagingManager::event_channel`]), read
/// without the GIL. A reader that falls behind the channel's capacity skips the oldest.
/// Closing keeps the events received until then and drops the channel, so nothing made
/// afterwards arrives.
struct Queue {
    state: Mutex<(Option<broadcast::Receiver<Event>>, VecDeque<Event>)>,
}

impl Queue {
    fn new(rx: broadcast::Receiver<Event>) -> Queue {
        Queue {
            state: Mutex::new((Some(rx), VecDeque::new())),
        }
    }

    fn close(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (rx, rest) = &mut *g;
        if let Some(mut rx) = rx.take() {
            loop {
                match rx.try_recv() {
                    Ok(e) => rest.push_back(e),
                    Err(TryRecvError::Lagged(_)) => continue,
                    Err(_) => break,
                }
            }
        }
    }

    /// The next event, `Err(true)` when closed and drained, `Err(false)` on timeout.
    fn pop(&self, wait: Duration) -> Result<Event, bool> {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (rx, rest) = &mut *g;
        let Some(rx) = rx else {
            return rest.pop_front().ok_or(true);
        };
        loop {
            // The timer is made inside the runtime's context (block_on enters it).
            match capsa::runtime::block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                Ok(Ok(e)) => return Ok(e),
                Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Err(RecvError::Closed)) => return Err(true),
                Err(_) => return Err(false),
            }
        }
    }
}

/// An event subscription: events go to the callback (called from a background thread with
/// the GIL), or, without a callback, are queued for iteration (`for event in sub`, or
/// `sub.get(timeout)`). `unsubscribe()` (or leaving a `with` block, or dropping the handle)
/// stops them.
#[pyclass(name = "Subscription", module = "capsa", frozen)]
pub struct PySubscription {
    state: Arc<SubState>,
}

/// A subscription's parts, shared with its manager so that closing the manager ends it.
struct SubState {
    handle: Mutex<Option<staging::Subscription>>,
    active: Arc<AtomicBool>,
    queue: Option<Arc<Queue>>,
}

impl SubState {
    fn stop(&self) {
        self.active.store(false, Ordering::SeqCst);
        if let Some(q) = &self.queue {
            q.close();
        }
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(handle);
    }
}

impl PySubscription {
    fn next_event(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Event>> {
        let Some(queue) = &self.state.queue else {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "this subscription delivers its events to its callback",
            ));
        };
        let deadline = timeout
            .map(|t| seconds("timeout", t))
            .transpose()?
            .map(|d| Instant::now() + d);
        loop {
            let slice = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
                None => Duration::from_millis(50),
            };
            match py.detach(|| queue.pop(slice)) {
                Ok(e) => return Ok(Some(e)),
                Err(true) => return Ok(None),
                Err(false) => {
                    py.check_signals()?;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

#[pymethods]
impl PySubscription {
    /// Stop receiving events. Iteration ends once the queued events are read.
    fn unsubscribe(&self) {
        self.state.stop();
    }

    /// Whether events are still delivered.
    #[getter]
    fn active(&self) -> bool {
        self.state.active.load(Ordering::SeqCst)
    }

    /// The next queued event, waiting at most `timeout` seconds (forever with `None`);
    /// `None` on timeout or once unsubscribed and drained.
    #[pyo3(signature = (timeout = None))]
    fn get(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<PyEvent>> {
        Ok(self.next_event(py, timeout)?.map(|inner| PyEvent { inner }))
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyEvent>> {
        Ok(self.next_event(py, None)?.map(|inner| PyEvent { inner }))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.unsubscribe();
        false
    }
}

// ---- manager ------------------------------------------------------------------------------

/// A staging command: waits for the backend without the GIL; Ctrl-C raises at once while
/// the command finishes in the background (core completes it and records the outcome).
fn command<T: Send + 'static>(
    py: Python<'_>,
    work: impl FnOnce() -> capsa::Result<T> + Send + 'static,
) -> PyResult<T> {
    wait::interruptible(py, work, || {}, wait::OnSignal::Leave)?.py_err()
}

/// Core's expiry for a `ttl` argument (`None`: keep).
fn expiry(ttl: Option<&str>) -> PyResult<Expiry> {
    Ok(ttl
        .map(Expiry::parse)
        .transpose()
        .py_err()?
        .unwrap_or_default())
}

fn overrides(list: Vec<PyRef<'_, PyOverride>>) -> Vec<Override> {
    list.iter().map(|o| o.inner.clone()).collect()
}

/// The staging lifecycle over a SQLite state file and a deploy backend.
#[pyclass(name = "StagingManager", module = "capsa", frozen)]
pub struct PyStagingManager {
    inner: StagingManager,
    backend: String,
    closed: AtomicBool,
    subs: Mutex<Vec<Weak<SubState>>>,
}

impl PyStagingManager {
    /// The manager, unless [`close`](Self::close) was called (`INVALID_ARGUMENT`).
    fn open_manager(&self) -> capsa::Result<&StagingManager> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(capsa::Error::closed("staging manager"));
        }
        Ok(&self.inner)
    }

    /// Run a command with options and wait; a command that leaves no staging (only cleanup
    /// does) is `NOT_FOUND`.
    fn run_with(
        &self,
        py: Python<'_>,
        req: CommandRequest,
        expiry: Expiry,
        edits: Vec<OverrideEdit>,
    ) -> PyResult<PyStaging> {
        let name = req.name().to_string();
        let m = self.open_manager().py_err()?.clone();
        let opts = CommandOptions {
            expiry,
            edits,
            ..CommandOptions::default()
        };
        let s = command(py, move || m.run_with(req, opts))?;
        let inner = s
            .ok_or(capsa::Error::NotFound {
                what: "staging",
                name,
            })
            .py_err()?;
        Ok(PyStaging { inner })
    }
}

#[pymethods]
impl PyStagingManager {
    /// Open the state at `state_path` with `backend`: an SQLite state file (created if
    /// missing), or a `postgres://` URL where core is built with PostgreSQL. `key_file` seals
    /// private values (default: `CAPSA_STAGING_KEY_FILE`, else `staging.key` beside an SQLite
    /// state). `notifications` names the notifications file (webhooks and hook commands on
    /// every status change; default: `CAPSA_NOTIFICATIONS`).
    #[staticmethod]
    #[pyo3(signature = (state_path, backend, actor = None, pending_timeout = 600.0,
                        check_interval = 60.0, retention = 14.0 * 24.0 * 3600.0,
                        namespace_prefix = None, key_file = None, notifications = None),
           text_signature = "(state_path, backend, actor=None, pending_timeout=600.0, \
                             check_interval=60.0, retention=1209600.0, namespace_prefix=None, \
                             key_file=None, notifications=None)")]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        state_path: PathBuf,
        backend: BackendArg<'_>,
        actor: Option<String>,
        pending_timeout: f64,
        check_interval: f64,
        retention: f64,
        namespace_prefix: Option<String>,
        key_file: Option<PathBuf>,
        notifications: Option<PathBuf>,
    ) -> PyResult<Self> {
        let mut options = ManagerOptions {
            key_file,
            ..ManagerOptions::default()
        };
        if let Some(path) = notifications {
            options.notifications = capsa::staging::NotifyConfig::load(&path).py_err()?;
        }
        if let Some(a) = actor {
            options.actor = a;
        }
        options.pending_timeout = seconds("pending_timeout", pending_timeout)?;
        options.check_interval = seconds("check_interval", check_interval)?;
        options.retention = seconds("retention", retention)?;
        if let Some(p) = namespace_prefix {
            options.namespace_prefix = p;
        }
        let deployer = backend.deployer();
        let backend = deployer.name().to_string();
        let inner = py
            .detach(|| StagingManager::open_with(&state_path, deployer, options))
            .py_err()?;
        Ok(PyStagingManager {
            inner,
            backend,
            closed: AtomicBool::new(false),
            subs: Mutex::new(Vec::new()),
        })
    }

    /// Create a staging and wait for the backend: Running, or Failure with a reason.
    /// `ttl` (`"3d"`, `"12h"`): `reconcile` archives it once that has passed.
    #[pyo3(signature = (name, tag, overrides = Vec::new(), *, ttl = None),
           text_signature = "(self, name, tag, overrides=(), *, ttl=None)")]
    fn create(
        &self,
        py: Python<'_>,
        name: String,
        tag: String,
        overrides: Vec<PyRef<'_, PyOverride>>,
        ttl: Option<&str>,
    ) -> PyResult<PyStaging> {
        let req = CommandRequest::Create {
            name,
            tag,
            overrides: self::overrides(overrides),
        };
        self.run_with(py, req, expiry(ttl)?, Vec::new())
    }

    /// Update a Running or Failure staging to `tag`; `overrides=None` keeps the stored ones.
    /// `set_overrides` / `unset_overrides` (`(scope, key)` pairs) change single keys and keep
    /// the rest; `ttl` sets a new time to live (`"never"` drops it), else the expiry is kept.
    #[pyo3(signature = (name, tag, overrides = None, *, ttl = None, set_overrides = Vec::new(), unset_overrides = Vec::new()),
           text_signature = "(self, name, tag, overrides=None, *, ttl=None, set_overrides=(), unset_overrides=())")]
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        py: Python<'_>,
        name: String,
        tag: String,
        overrides: Option<Vec<PyRef<'_, PyOverride>>>,
        ttl: Option<&str>,
        set_overrides: Vec<PyRef<'_, PyOverride>>,
        unset_overrides: Vec<(String, String)>,
    ) -> PyResult<PyStaging> {
        let mut edits: Vec<OverrideEdit> = self::overrides(set_overrides)
            .into_iter()
            .map(OverrideEdit::Set)
            .collect();
        for (scope, key) in unset_overrides {
            let scope = Scope::parse(&scope).py_err()?;
            edits.push(OverrideEdit::Unset { scope, key });
        }
        let req = CommandRequest::Update {
            name,
            tag,
            overrides: overrides.map(self::overrides),
        };
        self.run_with(py, req, expiry(ttl)?, edits)
    }

    /// Archive a staging (workloads removed, volumes kept): Archived, or Failure.
    fn delete(&self, py: Python<'_>, name: String) -> PyResult<PyStaging> {
        let m = self.open_manager().py_err()?.clone();
        let inner = command(py, move || m.delete(&name))?;
        Ok(PyStaging { inner })
    }

    /// Recreate an Archived staging with its last settings: Running, or Failure. `ttl`: a
    /// new time to live; without it an expiry that has passed is dropped.
    #[pyo3(signature = (name, *, ttl = None))]
    fn restore(&self, py: Python<'_>, name: String, ttl: Option<&str>) -> PyResult<PyStaging> {
        self.run_with(
            py,
            CommandRequest::Restore { name },
            expiry(ttl)?,
            Vec::new(),
        )
    }

    /// Remove an Archived or Failure staging for good: `None` when gone, else the staging
    /// in Failure.
    fn cleanup(&self, py: Python<'_>, name: String) -> PyResult<Option<PyStaging>> {
        let m = self.open_manager().py_err()?.clone();
        let s = command(py, move || m.cleanup(&name))?;
        Ok(s.map(|inner| PyStaging { inner }))
    }

    /// One staging (`NotFoundError` if there is none).
    fn get(&self, py: Python<'_>, name: String) -> PyResult<PyStaging> {
        let inner = py.detach(|| self.open_manager()?.get(&name)).py_err()?;
        Ok(PyStaging { inner })
    }

    /// Every staging, sorted by name.
    fn list(&self, py: Python<'_>) -> PyResult<Vec<PyStaging>> {
        let all = py.detach(|| self.open_manager()?.list()).py_err()?;
        Ok(all.into_iter().map(|inner| PyStaging { inner }).collect())
    }

    /// The audit log, oldest first: every staging's, or `name`'s; `limit` keeps the newest.
    #[pyo3(signature = (name = None, limit = None, after_id = None))]
    fn log(
        &self,
        py: Python<'_>,
        name: Option<String>,
        limit: Option<usize>,
        after_id: Option<i64>,
    ) -> PyResult<Vec<PyAuditEntry>> {
        let query = AuditQuery {
            name,
            after_id,
            limit,
        };
        let rows = py
            .detach(|| self.open_manager()?.audit_log(&query))
            .py_err()?;
        Ok(rows
            .into_iter()
            .map(|inner| PyAuditEntry { inner })
            .collect())
    }

    /// Ask the backend about every staging that is due and act on the answers.
    fn reconcile(&self, py: Python<'_>) -> PyResult<PyReconcileReport> {
        let m = self.open_manager().py_err()?.clone();
        Ok(command(py, move || m.reconcile())?.into())
    }

    /// Clean up Archived stagings older than `older_than` seconds (default: the retention);
    /// returns the names removed.
    #[pyo3(signature = (older_than = None))]
    fn clean_archived(&self, py: Python<'_>, older_than: Option<f64>) -> PyResult<Vec<String>> {
        let d = older_than.map(|s| seconds("older_than", s)).transpose()?;
        let m = self.open_manager().py_err()?.clone();
        command(py, move || m.clean_archived(d))
    }

    /// Events of every process sharing the state file after `after` (oldest first), at most
    /// `limit` of them (default: core's `DEFAULT_EVENTS_LIMIT`).
    #[pyo3(signature = (after = 0, limit = None))]
    fn events_since(
        &self,
        py: Python<'_>,
        after: i64,
        limit: Option<usize>,
    ) -> PyResult<Vec<PyEvent>> {
        let limit = limit.unwrap_or(capsa::staging::DEFAULT_EVENTS_LIMIT);
        let events = py
            .detach(|| self.open_manager()?.events_since(after, limit))
            .py_err()?;
        Ok(events.into_iter().map(|inner| PyEvent { inner }).collect())
    }

    /// The newest event's sequence number in the state file (0 when none).
    fn last_event_seq(&self, py: Python<'_>) -> PyResult<i64> {
        py.detach(|| self.open_manager()?.last_event_seq()).py_err()
    }

    /// Receive this manager's events: `callback(event)` is called from the thread making
    /// the change (with the GIL); without a callback, the handle is an iterator of events.
    /// Keep the handle: dropping it unsubscribes. An exception raised by the callback is
    /// reported through `sys.unraisablehook` and does not stop later events.
    #[pyo3(signature = (callback = None))]
    fn subscribe(&self, callback: Option<Py<PyAny>>) -> PyResult<PySubscription> {
        let manager = self.open_manager().py_err()?;
        let active = Arc::new(AtomicBool::new(true));
        let flag = active.clone();
        let (queue, handle) = match callback {
            Some(cb) => {
                let handle = manager.subscribe(move |e: &Event| {
                    if !flag.load(Ordering::SeqCst) {
                        return;
                    }
                    Python::attach(|py| {
                        if !flag.load(Ordering::SeqCst) {
                            return;
                        }
                        let event = PyEvent { inner: e.clone() };
                        if let Err(err) = cb.call1(py, (event,)) {
                            err.write_unraisable(py, Some(cb.bind(py)));
                        }
                    });
                });
                (None, Some(handle))
            }
            None => {
                let q = Arc::new(Queue::new(manager.event_channel()));
                (Some(q), None)
            }
        };
        let state = Arc::new(SubState {
            handle: Mutex::new(handle),
            active,
            queue,
        });
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|s| s.strong_count() > 0);
        subs.push(Arc::downgrade(&state));
        Ok(PySubscription { state })
    }

    /// Close the manager: every subscription ends and later calls raise
    /// `InvalidArgumentError` ("it is closed"). Closing twice is fine.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let subs = std::mem::take(&mut *self.subs.lock().unwrap_or_else(|e| e.into_inner()));
        for s in subs.iter().filter_map(Weak::upgrade) {
            s.stop();
        }
    }

    /// Whether [`close`](Self::close) was called.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }

    /// The backend's name (`"mock"`, `"script"`, `"kubernetes"`).
    #[getter]
    fn backend(&self) -> &str {
        &self.backend
    }

    fn __repr__(&self) -> String {
        format!("StagingManager(backend={:?})", self.backend)
    }
}

/// Add the staging classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStatus>()?;
    m.add_class::<PyOverride>()?;
    m.add_class::<PyMockBackend>()?;
    m.add_class::<PyScriptBackend>()?;
    m.add_class::<PyKubernetesBackend>()?;
    m.add_class::<PyStaging>()?;
    m.add_class::<PyEvent>()?;
    m.add_class::<PyAuditEntry>()?;
    m.add_class::<PyReconcileReport>()?;
    m.add_class::<PySubscription>()?;
    m.add_class::<PyStagingManager>()?;
    Ok(())
}
