//! The `seq` calls of the conformance suite (`tests/conformance/seq.json`).
//!
//! [`call`] runs one step's call and returns its result as JSON, or `None` when the call is
//! not a sequence call (so a generic runner can try each topic in turn).

use capsa::seq::{sequences_in, FrameSet, PadStyle, Sequence};
use capsa::{Error, Result};
use serde_json::{json, Value};

/// How many frames `frameset.parse` lists in `frames` before it gives `null` instead.
pub const LISTED_FRAMES: usize = 1000;

/// Run one sequence call: `sequence.parse`, `sequence.format`, `sequence.pattern`,
/// `sequence.missing`, `sequence.path`, `frameset.parse` or `sequences_in`.
///
/// `None` when `call` is none of these. Results follow the table in
/// `tests/conformance/README.md`.
pub fn call(call: &str, args: &Value) -> Option<Result<Value>> {
    let result = match call {
        "sequence.parse" => str_arg(args, "pattern").and_then(|p| {
            let s = Sequence::parse(p)?;
            Ok(json!({
                "head": s.head,
                "tail": s.tail,
                "padding": s.padding,
                "frames": s.frames.to_string(),
                "count": s.frames.len(),
            }))
        }),
        "sequence.format" | "sequence.pattern" => str_arg(args, "pattern").and_then(|p| {
            let style: PadStyle = str_arg(args, "style")?.parse()?;
            let s = Sequence::parse(p)?;
            let text = if call == "sequence.format" {
                s.format(style)
            } else {
                s.pattern(style)
            };
            Ok(json!({ "text": text }))
        }),
        "sequence.missing" => str_arg(args, "pattern").and_then(|p| {
            let s = Sequence::parse(p)?;
            Ok(json!({ "frames": s.missing().to_string() }))
        }),
        "sequence.path" => str_arg(args, "pattern").and_then(|p| {
            let frame = args
                .get("frame")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad_args("\"frame\" must be an integer"))?;
            let s = Sequence::parse(p)?;
            Ok(json!({ "path": s.path(frame) }))
        }),
        "frameset.parse" => str_arg(args, "spec").and_then(|spec| {
            let fs = FrameSet::parse(spec)?;
            let frames = if fs.len() <= LISTED_FRAMES {
                json!(fs.iter().collect::<Vec<i64>>())
            } else {
                Value::Null
            };
            Ok(json!({ "frames": frames, "text": fs.to_string(), "count": fs.len() }))
        }),
        "sequences_in" => {
            let names = args
                .get("names")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<&str>>>())
                .ok_or_else(|| bad_args("\"names\" must be an array of strings"));
            names.map(|names| {
                let found: Vec<String> = sequences_in(names)
                    .iter()
                    .map(|s| s.format(PadStyle::Hash))
                    .collect();
                json!({ "sequences": found })
            })
        }
        _ => return None,
    };
    Some(result)
}

fn bad_args(reason: &str) -> Error {
    Error::InvalidArgument {
        what: "conformance arguments",
        reason: reason.to_string(),
    }
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad_args(&format!("{key:?} must be a string")))
}
