//! `capsa.CapsuleId` and `capsa.Version`: the validated names of capsules and crates.

use capsa::{CapsuleId, Version};
use pyo3::basic::CompareOp;
use pyo3::prelude::*;

use crate::errors::IntoPyResult;

/// A validated capsule id: a 24-hex ObjectId, a UUID or a slug.
#[pyclass(name = "CapsuleId", module = "capsa", frozen)]
pub struct PyCapsuleId {
    inner: CapsuleId,
}

#[pymethods]
impl PyCapsuleId {
    /// Validate an id (`InvalidNameError` naming the rule it breaks).
    #[staticmethod]
    fn parse(value: &str) -> PyResult<Self> {
        Ok(PyCapsuleId {
            inner: CapsuleId::parse(value).py_err()?,
        })
    }

    /// `"objectid"`, `"uuid"` or `"slug"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind().as_str()
    }

    fn __str__(&self) -> &str {
        self.inner.as_str()
    }

    fn __repr__(&self) -> String {
        format!("CapsuleId({:?})", self.inner.as_str())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyCapsuleId>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        self.inner.as_str().hash(&mut h);
        h.finish()
    }
}

/// A crate version: `v` + a number; parsing accepts any width, ordering is numeric.
#[pyclass(name = "Version", module = "capsa", frozen)]
pub struct PyVersion {
    inner: Version,
}

#[pymethods]
impl PyVersion {
    /// `Version(3)`: the version of that number (1 or more).
    #[new]
    fn new(number: u32) -> PyResult<Self> {
        Ok(PyVersion {
            inner: Version::new(number).py_err()?,
        })
    }

    /// Parse `"v003"`, `"v3"`, `"v1000"` (`InvalidVersionError` otherwise).
    #[staticmethod]
    fn parse(value: &str) -> PyResult<Self> {
        Ok(PyVersion {
            inner: Version::parse(value).py_err()?,
        })
    }

    /// The number.
    #[getter]
    fn number(&self) -> u32 {
        self.inner.number()
    }

    /// The next version.
    fn next(&self) -> PyResult<Self> {
        Ok(PyVersion {
            inner: self.inner.next().py_err()?,
        })
    }

    /// The previous version, or `None` for `v001`.
    fn prev(&self) -> Option<Self> {
        self.inner.prev().map(|inner| PyVersion { inner })
    }

    /// The text at a padding (`padded(3)` → `"v003"`).
    #[pyo3(signature = (padding = 3))]
    fn padded(&self, padding: usize) -> String {
        self.inner.padded(padding)
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("Version({})", self.inner.number())
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(o) = other.cast::<PyVersion>() else {
            return Ok(py.NotImplemented());
        };
        Ok(op
            .matches(self.inner.cmp(&o.get().inner))
            .into_pyobject(py)?
            .to_owned()
            .into_any()
            .unbind())
    }

    fn __hash__(&self) -> u64 {
        u64::from(self.inner.number())
    }
}
