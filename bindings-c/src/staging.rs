//! Stagings: a manager over an SQLite state file and a deploy backend (mock, script or
//! Kubernetes),
//! the lifecycle commands, and event subscription with a callback + `user_data`.

use std::ffi::{c_char, c_void, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use capsa::staging::{
    BackendSpec, Event, EventKind, OpenSettings, Override, StagingManager, Status, Subscription,
};

use crate::error::{bad_arg, capsa_status, guard, Failure};
use crate::strings::{
    free_box, handle, opt_str_arg, out_param, owned, path_arg, str_arg, with_out,
};

/// A staging manager: lifecycle commands on stagings, state in an SQLite file, deployed
/// through a backend. Thread-safe.
pub struct capsa_staging_manager {
    inner: StagingManager,
}

/// An event subscription. Freeing it unsubscribes. It stays safe to free after its manager.
pub struct capsa_subscription {
    _sub: Subscription,
    state: Arc<SubState>,
}

/// The status of a staging.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum capsa_staging_status {
    /// Deployed and healthy.
    Running = 0,
    /// The last command or health check failed (see the reason).
    Failure = 1,
    /// A create (or restore) is in progress.
    CreatePending = 2,
    /// An update is in progress.
    UpdatePending = 3,
    /// A delete (archive) is in progress.
    DeletePending = 4,
    /// Workloads removed, volumes kept.
    Archived = 5,
}

impl From<Status> for capsa_staging_status {
    fn from(s: Status) -> Self {
        match s {
            Status::Running => capsa_staging_status::Running,
            Status::Failure => capsa_staging_status::Failure,
            Status::CreatePending => capsa_staging_status::CreatePending,
            Status::UpdatePending => capsa_staging_status::UpdatePending,
            Status::DeletePending => capsa_staging_status::DeletePending,
            Status::Archived => capsa_staging_status::Archived,
        }
    }
}

/// Where an override applies.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum capsa_scope {
    /// The app's environment (`--app-env-override`).
    App = 0,
    /// The staging's settings (`--staging-override`).
    Staging = 1,
}

/// Whether an override's value may be shown.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum capsa_visibility {
    /// Shown in logs, events and errors.
    Public = 0,
    /// Stored for restore, shown as `***` everywhere.
    Private = 1,
}

/// One override for create / update.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct capsa_override {
    /// A `capsa_scope` value.
    pub scope: u32,
    /// A `capsa_visibility` value.
    pub visibility: u32,
    /// The key (UTF-8).
    pub key: *const c_char,
    /// The value (UTF-8).
    pub value: *const c_char,
}

/// One staging event, valid only during the callback (copy what you keep).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct capsa_staging_event {
    /// The event's sequence number in the state store.
    pub seq: i64,
    /// The staging's name.
    pub name: *const c_char,
    /// `"StatusChanged"` or `"CommandFinished"`.
    pub event: *const c_char,
    /// StatusChanged: the status before (`"Running"`, …), NULL when the staging was new.
    pub from: *const c_char,
    /// StatusChanged: the status after, NULL when the staging is gone.
    pub to: *const c_char,
    /// CommandFinished: the command (`"create"`, …); NULL otherwise.
    pub action: *const c_char,
    /// CommandFinished: `"Success"`, `"Failure"`, `"Refused"`…; NULL otherwise.
    pub outcome: *const c_char,
    /// Why (a failure reason), or NULL.
    pub reason: *const c_char,
    /// The whole event as a JSON object (private values masked).
    pub json: *const c_char,
}

/// An event callback: called with each event and the `user_data` given to
/// [`capsa_staging_subscribe`], on the thread that made the change, never twice at once.
/// Return 0 to keep receiving events; any other value stops this subscription (see
/// [`capsa_subscription_error`]). It must not throw (C++) or longjmp.
#[allow(non_camel_case_types)]
pub type capsa_event_fn =
    Option<unsafe extern "C" fn(event: *const capsa_staging_event, user_data: *mut c_void) -> i32>;

/// What a subscription calls with each event: 0 to go on, else the value that stops it.
pub(crate) type EventCallback = Box<dyn FnMut(&Event) -> i32 + Send>;

