//! `restore`: check everything, extract into a temporary directory, rename into place.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::format::{EntryKind, ZipIndex, S_IFMT};
use super::plan::{plan, symlink_targets, Limits};
use super::read::read_entry;
use super::verify::read_tags;
use super::{hex, worker_count, RestoreOptions, MANIFEST_NAME};
use crate::atomic;
use crate::capsule::Capsule;
use crate::error::{Error, Result};
use crate::parallel;
use crate::progress::Tally;
use crate::store::Store;

/// Removes a temporary directory unless disarmed.
pub(crate) struct TempDir(pub Option<PathBuf>);
impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if let Err(e) = fs::remove_dir_all(&p) {
                tracing::warn!(path = %p.display(), error = %e, "could not remove a temporary directory");
            }
        }
    }
}

pub(crate) fn restore(path: &Path, store: &Store, options: &RestoreOptions) -> Result<Capsule> {
    restore_into(path, store, options, None)
}

/// Restore; with `expect` set (a retrieve), the archive must hold that capsule and the
/// existing (offline) capsule directory is replaced.
pub(crate) fn restore_into(
    path: &Path,
    store: &Store,
    options: &RestoreOptions,
    expect: Option<&crate::id::CapsuleId>,
) -> Result<Capsule> {
    let cancel = &options.cancel;
    cancel.check()?;
    let source = super::source::open(path)?;
    let file: &dyn super::source::Source = &*source;
    let index = ZipIndex::open(path, file)?;
    // The size limits first, from the central directory alone: nothing else is read.
    check_sizes(path, &index, options.max_total_bytes, &store.scratch_dir()?)?;
    let limits = Limits {
        max_ratio: options.max_ratio,
        max_total: u64::MAX,
    };
    let plan = plan(path, &index, Some(limits))?;
    super::verify::check_internal_names(path, &index, &plan)?;
    if let Some(id) = expect {
        if &plan.capsule != id {
            return Err(Error::corrupt(
                path,
                format!("holds capsule {}, expected {id}", plan.capsule),
            ));
        }
    }
    let replace = options.replace || expect.is_some();
    let target = store.capsule_path(&plan.capsule);
    if !replace && fs::symlink_metadata(&target).is_ok() {
        return Err(Error::AlreadyExists {
            what: "capsule",
            name: plan.capsule.to_string(),
        });
    }
    let links = symlink_targets(path, file, &index, &plan)?;
    let tags = read_tags(path, file, &index, &plan, false)?;

    let scratch = store.scratch_dir()?;
    let tmp = atomic::temp_path(&scratch, "restore");
    fs::create_dir(&tmp).map_err(Error::io_at("create directory", &tmp))?;
    let mut guard = TempDir(Some(tmp.clone()));
    tracing::info!(archive = %path.display(), capsule = %plan.capsule, "restoring");

    let local = |rel: &[String]| -> PathBuf {
        let mut p = tmp.clone();
        for c in rel {
            p.push(c);
        }
        p
    };
    // Directories first (all of them, also the parents of files not listed as entries).
    for item in &plan.items {
        let dir = match item.kind {
            EntryKind::Dir => local(&item.rel),
            _ => local(&item.rel[..item.rel.len() - 1]),
        };
        fs::create_dir_all(&dir).map_err(Error::io_at("create directory", &dir))?;
    }
    let files: Vec<usize> = (0..plan.items.len())
        .filter(|&i| plan.items[i].kind == EntryKind::File)
        .collect();
    let bytes_total: u64 = files.iter().fold(0u64, |a, &i| {
        a.saturating_add(index.entries[plan.items[i].entry].uncompressed)
    });
    let tally = Tally::new(options.progress.as_ref(), files.len() as u64, bytes_total);
    parallel::for_each(files.len(), worker_count(options.threads), cancel, |k| {
        let item = &plan.items[files[k]];
        let e = &index.entries[item.entry];
        let dest = local(&item.rel);
        let mut out = atomic::create_new(&dest)?;
        let mut hasher = tags.as_ref().map(|_| Sha256::new());
        let mut pending = 0u64;
        let mut hole = false;
        let written = read_entry(path, file, &index, e, |b| {
            if let Some(h) = hasher.as_mut() {
                h.update(b);
            }
            if b.len() >= 64 << 10 && super::is_zero(b) {
                out.seek(SeekFrom::Current(b.len() as i64))
                    .map_err(Error::io_at("seek", &dest))?;
                hole = true;
            } else {
                out.write_all(b).map_err(Error::io_at("write", &dest))?;
            }
            pending += b.len() as u64;
            if pending >= 8 << 20 {
                tally.add(pending, false);
                pending = 0;
                cancel.check()?;
            }
            Ok(())
        })?;
        if hole {
            out.set_len(written).map_err(Error::io_at("write", &dest))?;
        }
        if let (Some(h), Some(tags)) = (hasher, &tags) {
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
        out.sync_all().map_err(Error::io_at("sync", &dest))?;
        drop(out);
        set_mode(&dest, e.unix_mode(), 0o644)?;
        tally.add(pending, true);
        Ok(())
    })?;
    // Symlinks last, so nothing is ever written through one.
    for item in plan.items.iter().filter(|i| i.kind == EntryKind::Symlink) {
        let dest = local(&item.rel);
        let target = &links[&item.entry];
        #[cfg(unix)]
        std::os::unix::fs::symlink(target, &dest).map_err(Error::io_at("create link", &dest))?;
        #[cfg(windows)]
        {
            let resolved = dest.parent().unwrap_or(&tmp).join(target);
            let r = if resolved.is_dir() {
                std::os::windows::fs::symlink_dir(target, &dest)
            } else {
                std::os::windows::fs::symlink_file(target, &dest)
            };
            r.map_err(Error::io_at("create link", &dest))?;
        }
    }
    // Directory modes last (a read-only directory would have refused its files).
    for item in plan.items.iter().filter(|i| i.kind == EntryKind::Dir) {
        set_mode(
            &local(&item.rel),
            index.entries[item.entry].unix_mode(),
            0o755,
        )?;
    }
    cancel.check()?;
    place(&tmp, &target, &scratch, replace, &plan.capsule)?;
    guard.0 = None;
    tracing::info!(capsule = %plan.capsule, "restored");
    store.capsule(plan.capsule.as_str())
}

/// Bytes of filesystem blocks one entry may take beyond its size (a partial last block,
/// its directory entry, metadata).
const PER_ENTRY_SLACK: u64 = 4096;

/// Refuse an archive whose entries expand to more than `max` bytes in all, or more than the
/// free space where the restore writes, or many times more than the archive itself.
fn check_sizes(path: &Path, index: &ZipIndex, max: u64, scratch: &Path) -> Result<()> {
    let mut total = 0u64;
    let mut compressed = 0u64;
    for e in &index.entries {
        if e.kind() != EntryKind::Dir {
            total = total.saturating_add(e.uncompressed);
            compressed = compressed.saturating_add(e.compressed);
        }
    }
    let what = || format!("archive {}", path.display());
    if total > max {
        return Err(Error::TooLarge {
            what: what(),
            reason: format!(
                "its entries expand to {total} bytes, more than the restore limit of {max} \
                 bytes (RestoreOptions::max_total_bytes, capsa archive restore --max-bytes)"
            ),
        });
    }
    let need = total.saturating_add((index.entries.len() as u64).saturating_mul(PER_ENTRY_SLACK));
    if let Some(free) = crate::sys::free_space(scratch) {
        if need > free {
            return Err(Error::TooLarge {
                what: what(),
                reason: format!(
                    "its entries expand to {total} bytes, the store's filesystem has only \
                     {free} bytes free ({})",
                    scratch.display()
                ),
            });
        }
    }
    Ok(())
}

/// Rename the finished tree into place; with `replace`, move an existing capsule aside
/// first and delete it once the new one is in.
fn place(
    tmp: &Path,
    target: &Path,
    scratch: &Path,
    replace: bool,
    id: &crate::id::CapsuleId,
) -> Result<()> {
    if let Ok(d) = File::open(tmp) {
        let _ = d.sync_all();
    }
    if replace && fs::symlink_metadata(target).is_ok() {
        let aside = atomic::temp_path(scratch, "replaced");
        fs::rename(target, &aside).map_err(Error::io_at("move aside", target))?;
        if let Err(e) = atomic::rename_noreplace(tmp, target, "capsule") {
            // Put the old one back: the store is as it was.
            let _ = fs::rename(&aside, target);
            return Err(e);
        }
        if let Err(e) = fs::remove_dir_all(&aside) {
            tracing::warn!(path = %aside.display(), error = %e,
                "could not delete the replaced capsule; fsck removes it");
        }
        return Ok(());
    }
    atomic::rename_noreplace(tmp, target, "capsule").map_err(|e| match e {
        Error::AlreadyExists { .. } => Error::AlreadyExists {
            what: "capsule",
            name: id.to_string(),
        },
        other => other,
    })
}

fn set_mode(path: &Path, mode: Option<u32>, default: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match mode {
            Some(m) if m & S_IFMT != 0 || m & 0o777 != 0 => m & 0o777,
            _ => default,
        };
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(Error::io_at("set permissions", path))
    }
    #[cfg(not(unix))]
    {
        let _ = (default, S_IFMT);
        if mode.is_some_and(|m| m & 0o222 == 0) {
            crate::atomic::make_read_only(path)?;
        }
        Ok(())
    }
}
