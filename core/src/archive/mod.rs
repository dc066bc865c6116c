//! Archiving: a whole Capsule as one verified zip file, taken offline and brought back.
//!
//! ```text
//! <capsule id>/...            the capsule tree (empty directories and symlinks included)
//! manifest-sha256.txt         BagIt-style "sha256  path" line per file
//! capsa-archive.json          capsule id, crates, sizes, tool version, creation time
//! ```
//!
//! * [`archive`] writes the zip under a temporary name beside the destination, fsyncs it,
//!   verifies it (structure and every CRC) and only then renames it into place. Files are
//!   streamed in 1 MiB chunks compressed in parallel on a small worker pool and written in
//!   order (a pigz-style deflate stream: each chunk primed with the previous 32 KiB and
//!   sync-flushed), so memory stays bounded whatever the file sizes and every core works.
//!   ZIP64 records appear only where needed.
//! * [`verify`] checks structure, every CRC-32 and every SHA-256 of the manifest and names
//!   the first bad entry.
//! * [`restore`] extracts into a temporary directory inside the store's scratch area,
//!   refusing hostile entries before writing anything, and renames the result into place.
//! * [`Capsule::take_offline`](crate::Capsule::take_offline) and
//!   [`Store::retrieve`](crate::Store::retrieve) move a capsule out to its archive and back.
//!
//! Every long call takes a [`CancelToken`] and an optional progress callback; a cancelled or
//! failed run leaves nothing but `.capsa-tmp-` names, which `fsck` removes. The `_async`
//! forms run the work on the blocking pool of core's one shared runtime (with a scoped
//! worker pool for compression and checking); the blocking forms drive that same runtime
//! through [`crate::runtime::block_on`], so no caller ever needs a runtime of its own.

mod format;
pub(crate) mod offline;
mod plan;
mod read;
mod restore;
#[cfg(feature = "s3")]
mod s3;
mod source;
mod target;
mod verify;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::capsule::Capsule;
use crate::error::{Error, Result};
use crate::store::Store;

pub use crate::progress::{CancelToken, Progress, ProgressFn};
pub use format::EntryKind;
pub use offline::{OfflineStub, OFFLINE_FILE};
pub use target::ArchiveTarget;

/// Name of the BagIt-style manifest at the archive root.
pub const MANIFEST_NAME: &str = "manifest-sha256.txt";
/// Name of the archive metadata file at the archive root.
pub const METADATA_NAME: &str = "capsa-archive.json";
/// Version of the `capsa-archive.json` layout this build writes.
pub const ARCHIVE_FORMAT: u32 = 1;

/// How file data is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Store media that is already compressed (exr, mov, jpg, png, mp4, zip, gz…, by
    /// extension) and deflate everything else.
    #[default]
    Auto,
    /// Store everything (fastest).
    Store,
    /// Deflate everything (empty files are stored).
    Deflate,
}

impl Policy {
    /// Parse `auto`, `store` or `deflate`.
    pub fn parse(s: &str) -> Result<Policy> {
        match s {
            "auto" => Ok(Policy::Auto),
            "store" => Ok(Policy::Store),
            "deflate" => Ok(Policy::Deflate),
            other => Err(Error::InvalidArgument {
                what: "archive policy",
                reason: format!("must be auto, store or deflate, got {other:?}"),
            }),
        }
    }

    /// Whether a file with this name is deflated under this policy.
    pub fn deflates(self, file_name: &str) -> bool {
        match self {
            Policy::Store => false,
            Policy::Deflate => true,
            Policy::Auto => !is_compressed_media(file_name),
        }
    }
}

/// Extensions of formats that are already compressed: deflating them wastes time.
const COMPRESSED_EXTENSIONS: &[&str] = &[
    "exr", "mov", "mp4", "m4v", "mkv", "avi", "webm", "mxf", "jpg", "jpeg", "png", "gif", "webp",
    "heic", "jp2", "j2k", "dpx.gz", "zip", "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "mp3",
    "aac", "m4a", "ogg", "flac", "opus", "abc", "usdz", "ptex", "tx", "dds", "ktx2", "pdf",
];

fn is_compressed_media(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    match lower.rsplit_once('.') {
        Some((_, ext)) => COMPRESSED_EXTENSIONS.contains(&ext),
        None => false,
    }
}

/// Options for [`archive`].
#[derive(Clone)]
pub struct ArchiveOptions {
    /// Compression policy; `None` takes the store's default (`[archive] policy`).
    pub policy: Option<Policy>,
    /// Deflate level, 1 (fast) to 9 (small). Default 6, like `zip -6`.
    pub level: u32,
    /// Replace an existing file at the destination (default: refuse with `AlreadyExists`).
    pub replace: bool,
    /// Verify the finished archive (structure, every CRC, manifest coverage) before it is
    /// renamed into place. Default on.
    pub verify: bool,
    /// Worker threads for reading and compressing; default: the number of cores.
    pub threads: Option<usize>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Cancellation.
    pub cancel: CancelToken,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            policy: None,
            level: 6,
            replace: false,
            verify: true,
            threads: None,
            progress: None,
            cancel: CancelToken::new(),
        }
    }
}

