//! Cross-language conformance runner and integration test helpers.

pub mod conformance;
mod conformance_archive;
pub mod conformance_seq;
mod conformance_staging;

/// Calls the storage runner does not know: other topics plug in here.
pub(crate) fn conformance_extra(
    ctx: &mut conformance::Ctx,
    name: &str,
    args: &serde_json::Value,
) -> Option<capsa::Result<serde_json::Value>> {
    conformance_seq::call(name, args)
        .or_else(|| conformance_staging::call(ctx, name, args))
        .or_else(|| conformance_archive::call(ctx, name, args))
}
