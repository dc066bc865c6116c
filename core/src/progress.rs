//! What every long operation shares: how far it has come ([`Progress`]), the callback that
//! hears it ([`ProgressFn`], called at a bounded rate by core, the same for every binding),
//! and the token that cancels it ([`CancelToken`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The least time between two calls of a progress callback: core calls it for the first
/// report, then at most once per interval, and always for the last one (everything done).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(20);

/// How far a long operation has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Files finished.
    pub files_done: u64,
    /// Files in total.
    pub files_total: u64,
    /// Bytes of file content finished (uncompressed).
    pub bytes_done: u64,
    /// Bytes of file content in total (uncompressed).
    pub bytes_total: u64,
}

impl Progress {
    /// Whether everything is done.
    pub fn finished(&self) -> bool {
        self.files_done >= self.files_total && self.bytes_done >= self.bytes_total
    }
}

/// A progress callback, called from a working thread at most every [`PROGRESS_INTERVAL`]
/// (and for the last report).
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Calls a [`ProgressFn`] at the bounded rate: the one place that rule lives.
pub(crate) struct Reporter {
    callback: Option<ProgressFn>,
    last: Mutex<Option<Instant>>,
}

impl Reporter {
    /// A reporter for `callback` (`None`: reports are dropped).
    pub(crate) fn new(callback: Option<&ProgressFn>) -> Reporter {
        Reporter {
            callback: callback.cloned(),
            last: Mutex::new(None),
        }
    }

    /// Whether anyone listens (so callers can skip building reports).
    pub(crate) fn listening(&self) -> bool {
        self.callback.is_some()
    }

    /// Report `p`, unless the last call was less than [`PROGRESS_INTERVAL`] ago and `p` is
    /// not the last report.
    pub(crate) fn report(&self, p: &Progress) {
        let Some(cb) = &self.callback else {
            return;
        };
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if !p.finished() && last.is_some_and(|t| now.duration_since(t) < PROGRESS_INTERVAL) {
                return;
            }
            *last = Some(now);
        }
        cb(p);
    }
}

/// Files and bytes done by several worker threads at once, reported through a [`Reporter`].
pub(crate) struct Tally {
    reporter: Reporter,
    files_total: u64,
    bytes_total: u64,
    files_done: AtomicU64,
    bytes_done: AtomicU64,
}

impl Tally {
    /// A tally of `files_total` files and `bytes_total` bytes reported to `callback`.
    pub(crate) fn new(callback: Option<&ProgressFn>, files_total: u64, bytes_total: u64) -> Tally {
        Tally {
            reporter: Reporter::new(callback),
            files_total,
            bytes_total,
            files_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
        }
    }

    /// `bytes` more bytes done, and one more file when `file_finished`; then report.
    pub(crate) fn add(&self, bytes: u64, file_finished: bool) {
        if file_finished {
            self.files_done.fetch_add(1, Ordering::Relaxed);
        }
        let bytes_done = self.bytes_done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if self.reporter.listening() {
            self.reporter.report(&Progress {
                files_done: self.files_done.load(Ordering::Relaxed),
                files_total: self.files_total,
                bytes_done,
                bytes_total: self.bytes_total,
            });
        }
    }
}

/// Cancels a running archive, verify or restore. Cheap to clone; all clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, not-cancelled token.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Ask every operation holding this token to stop; they fail with [`Error::Cancelled`]
    /// and leave nothing behind.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_throttled_but_the_first_and_the_last_always_arrive() {
        let calls = Arc::new(AtomicU64::new(0));
        let seen = calls.clone();
        let cb: ProgressFn = Arc::new(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        let r = Reporter::new(Some(&cb));
        let mut p = Progress {
            files_total: 1,
            bytes_total: 1000,
            ..Progress::default()
        };
        for b in 0..1000 {
            p.bytes_done = b;
            r.report(&p);
        }
        // A thousand reports in far less than 20 ms each: only the first gets through.
        let burst = calls.load(Ordering::SeqCst);
        assert!((1..=3).contains(&burst), "{burst} calls");
        p.bytes_done = 1000;
        p.files_done = 1;
        r.report(&p);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            burst + 1,
            "the last report arrives"
        );
        std::thread::sleep(PROGRESS_INTERVAL);
        p.bytes_done = 999;
        p.files_done = 0;
        r.report(&p);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            burst + 2,
            "after the interval, again"
        );
    }
}
