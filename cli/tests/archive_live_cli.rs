//! `capsa archive` of a capsule with a crate being made leaves it out and says so, and
//! `capsa offline` then refuses that archive (the crate is not in it), removing nothing.

use std::fs;

use capsa::{BumpOptions, Section, Store, StoreOptions};

mod support;

#[test]
fn a_crate_being_made_is_skipped_and_blocks_offline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("show");
    let store = Store::init(&root, StoreOptions::default()).unwrap();
    let id = "656796239c1b981568180617";
    let capsule = store.create_capsule(id).unwrap();
    let v1 = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(v1.section(Section::Scenes).join("a.ma"), "a\n").unwrap();
    let half = capsule.path().join("v002");
    fs::create_dir_all(half.join("scenes")).unwrap();
    fs::write(half.join(".capsa-incomplete"), "pid 1").unwrap();
    let work = half.join("scenes/work.ma");
    fs::write(&work, "in progress\n").unwrap();

    let zip = dir.path().join("c.zip");
    let run = |args: &[&str]| support::capsa_in(&root, args);
    let out = run(&["archive", id, "-o", zip.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("skipped v002"), "{stdout}");

    let out = run(&[
        "--json",
        "archive",
        id,
        "-o",
        zip.to_str().unwrap(),
        "--replace",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["skipped"], serde_json::json!(["v002"]), "{report}");

    let out = run(&["offline", id, zip.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "offline took an archive without v002"
    );
    assert!(stderr.contains("v002"), "{stderr}");
    assert!(!capsule.is_offline());
    assert_eq!(fs::read_to_string(&work).unwrap(), "in progress\n");
}
