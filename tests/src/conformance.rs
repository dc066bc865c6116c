//! The Rust runner of the shared conformance scenarios (`tests/conformance/*.json`).
//!
//! Python, Node and C++ run the same files with their own runners; this one calls core
//! directly. See `tests/conformance/README.md` for the format and the calls.

use std::path::{Path, PathBuf};

use capsa::{BumpOptions, CapsuleId, Section, Store, StoreOptions, Version};
use serde::Deserialize;
use serde_json::{json, Value};

/// One conformance file.
#[derive(Debug, Deserialize)]
pub struct Suite {
    /// The topic (`ids`, `versions`, `store`, `seq`…).
    pub topic: String,
    /// Its scenarios.
    pub scenarios: Vec<Scenario>,
}

/// Steps run in order against one fresh temporary store.
#[derive(Debug, Deserialize)]
pub struct Scenario {
    /// What it shows.
    pub name: String,
    /// The calls.
    pub steps: Vec<Step>,
}

/// One call and what it must give.
#[derive(Debug, Deserialize)]
pub struct Step {
    /// Dotted call name.
    pub call: String,
    /// Arguments.
    #[serde(default)]
    pub args: Value,
    /// Expected result keys.
    #[serde(default)]
    pub expect: Option<Value>,
    /// Expected error code string.
    #[serde(default)]
    pub error: Option<String>,
}

/// The directory holding the shared scenario files.
pub fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// Load one suite by file name (`ids.json`).
pub fn load(file: &str) -> Suite {
    let path = conformance_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The state of one scenario: its temporary directory, its store and staging manager (made on
/// first use), and everything its steps returned so far (for `outputs.search`).
pub(crate) struct Ctx {
    pub(crate) dir: tempfile::TempDir,
    store: Option<Store>,
    pub(crate) staging: Option<crate::conformance_staging::Staging>,
    /// Every result (as JSON text) and error message of the steps run so far.
    outputs: Vec<String>,
}

impl Ctx {
    /// The scenario's store, created at `store/` on first use.
    pub(crate) fn store(&mut self) -> capsa::Result<&Store> {
        if self.store.is_none() {
            self.store = Some(Store::init(
                self.dir.path().join("store"),
                StoreOptions::default(),
            )?);
        }
        Ok(self.store.as_ref().expect("just set"))
    }
}

/// The path `args[key]` names, relative to the scenario directory.
pub(crate) fn path_arg(ctx: &Ctx, args: &Value, key: &str) -> PathBuf {
    ctx.dir.path().join(s(args, key))
}

pub(crate) fn s<'a>(args: &'a Value, key: &str) -> &'a str {
    args[key]
        .as_str()
        .unwrap_or_else(|| panic!("argument {key:?} missing or not a string in {args}"))
}

pub(crate) fn opt_str(args: &Value, key: &str) -> Option<String> {
    args.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

fn padding(args: &Value) -> usize {
    args.get("padding").and_then(Value::as_u64).unwrap_or(3) as usize
}

fn call(ctx: &mut Ctx, name: &str, args: &Value) -> Option<capsa::Result<Value>> {
    let result = (|| -> capsa::Result<Option<Value>> {
        Ok(Some(match name {
            "id.parse" => {
                let id = CapsuleId::parse(s(args, "value"))?;
                json!({ "id": id.as_str(), "kind": id.kind().as_str() })
            }
            "version.parse" => {
                let v = Version::parse(s(args, "value"))?;
                json!({ "number": v.number(), "text": v.padded(padding(args)) })
            }
            "version.next" => {
                let v = Version::parse(s(args, "value"))?.next()?;
                json!({ "text": v.padded(padding(args)) })
            }
            "version.compare" => {
                let a = Version::parse(s(args, "a"))?;
                let b = Version::parse(s(args, "b"))?;
                json!({ "order": a.cmp(&b) as i8 })
            }
            "store.init" => {
                let options = StoreOptions {
                    padding: padding(args),
                    ..Default::default()
                };
                ctx.store = Some(Store::init(ctx.dir.path().join("store"), options)?);
                json!({})
            }
            "store.create_capsule" => {
                let c = ctx.store()?.create_capsule(s(args, "id"))?;
                json!({ "id": c.id().as_str() })
            }
            "store.capsules" => {
                let ids: Vec<String> = ctx
                    .store()?
                    .capsules()?
                    .iter()
                    .map(|c| c.id().to_string())
                    .collect();
                json!({ "ids": ids })
            }
            "capsule.bump" => {
                let carry = args
                    .get("carry_over")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| v.as_str().unwrap_or_default().parse::<Section>())
                            .collect::<capsa::Result<Vec<_>>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                let c = ctx.store()?.capsule(s(args, "id"))?.bump(BumpOptions {
                    comment: opt_str(args, "comment"),
                    carry_over: carry,
                    created_by: opt_str(args, "created_by"),
                    tags: Vec::new(),
                })?;
                json!({ "version": c.version_str() })
            }
            "capsule.crates" => {
                let versions: Vec<String> = ctx
                    .store()?
                    .capsule(s(args, "id"))?
                    .crates()?
                    .iter()
                    .map(|c| c.version_str())
                    .collect();
                json!({ "versions": versions })
            }
            "capsule.latest" => {
                let capsule = ctx.store()?.capsule(s(args, "id"))?;
                let published = args.get("published").and_then(Value::as_bool) == Some(true);
                let latest = if published {
                    capsule.latest_published()?
                } else {
                    capsule.latest()?
                };
                json!({ "version": latest.map(|c| c.version_str()) })
            }
            "file.write" => {
                let path = ctx.dir.path().join(s(args, "path"));
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(capsa::Error::io_at("mkdir", parent))?;
                }
                let text = opt_str(args, "text").unwrap_or_default();
                std::fs::write(&path, text).map_err(capsa::Error::io_at("write", &path))?;
                json!({})
            }
            "file.truncate" | "file.flip_byte" | "file.remove" | "file.copy" | "file.read"
            | "file.exists" => file_call(ctx, name, args)?,
            "outputs.search" => {
                let text = s(args, "text");
                json!({ "found": ctx.outputs.iter().any(|o| o.contains(text)) })
            }
            "crate.publish" => {
                let krate = get_crate(ctx, args)?;
                let src = ctx.dir.path().join(s(args, "src"));
                let dest = opt_str(args, "dest").map(PathBuf::from);
                let path = krate.publish(&src, dest.as_deref())?;
                let rel = path.strip_prefix(krate.path()).unwrap_or(&path);
                json!({ "path": rel.to_string_lossy().replace('\\', "/") })
            }
            "crate.seal" => {
                get_crate(ctx, args)?.seal()?;
                json!({})
            }
            "crate.metadata" => serde_json::to_value(get_crate(ctx, args)?.metadata()?)
                .expect("metadata serialises"),
            "crate.files" => {
                let krate = get_crate(ctx, args)?;
                let section: Section = s(args, "section").parse()?;
                let root = krate.section(section);
                let mut files = Vec::new();
                walk(&root, &root, &mut files);
                files.sort();
                json!({ "files": files })
            }
            _ => return Ok(None),
        }))
    })();
    match result {
        Ok(Some(v)) => Some(Ok(v)),
        Ok(None) => crate::conformance_extra(ctx, name, args),
        Err(e) => Some(Err(e)),
    }
}

