//! `file:///…` archive URLs end to end through the CLI: archive, verify, offline (the stub
//! records the file), retrieve, restore elsewhere; and a relative or host-bearing file URL
//! is refused with one line naming the rule.

use std::fs;
use std::process::Output;

use capsa::{BumpOptions, Section, Store, StoreOptions};

mod support;
use support::capsa_in as capsa;

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_file_url_round_trips_through_offline_and_retrieve() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::init(&root, StoreOptions::default()).unwrap();
    let capsule = store.create_capsule("fileurl").unwrap();
    let v = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(v.section(Section::Scenes).join("a.ma"), b"scene one").unwrap();
    fs::write(
        v.section(Section::Artifacts).join("p.exr"),
        vec![7u8; 3 << 20],
    )
    .unwrap();
    let zip = dir.path().join("vault").join("fileurl.zip");
    fs::create_dir_all(zip.parent().unwrap()).unwrap();
    let target = format!("file://{}", zip.display());

    ok(capsa(&root, &["archive", "fileurl", "-o", &target]));
    assert!(zip.is_file(), "the archive is at the URL's path");
    let verified = ok(capsa(&root, &["--json", "verify", &target, "--sha256"]));
    let report: serde_json::Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(report["capsule"], "fileurl", "{report}");
    ok(capsa(&root, &["offline", "fileurl", &target]));
    assert!(capsule.is_offline());
    // The stub records the file the URL names.
    assert_eq!(
        capsule.offline_stub().unwrap().unwrap().archive,
        zip.display().to_string()
    );
    ok(capsa(&root, &["retrieve", "fileurl"]));
    assert!(!capsule.is_offline());
    let v = capsule.latest().unwrap().unwrap();
    assert_eq!(
        fs::read(v.section(Section::Scenes).join("a.ma")).unwrap(),
        b"scene one"
    );

    let other = dir.path().join("other");
    Store::init(&other, StoreOptions::default()).unwrap();
    ok(capsa(&other, &["restore", &target]));
    let restored = Store::open(&other).unwrap().capsule("fileurl").unwrap();
    let rv = restored.latest().unwrap().unwrap();
    assert_eq!(
        fs::read(rv.section(Section::Artifacts).join("p.exr")).unwrap(),
        vec![7u8; 3 << 20]
    );
}

#[test]
fn a_file_url_without_an_absolute_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::init(&root, StoreOptions::default()).unwrap();
    store
        .create_capsule("bad")
        .unwrap()
        .bump(BumpOptions::default())
        .unwrap();
    for bad in ["file://host/x.zip", "file://relative.zip"] {
        let out = capsa(&root, &["archive", "bad", "-o", bad]);
        assert!(!out.status.success(), "{bad} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("INVALID_ARGUMENT"), "{bad}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{bad}: {err}");
    }
    assert!(!dir.path().join("relative.zip").exists());
}
