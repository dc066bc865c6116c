//! Cross-language conformance runner and integration test helpers.

pub mod conformance;
pub mod conformance_seq;

/// Calls the storage runner does not know: other topics plug in here.
pub(crate) fn conformance_extra(
    name: &str,
    args: &serde_json::Value,
) -> Option<capsa::Result<serde_json::Value>> {
    conformance_seq::call(name, args)
}
