//! Filesystem steps that either happen whole or not at all.
//!
//! Everything capsa writes into a store goes through these: a file is written under a
//! temporary name in the same directory and renamed into place; a name that must never be
//! overwritten is claimed with a no-replace rename (or a hard link, which fails on an existing
//! name on every filesystem, network mounts included).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The prefix of every temporary name capsa creates inside a store. `fsck` removes leftovers.
pub const TEMP_PREFIX: &str = ".capsa-tmp-";

/// A fresh temporary path in `dir`, unique across threads, processes and hosts.
pub fn temp_path(dir: &Path, what: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!(
        "{TEMP_PREFIX}{what}-{}-{}-{n}-{nanos:08x}",
        crate::sys::host_tag(),
        std::process::id()
    ))
}

/// Write `bytes` to `path` atomically: temp file in the same directory, fsync, rename.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file_with(path, bytes, true, false)
}

/// [`write_file`] without the fsync, for hints that only save work when they survive.
pub fn write_hint(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file_with(path, bytes, false, false)
}

/// [`write_file`] for a file only its owner may read (mode 0600 on Unix from the start: a
/// tokens file, a key).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file_with(path, bytes, true, true)
}

fn write_file_with(path: &Path, bytes: &[u8], durable: bool, private: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(dir, "write");
    let result = (|| {
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = o.open(&tmp).map_err(Error::io_at("create", &tmp))?;
        f.write_all(bytes).map_err(Error::io_at("write", &tmp))?;
        if durable {
            f.sync_all().map_err(Error::io_at("sync", &tmp))?;
        }
        fs::rename(&tmp, path).map_err(Error::io_at("rename into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Rename `from` to `to`, failing with [`Error::AlreadyExists`] if `to` exists — never
/// replacing it, also when `to` is an empty directory.
pub fn rename_noreplace(from: &Path, to: &Path, what: &'static str) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        match crate::sys::rename_noreplace(from, to) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists {
                    what,
                    name: to.display().to_string(),
                })
            }
            // Filesystems without RENAME_NOREPLACE answer EINVAL; fall through.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {}
            Err(e) => return Err(Error::io("rename into place", to, e)),
        }
    }
    if from.is_file() {
        // A hard link is an atomic create-if-absent on every POSIX filesystem and NFS.
        match fs::hard_link(from, to) {
            Ok(()) => {
                fs::remove_file(from).map_err(Error::io_at("remove", from))?;
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists {
                    what,
                    name: to.display().to_string(),
                })
            }
            Err(_) => {} // no hard links here (some SMB shares): check-then-rename below
        }
    }
    if fs::symlink_metadata(to).is_ok() {
        return Err(Error::AlreadyExists {
            what,
            name: to.display().to_string(),
        });
    }
    fs::rename(from, to).map_err(Error::io_at("rename into place", to))
}

/// How [`place_copy`] brought a file over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// Copy-on-write clone: no data copied.
    Reflink,
    /// Hard link: only for read-only (immutable) files.
    Hardlink,
    /// A full byte copy.
    Copy,
}

/// Bring `src` to the new name `dst` (which must not exist): reflink where the filesystem
/// supports it, else a hard link when `immutable`, else a copy. The file appears complete.
pub fn place_copy(src: &Path, dst: &Path, immutable: bool) -> Result<CopyMethod> {
    if reflink_copy::reflink(src, dst).is_ok() {
        return Ok(CopyMethod::Reflink);
    }
    if immutable && fs::hard_link(src, dst).is_ok() {
        return Ok(CopyMethod::Hardlink);
    }
    let dir = dst.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(dir, "copy");
    let result = (|| {
        fs::copy(src, &tmp).map_err(Error::io_at("copy", src))?;
        rename_noreplace(&tmp, dst, "file")
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| CopyMethod::Copy)
}

/// Create a new, empty file for writing; fails if it exists.
pub fn create_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(Error::io_at("create", path))
}

/// Make a file read-only for everyone (published files are never written again).
pub fn make_read_only(path: &Path) -> Result<()> {
    let mut perms = fs::metadata(path)
        .map_err(Error::io_at("stat", path))?
        .permissions();
    perms.set_readonly(true);
    fs::set_permissions(path, perms).map_err(Error::io_at("set permissions", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_noreplace_never_replaces_files_or_empty_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"a").unwrap();
        fs::write(&b, b"b").unwrap();
        let err = rename_noreplace(&a, &b, "file").unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::AlreadyExists);
        assert_eq!(fs::read(&b).unwrap(), b"b");
        let d1 = dir.path().join("d1");
        let d2 = dir.path().join("d2");
        fs::create_dir(&d1).unwrap();
        fs::create_dir(&d2).unwrap();
        assert!(rename_noreplace(&d1, &d2, "dir").is_err());
        rename_noreplace(&a, &dir.path().join("c"), "file").unwrap();
        assert!(!a.exists());
    }

    #[test]
    fn write_file_replaces_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_file(&p, b"one").unwrap();
        write_file(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
