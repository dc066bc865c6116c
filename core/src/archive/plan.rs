//! Checking an archive's entries before anything is read or written: names, layout,
//! duplicates, overlaps, sizes, symlink targets and the manifest.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::format::{CdEntry, EntryKind, ZipIndex};
use super::read::read_entry;
use super::write::bagit_decode;
use super::{MANIFEST_NAME, METADATA_NAME};
use crate::error::{Error, Result};
use crate::id::CapsuleId;

/// One capsule entry of the archive.
#[derive(Debug, Clone)]
pub(crate) struct PlanItem {
    /// Index into the central directory.
    pub entry: usize,
    /// Path components below the capsule directory (empty for the capsule itself).
    pub rel: Vec<String>,
    pub kind: EntryKind,
}

/// The checked layout of an archive.
#[derive(Debug)]
pub(crate) struct Plan {
    pub capsule: CapsuleId,
    pub items: Vec<PlanItem>,
    pub manifest: Option<usize>,
    pub metadata: Option<usize>,
}

/// Limits against zip bombs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_ratio: u64,
    pub max_total: u64,
}

fn refuse(path: &Path, entry: &CdEntry, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        entry: Some(entry.name.clone()),
        reason: reason.into(),
    }
}

/// Split and check one entry name: relative, `/`-separated, no `.`/`..`/empty components,
/// no drive letters, backslashes or NULs, valid UTF-8.
fn components<'a>(path: &Path, e: &'a CdEntry) -> Result<Vec<&'a str>> {
    if !e.name_is_utf8 {
        return Err(refuse(path, e, "name is not valid UTF-8"));
    }
    let name = e.name.as_str();
    if name.is_empty() {
        return Err(refuse(path, e, "empty name"));
    }
    if name.contains('\0') {
        return Err(refuse(path, e, "name contains a NUL byte"));
    }
    if name.contains('\\') {
        return Err(refuse(
            path,
            e,
            "name contains a backslash (a Windows path separator): refusing an ambiguous path",
        ));
    }
    if name.starts_with('/') {
        return Err(refuse(
            path,
            e,
            "absolute path: refusing to write outside the capsule",
        ));
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err(refuse(
            path,
            e,
            "drive-letter path: refusing to write outside the capsule",
        ));
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    let parts: Vec<&str> = trimmed.split('/').collect();
    for p in &parts {
        match *p {
            ".." => {
                return Err(refuse(
                    path,
                    e,
                    "'..' in the path: refusing to write outside the capsule",
                ))
            }
            "." | "" => return Err(refuse(path, e, "empty or '.' path component")),
            _ => {}
        }
    }
    Ok(parts)
}

/// Check every entry of `index`; `limits` adds the zip-bomb checks of a restore.
pub(crate) fn plan(path: &Path, index: &ZipIndex, limits: Option<Limits>) -> Result<Plan> {
    let mut capsule: Option<String> = None;
    let mut items = Vec::new();
    let mut manifest = None;
    let mut metadata = None;
    let mut seen: HashMap<String, EntryKind> = HashMap::new();
    let mut total: u64 = 0;
    for e in &index.entries {
        let parts = components(path, e)?;
        let kind = e.kind();
        if parts.len() == 1 && kind == EntryKind::File {
            match parts[0] {
                MANIFEST_NAME if manifest.is_none() => {
                    manifest = Some(e.index);
                    continue;
                }
                METADATA_NAME if metadata.is_none() => {
                    metadata = Some(e.index);
                    continue;
                }
                MANIFEST_NAME | METADATA_NAME => {
                    return Err(refuse(path, e, "duplicate entry name"))
                }
                _ => {
                    return Err(refuse(
                        path,
                        e,
                        "file outside the capsule directory (a capsule archive holds one \
                         top-level directory named by the capsule id)",
                    ))
                }
            }
        }
        match &capsule {
            None => {
                CapsuleId::parse(parts[0]).map_err(|err| {
                    refuse(
                        path,
                        e,
                        format!("top-level directory is not a capsule id: {err}"),
                    )
                })?;
                capsule = Some(parts[0].to_string());
            }
            Some(id) if id != parts[0] => {
                return Err(refuse(
                    path,
                    e,
                    format!("a second top-level directory besides {id:?}"),
                ))
            }
            Some(_) => {}
        }
        let key = parts.join("/");
        if seen.insert(key, kind).is_some() {
            return Err(refuse(path, e, "duplicate entry name"));
        }
        if parts.len() == 1 && kind != EntryKind::Dir {
            return Err(refuse(
                path,
                e,
                format!("the capsule directory entry is a {kind:?}, not a directory"),
            ));
        }
        if let Some(l) = limits {
            if kind == EntryKind::File {
                total = total.saturating_add(e.uncompressed);
                if total > l.max_total {
                    return Err(refuse(
                        path,
                        e,
                        format!(
                            "the entries add up to more than the {} byte limit (zip bomb?)",
                            l.max_total
                        ),
                    ));
                }
                if e.uncompressed > (1 << 20) && e.uncompressed / e.compressed.max(1) > l.max_ratio
                {
                    return Err(refuse(
                        path,
                        e,
                        format!(
                            "expands {} bytes to {} (ratio above the limit of {}:1): zip bomb?",
                            e.compressed, e.uncompressed, l.max_ratio
                        ),
                    ));
                }
            }
        }
        items.push(PlanItem {
            entry: e.index,
            rel: parts[1..].iter().map(|s| s.to_string()).collect(),
            kind,
        });
    }
    let Some(capsule) = capsule else {
        return Err(Error::corrupt(path, "no capsule directory in the archive"));
    };
    // A path may not pass through a file or a symlink.
    for item in &items {
        for k in 1..item.rel.len() {
            let prefix = format!("{capsule}/{}", item.rel[..k].join("/"));
            if let Some(kind) = seen.get(&prefix) {
                if *kind != EntryKind::Dir {
                    return Err(refuse(
                        path,
                        &index.entries[item.entry],
                        format!("its parent {prefix:?} is a {kind:?} entry, not a directory"),
                    ));
                }
            }
        }
    }
    // Entries may not share or overlap their data (overlapping entries are how the worst
    // zip bombs multiply one compressed block).
    let mut by_offset: Vec<&CdEntry> = index.entries.iter().collect();
    by_offset.sort_by_key(|e| e.offset);
    for w in by_offset.windows(2) {
        let end = w[0]
            .offset
            .saturating_add(30 + w[0].name.len() as u64)
            .saturating_add(w[0].compressed);
        if end > w[1].offset {
            return Err(refuse(
                path,
                w[1],
                format!("its data overlaps entry {:?}", w[0].name),
            ));
        }
    }
    Ok(Plan {
        capsule: CapsuleId::parse(&capsule)?,
        items,
        manifest,
        metadata,
    })
}

