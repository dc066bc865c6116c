//! Archiving: a capsule as one verified zip, `verify`, `restore`, offline and back.
//!
//! Long calls run the core's blocking form on the blocking threads of core's runtime (never on
//! libuv's pool), report progress through a thread-safe callback and cancel through an
//! `AbortSignal` (rejecting with `CANCELLED`).

use std::sync::Arc;

use napi::bindgen_prelude::{
    AbortSignal, FromNapiValue, Function, JsObjectValue, Object, ValidateNapiValue,
};
use napi::threadsafe_function::UnknownReturnValue;
use napi::{Env, JsValue};
use napi_derive::napi;

use crate::error::{guard, promise_blocking, Failure};
use crate::listener::Listener;
use crate::store::{JsCapsule, JsStore};

/// How far a long operation has come.
#[napi(object)]
pub struct Progress {
    /// Files finished.
    pub files_done: f64,
    /// Files in total.
    pub files_total: f64,
    /// Bytes of file content finished (uncompressed).
    pub bytes_done: f64,
    /// Bytes of file content in total.
    pub bytes_total: f64,
}

impl From<&capsa::Progress> for Progress {
    fn from(p: &capsa::Progress) -> Self {
        Progress {
            files_done: p.files_done as f64,
            files_total: p.files_total as f64,
            bytes_done: p.bytes_done as f64,
            bytes_total: p.bytes_total as f64,
        }
    }
}

/// What `archive` wrote.
#[napi(object)]
pub struct ArchiveReport {
    /// The archive's final path.
    pub path: String,
    /// The capsule archived.
    pub capsule: String,
    /// Regular files.
    pub files: f64,
    /// Directories.
    pub dirs: f64,
    /// Symbolic links.
    pub symlinks: f64,
    /// Bytes of file content.
    pub bytes: f64,
    /// Size of the archive file.
    pub archive_bytes: f64,
    /// Files deflated.
    pub deflated: f64,
    /// Files stored as they are.
    pub stored: f64,
    /// Whether a ZIP64 record was needed.
    pub zip64: bool,
    /// Whether it was verified before it was renamed into place.
    pub verified: bool,
    /// Crates not archived because they were being made when the archive reached them.
    pub skipped: Vec<String>,
}

/// What `verify` checked.
#[napi(object)]
pub struct VerifyReport {
    /// The archive.
    pub path: String,
    /// The capsule it holds.
    pub capsule: String,
    /// Entries in the zip.
    pub entries: f64,
    /// Regular files checked.
    pub files: f64,
    /// Directories.
    pub dirs: f64,
    /// Symbolic links.
    pub symlinks: f64,
    /// Bytes of file content checked.
    pub bytes: f64,
    /// Size of the archive file.
    pub archive_bytes: f64,
    /// SHA-256 of the whole archive file, when asked for.
    pub archive_sha256: Option<String>,
    /// The capsa version that wrote it.
    pub tool_version: String,
}

/// What an offline capsule records about its archive.
#[napi(object)]
pub struct OfflineStub {
    /// The capsule id.
    pub capsule: String,
    /// The archive (relative to the store root when inside it).
    pub archive: String,
    /// SHA-256 of the whole archive file.
    pub archive_sha256: String,
    /// Size of the archive file.
    pub archive_bytes: f64,
    /// Files in the capsule.
    pub files: f64,
    /// Bytes of file content.
    pub bytes: f64,
    /// When it went offline (ISO 8601, UTC).
    pub taken_offline_at: String,
}

fn path_text(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Progress and cancellation taken from a JS options object.
struct Long {
    progress: Option<capsa::archive::ProgressFn>,
    cancel: capsa::CancelToken,
}

/// Read `onProgress` and `signal` from `options`. An already aborted signal cancels at once.
fn long_options(env: &Env, options: Option<&Object>) -> napi::Result<Long> {
    let cancel = capsa::CancelToken::new();
    let mut progress: Option<capsa::archive::ProgressFn> = None;
    if let Some(o) = options {
        let on_progress: Option<Function<Progress, UnknownReturnValue>> =
            o.get_named_property("onProgress")?;
        if let Some(f) = on_progress {
            let listener = Listener::new(env, f)?;
            progress = Some(Arc::new(move |p: &capsa::Progress| {
                listener.send(Progress::from(p))
            }));
        }
        let signal: Option<Object> = o.get_named_property("signal")?;
        if let Some(s) = signal {
            let aborted: Option<bool> = s.get_named_property("aborted")?;
            if aborted == Some(true) {
                cancel.cancel();
            }
            // SAFETY: `s` is a live JS value of this env, converted on the JS thread.
            let abort = unsafe { AbortSignal::from_napi_value(env.raw(), s.raw())? };
            let token = cancel.clone();
            abort.on_abort(move || token.cancel());
        }
    }
    Ok(Long { progress, cancel })
}

fn opt<T: FromNapiValue + ValidateNapiValue>(
    options: Option<&Object>,
    key: &str,
) -> napi::Result<Option<T>> {
    match options {
        Some(o) => o.get_named_property::<Option<T>>(key),
        None => Ok(None),
    }
}

/// Archive `capsule` into one verified zip at `dest`: a path, or an `s3://bucket/key` URL
/// (endpoint and credentials from the `AWS_*` variables). Written under a temporary name and
/// renamed into place once verified. Rejects with `ALREADY_EXISTS` if `dest` exists (unless
/// `replace`), `CANCELLED` when `signal` aborts; nothing is left behind then.
#[napi(
    ts_args_type = "capsule: Capsule, dest: string, options?: { policy?: 'auto' | 'store' | 'deflate', level?: number, replace?: boolean, verify?: boolean, onProgress?: (progress: Progress) => void, signal?: AbortSignal }",
    ts_return_type = "Promise<ArchiveReport>"
)]
pub fn archive<'e>(
    env: &'e Env,
    capsule: &JsCapsule,
    dest: String,
    options: Option<Object>,
) -> napi::Result<Object<'e>> {
    guard(env, || {
        archive_promise(env, capsule, dest, options.as_ref())
    })
}

