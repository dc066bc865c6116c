//! SIGKILL in the middle of `capsa archive` / `capsa restore`: nothing at the destination,
//! no capsule directory, and a rerun succeeds.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capsa::{BumpOptions, Section, Store, StoreOptions};

mod support;
use support::{noise, noisy_capsule};

const CAPSA: &str = env!("CARGO_BIN_EXE_capsa");

fn temp_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(capsa::atomic::TEMP_PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

/// Start `args`, wait until `ready()` says the work is under way, SIGKILL it.
fn kill_midway(args: &[&std::ffi::OsStr], ready: impl Fn() -> bool) {
    let mut child = Command::new(CAPSA)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("capsa finished ({status}) before it could be killed: make the capsule bigger");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "never got under way"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(30));
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "capsa finished before the kill");
}

#[test]
fn sigkill_during_archive_and_restore_leaves_nothing_and_rerun_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    noisy_capsule(&root, "killme");
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let zip = out.join("killme.zip");
    let s = |p: &Path| p.as_os_str().to_owned();
    let archive_args = [
        s(Path::new("--store")),
        s(&root),
        "archive".into(),
        "killme".into(),
        "-o".into(),
        s(&zip),
        "--policy".into(),
        "deflate".into(),
    ];
    let argv: Vec<&std::ffi::OsStr> = archive_args.iter().map(|a| a.as_os_str()).collect();
    kill_midway(&argv, || !temp_names(&out).is_empty());
    assert!(
        !zip.exists(),
        "a killed archive left a file at the destination"
    );
    let status = Command::new(CAPSA).args(&argv).status().unwrap();
    assert!(status.success());
    let status = Command::new(CAPSA)
        .arg("verify")
        .arg(&zip)
        .status()
        .unwrap();
    assert!(status.success());

    // Restore into a second store, killed once the temporary tree is being written.
    let root2 = dir.path().join("store2");
    let store2 = Store::init(&root2, StoreOptions::default()).unwrap();
    let scratch = store2.scratch_dir().unwrap();
    let restore_args = [
        s(Path::new("--store")),
        s(&root2),
        "restore".into(),
        s(&zip),
    ];
    let argv: Vec<&std::ffi::OsStr> = restore_args.iter().map(|a| a.as_os_str()).collect();
    kill_midway(&argv, || !temp_names(&scratch).is_empty());
    assert!(
        !root2.join("killme").exists(),
        "a killed restore left a capsule directory"
    );
    let status = Command::new(CAPSA).args(&argv).status().unwrap();
    assert!(status.success());
    let back = store2.capsule("killme").unwrap();
    let v = back.latest().unwrap().unwrap();
    assert_eq!(
        fs::read(v.section(Section::Artifacts).join("f07.bin")).unwrap(),
        noise(8 << 20, 8)
    );
}

#[test]
fn json_reports_and_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::init(&root, StoreOptions::default()).unwrap();
    let capsule = store.create_capsule("cli").unwrap();
    capsule.bump(BumpOptions::default()).unwrap();
    let zip = dir.path().join("cli.zip");
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new(CAPSA)
            .arg("--store")
            .arg(&root)
            .arg("--json")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "archive".as_ref(),
        "cli".as_ref(),
        "-o".as_ref(),
        zip.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["capsule"], "cli");
    assert_eq!(v["verified"], true);
    let out = run(&["verify".as_ref(), "--sha256".as_ref(), zip.as_os_str()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["archive_sha256"].as_str().unwrap().len(), 64);
    // Archiving again onto the same name: ALREADY_EXISTS (code 2 → exit 12).
    let out = run(&[
        "archive".as_ref(),
        "cli".as_ref(),
        "-o".as_ref(),
        zip.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(12));
    let out = run(&["offline".as_ref(), "cli".as_ref(), zip.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(store.capsule("cli").unwrap().is_offline());
    let out = run(&["retrieve".as_ref(), "cli".as_ref()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["offline"], false);
    assert_eq!(v["crates"][0], "v001");
}
