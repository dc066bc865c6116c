//! Offline capsules: content moved out to a verified archive, a stub left behind.
//!
//! ```text
//! <capsule>/.capsa/offline.json   the stub: where the archive is and its SHA-256
//! ```
//!
//! The stub is written *before* any content is removed, so a crash half-way leaves a capsule
//! that is offline (and retrievable from its verified archive), never one that silently lost
//! files.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::format::{EntryKind, ZipIndex};
use super::plan::{parse_manifest, plan, read_small, symlink_targets};
use super::restore::{restore_into, TempDir};
use super::write::{walk, Scope};
use super::{verify_with, Policy, RestoreOptions, VerifyOptions, MANIFEST_NAME};
use crate::atomic;
use crate::capsule::{Capsule, HEAD_FILE};
use crate::error::{Error, Result};
use crate::store::{Store, INTERNAL_DIR};

/// The stub's file name inside the capsule's `.capsa/` directory.
pub const OFFLINE_FILE: &str = "offline.json";

/// What an offline capsule records about its archive (`<capsule>/.capsa/offline.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineStub {
    /// Stub layout version.
    pub format: u32,
    /// The capsule id.
    pub capsule: String,
    /// The archive: relative to the store root (with `/`) when it lies inside the store, so
    /// the store stays portable; otherwise absolute; or the `s3://bucket/key` URL of an
    /// archive in a bucket.
    pub archive: String,
    /// SHA-256 of the whole archive file.
    pub archive_sha256: String,
    /// Size of the archive file.
    pub archive_bytes: u64,
    /// Files in the capsule.
    pub files: u64,
    /// Bytes of file content in the capsule.
    pub bytes: u64,
    /// When the capsule went offline.
    pub taken_offline_at: chrono::DateTime<chrono::Utc>,
}

impl OfflineStub {
    /// The archive's path for `store` (an `s3://` URL is returned as is: every archive
    /// function accepts it as a path).
    pub fn archive_path(&self, store: &Store) -> PathBuf {
        if super::target::is_url(&self.archive) {
            return PathBuf::from(&self.archive);
        }
        let p = Path::new(&self.archive);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        let mut out = store.root().to_path_buf();
        for part in self.archive.split('/') {
            out.push(part);
        }
        out
    }
}

/// Verify every entry and the SHA-256 of the whole archive file (recorded in the stub).
fn verify_whole(archive: &Path) -> Result<super::VerifyReport> {
    let whole = VerifyOptions {
        archive_sha256: true,
        ..Default::default()
    };
    verify_with(archive, whole)
}

fn stub_path(capsule: &Capsule) -> PathBuf {
    capsule.path().join(INTERNAL_DIR).join(OFFLINE_FILE)
}

/// [`Capsule::is_offline`].
pub(crate) fn is_offline(capsule: &Capsule) -> bool {
    stub_path(capsule).is_file()
}

/// [`Capsule::offline_stub`].
pub(crate) fn offline_stub(capsule: &Capsule) -> Result<Option<OfflineStub>> {
    let path = stub_path(capsule);
    let read = crate::safe_file::read_small(
        &path,
        crate::safe_file::Links::Refuse,
        crate::safe_file::limits::OFFLINE_STUB,
        "offline stub",
    );
    match read {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::corrupt(&path, format!("offline stub does not parse: {e}"))),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`Capsule::take_offline`]: the stub is written before any content is moved out.
