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

pub mod error;
pub mod runtime;
pub mod seq;

pub use error::{Error, ErrorCode, Result};
pub use seq::{find_sequences, sequences_in, FrameSet, PadStyle, Sequence};
