//! The archive part of the demo tour (`examples/demo/20-archive.sh`) runs and ends intact.

use std::fs;
use std::process::Command;

use capsa::{BumpOptions, Section, Store, StoreOptions};

#[test]
fn demo_archive_script_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("show");
    let store = Store::init(&root, StoreOptions::default()).unwrap();
    let id = "656796239c1b981568180614";
    let capsule = store.create_capsule(id).unwrap();
    let v1 = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(v1.section(Section::Scenes).join("sh010_v001.ma"), "scene\n").unwrap();
    for f in 1001..1004 {
        fs::write(
            v1.section(Section::Artifacts)
                .join(format!("plate.{f}.exr")),
            format!("pixels {f}\n"),
        )
        .unwrap();
    }
    capsule.bump(BumpOptions::default()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo/20-archive.sh"
    );
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(format!("source '{script}'"))
        .env("CAPSA", env!("CARGO_BIN_EXE_capsa"))
        .env("STORE", &root)
        .env("CAPSULE", id)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for heading in [
        "== archive",
        "== verify",
        "== offline",
        "== retrieve",
        "== intact",
    ] {
        assert!(stdout.contains(heading), "{heading} missing:\n{stdout}");
    }
    assert!(stdout.contains("intact: 6 files identical"), "{stdout}");
    assert!(!store.capsule(id).unwrap().is_offline());
}
