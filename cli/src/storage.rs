//! Subcommands over the storage model: stores, capsules, crates, publishes, sequences, fsck.

use std::io::Write as _;
use std::path::PathBuf;

use capsa::{BumpOptions, Crate, CrateMetadata, PadStyle, Section, Store, StoreOptions, Version};
use clap::Subcommand;
use serde_json::{json, Value};

use crate::output::print_json;
use crate::remote::Remote;
use crate::Global;

/// Storage subcommands (flattened into the top level).
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Make a new store at --store.
    Init {
        /// Digits in crate versions.
        #[arg(long, default_value_t = 3)]
        padding: usize,
        /// Default archive policy: auto, store or deflate.
        #[arg(long, default_value = "auto")]
        archive_policy: String,
    },
    /// Capsules: create and list.
    #[command(subcommand)]
    Capsule(CapsuleCommand),
    /// Allocate the next crate of a capsule and print its version.
    Bump {
        /// Capsule id.
        id: String,
        /// Comment stored in the crate's metadata.
        #[arg(long)]
        comment: Option<String>,
        /// Sections to carry over from the previous crate (comma separated).
        #[arg(long, value_delimiter = ',')]
        carry: Vec<Section>,
        /// Who bumps (default: $USER).
        #[arg(long)]
        created_by: Option<String>,
    },
    /// List a capsule's crates.
    Crates {
        /// Capsule id.
        id: String,
    },
    /// Show a capsule's newest crate.
    Latest {
        /// Capsule id.
        id: String,
        /// Only sealed (published) crates.
        #[arg(long)]
        published: bool,
    },
    /// Publish a file (or a frame sequence pattern) into a crate's publishes/.
    Publish {
        /// Capsule id.
        id: String,
        /// Crate version (e.g. v003).
        version: String,
        /// Source file, or a sequence pattern such as /renders/plate.####.exr.
        src: PathBuf,
        /// Destination relative to publishes/ (default: the source's name).
        dest: Option<PathBuf>,
        /// Seal the crate after publishing.
        #[arg(long)]
        seal: bool,
    },
    /// Seal (release) a crate: it becomes published and read-only through capsa.
    Seal {
        /// Capsule id.
        id: String,
        /// Crate version.
        version: String,
    },
    /// List the frame sequences in a directory, with missing frames; with --all, in every
    /// crate of the store.
    Seq {
        /// Directory to look in (not recursive).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        dir: Option<PathBuf>,
        /// Every sequence of every crate of every capsule in --store (each line starts with
        /// capsule/version/section/).
        #[arg(long)]
        all: bool,
        /// Pattern style: hash, at, printf, houdini.
        #[arg(long, default_value = "hash")]
        style: PadStyle,
    },
    /// Check the store for what a crash left behind; --repair mends it.
    Fsck {
        /// Repair what can be repaired.
        #[arg(long)]
        repair: bool,
    },
}

/// `capsa capsule ...`
#[derive(Debug, Subcommand)]
pub enum CapsuleCommand {
    /// Create a capsule.
    Create {
        /// Capsule id (ObjectId, UUID or slug).
        id: String,
    },
    /// List capsules with their newest crate.
    List,
}

/// A crate as JSON: its metadata fields plus capsule and path.
pub fn crate_json(c: &Crate) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(c.info()?)?)
}

fn print_capsules(rows: &[capsa::CapsuleInfo], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(rows);
    }
    for r in rows {
        println!("{}  {}", r.id, r.latest.as_deref().unwrap_or("-"));
    }
    Ok(())
}

/// An fsck report; exits 3 when it is not clean.
fn print_fsck(report: &capsa::FsckReport, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(report)?;
    } else {
        println!(
            "checked {} capsules, {} crates: {} problem(s)",
            report.capsules,
            report.crates,
            report.problems.len()
        );
        for p in &report.problems {
            println!(
                "  {:?} {}: {}{}",
                p.kind,
                p.path.display(),
                p.detail,
                if p.repaired { " [repaired]" } else { "" }
            );
        }
    }
    if !report.is_clean() {
        std::process::exit(3);
    }
    Ok(())
}

