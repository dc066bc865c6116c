//! `capsa.Store`, `capsa.Capsule`, `capsa.Crate` and the fsck report.
//!
//! Every method that touches the disk releases the GIL (`py.detach`) around the core call.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use capsa::{BumpOptions, Capsule, Crate, FsckReport, Section, Store, StoreOptions, Version};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::archive::PyOfflineStub;
use crate::errors::IntoPyResult;
use crate::seq::PySequence;

/// Shared by a store and every capsule and crate reached through it: once the store is
/// closed, they all refuse with `InvalidArgumentError` ([`capsa::Error::closed`]) instead of
/// touching the disk.
#[derive(Clone, Default)]
pub(crate) struct OpenFlag(Arc<AtomicBool>);

impl OpenFlag {
    fn close(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_closed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn check(&self) -> PyResult<()> {
        if self.is_closed() {
            return Err(capsa::Error::closed("store")).py_err();
        }
        Ok(())
    }
}

/// A version given as `"v003"` or as the number `3`.
#[derive(FromPyObject)]
pub(crate) enum VersionArg {
    Number(u32),
    Text(String),
}

impl VersionArg {
    fn resolve(self) -> capsa::Result<Version> {
        match self {
            VersionArg::Number(n) => Version::new(n),
            VersionArg::Text(s) => Version::parse(&s),
        }
    }
}

fn parse_sections(names: Vec<String>) -> capsa::Result<Vec<Section>> {
    names.iter().map(|n| n.parse::<Section>()).collect()
}

/// An open store: a root directory of capsules.
#[pyclass(name = "Store", module = "capsa", frozen)]
pub struct PyStore {
    inner: Store,
    open: OpenFlag,
}

#[pymethods]
impl PyStore {
    /// Create a new store at `path` (the directory is made if missing).
    #[staticmethod]
    #[pyo3(
        signature = (path, padding = 3, archive_policy = "auto".to_string()),
        text_signature = "(path, padding=3, archive_policy='auto')"
    )]
    fn init(
        py: Python<'_>,
        path: PathBuf,
        padding: usize,
        archive_policy: String,
    ) -> PyResult<Self> {
        let options = StoreOptions {
            padding,
            archive_policy,
        };
        let inner = py.detach(|| Store::init(&path, options)).py_err()?;
        Ok(PyStore {
            inner,
            open: OpenFlag::default(),
        })
    }

    /// Open an existing store.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| Store::open(&path)).py_err()?;
        Ok(PyStore {
            inner,
            open: OpenFlag::default(),
        })
    }

    /// The store's root directory.
    #[getter]
    fn root(&self) -> PathBuf {
        self.inner.root().to_path_buf()
    }

    /// Digits in a crate version.
    #[getter]
    fn padding(&self) -> usize {
        self.inner.padding()
    }

    /// Whether [`close`](Self::close) was called.
    #[getter]
    fn closed(&self) -> bool {
        self.open.is_closed()
    }

    /// Close the store: it and every capsule and crate reached through it refuse further
    /// calls. Closing twice is fine.
    fn close(&self) {
        self.open.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }

    /// Create a new, empty capsule.
    fn create_capsule(&self, py: Python<'_>, id: String) -> PyResult<PyCapsule> {
        self.open.check()?;
        let c = py.detach(|| self.inner.create_capsule(&id)).py_err()?;
        Ok(PyCapsule::new(c, self.open.clone()))
    }

    /// An existing capsule (`NotFoundError` if there is none).
    fn capsule(&self, py: Python<'_>, id: String) -> PyResult<PyCapsule> {
        self.open.check()?;
        let c = py.detach(|| self.inner.capsule(&id)).py_err()?;
        Ok(PyCapsule::new(c, self.open.clone()))
    }

    /// Every capsule, sorted by id.
    fn capsules(&self, py: Python<'_>) -> PyResult<Vec<PyCapsule>> {
        self.open.check()?;
        let all = py.detach(|| self.inner.capsules()).py_err()?;
        Ok(all
            .into_iter()
            .map(|c| PyCapsule::new(c, self.open.clone()))
            .collect())
    }

    /// Check the store for what a crash left behind; `repair=True` mends what it can.
    #[pyo3(signature = (repair = false))]
    fn fsck(&self, py: Python<'_>, repair: bool) -> PyResult<PyFsckReport> {
        self.open.check()?;
        let report = py.detach(|| self.inner.fsck(repair)).py_err()?;
        Ok(PyFsckReport::from(report))
    }

    /// Restore an archive into the store (`replace=True` replaces an existing capsule of
    /// the same id); returns the capsule. Ctrl-C or a raising `progress` cancels it cleanly.
    #[pyo3(signature = (path, replace = false, progress = None))]
    fn restore(
        &self,
        py: Python<'_>,
        path: PathBuf,
        replace: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyCapsule> {
        self.open.check()?;
        let c = crate::archive::restore(py, &self.inner, path, replace, progress)?;
        Ok(PyCapsule::new(c, self.open.clone()))
    }

    /// Bring an offline capsule back from its recorded archive (checked, verified,
    /// restored into place).
    fn retrieve(&self, py: Python<'_>, id: String) -> PyResult<PyCapsule> {
        self.open.check()?;
        let c = py.detach(|| self.inner.retrieve(&id)).py_err()?;
        Ok(PyCapsule::new(c, self.open.clone()))
    }

    fn __repr__(&self) -> String {
        format!(
            "Store({:?}{})",
            self.inner.root().display().to_string(),
            if self.open.is_closed() {
                ", closed"
            } else {
                ""
            }
        )
    }
}

