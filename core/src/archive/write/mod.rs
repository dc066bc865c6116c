//! The archiver: walk the capsule, compress chunks in parallel, write them in order.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

use flate2::{Compress, Compression, FlushCompress, Status};
use sha2::{Digest, Sha256};

use super::format::{
    dos_datetime, end_records, read_exact_at, EntryKind, HeaderInfo, METHOD_DEFLATED,
    METHOD_STORED, S_IFDIR, S_IFLNK, S_IFREG, ZIP64_THRESHOLD,
};
use super::{
    hex, worker_count, ArchiveMetadata, ArchiveOptions, ArchiveReport, CrateSummary, Policy,
    Progress, ARCHIVE_FORMAT, MANIFEST_NAME, METADATA_NAME,
};
use crate::atomic;
use crate::capsule::{Capsule, HEAD_FILE};
use crate::error::{Error, Result};
use crate::krate::{INCOMPLETE_MARKER, METADATA_FILE};
use crate::progress::Reporter;
use crate::store::INTERNAL_DIR;
use crate::version::Version;

mod pipeline;
mod sink;
mod walk;

use pipeline::*;
use sink::*;
use walk::*;
pub(crate) use walk::{walk, Item, Scope};

/// Input chunk size: the unit of parallel compression and of memory use.
const CHUNK: usize = 1 << 20;
/// The deflate window: each chunk is primed with this much of the data before it.
const WINDOW: usize = 32 << 10;
/// Output buffer of the archive file.
const OUT_BUF: usize = 1 << 20;

pub(crate) fn archive(
    capsule: &Capsule,
    dest: &Path,
    options: &ArchiveOptions,
) -> Result<ArchiveReport> {
    match super::ArchiveTarget::parse(dest)? {
        super::ArchiveTarget::Local(path) => archive_local(capsule, &path, options),
        #[cfg(feature = "s3")]
        super::ArchiveTarget::Bucket(url) => archive_bucket(capsule, &url, options),
        #[cfg(not(feature = "s3"))]
        super::ArchiveTarget::Bucket(url) => Err(super::target::no_s3(&url)),
    }
}

fn precheck(capsule: &Capsule, options: &ArchiveOptions) -> Result<Policy> {
    if capsule.is_offline() {
        return Err(Error::InvalidArgument {
            what: "capsule",
            reason: format!(
                "{} is offline (its content lives in an archive already); retrieve it first",
                capsule.id()
            ),
        });
    }
    if !(1..=9).contains(&options.level) {
        return Err(Error::InvalidArgument {
            what: "deflate level",
            reason: format!("must be 1 to 9, got {}", options.level),
        });
    }
    match options.policy {
        Some(p) => Ok(p),
        None => Policy::parse(&capsule.store().config().archive.policy),
    }
}

/// Stream the archive into a bucket: one multipart upload, completed only after the last
/// byte (so nothing appears at the key before), aborted on failure. The completed object is
/// then verified through ranged reads and deleted if it does not verify.
#[cfg(feature = "s3")]
fn archive_bucket(capsule: &Capsule, url: &str, options: &ArchiveOptions) -> Result<ArchiveReport> {
    use super::s3::{Bucket, BucketSink};
    let policy = precheck(capsule, options)?;
    let bucket = Bucket::connect(url)?;
    if !options.replace && bucket.size()?.is_some() {
        return Err(Error::AlreadyExists {
            what: "archive",
            name: bucket.url.clone(),
        });
    }
    let cancel = &options.cancel;
    cancel.check()?;
    let Walk { items, skipped } = walk(capsule, policy, Scope::Complete)?;
    let expected = items
        .iter()
        .fold(0u64, |a, i| a.saturating_add(i.size + 512));
    let shown = PathBuf::from(&bucket.url);
    let sink = BucketSink::start(bucket.clone(), expected)?;
    let mut out = Out {
        dest: Dest::Bucket(sink),
        path: shown.clone(),
        buf: Vec::with_capacity(OUT_BUF),
        pos: 0,
    };
    tracing::info!(capsule = %capsule.id(), dest = %bucket.url, ?policy, "archiving to a bucket");
    // On any error `out` drops here and its sink aborts the multipart upload.
    let mut report = write_all(capsule, &items, &mut out, options)?;
    report.skipped = skipped;
    cancel.check()?;
    out.finish()?;
    drop(out);
    if options.verify {
        // Read back through the same endpoint it was written to (the URL's own
        // `?endpoint=`/`region=`, which `shown` drops).
        let checked = super::verify::verify(
            Path::new(url),
            &super::VerifyOptions {
                threads: options.threads,
                cancel: options.cancel.clone(),
                ..Default::default()
            },
            false,
        );
        if let Err(e) = checked {
            if let Err(d) = bucket.delete() {
                tracing::warn!(url = %bucket.url, error = %d, "could not delete an archive that does not verify");
            }
            return Err(match e {
                Error::Corrupt { entry, reason, .. } => Error::Corrupt {
                    path: shown,
                    entry,
                    reason: format!(
                        "the archive just uploaded does not verify (deleted): {reason}"
                    ),
                },
                other => other,
            });
        }
        report.verified = true;
    }
    report.path = shown;
    tracing::info!(capsule = %capsule.id(), dest = %bucket.url, bytes = report.archive_bytes, "archived");
    Ok(report)
}

