//! `capsa.Sequence`, `capsa.FrameSet`, `capsa.find_sequences`, `capsa.sequences_in`.

use std::path::PathBuf;
use std::sync::Arc;

use capsa::seq::{self, FrameSet, PadStyle, Sequence};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::errors::IntoPyResult;

fn parse_style(name: &str) -> PyResult<PadStyle> {
    name.parse::<PadStyle>().py_err()
}

/// A set of frames: `1-100`, `1-100x2,105`, negative frames. Iterates ascending.
#[pyclass(name = "FrameSet", module = "capsa", frozen)]
#[derive(Clone)]
pub struct PyFrameSet {
    inner: Arc<FrameSet>,
}

impl From<FrameSet> for PyFrameSet {
    fn from(fs: FrameSet) -> Self {
        PyFrameSet {
            inner: Arc::new(fs),
        }
    }
}

/// What `FrameSet(...)` accepts: a spec string or the frames themselves.
#[derive(FromPyObject)]
pub(crate) enum FramesArg {
    Spec(String),
    Frames(Vec<i64>),
}

#[pymethods]
impl PyFrameSet {
    /// `FrameSet("1-100x2,105")` or `FrameSet([1, 2, 3])`; empty without an argument.
    #[new]
    #[pyo3(signature = (frames = None))]
    fn new(py: Python<'_>, frames: Option<FramesArg>) -> PyResult<Self> {
        let fs = match frames {
            None => FrameSet::new(),
            Some(FramesArg::Spec(s)) => py.detach(|| FrameSet::parse(&s)).py_err()?,
            Some(FramesArg::Frames(v)) => py.detach(|| FrameSet::from_frames(v)),
        };
        Ok(fs.into())
    }

    /// Parse a frame set spec (`InvalidSequenceError` when it does not parse or is too big).
    #[staticmethod]
    fn parse(py: Python<'_>, spec: String) -> PyResult<Self> {
        Ok(py.detach(|| FrameSet::parse(&spec)).py_err()?.into())
    }

    /// The lowest frame, or `None` when empty.
    #[getter]
    fn min(&self) -> Option<i64> {
        self.inner.min()
    }

    /// The highest frame, or `None` when empty.
    #[getter]
    fn max(&self) -> Option<i64> {
        self.inner.max()
    }

    /// The frames missing between the first and the last.
    fn missing(&self, py: Python<'_>) -> Self {
        py.detach(|| self.inner.missing()).into()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __bool__(&self) -> bool {
        !self.inner.is_empty()
    }

    fn __contains__(&self, frame: i64) -> bool {
        self.inner.contains(frame)
    }

    fn __iter__(&self) -> PyFrameIter {
        PyFrameIter {
            set: self.inner.clone(),
            state: std::sync::Mutex::new((0, 0)),
        }
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("FrameSet({:?})", self.inner.to_string())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyFrameSet>()
            .is_ok_and(|o| *o.get().inner == *self.inner)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        self.inner.to_string().hash(&mut h);
        h.finish()
    }
}

/// Iterator over a frame set's frames (ascending), without listing them all first.
#[pyclass(name = "FrameIterator", module = "capsa", frozen)]
pub struct PyFrameIter {
    set: Arc<FrameSet>,
    /// (range index, frame index inside that range)
    state: std::sync::Mutex<(usize, u64)>,
}

#[pymethods]
impl PyFrameIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self) -> Option<i64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let ranges = self.set.ranges();
        loop {
            let (index, k) = *state;
            let r = ranges.get(index)?;
            if k < r.count() {
                *state = (index, k + 1);
                return Some(r.start() + (k as i64) * r.step());
            }
            *state = (index + 1, 0);
        }
    }
}

/// A frame sequence: `head` + frame zero-padded to `padding` + `tail`, for each frame.
#[pyclass(name = "Sequence", module = "capsa", frozen)]
#[derive(Clone)]
pub struct PySequence {
    inner: Arc<Sequence>,
}

impl From<Sequence> for PySequence {
    fn from(s: Sequence) -> Self {
        PySequence { inner: Arc::new(s) }
    }
}

