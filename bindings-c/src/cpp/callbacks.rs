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
    /// How far a long operation is: files and bytes done so far, and in all.
    struct Progress {
        files_done: u64,
        files_total: u64,
        bytes_done: u64,
        bytes_total: u64,
    }

    /// One staging event (`capsa::Event` in capsa.hpp, the fields of `capsa_staging_event`:
    /// empty strings where that has NULL).
    struct StagingEvent {
        seq: i64,
        name: String,
        event: String,
        from: String,
        to: String,
        action: String,
        outcome: String,
        reason: String,
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