struct SubState {
    /// The callback, until the subscription is freed.
    callback: Mutex<Option<EventCallback>>,
    refused: AtomicI32,
}

impl Drop for capsa_subscription {
    fn drop(&mut self) {
        // Wait for a callback in flight on another thread, then drop the callback: once
        // capsa_subscription_free returns, it is never called again.
        let mut callback = self
            .state
            .callback
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        drop(callback.take());
    }
}

struct UserData(*mut c_void);
// SAFETY: the header tells callers the callback (and so its user_data) may run on another
// thread; calls are serialised by SubState's Mutex.
unsafe impl Send for UserData {}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

/// An event's kind and its from, to, action, outcome and reason, as the C and C++ APIs give
/// them (`None` where the C API has NULL).
pub(crate) fn event_fields(event: &Event) -> (&'static str, [Option<&str>; 5]) {
    match &event.kind {
        EventKind::StatusChanged { from, to, reason } => {
            let (from, to) = (from.map(Status::as_str), to.map(Status::as_str));
            (
                event.kind.as_str(),
                [from, to, None, None, reason.as_deref()],
            )
        }
        EventKind::CommandFinished {
            action,
            outcome,
            reason,
            ..
        } => {
            let (action, outcome) = (Some(action.as_str()), Some(outcome.as_str()));
            (
                event.kind.as_str(),
                [None, None, action, outcome, reason.as_deref()],
            )
        }
    }
}

impl SubState {
    fn deliver(&self, event: &Event) {
        let mut callback = self.callback.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(cb), 0) = (callback.as_mut(), self.refused.load(Ordering::SeqCst)) {
            let rc = cb(event);
            if rc != 0 {
                self.refused.store(rc, Ordering::SeqCst);
            }
        }
    }
}

/// The C callback and its `user_data` as a subscription's callback.
fn c_callback(
    cb: unsafe extern "C" fn(*const capsa_staging_event, *mut c_void) -> i32,
    user_data: *mut c_void,
) -> EventCallback {
    let user_data = UserData(user_data);
    Box::new(move |event| {
        let user_data = &user_data;
        let json = cstring(&serde_json::to_string(event).unwrap_or_default());
        let (kind, fields) = event_fields(event);
        let (name, kind) = (cstring(&event.name), cstring(kind));
        let [from, to, action, outcome, reason] = fields.map(|s| s.map(cstring));
        let ptr = |s: &Option<CString>| s.as_ref().map_or(null(), |c| c.as_ptr());
        let ev = capsa_staging_event {
            seq: event.seq,
            name: name.as_ptr(),
            event: kind.as_ptr(),
            from: ptr(&from),
            to: ptr(&to),
            action: ptr(&action),
            outcome: ptr(&outcome),
            reason: ptr(&reason),
            json: json.as_ptr(),
        };
        // SAFETY: a valid callback per the caller's contract; `ev` and its strings live
        // until it returns.
        unsafe { cb(&ev, user_data.0) }
    })
}

/// Open a staging manager on `state` (an SQLite state file, created if missing, or a
/// `postgres://` URL) with the deploy backend named by `backend`: `mock`, `script:DIR` (DM's
/// control scripts in `DIR`) or `kubernetes:DIR` (the manifest templates in `DIR`).
/// `options_json` is NULL or a JSON object of optional settings, durations in milliseconds:
/// `actor`, `pending_timeout_ms`, `check_interval_ms`, `retention_ms`, `namespace_prefix`,
/// `key_file`, `project_name`, `base_domain`, `script_timeout_ms`, `kubeconfig`,
/// `ready_timeout_ms` (an unknown field is `CAPSA_STATUS_INVALID_ARGUMENT`). The same
/// opening as every other binding and the CLI.
///
/// # Safety
/// `state` and `backend` NULL or strings; `options_json` NULL or a string; `out` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_manager_open(
    state: *const c_char,
    backend: *const c_char,
    options_json: *const c_char,
    out: *mut *mut capsa_staging_manager,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let state = unsafe { path_arg(state, "state") }?;
        // SAFETY: per the contract.
        let spec = BackendSpec::parse(unsafe { str_arg(backend, "backend") }?)?;
        // SAFETY: per the contract.
        let settings = match unsafe { opt_str_arg(options_json, "options_json") }? {
            Some(json) => OpenSettings::from_json(json)?,
            None => OpenSettings::default(),
        };
        open(&state, &spec, &settings)
    })
}