fn crate_line(m: &CrateMetadata) -> String {
    format!(
        "{}  {}  {}{}{}",
        m.version,
        m.created_at.format("%Y-%m-%d %H:%M:%S"),
        m.created_by,
        if m.published { "  [published]" } else { "" },
        m.comment
            .as_ref()
            .map(|c| format!("  {c}"))
            .unwrap_or_default()
    )
}

fn parse_version(s: &str) -> anyhow::Result<Version> {
    Ok(Version::parse(s)?)
}

/// Run a storage subcommand.
pub fn run(cmd: StorageCommand, global: &Global) -> anyhow::Result<()> {
    if let Some(r) = Remote::of(&global.server)? {
        return remote(cmd, &r, global);
    }
    match cmd {
        StorageCommand::Init {
            padding,
            archive_policy,
        } => {
            let dir = global.store_dir()?;
            let store = Store::init(
                dir,
                StoreOptions {
                    padding,
                    archive_policy,
                },
            )?;
            if global.json {
                print_json(&json!({ "root": store.root(), "config": store.config() }))?;
            } else {
                println!("initialised store {}", store.root().display());
            }
        }
        StorageCommand::Capsule(CapsuleCommand::Create { id }) => {
            let capsule = global.open_store()?.create_capsule(&id)?;
            if global.json {
                print_json(&json!({ "id": capsule.id().as_str(), "path": capsule.path() }))?;
            } else {
                println!("{}", capsule.id());
            }
        }
        StorageCommand::Capsule(CapsuleCommand::List) => {
            let rows = global
                .open_store()?
                .capsules()?
                .iter()
                .map(|c| c.info())
                .collect::<capsa::Result<Vec<_>>>()?;
            print_capsules(&rows, global.json)?;
        }
        StorageCommand::Bump {
            id,
            comment,
            carry,
            created_by,
        } => {
            let capsule = global.open_store()?.capsule(&id)?;
            let (krate, stats) = capsule.bump_with_stats(BumpOptions {
                comment,
                carry_over: carry,
                created_by,
                tags: Vec::new(),
            })?;
            if global.json {
                let mut v = crate_json(&krate)?;
                v["carried"] = serde_json::to_value(stats)?;
                print_json(&v)?;
            } else {
                println!("{}", krate.version_str());
            }
        }
        StorageCommand::Crates { id } => {
            let crates = global.open_store()?.capsule(&id)?.crates()?;
            if global.json {
                let rows = crates
                    .iter()
                    .map(Crate::info)
                    .collect::<capsa::Result<Vec<_>>>()?;
                print_json(&rows)?;
            } else {
                for c in &crates {
                    println!("{}", crate_line(&c.metadata()?));
                }
            }
        }
        StorageCommand::Latest { id, published } => {
            let capsule = global.open_store()?.capsule(&id)?;
            let latest = if published {
                capsule.latest_published()?
            } else {
                capsule.latest()?
            };
            match (latest, global.json) {
                (Some(c), true) => print_json(&c.info()?)?,
                (Some(c), false) => println!("{}", c.version_str()),
                (None, true) => print_json(&Value::Null)?,
                (None, false) => {
                    return Err(capsa::Error::NotFound {
                        what: if published {
                            "published crate"
                        } else {
                            "crate"
                        },
                        name: id,
                    }
                    .into())
                }
            }
        }
        StorageCommand::Publish {
            id,
            version,
            src,
            dest,
            seal,
        } => {
            let capsule = global.open_store()?.capsule(&id)?;
            let krate = capsule.get(parse_version(&version)?)?;
            let path = krate.publish(&src, dest.as_deref())?;
            if seal {
                krate.seal()?;
            }
            if global.json {
                print_json(&json!({ "path": path, "sealed": seal }))?;
            } else {
                println!("{}", path.display());
            }
        }
        StorageCommand::Seal { id, version } => {
            let krate = global
                .open_store()?
                .capsule(&id)?
                .get(parse_version(&version)?)?;
            krate.seal()?;
            if global.json {
                print_json(&krate.info()?)?;
            } else {
                println!("sealed {id}/{}", krate.version_str());
            }
        }
        StorageCommand::Seq { dir, all, style } => {
            // (location prefix, sequence): the prefix is empty for one directory.
            let seqs: Vec<(String, capsa::Sequence)> = match dir {
                Some(dir) if !all => capsa::find_sequences(&dir)?
                    .into_iter()
                    .map(|s| (String::new(), s))
                    .collect(),
                _ => {
                    let store = global.open_store()?;
                    let padding = store.padding();
                    store
                        .sequences()?
                        .into_iter()
                        .map(|c| {
                            let at = format!(
                                "{}/{}/{}/",
                                c.capsule,
                                c.version.padded(padding),
                                c.section.as_str()
                            );
                            (at, c.sequence)
                        })
                        .collect()
                }
            };
            if global.json {
                let rows: Vec<capsa::SequenceInfo> =
                    seqs.iter().map(|(at, s)| s.info(at, style)).collect();
                print_json(&rows)?;
            } else {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                for (at, s) in &seqs {
                    let missing = s.missing();
                    if missing.is_empty() {
                        writeln!(out, "{at}{}  ({} frames)", s.format(style), s.frames.len())?;
                    } else {
                        writeln!(
                            out,
                            "{at}{}  ({} frames, missing {})",
                            s.format(style),
                            s.frames.len(),
                            missing
                        )?;
                    }
                }
                out.flush()?;
            }
        }
        StorageCommand::Fsck { repair } => {
            print_fsck(&global.open_store()?.fsck(repair)?, global.json)?;
        }
    }
    Ok(())
}

