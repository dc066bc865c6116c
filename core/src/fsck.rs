//! `Store::fsck`: find what a crash (or a hand edit) left inconsistent, and mend it.
//!
//! What is checked: crates a killed bump left incomplete, temporary files of killed publishes
//! and copies, missing sections, unreadable metadata, a version hint behind the newest crate,
//! two directories for one version (`v01` and `v001`), and stray entries.
//!
//! Work in progress is never touched: a crate marker or temporary name records its owner's
//! host and process id; it counts as abandoned when that process is gone (same host) or when
//! it is older than [`GRACE`] (another host).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::atomic::TEMP_PREFIX;
use crate::capsule::Capsule;
use crate::error::{Error, Result};
use crate::krate::{Crate, CrateMetadata, Section, INCOMPLETE_MARKER, METADATA_FILE};
use crate::store::{Store, INTERNAL_DIR};

/// How old an unfinished piece of work of another host must be before fsck calls it abandoned.
pub const GRACE: Duration = Duration::from_secs(3600);
/// The tag fsck puts on a crate it completed.
pub const RECOVERED_TAG: &str = "fsck-recovered";
/// The tag fsck puts on a crate whose lost metadata it rebuilt, keeping every file.
pub const REBUILT_TAG: &str = "fsck-rebuilt";

/// The kinds of problem fsck reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A crate without metadata whose bump was interrupted. Repair: empty it and complete it
    /// (the number stays taken, so no version is skipped or reused).
    IncompleteCrate,
    /// A crate being made right now by a live process (reported, never repaired).
    InProgressCrate,
    /// A leftover temporary file or directory. Repair: remove it.
    StaleTemp,
    /// A complete crate lacks a section directory. Repair: create it.
    MissingSection,
    /// The metadata does not parse (reported only).
    BadMetadata,
    /// The version hint is missing or behind the newest crate. Repair: raise it.
    StaleHint,
    /// Two directories name the same version (`v01`, `v001`) (reported only).
    DuplicateVersion,
    /// An entry capsa does not know in a capsule (reported only).
    StrayEntry,
    /// A symbolic link where capsa writes (a capsule, crate, section or `.capsa` directory),
    /// or a link in a crate leading outside the store. Writes refuse it (`UNSAFE_PATH`);
    /// reported only: the link and what it leads to are left for a person to judge.
    UnsafeLink,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsckProblem {
    /// What kind.
    pub kind: ProblemKind,
    /// Where, relative to the store root.
    pub path: PathBuf,
    /// A readable explanation.
    pub detail: String,
    /// Whether `repair` mended it.
    pub repaired: bool,
}

/// The result of [`Store::fsck`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsckReport {
    /// Capsules looked at.
    pub capsules: usize,
    /// Crate directories looked at.
    pub crates: usize,
    /// What was found, in walk order.
    pub problems: Vec<FsckProblem>,
}

impl FsckReport {
    /// True when nothing is left unrepaired.
    pub fn is_clean(&self) -> bool {
        self.problems.iter().all(|p| p.repaired)
    }
}

/// The owner stamp written into in-progress markers: `host pid unix-seconds`.
pub(crate) fn owner_stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{} {} {secs}\n", crate::sys::host_tag(), std::process::id())
}

/// Is work owned by (`host`, `pid`), last touched at `path`'s mtime, abandoned?
fn abandoned(host: Option<&str>, pid: Option<u32>, path: &Path) -> bool {
    if let (Some(h), Some(p)) = (host, pid) {
        if h == crate::sys::host_tag() {
            return p != std::process::id() && !crate::sys::process_alive(p);
        }
    }
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age > GRACE)
}

/// Owner of a temporary name `.capsa-tmp-WHAT-HOST-PID-N-NANOS`.
fn temp_owner(name: &str) -> (Option<&str>, Option<u32>) {
    let parts: Vec<&str> = name.trim_start_matches(TEMP_PREFIX).rsplit('-').collect();
    match parts.as_slice() {
        [_nanos, _n, pid, host, ..] => (Some(*host), pid.parse().ok()),
        _ => (None, None),
    }
}

