//! `capsa archive | verify | restore | offline | retrieve`: capsules as verified zip files.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use capsa::archive::{self, ArchiveOptions, Policy, ProgressFn, RestoreOptions, VerifyOptions};
use capsa::Store;
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::output;
use crate::Global;

/// Compression policy on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PolicyArg {
    /// Store compressed media (exr, mov, jpg, png…), deflate the rest.
    Auto,
    /// Store everything.
    Store,
    /// Deflate everything.
    Deflate,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Policy {
        match p {
            PolicyArg::Auto => Policy::Auto,
            PolicyArg::Store => Policy::Store,
            PolicyArg::Deflate => Policy::Deflate,
        }
    }
}

/// The archive subcommands.
#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Archive a capsule into one verified zip file.
    Archive {
        /// Capsule id.
        id: String,
        /// The zip file to write (refused if it exists, unless --replace): a path,
        /// file:///… or s3://bucket/prefix/name.zip (endpoint, region and credentials from
        /// AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
        #[arg(short, long, value_name = "FILE|URL")]
        output: PathBuf,
        /// Compression policy (default: the store's `[archive] policy`).
        #[arg(long, value_enum)]
        policy: Option<PolicyArg>,
        /// Deflate level, 1 (fast) to 9 (small).
        #[arg(long, default_value_t = 6)]
        level: u32,
        /// Replace an existing file at FILE.
        #[arg(long)]
        replace: bool,
        /// Skip re-reading the finished archive before it is renamed into place (its
        /// checksums are still computed from the sources; `capsa verify` checks it later).
        #[arg(long)]
        no_verify: bool,
    },
    /// Verify an archive: structure, every CRC-32, the SHA-256 manifest.
    Verify {
        /// The zip file, or its s3://bucket/key URL.
        file: PathBuf,
        /// Also print the SHA-256 of the whole archive file (one more read of it).
        #[arg(long)]
        sha256: bool,
    },
    /// Restore a capsule from an archive into the store.
    Restore {
        /// The zip file, or its s3://bucket/key URL.
        file: PathBuf,
        /// Replace an existing capsule of the same id.
        #[arg(long)]
        replace: bool,
        /// Refuse archives that expand to more than this many bytes (default 4 TiB).
        #[arg(long, value_name = "BYTES")]
        max_bytes: Option<u64>,
    },
    /// Take a capsule offline: verify FILE, remove the content, leave a stub.
    Offline {
        /// Capsule id.
        id: String,
        /// Its verified archive: a path or s3://bucket/key URL (recorded in the stub).
        file: PathBuf,
    },
    /// Bring an offline capsule back from its recorded archive (a file or a bucket object).
    Retrieve {
        /// Capsule id.
        id: String,
    },
}

fn open_store(global: &Global) -> anyhow::Result<Store> {
    let root = match &global.store {
        Some(p) => p.clone(),
        None => std::env::current_dir()?,
    };
    Ok(Store::open(root)?)
}

