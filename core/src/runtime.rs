//! The one async runtime that core owns.
//!
//! Long, I/O-bound work (archives, staging commands, Kubernetes) is async inside core. Its
//! blocking forms drive this shared runtime; no binding creates a runtime of its own.

use std::future::Future;
use std::sync::OnceLock;

/// The shared multi-threaded tokio runtime, created on first use.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("capsa-rt")
            .enable_all()
            .build()
            .expect("capsa: cannot start the tokio runtime")
    })
}

/// Run a future to completion on the shared runtime from blocking code.
///
/// Safe to call from any thread that is not itself a runtime worker; when called from inside
/// a tokio context it moves to a blocking section first so it never panics.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => tokio::task::block_in_place(|| handle.block_on(fut)),
        Err(_) => runtime().block_on(fut),
    }
}