/// A capsule: one directory per project-management entry, holding crates.
#[pyclass(name = "Capsule", module = "capsa", frozen)]
pub struct PyCapsule {
    pub(crate) inner: Capsule,
    open: OpenFlag,
}

impl PyCapsule {
    fn new(inner: Capsule, open: OpenFlag) -> Self {
        PyCapsule { inner, open }
    }

    pub(crate) fn check(&self) -> PyResult<()> {
        self.open.check()
    }

    fn wrap(&self, c: Crate) -> PyCrate {
        PyCrate {
            inner: c,
            open: self.open.clone(),
        }
    }
}

#[pymethods]
impl PyCapsule {
    /// The capsule id.
    #[getter]
    fn id(&self) -> &str {
        self.inner.id().as_str()
    }

    /// The capsule's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// Allocate the next crate; `carry_over` names sections whose files come over from the
    /// previous crate, version tokens renamed.
    #[pyo3(
        signature = (comment = None, carry_over = Vec::new(), created_by = None, tags = Vec::new()),
        text_signature = "(self, comment=None, carry_over=(), created_by=None, tags=())"
    )]
    fn bump(
        &self,
        py: Python<'_>,
        comment: Option<String>,
        carry_over: Vec<String>,
        created_by: Option<String>,
        tags: Vec<String>,
    ) -> PyResult<PyCrate> {
        self.check()?;
        let carry_over = parse_sections(carry_over).py_err()?;
        let options = BumpOptions {
            comment,
            carry_over,
            created_by,
            tags,
        };
        let c = py.detach(|| self.inner.bump(options)).py_err()?;
        Ok(self.wrap(c))
    }

    /// Every complete crate, oldest first.
    fn crates(&self, py: Python<'_>) -> PyResult<Vec<PyCrate>> {
        self.check()?;
        let all = py.detach(|| self.inner.crates()).py_err()?;
        Ok(all.into_iter().map(|c| self.wrap(c)).collect())
    }

    /// A crate by version (`"v003"` or `3`); `NotFoundError` if absent.
    fn get(&self, py: Python<'_>, version: VersionArg) -> PyResult<PyCrate> {
        self.check()?;
        let v = version.resolve().py_err()?;
        let c = py.detach(|| self.inner.get(v)).py_err()?;
        Ok(self.wrap(c))
    }

    /// The newest crate (the newest sealed one with `published=True`), or `None`.
    #[pyo3(signature = (published = false))]
    fn latest(&self, py: Python<'_>, published: bool) -> PyResult<Option<PyCrate>> {
        self.check()?;
        let c = py
            .detach(|| {
                if published {
                    self.inner.latest_published()
                } else {
                    self.inner.latest()
                }
            })
            .py_err()?;
        Ok(c.map(|c| self.wrap(c)))
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = PyList::new(py, self.crates(py)?)?;
        Ok(list.as_any().try_iter()?.into_any())
    }

    /// Take the capsule offline: verify `archive` holds exactly its current tree, leave a
    /// stub pointing at it, remove the content. Returns the stub.
    fn take_offline(&self, py: Python<'_>, archive: PathBuf) -> PyResult<PyOfflineStub> {
        self.check()?;
        let stub = py.detach(|| self.inner.take_offline(&archive)).py_err()?;
        Ok(PyOfflineStub::new(stub, self.inner.store()))
    }

    /// Whether the capsule is offline (its content lives in an archive).
    #[getter]
    fn offline(&self, py: Python<'_>) -> PyResult<bool> {
        self.check()?;
        Ok(py.detach(|| self.inner.is_offline()))
    }

    /// The offline stub, or `None` when the capsule is online.
    #[getter]
    fn offline_stub(&self, py: Python<'_>) -> PyResult<Option<PyOfflineStub>> {
        self.check()?;
        let stub = py.detach(|| self.inner.offline_stub()).py_err()?;
        Ok(stub.map(|s| PyOfflineStub::new(s, self.inner.store())))
    }

    fn __repr__(&self) -> String {
        format!("Capsule({:?})", self.inner.id().as_str())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyCapsule>()
            .is_ok_and(|o| o.get().inner.path() == self.inner.path())
    }

    fn __hash__(&self) -> u64 {
        hash_of(self.inner.path())
    }
}