fn archive_promise<'e>(
    env: &'e Env,
    capsule: &JsCapsule,
    dest: String,
    o: Option<&Object>,
) -> Result<Object<'e>, Failure> {
    let policy: Option<String> = opt(o, "policy")?;
    let level: Option<u32> = opt(o, "level")?;
    let replace: Option<bool> = opt(o, "replace")?;
    let verify: Option<bool> = opt(o, "verify")?;
    let policy = match policy {
        Some(p) => Some(capsa::Policy::parse(&p)?),
        None => None,
    };
    let long = long_options(env, o)?;
    let inner = capsule.inner.clone();
    capsule.open.promise(env, move || {
        let defaults = capsa::ArchiveOptions::default();
        let options = capsa::ArchiveOptions {
            policy,
            level: level.unwrap_or(defaults.level),
            replace: replace.unwrap_or(defaults.replace),
            verify: verify.unwrap_or(defaults.verify),
            progress: long.progress,
            cancel: long.cancel,
            ..defaults
        };
        let r = capsa::archive::archive(&inner, &dest, options)?;
        Ok(ArchiveReport {
            path: path_text(&r.path),
            capsule: r.capsule,
            files: r.files as f64,
            dirs: r.dirs as f64,
            symlinks: r.symlinks as f64,
            bytes: r.bytes as f64,
            archive_bytes: r.archive_bytes as f64,
            deflated: r.deflated as f64,
            stored: r.stored as f64,
            zip64: r.zip64,
            verified: r.verified,
            skipped: r.skipped,
        })
    })
}

/// Verify an archive: structure, every CRC-32 and the SHA-256 manifest. Rejects with
/// `CORRUPT` naming the first bad entry.
#[napi(
    ts_args_type = "path: string, options?: { archiveSha256?: boolean, onProgress?: (progress: Progress) => void, signal?: AbortSignal }",
    ts_return_type = "Promise<VerifyReport>"
)]
pub fn verify<'e>(env: &'e Env, path: String, options: Option<Object>) -> napi::Result<Object<'e>> {
    guard(env, || {
        let o = options.as_ref();
        let archive_sha256: Option<bool> = opt(o, "archiveSha256")?;
        let long = long_options(env, o)?;
        promise_blocking(env, move || {
            let defaults = capsa::archive::VerifyOptions::default();
            let options = capsa::archive::VerifyOptions {
                archive_sha256: archive_sha256.unwrap_or(defaults.archive_sha256),
                progress: long.progress,
                cancel: long.cancel,
                ..defaults
            };
            let r = capsa::archive::verify_with(&path, options)?;
            Ok(VerifyReport {
                path: path_text(&r.path),
                capsule: r.capsule,
                entries: r.entries as f64,
                files: r.files as f64,
                dirs: r.dirs as f64,
                symlinks: r.symlinks as f64,
                bytes: r.bytes as f64,
                archive_bytes: r.archive_bytes as f64,
                archive_sha256: r.archive_sha256,
                tool_version: r.tool_version,
            })
        })
    })
}

fn stub(s: capsa::OfflineStub) -> OfflineStub {
    OfflineStub {
        capsule: s.capsule,
        archive: s.archive,
        archive_sha256: s.archive_sha256,
        archive_bytes: s.archive_bytes as f64,
        files: s.files as f64,
        bytes: s.bytes as f64,
        taken_offline_at: s.taken_offline_at.to_rfc3339(),
    }
}

/// `store.restore(path, options)`, declared on `Store` in `store.rs`.
pub(crate) fn restore_promise<'e>(
    env: &'e Env,
    store: &JsStore,
    path: String,
    options: Option<Object>,
) -> Result<Object<'e>, Failure> {
    let o = options.as_ref();
    let replace: Option<bool> = opt(o, "replace")?;
    let long = long_options(env, o)?;
    let (inner, wrap) = (store.inner.clone(), store.capsule_of());
    store.open.promise(env, move || {
        let defaults = capsa::RestoreOptions::default();
        let options = capsa::RestoreOptions {
            replace: replace.unwrap_or(defaults.replace),
            progress: long.progress,
            cancel: long.cancel,
            ..defaults
        };
        capsa::archive::restore(&path, &inner, options).map(wrap)
    })
}

/// `capsule.takeOffline(archive)`, declared on `Capsule` in `store.rs`.
pub(crate) fn take_offline_promise<'e>(
    env: &'e Env,
    capsule: &JsCapsule,
    archive: String,
) -> Result<Object<'e>, Failure> {
    let inner = capsule.inner.clone();
    capsule
        .open
        .promise(env, move || inner.take_offline(&archive).map(stub))
}

/// `capsule.offlineStub()`, declared on `Capsule` in `store.rs`.
pub(crate) fn offline_stub_promise<'e>(
    env: &'e Env,
    capsule: &JsCapsule,
) -> Result<Object<'e>, Failure> {
    let inner = capsule.inner.clone();
    capsule
        .open
        .promise(env, move || Ok(inner.offline_stub()?.map(stub)))
}
