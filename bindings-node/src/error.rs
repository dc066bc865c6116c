//! Error mapping, the panic boundary every export runs under, and the way every
//! Promise-returning call runs: on capsa's own runtime, never on libuv's thread pool.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use capsa::error::panic_message;
use napi::bindgen_prelude::{JsObjectValue, Object, ToNapiValue};
use napi::{Env, Error, JsValue, Status};

/// The `code` of the JS `Error` a panic caught at the boundary becomes: the name the C
/// binding gives the same case (`CAPSA_STATUS_PANIC`). Core has no code for it, as a panic
/// is a bug, not an outcome; it is therefore not among `errorCodes()`.
pub(crate) const PANIC_CODE: &str = "PANIC";

/// What went wrong in one call.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A core error: it becomes a JS `Error` carrying the core's stable code.
    Core(capsa::Error),
    /// A panic caught at the boundary, with its message.
    Panic(String),
    /// A napi error (a JS value of the wrong type, a throwing getter): passed on as it is.
    Napi(Error),
}

impl From<capsa::Error> for Failure {
    fn from(e: capsa::Error) -> Failure {
        Failure::Core(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Napi(e)
    }
}

impl Failure {
    /// The stable code string the JS `Error` carries, `None` for a napi error (which keeps
    /// napi's own code).
    pub(crate) fn code(&self) -> Option<&'static str> {
        match self {
            Failure::Core(e) => Some(e.code().as_str()),
            Failure::Panic(_) => Some(PANIC_CODE),
            Failure::Napi(_) => None,
        }
    }

    /// The message the JS `Error` carries.
    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Core(e) => e.to_string(),
            Failure::Panic(m) => {
                format!("capsa: internal error (panic caught at the Node boundary): {m}")
            }
            Failure::Napi(e) => e.reason.clone(),
        }
    }

    /// The JS `Error`: the message, and `code` set to [`Failure::code`]. Mapped from
    /// [`capsa::Error::code`], never from the message.
    pub(crate) fn into_js(self, env: &Env) -> Error {
        let Some(code) = self.code() else {
            return match self {
                Failure::Napi(e) => e,
                _ => Error::new(Status::GenericFailure, self.message()),
            };
        };
        let message = self.message();
        let build = || -> napi::Result<Error> {
            let mut obj = env.create_error(Error::new(Status::GenericFailure, message.clone()))?;
            obj.set_named_property("code", code)?;
            Ok(Error::from(obj.to_unknown()))
        };
        build().unwrap_or_else(|e| e)
    }
}

/// Run `body`, turning a panic into [`Failure::Panic`]: the panic boundary, without JS.
pub(crate) fn catching<T>(body: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(Failure::Panic(panic_message(payload.as_ref()))))
}

/// Run an export's body on the JS thread under the panic boundary: a core error becomes a JS
/// `Error` with its stable code, a panic one with the code [`PANIC_CODE`]; never an abort of
/// the Node process. Every export's body runs inside it.
pub(crate) fn guard<T>(env: &Env, body: impl FnOnce() -> Result<T, Failure>) -> napi::Result<T> {
    catching(body).map_err(|f| f.into_js(env))
}

/// What settles a Promise, on the JS thread.
type Resolver<T> = Box<dyn FnOnce(Env) -> napi::Result<T> + Send>;

/// Settle a new Promise with what `task` gives, from capsa's runtime. No libuv thread waits:
/// the Promise is a deferred settled through a thread-safe function once the task is done.
/// A panic in the task rejects with [`PANIC_CODE`]. The pending Promise keeps the event loop
/// alive until it settles, as a libuv task would.
fn settle<'e, T: ToNapiValue + Send + 'static>(
    env: &'e Env,
    task: tokio::task::JoinHandle<capsa::Result<T>>,
) -> napi::Result<Object<'e>> {
    let (deferred, promise) = env.create_deferred::<T, Resolver<T>>()?;
    capsa::runtime::runtime().spawn(async move {
        let outcome = joined(task.await);
        // Every path settles the deferred: none is dropped unsettled (which would keep the
        // event loop alive for ever).
        deferred.resolve(Box::new(move |env| outcome.map_err(|f| f.into_js(&env))));
    });
    Ok(promise)
}