impl fmt::Debug for ArchiveOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveOptions")
            .field("policy", &self.policy)
            .field("level", &self.level)
            .field("replace", &self.replace)
            .field("verify", &self.verify)
            .field("threads", &self.threads)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// Options for [`verify_with`].
#[derive(Clone, Default)]
pub struct VerifyOptions {
    /// Also compute the SHA-256 of the whole archive file (for offline stubs).
    pub archive_sha256: bool,
    /// Worker threads; default: the number of cores.
    pub threads: Option<usize>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Cancellation.
    pub cancel: CancelToken,
}

impl fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("archive_sha256", &self.archive_sha256)
            .field("threads", &self.threads)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Default limit on an entry's expansion ratio in [`restore`]: above what deflate can
/// reach (about 1032:1), so only lying or crafted entries trip it.
pub const DEFAULT_MAX_RATIO: u64 = 1100;

/// Default limit on the bytes a [`restore`] may write: 4 TiB, more than any capsule is
/// expected to hold, so only a crafted or damaged archive trips it. Raise it with
/// [`RestoreOptions::max_total_bytes`] (CLI `capsa archive restore --max-bytes`).
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 4 << 40;

/// Options for [`restore`].
#[derive(Clone)]
pub struct RestoreOptions {
    /// Replace an existing capsule of the same id (moved aside, the restored one renamed in,
    /// the old one deleted). Default: refuse with `AlreadyExists`.
    pub replace: bool,
    /// Refuse entries (over 1 MiB) whose uncompressed size exceeds this many times their
    /// compressed size. Default [`DEFAULT_MAX_RATIO`].
    pub max_ratio: u64,
    /// Refuse (`TooLarge`, before anything is written) archives whose entries add up to
    /// more than this many bytes. Default [`DEFAULT_MAX_TOTAL_BYTES`]. Whatever the limit, a
    /// restore also refuses an archive that does not fit in the store's free space.
    pub max_total_bytes: u64,
    /// Worker threads; default: the number of cores.
    pub threads: Option<usize>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Cancellation.
    pub cancel: CancelToken,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            replace: false,
            max_ratio: DEFAULT_MAX_RATIO,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            threads: None,
            progress: None,
            cancel: CancelToken::new(),
        }
    }
}

impl fmt::Debug for RestoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestoreOptions")
            .field("replace", &self.replace)
            .field("max_ratio", &self.max_ratio)
            .field("max_total_bytes", &self.max_total_bytes)
            .field("threads", &self.threads)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What [`archive`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveReport {
    /// The archive's final path.
    pub path: PathBuf,
    /// The capsule archived.
    pub capsule: String,
    /// Regular files.
    pub files: u64,
    /// Directories (the capsule's own included).
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Total bytes of file content.
    pub bytes: u64,
    /// Size of the archive file.
    pub archive_bytes: u64,
    /// Files deflated.
    pub deflated: u64,
    /// Files stored as is.
    pub stored: u64,
    /// Whether any ZIP64 record was needed.
    pub zip64: bool,
    /// Whether the archive was verified before it was renamed into place.
    pub verified: bool,
    /// Crates not archived because they were being made (or were left by a killed bump)
    /// when the archive reached them, by directory name (`v004`). The archive holds every
    /// crate that was complete.
    #[serde(default)]
    pub skipped: Vec<String>,
}

/// What [`verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The archive.
    pub path: PathBuf,
    /// The capsule it holds.
    pub capsule: String,
    /// Entries in the zip (tag files included).
    pub entries: u64,
    /// Regular files checked.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Bytes of file content checked.
    pub bytes: u64,
    /// Size of the archive file.
    pub archive_bytes: u64,
    /// SHA-256 of the whole archive file, when asked for.
    pub archive_sha256: Option<String>,
    /// The capsa version that wrote it (from `capsa-archive.json`).
    pub tool_version: String,
}

/// One entry, as [`list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// The name inside the zip (directories end with `/`).
    pub name: String,
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// Uncompressed size.
    pub size: u64,
    /// Compressed size.
    pub compressed: u64,
    /// `"stored"`, `"deflated"` or `"method N"`.
    pub method: String,
    /// CRC-32 as recorded.
    pub crc32: u32,
    /// Unix mode bits as recorded, if any.
    pub mode: Option<u32>,
}

/// Per-crate figures in `capsa-archive.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateSummary {
    /// Directory name (`v001`).
    pub version: String,
    /// Files inside it.
    pub files: u64,
    /// Bytes of content inside it.
    pub bytes: u64,
}