#[pymethods]
impl PySequence {
    /// A sequence from its parts; `frames` is a spec string, a list of frames or a FrameSet.
    #[new]
    #[pyo3(signature = (head, tail, padding = 4, frames = None))]
    fn new(
        py: Python<'_>,
        head: String,
        tail: String,
        padding: usize,
        frames: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let fs = match frames {
            None => FrameSet::new(),
            Some(f) => match f.cast::<PyFrameSet>() {
                Ok(fs) => (*fs.get().inner).clone(),
                Err(_) => {
                    let arg: FramesArg = f.extract()?;
                    (*PyFrameSet::new(py, Some(arg))?.inner).clone()
                }
            },
        };
        if padding > seq::MAX_PADDING {
            return Err(capsa::Error::InvalidSequence {
                value: format!("{head}…{tail}"),
                rule: format!("padding must be at most {}", seq::MAX_PADDING),
            })
            .py_err();
        }
        Ok(Sequence::new(head, tail, padding, fs).into())
    }

    /// Parse a pattern: `plate.1001-1100#.exr`, `plate.@@@@.exr`, `plate.%04d.exr 1-10`,
    /// `plate.$F4.exr`, `tex.<UDIM>.exr`.
    #[staticmethod]
    fn parse(pattern: &str) -> PyResult<Self> {
        Ok(Sequence::parse(pattern).py_err()?.into())
    }

    /// Everything before the frame number.
    #[getter]
    fn head(&self) -> &str {
        &self.inner.head
    }

    /// Everything after the frame number.
    #[getter]
    fn tail(&self) -> &str {
        &self.inner.tail
    }

    /// Minimum width of the frame number.
    #[getter]
    fn padding(&self) -> usize {
        self.inner.padding
    }

    /// The frames.
    #[getter]
    fn frames(&self) -> PyFrameSet {
        self.inner.frames.clone().into()
    }

    /// The frames missing between the first and the last.
    fn missing(&self) -> PyFrameSet {
        self.inner.missing().into()
    }

    /// The pattern in `style` (`hash`, `at`, `printf`, `houdini`) with its frames.
    #[pyo3(signature = (style = "hash"))]
    fn format(&self, style: &str) -> PyResult<String> {
        Ok(self.inner.format(parse_style(style)?))
    }

    /// The pattern in `style` without frames (`plate.%04d.exr`).
    #[pyo3(signature = (style = "hash"))]
    fn pattern(&self, style: &str) -> PyResult<String> {
        Ok(self.inner.pattern(parse_style(style)?))
    }

    /// The file name of `frame` (`plate.1001.exr`): a name, joined to a directory by the
    /// caller, so it is a `str`.
    fn path(&self, frame: i64) -> String {
        self.inner.path(frame)
    }

    /// The file names of every frame, ascending.
    fn paths(&self) -> Vec<String> {
        self.inner.paths().collect()
    }

    fn __len__(&self) -> usize {
        self.inner.frames.len()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("Sequence({:?})", self.inner.to_string())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PySequence>()
            .is_ok_and(|o| *o.get().inner == *self.inner)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        self.inner.hash(&mut h);
        h.finish()
    }
}

/// The frame sequences among the regular files of `dir` (not recursive), sorted.
#[pyfunction]
pub fn find_sequences(py: Python<'_>, dir: PathBuf) -> PyResult<Vec<PySequence>> {
    let found = py.detach(|| seq::find_sequences(&dir)).py_err()?;
    Ok(found.into_iter().map(PySequence::from).collect())
}

/// The frame sequences among `names` (any iterable of `str`), sorted by head, tail, padding.
#[pyfunction]
pub fn sequences_in(py: Python<'_>, names: &Bound<'_, PyAny>) -> PyResult<Vec<PySequence>> {
    let bad = |reason: &str| {
        Err(capsa::Error::InvalidArgument {
            what: "names",
            reason: reason.to_string(),
        })
        .py_err()
    };
    if names.is_instance_of::<PyString>() || names.is_instance_of::<PyBytes>() {
        return bad("a single string; expected an iterable of names");
    }
    let mut list: Vec<String> = Vec::new();
    if let Ok(n) = names.len() {
        list.reserve(n);
    }
    for item in names.try_iter()? {
        match item?.extract::<String>() {
            Ok(name) => list.push(name),
            Err(_) => return bad("every name must be a str"),
        }
    }
    let found = py.detach(|| seq::sequences_in(&list));
    Ok(found.into_iter().map(PySequence::from).collect())
}
