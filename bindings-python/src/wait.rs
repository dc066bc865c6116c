//! Waiting for core without the GIL, yet answering Ctrl-C.
//!
//! A call that may take long (a staging command waiting for its backend, an archive) runs on
//! a worker thread while the calling thread waits without the GIL, waking every 50 ms to let
//! Python run its signal handlers. When one raises (`KeyboardInterrupt`), `on_signal` is
//! called (to cancel the work, where core can) and the exception propagates.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;

/// How often the waiting thread checks for signals.
const POLL: Duration = Duration::from_millis(50);

/// What to do once a signal handler has raised.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnSignal {
    /// Raise at once; the work finishes in the background (a staging command, which core
    /// completes even when nobody waits for it).
    Leave,
    /// Wait for the work to stop (it was cancelled) before raising, so nothing is left
    /// half-written when the exception reaches the caller.
    AwaitCancelled,
}

/// Run `work` on a worker thread (outside any runtime: core's blocking forms drive core's
/// shared runtime) and wait for it without the GIL.
pub fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    work: impl FnOnce() -> T + Send + 'static,
    on_signal: impl Fn(),
    mode: OnSignal,
) -> PyResult<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("capsa-python-call".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("capsa: {e}")))?;
    let rx = Mutex::new(rx);
    let recv = |timeout: Option<Duration>| {
        let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
        match timeout {
            Some(t) => rx.recv_timeout(t),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        }
    };
    loop {
        match py.detach(|| recv(Some(POLL))) {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    on_signal();
                    if mode == OnSignal::AwaitCancelled {
                        let _ = py.detach(|| recv(None));
                    }
                    return Err(e);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "capsa: the call ended abnormally",
                ))
            }
        }
    }
}
