//! A Crate: one version of a Capsule, holding exactly `artifacts/`, `publishes/`, `scenes/`
//! and a small JSON metadata sidecar.
//!
//! (`crate` is a Rust keyword, hence the module name.)
//!
//! A crate is *complete* once its metadata file exists: it is written last, by
//! write-temp-then-rename. *Publishing* copies a file (or a whole frame sequence) into
//! `publishes/` under a temporary name and renames it into place without replacing anything,
//! read-only. *Sealing* releases the crate: it becomes published and refuses every further
//! write through the library.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::capsule::Capsule;
use crate::error::{shown, Error, Result};
use crate::safe_file::{limits, open_regular, read_small, Links};
use crate::seq::{find_sequences, list_dir, sequences_in, Sequence};
use crate::version::Version;

/// The metadata sidecar inside each crate.
pub const METADATA_FILE: &str = ".capsa-crate.json";
/// Present while a bump is still filling the crate (holds the owner's host and pid).
pub const INCOMPLETE_MARKER: &str = ".capsa-incomplete";
/// The metadata schema this build writes.
pub const METADATA_SCHEMA: u32 = 1;

/// One of the three sections every crate holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    /// Work files and renders: `artifacts/`.
    Artifacts,
    /// Released, read-only files: `publishes/`.
    Publishes,
    /// DCC scene files: `scenes/`.
    Scenes,
}

impl Section {
    /// The three sections, in directory order.
    pub const ALL: [Section; 3] = [Section::Artifacts, Section::Publishes, Section::Scenes];

    /// The directory name (`artifacts`, `publishes`, `scenes`).
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Artifacts => "artifacts",
            Section::Publishes => "publishes",
            Section::Scenes => "scenes",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Section {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Section::ALL
            .into_iter()
            .find(|sec| sec.as_str() == s)
            .ok_or_else(|| Error::InvalidArgument {
                what: "section",
                reason: format!("{:?} is not one of artifacts, publishes, scenes", shown(s)),
            })
    }
}

/// The schema-versioned metadata of a crate (`.capsa-crate.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateMetadata {
    /// Metadata schema version.
    pub schema: u32,
    /// The crate version, formatted at the store's padding (`v003`).
    pub version: String,
    /// Who made the crate.
    pub created_by: String,
    /// When it was made (UTC).
    pub created_at: DateTime<Utc>,
    /// Free-form comment.
    pub comment: Option<String>,
    /// The version this crate followed (`v002`), if any.
    pub parent: Option<String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Sealed (released)?
    #[serde(default)]
    pub published: bool,
    /// When it was sealed.
    #[serde(default)]
    pub published_at: Option<DateTime<Utc>>,
    /// Rebuilt by `capsa fsck --repair` for a crate that had lost its metadata: the files
    /// are the crate's own, the other fields are reconstructed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rebuilt: bool,
}

/// A crate as the CLI's `--json` and the server's API show it: its metadata, the capsule it
/// belongs to, and its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateInfo {
    /// The metadata (its fields appear at the top level).
    #[serde(flatten)]
    pub metadata: CrateMetadata,
    /// The capsule's id.
    pub capsule: String,
    /// The crate's directory.
    pub path: PathBuf,
}

impl CrateMetadata {
    pub(crate) fn new(
        version: String,
        created_by: String,
        comment: Option<String>,
        parent: Option<String>,
        tags: Vec<String>,
    ) -> CrateMetadata {
        CrateMetadata {
            schema: METADATA_SCHEMA,
            version,
            created_by,
            created_at: Utc::now(),
            comment,
            parent,
            tags,
            published: false,
            published_at: None,
            rebuilt: false,
        }
    }
}

/// A crate of a capsule.
#[derive(Clone)]
pub struct Crate {
    capsule: Capsule,
    version: Version,
    path: PathBuf,
}

impl fmt::Debug for Crate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crate")
            .field("capsule", self.capsule.id())
            .field("version", &self.version_str())
            .finish()
    }
}