/// The outcome of a finished runtime task: its result, or its panic as [`Failure::Panic`].
fn joined<T>(joined: Result<capsa::Result<T>, tokio::task::JoinError>) -> Result<T, Failure> {
    match joined {
        Ok(result) => result.map_err(Failure::Core),
        Err(e) if e.is_panic() => Err(Failure::Panic(panic_message(e.into_panic().as_ref()))),
        Err(e) => Err(Failure::Panic(format!("the task ended early: {e}"))),
    }
}

/// A Promise of `fut`'s result, `fut` running on capsa's runtime (core's async forms).
pub(crate) fn promise<'e, T, F>(env: &'e Env, fut: F) -> Result<Object<'e>, Failure>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = capsa::Result<T>> + Send + 'static,
{
    Ok(settle(env, capsa::runtime::runtime().spawn(fut))?)
}

/// A Promise of `job`'s result, `job` (a blocking core call) running on the blocking threads
/// of capsa's runtime, not on libuv's pool.
pub(crate) fn promise_blocking<'e, T>(
    env: &'e Env,
    job: impl FnOnce() -> capsa::Result<T> + Send + 'static,
) -> Result<Object<'e>, Failure>
where
    T: ToNapiValue + Send + 'static,
{
    Ok(settle(env, capsa::runtime::runtime().spawn_blocking(job))?)
}

/// A padding from JS (a number of digits): 1 to [`capsa::version::MAX_PADDING`], or
/// `INVALID_ARGUMENT` (JS numbers are checked here, never wrapped into a huge width).
pub(crate) fn padding_arg(value: Option<i64>) -> capsa::Result<usize> {
    let max = capsa::version::MAX_PADDING;
    match value {
        None => Ok(capsa::version::DEFAULT_PADDING),
        Some(p) if (1..=max as i64).contains(&p) => Ok(p as usize),
        Some(p) => Err(capsa::Error::InvalidArgument {
            what: "padding",
            reason: format!("must be 1 to {max}, got {p}"),
        }),
    }
}

/// A version number from JS; a negative or too large number is `INVALID_VERSION`, as 0 is.
pub(crate) fn version_arg(number: i64) -> capsa::Result<capsa::Version> {
    let n = u32::try_from(number).map_err(|_| capsa::Error::InvalidVersion {
        value: number.to_string(),
        rule: format!("the number must be 1 to {}", u32::MAX),
    })?;
    capsa::Version::new(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_panic_failure() {
        let f = catching::<()>(|| panic!("boom {}", 42)).expect_err("the panic is caught");
        assert_eq!(f.code(), Some(PANIC_CODE));
        assert!(f.message().contains("boom 42"), "{}", f.message());
        let f = catching::<()>(|| std::panic::panic_any(7u8)).expect_err("any payload");
        assert!(f.message().contains("unknown panic"), "{}", f.message());
    }

    #[test]
    fn errors_and_values_pass_through() {
        let f = catching::<()>(|| Err(capsa::Error::Cancelled.into())).expect_err("core error");
        assert_eq!(f.code(), Some("CANCELLED"));
        assert_eq!(f.message(), "cancelled");
        let f = catching::<()>(|| Err(Error::new(Status::InvalidArg, "bad").into()))
            .expect_err("napi error");
        assert_eq!(f.code(), None);
        assert_eq!(catching(|| Ok(5)).expect("a value"), 5);
    }

    #[test]
    fn a_panic_in_a_runtime_task_is_caught() {
        let rt = capsa::runtime::runtime();
        let task = rt.spawn_blocking(|| -> capsa::Result<()> { panic!("in a task") });
        let f = joined(capsa::runtime::block_on(task)).expect_err("the panic is caught");
        assert_eq!(f.code(), Some(PANIC_CODE));
        assert!(f.message().contains("in a task"), "{}", f.message());
        let task = rt.spawn(async { Err::<(), _>(capsa::Error::Cancelled) });
        let f = joined(capsa::runtime::block_on(task)).expect_err("a core error");
        assert_eq!(f.code(), Some("CANCELLED"));
        let task = rt.spawn(async { Ok::<_, capsa::Error>(3) });
        assert_eq!(joined(capsa::runtime::block_on(task)).expect("a value"), 3);
    }
}
