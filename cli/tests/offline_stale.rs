//! `capsa offline` refuses an archive that no longer holds the capsule's bytes (a file
//! rewritten after archiving, same size), naming the file, and removes nothing.

use std::fs;

use capsa::{BumpOptions, Section, Store, StoreOptions};

mod support;

#[test]
fn offline_refuses_a_stale_archive() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("show");
    let store = Store::init(&root, StoreOptions::default()).unwrap();
    let id = "656796239c1b981568180616";
    let capsule = store.create_capsule(id).unwrap();
    let v1 = capsule.bump(BumpOptions::default()).unwrap();
    let scene = v1.section(Section::Scenes).join("sh010_v001.ma");
    fs::write(&scene, "scene one\n").unwrap();
    let zip = dir.path().join("c.zip");
    let run = |args: &[&str]| support::capsa_in(&root, args);
    let out = run(&["archive", id, "-o", zip.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    fs::write(&scene, "scene two\n").unwrap();
    let out = run(&["offline", id, zip.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a stale archive was accepted");
    assert_ne!(out.status.code(), Some(101), "panicked: {stderr}");
    assert!(stderr.contains("sh010_v001.ma"), "{stderr}");
    assert!(stderr.to_lowercase().contains("changed"), "{stderr}");
    assert!(!capsule.is_offline());
    assert_eq!(fs::read_to_string(&scene).unwrap(), "scene two\n");
}
