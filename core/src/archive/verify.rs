//! `verify`: structure, every CRC-32, the SHA-256 manifest, in parallel.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::format::{EntryKind, ZipIndex};
use super::plan::{parse_manifest, plan, read_small, Plan};
use super::read::read_entry;
use super::source::Source;
use super::{
    hex, worker_count, ArchiveMetadata, VerifyOptions, VerifyReport, ARCHIVE_FORMAT, MANIFEST_NAME,
    METADATA_NAME,
};
use crate::error::{Error, Result};
use crate::parallel;
use crate::progress::Tally;

/// Refuse every entry that would put one of capsa's own names into the restored capsule
/// (`.capsa/offline.json`, `.capsa-tmp-*`, store files…). Only what the archiver itself
/// writes is let through: the capsule's `.capsa/` directory with its `head` hint, and a
/// crate's `.capsa-crate.json` / `.capsa-incomplete` directly inside a crate directory.
/// The comparison ignores ASCII case, since a case-insensitive filesystem would fold
/// `.CAPSA/offline.json` onto the real stub.
pub(crate) fn check_internal_names(path: &Path, index: &ZipIndex, plan: &Plan) -> Result<()> {
    use crate::capsule::HEAD_FILE;
    use crate::krate::{INCOMPLETE_MARKER, METADATA_FILE};
    use crate::store::INTERNAL_DIR;
    for item in &plan.items {
        let rel = &item.rel;
        for (k, part) in rel.iter().enumerate() {
            let inside_internal = k == 1 && rel[0].eq_ignore_ascii_case(INTERNAL_DIR);
            if !part.to_ascii_lowercase().starts_with(".capsa") && !inside_internal {
                continue;
            }
            let file = item.kind == EntryKind::File;
            let head = rel.len() == 2 && rel[0] == INTERNAL_DIR && rel[1] == HEAD_FILE && file;
            let allowed = match k {
                0 if rel.len() == 1 => part == INTERNAL_DIR && item.kind == EntryKind::Dir,
                0 => head,
                1 if inside_internal => head,
                1 => {
                    rel.len() == 2
                        && file
                        && (part == METADATA_FILE || part == INCOMPLETE_MARKER)
                        && crate::version::Version::parse(&rel[0]).is_ok()
                }
                _ => false,
            };
            if !allowed {
                let e = &index.entries[item.entry];
                return Err(Error::UnsafePath {
                    path: path.to_path_buf(),
                    reason: format!(
                        "entry {:?}: {part:?} is a name reserved for capsa's own files; an \
                         archive may hold only {INTERNAL_DIR}/{HEAD_FILE} and a crate's \
                         {METADATA_FILE} or {INCOMPLETE_MARKER}",
                        e.name
                    ),
                });
            }
        }
    }
    Ok(())
}

/// SHA-256 (hex) over `mode name` lines of capsule entries, in order: what
/// [`ArchiveMetadata::tree_sha256`] records.
pub(crate) fn tree_digest<'a>(entries: impl Iterator<Item = (u32, &'a str)>) -> String {
    let mut h = Sha256::new();
    for (mode, name) in entries {
        h.update(format!("{mode:o} ").as_bytes());
        h.update(name.as_bytes());
        h.update(b"\n");
    }
    hex(&h.finalize())
}

/// Check the metadata against the archive: a format this capsa knows, the entry counts and
/// (when recorded) the tree digest.
fn check_metadata(
    path: &Path,
    index: &ZipIndex,
    plan: &Plan,
    meta: &ArchiveMetadata,
) -> Result<()> {
    let bad = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        entry: Some(METADATA_NAME.into()),
        reason,
    };
    if meta.format != ARCHIVE_FORMAT {
        return Err(Error::Unsupported {
            what: format!(
                "{}: archive format {} (this capsa reads format {ARCHIVE_FORMAT})",
                path.display(),
                meta.format
            ),
        });
    }
    let count = |k: EntryKind| plan.items.iter().filter(|i| i.kind == k).count() as u64;
    let counted = (
        count(EntryKind::File),
        count(EntryKind::Dir),
        count(EntryKind::Symlink),
    );
    if counted != (meta.files, meta.dirs, meta.symlinks) {
        return Err(bad(format!(
            "records {} files, {} dirs, {} symlinks; the archive holds {}, {}, {}",
            meta.files, meta.dirs, meta.symlinks, counted.0, counted.1, counted.2
        )));
    }
    if let Some(want) = &meta.tree_sha256 {
        let got = tree_digest(plan.items.iter().map(|i| {
            let e = &index.entries[i.entry];
            (e.unix_mode().unwrap_or(0), e.name.as_str())
        }));
        if &got != want {
            return Err(bad(format!(
                "the names or modes of the archive's entries differ from the ones recorded \
                 (tree digest {got}, recorded {want})"
            )));
        }
    }
    Ok(())
}

/// The manifest and metadata of a checked archive.
pub(crate) struct Tags {
    pub manifest: HashMap<String, String>,
    pub metadata: Option<ArchiveMetadata>,
}

