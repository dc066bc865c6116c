//! `capsa publish` of a broken frame pattern is INVALID_SEQUENCE naming the rule, never
//! "file not found"; a plain missing file is still NOT_FOUND.

use std::process::Command;

use capsa::{BumpOptions, Store, StoreOptions};

const CAPSA: &str = env!("CARGO_BIN_EXE_capsa");

#[test]
fn broken_frame_patterns_are_invalid_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::init(&root, StoreOptions::default()).unwrap();
    store
        .create_capsule("pat")
        .unwrap()
        .bump(BumpOptions::default())
        .unwrap();
    let publish = |src: &str| {
        let out = Command::new(CAPSA)
            .arg("--store")
            .arg(&root)
            .args(["publish", "pat", "v001"])
            .arg(dir.path().join(src))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{src} accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for bad in [
        "plate.1-10x0#.exr",
        "plate.%0999d.exr",
        "plate.1-999999999999#.exr",
        "plate.10-1x0#.exr",
        "plate.%d%d.exr",
        "plate.1-5,,#.exr",
        "plate.1-2-3#.exr",
    ] {
        let err = publish(bad);
        assert!(err.contains("[INVALID_SEQUENCE]"), "{bad}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{bad}: {err}");
    }
    let err = publish("plate.1001.exr");
    assert!(err.contains("[NOT_FOUND]"), "{err}");
}
