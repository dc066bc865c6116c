//! Writes beneath the store root never go through a symbolic link planted in the store.
//!
//! A link inside a store (`publishes/linked -> /elsewhere`, a crate or capsule directory that
//! is a link) would let a write land outside it. Every writer resolves its target here first:
//! each component below the store root is examined without following links (`lstat`), and
//! the first link found is refused with [`Error::UnsafePath`] naming it. The store root
//! itself may be a link (a user's choice of mount point); nothing below it may.
//!
//! This is a component walk, not `openat2(RESOLVE_BENEATH)`: a link swapped in between the
//! check and the write by someone with write access to the store is not caught. It closes
//! every link that is already there, which is what a planted or misconfigured link is.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The error for a link found at `at`.
pub(crate) fn link_refused(at: &Path) -> Error {
    Error::UnsafePath {
        path: at.to_path_buf(),
        reason: "is a symbolic link inside the store; capsa never writes through one".into(),
    }
}

/// Check that no existing component of `path` below `root` is a symbolic link (or anything
/// but a directory, except the last). Missing components end the walk: they will be created
/// by the writer, and `mkdir` never follows a link.
pub fn check(root: &Path, path: &Path) -> Result<()> {
    let rel = path.strip_prefix(root).map_err(|_| Error::UnsafePath {
        path: path.to_path_buf(),
        reason: format!("is not beneath the store {}", root.display()),
    })?;
    let mut at = PathBuf::from(root);
    let parts: Vec<_> = rel.components().collect();
    for (i, c) in parts.iter().enumerate() {
        match c {
            Component::Normal(part) => at.push(part),
            Component::CurDir => continue,
            _ => {
                return Err(Error::UnsafePath {
                    path: path.to_path_buf(),
                    reason: "leaves the store ('..' or an absolute part)".into(),
                })
            }
        }
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Err(link_refused(&at)),
            Ok(m) if !m.is_dir() && i + 1 < parts.len() => {
                return Err(Error::UnsafePath {
                    path: at,
                    reason: "is not a directory".into(),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("stat", &at, e)),
        }
    }
    Ok(())
}

/// Does the symbolic link `link` (somewhere beneath `root`) lead outside `root`? Used by fsck;
/// a dangling or unreadable link counts as leading outside.
pub(crate) fn leads_outside(root: &Path, link: &Path) -> bool {
    let Ok(root) = fs::canonicalize(root) else {
        return true;
    };
    match fs::canonicalize(link) {
        Ok(target) => !target.starts_with(&root),
        Err(_) => true,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn links_below_the_root_are_refused_and_named() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink(d.path(), root.join("a/l")).unwrap();
        check(&root, &root.join("a/b/new/deeper")).unwrap();
        let e = check(&root, &root.join("a/l/x")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsafePath);
        assert!(e.to_string().contains("a/l"), "{e}");
        let e = check(&root, &root.join("a/l")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsafePath);
        assert!(check(&root, &root.join("../x")).is_err());
        assert!(check(&root, Path::new("/etc")).is_err());
    }
}
