//! A tiny work pool: run a closure over `0..n` on a few scoped threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::progress::CancelToken;

/// Run `f(i)` for every `i` in `0..n` on `threads` threads, roughly in order. On failure
/// the remaining higher indexes are skipped and the error of the *lowest* failing index is
/// returned, so the "first bad entry" is the same whatever the scheduling.
pub(crate) fn for_each(
    n: usize,
    threads: usize,
    cancel: &CancelToken,
    f: impl Fn(usize) -> Result<()> + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let limit = AtomicUsize::new(usize::MAX);
    let first: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let work = || loop {
        if cancel.is_cancelled() {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n || i > limit.load(Ordering::Relaxed) {
            break;
        }
        if let Err(e) = f(i) {
            let mut slot = first.lock().unwrap_or_else(|p| p.into_inner());
            if slot.as_ref().is_none_or(|(j, _)| i < *j) {
                *slot = Some((i, e));
            }
            limit.fetch_min(i, Ordering::Relaxed);
        }
    };
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    if let Some((_, e)) = first.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    cancel.check()
}