pub(crate) fn take_offline(capsule: &Capsule, archive_path: &Path) -> Result<OfflineStub> {
    if is_offline(capsule) {
        return Err(Error::InvalidArgument {
            what: "capsule",
            reason: format!("{} is offline already", capsule.id()),
        });
    }
    // The stub and the trash are written beneath the store, never through a link.
    crate::beneath::check(capsule.store().root(), &stub_path(capsule))?;
    let (bucket, archive_abs) = match super::ArchiveTarget::parse(archive_path)? {
        super::ArchiveTarget::Bucket(url) => (Some(url.clone()), PathBuf::from(url)),
        super::ArchiveTarget::Local(p) => (
            None,
            fs::canonicalize(&p).map_err(|e| super::open_error(&p, e))?,
        ),
    };
    let report = verify_whole(&archive_abs)?;
    if report.capsule != capsule.id().as_str() {
        return Err(Error::InvalidArgument {
            what: "archive",
            reason: format!(
                "{} holds capsule {}, not {}",
                archive_path.display(),
                report.capsule,
                capsule.id()
            ),
        });
    }
    check_matches(capsule, &archive_abs)?;
    let root = fs::canonicalize(capsule.store().root())
        .map_err(Error::io_at("resolve", capsule.store().root()))?;
    let archive = match (&bucket, archive_abs.strip_prefix(&root)) {
        (Some(url), _) => url.clone(),
        (None, Ok(rel)) => rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/"),
        (None, Err(_)) => archive_abs.display().to_string(),
    };
    if bucket.is_none()
        && archive_abs.starts_with(fs::canonicalize(capsule.path()).unwrap_or_default())
    {
        return Err(Error::InvalidArgument {
            what: "archive",
            reason: "the archive lies inside the capsule it would replace".into(),
        });
    }
    let stub = OfflineStub {
        format: 1,
        capsule: capsule.id().to_string(),
        archive,
        archive_sha256: report.archive_sha256.clone().unwrap_or_default(),
        archive_bytes: report.archive_bytes,
        files: report.files,
        bytes: report.bytes,
        taken_offline_at: chrono::Utc::now(),
    };
    let json = serde_json::to_vec_pretty(&stub).map_err(|e| Error::InvalidArgument {
        what: "offline stub",
        reason: e.to_string(),
    })?;
    let internal = capsule.path().join(INTERNAL_DIR);
    fs::create_dir_all(&internal).map_err(Error::io_at("create directory", &internal))?;
    atomic::write_file(&stub_path(capsule), &json)?;
    // Move the content out of the capsule in one rename per top-level entry, then delete.
    let trash = atomic::temp_path(&capsule.store().scratch_dir()?, "offline");
    fs::create_dir(&trash).map_err(Error::io_at("create directory", &trash))?;
    let guard = TempDir(Some(trash.clone()));
    for entry in fs::read_dir(capsule.path()).map_err(Error::io_at("list", capsule.path()))? {
        let entry = entry.map_err(Error::io_at("list", capsule.path()))?;
        if entry.file_name() == INTERNAL_DIR {
            continue;
        }
        let to = trash.join(entry.file_name());
        fs::rename(entry.path(), &to).map_err(Error::io_at("move", &entry.path()))?;
    }
    drop(guard);
    tracing::info!(capsule = %capsule.id(), archive = %stub.archive, "taken offline");
    Ok(stub)
}