fn open(
    state: &std::path::Path,
    spec: &BackendSpec,
    settings: &OpenSettings,
) -> Result<*mut capsa_staging_manager, Failure> {
    let inner = settings.open(state, spec)?;
    Ok(Box::into_raw(Box::new(capsa_staging_manager { inner })))
}

/// Open a staging manager with the in-memory `mock` backend (for tests): state in the SQLite
/// file `state` (created if missing). Same as [`capsa_staging_manager_open`] with `"mock"`.
///
/// # Safety
/// `state` NULL or a string; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_manager_open_mock(
    state: *const c_char,
    out: *mut *mut capsa_staging_manager,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let state = unsafe { path_arg(state, "state") }?;
        open(&state, &BackendSpec::Mock, &OpenSettings::default())
    })
}

/// Open a staging manager with the `script` backend: DM's control scripts (`create`,
/// `update`, `delete`, `check`, `cleanup`, `archive_check`, `tag_check`) in `script_dir`
/// (`CAPSA_STATUS_INVALID_ARGUMENT` when it does not exist).
///
/// # Safety
/// Strings NULL or valid; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_manager_open_script(
    state: *const c_char,
    script_dir: *const c_char,
    out: *mut *mut capsa_staging_manager,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let state = unsafe { path_arg(state, "state") }?;
        // SAFETY: per the contract.
        let dir = unsafe { path_arg(script_dir, "script_dir") }?;
        open(&state, &BackendSpec::Script(dir), &OpenSettings::default())
    })
}

/// Open a staging manager with the `kubernetes` backend: the manifests of `template_dir`
/// server-side applied into one namespace per staging, through the kubeconfig file
/// `kubeconfig` (NULL: `KUBECONFIG`, `~/.kube/config`, else the in-cluster service account).
/// `CAPSA_STATUS_INVALID_ARGUMENT` for a missing or bad template, `CAPSA_STATUS_BACKEND` for
/// an unusable kubeconfig.
///
/// # Safety
/// Strings NULL (only `kubeconfig` may be) or valid; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_manager_open_kubernetes(
    state: *const c_char,
    template_dir: *const c_char,
    kubeconfig: *const c_char,
    out: *mut *mut capsa_staging_manager,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let state = unsafe { path_arg(state, "state") }?;
        // SAFETY: per the contract.
        let dir = unsafe { path_arg(template_dir, "template_dir") }?;
        let kubeconfig = if kubeconfig.is_null() {
            None
        } else {
            // SAFETY: per the contract.
            Some(unsafe { path_arg(kubeconfig, "kubeconfig") }?)
        };
        let settings = OpenSettings {
            kubeconfig,
            ..OpenSettings::default()
        };
        open(&state, &BackendSpec::Kubernetes(dir), &settings)
    })
}

/// Free a manager. NULL is ignored. Subscriptions stay safe to free afterwards.
///
/// # Safety
/// `manager` NULL or live, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_manager_free(manager: *mut capsa_staging_manager) {
    free_box(manager);
}

/// Convert the C overrides.
///
/// # Safety
/// `overrides` NULL (with `len == 0`) or `len` valid structs.
unsafe fn overrides_arg(
    overrides: *const capsa_override,
    len: usize,
) -> Result<Vec<Override>, Failure> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if overrides.is_null() {
        return Err(bad_arg("`overrides` is NULL but its length is not 0"));
    }
    // SAFETY: `len` valid structs per the contract.
    let items = unsafe { std::slice::from_raw_parts(overrides, len) };
    items
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let scope = match o.scope {
                0 => capsa::staging::Scope::App,
                1 => capsa::staging::Scope::Staging,
                n => {
                    return Err(bad_arg(format!(
                        "overrides[{i}].scope {n} is not a capsa_scope"
                    )))
                }
            };
            // SAFETY: valid strings per the contract.
            let key = unsafe { str_arg(o.key, "override key") }?;
            // SAFETY: valid strings per the contract.
            let value = unsafe { str_arg(o.value, "override value") }?;
            match o.visibility {
                0 => Ok(Override::public(scope, key, value)),
                1 => Ok(Override::private(scope, key, value)),
                n => Err(bad_arg(format!(
                    "overrides[{i}].visibility {n} is not a capsa_visibility"
                ))),
            }
        })
        .collect()
}

