//! The C++ API's Rust side (feature `cpp`): a cxx bridge (`namespace capsa`) over core.
//!
//! C++ code uses it through `include/capsa.hpp`, which wraps these opaque types in RAII
//! classes. The bridge is declared here, one block per concept; each concept's Rust side
//! lives in its own module: [`error`] (how failures cross, the panic boundary), [`store`]
//! (stores, capsules, crates), [`seq`] (sequences, frame sets, ids, versions), [`archive`]
//! (archives, with a progress callback), [`staging`] (stagings, with event subscriptions).
//!
//! Errors: a failing call records an [`ffi::ErrorInfo`] (code, code name, message) for its
//! thread and returns cxx's `Result` error; `capsa.hpp` catches that `rust::Error`, takes the
//! record with [`ffi::take_error`] and throws `capsa::Error` (its one place doing so).
//! Callbacks: C++ passes a `std::unique_ptr` to a `ProgressSink` or an `EventSink` (abstract
//! classes of `callbacks.h`, beside this file, bridged in [`callbacks`]), and Rust calls its
//! method. Every function runs its body under `catch_unwind`: a panic becomes an error (code
//! `PANIC`) instead of cxx's abort. String arguments arrive as bytes and are checked here
//! (invalid UTF-8 is `INVALID_ARGUMENT`).

use std::path::PathBuf;

use crate::error::{bad_arg, Failure};

mod archive;
mod callbacks;
mod error;
mod seq;
mod staging;
mod store;
#[cfg(test)]
mod tests;

use self::{archive::*, error::*, seq::*, staging::*, store::*};

#[cxx::bridge(namespace = "capsa")]
#[allow(missing_docs)]
pub mod ffi {
    /// One of the three sections of every crate.
    #[repr(u8)]
    enum Section {
        /// `artifacts/`
        Artifacts = 0,
        /// `publishes/`
        Publishes = 1,
        /// `scenes/`
        Scenes = 2,
    }

    /// How a sequence's padding is written.
    #[repr(u8)]
    enum PadStyle {
        /// `#`: frames before the token.
        Hash = 0,
        /// `@` per digit.
        At = 1,
        /// `%04d`: frames after the pattern.
        Printf = 2,
        /// `$F4`: frames after the pattern.
        Houdini = 3,
    }

    /// Where an override applies.
    #[repr(u8)]
    enum Scope {
        /// The app's environment.
        App = 0,
        /// The staging's settings.
        Staging = 1,
    }

    /// Whether an override's value may be shown.
    #[repr(u8)]
    enum Visibility {
        /// Shown.
        Public = 0,
        /// Stored for restore, shown as `***` everywhere.
        Private = 1,
    }

    /// A failure, as `capsa::Error` is built from it: the stable number (`CAPSA_STATUS_*`; 0
    /// when none was recorded), the stable code string (`"NOT_FOUND"`, …) and the message.
    #[derive(Default)]
    struct ErrorInfo {
        code: u32,
        name: String,
        message: String,
    }

    /// A staging, as the lifecycle commands return it (`capsa::Staging` in capsa.hpp); `exists`
    /// is false for `cleanup`'s answer when the staging is gone.
    #[derive(Default)]
    struct StagingInfo {
        name: String,
        tag: String,
        status: String,
        reason: String,
        json: String,
        exists: bool,
    }

    unsafe extern "C++" {
        include!("capsa/callbacks.rs.h");
        type ProgressSink = crate::cpp::callbacks::ProgressSink;
        type EventSink = crate::cpp::callbacks::EventSink;
    }

    // Errors and the library.
    extern "Rust" {
        fn take_error() -> ErrorInfo;
        fn rust_library_version() -> &'static str;
    }

