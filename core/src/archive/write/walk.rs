//! The walk of a capsule: every entry in archive order, with what the writer needs to
//! check that a file did not change while it was read (its [`Stamp`]).

use super::*;

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
    pub(super) fn check(&self, file: &File, path: &Path) -> Result<()> {
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
pub(super) fn being_made(path: &Path) -> bool {
    let complete = fs::symlink_metadata(path.join(METADATA_FILE)).is_ok_and(|m| m.is_file())
        && fs::symlink_metadata(path.join(INCOMPLETE_MARKER)).is_err();
    !complete
}

pub(super) fn mode_bits(meta: &fs::Metadata, default: u32) -> u32 {
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

pub(super) fn mtime(meta: &fs::Metadata) -> (u16, u16) {
    dos_datetime(meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH))
}

pub(super) fn walk_dir(
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
                super::super::OFFLINE_FILE
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

pub(super) fn prefix_root(prefix: &str) -> &str {
    // "<id>/" of any prefix "<id>/a/b/".
    match prefix.find('/') {
        Some(i) => &prefix[..=i],
        None => prefix,
    }
}

/// A symlink is archived only when its target is relative and stays inside the capsule.
pub(super) fn check_link(root: &Path, link: &Path, target: &Path) -> Result<String> {
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
