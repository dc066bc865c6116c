//! How failures cross to C++: a structured [`ffi::ErrorInfo`] per thread, and the panic
//! boundary every bridge function runs under.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::ffi;
use crate::error::Failure;
use capsa::error::panic_message;

thread_local! {
    /// The failure of this thread's latest failing bridge call, until C++ takes it.
    static PENDING: RefCell<Option<ffi::ErrorInfo>> = const { RefCell::new(None) };
}

/// A bridge call's result. cxx turns the error into a `rust::Error` whose text is the message
/// alone; the code and its name wait in this thread's [`ffi::ErrorInfo`], which `capsa.hpp`
/// takes right away.
pub(super) type R<T> = Result<T, String>;

/// Run a body, catching panics; a failure is recorded for [`take_error`] and returns its
/// message.
pub(super) fn g<T>(body: impl FnOnce() -> Result<T, Failure>) -> R<T> {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|p| Err(Failure::Panic(panic_message(p.as_ref()))))
        .map_err(|f| {
            let status = f.status();
            let message = f.message();
            let info = ffi::ErrorInfo {
                code: status as u32,
                name: status.name().to_owned(),
                message: message.clone(),
            };
            PENDING.with(|p| *p.borrow_mut() = Some(info));
            message
        })
}

/// Infallible bodies still must not unwind into C++: a panic gives `fallback`.
pub(super) fn safe<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// The failure this thread's latest failing call recorded, taken (code 0 when there is none).
pub(super) fn take_error() -> ffi::ErrorInfo {
    safe(ffi::ErrorInfo::default(), || {
        PENDING.with(|p| p.borrow_mut().take()).unwrap_or_default()
    })
}
