//! Archiving a capsule that artists are working in: crates being made are skipped and
//! listed in the report, a bump beside the archive never fails it, and a file rewritten
//! while it is read is refused as `CHANGED`, never reported as verified.

#[path = "archive_support/mod.rs"]
mod common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use capsa::archive::{self, ArchiveOptions, RestoreOptions};
use capsa::{BumpOptions, ErrorCode, Section, Store, StoreOptions};
use common::*;

/// A crate a killed bump left (its directory and the incomplete marker, no metadata) is not
/// archived; the report names it, and the restored capsule has only the complete crates.
#[test]
fn an_incomplete_crate_is_skipped_and_reported() {
    let (dir, store) = new_store();
    let capsule = store.create_capsule("live").unwrap();
    let v1 = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(v1.section(Section::Scenes).join("a.ma"), b"a").unwrap();
    let before = tree_hash(capsule.path());
    let half = capsule.path().join("v002");
    fs::create_dir_all(half.join("scenes")).unwrap();
    fs::write(half.join(".capsa-incomplete"), b"pid 1").unwrap();
    fs::write(half.join("scenes/half.ma"), b"half").unwrap();

    let zip = dir.path().join("live.zip");
    let report = archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    assert_eq!(report.skipped, ["v002"], "{report:?}");
    assert!(report.verified);
    let names: Vec<String> = archive::list(&zip)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("v002")),
        "a crate being made was archived: {names:?}"
    );

    let other = Store::init(dir.path().join("other"), StoreOptions::default()).unwrap();
    let restored = archive::restore(&zip, &other, RestoreOptions::default()).unwrap();
    assert_eq!(tree_hash(restored.path()), before);
    // The version hint in the archive is backed by what it holds: the next bump is v002.
    let next = restored.bump(BumpOptions::default()).unwrap();
    assert_eq!(next.version_str(), "v002");
    assert!(other.fsck(false).unwrap().problems.is_empty());
}

/// One thread bumps 50 times while the other archives again and again: every archive
/// succeeds and verifies, and every crate in it is complete.
#[test]
fn archiving_while_bumping_never_fails() {
    let (dir, store) = new_store();
    let capsule = store.create_capsule("busy").unwrap();
    let v1 = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(v1.section(Section::Scenes).join("a.ma"), text(50_000)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let bumper = {
        let capsule = capsule.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let carry = BumpOptions {
                carry_over: vec![Section::Scenes],
                ..BumpOptions::default()
            };
            for _ in 0..50 {
                capsule.bump(carry.clone()).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut archived = 0;
    while !done.load(Ordering::SeqCst) || archived == 0 {
        let zip = dir.path().join(format!("busy{archived}.zip"));
        let report = archive::archive(&capsule, &zip, ArchiveOptions::default())
            .unwrap_or_else(|e| panic!("archive {archived} failed beside a bump: {e}"));
        assert!(report.verified);
        let names: Vec<String> = archive::list(&zip)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(
            !names.iter().any(|n| n.ends_with(".capsa-incomplete")),
            "archive {archived} holds a crate being made: {:?}",
            report.skipped
        );
        archived += 1;
    }
    bumper.join().unwrap();
    eprintln!("{archived} archives beside 50 bumps");
}

/// A capsule with one 64 MiB file, so an archive on one thread is still reading it when its
/// first progress report comes.
fn big_file_capsule(store: &Store, id: &str) -> (capsa::Capsule, std::path::PathBuf) {
    let capsule = store.create_capsule(id).unwrap();
    let v1 = capsule.bump(BumpOptions::default()).unwrap();
    let big = v1.section(Section::Artifacts).join("plate.exr");
    fs::write(&big, noise(64 << 20, 5)).unwrap();
    (capsule, big)
}

/// A large file rewritten in place while it is archived: `CHANGED` naming the file,
/// nothing at the destination, nothing said to be verified.
#[test]
fn a_file_rewritten_while_it_is_archived_is_changed() {
    let (dir, store) = new_store();
    let (capsule, big) = big_file_capsule(&store, "torn");
    let zip = dir.path().join("torn.zip");
    let (progress, rewritten) = on_first_progress(move || {
        // Same size, new content, written in place (no new inode).
        let mut f = fs::OpenOptions::new().write(true).open(&big).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(&noise(64 << 20, 6)).unwrap();
    });
    let options = ArchiveOptions {
        threads: Some(1),
        progress: Some(progress),
        ..ArchiveOptions::default()
    };
    let e = archive::archive(&capsule, &zip, options).unwrap_err();
    assert!(rewritten.load(Ordering::SeqCst));
    assert_eq!(e.code(), ErrorCode::Changed, "{e}");
    assert!(e.to_string().contains("plate.exr"), "{e}");
    assert!(!zip.exists(), "a torn archive was left at the destination");
    assert_eq!(names_in(dir.path()), ["store"], "temporary files left");
}

/// A hard link made to a file while it is archived (a bump carrying a published file over
/// links it) moves its change time but not its content: the archive succeeds.
#[test]
fn a_hard_link_made_while_archiving_is_not_a_change() {
    let (dir, store) = new_store();
    let (capsule, big) = big_file_capsule(&store, "linked");
    let link = dir.path().join("carried.exr");
    let (progress, linked) = on_first_progress(move || fs::hard_link(&big, &link).unwrap());
    let options = ArchiveOptions {
        threads: Some(1),
        progress: Some(progress),
        ..ArchiveOptions::default()
    };
    let zip = dir.path().join("linked.zip");
    let report = archive::archive(&capsule, &zip, options).unwrap();
    assert!(linked.load(Ordering::SeqCst));
    assert!(report.verified);
}
