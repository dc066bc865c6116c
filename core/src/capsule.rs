//! A Capsule: one directory per project-management entry, holding Crates `v001`, `v002`, ….
//!
//! ```text
//! <capsule>/.capsa/head        hint: the highest version number reserved so far
//! <capsule>/v001/              a Crate (see [`crate::krate`])
//! ```
//!
//! # Bump
//!
//! A bump reserves the next version by creating its directory: `mkdir` is atomic on local
//! disks and network mounts alike, so of two writers racing for `v007` exactly one succeeds
//! and the other moves on to `v008`. The search starts just above the `head` hint, so the
//! cost does not grow with the number of crates. Every number below the hint has been
//! reserved, so no number is skipped. The reserved directory carries an in-progress marker
//! until the crate's metadata is written (the last step), and readers skip crates without
//! metadata: nobody sees a half-made Crate. `Store::fsck` finds crates a crash left behind.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::archive::offline::{self, OfflineStub};
use crate::atomic::{self, CopyMethod};
use crate::error::{Error, Result};
use crate::id::CapsuleId;
use crate::krate::{Crate, CrateMetadata, Section, INCOMPLETE_MARKER};
use crate::store::{Store, INTERNAL_DIR};
use crate::version::Version;

/// The hint file (inside the capsule's `.capsa/`) holding the highest reserved number.
pub(crate) const HEAD_FILE: &str = "head";
/// After this many taken numbers above the hint, stop walking and rescan the directory.
const WALK_LIMIT: u32 = 4096;

/// Options for [`Capsule::bump`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BumpOptions {
    /// A comment stored in the new crate's metadata.
    pub comment: Option<String>,
    /// Sections whose files are brought over from the previous crate (the DCC "version up").
    pub carry_over: Vec<Section>,
    /// Who bumps; defaults to the `USER` / `USERNAME` environment variable.
    pub created_by: Option<String>,
    /// Free-form tags stored in the metadata.
    pub tags: Vec<String>,
}

/// A capsule as the CLI and the server show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapsuleInfo {
    /// The id.
    pub id: String,
    /// Its newest crate's version (`v003`), if any.
    pub latest: Option<String>,
    /// Whether its content lives in an archive.
    pub offline: bool,
}

/// What a carry-over brought into a new crate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarryStats {
    /// Files cloned copy-on-write.
    pub reflinked: u64,
    /// Read-only files hard-linked.
    pub hardlinked: u64,
    /// Files copied byte for byte.
    pub copied: u64,
    /// Files whose name had a version token renamed.
    pub renamed: u64,
}

/// A Capsule in a store.
#[derive(Clone)]
pub struct Capsule {
    store: Store,
    id: CapsuleId,
    path: PathBuf,
}

impl std::fmt::Debug for Capsule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capsule")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish()
    }
}

impl Capsule {
    pub(crate) fn new(store: Store, id: CapsuleId, path: PathBuf) -> Capsule {
        Capsule { store, id, path }
    }

    /// The capsule's id.
    pub fn id(&self) -> &CapsuleId {
        &self.id
    }

    /// The capsule's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store it belongs to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `<capsule>/.capsa`, created on demand.
    pub(crate) fn internal_dir(&self) -> Result<PathBuf> {
        let dir = self.path.join(INTERNAL_DIR);
        crate::beneath::check(self.store.root(), &dir)?;
        fs::create_dir_all(&dir).map_err(Error::io_at("create directory", &dir))?;
        Ok(dir)
    }

    fn crate_at(&self, version: Version) -> Crate {
        let path = self.path.join(version.padded(self.store.padding()));
        Crate::new(self.clone(), version, path)
    }

    /// Allocate the next crate. Safe with any number of threads, processes and hosts bumping
    /// the same capsule at once: each gets a distinct version, none is skipped.
    pub fn bump(&self, options: BumpOptions) -> Result<Crate> {
        self.bump_with_stats(options).map(|(c, _)| c)
    }

    /// [`Capsule::bump`], also reporting how carried-over files were brought over.
    pub fn bump_with_stats(&self, options: BumpOptions) -> Result<(Crate, CarryStats)> {
        if !self.path.is_dir() {
            return Err(Error::NotFound {
                what: "capsule",
                name: self.id.to_string(),
            });
        }
        crate::beneath::check(self.store.root(), &self.path)?;
        if let Some(stub) = self.offline_stub()? {
            return Err(Error::InvalidArgument {
                what: "capsule",
                reason: format!(
                    "{} is offline (archived to {}); retrieve it before adding crates",
                    self.id, stub.archive
                ),
            });
        }
        let version = self.reserve()?;
        let krate = self.crate_at(version);
        match self.fill(&krate, &options) {
            Ok(stats) => {
                tracing::info!(capsule = %self.id, version = %krate.version_str(), "bumped");
                Ok((krate, stats))
            }
            Err(e) => {
                // Nobody has seen this crate complete: give the number back, directory and
                // hint alike, so the next bump reuses it.
                let _ = fs::remove_dir_all(krate.path());
                if self.read_head() == Some(version.number()) && !krate.path().exists() {
                    self.set_head(self.scan_max().unwrap_or(0));
                }
                Err(e)
            }
        }
    }

