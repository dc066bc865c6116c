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

/// Input chunk size: the unit of parallel compression and of memory use.
const CHUNK: usize = 1 << 20;
/// The deflate window: each chunk is primed with this much of the data before it.
const WINDOW: usize = 32 << 10;
/// Output buffer of the archive file.
const OUT_BUF: usize = 1 << 20;

/// One thing in the capsule tree, in archive order.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// Name inside the zip (`<id>/v001/a.txt`, directories end with `/`).
    pub name: String,
    pub src: PathBuf,
    pub kind: EntryKind,
    pub size: u64,
    pub mode: u32,
    pub mtime: (u16, u16),
    pub deflate: bool,
    /// Symlink target (relative, checked to stay inside the capsule).
    pub target: Option<String>,
    /// A file's identity as walked: every read of it is checked against this, so a file
    /// that changes while it is archived is refused instead of torn.
    pub stamp: Option<Stamp>,
    /// Content taken at walk time instead of read from `src` (the version hint, which a bump
    /// beside the archive may replace).
    pub inline: Option<Vec<u8>>,
}

/// What identifies a file's content without reading it: device, inode, size, and the
/// modification and change times to the nanosecond (with the link count, which tells a
/// change time moved by a new hard link, as a carry-over makes, from a write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    nlink: u64,
}

impl Stamp {
    /// The stamp of `meta`.
    pub(crate) fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Stamp {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.len(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                ctime: (meta.ctime(), meta.ctime_nsec()),
                nlink: meta.nlink(),
            }
        }
        #[cfg(not(unix))]
        {
            let nanos = |t: std::io::Result<std::time::SystemTime>| {
                t.ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or((0, 0), |d| {
                        (d.as_secs() as i64, i64::from(d.subsec_nanos()))
                    })
            };
            Stamp {
                dev: 0,
                ino: 0,
                size: meta.len(),
                mtime: nanos(meta.modified()),
                ctime: nanos(meta.created()),
                nlink: 1,
            }
        }
    }

    /// `CHANGED` unless the open `file` still has this stamp.
    fn check(&self, file: &File, path: &Path) -> Result<()> {
        let now = Stamp::of(&file.metadata().map_err(Error::io_at("stat", path))?);
        let same_content =
            (now.dev, now.ino, now.size, now.mtime) == (self.dev, self.ino, self.size, self.mtime);
        // A change time that moved with the link count is a hard link made or removed (a
        // bump carrying a published file over), not a write.
        if same_content && (now.ctime == self.ctime || now.nlink != self.nlink) {
            return Ok(());
        }
        let what = if now.ino != self.ino || now.dev != self.dev {
            "was replaced".to_string()
        } else if now.size != self.size {
            format!("went from {} to {} bytes", self.size, now.size)
        } else {
            "was written to".to_string()
        };
        Err(Error::Changed {
            path: path.to_path_buf(),
            reason: format!(
                "the file {what} while it was being archived; archive again when it is not \
                 being written"
            ),
        })
    }
}

/// Which crates [`walk`] takes from a capsule that may be in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The crates that are complete when the walk reaches them; crates being made (or left
    /// by a killed bump) are skipped and named. The version hint is taken as the highest
    /// crate archived, so the archive is consistent by itself.
    Complete,
    /// Everything on disk, as it is (the offline check: a crate being made is not in the
    /// archive, so the capsule may not go offline).
    Everything,
}

/// What [`walk`] found.
pub(crate) struct Walk {
    /// Every entry, in archive order.
    pub items: Vec<Item>,
    /// Crates not taken because they were not complete (their directory names).
    pub skipped: Vec<String>,
}