/// Read the tag files and check that the manifest covers exactly the archive's files.
pub(crate) fn read_tags(
    path: &Path,
    file: &dyn Source,
    index: &ZipIndex,
    plan: &Plan,
    required: bool,
) -> Result<Option<Tags>> {
    let Some(m) = plan.manifest else {
        if required {
            return Err(Error::corrupt(
                path,
                format!("no {MANIFEST_NAME}: not a capsa archive"),
            ));
        }
        return Ok(None);
    };
    let text = read_small(path, file, index, m, 1 << 30)?;
    let manifest = parse_manifest(path, &text)?;
    let metadata = match plan.metadata {
        Some(i) => {
            let body = read_small(path, file, index, i, 64 << 20)?;
            Some(
                serde_json::from_slice::<ArchiveMetadata>(&body).map_err(|e| Error::Corrupt {
                    path: path.to_path_buf(),
                    entry: Some(METADATA_NAME.into()),
                    reason: format!("does not parse: {e}"),
                })?,
            )
        }
        None if required => {
            return Err(Error::corrupt(
                path,
                format!("no {METADATA_NAME}: not a capsa archive"),
            ))
        }
        None => None,
    };
    if let Some(meta) = &metadata {
        check_metadata(path, index, plan, meta)?;
        if meta.capsule != plan.capsule.as_str() {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                entry: Some(METADATA_NAME.into()),
                reason: format!(
                    "names capsule {:?}, the archive holds {:?}",
                    meta.capsule,
                    plan.capsule.as_str()
                ),
            });
        }
    }
    let mut files = 0usize;
    for item in plan.items.iter().filter(|i| i.kind == EntryKind::File) {
        files += 1;
        let name = &index.entries[item.entry].name;
        if !manifest.contains_key(name) {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                entry: Some(name.clone()),
                reason: format!("missing from {MANIFEST_NAME}"),
            });
        }
    }
    if files != manifest.len() {
        let names: std::collections::HashSet<&str> = plan
            .items
            .iter()
            .map(|i| index.entries[i.entry].name.as_str())
            .collect();
        let mut missing: Vec<&String> = manifest
            .keys()
            .filter(|k| !names.contains(k.as_str()))
            .collect();
        missing.sort();
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            entry: missing.first().map(|s| s.to_string()),
            reason: format!("listed in {MANIFEST_NAME} but missing from the archive"),
        });
    }
    Ok(Some(Tags { manifest, metadata }))
}

/// Verify `path`. With `check_sha` off (the archiver's own check of what it just wrote,
/// whose checksums it computed from the sources) only CRCs and structure are checked.
pub(crate) fn verify(
    path: &Path,
    options: &VerifyOptions,
    check_sha: bool,
) -> Result<VerifyReport> {
    let cancel = &options.cancel;
    let source = super::source::open(path)?;
    let file: &dyn Source = &*source;
    let index = ZipIndex::open(path, file)?;
    let plan = plan(path, &index, None)?;
    check_internal_names(path, &index, &plan)?;
    super::plan::symlink_targets(path, file, &index, &plan)?;
    let tags = read_tags(path, file, &index, &plan, true)?.expect("required");
    let files: Vec<usize> = plan
        .items
        .iter()
        .filter(|i| i.kind == EntryKind::File)
        .map(|i| i.entry)
        .collect();
    let bytes_total: u64 = files.iter().fold(0u64, |a, &i| {
        a.saturating_add(index.entries[i].uncompressed)
    });
    let tally = Tally::new(options.progress.as_ref(), files.len() as u64, bytes_total);
    let archive_sha: Mutex<Option<Result<String>>> = Mutex::new(None);
    let threads = worker_count(options.threads);
    std::thread::scope(|s| -> Result<()> {
        if options.archive_sha256 {
            s.spawn(|| {
                let r = sha256_source(path, file, cancel);
                *archive_sha.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
        parallel::for_each(files.len(), threads, cancel, |k| {
            let e = &index.entries[files[k]];
            let mut hasher = check_sha.then(Sha256::new);
            let mut pending = 0u64;
            read_entry(path, file, &index, e, |b| {
                if let Some(h) = hasher.as_mut() {
                    h.update(b);
                }
                pending += b.len() as u64;
                if pending >= 8 << 20 {
                    tally.add(pending, false);
                    pending = 0;
                    cancel.check()?;
                }
                Ok(())
            })?;
            if let Some(h) = hasher {
                let got = hex(&h.finalize());
                let want = &tags.manifest[&e.name];
                if &got != want {
                    return Err(Error::Corrupt {
                        path: path.to_path_buf(),
                        entry: Some(e.name.clone()),
                        reason: format!(
                            "SHA-256 mismatch: data has {got}, {MANIFEST_NAME} says {want}"
                        ),
                    });
                }
            }
            tally.add(pending, true);
            Ok(())
        })
    })?;
    let archive_sha256 = match archive_sha.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(r) => Some(r?),
        None => None,
    };
    let count = |k: EntryKind| plan.items.iter().filter(|i| i.kind == k).count() as u64;
    Ok(VerifyReport {
        path: path.to_path_buf(),
        capsule: plan.capsule.to_string(),
        entries: index.entries.len() as u64,
        files: files.len() as u64,
        dirs: count(EntryKind::Dir),
        symlinks: count(EntryKind::Symlink),
        bytes: bytes_total,
        archive_bytes: index.len,
        archive_sha256,
        tool_version: tags.metadata.map(|m| m.tool_version).unwrap_or_default(),
    })
}

/// SHA-256 of a whole archive, streamed.
pub(crate) fn sha256_source(
    path: &Path,
    file: &dyn Source,
    cancel: &super::CancelToken,
) -> Result<String> {
    let len = file.size().map_err(Error::io_at("stat", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        cancel.check()?;
        let n = (len - at).min(buf.len() as u64) as usize;
        file.read_at(&mut buf[..n], at)
            .map_err(Error::io_at("read", path))?;
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(hex(&h.finalize()))
}
