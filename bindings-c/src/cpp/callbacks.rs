//! The C++ callbacks the bridge calls, and what they receive: the abstract classes
//! [`ProgressSink`] and [`EventSink`] of `callbacks.h` (beside this file), which `capsa.hpp`
//! implements over a `std::function`.
//!
//! A bridge of its own because Rust calls into it: build.rs compiles its C++ side into the
//! Rust libraries, while the C++ side of the main bridge (`mod.rs`), which C++ calls, is
//! compiled by the CMake build into `libcapsa_cxx.a`.

pub use self::ffi::{EventSink, Progress, ProgressSink, StagingEvent};

#[cxx::bridge(namespace = "capsa")]
#[allow(missing_docs)]
mod ffi {
    /// How far a long operation is.
    struct Progress {
        /// Files done so far.
        files_done: u64,
        /// Files in all.
        files_total: u64,
        /// Bytes done so far.
        bytes_done: u64,
        /// Bytes in all.
        bytes_total: u64,
    }

    /// One staging event (empty strings where it has no such field).
    struct StagingEvent {
        /// The event's sequence number in the state store.
        seq: i64,
        /// The staging's name.
        name: String,
        /// `"StatusChanged"` or `"CommandFinished"`.
        event: String,
        /// StatusChanged: the status before (empty when the staging was new).
        from: String,
        /// StatusChanged: the status after (empty when the staging is gone).
        to: String,
        /// CommandFinished: the command (`"create"`, …).
        action: String,
        /// CommandFinished: `"Success"`, `"Failure"`, `"Refused"`…
        outcome: String,
        /// Why (a failure reason), or empty.
        reason: String,
        /// The whole event as a JSON object (private values masked).
        json: String,
    }

    unsafe extern "C++" {
        include!("capsa/callbacks.h");
        /// Receives progress (`callbacks.h`); false cancels.
        type ProgressSink;
        fn on_progress(self: &ProgressSink, progress: &Progress) -> bool;
        /// Receives staging events (`callbacks.h`); false stops the subscription.
        type EventSink;
        fn on_event(self: &EventSink, event: &StagingEvent) -> bool;
    }

    impl UniquePtr<ProgressSink> {}
    impl UniquePtr<EventSink> {}
}

// SAFETY: capsa.hpp's sinks may be called and destroyed on any thread (the header says so of
// the callbacks they wrap), and capsa never calls one twice at once (a Mutex around each).
unsafe impl Send for ProgressSink {}
// SAFETY: as for ProgressSink.
unsafe impl Send for EventSink {}