struct Walk<'a> {
    store: &'a Store,
    repair: bool,
    report: FsckReport,
}

impl Walk<'_> {
    fn rel(&self, p: &Path) -> PathBuf {
        p.strip_prefix(self.store.root()).unwrap_or(p).to_path_buf()
    }

    fn add(
        &mut self,
        kind: ProblemKind,
        path: &Path,
        detail: String,
        fix: impl FnOnce() -> Result<()>,
    ) {
        let repairable = !matches!(
            kind,
            ProblemKind::InProgressCrate
                | ProblemKind::BadMetadata
                | ProblemKind::DuplicateVersion
                | ProblemKind::StrayEntry
                | ProblemKind::UnsafeLink
        );
        let repaired = if self.repair && repairable {
            match fix() {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "fsck could not repair");
                    false
                }
            }
        } else {
            false
        };
        let path = self.rel(path);
        self.report.problems.push(FsckProblem {
            kind,
            path,
            detail,
            repaired,
        });
    }

    fn stale_temp(&mut self, path: &Path) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let (host, pid) = temp_owner(name);
        if abandoned(host, pid, path) {
            let p = path.to_path_buf();
            self.add(
                ProblemKind::StaleTemp,
                path,
                "temporary file left by an interrupted write".into(),
                move || remove_any(&p),
            );
        }
    }

    /// Look for temporary names anywhere below `dir`.
    fn temps_below(&mut self, dir: &Path) -> Result<()> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries {
            let entry = entry.map_err(Error::io_at("list", dir))?;
            let path = entry.path();
            let is_temp = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(TEMP_PREFIX));
            let ft = entry.file_type().ok();
            if is_temp {
                self.stale_temp(&path);
            } else if ft.is_some_and(|t| t.is_symlink()) {
                if crate::beneath::leads_outside(self.store.root(), &path) {
                    let detail = "symbolic link leading outside the store".to_string();
                    self.add(ProblemKind::UnsafeLink, &path, detail, || Ok(()));
                }
            } else if ft.is_some_and(|t| t.is_dir()) {
                self.temps_below(&path)?;
            }
        }
        Ok(())
    }

    fn capsule(&mut self, capsule: &Capsule) -> Result<()> {
        self.report.capsules += 1;
        let internal = capsule.path().join(INTERNAL_DIR);
        if fs::symlink_metadata(&internal).is_ok_and(|m| m.file_type().is_symlink()) {
            let detail = "the capsule's .capsa directory is a symbolic link".to_string();
            self.add(ProblemKind::UnsafeLink, &internal, detail, || Ok(()));
        }
        let dirs = capsule.version_dirs()?;
        let max = dirs.iter().map(|(v, _)| v.number()).max().unwrap_or(0);
        let padding = self.store.padding();
        for pair in dirs.windows(2) {
            if pair[0].0 == pair[1].0 {
                let p = capsule.path().join(&pair[1].1);
                let detail = format!("{} and {} are the same version", pair[0].1, pair[1].1);
                self.add(ProblemKind::DuplicateVersion, &p, detail, || Ok(()));
            }
        }
        for (version, name) in &dirs {
            self.report.crates += 1;
            let krate = Crate::new(capsule.clone(), *version, capsule.path().join(name));
            if name.len() < version.padded(padding).len() {
                let detail = format!("name {name} is narrower than the store padding {padding}");
                self.add(ProblemKind::StrayEntry, krate.path(), detail, || Ok(()));
            }
            self.krate(capsule, &krate)?;
        }
        // The hint must name the newest directory exactly: behind costs rescans, ahead (a
        // number nothing backs) would make bump skip numbers.
        let head = capsule.read_head();
        let hint_file = capsule
            .path()
            .join(INTERNAL_DIR)
            .join(crate::capsule::HEAD_FILE);
        let hint_present = fs::symlink_metadata(&hint_file).is_ok();
        if head != Some(max) && (max > 0 || hint_present) {
            let shown = match head {
                Some(h) => h.to_string(),
                None if hint_present => "unreadable".to_string(),
                None => "missing".to_string(),
            };
            let detail = format!("version hint is {shown} but the newest crate is {max}");
            let c = capsule.clone();
            self.add(ProblemKind::StaleHint, &hint_file, detail, move || {
                c.set_head(max);
                Ok(())
            });
        }
        for entry in fs::read_dir(capsule.path()).map_err(Error::io_at("list", capsule.path()))? {
            let entry = entry.map_err(Error::io_at("list", capsule.path()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == INTERNAL_DIR || dirs.iter().any(|(_, n)| *n == name) {
                continue;
            }
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                let detail = "symbolic link in a capsule: writes refuse it".to_string();
                self.add(ProblemKind::UnsafeLink, &entry.path(), detail, || Ok(()));
            } else if name.starts_with(TEMP_PREFIX) {
                self.stale_temp(&entry.path());
            } else if !name.starts_with(".capsa") {
                let detail = "not a crate version directory".to_string();
                self.add(ProblemKind::StrayEntry, &entry.path(), detail, || Ok(()));
            }
        }
        Ok(())
    }

    fn krate(&mut self, capsule: &Capsule, krate: &Crate) -> Result<()> {
        let marker = krate.path().join(INCOMPLETE_MARKER);
        if !krate.path().join(METADATA_FILE).is_file() {
            let stamp = crate::safe_file::read_small_text(
                &marker,
                crate::safe_file::Links::Refuse,
                4096,
                "in-progress marker",
            )
            .unwrap_or_default();
            let mut it = stamp.split_whitespace();
            let (host, pid) = (it.next(), it.next().and_then(|p| p.parse().ok()));
            let probe = if marker.exists() {
                &marker
            } else {
                krate.path()
            };
            if !abandoned(host, pid, probe) {
                let detail = "a bump is filling this crate right now".to_string();
                self.add(
                    ProblemKind::InProgressCrate,
                    krate.path(),
                    detail,
                    || Ok(()),
                );
                return Ok(());
            }
            let detail = if holds_files(krate.path(), true) {
                "no metadata: readers skip this crate; repair rebuilds its metadata and keeps every file"
            } else {
                "no metadata: an interrupted bump left this crate incomplete; readers skip it"
            }
            .to_string();
            let (c, k) = (capsule.clone(), krate.clone());
            self.add(
                ProblemKind::IncompleteCrate,
                krate.path(),
                detail,
                move || complete_abandoned(&c, &k),
            );
            return Ok(());
        }
        if marker.exists() {
            let m = marker.clone();
            self.add(
                ProblemKind::StaleTemp,
                &marker,
                "in-progress marker left in a complete crate".into(),
                move || remove_any(&m),
            );
        }
        if let Err(e) = krate.metadata() {
            self.add(
                ProblemKind::BadMetadata,
                &krate.path().join(METADATA_FILE),
                e.to_string(),
                || Ok(()),
            );
        }
        for section in Section::ALL {
            let dir = krate.section(section);
            if fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
                let detail = format!("section {section} is a symbolic link: writes refuse it");
                self.add(ProblemKind::UnsafeLink, &dir, detail, || Ok(()));
                continue;
            }
            if !dir.is_dir() {
                let d = dir.clone();
                self.add(
                    ProblemKind::MissingSection,
                    &dir,
                    format!("section {section} is missing"),
                    move || fs::create_dir_all(&d).map_err(Error::io_at("create directory", &d)),
                );
            }
        }
        self.temps_below(krate.path())
    }
}

