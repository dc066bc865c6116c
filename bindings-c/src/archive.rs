//! Archiving: a capsule as one verified zip, verify, restore, offline and retrieve, with a
//! progress callback that can cancel.

use std::ffi::{c_char, c_void};
use std::ptr::null_mut;
use std::sync::{Arc, Mutex};

use capsa::archive::{self as core_archive, ProgressFn, VerifyOptions};
use capsa::{ArchiveOptions, CancelToken, Error, Policy, Progress, RestoreOptions};

use crate::error::{bad_arg, capsa_status, guard, Failure};
use crate::store::{capsa_capsule, capsa_store};
use crate::strings::{handle, opt_str_arg, out_param, owned, path_arg, str_arg, with_out};

/// How far a long operation is (bytes and files done / total).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct capsa_progress {
    /// Files done so far.
    pub files_done: u64,
    /// Files in all.
    pub files_total: u64,
    /// Bytes done so far.
    pub bytes_done: u64,
    /// Bytes in all.
    pub bytes_total: u64,
}

/// A progress callback: called with the progress and the `user_data` given to the operation.
/// Return 0 to go on; any other value cancels the operation, which then fails with
/// `CAPSA_STATUS_CANCELLED` and leaves nothing half-written. It may be called from a capsa
/// worker thread, never twice at once. It must not throw (C++) or longjmp.
#[allow(non_camel_case_types)]
pub type capsa_progress_fn =
    Option<unsafe extern "C" fn(progress: *const capsa_progress, user_data: *mut c_void) -> i32>;

/// Options for [`capsa_capsule_archive`]; zero-initialise and set what you need.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct capsa_archive_options {
    /// Compression policy name (`"auto"`, `"store"`, `"deflate"`…), or NULL for the store's.
    pub policy: *const c_char,
    /// Deflate level 1..9; 0 means the default (6).
    pub level: u32,
    /// Replace an existing file at the destination.
    pub replace: bool,
    /// Skip verifying the finished archive before it is renamed into place.
    pub skip_verify: bool,
}

struct UserData(*mut c_void);
// SAFETY: the caller promises (header docs) that the callback and its user_data may be used
// from capsa's worker threads; calls are serialised by progress_fn's Mutex.
unsafe impl Send for UserData {}

/// The C callback as a core progress function. Returns the function and a cell holding the
/// callback's non-zero return, if any.
pub(crate) fn progress_bridge(
    callback: capsa_progress_fn,
    user_data: *mut c_void,
    cancel: &CancelToken,
) -> (Option<ProgressFn>, Arc<Mutex<Option<i32>>>) {
    let Some(cb) = callback else {
        return (None, Arc::default());
    };
    let user_data = UserData(user_data);
    let (f, refused) = progress_fn(
        move |p| {
            let cp = capsa_progress {
                files_done: p.files_done,
                files_total: p.files_total,
                bytes_done: p.bytes_done,
                bytes_total: p.bytes_total,
            };
            let user_data = &user_data;
            // SAFETY: a valid callback per the caller's contract.
            unsafe { cb(&cp, user_data.0) }
        },
        cancel,
    );
    (Some(f), refused)
}

/// A callback returning 0 to go on (else the value that cancels) as a core progress
/// function, called never twice at once (shared by the C and C++ APIs). Returns the function
/// and a cell holding the callback's non-zero return, if any.
pub(crate) fn progress_fn(
    callback: impl FnMut(&Progress) -> i32 + Send + 'static,
    cancel: &CancelToken,
) -> (ProgressFn, Arc<Mutex<Option<i32>>>) {
    let refused = Arc::new(Mutex::new(None));
    let callback = Mutex::new(callback);
    let cancel = cancel.clone();
    let seen = refused.clone();
    let f: ProgressFn = Arc::new(move |p: &Progress| {
        let rc = (callback.lock().unwrap_or_else(|e| e.into_inner()))(p);
        if rc != 0 {
            if let Ok(mut s) = seen.lock() {
                s.get_or_insert(rc);
            }
            cancel.cancel();
        }
    });
    (f, refused)
}