fn hash_of(value: impl std::hash::Hash) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// A crate (`v001`, `v002`…) of a capsule, holding `artifacts/`, `publishes/`, `scenes/`.
#[pyclass(name = "Crate", module = "capsa", frozen)]
pub struct PyCrate {
    inner: Crate,
    open: OpenFlag,
}

impl PyCrate {
    fn check(&self) -> PyResult<()> {
        self.open.check()
    }
}

#[pymethods]
impl PyCrate {
    /// The version as its directory name (`"v003"`).
    #[getter]
    fn version(&self) -> String {
        self.inner.version_str()
    }

    /// The version number (`3`).
    #[getter]
    fn number(&self) -> u32 {
        self.inner.version().number()
    }

    /// The id of the capsule it belongs to.
    #[getter]
    fn capsule_id(&self) -> &str {
        self.inner.capsule().id().as_str()
    }

    /// The capsule it belongs to.
    #[getter]
    fn capsule(&self) -> PyCapsule {
        PyCapsule::new(self.inner.capsule().clone(), self.open.clone())
    }

    /// The crate's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// `<crate>/artifacts`.
    #[getter]
    fn artifacts(&self) -> PathBuf {
        self.inner.section(Section::Artifacts)
    }

    /// `<crate>/publishes`.
    #[getter]
    fn publishes(&self) -> PathBuf {
        self.inner.section(Section::Publishes)
    }

    /// `<crate>/scenes`.
    #[getter]
    fn scenes(&self) -> PathBuf {
        self.inner.section(Section::Scenes)
    }

    /// The directory of a section by name.
    fn section(&self, name: &str) -> PyResult<PathBuf> {
        let s: Section = name.parse().py_err()?;
        Ok(self.inner.section(s))
    }