/// The store commands over `--server`: the same output as here, from the server's answers.
fn remote(cmd: StorageCommand, r: &Remote, global: &Global) -> anyhow::Result<()> {
    use capsa::{CapsuleInfo, CrateInfo};
    let seg = crate::remote::segment;
    match cmd {
        StorageCommand::Capsule(CapsuleCommand::Create { id }) => {
            let body = capsa_server::api::CreateCapsule { id };
            let v: Value = r.post("/v1/capsules", &serde_json::to_value(body)?)?;
            if global.json {
                print_json(&v)?;
            } else {
                println!("{}", v["id"].as_str().unwrap_or_default());
            }
        }
        StorageCommand::Capsule(CapsuleCommand::List) => {
            let rows: Vec<CapsuleInfo> = r.get("/v1/capsules", &[])?;
            print_capsules(&rows, global.json)?;
        }
        StorageCommand::Bump {
            id,
            comment,
            carry,
            created_by,
        } => {
            if created_by.is_some() {
                anyhow::bail!(capsa::Error::Unsupported {
                    what: "--created-by over --server (the server records the token's name)".into()
                });
            }
            let path = format!("/v1/capsules/{}/crates", seg(&id));
            let body = capsa_server::api::Bump {
                comment,
                carry_over: carry,
                tags: Vec::new(),
            };
            let v: Value = r.post(&path, &serde_json::to_value(body)?)?;
            if global.json {
                print_json(&v)?;
            } else {
                println!("{}", v["version"].as_str().unwrap_or_default());
            }
        }
        StorageCommand::Crates { id } => {
            let rows: Vec<CrateInfo> = r.get(&format!("/v1/capsules/{}/crates", seg(&id)), &[])?;
            if global.json {
                print_json(&rows)?;
            } else {
                for c in &rows {
                    println!("{}", crate_line(&c.metadata));
                }
            }
        }
        StorageCommand::Latest { id, published } => {
            let path = format!("/v1/capsules/{}/latest", seg(&id));
            let query = [("published", published.to_string())];
            match r.get::<CrateInfo>(&path, &query) {
                Ok(c) if global.json => print_json(&c)?,
                Ok(c) => println!("{}", c.metadata.version),
                // No crate (the capsule is there): --json prints null, as here.
                Err(e) if global.json && crate::remote::is_no_crate(&e) => print_json(&Value::Null)?,
                Err(e) => return Err(e),
            }
        }
        StorageCommand::Seal { id, version } => {
            let path = format!("/v1/capsules/{}/crates/{}/seal", seg(&id), seg(&version));
            let c: CrateInfo = r.post(&path, &json!({}))?;
            if global.json {
                print_json(&c)?;
            } else {
                println!("sealed {id}/{}", c.metadata.version);
            }
        }
        StorageCommand::Fsck { repair: false } => {
            print_fsck(&r.get("/v1/fsck", &[])?, global.json)?;
        }
        _ => anyhow::bail!(capsa::Error::Unsupported {
            what: "this command over --server (init, publish, seq and fsck --repair work on local files)".into()
        }),
    }
    Ok(())
}
