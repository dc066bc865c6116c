//! # capsa
//!
//! Show storage for VFX and animation pipelines as *Capsules* and *Crates*, Capsules archived
//! into verified zip files and back, and the staging lifecycle on deploy backends.
//!
//! Everything the bindings (Python, Node, C/C++) expose lives here; they only convert types
//! and map [`ErrorCode`]s.

pub mod error;
pub mod runtime;
pub mod staging;

pub use error::{Error, ErrorCode, Result};
