//! `take_offline` proves every byte now in the capsule is in the archive: a file changed
//! after archiving (same size), a changed symlink target, a changed kind or an extra file
//! are refused with `Changed` naming the file, and nothing is removed.

#[path = "archive_support/mod.rs"]
mod common;

use std::fs;

use capsa::archive::{self, ArchiveOptions};
use capsa::{ErrorCode, Section};
use common::*;

fn archived() -> (
    tempfile::TempDir,
    capsa::Store,
    capsa::Capsule,
    std::path::PathBuf,
) {
    let (dir, store) = new_store();
    let capsule = sample_capsule(&store, "656796239c1b981568180615");
    let zip = dir.path().join("c.zip");
    archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    (dir, store, capsule, zip)
}

fn refused_changed(capsule: &capsa::Capsule, zip: &std::path::Path, names: &str) {
    let before = tree_hash(capsule.path());
    let err = capsule.take_offline(zip).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Changed, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(names), "expected {names:?} in: {msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(!capsule.is_offline());
    assert_eq!(tree_hash(capsule.path()), before, "nothing removed");
}

#[test]
fn same_size_content_change_is_refused() {
    let (_dir, _store, capsule, zip) = archived();
    let v1 = capsule.crates().unwrap()[0].clone();
    let f = v1.section(Section::Scenes).join("shot010_v001.ma");
    let mut bytes = fs::read(&f).unwrap();
    bytes[100_000] ^= 0x20;
    // Sealed crates are read-only: make it writable for the edit.
    set_mode(&f, 0o644);
    fs::write(&f, &bytes).unwrap();
    refused_changed(&capsule, &zip, "shot010_v001.ma");
}

#[test]
fn multi_chunk_file_change_at_the_end_is_refused() {
    let (_dir, _store, capsule, zip) = archived();
    let v1 = capsule.crates().unwrap()[0].clone();
    let f = v1.section(Section::Artifacts).join("big.bin");
    let mut bytes = fs::read(&f).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    set_mode(&f, 0o644);
    fs::write(&f, &bytes).unwrap();
    refused_changed(&capsule, &zip, "big.bin");
}

#[cfg(unix)]
#[test]
fn changed_symlink_target_is_refused() {
    let (_dir, _store, capsule, zip) = archived();
    let v1 = capsule.crates().unwrap()[0].clone();
    let art = v1.section(Section::Artifacts);
    set_mode(&art, 0o755);
    let link = art.join("scene_link.ma");
    fs::remove_file(&link).unwrap();
    // Same length as "../scenes/shot010_v001.ma".
    std::os::unix::fs::symlink("../scenes/shot010_v001.mb", &link).unwrap();
    refused_changed(&capsule, &zip, "scene_link.ma");
}

#[test]
fn kind_change_and_extra_and_missing_files_are_refused() {
    let (_dir, _store, capsule, zip) = archived();
    let v2 = capsule.latest().unwrap().unwrap();
    let scenes = v2.section(Section::Scenes);
    let extra = scenes.join("later.ma");
    fs::write(&extra, b"new work").unwrap();
    refused_changed(&capsule, &zip, "later.ma");
    fs::remove_file(&extra).unwrap();

    let f = scenes.join("shot010_v002.ma");
    let saved = fs::read(&f).unwrap();
    fs::remove_file(&f).unwrap();
    refused_changed(&capsule, &zip, "shot010_v002.ma");

    fs::create_dir(&f).unwrap();
    refused_changed(&capsule, &zip, "shot010_v002.ma");
    fs::remove_dir(&f).unwrap();
    fs::write(&f, saved).unwrap();

    // Unchanged again: it goes offline and comes back byte for byte.
    let before = tree_hash(capsule.path());
    capsule.take_offline(&zip).unwrap();
    let back = capsule.store().retrieve(capsule.id().as_str()).unwrap();
    assert_eq!(tree_hash(back.path()), before);
}
