//! Opening files that capsa reads without trusting what they are.
//!
//! A path in a store or given by a user may name a FIFO (an `open` that never returns), a
//! device (`/dev/zero`: a read that never ends), a symbolic link planted to lead elsewhere,
//! or a "small" file that is gigabytes long. Every read of a file capsa did not just create
//! goes through here: the file type is checked on the open descriptor (the open itself is
//! non-blocking, so a FIFO cannot hang it), and small files are read with a cap.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Whether the last component of a path may be a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Follow a symbolic link (a path the user typed: `capsa verify latest.zip`).
    Follow,
    /// Refuse a symbolic link with [`Error::UnsafePath`] (a file inside the store).
    Refuse,
}

/// The caps for capsa's own small files. Each is far above any real file of its kind.
pub mod limits {
    /// `.capsa/store.toml`.
    pub const STORE_CONFIG: u64 = 64 * 1024;
    /// A capsule's version hint.
    pub const VERSION_HINT: u64 = 64;
    /// A crate's `.capsa-crate.json`.
    pub const CRATE_METADATA: u64 = 1024 * 1024;
    /// A capsule's `.capsa/offline.json` stub.
    pub const OFFLINE_STUB: u64 = 64 * 1024;
    /// A file of a Kubernetes template directory (`capsa.yaml`, a manifest).
    pub const TEMPLATE_FILE: u64 = 4 * 1024 * 1024;
    /// A staging key file (32 bytes): a bigger one is refused without being read.
    pub const KEY_FILE: u64 = 4096;
}

/// What a path is, in words for an error ("a FIFO", "a directory"…), when it is not a regular
/// file; `None` for a regular file.
pub fn irregular_kind(ft: &std::fs::FileType) -> Option<&'static str> {
    if ft.is_file() {
        return None;
    }
    if ft.is_dir() {
        return Some("a directory");
    }
    if ft.is_symlink() {
        return Some("a symbolic link");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Some("a FIFO");
        }
        if ft.is_char_device() || ft.is_block_device() {
            return Some("a device");
        }
        if ft.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// Open `path` for reading, refusing anything that is not a regular file with
/// [`Error::UnsafePath`] (and a symbolic link too when `links` is [`Links::Refuse`]). A
/// missing file is [`Error::NotFound`] with `what`; other failures are [`Error::Io`].
pub fn open_regular(path: &Path, links: Links, what: &'static str) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
        if links == Links::Refuse {
            flags |= libc::O_NOFOLLOW;
        }
        opts.custom_flags(flags);
    }
    #[cfg(not(unix))]
    if links == Links::Refuse {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if m.file_type().is_symlink() {
                return Err(refused(path, "a symbolic link"));
            }
        }
    }
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                what,
                name: path.display().to_string(),
            })
        }
        #[cfg(unix)]
        Err(e) if links == Links::Refuse && e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused(path, "a symbolic link"));
        }
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let meta = file.metadata().map_err(Error::io_at("stat", path))?;
    if let Some(kind) = irregular_kind(&meta.file_type()) {
        return Err(refused(path, kind));
    }
    #[cfg(unix)]
    crate::sys::clear_nonblocking(&file).map_err(|e| Error::io("fcntl", path, e))?;
    Ok(file)
}

fn refused(path: &Path, kind: &str) -> Error {
    Error::UnsafePath {
        path: path.to_path_buf(),
        reason: format!("is {kind}, not a regular file"),
    }
}

/// Read a small file fully: [`open_regular`], then at most `limit` bytes; a longer file is
/// [`Error::TooLarge`] and nothing more is read.
pub fn read_small(path: &Path, links: Links, limit: u64, what: &'static str) -> Result<Vec<u8>> {
    let file = open_regular(path, links, what)?;
    let mut out = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(Error::io_at("read", path))?;
    if out.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: format!("{what} {}", path.display()),
            reason: format!("more than the {limit} bytes allowed"),
        });
    }
    Ok(out)
}

/// [`read_small`] as UTF-8 text; invalid UTF-8 is [`Error::Corrupt`].
pub fn read_small_text(
    path: &Path,
    links: Links,
    limit: u64,
    what: &'static str,
) -> Result<String> {
    let bytes = read_small(path, links, limit, what)?;
    String::from_utf8(bytes).map_err(|_| Error::corrupt(path, format!("{what} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn regular_files_read_and_caps_hold() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_small(&p, Links::Refuse, 5, "file").unwrap(), b"12345");
        let e = read_small(&p, Links::Refuse, 4, "file").unwrap_err();
        assert_eq!(e.code(), ErrorCode::TooLarge);
        let e = read_small(&dir.path().join("none"), Links::Refuse, 4, "file").unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotFound);
    }

    #[cfg(unix)]
    #[test]
    fn devices_fifos_links_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        crate::sys::make_fifo(&fifo);
        let e = read_small(&fifo, Links::Follow, 10, "file").unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
        assert!(e.to_string().contains("FIFO"), "{e}");

        let e = read_small(Path::new("/dev/zero"), Links::Follow, 10, "file").unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");

        let e = read_small(dir.path(), Links::Follow, 10, "file").unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");

        let target = dir.path().join("t");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_small(&link, Links::Follow, 10, "file").unwrap(), b"x");
        let e = read_small(&link, Links::Refuse, 10, "file").unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }
}