/// Run `body` and, unless `out` is NULL, write its answer as JSON into `out`.
///
/// # Safety
/// `out` NULL or writable.
unsafe fn json_out<T: serde::Serialize>(
    out: *mut *mut c_char,
    body: impl FnOnce() -> Result<T, Failure>,
) -> capsa_status {
    guard(|| {
        let slot = if out.is_null() {
            None
        } else {
            // SAFETY: per the contract.
            Some(unsafe { out_param(out, "out_json", null_mut()) }?)
        };
        let value = body()?;
        if let Some(slot) = slot {
            *slot = to_json(&value)?;
        }
        Ok(())
    })
}

/// Create a staging (→ CreatePending → Running, or Failure). `out_json` (may be NULL)
/// receives the staging as JSON (private values masked).
///
/// # Safety
/// `manager` NULL or live; strings NULL or valid; `overrides` NULL or `overrides_len` structs;
/// `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_create(
    manager: *const capsa_staging_manager,
    name: *const c_char,
    tag: *const c_char,
    overrides: *const capsa_override,
    overrides_len: usize,
    out_json: *mut *mut c_char,
) -> capsa_status {
    // SAFETY: per the contract.
    unsafe {
        json_out(out_json, || {
            let m = handle(manager, "manager")?;
            let (name, tag) = (str_arg(name, "name")?, str_arg(tag, "tag")?);
            let o = overrides_arg(overrides, overrides_len)?;
            Ok(m.inner.create(name, tag, o)?)
        })
    }
}

/// Update a staging with a new tag and overrides (from Running or Failure). `overrides` NULL
/// (with length 0) keeps the current overrides; non-NULL with length 0 clears them.
///
/// # Safety
/// As [`capsa_staging_create`].
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_update(
    manager: *const capsa_staging_manager,
    name: *const c_char,
    tag: *const c_char,
    overrides: *const capsa_override,
    overrides_len: usize,
    out_json: *mut *mut c_char,
) -> capsa_status {
    // SAFETY: per the contract.
    unsafe {
        json_out(out_json, || {
            let m = handle(manager, "manager")?;
            let (name, tag) = (str_arg(name, "name")?, str_arg(tag, "tag")?);
            let o = if overrides.is_null() && overrides_len == 0 {
                None
            } else {
                Some(overrides_arg(overrides, overrides_len)?)
            };
            Ok(m.inner.update(name, tag, o)?)
        })
    }
}

/// Delete (archive) a staging: workloads removed, volumes kept (→ Archived).
///
/// # Safety
/// `manager` NULL or live; `name` NULL or valid; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_delete(
    manager: *const capsa_staging_manager,
    name: *const c_char,
    out_json: *mut *mut c_char,
) -> capsa_status {
    // SAFETY: per the contract.
    unsafe {
        json_out(out_json, || {
            let m = handle(manager, "manager")?;
            Ok(m.inner.delete(str_arg(name, "name")?)?)
        })
    }
}

/// Restore an archived staging with its last settings (→ Running).
///
/// # Safety
/// As [`capsa_staging_delete`].
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_restore(
    manager: *const capsa_staging_manager,
    name: *const c_char,
    out_json: *mut *mut c_char,
) -> capsa_status {
    // SAFETY: per the contract.
    unsafe {
        json_out(out_json, || {
            let m = handle(manager, "manager")?;
            Ok(m.inner.restore(str_arg(name, "name")?)?)
        })
    }
}

/// Clean up an archived or failed staging: volumes and the record go (the audit log stays).
/// `out_json` receives `"null"` when it is gone.
///
/// # Safety
/// As [`capsa_staging_delete`].
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_cleanup(
    manager: *const capsa_staging_manager,
    name: *const c_char,
    out_json: *mut *mut c_char,
) -> capsa_status {
    // SAFETY: per the contract.
    unsafe {
        json_out(out_json, || {
            let m = handle(manager, "manager")?;
            Ok(m.inner.cleanup(str_arg(name, "name")?)?)
        })
    }
}