    /// Reserve a version number by creating its directory.
    fn reserve(&self) -> Result<Version> {
        // The hint only speeds up finding the top: it is used when the directory backs it.
        let hint = self.read_head().filter(|&h| self.hint_backed(h));
        let mut candidate = match hint {
            Some(n) => n.saturating_add(1),
            None => next_number(self.scan_max()?)?,
        };
        let mut walked = 0;
        loop {
            let version = Version::new(candidate)?;
            let path = self.path.join(version.padded(self.store.padding()));
            match fs::create_dir(&path) {
                Ok(()) => {
                    self.raise_head(candidate);
                    return Ok(version);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    walked += 1;
                    candidate = if walked == WALK_LIMIT {
                        next_number(self.scan_max()?.max(candidate))?
                    } else {
                        version.next()?.number()
                    };
                }
                Err(e) => return Err(Error::io("create crate", &path, e)),
            }
        }
    }

    fn head_path(&self) -> PathBuf {
        self.path.join(INTERNAL_DIR).join(HEAD_FILE)
    }

    /// The hint, if present and readable (a regular file of at most
    /// [`limits::VERSION_HINT`](crate::safe_file::limits::VERSION_HINT) bytes holding a number).
    pub(crate) fn read_head(&self) -> Option<u32> {
        use crate::safe_file::{limits, read_small_text, Links};
        read_small_text(
            &self.head_path(),
            Links::Refuse,
            limits::VERSION_HINT,
            "version hint",
        )
        .ok()
        .and_then(|s| s.trim().parse().ok())
    }

    /// Whether the hint `h` is backed by the directory: 0 with no crate, or a number whose
    /// directory exists (in any width). A hint pointing above every directory is stale.
    pub(crate) fn hint_backed(&self, h: u32) -> bool {
        if h == 0 {
            return self.scan_max().is_ok_and(|m| m == 0);
        }
        let Ok(v) = Version::new(h) else { return false };
        if self.path.join(v.padded(self.store.padding())).is_dir() {
            return true;
        }
        self.version_dirs()
            .is_ok_and(|dirs| dirs.iter().any(|(d, _)| *d == v))
    }

    /// Set the hint to `n`, lower or higher (best effort, as [`Capsule::write_head`]).
    pub(crate) fn set_head(&self, n: u32) {
        let result = self
            .internal_dir()
            .and_then(|_| atomic::write_hint(&self.head_path(), format!("{n}\n").as_bytes()));
        if let Err(e) = result {
            tracing::warn!(capsule = %self.id, error = %e, "could not update the version hint");
        }
    }

    /// After reserving `n`: raise the hint to `n`, or set it to `n` when it is not backed by
    /// the directory. Processes bumping at once do this under an exclusive `flock` of the
    /// capsule's `.capsa` directory, so a slower one never lowers the hint another raised
    /// (a lagging hint costs extra `mkdir`s and is reported by fsck).
    fn raise_head(&self, n: u32) {
        let lock = self
            .internal_dir()
            .ok()
            .and_then(|_| fs::File::open(self.path.join(INTERNAL_DIR)).ok());
        if let Some(f) = &lock {
            crate::sys::lock_exclusive(f);
        }
        match self.read_head() {
            Some(h) if h >= n && self.hint_backed(h) => {}
            _ => self.set_head(n),
        }
        drop(lock);
    }

    /// Raise the hint to `n` (best effort: the hint only saves work; a lost or stale one
    /// costs a rescan or a few extra `mkdir`s, never a wrong version).
    pub(crate) fn write_head(&self, n: u32) {
        if self.read_head().is_some_and(|h| h >= n) {
            return;
        }
        self.set_head(n);
    }

    /// The highest version number with a directory, complete or not (0 if none).
    pub(crate) fn scan_max(&self) -> Result<u32> {
        Ok(self
            .version_dirs()?
            .into_iter()
            .map(|(v, _)| v.number())
            .max()
            .unwrap_or(0))
    }

