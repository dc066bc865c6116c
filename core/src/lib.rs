//! # capsa
//!
//! Show storage for VFX and animation pipelines as *Capsules* and *Crates*, Capsules archived
//! into verified zip files and back, and the staging lifecycle on deploy backends.
//!
//! Frame sequences (`plate.1001-1100#.exr`: parsing, formatting, detection in a directory)
//! live in [`seq`].
//!
//! Everything the bindings (Python, Node, C/C++) expose lives here; they only convert types
//! and map [`ErrorCode`]s.

#![deny(unsafe_code)]

pub mod archive;
pub mod atomic;
pub mod beneath;
pub mod capsule;
pub mod error;
pub mod fsck;
pub mod id;
pub mod krate;
mod parallel;
pub mod progress;
pub mod runtime;
pub mod safe_file;
pub mod seq;
pub mod staging;
pub mod store;
mod sys;
pub mod version;

pub use archive::{
    ArchiveOptions, ArchiveReport, CancelToken, OfflineStub, Policy, Progress, RestoreOptions,
    VerifyReport,
};
pub use capsule::{BumpOptions, Capsule, CapsuleInfo, CarryStats};
pub use error::{Error, ErrorCode, Result};
pub use fsck::{FsckProblem, FsckReport, ProblemKind};
pub use id::{CapsuleId, IdKind};
pub use krate::{Crate, CrateInfo, CrateMetadata, Section};
pub use seq::{find_sequences, sequences_in, FrameSet, PadStyle, Sequence, SequenceInfo};
pub use store::{CrateSequence, Store, StoreConfig, StoreOptions};
pub use version::Version;
