//! Node binding of capsa: the npm package `capsa`.
//!
//! A thin shell over the core crate: it converts arguments and results and maps errors to JS
//! `Error` objects whose `code` is the stable [`capsa::ErrorCode::as_str`] string. Everything
//! that touches the disk returns a Promise settled from core's own runtime: staging commands
//! run core's async forms there, blocking core calls (archives, store work) its blocking
//! threads, so no thread of libuv's pool waits on capsa. Cheap pure functions (parsing,
//! formatting) are synchronous. Every export runs under one panic boundary
//! ([`error::guard`]): a panic becomes an `Error` with code `'PANIC'`, never an abort. The
//! binding creates no async runtime of its own.

#![deny(clippy::unwrap_used)]

mod archive;
mod error;
mod ids;
mod krate;
mod listener;
mod seq;
mod staging;
mod store;

pub use archive::{archive, verify, ArchiveReport, OfflineStub, Progress, VerifyReport};
pub use ids::{JsCapsuleId, JsVersion};
pub use krate::{CrateMetadata, JsCrate};
pub use seq::{find_sequences, sequences_in, JsFrameSet, JsSequence};
pub use staging::{
    AuditEntry, AuditQuery, JsMockBackend, JsScriptBackend, JsStagingManager, MockCallRecord,
    MockReply, OverrideInit, OverrideView, ReconcileReport, ScriptBackendOptions, StagingEvent,
    StagingManagerOptions, StagingView,
};
pub use store::{
    BumpOptions, FsckProblem, FsckReport, JsCapsule, JsStore, LatestOptions, StoreInitOptions,
};

use napi::Env;
use napi_derive::napi;

use crate::error::guard;

/// The version of the capsa library behind this binding.
#[napi]
pub fn version(env: Env) -> napi::Result<String> {
    guard(&env, || Ok(env!("CARGO_PKG_VERSION").to_string()))
}

/// Every stable error code string, in numeric order (`'NOT_FOUND'`, `'ALREADY_EXISTS'`, …).
#[napi]
pub fn error_codes(env: Env) -> napi::Result<Vec<String>> {
    guard(&env, || {
        Ok(capsa::ErrorCode::ALL
            .iter()
            .map(|c| c.as_str().to_string())
            .collect())
    })
}