    /// Every directory whose name parses as a version, with its name.
    pub(crate) fn version_dirs(&self) -> Result<Vec<(Version, String)>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.path) {
            Ok(entries) => entries,
            // The capsule directory itself is gone: the same NOT_FOUND as `bump`.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    what: "capsule",
                    name: self.id.to_string(),
                })
            }
            Err(e) => return Err(Error::io("list", &self.path, e)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io_at("list", &self.path))?;
            if let Some(name) = entry.file_name().to_str() {
                if let Ok(v) = Version::parse(name) {
                    if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        out.push((v, name.to_string()));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn fill(&self, krate: &Crate, options: &BumpOptions) -> Result<CarryStats> {
        let marker = krate.path().join(INCOMPLETE_MARKER);
        fs::write(&marker, crate::fsck::owner_stamp()).map_err(Error::io_at("write", &marker))?;
        for section in Section::ALL {
            let dir = krate.section(section);
            fs::create_dir(&dir).map_err(Error::io_at("create directory", &dir))?;
        }
        let parent = self.complete_below(krate.version())?;
        let mut stats = CarryStats::default();
        if let Some(parent) = &parent {
            for &section in &options.carry_over {
                carry_dir(
                    &parent.section(section),
                    &krate.section(section),
                    parent.version(),
                    krate.version(),
                    &mut stats,
                )?;
            }
        }
        let created_by = options
            .created_by
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("USERNAME").ok())
            .unwrap_or_else(|| "unknown".into());
        let meta = CrateMetadata::new(
            krate.version_str(),
            created_by,
            options.comment.clone(),
            parent.as_ref().map(|p| p.version_str()),
            options.tags.clone(),
        );
        krate.write_metadata(&meta)?;
        fs::remove_file(&marker).map_err(Error::io_at("remove", &marker))?;
        Ok(stats)
    }

    /// The highest complete crate strictly below `version`.
    fn complete_below(&self, version: Version) -> Result<Option<Crate>> {
        let mut v = version.prev();
        // Walk down from the top: O(1) in the common case. Fall back to a listing when the
        // neighbours are missing (deleted crates) to stay bounded.
        for _ in 0..64 {
            let Some(cur) = v else { return Ok(None) };
            let c = self.crate_at(cur);
            if c.is_complete() {
                return Ok(Some(c));
            }
            v = cur.prev();
        }
        Ok(self
            .crates()?
            .into_iter()
            .rev()
            .find(|c| c.version() < version))
    }

    /// Every complete crate, oldest first. Crates still being made are skipped.
    pub fn crates(&self) -> Result<Vec<Crate>> {
        let mut out = Vec::new();
        for (v, name) in self.version_dirs()? {
            let c = Crate::new(self.clone(), v, self.path.join(name));
            if c.is_complete() && out.last().is_none_or(|p: &Crate| p.version() != v) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// A crate by version. `NotFound` if absent or not complete.
    pub fn get(&self, version: Version) -> Result<Crate> {
        let canonical = self.crate_at(version);
        let found = if canonical.path().is_dir() {
            Some(canonical)
        } else {
            // Parsing accepts any width: find `v01` in a padding-3 store too.
            self.version_dirs()?
                .into_iter()
                .find(|(v, _)| *v == version)
                .map(|(v, name)| Crate::new(self.clone(), v, self.path.join(name)))
        };
        match found {
            Some(c) if c.is_complete() => Ok(c),
            _ => Err(Error::NotFound {
                what: "crate",
                name: format!("{}/{}", self.id, version.padded(self.store.padding())),
            }),
        }
    }

    /// The newest complete crate, if any. Walks down from the hint, so it is O(1) in the
    /// common case however many crates there are.
    pub fn latest(&self) -> Result<Option<Crate>> {
        if let Some(head) = self.read_head().and_then(|h| Version::new(h).ok()) {
            // A stale hint may lag behind the newest reservation: trust it only when the
            // number above it is free.
            let above = self.path.join(head.next()?.padded(self.store.padding()));
            if !above.exists() {
                let mut v = Some(head);
                for _ in 0..64 {
                    let Some(cur) = v else { return Ok(None) };
                    let c = self.crate_at(cur);
                    if c.is_complete() {
                        return Ok(Some(c));
                    }
                    v = cur.prev();
                }
            }
        }
        Ok(self.crates()?.pop())
    }

    /// The newest sealed (published) crate, if any.
    pub fn latest_published(&self) -> Result<Option<Crate>> {
        for c in self.crates()?.into_iter().rev() {
            if c.is_published()? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// The capsule as the CLI's `capsule list --json` and the server's API show it
    /// ([`CapsuleInfo`]).
    pub fn info(&self) -> Result<CapsuleInfo> {
        Ok(CapsuleInfo {
            id: self.id().as_str().to_string(),
            latest: self.latest()?.map(|c| c.version_str()),
            offline: self.is_offline(),
        })
    }

    /// Whether the capsule is offline (its content lives in an archive).
    pub fn is_offline(&self) -> bool {
        offline::is_offline(self)
    }

    /// The offline stub, if the capsule is offline.
    pub fn offline_stub(&self) -> Result<Option<OfflineStub>> {
        offline::offline_stub(self)
    }

    /// Take the capsule offline: verify `archive_path` (a path, `file://` or `s3://` URL;
    /// every CRC and SHA-256, read from the bucket by ranged GETs), check that it holds
    /// exactly this capsule's current tree (names, kinds, sizes, SHA-256), write the stub,
    /// then remove the content. Returns the stub.
    ///
    /// `InvalidArgument` if the capsule is offline already or the archive is of another
    /// capsule; `Changed` if the archive is out of date (the capsule's tree differs from it);
    /// `Corrupt` if it does not verify. Nothing is removed then.
    pub fn take_offline(&self, archive_path: impl AsRef<Path>) -> Result<OfflineStub> {
        offline::take_offline(self, archive_path.as_ref())
    }
}

/// The number after `n` (1 after 0); a clean `InvalidVersion` after the largest, never an
/// overflow.
fn next_number(n: u32) -> Result<u32> {
    match n {
        0 => Ok(1),
        n => Ok(Version::new(n)?.next()?.number()),
    }
}

/// Replace version tokens equal to `from` in a file name by `to` (`shot_v002.ma` →
/// `shot_v003.ma`). A token is `v` + digits, not preceded by a letter or digit and not followed
/// by a digit; its width is kept where the new number fits.
pub fn rename_version_tokens(name: &str, from: Version, to: Version) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len() + 1);
    let mut i = 0;
    while i < bytes.len() {
        let at_boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if (bytes[i] == b'v' || bytes[i] == b'V') && at_boundary {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if end > start {
                let digits = &name[start..end];
                if digits.parse::<u32>().ok() == Some(from.number()) {
                    out.push(bytes[i] as char);
                    out.push_str(&format!("{:0w$}", to.number(), w = digits.len()));
                    i = end;
                    continue;
                }
            }
        }
        let ch = name[i..].chars().next().unwrap_or('\u{FFFD}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn carry_dir(
    src: &Path,
    dst: &Path,
    from: Version,
    to: Version,
    stats: &mut CarryStats,
) -> Result<()> {
    let entries = match fs::read_dir(src) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", src, e)),
    };
    let mut entries: Vec<_> = entries
        .collect::<io::Result<_>>()
        .map_err(Error::io_at("list", src))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            // Not UTF-8: carry it under its own name.
            let target = dst.join(entry.file_name());
            carry_entry(&entry.path(), &target, from, to, stats)?;
            continue;
        };
        if name.starts_with(atomic::TEMP_PREFIX) {
            continue;
        }
        let new_name = rename_version_tokens(name, from, to);
        if new_name != name {
            stats.renamed += 1;
        }
        carry_entry(&entry.path(), &dst.join(new_name), from, to, stats)?;
    }
    Ok(())
}

fn carry_entry(
    src: &Path,
    dst: &Path,
    from: Version,
    to: Version,
    stats: &mut CarryStats,
) -> Result<()> {
    let meta = fs::symlink_metadata(src).map_err(Error::io_at("stat", src))?;
    if meta.is_dir() {
        fs::create_dir(dst).map_err(Error::io_at("create directory", dst))?;
        return carry_dir(src, dst, from, to, stats);
    }
    if let Some(kind) = crate::safe_file::irregular_kind(&meta.file_type())
        .filter(|_| !meta.file_type().is_symlink())
    {
        return Err(Error::UnsafePath {
            path: src.to_path_buf(),
            reason: format!("is {kind}; carry-over brings only files, directories and links"),
        });
    }
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(Error::io_at("read link", src))?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, dst).map_err(Error::io_at("create link", dst))?;
        #[cfg(not(unix))]
        {
            let _ = target;
            atomic::place_copy(src, dst, false)?;
        }
        stats.copied += 1;
        return Ok(());
    }
    match atomic::place_copy(src, dst, meta.permissions().readonly())? {
        CopyMethod::Reflink => stats.reflinked += 1,
        CopyMethod::Hardlink => stats.hardlinked += 1,
        CopyMethod::Copy => stats.copied += 1,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u32) -> Version {
        Version::new(n).unwrap()
    }

    #[test]
    fn renames_only_matching_version_tokens() {
        assert_eq!(
            rename_version_tokens("shot_v002.ma", v(2), v(3)),
            "shot_v003.ma"
        );
        assert_eq!(
            rename_version_tokens("shot_v999.ma", v(999), v(1000)),
            "shot_v1000.ma"
        );
        assert_eq!(
            rename_version_tokens("shot_v001.ma", v(2), v(3)),
            "shot_v001.ma"
        );
        assert_eq!(rename_version_tokens("dev002.ma", v(2), v(3)), "dev002.ma");
        assert_eq!(
            rename_version_tokens("a.v2.b.V02", v(2), v(3)),
            "a.v3.b.V03"
        );
        assert_eq!(rename_version_tokens("é_v002_ü", v(2), v(3)), "é_v003_ü");
    }
}
