//! Cross-language conformance runner and integration test helpers.

pub mod conformance;

/// Calls the storage runner does not know: other topics plug in here.
pub(crate) fn conformance_extra(
    _name: &str,
    _args: &serde_json::Value,
) -> Option<capsa::Result<serde_json::Value>> {
    None
}