/// Map a `Cancelled` caused by the callback to a message naming it.
pub(crate) fn explain(e: Error, refused: &Mutex<Option<i32>>) -> Failure {
    match (e, refused.lock().ok().and_then(|r| *r)) {
        (Error::Cancelled, Some(rc)) => Failure::Message(
            capsa_status::Cancelled,
            format!("cancelled: the progress callback returned {rc}"),
        ),
        (e, _) => Failure::Core(e),
    }
}

/// Archive a capsule into one zip at `dest` (written under a temporary name, verified, then
/// renamed into place). `dest`, and the archive arguments of the functions below, may also
/// be an `s3://bucket/key` URL (streamed multipart upload, ranged reads; `AWS_*` variables). `options` may be NULL; `progress` may be NULL. `out_report_json`
/// (may be NULL) receives the report as a JSON object (path, capsule, files, bytes,
/// archive_bytes, skipped: the crates being made that were left out, …).
///
/// # Safety
/// Handles live or NULL; strings valid or NULL; `progress`/`user_data` as documented on
/// [`capsa_progress_fn`]; `out_report_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_archive(
    capsule: *const capsa_capsule,
    dest: *const c_char,
    options: *const capsa_archive_options,
    progress: capsa_progress_fn,
    user_data: *mut c_void,
    out_report_json: *mut *mut c_char,
) -> capsa_status {
    guard(|| {
        let slot = if out_report_json.is_null() {
            None
        } else {
            // SAFETY: per the contract.
            Some(unsafe { out_param(out_report_json, "out_report_json", null_mut()) }?)
        };
        // SAFETY: per the contract.
        let capsule = unsafe { handle(capsule, "capsule") }?;
        // SAFETY: per the contract.
        let dest = unsafe { path_arg(dest, "dest") }?;
        let mut opts = ArchiveOptions::default();
        // SAFETY: per the contract.
        if let Some(o) = unsafe { options.as_ref() } {
            // SAFETY: per the contract.
            if let Some(p) = unsafe { opt_str_arg(o.policy, "options.policy") }? {
                opts.policy = Some(Policy::parse(p)?);
            }
            if o.level != 0 {
                opts.level = o.level;
            }
            opts.replace = o.replace;
            opts.verify = !o.skip_verify;
        }
        let (f, refused) = progress_bridge(progress, user_data, &opts.cancel);
        opts.progress = f;
        let report =
            core_archive::archive(&capsule.inner, &dest, opts).map_err(|e| explain(e, &refused))?;
        if let Some(slot) = slot {
            *slot = owned(json(&report)?)?;
        }
        Ok(())
    })
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| bad_arg(format!("report does not serialise: {e}")))
}

/// Verify an archive: structure, every CRC-32 and the SHA-256 manifest. Fails with
/// `CAPSA_STATUS_CORRUPT` naming the first bad entry. `out_report_json` may be NULL.
///
/// # Safety
/// As [`capsa_capsule_archive`].
#[no_mangle]
pub unsafe extern "C" fn capsa_archive_verify(
    zip: *const c_char,
    progress: capsa_progress_fn,
    user_data: *mut c_void,
    out_report_json: *mut *mut c_char,
) -> capsa_status {
    guard(|| {
        let slot = if out_report_json.is_null() {
            None
        } else {
            // SAFETY: per the contract.
            Some(unsafe { out_param(out_report_json, "out_report_json", null_mut()) }?)
        };
        // SAFETY: per the contract.
        let zip = unsafe { path_arg(zip, "zip") }?;
        let mut opts = VerifyOptions::default();
        let (f, refused) = progress_bridge(progress, user_data, &opts.cancel);
        opts.progress = f;
        let report = core_archive::verify_with(&zip, opts).map_err(|e| explain(e, &refused))?;
        if let Some(slot) = slot {
            *slot = owned(json(&report)?)?;
        }
        Ok(())
    })
}