/// The contents of `capsa-archive.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveMetadata {
    /// Layout version ([`ARCHIVE_FORMAT`]).
    pub format: u32,
    /// The capsule id.
    pub capsule: String,
    /// Complete crates, oldest first.
    pub crates: Vec<CrateSummary>,
    /// Regular files in the capsule.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Always `"capsa"`.
    pub tool: String,
    /// The capsa version that wrote the archive.
    pub tool_version: String,
    /// When the archive was written.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// SHA-256 over the unix mode and name of every capsule entry in central-directory order
    /// (see `verify::tree_digest`): the manifest covers file bytes, this covers directories,
    /// links and modes. Absent in archives written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_sha256: Option<String>,
}

/// Archive `capsule` into one zip at `dest`. See the [module docs](self).
///
/// Fails with `AlreadyExists` if `dest` exists (unless `options.replace`), `Unsupported` for
/// a symlink pointing outside the capsule, `InvalidArgument` for an offline capsule,
/// `Cancelled` when the token fires. Nothing is left at `dest` on failure.
pub fn archive(
    capsule: &Capsule,
    dest: impl AsRef<Path>,
    options: ArchiveOptions,
) -> Result<ArchiveReport> {
    crate::runtime::block_on(archive_async(
        capsule.clone(),
        dest.as_ref().to_path_buf(),
        options,
    ))
}

/// [`archive`] as a future: the work runs on the blocking pool of core's shared runtime.
pub async fn archive_async(
    capsule: Capsule,
    dest: PathBuf,
    options: ArchiveOptions,
) -> Result<ArchiveReport> {
    on_runtime(move || write::archive(&capsule, &dest, &options)).await
}

/// Verify an archive: structure, every CRC-32 and the SHA-256 manifest. Fails with
/// [`Error::Corrupt`] naming the first bad entry.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_with(path, VerifyOptions::default())
}

/// [`verify`] with options (progress, cancellation, whole-file checksum).
pub fn verify_with(path: impl AsRef<Path>, options: VerifyOptions) -> Result<VerifyReport> {
    crate::runtime::block_on(verify_async(path.as_ref().to_path_buf(), options))
}

/// [`verify_with`] as a future: the work runs on the blocking pool of core's shared runtime.
pub async fn verify_async(path: PathBuf, options: VerifyOptions) -> Result<VerifyReport> {
    on_runtime(move || verify::verify(&path, &options, true)).await
}

/// Restore an archive into `store`, returning the capsule. Archives made by other zip tools
/// restore too, as long as they hold one capsule directory. Hostile entries (absolute paths,
/// `..`, drive letters, escaping symlinks, duplicates, zip bombs) are refused before anything
/// is written.
pub fn restore(path: impl AsRef<Path>, store: &Store, options: RestoreOptions) -> Result<Capsule> {
    crate::runtime::block_on(restore_async(
        path.as_ref().to_path_buf(),
        store.clone(),
        options,
    ))
}

/// [`restore`] as a future: the work runs on the blocking pool of core's shared runtime.
pub async fn restore_async(
    path: PathBuf,
    store: Store,
    options: RestoreOptions,
) -> Result<Capsule> {
    on_runtime(move || restore::restore(&path, &store, &options)).await
}

/// The entries of an archive, in archive order, without checking their data.
pub fn list(path: impl AsRef<Path>) -> Result<Vec<ListEntry>> {
    let path = path.as_ref();
    let source = source::open(path)?;
    let index = format::ZipIndex::open(path, &*source)?;
    Ok(index
        .entries
        .iter()
        .map(|e| ListEntry {
            name: e.name.clone(),
            kind: e.kind(),
            size: e.uncompressed,
            compressed: e.compressed,
            method: match e.method {
                format::METHOD_STORED => "stored".into(),
                format::METHOD_DEFLATED => "deflated".into(),
                m => format!("method {m}"),
            },
            crc32: e.crc,
            mode: e.unix_mode(),
        })
        .collect())
}

pub(crate) fn open_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NotFound {
            what: "archive",
            name: path.display().to_string(),
        }
    } else {
        Error::io("open", path, e)
    }
}

async fn on_runtime<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match crate::runtime::runtime().spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Cancelled),
    }
}

/// Whether `b` is all zeros: a `memcmp` against a static zero block, fast in any build.
pub(crate) fn is_zero(b: &[u8]) -> bool {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    b.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub(crate) fn worker_count(threads: Option<usize>) -> usize {
    threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_policy_stores_compressed_media() {
        assert!(!Policy::Auto.deflates("a/plate.0001.EXR"));
        assert!(!Policy::Auto.deflates("x.mov"));
        assert!(Policy::Auto.deflates("scene.ma"));
        assert!(Policy::Auto.deflates("README"));
        assert!(Policy::Deflate.deflates("x.mov"));
        assert!(!Policy::Store.deflates("scene.ma"));
        assert_eq!(Policy::parse("store").unwrap(), Policy::Store);
        assert!(Policy::parse("zip").is_err());
    }

    #[test]
    fn cancel_token_clones_share_the_flag() {
        let t = CancelToken::new();
        let u = t.clone();
        assert!(t.check().is_ok());
        u.cancel();
        assert!(t.is_cancelled());
        assert_eq!(t.check().unwrap_err().code(), crate::ErrorCode::Cancelled);
    }
}
