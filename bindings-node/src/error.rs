//! Error mapping and the one task type every Promise-returning call uses.

use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{Env, Error, JsValue, Status, Task};

/// A JS `Error` for a core error: the message is the core's, `code` its stable code string
/// (`'NOT_FOUND'`…) and `errno` its stable number. Mapped from [`capsa::Error::code`], never
/// from the message.
pub(crate) fn js_error(env: &Env, err: &capsa::Error) -> Error {
    let code = err.code();
    let build = || -> napi::Result<Error> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, err.to_string()))?;
        obj.set_named_property("code", code.as_str())?;
        obj.set_named_property("errno", code.number())?;
        Ok(Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|e| e)
}

/// Map a core result for a synchronous call.
pub(crate) fn sync<T>(env: &Env, result: capsa::Result<T>) -> napi::Result<T> {
    result.map_err(|e| js_error(env, &e))
}

type Job<T> = Box<dyn FnOnce() -> capsa::Result<T> + Send>;

/// A blocking core call run on libuv's thread pool; its Promise resolves to `T` or rejects
/// with a coded `Error` (see [`js_error`]).
pub struct Work<T> {
    job: Option<Job<T>>,
    failed: Option<capsa::Error>,
}

impl<T> Work<T> {
    /// Wrap a blocking core call.
    pub fn new(job: impl FnOnce() -> capsa::Result<T> + Send + 'static) -> Work<T> {
        Work {
            job: Some(Box::new(job)),
            failed: None,
        }
    }
}

impl<T: ToNapiValue + TypeName + Send + 'static> Task for Work<T> {
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<T> {
        let job = self
            .job
            .take()
            .ok_or_else(|| Error::new(Status::GenericFailure, "capsa: task ran twice"))?;
        match catch_unwind(AssertUnwindSafe(job)) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                let reason = err.to_string();
                self.failed = Some(err);
                Err(Error::new(Status::GenericFailure, reason))
            }
            Err(_) => Err(Error::new(
                Status::GenericFailure,
                "capsa: internal error (panic) in the core",
            )),
        }
    }

    fn resolve(&mut self, _env: Env, output: T) -> napi::Result<T> {
        Ok(output)
    }

    fn reject(&mut self, env: Env, err: Error) -> napi::Result<T> {
        match self.failed.take() {
            Some(core) => Err(js_error(&env, &core)),
            None => Err(err),
        }
    }
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
