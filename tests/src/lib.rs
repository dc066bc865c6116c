//! Cross-language conformance runner and integration test helpers.

pub mod conformance_seq;
