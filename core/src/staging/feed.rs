//! One reader of the state store's event feed per manager, shared by every waiter.
//!
//! [`super::StagingManager::wait_events_async`] used to read the store once per waiter and
//! poll it every 200 ms: a server with a thousand event subscribers read its SQLite state
//! five thousand times a second and delivered a change up to a poll late. Now one task per
//! manager reads the feed, woken at once by this process's own commands (and by PostgreSQL's
//! `NOTIFY` for the others'), keeps the newest events in a ring, and wakes the waiters, who
//! take their events from the ring.
//!
//! The ring holds every event with a sequence number in `(floor, head]`, read in feed order,
//! so a waiter whose `after` is at least `floor` gets from it exactly what the store would
//! have returned. A waiter further behind (a client resuming from long ago) reads the store
//! itself until it has caught up. The task runs only while somebody waits: it stops when the
//! last waiter leaves, and the next one starts it again from the store's newest event.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::events::Event;
use super::store::StateStore;
use crate::runtime;

/// How many events the ring keeps.
const RING: usize = 4096;
/// How many events one read of the store returns at most.
const READ: usize = 1024;
/// How often the store is read without a wake-up signal (SQLite; a PostgreSQL feed whose
/// listener is gone).
const POLL: Duration = Duration::from_millis(200);
/// How often a PostgreSQL feed is read even without a `NOTIFY` (a lost notification).
const POLL_SIGNALLED: Duration = Duration::from_secs(1);
/// How long the reader waits before reading again after the store failed.
const RETRY: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Ring {
    /// Every event with `floor < seq <= head` is in `events`. `None`: the reader has not read
    /// the store yet, or failed its last read (`failed`).
    floor: Option<i64>,
    /// The reader's last read failed: waiters read the store themselves, and so see why.
    failed: bool,
    events: VecDeque<Event>,
}

/// The shared reader of one manager's event feed.
pub(super) struct Feed {
    ring: Mutex<Ring>,
    /// The newest sequence number read; every change wakes the waiters.
    head: watch::Sender<i64>,
    /// Read the store now (this process wrote events).
    wake: Notify,
    running: AtomicBool,
}

/// What the ring answers a waiter.
pub(super) enum Take {
    /// The events after `after` (possibly none yet).
    Events(Vec<Event>),
    /// The ring does not reach back to `after` (or is not ready): read the store.
    Behind,
}

impl Feed {
    pub(super) fn new() -> Arc<Feed> {
        Arc::new(Feed {
            ring: Mutex::new(Ring::default()),
            head: watch::channel(0).0,
            wake: Notify::new(),
            running: AtomicBool::new(false),
        })
    }

    /// Wake the reader: this process has just committed events.
    pub(super) fn written(&self) {
        self.wake.notify_one();
    }

    /// Become a waiter: the receiver changes whenever new events were read. Starts the reader
    /// if it is not running.
    pub(super) fn watch(self: &Arc<Feed>, store: &Arc<dyn StateStore>) -> watch::Receiver<i64> {
        let rx = self.head.subscribe();
        self.start(store);
        rx
    }

    /// The events after `after`, at most `limit`, if the ring reaches back that far.
    pub(super) fn take(&self, after: i64, limit: usize) -> Take {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        match ring.floor {
            Some(floor) if after >= floor => {
                let from = ring.events.partition_point(|e| e.seq <= after);
                Take::Events(ring.events.range(from..).take(limit).cloned().collect())
            }
            // Starting: wait for the reader's first read rather than all read the store at
            // once (a thousand sockets opened together would each take a blocking thread).
            None if !ring.failed => Take::Events(Vec::new()),
            _ => Take::Behind,
        }
    }

    fn start(self: &Arc<Feed>, store: &Arc<dyn StateStore>) {
        if self
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            runtime::runtime().spawn(read(self.clone(), store.clone()));
        }
    }

    /// Whether the reader should stop: nobody waits. A waiter arriving meanwhile either sees
    /// `running` false and starts a new reader, or is seen here and keeps this one.
    fn idle(&self) -> bool {
        if self.head.receiver_count() > 0 {
            return false;
        }
        self.running.store(false, Ordering::Release);
        if self.head.receiver_count() > 0
            && self
                .running
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return false;
        }
        true
    }

    fn fail(&self) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.floor = None;
        ring.failed = true;
        drop(ring);
        // Wake the waiters, who read the store themselves and so see its error.
        self.head.send_modify(|_| {});
    }
}

/// The reader: follows the store's feed while anybody waits.
async fn read(feed: Arc<Feed>, store: Arc<dyn StateStore>) {
    let mut signal = store.event_signal();
    let mut head: Option<i64> = None;
    loop {
        if feed.idle() {
            return;
        }
        if let Some(s) = &mut signal {
            s.borrow_and_update();
        }
        let st = store.clone();
        let got = tokio::task::spawn_blocking(move || match head {
            Some(h) => st.events_since(h, READ).map(|b| (h, b)),
            None => st.last_event_seq().map(|h| (h, Vec::new())),
        })
        .await;
        let (from, batch) = match got {
            Ok(Ok(read)) => read,
            failed => {
                if let Ok(Err(e)) = failed {
                    tracing::warn!(code = e.code().as_str(), "reading the event feed: {e}");
                }
                head = None;
                feed.fail();
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let full = batch.len() == READ;
        let newest = batch.last().map_or(from, |e| e.seq);
        {
            let mut ring = feed.ring.lock().unwrap_or_else(|e| e.into_inner());
            if head.is_none() {
                ring.events.clear();
                ring.floor = Some(from);
                ring.failed = false;
            }
            ring.events.extend(batch);
            while ring.events.len() > RING {
                if let Some(old) = ring.events.pop_front() {
                    ring.floor = Some(old.seq);
                }
            }
        }
        let fresh = head != Some(newest);
        head = Some(newest);
        if fresh {
            feed.head.send_replace(newest);
        }
        if full {
            continue;
        }
        let nap = if signal.is_some() {
            POLL_SIGNALLED
        } else {
            POLL
        };
        let changed = async {
            match &mut signal {
                Some(s) => s.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = feed.wake.notified() => {}
            _ = tokio::time::sleep(nap) => {}
            ok = changed => if !ok { signal = None },
        }
    }
}