fn archive_local(
    capsule: &Capsule,
    dest: &Path,
    options: &ArchiveOptions,
) -> Result<ArchiveReport> {
    let policy = precheck(capsule, options)?;
    if !options.replace && fs::symlink_metadata(dest).is_ok() {
        return Err(Error::AlreadyExists {
            what: "archive",
            name: dest.display().to_string(),
        });
    }
    let cancel = &options.cancel;
    cancel.check()?;
    let Walk { items, skipped } = walk(capsule, policy, Scope::Complete)?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = atomic::temp_path(dir, "archive");
    let file = atomic::create_new(&tmp)?;
    let mut guard = TempGuard(Some(tmp.clone()));
    let mut out = Out {
        dest: Dest::File(file),
        path: tmp.clone(),
        buf: Vec::with_capacity(OUT_BUF),
        pos: 0,
    };
    tracing::info!(capsule = %capsule.id(), dest = %dest.display(), ?policy, "archiving");
    let mut report = write_all(capsule, &items, &mut out, options)?;
    report.skipped = skipped;
    out.finish()?;
    drop(out);
    if options.verify {
        super::verify::verify(
            &tmp,
            &super::VerifyOptions {
                threads: options.threads,
                cancel: options.cancel.clone(),
                ..Default::default()
            },
            false,
        )
        .map_err(|e| match e {
            Error::Corrupt { entry, reason, .. } => Error::Corrupt {
                path: dest.to_path_buf(),
                entry,
                reason: format!("the archive just written does not verify: {reason}"),
            },
            other => other,
        })?;
        report.verified = true;
    }
    cancel.check()?;
    if options.replace {
        fs::rename(&tmp, dest).map_err(Error::io_at("rename into place", dest))?;
    } else {
        atomic::rename_noreplace(&tmp, dest, "archive")?;
    }
    guard.0 = None;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    report.path = dest.to_path_buf();
    tracing::info!(capsule = %capsule.id(), dest = %dest.display(), bytes = report.archive_bytes, "archived");
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn write_entries(
    capsule: &Capsule,
    items: &[Item],
    jobs: &[Job],
    out: &mut Out,
    options: &ArchiveOptions,
    rx: &mpsc::Receiver<(usize, Result<Chunk>)>,
    flow: &Mutex<Flow>,
    wake: &Condvar,
    mut progress: Progress,
) -> Result<ArchiveReport> {
    let cancel = &options.cancel;
    let mut pending: BTreeMap<usize, Result<Chunk>> = BTreeMap::new();
    let mut seq = 0usize;
    let mut take = |seq: &mut usize| -> Result<Chunk> {
        let r = loop {
            if let Some(r) = pending.remove(seq) {
                break r;
            }
            cancel.check()?;
            match rx.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok((s, r)) => {
                    pending.insert(s, r);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    cancel.check()?;
                    return Err(Error::io(
                        "archive",
                        capsule.path(),
                        std::io::Error::other("compression workers stopped"),
                    ));
                }
            }
        };
        *seq += 1;
        flow.lock().unwrap_or_else(|p| p.into_inner()).consumed += 1;
        wake.notify_all();
        r
    };
    let mut headers: Vec<HeaderInfo> = Vec::with_capacity(items.len() + 2);
    let mut manifest = String::new();
    let mut report = ArchiveReport {
        path: PathBuf::new(),
        capsule: capsule.id().to_string(),
        files: 0,
        dirs: 0,
        symlinks: 0,
        bytes: 0,
        archive_bytes: 0,
        deflated: 0,
        stored: 0,
        zip64: false,
        verified: false,
        skipped: Vec::new(),
    };
    let mut crates: BTreeMap<String, CrateSummary> = BTreeMap::new();
    let reporter = Reporter::new(options.progress.as_ref());
    reporter.report(&progress);
    for item in items {
        cancel.check()?;
        if item.name.len() > u16::MAX as usize {
            return Err(Error::InvalidName {
                what: "archive entry name",
                value: crate::error::shown(&item.name),
                rule: "must be shorter than 65,536 bytes".into(),
            });
        }
        let mut h = HeaderInfo {
            name: item.name.clone(),
            method: METHOD_STORED,
            crc: 0,
            compressed: 0,
            uncompressed: 0,
            offset: out.pos,
            unix_mode: item.mode,
            dos_time: item.mtime.0,
            dos_date: item.mtime.1,
            zip64_local: false,
            descriptor: false,
        };
        match item.kind {
            EntryKind::Dir => {
                report.dirs += 1;
                out.write(&h.local_header())?;
            }
            EntryKind::Symlink => {
                report.symlinks += 1;
                let target = item.target.as_deref().unwrap_or_default().as_bytes();
                h.crc = crc32fast::hash(target);
                h.compressed = target.len() as u64;
                h.uncompressed = target.len() as u64;
                out.write(&h.local_header())?;
                out.write(target)?;
            }
            EntryKind::File => {
                report.files += 1;
                report.bytes += item.size;
                let first = seq;
                let whole = jobs[first].whole;
                let sha: [u8; 32];
                if whole {
                    let chunk = take(&mut seq)?;
                    h.method = chunk.method;
                    h.crc = chunk.crc.finalize();
                    h.compressed = chunk.data.len() as u64;
                    h.uncompressed = chunk.len;
                    h.zip64_local = item.size >= ZIP64_THRESHOLD;
                    out.write(&h.local_header())?;
                    out.write(&chunk.data)?;
                    sha = chunk.sha.unwrap_or_default();
                    progress.bytes_done += chunk.len;
                } else {
                    h.method = if item.deflate {
                        METHOD_DEFLATED
                    } else {
                        METHOD_STORED
                    };
                    h.zip64_local = item.size >= ZIP64_THRESHOLD;
                    h.descriptor = out.streaming();
                    out.write(&h.local_header())?;
                    let mut crc = crc32fast::Hasher::new();
                    // Stored files were hashed by their worker; deflated ones are hashed here.
                    let mut hasher = item.deflate.then(Sha256::new);
                    let mut worker_sha = None;
                    loop {
                        let chunk = take(&mut seq)?;
                        let last = jobs[seq - 1].last;
                        match hasher.as_mut() {
                            Some(h) => h.update(chunk.raw.as_deref().unwrap_or(&chunk.data)),
                            None if last => worker_sha = chunk.sha,
                            None => {}
                        }
                        crc.combine(&chunk.crc);
                        h.compressed += chunk.data.len() as u64;
                        h.uncompressed += chunk.len;
                        if h.method == METHOD_STORED {
                            out.write_data(&chunk.data)?;
                        } else {
                            out.write(&chunk.data)?;
                        }
                        progress.bytes_done += chunk.len;
                        reporter.report(&progress);
                        if last {
                            break;
                        }
                    }
                    h.crc = crc.finalize();
                    sha = match hasher {
                        Some(h) => h.finalize().into(),
                        None => worker_sha.ok_or_else(|| {
                            Error::io(
                                "archive",
                                &item.src,
                                std::io::Error::other("no checksum from the reading worker"),
                            )
                        })?,
                    };
                    if h.descriptor {
                        out.write(&h.data_descriptor())?;
                    } else {
                        out.patch(h.offset, &h.local_header())?;
                    }
                }
                if h.method == METHOD_DEFLATED {
                    report.deflated += 1;
                } else {
                    report.stored += 1;
                }
                manifest.push_str(&hex(&sha));
                manifest.push_str("  ");
                manifest.push_str(&bagit_encode(&item.name));
                manifest.push('\n');
                if let Some(v) = crate_of(&item.name) {
                    let c = crates.entry(v.to_string()).or_insert_with(|| CrateSummary {
                        version: v.to_string(),
                        files: 0,
                        bytes: 0,
                    });
                    c.files += 1;
                    c.bytes += item.size;
                }
                progress.files_done += 1;
                reporter.report(&progress);
            }
        }
        headers.push(h);
    }
    let complete: Vec<String> = capsule
        .crates()?
        .iter()
        .map(|c| {
            c.path()
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let meta = ArchiveMetadata {
        format: ARCHIVE_FORMAT,
        capsule: capsule.id().to_string(),
        crates: crates
            .into_values()
            .filter(|c| complete.contains(&c.version))
            .collect(),
        files: report.files,
        dirs: report.dirs,
        symlinks: report.symlinks,
        bytes: report.bytes,
        tool: "capsa".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created_at: chrono::Utc::now(),
        tree_sha256: Some(super::verify::tree_digest(
            headers.iter().map(|h| (h.unix_mode, h.name.as_str())),
        )),
    };
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| Error::InvalidArgument {
        what: "archive metadata",
        reason: e.to_string(),
    })?;
    let now = dos_datetime(std::time::SystemTime::now());
    for (name, body) in [
        (MANIFEST_NAME, manifest.into_bytes()),
        (METADATA_NAME, meta_json),
    ] {
        let data = deflate_all(&body, options.level);
        let mut h = HeaderInfo {
            name: name.into(),
            method: METHOD_DEFLATED,
            crc: crc32fast::hash(&body),
            compressed: data.len() as u64,
            uncompressed: body.len() as u64,
            offset: out.pos,
            unix_mode: S_IFREG | 0o644,
            dos_time: now.0,
            dos_date: now.1,
            zip64_local: false,
            descriptor: false,
        };
        h.zip64_local = h.uncompressed >= ZIP64_THRESHOLD;
        out.write(&h.local_header())?;
        out.write(&data)?;
        headers.push(h);
    }
    let cd_offset = out.pos;
    let mut cd = Vec::with_capacity(1 << 20);
    for h in &headers {
        h.central_header(&mut cd);
        if cd.len() >= 1 << 20 {
            out.write(&cd)?;
            cd.clear();
        }
        report.zip64 |= h.zip64_local || h.offset >= 0xFFFF_FFFF;
    }
    out.write(&cd)?;
    let cd_size = out.pos - cd_offset;
    let n = headers.len() as u64;
    report.zip64 |= n >= 0xFFFF || cd_offset >= 0xFFFF_FFFF;
    out.write(&end_records(n, cd_offset, cd_size))?;
    report.archive_bytes = out.pos;
    Ok(report)
}

/// The crate directory (`v001`) an entry name `<id>/v001/...` lies in, if any.
fn crate_of(name: &str) -> Option<&str> {
    let mut parts = name.split('/');
    parts.next()?;
    let v = parts.next()?;
    parts.next()?;
    crate::version::Version::parse(v).ok().map(|_| v)
}

/// BagIt encodes CR, LF and `%` in manifest paths.
pub(crate) fn bagit_encode(name: &str) -> String {
    name.replace('%', "%25")
        .replace('\n', "%0A")
        .replace('\r', "%0D")
}

/// The inverse of [`bagit_encode`].
pub(crate) fn bagit_decode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3).map(str::to_ascii_uppercase);
        let decoded = match code.as_deref() {
            Some("0A") => Some('\n'),
            Some("0D") => Some('\r'),
            Some("25") => Some('%'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[i + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bagit_paths_round_trip() {
        for name in [
            "a/b.txt",
            "100%/x",
            "line\nbreak",
            "cr\rx",
            "%0A literal",
            "ü/シ",
        ] {
            assert_eq!(bagit_decode(&bagit_encode(name)), name);
            assert!(!bagit_encode(name).contains('\n'));
        }
        assert_eq!(bagit_decode("50%"), "50%");
    }

    #[test]
    fn crate_of_names_only_crate_content() {
        assert_eq!(crate_of("cap/v001/scenes/a.ma"), Some("v001"));
        assert_eq!(crate_of("cap/v001/"), Some("v001"));
        assert_eq!(crate_of("cap/.capsa/head"), None);
        assert_eq!(crate_of("cap/v001"), None);
    }

    #[test]
    fn incompressible_chunks_are_detected() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(looks_incompressible(&noise));
        let text: Vec<u8> = b"setAttr \".t\" 1 2 3;\n"
            .iter()
            .copied()
            .cycle()
            .take(1 << 20)
            .collect();
        assert!(!looks_incompressible(&text));
        assert!(!looks_incompressible(&noise[..1000]));
    }

    #[test]
    fn symlinks_must_stay_inside() {
        let root = Path::new("/s/cap");
        let link = Path::new("/s/cap/v001/artifacts/l");
        assert!(check_link(root, link, Path::new("../scenes/a.ma")).is_ok());
        assert!(check_link(root, link, Path::new("../../v002/x")).is_ok());
        assert!(check_link(root, link, Path::new("../../../other/x")).is_err());
        assert!(check_link(root, link, Path::new("/etc/passwd")).is_err());
    }
}