/// Restore an archive into `store`; `out` receives the restored capsule. An existing capsule
/// of the same id is refused (`CAPSA_STATUS_ALREADY_EXISTS`) unless `replace`.
///
/// # Safety
/// As [`capsa_capsule_archive`]; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_archive_restore(
    zip: *const c_char,
    store: *const capsa_store,
    replace: bool,
    progress: capsa_progress_fn,
    user_data: *mut c_void,
    out: *mut *mut capsa_capsule,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let zip = unsafe { path_arg(zip, "zip") }?;
        // SAFETY: per the contract.
        let store = unsafe { handle(store, "store") }?;
        let mut opts = RestoreOptions {
            replace,
            ..Default::default()
        };
        let (f, refused) = progress_bridge(progress, user_data, &opts.cancel);
        opts.progress = f;
        let capsule =
            core_archive::restore(&zip, &store.inner, opts).map_err(|e| explain(e, &refused))?;
        Ok(Box::into_raw(Box::new(capsa_capsule { inner: capsule })))
    })
}

/// Take a capsule offline after checking `archive` holds exactly its current tree: the
/// content is removed and a stub pointing at the archive (with its checksum) is left.
/// `out_stub_json` (may be NULL) receives the stub as JSON.
///
/// # Safety
/// Handles live or NULL; strings valid or NULL; `out_stub_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_take_offline(
    capsule: *const capsa_capsule,
    archive: *const c_char,
    out_stub_json: *mut *mut c_char,
) -> capsa_status {
    guard(|| {
        let slot = if out_stub_json.is_null() {
            None
        } else {
            // SAFETY: per the contract.
            Some(unsafe { out_param(out_stub_json, "out_stub_json", null_mut()) }?)
        };
        // SAFETY: per the contract.
        let capsule = unsafe { handle(capsule, "capsule") }?;
        // SAFETY: per the contract.
        let archive = unsafe { path_arg(archive, "archive") }?;
        let stub = capsule.inner.take_offline(&archive)?;
        if let Some(slot) = slot {
            *slot = owned(json(&stub)?)?;
        }
        Ok(())
    })
}

/// Whether the capsule is offline (its content lives in an archive).
///
/// # Safety
/// `capsule` live or NULL; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_is_offline(
    capsule: *const capsa_capsule,
    out: *mut bool,
) -> capsa_status {
    with_out(out, false, || {
        // SAFETY: per the contract.
        Ok(unsafe { handle(capsule, "capsule") }?.inner.is_offline())
    })
}

/// Bring an offline capsule back from its recorded archive (checksum checked, verified,
/// restored into place); `out` receives it.
///
/// # Safety
/// `store` live or NULL; `id` valid or NULL; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_store_retrieve(
    store: *const capsa_store,
    id: *const c_char,
    out: *mut *mut capsa_capsule,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let (store, id) = unsafe { (handle(store, "store")?, str_arg(id, "id")?) };
        Ok(Box::into_raw(Box::new(capsa_capsule {
            inner: store.inner.retrieve(id)?,
        })))
    })
}

/// The capsule's offline stub as JSON (capsule, archive, archive_bytes, sha256, files, bytes,
/// taken_offline_at…), or `"null"` when the capsule is online.
///
/// # Safety
/// `capsule` live or NULL; `out_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_offline_stub(
    capsule: *const capsa_capsule,
    out_json: *mut *mut c_char,
) -> capsa_status {
    with_out(out_json, null_mut(), || {
        // SAFETY: per the contract.
        let capsule = unsafe { handle(capsule, "capsule") }?;
        match capsule.inner.offline_stub()? {
            Some(stub) => owned(json(&stub)?),
            None => owned("null"),
        }
    })
}