/// Read a small entry fully (tag files, symlink targets), refusing big ones.
pub(crate) fn read_small(
    path: &Path,
    file: &dyn super::source::Source,
    index: &ZipIndex,
    entry: usize,
    max: u64,
) -> Result<Vec<u8>> {
    let e = &index.entries[entry];
    if e.uncompressed > max {
        return Err(refuse(
            path,
            e,
            format!("{} bytes, more than the {max} allowed here", e.uncompressed),
        ));
    }
    let mut out = Vec::with_capacity(e.uncompressed as usize);
    read_entry(path, file, index, e, |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

/// Read and check every symlink target: relative, staying inside the capsule, and never
/// resolving through another symlink of the archive. Returns entry index → target.
pub(crate) fn symlink_targets(
    path: &Path,
    file: &dyn super::source::Source,
    index: &ZipIndex,
    plan: &Plan,
) -> Result<HashMap<usize, String>> {
    let links: HashSet<Vec<String>> = plan
        .items
        .iter()
        .filter(|i| i.kind == EntryKind::Symlink)
        .map(|i| i.rel.clone())
        .collect();
    let mut out = HashMap::new();
    for item in plan.items.iter().filter(|i| i.kind == EntryKind::Symlink) {
        let e = &index.entries[item.entry];
        let bytes = read_small(path, file, index, item.entry, 4096)?;
        let target =
            String::from_utf8(bytes).map_err(|_| refuse(path, e, "symlink target is not UTF-8"))?;
        let escape = || {
            refuse(
                path,
                e,
                format!("symlink points outside the capsule ({target:?}): refused"),
            )
        };
        if target.is_empty()
            || target.starts_with('/')
            || target.contains('\\')
            || target.contains('\0')
            || (target.len() >= 2 && target.as_bytes()[1] == b':')
        {
            return Err(escape());
        }
        // plan() refuses a link as the capsule directory itself, so `rel` is never empty.
        let Some((_, parent)) = item.rel.split_last() else {
            return Err(escape());
        };
        let mut at: Vec<String> = parent.to_vec();
        for part in target.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if at.pop().is_none() {
                        return Err(escape());
                    }
                }
                p => {
                    at.push(p.to_string());
                    if links.contains(&at) {
                        return Err(refuse(
                            path,
                            e,
                            format!("symlink {target:?} resolves through another symlink: refused"),
                        ));
                    }
                }
            }
        }
        out.insert(item.entry, target);
    }
    Ok(out)
}

/// Parse a BagIt manifest into path → sha256 (lower-case hex).
pub(crate) fn parse_manifest(path: &Path, text: &[u8]) -> Result<HashMap<String, String>> {
    let bad = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        entry: Some(MANIFEST_NAME.into()),
        reason,
    };
    let text = std::str::from_utf8(text).map_err(|_| bad("not UTF-8".into()))?;
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let Some((sum, name)) = line.split_once(' ') else {
            return Err(bad(format!("line {}: expected \"sha256  path\"", n + 1)));
        };
        let name = name.trim_start_matches(' ');
        if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("line {}: {sum:?} is not a SHA-256", n + 1)));
        }
        if out
            .insert(bagit_decode(name), sum.to_ascii_lowercase())
            .is_some()
        {
            return Err(bad(format!("line {}: {name:?} listed twice", n + 1)));
        }
    }
    Ok(out)
}