/// Does `dir` hold anything but directories (and the in-progress marker at its top)? A killed
/// bump before its carry-over leaves only empty scaffolding; anything else may be user data.
fn holds_files(dir: &Path, top: bool) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        // Unreadable: assume it holds something, never delete what we cannot see.
        return true;
    };
    for entry in entries {
        let Ok(entry) = entry else { return true };
        if top && entry.file_name() == INCOMPLETE_MARKER {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                if holds_files(&entry.path(), false) {
                    return true;
                }
            }
            _ => return true,
        }
    }
    false
}

/// Complete an abandoned crate so its number stays taken and readers see it. Nothing a user
/// may have put there is ever deleted: a crate holding files gets rebuilt metadata (marked
/// `rebuilt`) and keeps every file; only the empty scaffolding of a killed bump is reset.
fn complete_abandoned(capsule: &Capsule, krate: &Crate) -> Result<()> {
    let keep = holds_files(krate.path(), true);
    if !keep {
        for entry in fs::read_dir(krate.path()).map_err(Error::io_at("list", krate.path()))? {
            let entry = entry.map_err(Error::io_at("list", krate.path()))?;
            if entry.file_name() != INCOMPLETE_MARKER {
                // Directories only (holds_files said so): remove_dir refuses anything else.
                remove_empty_tree(&entry.path())?;
            }
        }
    }
    for section in Section::ALL {
        let d = krate.section(section);
        if !d.is_dir() {
            fs::create_dir(&d).map_err(Error::io_at("create directory", &d))?;
        }
    }
    let parent = capsule
        .crates()?
        .into_iter()
        .rev()
        .find(|c| c.version() < krate.version())
        .map(|c| c.version_str());
    let comment = if keep {
        "rebuilt by capsa fsck: the crate had lost its metadata; every file was kept"
    } else {
        "recovered by capsa fsck: an interrupted bump left this crate empty"
    };
    let mut meta = CrateMetadata::new(
        krate.version_str(),
        "capsa fsck".into(),
        Some(comment.into()),
        parent,
        vec![if keep { REBUILT_TAG } else { RECOVERED_TAG }.into()],
    );
    meta.rebuilt = keep;
    krate.write_metadata(&meta)?;
    let marker = krate.path().join(INCOMPLETE_MARKER);
    if marker.exists() {
        fs::remove_file(&marker).map_err(Error::io_at("remove", &marker))?;
    }
    capsule.write_head(krate.version().number());
    Ok(())
}