/// One staging as JSON (`CAPSA_STATUS_NOT_FOUND` when there is none).
///
/// # Safety
/// As [`capsa_staging_delete`].
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_get(
    manager: *const capsa_staging_manager,
    name: *const c_char,
    out_json: *mut *mut c_char,
) -> capsa_status {
    // SAFETY: per the contract.
    unsafe {
        json_out(out_json, || {
            let m = handle(manager, "manager")?;
            Ok(m.inner.get(str_arg(name, "name")?)?)
        })
    }
}

/// The status of one staging (a `capsa_staging_status` value).
///
/// # Safety
/// `manager` NULL or live; `name` NULL or valid; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_get_status(
    manager: *const capsa_staging_manager,
    name: *const c_char,
    out: *mut u32,
) -> capsa_status {
    with_out(out, 0, || {
        // SAFETY: per the contract.
        let (m, name) = unsafe { (handle(manager, "manager")?, str_arg(name, "name")?) };
        Ok(capsa_staging_status::from(m.inner.get(name)?.status) as u32)
    })
}

/// Every staging, as a JSON array sorted by name.
///
/// # Safety
/// `manager` NULL or live; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_list(
    manager: *const capsa_staging_manager,
    out_json: *mut *mut c_char,
) -> capsa_status {
    with_out(out_json, null_mut(), || {
        // SAFETY: per the contract.
        let m = unsafe { handle(manager, "manager") }?;
        let list = m.inner.list()?;
        owned(serde_json::to_string(&list).map_err(|e| bad_arg(format!("list: {e}")))?)
    })
}

/// Check stagings with the backend (Running ⇄ Failure, timed-out pending commands fail);
/// `out_json` (may be NULL) receives the report as JSON.
///
/// # Safety
/// `manager` NULL or live; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_reconcile(
    manager: *const capsa_staging_manager,
    out_json: *mut *mut c_char,
) -> capsa_status {
    // SAFETY: per the contract.
    unsafe {
        json_out(out_json, || {
            Ok(handle(manager, "manager")?.inner.reconcile()?)
        })
    }
}

/// Subscribe to the manager's events (status changes, command results): `callback` is
/// called with each event and `user_data`. Free the subscription to stop.
///
/// # Safety
/// `manager` NULL or live; `callback` a valid function (see [`capsa_event_fn`]) that may be
/// called with `user_data` from other threads until the subscription is freed; `out` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_subscribe(
    manager: *const capsa_staging_manager,
    callback: capsa_event_fn,
    user_data: *mut c_void,
    out: *mut *mut capsa_subscription,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let m = unsafe { handle(manager, "manager") }?;
        let cb = callback.ok_or_else(|| bad_arg("`callback` is NULL"))?;
        Ok(Box::into_raw(Box::new(subscribe(
            &m.inner,
            c_callback(cb, user_data),
        ))))
    })
}

/// Subscribe `callback` (shared by the C and C++ APIs): called never twice at once, not after
/// it returned non-zero, and never after the subscription is dropped.
pub(crate) fn subscribe(manager: &StagingManager, callback: EventCallback) -> capsa_subscription {
    let state = Arc::new(SubState {
        callback: Mutex::new(Some(callback)),
        refused: AtomicI32::new(0),
    });
    let s = state.clone();
    let sub = manager.subscribe(move |event: &Event| {
        // Never unwind into core's event loop or into C.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.deliver(event)));
    });
    capsa_subscription { _sub: sub, state }
}

impl capsa_subscription {
    /// Whether the callback refused an event (and so no longer receives any).
    #[cfg(feature = "cpp")]
    pub(crate) fn stopped(&self) -> bool {
        self.state.refused.load(Ordering::SeqCst) != 0
    }
}

/// `CAPSA_STATUS_OK` while the subscription delivers events; `CAPSA_STATUS_CANCELLED` (with
/// a last-error message naming the value) once its callback returned non-zero and it stopped.
///
/// # Safety
/// `subscription` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn capsa_subscription_error(
    subscription: *const capsa_subscription,
) -> capsa_status {
    guard(|| {
        // SAFETY: per the contract.
        let sub = unsafe { handle(subscription, "subscription") }?;
        match sub.state.refused.load(Ordering::SeqCst) {
            0 => Ok(()),
            rc => Err(Failure::Message(
                capsa_status::Cancelled,
                format!(
                    "the event callback returned {rc}; this subscription delivers no more events"
                ),
            )),
        }
    })
}

