//! Cross-language conformance runner and integration test helpers.
