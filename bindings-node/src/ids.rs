//! Capsule ids and crate versions: pure parsing, synchronous.

use std::cmp::Ordering;

use napi::Env;
use napi_derive::napi;

use crate::error::{guard, padding_arg, version_arg};

/// A validated capsule id: a 24-hex ObjectId, a UUID or a slug.
#[napi(js_name = "CapsuleId")]
pub struct JsCapsuleId {
    inner: capsa::CapsuleId,
}

#[napi]
impl JsCapsuleId {
    /// Validate `value`; throws `INVALID_NAME` naming the rule it breaks.
    #[napi]
    pub fn parse(env: Env, value: String) -> napi::Result<JsCapsuleId> {
        guard(&env, || {
            let inner = capsa::CapsuleId::parse(&value)?;
            Ok(JsCapsuleId { inner })
        })
    }

    /// The id text.
    #[napi(getter)]
    pub fn value(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.as_str().to_string()))
    }

    /// Which form it has.
    #[napi(getter, ts_return_type = "'objectid' | 'uuid' | 'slug'")]
    pub fn kind(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.kind().as_str().to_string()))
    }

    /// The id text.
    #[napi(js_name = "toString")]
    pub fn to_js_string(&self, env: Env) -> napi::Result<String> {
        self.value(env)
    }
}

/// A crate version (`v001`): a number from 1, written zero-padded to a store's padding.
#[napi(js_name = "Version")]
pub struct JsVersion {
    pub(crate) inner: capsa::Version,
}

#[napi]
impl JsVersion {
    /// Parse `v` + digits of any width; throws `INVALID_VERSION`.
    #[napi]
    pub fn parse(env: Env, value: String) -> napi::Result<JsVersion> {
        guard(&env, || {
            let inner = capsa::Version::parse(&value)?;
            Ok(JsVersion { inner })
        })
    }

    /// The version numbered `number` (from 1); throws `INVALID_VERSION` for 0.
    #[napi]
    pub fn from_number(env: Env, number: i64) -> napi::Result<JsVersion> {
        guard(&env, || {
            let inner = version_arg(number)?;
            Ok(JsVersion { inner })
        })
    }

    /// The number.
    #[napi(getter)]
    pub fn number(&self, env: Env) -> napi::Result<u32> {
        guard(&env, || Ok(self.inner.number()))
    }

    /// The text at `padding` digits (1 to 9, 3 when not given): `v007`.
    #[napi]
    pub fn padded(&self, env: Env, padding: Option<i64>) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.padded(padding_arg(padding)?)))
    }

    /// The version after this one.
    #[napi]
    pub fn next(&self, env: Env) -> napi::Result<JsVersion> {
        guard(&env, || {
            let inner = self.inner.next()?;
            Ok(JsVersion { inner })
        })
    }

    /// Numeric order: -1, 0 or 1.
    #[napi(ts_return_type = "-1 | 0 | 1")]
    pub fn compare(&self, env: Env, other: &JsVersion) -> napi::Result<i32> {
        guard(&env, || {
            Ok(match self.inner.cmp(&other.inner) {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            })
        })
    }

    /// The text at the default padding (`v001`).
    #[napi(js_name = "toString")]
    pub fn to_js_string(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.to_string()))
    }
}
