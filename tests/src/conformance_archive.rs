//! The `archive` calls of the conformance suite (`tests/conformance/archive.json`): archive,
//! verify, restore, take offline and retrieve, with the result shapes of
//! `tests/conformance/README.md` (only the figures that do not depend on timestamps).

use capsa::archive::{ArchiveOptions, OfflineStub, Policy, RestoreOptions};
use capsa::Result;
use serde_json::{json, Value};

use crate::conformance::{opt_str, path_arg, s, Ctx};

fn flag(args: &Value, key: &str) -> bool {
    args.get(key).and_then(Value::as_bool) == Some(true)
}

fn stub_json(stub: &OfflineStub) -> Value {
    json!({ "capsule": stub.capsule, "files": stub.files })
}

/// Run one archive call; `None` when `name` is not one.
pub(crate) fn call(ctx: &mut Ctx, name: &str, args: &Value) -> Option<Result<Value>> {
    let result = (|| -> Result<Option<Value>> {
        Ok(Some(match name {
            "archive.create" => {
                let dest = path_arg(ctx, args, "dest");
                let capsule = ctx.store()?.capsule(s(args, "id"))?;
                let options = ArchiveOptions {
                    policy: opt_str(args, "policy")
                        .map(|p| Policy::parse(&p))
                        .transpose()?,
                    level: args.get("level").and_then(Value::as_u64).unwrap_or(6) as u32,
                    replace: flag(args, "replace"),
                    ..ArchiveOptions::default()
                };
                let r = capsa::archive::archive(&capsule, &dest, options)?;
                json!({
                    "capsule": r.capsule,
                    "files": r.files,
                    "dirs": r.dirs,
                    "symlinks": r.symlinks,
                    "deflated": r.deflated,
                    "stored": r.stored,
                    "zip64": r.zip64,
                    "verified": r.verified,
                    "skipped": r.skipped,
                })
            }
            "archive.verify" => {
                let r = capsa::archive::verify(path_arg(ctx, args, "path"))?;
                json!({
                    "capsule": r.capsule,
                    "entries": r.entries,
                    "files": r.files,
                    "dirs": r.dirs,
                    "symlinks": r.symlinks,
                })
            }
            "archive.restore" => {
                let path = path_arg(ctx, args, "path");
                let options = RestoreOptions {
                    replace: flag(args, "replace"),
                    ..RestoreOptions::default()
                };
                let c = capsa::archive::restore(&path, ctx.store()?, options)?;
                json!({ "id": c.id().as_str() })
            }
            "capsule.take_offline" => {
                let archive = path_arg(ctx, args, "archive");
                let stub = ctx.store()?.capsule(s(args, "id"))?.take_offline(archive)?;
                stub_json(&stub)
            }
            "capsule.offline" => {
                let capsule = ctx.store()?.capsule(s(args, "id"))?;
                let stub = capsule.offline_stub()?;
                json!({
                    "offline": capsule.is_offline(),
                    "stub": stub.as_ref().map(stub_json),
                })
            }
            "store.retrieve" => {
                let c = ctx.store()?.retrieve(s(args, "id"))?;
                json!({ "id": c.id().as_str() })
            }
            _ => return Ok(None),
        }))
    })();
    result.transpose()
}