/// Walk the capsule in sorted order: the capsule directory first, each directory before its
/// contents. Temporary `.capsa-tmp-` names and the offline stub are not content.
pub(crate) fn walk(capsule: &Capsule, policy: Policy, scope: Scope) -> Result<Walk> {
    let root = capsule.path();
    let mut walk = Walk {
        items: Vec::new(),
        skipped: Vec::new(),
    };
    let meta = fs::symlink_metadata(root).map_err(Error::io_at("stat", root))?;
    walk.items.push(Item {
        name: format!("{}/", capsule.id()),
        src: root.to_path_buf(),
        kind: EntryKind::Dir,
        size: 0,
        mode: S_IFDIR | mode_bits(&meta, 0o755),
        mtime: mtime(&meta),
        deflate: false,
        target: None,
        stamp: None,
        inline: None,
    });
    walk_dir(
        root,
        root,
        &format!("{}/", capsule.id()),
        policy,
        Some(scope),
        &mut walk,
    )?;
    if scope == Scope::Complete {
        let head = format!("{}/{INTERNAL_DIR}/{HEAD_FILE}", capsule.id());
        let highest = walk
            .items
            .iter()
            .filter(|i| i.kind == EntryKind::Dir)
            .filter_map(|i| i.name.strip_prefix(&format!("{}/", capsule.id())))
            .filter_map(|rest| rest.strip_suffix('/'))
            .filter_map(|name| Version::parse(name).ok())
            .map(|v| v.number())
            .max();
        if let Some(item) = walk.items.iter_mut().find(|i| i.name == head) {
            let text = format!("{}\n", highest.unwrap_or(0)).into_bytes();
            item.size = text.len() as u64;
            item.deflate = false;
            item.stamp = None;
            item.inline = Some(text);
        }
    }
    Ok(walk)
}

/// Whether the version directory at `path` is a crate being made (or left by a killed
/// bump). The metadata is looked at before the marker: a bump writes the metadata and then
/// removes the marker, so metadata seen and then no marker means complete.
fn being_made(path: &Path) -> bool {
    let complete = fs::symlink_metadata(path.join(METADATA_FILE)).is_ok_and(|m| m.is_file())
        && fs::symlink_metadata(path.join(INCOMPLETE_MARKER)).is_err();
    !complete
}

fn mode_bits(meta: &fs::Metadata, default: u32) -> u32 {
    #[cfg(unix)]
    {
        let _ = default;
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
    }
    #[cfg(not(unix))]
    {
        if meta.permissions().readonly() {
            default & 0o555
        } else {
            default
        }
    }
}

fn mtime(meta: &fs::Metadata) -> (u16, u16) {
    dos_datetime(meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH))
}

