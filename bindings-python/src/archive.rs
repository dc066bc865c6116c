//! `capsa.archive`, `capsa.verify`, `Store.restore`, `Capsule.take_offline`,
//! `Store.retrieve`: a capsule as one verified zip, offline and back.

use std::path::PathBuf;

use capsa::archive::{self as core_archive, ArchiveOptions, Policy, RestoreOptions, VerifyOptions};
use capsa::{ArchiveReport, OfflineStub, VerifyReport};
use pyo3::prelude::*;

use crate::errors::IntoPyResult;
use crate::long::LongOp;
use crate::store::PyCapsule;

/// What `capsa.archive` wrote.
#[pyclass(name = "ArchiveReport", module = "capsa", frozen, get_all)]
pub struct PyArchiveReport {
    /// The archive's path.
    path: PathBuf,
    /// The capsule archived.
    capsule: String,
    /// Regular files.
    files: u64,
    /// Directories.
    dirs: u64,
    /// Symbolic links.
    symlinks: u64,
    /// Bytes of file content.
    bytes: u64,
    /// Size of the archive file.
    archive_bytes: u64,
    /// Files deflated.
    deflated: u64,
    /// Files stored as they are.
    stored: u64,
    /// Whether ZIP64 records were needed.
    zip64: bool,
    /// Whether it was verified before it was renamed into place.
    verified: bool,
    /// Crates not archived because they were being made when the archive reached them.
    skipped: Vec<String>,
}

impl From<ArchiveReport> for PyArchiveReport {
    fn from(r: ArchiveReport) -> Self {
        PyArchiveReport {
            path: r.path,
            capsule: r.capsule,
            files: r.files,
            dirs: r.dirs,
            symlinks: r.symlinks,
            bytes: r.bytes,
            archive_bytes: r.archive_bytes,
            deflated: r.deflated,
            stored: r.stored,
            zip64: r.zip64,
            verified: r.verified,
            skipped: r.skipped,
        }
    }
}

#[pymethods]
impl PyArchiveReport {
    fn __repr__(&self) -> String {
        format!(
            "ArchiveReport(path={:?}, capsule={:?}, files={}, bytes={})",
            self.path.display().to_string(),
            self.capsule,
            self.files,
            self.bytes
        )
    }
}

/// What `capsa.verify` checked.
#[pyclass(name = "VerifyReport", module = "capsa", frozen, get_all)]
pub struct PyVerifyReport {
    /// The archive.
    path: PathBuf,
    /// The capsule it holds.
    capsule: String,
    /// Entries in the zip.
    entries: u64,
    /// Regular files checked.
    files: u64,
    /// Directories.
    dirs: u64,
    /// Symbolic links.
    symlinks: u64,
    /// Bytes of file content checked.
    bytes: u64,
    /// Size of the archive file.
    archive_bytes: u64,
    /// SHA-256 of the whole archive file, when asked for.
    archive_sha256: Option<String>,
    /// The capsa version that wrote it.
    tool_version: String,
}

impl From<VerifyReport> for PyVerifyReport {
    fn from(r: VerifyReport) -> Self {
        PyVerifyReport {
            path: r.path,
            capsule: r.capsule,
            entries: r.entries,
            files: r.files,
            dirs: r.dirs,
            symlinks: r.symlinks,
            bytes: r.bytes,
            archive_bytes: r.archive_bytes,
            archive_sha256: r.archive_sha256,
            tool_version: r.tool_version,
        }
    }
}

#[pymethods]
impl PyVerifyReport {
    fn __repr__(&self) -> String {
        format!(
            "VerifyReport(path={:?}, capsule={:?}, files={}, bytes={})",
            self.path.display().to_string(),
            self.capsule,
            self.files,
            self.bytes
        )
    }
}

/// What an offline capsule records about its archive.
#[pyclass(name = "OfflineStub", module = "capsa", frozen, get_all)]
pub struct PyOfflineStub {
    /// The capsule id.
    capsule: String,
    /// The archive as recorded (relative to the store root when inside it).
    archive: String,
    /// The archive's path for this store.
    archive_path: PathBuf,
    /// SHA-256 of the archive file.
    archive_sha256: String,
    /// Size of the archive file.
    archive_bytes: u64,
    /// Files in the capsule.
    files: u64,
    /// Bytes of content in the capsule.
    bytes: u64,
    /// When it went offline (ISO 8601, UTC).
    taken_offline_at: String,
}

impl PyOfflineStub {
    pub(crate) fn new(stub: OfflineStub, store: &capsa::Store) -> Self {
        PyOfflineStub {
            archive_path: stub.archive_path(store),
            capsule: stub.capsule,
            archive: stub.archive,
            archive_sha256: stub.archive_sha256,
            archive_bytes: stub.archive_bytes,
            files: stub.files,
            bytes: stub.bytes,
            taken_offline_at: stub.taken_offline_at.to_rfc3339(),
        }
    }
}

#[pymethods]
impl PyOfflineStub {
    fn __repr__(&self) -> String {
        format!(
            "OfflineStub(capsule={:?}, archive={:?})",
            self.capsule, self.archive
        )
    }
}

/// Archive a capsule into one verified zip at `dest`: a path, `file:///…` or
/// `s3://bucket/key` URL (credentials and endpoint from the `AWS_*` environment variables).
/// `policy` is `"auto"`, `"store"` or `"deflate"` (default: the store's). Ctrl-C or a raising `progress` cancels it cleanly.
#[pyfunction]
#[pyo3(
    signature = (capsule, dest, policy = None, progress = None, replace = false, level = 6),
    text_signature = "(capsule, dest, policy=None, progress=None, replace=False, level=6)"
)]
pub fn archive(
    py: Python<'_>,
    capsule: PyRef<'_, PyCapsule>,
    dest: PathBuf,
    policy: Option<&str>,
    progress: Option<Py<PyAny>>,
    replace: bool,
    level: u32,
) -> PyResult<PyArchiveReport> {
    capsule.check()?;
    let policy = policy.map(Policy::parse).transpose().py_err()?;
    let op = LongOp::default();
    let options = ArchiveOptions {
        policy,
        level,
        replace,
        progress: op.progress(progress),
        cancel: op.cancel.clone(),
        ..ArchiveOptions::default()
    };
    let c = capsule.inner.clone();
    let report = op.run(py, move || core_archive::archive(&c, &dest, options))?;
    Ok(report.into())
}

/// Verify an archive: structure, every CRC-32 and the SHA-256 manifest (`CorruptError`
/// naming the first bad entry). `sha256=True` also hashes the whole file.
#[pyfunction]
#[pyo3(signature = (path, progress = None, sha256 = false))]
pub fn verify(
    py: Python<'_>,
    path: PathBuf,
    progress: Option<Py<PyAny>>,
    sha256: bool,
) -> PyResult<PyVerifyReport> {
    let op = LongOp::default();
    let options = VerifyOptions {
        archive_sha256: sha256,
        progress: op.progress(progress),
        cancel: op.cancel.clone(),
        ..VerifyOptions::default()
    };
    let report = op.run(py, move || core_archive::verify_with(&path, options))?;
    Ok(report.into())
}

/// `Store.restore`: restore an archive into the store.
pub(crate) fn restore(
    py: Python<'_>,
    store: &capsa::Store,
    path: PathBuf,
    replace: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<capsa::Capsule> {
    let op = LongOp::default();
    let options = RestoreOptions {
        replace,
        progress: op.progress(progress),
        cancel: op.cancel.clone(),
        ..RestoreOptions::default()
    };
    let store = store.clone();
    op.run(py, move || core_archive::restore(&path, &store, options))
}