/// A byte progress bar on stderr when it is a terminal (and output is not JSON).
fn progress_bar(global: &Global, what: &str) -> (Option<ProgressBar>, Option<ProgressFn>) {
    if global.json || !std::io::stderr().is_terminal() {
        return (None, None);
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    let b = bar.clone();
    let cb: ProgressFn = Arc::new(move |p| {
        b.set_length(p.bytes_total);
        b.set_position(p.bytes_done);
    });
    (Some(bar), Some(cb))
}

fn finish(bar: Option<ProgressBar>) {
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

#[derive(Serialize)]
struct CapsuleOut {
    capsule: String,
    path: PathBuf,
    crates: Vec<String>,
    offline: bool,
}

fn capsule_out(c: &capsa::Capsule) -> anyhow::Result<CapsuleOut> {
    Ok(CapsuleOut {
        capsule: c.id().to_string(),
        path: c.path().to_path_buf(),
        crates: c.crates()?.iter().map(|k| k.version_str()).collect(),
        offline: c.is_offline(),
    })
}

/// Run one archive subcommand.
pub fn run(cmd: ArchiveCommand, global: &Global) -> anyhow::Result<()> {
    if global.server.server.is_some() {
        // Never quietly run on this machine's store what was asked of a server.
        return Err(capsa::Error::Unsupported {
            what: "archive commands over --server (run them where the store is mounted, without --server or CAPSA_SERVER)".into(),
        }
        .into());
    }
    match cmd {
        ArchiveCommand::Archive {
            id,
            output: dest,
            policy,
            level,
            replace,
            no_verify,
        } => {
            let store = open_store(global)?;
            let capsule = store.capsule(&id)?;
            let (bar, progress) = progress_bar(global, "archive");
            let report = archive::archive(
                &capsule,
                &dest,
                ArchiveOptions {
                    policy: policy.map(Policy::from),
                    level,
                    replace,
                    verify: !no_verify,
                    progress,
                    ..Default::default()
                },
            );
            finish(bar);
            let report = report?;
            if global.json {
                output::print_json(&report)?;
            } else {
                println!(
                    "archived {} to {}: {} files, {} dirs, {} symlinks, {} bytes -> {} bytes \
                     ({} deflated, {} stored{}){}",
                    report.capsule,
                    report.path.display(),
                    report.files,
                    report.dirs,
                    report.symlinks,
                    report.bytes,
                    report.archive_bytes,
                    report.deflated,
                    report.stored,
                    if report.zip64 { ", zip64" } else { "" },
                    if report.verified { ", verified" } else { "" }
                );
                if !report.skipped.is_empty() {
                    println!(
                        "skipped {} (being made when the archive reached them; archive again \
                         to take them)",
                        report.skipped.join(", ")
                    );
                }
            }
        }
        ArchiveCommand::Verify { file, sha256 } => {
            let (bar, progress) = progress_bar(global, "verify");
            let report = archive::verify_with(
                &file,
                VerifyOptions {
                    archive_sha256: sha256,
                    progress,
                    ..Default::default()
                },
            );
            finish(bar);
            let report = report?;
            if global.json {
                output::print_json(&report)?;
            } else {
                println!(
                    "ok: {} holds capsule {}: {} files, {} dirs, {} symlinks, {} bytes; \
                     every CRC and SHA-256 checks out{}",
                    report.path.display(),
                    report.capsule,
                    report.files,
                    report.dirs,
                    report.symlinks,
                    report.bytes,
                    report
                        .archive_sha256
                        .as_deref()
                        .map(|s| format!(" (archive sha256 {s})"))
                        .unwrap_or_default()
                );
            }
        }
        ArchiveCommand::Restore {
            file,
            replace,
            max_bytes,
        } => {
            let store = open_store(global)?;
            let (bar, progress) = progress_bar(global, "restore");
            let capsule = archive::restore(
                &file,
                &store,
                RestoreOptions {
                    replace,
                    progress,
                    max_total_bytes: max_bytes.unwrap_or(archive::DEFAULT_MAX_TOTAL_BYTES),
                    ..Default::default()
                },
            );
            finish(bar);
            let capsule = capsule?;
            if global.json {
                output::print_json(&capsule_out(&capsule)?)?;
            } else {
                println!("restored {} to {}", capsule.id(), capsule.path().display());
            }
        }
        ArchiveCommand::Offline { id, file } => {
            let store = open_store(global)?;
            let capsule = store.capsule(&id)?;
            let stub = capsule.take_offline(&file)?;
            if global.json {
                output::print_json(&stub)?;
            } else {
                println!(
                    "{} is offline: archive {} (sha256 {})",
                    stub.capsule, stub.archive, stub.archive_sha256
                );
            }
        }
        ArchiveCommand::Retrieve { id } => {
            let store = open_store(global)?;
            let capsule = store.retrieve(&id)?;
            if global.json {
                output::print_json(&capsule_out(&capsule)?)?;
            } else {
                println!("retrieved {} to {}", capsule.id(), capsule.path().display());
            }
        }
    }
    Ok(())
}