/// The generic file helpers (damaged input is made with these, so every language can).
fn file_call(ctx: &Ctx, name: &str, args: &Value) -> capsa::Result<Value> {
    let path = path_arg(ctx, args, "path");
    let io = |what: &'static str| capsa::Error::io_at(what, &path);
    match name {
        "file.truncate" => {
            let len = std::fs::metadata(&path).map_err(io("stat"))?.len() as i64;
            let size = args["size"].as_i64().expect("size is an integer");
            let keep = if size < 0 { len + size } else { size }.clamp(0, len);
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io("open"))?;
            file.set_len(keep as u64).map_err(io("truncate"))?;
        }
        "file.flip_byte" => {
            let mut bytes = std::fs::read(&path).map_err(io("read"))?;
            let offset = args.get("offset").and_then(Value::as_i64).unwrap_or(0);
            let at = match opt_str(args, "find") {
                Some(needle) => {
                    let start = bytes
                        .windows(needle.len())
                        .position(|w| w == needle.as_bytes())
                        .unwrap_or_else(|| panic!("{needle:?} not in {}", path.display()));
                    start as i64 + offset
                }
                None if offset < 0 => bytes.len() as i64 + offset,
                None => offset,
            };
            let at = usize::try_from(at).expect("offset inside the file");
            bytes[at] ^= 0xff;
            std::fs::write(&path, bytes).map_err(io("write"))?;
        }
        "file.remove" => {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).map_err(io("remove"))?;
            } else {
                std::fs::remove_file(&path).map_err(io("remove"))?;
            }
        }
        "file.copy" => {
            let dest = path_arg(ctx, args, "dest");
            std::fs::copy(&path, &dest).map_err(io("copy"))?;
        }
        "file.read" => {
            let text = std::fs::read_to_string(&path).map_err(io("read"))?;
            return Ok(json!({ "text": text }));
        }
        "file.exists" => return Ok(json!({ "exists": path.exists() })),
        _ => unreachable!("not a file call: {name}"),
    }
    Ok(json!({}))
}

fn get_crate(ctx: &mut Ctx, args: &Value) -> capsa::Result<capsa::Crate> {
    let version = Version::parse(s(args, "version"))?;
    ctx.store()?.capsule(s(args, "id"))?.get(version)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).expect("below root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Does `actual` hold every key of `expected` with an equal value?
pub fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| matches(v, av))),
        _ => expected == actual,
    }
}

/// Run every scenario of a suite; returns the failures (empty when all pass).
pub fn run_suite(suite: &Suite) -> Vec<String> {
    let mut failures = Vec::new();
    for scenario in &suite.scenarios {
        let mut ctx = Ctx {
            dir: tempfile::tempdir().expect("temporary directory"),
            store: None,
            staging: None,
            outputs: Vec::new(),
        };
        for (i, step) in scenario.steps.iter().enumerate() {
            let at = format!(
                "{} / {:?} step {} ({})",
                suite.topic,
                scenario.name,
                i + 1,
                step.call
            );
            let Some(result) = call(&mut ctx, &step.call, &step.args) else {
                failures.push(format!("{at}: unknown call"));
                break;
            };
            ctx.outputs.push(match &result {
                Ok(v) => v.to_string(),
                Err(e) => format!("{}: {e}", e.code()),
            });
            let problem = match (&result, &step.expect, &step.error) {
                (Ok(v), Some(e), _) if !matches(e, v) => Some(format!("got {v}, expected {e}")),
                (Ok(v), _, Some(code)) => Some(format!("got {v}, expected error {code}")),
                (Err(err), _, Some(code)) if err.code().as_str() != code => {
                    Some(format!("got error {} ({err}), expected {code}", err.code()))
                }
                (Err(err), _, None) => Some(format!("unexpected error {} ({err})", err.code())),
                _ => None,
            };
            if let Some(p) = problem {
                failures.push(format!("{at}: {p}"));
                break;
            }
        }
    }
    failures
}