/// Unsubscribe and free. NULL is ignored. Once it returns the callback is never called again
/// (a call in flight on another thread is waited for), so `user_data` may be freed. Do not
/// call it from inside the subscription's own callback.
///
/// # Safety
/// `subscription` NULL or live, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn capsa_subscription_free(subscription: *mut capsa_subscription) {
    free_box(subscription);
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<*mut c_char, Failure> {
    owned(serde_json::to_string(value).map_err(|e| bad_arg(format!("does not serialise: {e}")))?)
}

/// The audit log (one row per command: action, actor, tag, overrides with private values
/// masked, outcome, duration, backend output) as a JSON array, oldest first. `name` NULL
/// means every staging; `limit` 0 means no limit (else the newest `limit` rows).
///
/// # Safety
/// `manager` NULL or live; `name` NULL or valid; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_audit_log(
    manager: *const capsa_staging_manager,
    name: *const c_char,
    limit: usize,
    out_json: *mut *mut c_char,
) -> capsa_status {
    with_out(out_json, null_mut(), || {
        // SAFETY: per the contract.
        let m = unsafe { handle(manager, "manager") }?;
        let query = capsa::staging::AuditQuery {
            // SAFETY: per the contract.
            name: unsafe { crate::strings::opt_str_arg(name, "name") }?.map(str::to_owned),
            after_id: None,
            limit: (limit > 0).then_some(limit),
        };
        to_json(&m.inner.audit_log(&query)?)
    })
}

/// The events of every process sharing the state with a sequence number above `after`
/// (oldest first, at most `limit`; 0 means 1000), as a JSON array: poll it to follow
/// changes made elsewhere.
///
/// # Safety
/// `manager` NULL or live; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_events_since(
    manager: *const capsa_staging_manager,
    after: i64,
    limit: usize,
    out_json: *mut *mut c_char,
) -> capsa_status {
    with_out(out_json, null_mut(), || {
        // SAFETY: per the contract.
        let m = unsafe { handle(manager, "manager") }?;
        let limit = if limit == 0 {
            capsa::staging::DEFAULT_EVENTS_LIMIT
        } else {
            limit
        };
        to_json(&m.inner.events_since(after, limit)?)
    })
}

/// Clean up archived stagings older than the retention (14 days by default); `out_json`
/// (may be NULL) receives the names removed as a JSON array.
///
/// # Safety
/// `manager` NULL or live; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_clean_archived(
    manager: *const capsa_staging_manager,
    out_json: *mut *mut c_char,
) -> capsa_status {
    // SAFETY: per the contract.
    unsafe {
        json_out(out_json, || {
            Ok(handle(manager, "manager")?.inner.clean_archived(None)?)
        })
    }
}

/// Script the `mock` backend of a manager opened with it: `command_json` is one JSON command,
/// as core's `MockDeployer::control` documents: `{"push": "create", "outcome": "failed",
/// "reason": "boom"}`, `{"set_default": CALL, "outcome": …}`, `{"set_delay": CALL,
/// "seconds": 0.2}`, `{"hold": CALL}`, `{"release": CALL}`, `{"held": CALL}`, `{"count":
/// CALL}`, `{"calls": true}`, `{"clear_calls": true}`, `{"set_min_tag": "1.0.0"}`. `out_json`
/// (may be NULL) receives the answer as JSON: `null`, a count, or the calls
/// `[["create","web"],…]`. `CAPSA_STATUS_INVALID_ARGUMENT` for a bad command or another
/// backend.
///
/// # Safety
/// `manager` NULL or live; `command_json` NULL or a string; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_staging_mock_control(
    manager: *const capsa_staging_manager,
    command_json: *const c_char,
    out_json: *mut *mut c_char,
) -> capsa_status {
    // SAFETY: per the contract.
    unsafe {
        json_out(out_json, || {
            let m = handle(manager, "manager")?;
            Ok(m.inner
                .mock()?
                .control(str_arg(command_json, "command_json")?)?)
        })
    }
}