    // Stores, capsules, crates.
    extern "Rust" {
        /// An open store.
        type RustStore;
        /// A capsule.
        type RustCapsule;
        /// A crate, or none (from `latest` when the capsule has no crate).
        type RustCrate;
        /// Options collected for a bump.
        type RustBumpOptions;

        fn store_open(path: &[u8]) -> Result<Box<RustStore>>;
        fn store_init(path: &[u8], padding: u32) -> Result<Box<RustStore>>;
        fn root(self: &RustStore) -> Result<String>;
        fn padding(self: &RustStore) -> u32;
        fn create_capsule(self: &RustStore, id: &[u8]) -> Result<Box<RustCapsule>>;
        fn capsule(self: &RustStore, id: &[u8]) -> Result<Box<RustCapsule>>;
        fn capsules(self: &RustStore) -> Result<Vec<String>>;
        fn fsck(self: &RustStore, repair: bool) -> Result<usize>;

        fn id(self: &RustCapsule) -> String;
        fn path(self: &RustCapsule) -> Result<String>;
        fn new_bump_options() -> Box<RustBumpOptions>;
        fn set_comment(self: &mut RustBumpOptions, comment: &[u8]) -> Result<()>;
        fn set_created_by(self: &mut RustBumpOptions, who: &[u8]) -> Result<()>;
        fn add_carry_over(self: &mut RustBumpOptions, section: Section) -> Result<()>;
        fn add_tag(self: &mut RustBumpOptions, tag: &[u8]) -> Result<()>;
        fn bump(self: &RustCapsule, options: &RustBumpOptions) -> Result<Box<RustCrate>>;
        fn crates(self: &RustCapsule) -> Result<Vec<String>>;
        fn get(self: &RustCapsule, version: &[u8]) -> Result<Box<RustCrate>>;
        fn latest(self: &RustCapsule, published: bool) -> Result<Box<RustCrate>>;

        fn exists(self: &RustCrate) -> bool;
        fn version(self: &RustCrate) -> Result<String>;
        fn version_number(self: &RustCrate) -> Result<u32>;
        fn path(self: &RustCrate) -> Result<String>;
        fn section_path(self: &RustCrate, section: Section) -> Result<String>;
        fn metadata_json(self: &RustCrate) -> Result<String>;
        fn is_published(self: &RustCrate) -> Result<bool>;
        fn set_comment(self: &RustCrate, comment: &[u8]) -> Result<()>;
        fn seal(self: &RustCrate) -> Result<()>;
        fn publish(self: &RustCrate, src: &[u8], dest: &[u8], has_dest: bool) -> Result<String>;
        fn sequences(self: &RustCrate, section: Section) -> Result<Box<RustSequenceList>>;
    }

    // Sequences, frame sets, capsule ids, versions.
    extern "Rust" {
        /// A frame sequence.
        type RustSequence;
        /// A list of frame sequences.
        type RustSequenceList;
        /// A frame set.
        type RustFrameSet;
        /// A list of strings built from C++.
        type RustStringList;

        fn sequence_parse(pattern: &[u8]) -> Result<Box<RustSequence>>;
        fn head(self: &RustSequence) -> String;
        fn tail(self: &RustSequence) -> String;
        fn padding(self: &RustSequence) -> usize;
        fn frames(self: &RustSequence) -> String;
        fn frame_count(self: &RustSequence) -> usize;
        fn missing(self: &RustSequence) -> String;
        fn format(self: &RustSequence, style: PadStyle) -> Result<String>;
        fn pattern(self: &RustSequence, style: PadStyle) -> Result<String>;
        fn path(self: &RustSequence, frame: i64) -> String;
        fn pad_style_parse(name: &[u8]) -> Result<PadStyle>;

        fn len(self: &RustSequenceList) -> usize;
        fn get(self: &RustSequenceList, index: usize) -> Result<Box<RustSequence>>;
        fn new_string_list() -> Box<RustStringList>;
        fn push(self: &mut RustStringList, item: &[u8]) -> Result<()>;
        fn sequences_in(names: &RustStringList) -> Result<Box<RustSequenceList>>;
        fn find_sequences(dir: &[u8]) -> Result<Box<RustSequenceList>>;

        fn frameset_parse(spec: &[u8]) -> Result<Box<RustFrameSet>>;
        fn len(self: &RustFrameSet) -> usize;
        fn text(self: &RustFrameSet) -> String;
        fn frames(self: &RustFrameSet, limit: usize) -> Vec<i64>;

        fn capsule_id_kind(value: &[u8]) -> Result<String>;
        fn version_parse(value: &[u8]) -> Result<u32>;
        fn version_format(number: u32, padding: u32) -> Result<String>;
        fn version_compare(a: &[u8], b: &[u8]) -> Result<i32>;
        fn version_next(value: &[u8], padding: u32) -> Result<String>;
    }

