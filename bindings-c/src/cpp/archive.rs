//! Archives: archive, verify, restore, offline and retrieve, with progress delivered to a
//! C++ [`ProgressSink`].

use capsa::archive::{self as core_archive, Policy, ProgressFn, VerifyOptions};
use capsa::{ArchiveOptions, CancelToken, RestoreOptions};
use cxx::UniquePtr;

use super::callbacks::{Progress, ProgressSink};
use super::{g, path, safe, text, to_json, RustCapsule, RustStore, R};
use crate::archive::{explain, progress_fn};
use crate::error::Failure;

/// Run `op` with the sink (none when null) as its progress function; a cancel by the sink
/// becomes a `CANCELLED` naming it.
fn with_sink<T>(
    sink: UniquePtr<ProgressSink>,
    cancel: &CancelToken,
    op: impl FnOnce(Option<ProgressFn>) -> capsa::Result<T>,
) -> Result<T, Failure> {
    if sink.is_null() {
        return Ok(op(None)?);
    }
    let (f, refused) = progress_fn(
        move |p| {
            let p = Progress {
                files_done: p.files_done,
                files_total: p.files_total,
                bytes_done: p.bytes_done,
                bytes_total: p.bytes_total,
            };
            i32::from(!sink.as_ref().is_some_and(|s| s.on_progress(&p)))
        },
        cancel,
    );
    op(Some(f)).map_err(|e| explain(e, &refused))
}

impl RustCapsule {
    pub(super) fn archive(
        &self,
        dest: &[u8],
        policy: &str,
        replace: bool,
        sink: UniquePtr<ProgressSink>,
    ) -> R<String> {
        g(|| {
            let mut opts = ArchiveOptions {
                policy: (!policy.is_empty())
                    .then(|| Policy::parse(policy))
                    .transpose()?,
                replace,
                ..Default::default()
            };
            let dest = path(dest, "dest")?;
            let report = with_sink(sink, &opts.cancel.clone(), |f| {
                opts.progress = f;
                core_archive::archive(&self.0, dest, opts)
            })?;
            to_json(&report)
        })
    }
    pub(super) fn take_offline(&self, archive: &[u8]) -> R<String> {
        g(|| to_json(&self.0.take_offline(path(archive, "archive")?)?))
    }
    pub(super) fn is_offline(&self) -> bool {
        safe(false, || self.0.is_offline())
    }
    pub(super) fn offline_stub(&self) -> R<String> {
        g(|| to_json(&self.0.offline_stub()?))
    }
}

impl RustStore {
    pub(super) fn retrieve(&self, id: &[u8]) -> R<Box<RustCapsule>> {
        g(|| Ok(Box::new(RustCapsule(self.0.retrieve(text(id, "id")?)?))))
    }
    pub(super) fn restore(
        &self,
        zip: &[u8],
        replace: bool,
        sink: UniquePtr<ProgressSink>,
    ) -> R<Box<RustCapsule>> {
        g(|| {
            let mut opts = RestoreOptions {
                replace,
                ..Default::default()
            };
            let zip = path(zip, "zip")?;
            let capsule = with_sink(sink, &opts.cancel.clone(), |f| {
                opts.progress = f;
                core_archive::restore(zip, &self.0, opts)
            })?;
            Ok(Box::new(RustCapsule(capsule)))
        })
    }
}

pub(super) fn archive_verify(zip: &[u8], sink: UniquePtr<ProgressSink>) -> R<String> {
    g(|| {
        let mut opts = VerifyOptions::default();
        let zip = path(zip, "zip")?;
        let report = with_sink(sink, &opts.cancel.clone(), |f| {
            opts.progress = f;
            core_archive::verify_with(zip, opts)
        })?;
        to_json(&report)
    })
}
