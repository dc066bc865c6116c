//! `capsa.CapsaError` and one subclass per [`ErrorCode`], each also a subclass of the matching
//! builtin, so `except FileNotFoundError` catches a missing capsule.
//!
//! The classes are made when the module is imported (`type(name, bases, attrs)`), named
//! mechanically from the code (`NOT_FOUND` → `NotFoundError`), and carry the stable code
//! string and number as class attributes `.code` and `.number`. The mapping uses the code,
//! never the message.

use capsa::{Error, ErrorCode};
use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyOSError, PyPermissionError,
    PyTimeoutError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// The classes, made once per interpreter: the base first, then one per code.
struct Classes {
    base: Py<PyType>,
    by_code: Vec<(ErrorCode, Py<PyType>)>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// `NOT_FOUND` → `NotFoundError`.
pub fn class_name(code: ErrorCode) -> String {
    let mut out = String::new();
    for word in code.as_str().split('_') {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first);
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    out.push_str("Error");
    out
}

/// The builtin exception a code's class also derives from, if any.
fn builtin(py: Python<'_>, code: ErrorCode) -> Option<Bound<'_, PyType>> {
    let ty = match code {
        ErrorCode::NotFound => py.get_type::<PyFileNotFoundError>(),
        ErrorCode::AlreadyExists => py.get_type::<PyFileExistsError>(),
        ErrorCode::InvalidName
        | ErrorCode::InvalidVersion
        | ErrorCode::InvalidSequence
        | ErrorCode::InvalidArgument => py.get_type::<PyValueError>(),
        ErrorCode::Io => py.get_type::<PyOSError>(),
        ErrorCode::Sealed | ErrorCode::UnsafePath => py.get_type::<PyPermissionError>(),
        ErrorCode::TooLarge => py.get_type::<PyValueError>(),
        ErrorCode::Timeout => py.get_type::<PyTimeoutError>(),
        _ => return None,
    };
    Some(ty)
}

fn make_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: Vec<Bound<'py, PyType>>,
    code: Option<ErrorCode>,
    doc: &str,
) -> PyResult<Bound<'py, PyType>> {
    let attrs = PyDict::new(py);
    attrs.set_item("__module__", "capsa")?;
    attrs.set_item("__doc__", doc)?;
    if let Some(code) = code {
        attrs.set_item("code", code.as_str())?;
        attrs.set_item("number", code.number())?;
    }
    let bases = PyTuple::new(py, bases)?;
    let ty = py
        .get_type::<PyType>()
        .call1((name, bases, attrs))?
        .cast_into::<PyType>()?;
    Ok(ty)
}

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let base = make_class(
            py,
            "CapsaError",
            vec![py.get_type::<PyException>()],
            None,
            "Base class of every capsa error. `.code` is the stable code string \
             (`\"NOT_FOUND\"`…), `.number` its stable number.",
        )?;
        // The base has no code of its own; an error raised always is a subclass.
        base.setattr("code", "")?;
        base.setattr("number", 0)?;
        let mut by_code = Vec::new();
        for code in ErrorCode::ALL {
            let mut bases = vec![base.clone()];
            bases.extend(builtin(py, code));
            let doc = format!("capsa error code {} ({}).", code.as_str(), code.number());
            let ty = make_class(py, &class_name(code), bases, Some(code), &doc)?;
            by_code.push((code, ty.unbind()));
        }
        Ok(Classes {
            base: base.unbind(),
            by_code,
        })
    })
}

/// Add `CapsaError` and every subclass to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let c = classes(py)?;
    m.add("CapsaError", c.base.bind(py))?;
    for (code, ty) in &c.by_code {
        m.add(class_name(*code).as_str(), ty.bind(py))?;
    }
    Ok(())
}

/// The Python exception for a core error: the subclass for its code, with the core message.
pub fn to_py(err: Error) -> PyErr {
    Python::attach(|py| match classes(py) {
        Ok(c) => {
            let code = err.code();
            let ty = c
                .by_code
                .iter()
                .find(|(k, _)| *k == code)
                .map(|(_, t)| t)
                .unwrap_or(&c.base);
            PyErr::from_type(ty.bind(py).clone(), (err.to_string(),))
        }
        Err(e) => e,
    })
}

/// Convert a core result, mapping its error.
pub trait IntoPyResult<T> {
    /// `Ok` unchanged, `Err` mapped by [`to_py`].
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for capsa::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