    // Archives: a null `progress` means no callback.
    extern "Rust" {
        fn archive(
            self: &RustCapsule,
            dest: &[u8],
            policy: &str,
            replace: bool,
            progress: UniquePtr<ProgressSink>,
        ) -> Result<String>;
        fn take_offline(self: &RustCapsule, archive: &[u8]) -> Result<String>;
        fn is_offline(self: &RustCapsule) -> bool;
        fn offline_stub(self: &RustCapsule) -> Result<String>;
        fn retrieve(self: &RustStore, id: &[u8]) -> Result<Box<RustCapsule>>;
        fn restore(
            self: &RustStore,
            zip: &[u8],
            replace: bool,
            progress: UniquePtr<ProgressSink>,
        ) -> Result<Box<RustCapsule>>;
        fn archive_verify(zip: &[u8], progress: UniquePtr<ProgressSink>) -> Result<String>;
    }

    // Stagings.
    extern "Rust" {
        /// A staging manager.
        type RustStagingManager;
        /// Overrides collected for a command.
        type RustOverrides;
        /// An event subscription (dropping it unsubscribes).
        type RustSubscription;

        fn staging_open(
            state: &[u8],
            backend: &str,
            options_json: &str,
        ) -> Result<Box<RustStagingManager>>;
        fn staging_open_mock(state: &[u8]) -> Result<Box<RustStagingManager>>;
        fn staging_open_script(state: &[u8], dir: &[u8]) -> Result<Box<RustStagingManager>>;
        fn staging_open_kubernetes(
            state: &[u8],
            template_dir: &[u8],
            kubeconfig: &[u8],
            has_kubeconfig: bool,
        ) -> Result<Box<RustStagingManager>>;
        fn scope_parse(name: &[u8]) -> Result<Scope>;
        fn visibility_parse(name: &[u8]) -> Result<Visibility>;
        fn new_overrides() -> Box<RustOverrides>;
        fn push(
            self: &mut RustOverrides,
            scope: Scope,
            visibility: Visibility,
            key: &[u8],
            value: &[u8],
        ) -> Result<()>;
        fn create(
            self: &RustStagingManager,
            name: &[u8],
            tag: &[u8],
            overrides: &RustOverrides,
        ) -> Result<StagingInfo>;
        fn update(
            self: &RustStagingManager,
            name: &[u8],
            tag: &[u8],
            overrides: &RustOverrides,
            keep_overrides: bool,
        ) -> Result<StagingInfo>;
        fn delete_(self: &RustStagingManager, name: &[u8]) -> Result<StagingInfo>;
        fn restore(self: &RustStagingManager, name: &[u8]) -> Result<StagingInfo>;
        fn cleanup(self: &RustStagingManager, name: &[u8]) -> Result<StagingInfo>;
        fn get(self: &RustStagingManager, name: &[u8]) -> Result<StagingInfo>;
        fn list(self: &RustStagingManager) -> Result<Vec<StagingInfo>>;
        fn reconcile(self: &RustStagingManager) -> Result<String>;
        fn mock(self: &RustStagingManager, command_json: &[u8]) -> Result<String>;
        fn audit_log(
            self: &RustStagingManager,
            name: &[u8],
            has_name: bool,
            limit: usize,
        ) -> Result<String>;
        fn events_since(self: &RustStagingManager, after: i64, limit: usize) -> Result<String>;
        fn clean_archived(
            self: &RustStagingManager,
            older_than_ms: u64,
            has_older_than: bool,
        ) -> Result<Vec<String>>;
        fn subscribe(
            self: &RustStagingManager,
            sink: UniquePtr<EventSink>,
        ) -> Result<Box<RustSubscription>>;
        fn stopped(self: &RustSubscription) -> bool;
    }
}

fn rust_library_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn text<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| bad_arg(format!("`{name}` is not valid UTF-8 ({e})")))
}

fn path(bytes: &[u8], name: &str) -> Result<PathBuf, Failure> {
    #[cfg(unix)]
    {
        let _ = name;
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        text(bytes, name).map(PathBuf::from)
    }
}

fn path_text(p: &std::path::Path) -> Result<String, Failure> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| bad_arg(format!("path {} is not valid UTF-8", p.display())))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| bad_arg(format!("does not serialise: {e}")))
}