fn walk_dir(
    root: &Path,
    dir: &Path,
    prefix: &str,
    policy: Policy,
    top: Option<Scope>,
    walk: &mut Walk,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(Error::io_at("list", dir))?
        .collect::<std::io::Result<_>>()
        .map_err(Error::io_at("list", dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(Error::InvalidName {
                what: "file name",
                value: path.display().to_string(),
                rule: "must be valid UTF-8 to be archived".into(),
            });
        };
        if name.starts_with(atomic::TEMP_PREFIX) {
            continue;
        }
        let zip_name = format!("{prefix}{name}");
        if zip_name
            == format!(
                "{}{}/{}",
                prefix_root(prefix),
                INTERNAL_DIR,
                super::OFFLINE_FILE
            )
        {
            continue;
        }
        let meta = fs::symlink_metadata(&path).map_err(Error::io_at("stat", &path))?;
        let ft = meta.file_type();
        if ft.is_dir()
            && top == Some(Scope::Complete)
            && Version::parse(&name).is_ok()
            && being_made(&path)
        {
            walk.skipped.push(name);
            continue;
        }
        let out = &mut walk.items;
        if ft.is_dir() {
            out.push(Item {
                name: format!("{zip_name}/"),
                src: path.clone(),
                kind: EntryKind::Dir,
                size: 0,
                mode: S_IFDIR | mode_bits(&meta, 0o755),
                mtime: mtime(&meta),
                deflate: false,
                target: None,
                stamp: None,
                inline: None,
            });
            walk_dir(root, &path, &format!("{zip_name}/"), policy, None, walk)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(Error::io_at("read link", &path))?;
            let target = check_link(root, &path, &target)?;
            out.push(Item {
                name: zip_name,
                src: path,
                kind: EntryKind::Symlink,
                size: target.len() as u64,
                mode: S_IFLNK | 0o777,
                mtime: mtime(&meta),
                deflate: false,
                target: Some(target),
                stamp: None,
                inline: None,
            });
        } else if ft.is_file() {
            let deflate = meta.len() > 0 && policy.deflates(&name);
            out.push(Item {
                name: zip_name,
                src: path,
                kind: EntryKind::File,
                size: meta.len(),
                mode: S_IFREG | mode_bits(&meta, 0o644),
                mtime: mtime(&meta),
                deflate,
                target: None,
                stamp: Some(Stamp::of(&meta)),
                inline: None,
            });
        } else {
            return Err(Error::Unsupported {
                what: format!(
                    "{} is not a file, directory or symlink (device, socket or fifo)",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

fn prefix_root(prefix: &str) -> &str {
    // "<id>/" of any prefix "<id>/a/b/".
    match prefix.find('/') {
        Some(i) => &prefix[..=i],
        None => prefix,
    }
}

/// A symlink is archived only when its target is relative and stays inside the capsule.
fn check_link(root: &Path, link: &Path, target: &Path) -> Result<String> {
    let refuse = |why: &str| Error::Unsupported {
        what: format!(
            "symlink {} -> {}: {why}; only links that stay inside the capsule can be archived",
            link.display(),
            target.display()
        ),
    };
    let Some(text) = target.to_str() else {
        return Err(refuse("the target is not UTF-8"));
    };
    let rel_dir = link
        .parent()
        .and_then(|p| p.strip_prefix(root).ok())
        .unwrap_or(Path::new(""));
    let mut depth: Vec<String> = rel_dir
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    for c in target.components() {
        match c {
            Component::Normal(p) => depth.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return Err(refuse("it points outside the capsule"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse("the target is an absolute path"))
            }
        }
    }
    Ok(text.replace('\\', "/"))
}

struct Job {
    item: usize,
    offset: u64,
    len: usize,
    last: bool,
    /// The only chunk of its file: the worker also hashes it.
    whole: bool,
    /// Sequence number of the last chunk of the same file.
    last_seq: usize,
}

struct Chunk {
    data: Vec<u8>,
    /// The uncompressed input, kept for hashing when the file spans several chunks.
    raw: Option<Vec<u8>>,
    crc: crc32fast::Hasher,
    len: u64,
    method: u16,
    sha: Option<[u8; 32]>,
}

#[derive(Default)]
struct Flow {
    next: usize,
    consumed: usize,
    stop: bool,
}

/// Where the archive bytes go: a new local file, or (feature `s3`) a multipart upload.
enum Dest {
    File(File),
    #[cfg(feature = "s3")]
    Bucket(super::s3::BucketSink),
}

/// The archive being written, buffered; in a local file runs of zeros become holes.
struct Out {
    dest: Dest,
    path: PathBuf,
    buf: Vec<u8>,
    pos: u64,
}

impl Out {
    /// Streamed output cannot seek back: entries of several chunks get data descriptors.
    fn streaming(&self) -> bool {
        !matches!(self.dest, Dest::File(_))
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        match &mut self.dest {
            Dest::File(f) => f.write_all(b).map_err(Error::io_at("write", &self.path)),
            #[cfg(feature = "s3")]
            Dest::Bucket(s) => s.write(b),
        }
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        if self.buf.len() + b.len() > OUT_BUF {
            self.flush()?;
        }
        if b.len() >= OUT_BUF {
            self.put(b)?;
        } else {
            self.buf.extend_from_slice(b);
        }
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Stored data: a block of zeros becomes a hole (the file is new, holes read as zeros).
    // Without feature `s3` a file is the only destination.
    #[allow(irrefutable_let_patterns)]
    fn write_data(&mut self, b: &[u8]) -> Result<()> {
        if let Dest::File(file) = &mut self.dest {
            if b.len() >= 64 << 10 && super::is_zero(b) {
                file.write_all(&self.buf)
                    .map_err(Error::io_at("write", &self.path))?;
                self.buf.clear();
                file.seek(SeekFrom::Current(b.len() as i64))
                    .map_err(Error::io_at("seek", &self.path))?;
                self.pos += b.len() as u64;
                return Ok(());
            }
        }
        self.write(b)
    }

    fn flush(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let r = self.put(&buf);
        self.buf = buf;
        self.buf.clear();
        r
    }

    fn patch(&mut self, at: u64, b: &[u8]) -> Result<()> {
        self.flush()?;
        let io = Error::io_at("write", &self.path);
        let pos = self.pos;
        match &mut self.dest {
            Dest::File(file) => (|| {
                file.seek(SeekFrom::Start(at))?;
                file.write_all(b)?;
                file.seek(SeekFrom::Start(pos)).map(|_| ())
            })()
            .map_err(io),
            #[cfg(feature = "s3")]
            Dest::Bucket(_) => Err(io(std::io::Error::other(
                "internal: cannot patch a streamed archive",
            ))),
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()?;
        match &mut self.dest {
            Dest::File(file) => {
                file.set_len(self.pos)
                    .map_err(Error::io_at("write", &self.path))?;
                file.sync_all().map_err(Error::io_at("sync", &self.path))
            }
            #[cfg(feature = "s3")]
            Dest::Bucket(s) => s.finish(),
        }
    }
}

/// Removes the temporary archive unless disarmed.
struct TempGuard(Option<PathBuf>);
impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(&p);
        }
    }
}

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

fn write_all(
    capsule: &Capsule,
    items: &[Item],
    out: &mut Out,
    options: &ArchiveOptions,
) -> Result<ArchiveReport> {
    let cancel = &options.cancel;
    let mut jobs = Vec::new();
    let mut progress = Progress::default();
    for (i, item) in items.iter().enumerate() {
        if item.kind != EntryKind::File {
            continue;
        }
        progress.files_total += 1;
        progress.bytes_total += item.size;
        let n = item.size.div_ceil(CHUNK as u64).max(1);
        let last_seq = jobs.len() + n as usize - 1;
        for c in 0..n {
            let offset = c * CHUNK as u64;
            jobs.push(Job {
                item: i,
                offset,
                len: (item.size - offset).min(CHUNK as u64) as usize,
                last: c + 1 == n,
                whole: n == 1,
                last_seq,
            });
        }
    }
    let threads = worker_count(options.threads);
    // Chunks in flight (read, compressed, or waiting to be written): bounds memory to about
    // 2 MiB each, and is wide enough for every worker to have a file of its own going.
    let inflight = threads * 8;
    let flow = Mutex::new(Flow::default());
    let wake = Condvar::new();
    let (tx, rx) = mpsc::channel::<(usize, Result<Chunk>)>();
    let level = options.level;

    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (jobs, flow, wake) = (&jobs, &flow, &wake);
            s.spawn(move || {
                let mut open: Option<(usize, File)> = None;
                // Wait until chunk `seq` fits in the window; false when stopping.
                let admit = |seq: usize| {
                    let mut f = flow.lock().unwrap_or_else(|p| p.into_inner());
                    while !f.stop && seq >= f.consumed + inflight {
                        f = wake.wait(f).unwrap_or_else(|p| p.into_inner());
                    }
                    !f.stop && !cancel.is_cancelled()
                };
                'claim: loop {
                    // Deflated files are shared out chunk by chunk (compression is the work);
                    // a stored file goes whole to one worker, which hashes it as it reads, so
                    // SHA-256 runs on every core too.
                    let (first, last) = {
                        let mut f = flow.lock().unwrap_or_else(|p| p.into_inner());
                        while !f.stop && f.next < jobs.len() && f.next >= f.consumed + inflight {
                            f = wake.wait(f).unwrap_or_else(|p| p.into_inner());
                        }
                        if f.stop || f.next >= jobs.len() || cancel.is_cancelled() {
                            break;
                        }
                        let first = f.next;
                        let j = &jobs[first];
                        let last = if items[j.item].deflate {
                            first
                        } else {
                            j.last_seq
                        };
                        f.next = last + 1;
                        (first, last)
                    };
                    let mut hasher = (last > first).then(Sha256::new);
                    for (seq, job) in jobs.iter().enumerate().take(last + 1).skip(first) {
                        if seq > first && !admit(seq) {
                            break 'claim;
                        }
                        let mut r = run_job(job, items, &mut open, level);
                        if let (Some(h), Ok(chunk)) = (hasher.as_mut(), r.as_mut()) {
                            h.update(&chunk.data);
                            if seq == last {
                                chunk.sha = Some(h.finalize_reset().into());
                            }
                        }
                        let failed = r.is_err();
                        if tx.send((seq, r)).is_err() {
                            break 'claim;
                        }
                        if failed {
                            break;
                        }
                    }
                }
            });
        }
        drop(tx);
        let result = write_entries(
            capsule, items, &jobs, out, options, &rx, &flow, &wake, progress,
        );
        flow.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        wake.notify_all();
        drop(rx);
        result
    })
}

fn run_job(
    job: &Job,
    items: &[Item],
    open: &mut Option<(usize, File)>,
    level: u32,
) -> Result<Chunk> {
    let item = &items[job.item];
    let dict = if item.deflate {
        (job.offset as usize).min(WINDOW)
    } else {
        0
    };
    let mut buf = match &item.inline {
        Some(data) => data.clone(),
        None => read_chunk(job, item, open, dict)?,
    };
    let input = &buf[dict..];
    let mut crc = crc32fast::Hasher::new();
    crc.update(input);
    let sha = job.whole.then(|| Sha256::digest(input).into());
    if !item.deflate {
        let raw = buf.split_off(dict);
        return Ok(Chunk {
            data: raw,
            raw: None,
            crc,
            len: job.len as u64,
            method: METHOD_STORED,
            sha,
        });
    }
    // Incompressible chunks (rendered media under a generic name, say) go into the deflate
    // stream as stored blocks: no time spent searching for matches that are not there.
    let incompressible = looks_incompressible(input);
    let mut c = Compress::new(
        if incompressible {
            Compression::none()
        } else {
            Compression::new(level)
        },
        false,
    );
    if dict > 0 && !incompressible {
        c.set_dictionary(&buf[..dict])
            .map_err(|e| Error::io("compress", &item.src, std::io::Error::other(e)))?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut data = Vec::with_capacity(input.len() + input.len() / 64 + 1024);
    let mut consumed = 0usize;
    loop {
        if data.capacity() - data.len() < 16 << 10 {
            data.reserve(256 << 10);
        }
        let before = c.total_in();
        let status = c
            .compress_vec(&input[consumed..], &mut data, flush)
            .map_err(|e| Error::io("compress", &item.src, std::io::Error::other(e)))?;
        consumed += (c.total_in() - before) as usize;
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => consumed == input.len() && data.len() < data.capacity(),
        };
        if done {
            break;
        }
    }
    if job.whole && data.len() >= input.len() {
        // Incompressible single-chunk file: store it instead.
        let raw = buf.split_off(dict);
        return Ok(Chunk {
            data: raw,
            raw: None,
            crc,
            len: job.len as u64,
            method: METHOD_STORED,
            sha,
        });
    }
    Ok(Chunk {
        data,
        raw: (!job.whole).then(|| buf.split_off(dict)),
        crc,
        len: job.len as u64,
        method: METHOD_DEFLATED,
        sha,
    })
}

/// Read a job's chunk (with `dict` bytes before it), checking the file against its walked
/// stamp when it is opened and after every read: a chunk read before a change matches the
/// stamp, a chunk read during or after it does not.
fn read_chunk(
    job: &Job,
    item: &Item,
    open: &mut Option<(usize, File)>,
    dict: usize,
) -> Result<Vec<u8>> {
    if open.as_ref().is_none_or(|(i, _)| *i != job.item) {
        let f = File::open(&item.src).map_err(Error::io_at("open", &item.src))?;
        if let Some(stamp) = &item.stamp {
            stamp.check(&f, &item.src)?;
        }
        *open = Some((job.item, f));
    }
    let file = &open.as_ref().expect("just opened").1;
    let mut buf = vec![0u8; dict + job.len];
    read_exact_at(file, &mut buf, job.offset - dict as u64).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Changed {
                path: item.src.clone(),
                reason: "the file shrank while it was being archived; archive again when it \
                         is not being written"
                    .into(),
            }
        } else {
            Error::io("read", &item.src, e)
        }
    })?;
    if let Some(stamp) = &item.stamp {
        stamp.check(file, &item.src)?;
    }
    Ok(buf)
}

/// Sample three 16 KiB windows of a chunk at the fastest level: if they do not shrink by
/// 3 %, the chunk is not worth compressing. Costs about 2 % of compressing the chunk.
fn looks_incompressible(input: &[u8]) -> bool {
    const WIN: usize = 16 << 10;
    if input.len() < 4 * WIN {
        return false;
    }
    let mut out = Vec::with_capacity(WIN + 1024);
    let (mut raw, mut packed) = (0usize, 0usize);
    for at in [0, input.len() / 2 - WIN / 2, input.len() - WIN] {
        let window = &input[at..at + WIN];
        let mut c = Compress::new(Compression::fast(), false);
        out.clear();
        match c.compress_vec(window, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => packed += out.len(),
            // Output buffer full: larger than the input plus slack, so incompressible.
            Ok(_) => packed += WIN + 1024,
            Err(_) => return false,
        }
        raw += WIN;
    }
    packed * 100 >= raw * 97
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

fn deflate_all(body: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(level));
    // Writing to a Vec cannot fail.
    let _ = e.write_all(body);
    e.finish().unwrap_or_default()
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