impl Crate {
    pub(crate) fn new(capsule: Capsule, version: Version, path: PathBuf) -> Crate {
        Crate {
            capsule,
            version,
            path,
        }
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The version as its directory name (`v003`).
    pub fn version_str(&self) -> String {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .unwrap_or_else(|| self.version.padded(self.capsule.store().padding()))
    }

    /// The crate's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The capsule it belongs to.
    pub fn capsule(&self) -> &Capsule {
        &self.capsule
    }

    /// The directory of a section.
    pub fn section(&self, section: Section) -> PathBuf {
        self.path.join(section.as_str())
    }

    /// Complete = its metadata has been written.
    pub fn is_complete(&self) -> bool {
        self.path.join(METADATA_FILE).is_file()
    }

    /// Read the metadata.
    pub fn metadata(&self) -> Result<CrateMetadata> {
        let p = self.path.join(METADATA_FILE);
        let text = read_small(&p, Links::Refuse, limits::CRATE_METADATA, "crate metadata")
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::NotFound {
                    what: "crate",
                    name: format!("{}/{}", self.capsule.id(), self.version_str()),
                },
                e => e,
            })?;
        serde_json::from_slice(&text).map_err(|e| Error::corrupt(&p, e.to_string()))
    }

    pub(crate) fn write_metadata(&self, meta: &CrateMetadata) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(meta).map_err(|e| Error::InvalidArgument {
            what: "metadata",
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        let target = self.path.join(METADATA_FILE);
        crate::beneath::check(self.capsule.store().root(), &target)?;
        atomic::write_file(&target, &json)
    }

    /// The crate as the CLI and the server show it ([`CrateInfo`]); errors as
    /// [`Crate::metadata`].
    pub fn info(&self) -> Result<CrateInfo> {
        Ok(CrateInfo {
            metadata: self.metadata()?,
            capsule: self.capsule().id().as_str().to_string(),
            path: self.path().to_path_buf(),
        })
    }

    /// Sealed (released) crates refuse writes.
    pub fn is_published(&self) -> Result<bool> {
        Ok(self.metadata()?.published)
    }

    fn refuse_if_sealed(&self) -> Result<CrateMetadata> {
        let meta = self.metadata()?;
        if meta.published {
            return Err(Error::Sealed {
                capsule: self.capsule.id().to_string(),
                version: self.version_str(),
            });
        }
        Ok(meta)
    }

    /// Replace the comment. `Sealed` once the crate is published.
    pub fn set_comment(&self, comment: &str) -> Result<()> {
        let mut meta = self.refuse_if_sealed()?;
        meta.comment = Some(comment.to_string());
        self.write_metadata(&meta)
    }

    /// Seal the crate: it becomes published and refuses further writes. Sealing a sealed
    /// crate is a no-op.
    pub fn seal(&self) -> Result<()> {
        let mut meta = self.metadata()?;
        if meta.published {
            return Ok(());
        }
        meta.published = true;
        meta.published_at = Some(Utc::now());
        self.write_metadata(&meta)?;
        tracing::info!(capsule = %self.capsule.id(), version = %self.version_str(), "sealed");
        Ok(())
    }

    /// Publish into `publishes/`. `src` is a file, or a frame sequence given as a pattern
    /// (`/renders/plate.####.exr`: every frame found beside it; `/renders/plate.1001-1100#.exr`:
    /// exactly those frames, each of which must exist).
    ///
    /// A file lands at `dest_rel` (default: its own name); a sequence lands in the new
    /// directory `dest_rel` (default: the sequence's name, e.g. `plate`), frames keeping their
    /// names. Either appears whole or not at all (written under a temporary name, renamed into
    /// place without replacing anything), read-only. An existing target is never replaced
    /// (`AlreadyExists`); a sealed crate refuses (`Sealed`). A crate may receive any number of
    /// publishes. Returns the published file or directory.
    pub fn publish(&self, src: impl AsRef<Path>, dest_rel: Option<&Path>) -> Result<PathBuf> {
        let src = src.as_ref();
        self.refuse_if_sealed()?;
        match fs::metadata(src) {
            Ok(meta) if meta.is_file() => self.publish_file(src, dest_rel),
            Ok(_) => Err(Error::InvalidArgument {
                what: "publish source",
                reason: format!("{} is not a regular file", src.display()),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match sequence_source(src)? {
                Some((dir, seq)) => self.publish_sequence(&dir, &seq, dest_rel),
                None => Err(Error::NotFound {
                    what: "file",
                    name: src.display().to_string(),
                }),
            },
            Err(e) => Err(Error::io("stat", src, e)),
        }
    }

    fn publish_file(&self, src: &Path, dest_rel: Option<&Path>) -> Result<PathBuf> {
        let rel = match dest_rel {
            Some(r) => r.to_path_buf(),
            None => PathBuf::from(src.file_name().ok_or_else(|| Error::InvalidArgument {
                what: "publish source",
                reason: format!("{} has no file name", src.display()),
            })?),
        };
        let dest = self.claim_target(&rel)?;
        let parent = dest.parent().unwrap_or(&self.path);
        let tmp = atomic::temp_path(parent, "publish");
        let result = copy_read_only(src, &tmp)
            .and_then(|()| atomic::rename_noreplace(&tmp, &dest, "published file"));
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        tracing::info!(capsule = %self.capsule.id(), version = %self.version_str(),
            dest = %rel.display(), "published file");
        Ok(dest)
    }

    fn publish_sequence(
        &self,
        dir: &Path,
        seq: &Sequence,
        dest_rel: Option<&Path>,
    ) -> Result<PathBuf> {
        let rel = match dest_rel {
            Some(r) => r.to_path_buf(),
            None => PathBuf::from(sequence_dir_name(seq)),
        };
        let dest = self.claim_target(&rel)?;
        let parent = dest.parent().unwrap_or(&self.path);
        let tmp = atomic::temp_path(parent, "publish");
        let result = (|| {
            fs::create_dir(&tmp).map_err(Error::io_at("create directory", &tmp))?;
            for name in seq.paths() {
                copy_read_only(&dir.join(&name), &tmp.join(&name))?;
            }
            atomic::rename_noreplace(&tmp, &dest, "published sequence")
        })();
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        tracing::info!(capsule = %self.capsule.id(), version = %self.version_str(),
            dest = %rel.display(), frames = seq.frames.len(), "published sequence");
        Ok(dest)
    }

    /// Check `rel`, make its parent directories and refuse an existing target.
    fn claim_target(&self, rel: &Path) -> Result<PathBuf> {
        safe_relative(rel)?;
        let dest = self.section(Section::Publishes).join(rel);
        let root = self.capsule.store().root();
        crate::beneath::check(root, &dest)?;
        if fs::symlink_metadata(&dest).is_ok() {
            return Err(Error::AlreadyExists {
                what: "published file",
                name: dest.display().to_string(),
            });
        }
        let parent = dest.parent().unwrap_or(&self.path);
        fs::create_dir_all(parent).map_err(Error::io_at("create directory", parent))?;
        // Again once the parents exist: a link raced in while they were made is refused too.
        crate::beneath::check(root, &dest)?;
        Ok(dest)
    }

    /// The frame sequences in a section, subdirectories included (their relative path is
    /// part of the sequence's head, e.g. `beauty/plate.`). Sorted.
    pub fn sequences(&self, section: Section) -> Result<Vec<Sequence>> {
        let root = self.section(section);
        let mut out = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            let prefix = dir
                .strip_prefix(&root)
                .map(|p| {
                    p.components()
                        .map(|c| format!("{}/", c.as_os_str().to_string_lossy()))
                        .collect::<String>()
                })
                .unwrap_or_default();
            // One read of each directory gives both its files and where to recurse.
            let listing = list_dir(&dir)?;
            for mut seq in sequences_in(listing.files) {
                seq.head.insert_str(0, &prefix);
                out.push(seq);
            }
            dirs.extend(listing.dirs);
        }
        out.sort_by(|a, b| (&a.head, &a.tail, a.padding).cmp(&(&b.head, &b.tail, b.padding)));
        Ok(out)
    }
}

/// Check that `rel` is a plain relative path (no root, no `..`, no hidden capsa names).
pub(crate) fn safe_relative(rel: &Path) -> Result<()> {
    let bad = |rule: &str| Error::InvalidName {
        what: "path",
        value: shown(&rel.display().to_string()),
        rule: rule.to_string(),
    };
    if rel.as_os_str().is_empty() {
        return Err(bad("must not be empty"));
    }
    for c in rel.components() {
        match c {
            Component::Normal(part) => {
                let part = part.to_string_lossy();
                if part.starts_with(".capsa") {
                    return Err(bad("must not use names starting with .capsa"));
                }
                if part.contains('\0') {
                    return Err(bad("must not contain a NUL byte"));
                }
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("must not contain '..'")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("must be relative to the section"))
            }
        }
    }
    Ok(())
}

