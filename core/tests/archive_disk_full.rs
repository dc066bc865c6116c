//! Disk full: archiving onto, and restoring into, a small filesystem that fills up (a
//! size-limited tmpfs each test mounts; the suite runs as root) gives a clear error, leaves
//! no partial archive and no half-restored capsule, and the store passes `fsck` afterwards.

#[path = "archive_support/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;

use capsa::archive::{self, ArchiveOptions, RestoreOptions};
use capsa::{BumpOptions, Capsule, ErrorCode, Section, Store, StoreOptions};
use common::*;

/// A tmpfs of `mib` MiB mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u32) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "these tests mount a small tmpfs and must run as root: mount said {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A capsule holding `mib` MiB of incompressible data in one crate.
fn capsule_of(store: &Store, id: &str, mib: usize) -> Capsule {
    let capsule = store.create_capsule(id).unwrap();
    let v1 = capsule.bump(BumpOptions::default()).unwrap();
    let art = v1.section(Section::Artifacts);
    for i in 0..mib {
        fs::write(
            art.join(format!("plate.{i:04}.exr")),
            noise(1 << 20, i as u64),
        )
        .unwrap();
    }
    capsule
}

fn assert_fsck_clean(store: &Store) {
    let report = store.fsck(false).unwrap();
    assert!(report.problems.is_empty(), "fsck: {:?}", report.problems);
}

fn is_disk_full(e: &capsa::Error) -> bool {
    e.code() == ErrorCode::Io && e.to_string().contains("No space left")
}

#[test]
fn archiving_onto_a_full_filesystem_leaves_no_partial_archive() {
    let small = Tmpfs::mount(4);
    let (_dir, store) = new_store();
    let capsule = capsule_of(&store, "full", 8);
    let before = tree_hash(capsule.path());
    let dest = small.path().join("full.zip");
    let e = archive::archive(&capsule, &dest, ArchiveOptions::default()).unwrap_err();
    assert!(is_disk_full(&e), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
    assert!(!dest.exists(), "a partial archive is at the destination");
    assert_eq!(
        names_in(small.path()),
        Vec::<String>::new(),
        "temporary files left"
    );
    assert_eq!(tree_hash(capsule.path()), before);
    assert_fsck_clean(&store);
}

/// An archive larger than the free space is refused before anything is written.
#[test]
fn restoring_more_than_the_free_space_is_refused_before_writing() {
    let (dir, store) = new_store();
    let capsule = capsule_of(&store, "large", 12);
    let zip = dir.path().join("large.zip");
    archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    let small = Tmpfs::mount(8);
    let target = Store::init(small.path().join("show"), StoreOptions::default()).unwrap();
    let e = archive::restore(&zip, &target, RestoreOptions::default()).unwrap_err();
    assert!(!e.to_string().contains('\n'), "{e}");
    assert!(e.to_string().contains("free"), "{e}");
    assert_eq!(
        names_in(target.root()),
        [".capsa"],
        "restore left a capsule"
    );
    assert!(names_in(&target.scratch_dir().unwrap()).is_empty());
    assert_fsck_clean(&target);
}

/// The filesystem fills up while the restore writes (another writer takes the space after
/// the free-space check): a clear error, no capsule, nothing in scratch, a clean fsck; with
/// the space back the same restore succeeds.
#[test]
fn a_filesystem_that_fills_up_during_restore_leaves_no_half_restored_capsule() {
    let (dir, store) = new_store();
    let capsule = capsule_of(&store, "fill", 3);
    let want = tree_hash(capsule.path());
    let zip = dir.path().join("fill.zip");
    archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    let small = Tmpfs::mount(8);
    let target = Store::init(small.path().join("show"), StoreOptions::default()).unwrap();
    let filler: PathBuf = small.path().join("filler");
    let (progress, filled) = on_first_progress({
        let filler = filler.clone();
        // Take all but a few KiB of what is left.
        move || {
            let _ = fs::write(&filler, vec![7u8; 8 << 20]);
        }
    });
    let options = RestoreOptions {
        threads: Some(1),
        progress: Some(progress),
        ..RestoreOptions::default()
    };
    let e = archive::restore(&zip, &target, options).unwrap_err();
    assert!(
        filled.load(Ordering::SeqCst),
        "the progress callback never ran"
    );
    assert!(is_disk_full(&e), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
    assert_eq!(
        names_in(target.root()),
        [".capsa"],
        "a half-restored capsule"
    );
    assert!(names_in(&target.scratch_dir().unwrap()).is_empty());
    assert_fsck_clean(&target);

    fs::remove_file(&filler).unwrap();
    let restored = archive::restore(&zip, &target, RestoreOptions::default()).unwrap();
    assert_eq!(tree_hash(restored.path()), want);
    assert_fsck_clean(&target);
}
