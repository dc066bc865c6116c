//! Long operations (archive, verify, restore) with progress and cancellation: they wait as
//! [`crate::wait`] does; Ctrl-C (`KeyboardInterrupt`) cancels the operation, and so does an
//! exception raised by the progress callback: core then stops, removes what it had written,
//! and the Python exception propagates.

use std::sync::{Arc, Mutex};

use capsa::archive::{CancelToken, Progress, ProgressFn};
use pyo3::prelude::*;

use crate::errors::IntoPyResult;
use crate::wait::{self, OnSignal};

/// How far a long operation has come: files and bytes done and in total.
#[pyclass(name = "Progress", module = "capsa", frozen, get_all)]
#[derive(Clone, Copy)]
pub struct PyProgress {
    /// Files finished.
    files_done: u64,
    /// Files in total.
    files_total: u64,
    /// Bytes of file content finished.
    bytes_done: u64,
    /// Bytes of file content in total.
    bytes_total: u64,
}

#[pymethods]
impl PyProgress {
    fn __repr__(&self) -> String {
        format!(
            "Progress(files {}/{}, bytes {}/{})",
            self.files_done, self.files_total, self.bytes_done, self.bytes_total
        )
    }
}

impl From<&Progress> for PyProgress {
    fn from(p: &Progress) -> Self {
        PyProgress {
            files_done: p.files_done,
            files_total: p.files_total,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
        }
    }
}

/// The cancellation token and the Python error (if any) of one long operation.
#[derive(Clone, Default)]
pub struct LongOp {
    /// Passed to core.
    pub cancel: CancelToken,
    raised: Arc<Mutex<Option<PyErr>>>,
}

impl LongOp {
    /// A core progress callback calling `callback` with the GIL (core calls it at most every
    /// [`capsa::progress::PROGRESS_INTERVAL`], and for the last report). If it raises, the
    /// operation is cancelled and the exception kept to be re-raised.
    pub fn progress(&self, callback: Option<Py<PyAny>>) -> Option<ProgressFn> {
        let callback = callback?;
        let op = self.clone();
        Some(Arc::new(move |p: &Progress| {
            if op.cancel.is_cancelled() {
                return;
            }
            Python::attach(|py| {
                if let Err(e) = callback.call1(py, (PyProgress::from(p),)) {
                    op.fail(e);
                }
            });
        }))
    }

    fn fail(&self, e: PyErr) {
        let mut slot = self.raised.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        self.cancel.cancel();
    }

    /// Run `work` on a worker thread and wait for it without the GIL. A signal handler
    /// that raises (Ctrl-C) or a raising progress callback cancels it; the exception is
    /// raised once core has stopped and cleaned up.
    pub fn run<T: Send + 'static>(
        &self,
        py: Python<'_>,
        work: impl FnOnce() -> capsa::Result<T> + Send + 'static,
    ) -> PyResult<T> {
        let cancel = self.cancel.clone();
        let result = wait::interruptible(py, work, || cancel.cancel(), OnSignal::AwaitCancelled);
        let raised = self.raised.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (raised, result) {
            (Some(e), _) => Err(e),
            (None, Ok(r)) => r.py_err(),
            (None, Err(e)) => Err(e),
        }
    }
}