/// Copy `src` to the new name `dst`, flushed to disk and read-only.
///
/// The source is opened with [`open_regular`] (non-blocking, type checked on the descriptor):
/// a FIFO, device or socket among the frames is refused, never waited on. The new file is
/// created exclusively, so a link planted at `dst` is never followed.
fn copy_read_only(src: &Path, dst: &Path) -> Result<()> {
    let mut from = open_regular(src, Links::Follow, "file")?;
    let mut to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(Error::io_at("create", dst))?;
    io::copy(&mut from, &mut to).map_err(Error::io_at("copy", src))?;
    to.sync_all().map_err(Error::io_at("sync", dst))?;
    drop(to);
    atomic::make_read_only(dst)
}

/// If `src` names a sequence pattern, its directory and the sequence with its frames: the
/// frames written in the pattern, or those found beside it.
fn sequence_source(src: &Path) -> Result<Option<(PathBuf, Sequence)>> {
    let Some(name) = src.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    // A name with no padding token is a missing file; one with a broken token is
    // INVALID_SEQUENCE naming the rule, never "file not found".
    let Some(pattern) = Sequence::parse_source(name)? else {
        return Ok(None);
    };
    let dir = src
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    if !pattern.frames.is_empty() {
        return Ok(Some((dir, pattern)));
    }
    let found = find_sequences(&dir)?
        .into_iter()
        .find(|s| s.head == pattern.head && s.tail == pattern.tail && s.padding == pattern.padding);
    match found {
        Some(seq) => Ok(Some((dir, seq))),
        None => Err(Error::NotFound {
            what: "frames of sequence",
            name: src.display().to_string(),
        }),
    }
}

/// The default directory name of a published sequence: its head without the trailing
/// separator (`plate.` → `plate`).
fn sequence_dir_name(seq: &Sequence) -> String {
    let name = seq.head.trim_end_matches(['.', '_', '-', ' ']);
    if name.is_empty() {
        "sequence".into()
    } else {
        name.to_string()
    }
}