    /// The metadata as a dict (the JSON sidecar as written: `created_by`, `created_at`,
    /// `comment`, `parent`, `tags`, `published`, `published_at`…).
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.check()?;
        let meta = py.detach(|| self.inner.metadata()).py_err()?;
        let text = serde_json::to_string(&meta)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// Whether the crate is sealed (published).
    #[getter]
    fn published(&self, py: Python<'_>) -> PyResult<bool> {
        self.check()?;
        py.detach(|| self.inner.is_published()).py_err()
    }

    /// Replace the comment (`SealedError` once published).
    fn set_comment(&self, py: Python<'_>, comment: String) -> PyResult<()> {
        self.check()?;
        py.detach(|| self.inner.set_comment(&comment)).py_err()
    }

    /// Publish a file or a frame sequence (`plate.####.exr`) into `publishes/`; returns
    /// the published file or directory.
    #[pyo3(signature = (src, dest = None))]
    fn publish(&self, py: Python<'_>, src: PathBuf, dest: Option<PathBuf>) -> PyResult<PathBuf> {
        self.check()?;
        py.detach(|| self.inner.publish(&src, dest.as_deref()))
            .py_err()
    }

    /// Seal the crate: it becomes published and refuses further writes.
    fn seal(&self, py: Python<'_>) -> PyResult<()> {
        self.check()?;
        py.detach(|| self.inner.seal()).py_err()
    }

    /// The frame sequences in a section (subdirectories included), sorted.
    #[pyo3(signature = (section = "artifacts"))]
    fn sequences(&self, py: Python<'_>, section: &str) -> PyResult<Vec<PySequence>> {
        self.check()?;
        let s: Section = section.parse().py_err()?;
        let found = py.detach(|| self.inner.sequences(s)).py_err()?;
        Ok(found.into_iter().map(PySequence::from).collect())
    }

    fn __repr__(&self) -> String {
        format!(
            "Crate({:?}, {:?})",
            self.inner.capsule().id().as_str(),
            self.inner.version_str()
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyCrate>()
            .is_ok_and(|o| o.get().inner.path() == self.inner.path())
    }

    fn __hash__(&self) -> u64 {
        hash_of(self.inner.path())
    }
}

/// One fsck finding.
#[pyclass(name = "FsckProblem", module = "capsa", frozen, get_all)]
pub struct PyFsckProblem {
    /// What kind (`"incomplete_crate"`, `"stale_temp"`…).
    kind: String,
    /// Where, relative to the store root.
    path: PathBuf,
    /// A readable explanation.
    detail: String,
    /// Whether repair mended it.
    repaired: bool,
}

#[pymethods]
impl PyFsckProblem {
    fn __repr__(&self) -> String {
        format!(
            "FsckProblem(kind={:?}, path={:?}, repaired={})",
            self.kind,
            self.path.display().to_string(),
            if self.repaired { "True" } else { "False" }
        )
    }
}

/// What `Store.fsck` found.
#[pyclass(name = "FsckReport", module = "capsa", frozen)]
pub struct PyFsckReport {
    report: FsckReport,
}

impl From<FsckReport> for PyFsckReport {
    fn from(report: FsckReport) -> Self {
        PyFsckReport { report }
    }
}

#[pymethods]
impl PyFsckReport {
    /// Capsules looked at.
    #[getter]
    fn capsules(&self) -> usize {
        self.report.capsules
    }

    /// Crate directories looked at.
    #[getter]
    fn crates(&self) -> usize {
        self.report.crates
    }

    /// True when nothing is left unrepaired.
    #[getter]
    fn clean(&self) -> bool {
        self.report.is_clean()
    }

    /// The findings, in walk order.
    #[getter]
    fn problems(&self) -> Vec<PyFsckProblem> {
        self.report
            .problems
            .iter()
            .map(|p| PyFsckProblem {
                kind: serde_json::to_value(p.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                path: p.path.clone(),
                detail: p.detail.clone(),
                repaired: p.repaired,
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "FsckReport(capsules={}, crates={}, problems={})",
            self.report.capsules,
            self.report.crates,
            self.report.problems.len()
        )
    }
}