/// Remove a tree of empty directories; fails (removing nothing more) on any file.
fn remove_empty_tree(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).map_err(Error::io_at("stat", path))?;
    if !meta.is_dir() {
        return Err(Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "fsck removes only empty directories of an interrupted bump".into(),
        });
    }
    for entry in fs::read_dir(path).map_err(Error::io_at("list", path))? {
        let entry = entry.map_err(Error::io_at("list", path))?;
        remove_empty_tree(&entry.path())?;
    }
    fs::remove_dir(path).map_err(Error::io_at("remove", path))
}

/// Remove a file or a directory tree, read-only files included.
fn remove_any(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).map_err(Error::io_at("stat", path))?;
    if meta.is_dir() {
        fs::remove_dir_all(path).map_err(Error::io_at("remove", path))
    } else {
        if meta.permissions().readonly() {
            let mut perms = meta.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            let _ = fs::set_permissions(path, perms);
        }
        fs::remove_file(path).map_err(Error::io_at("remove", path))
    }
}

impl Store {
    /// Check the whole store; with `repair`, mend what can be mended safely.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport> {
        let mut walk = Walk {
            store: self,
            repair,
            report: FsckReport::default(),
        };
        let scratch = self.internal_dir().join("tmp");
        // A link in place of `.capsa` or its scratch directory is reported, never entered:
        // repair would remove what is at the other end.
        let linked = [self.internal_dir(), scratch.clone()]
            .into_iter()
            .find(|p| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()));
        if let Some(link) = linked {
            let detail = "capsa's own directory is a symbolic link: writes refuse it".to_string();
            walk.add(ProblemKind::UnsafeLink, &link, detail, || Ok(()));
        } else {
            if let Ok(entries) = fs::read_dir(&scratch) {
                for entry in entries.flatten() {
                    walk.stale_temp(&entry.path());
                }
            }
            if let Ok(entries) = fs::read_dir(self.internal_dir()) {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                        walk.stale_temp(&entry.path());
                    }
                }
            }
        }
        for entry in fs::read_dir(self.root()).map_err(Error::io_at("list", self.root()))? {
            let entry = entry.map_err(Error::io_at("list", self.root()))?;
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                let detail = "symbolic link at the store root: writes refuse it".to_string();
                walk.add(ProblemKind::UnsafeLink, &entry.path(), detail, || Ok(()));
            }
        }
        for capsule in self.capsules()? {
            walk.capsule(&capsule)?;
        }
        Ok(walk.report)
    }
}