/// The archive must hold exactly the capsule's tree as it is now, byte for byte: every
/// live file is stream-hashed (SHA-256) against the archive's manifest, every symlink
/// target and kind compared, and nothing may be missing or extra. `Changed` names the
/// first difference.
fn check_matches(capsule: &Capsule, archive: &Path) -> Result<()> {
    let source = super::source::open(archive)?;
    let index = ZipIndex::open(archive, &*source)?;
    let plan = plan(archive, &index, None)?;
    let Some(manifest_entry) = plan.manifest else {
        return Err(Error::InvalidArgument {
            what: "archive",
            reason: format!(
                "{} has no {MANIFEST_NAME}: it cannot prove it holds capsule {}; archive \
                 it again with capsa",
                archive.display(),
                capsule.id()
            ),
        });
    };
    let text = read_small(archive, &*source, &index, manifest_entry, 1 << 30)?;
    let manifest = parse_manifest(archive, &text)?;
    let targets = symlink_targets(archive, &*source, &index, &plan)?;
    let mut in_archive: HashMap<&str, (EntryKind, usize)> = plan
        .items
        .iter()
        .map(|i| {
            let e = &index.entries[i.entry];
            let name = e.name.as_str();
            (name.strip_suffix('/').unwrap_or(name), (i.kind, i.entry))
        })
        .collect();
    let stale = |src: &Path, what: String| Error::Changed {
        path: src.to_path_buf(),
        reason: format!(
            "{what}: {} does not hold capsule {} as it is now; archive it again",
            archive.display(),
            capsule.id()
        ),
    };
    // The version hint is not content: the archive holds the one it was consistent
    // with, and a bump since then fails the check on its new crate anyway.
    let head = format!("{}/{INTERNAL_DIR}/{HEAD_FILE}", capsule.id());
    in_archive.remove(head.as_str());
    for item in walk(capsule, Policy::Store, Scope::Everything)?.items {
        if item.name == head {
            continue;
        }
        let key = item.name.strip_suffix('/').unwrap_or(&item.name);
        let Some((kind, entry)) = in_archive.remove(key) else {
            return Err(stale(&item.src, "not in the archive".into()));
        };
        if kind != item.kind {
            return Err(stale(
                &item.src,
                format!("a {:?} now, a {kind:?} in the archive", item.kind),
            ));
        }
        match kind {
            EntryKind::Dir => {}
            EntryKind::Symlink => {
                let now = item.target.as_deref().unwrap_or_default();
                let was = targets.get(&entry).map(String::as_str).unwrap_or_default();
                if now != was {
                    return Err(stale(
                        &item.src,
                        format!("symlink points to {now:?} now, to {was:?} in the archive"),
                    ));
                }
            }
            EntryKind::File => {
                let Some(want) = manifest.get(&index.entries[entry].name) else {
                    return Err(stale(&item.src, format!("not in {MANIFEST_NAME}")));
                };
                let (size, sha) = hash_file(&item.src)?;
                if size != index.entries[entry].uncompressed {
                    return Err(stale(
                        &item.src,
                        format!(
                            "{size} bytes now, {} in the archive",
                            index.entries[entry].uncompressed
                        ),
                    ));
                }
                if &sha != want {
                    return Err(stale(
                        &item.src,
                        "content differs from the archive (SHA-256)".into(),
                    ));
                }
            }
        }
    }
    if let Some(name) = in_archive.keys().min() {
        return Err(stale(
            &capsule
                .path()
                .join(name.split_once('/').map_or("", |(_, r)| r)),
            "in the archive, no longer in the capsule".into(),
        ));
    }
    Ok(())
}

/// A live file's length and SHA-256 (lower-case hex), streamed by
/// [`sha256_source`](super::verify::sha256_source). Opened without blocking on a FIFO or
/// following a link put in place of the file walked.
fn hash_file(path: &Path) -> Result<(u64, String)> {
    use super::source::Source;
    let file = crate::safe_file::open_regular(path, crate::safe_file::Links::Refuse, "file")?;
    let size = file.size().map_err(Error::io_at("stat", path))?;
    let sha = super::verify::sha256_source(path, &file, &super::CancelToken::default())?;
    Ok((size, sha))
}

/// [`Store::retrieve`].
pub(crate) fn retrieve(store: &Store, id: &str) -> Result<Capsule> {
    let capsule = store.capsule(id)?;
    let Some(stub) = offline_stub(&capsule)? else {
        return Err(Error::InvalidArgument {
            what: "capsule",
            reason: format!("{id} is not offline"),
        });
    };
    let archive = stub.archive_path(store);
    let report = verify_whole(&archive)?;
    if report.archive_sha256.as_deref() != Some(stub.archive_sha256.as_str()) {
        return Err(Error::corrupt(
            &archive,
            format!(
                "SHA-256 is {}, the offline stub of {id} recorded {}: not the archive it \
                 was taken offline with",
                report.archive_sha256.unwrap_or_default(),
                stub.archive_sha256
            ),
        ));
    }
    let restored = restore_into(
        &archive,
        store,
        &RestoreOptions::default(),
        Some(capsule.id()),
    )?;
    tracing::info!(capsule = %id, "retrieved");
    Ok(restored)
}
