//! The `capsa` binary: concurrency across processes, crashes, errors and JSON output.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const ID: &str = "656796239c1b981568180614";

fn capsa(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_capsa"));
    c.env("CAPSA_STORE", store).env_remove("RUST_LOG");
    c
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "capsa failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn new_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("show");
    ok(capsa(&store).arg("init").output().unwrap());
    ok(capsa(&store)
        .args(["capsule", "create", ID])
        .output()
        .unwrap());
    (dir, store)
}

#[test]
fn eight_processes_times_fifty_bumps_give_v001_to_v400() {
    let (_d, store) = new_store();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| {
                        ok(capsa(&store).args(["bump", ID]).output().unwrap())
                            .trim()
                            .to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let printed: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let distinct: BTreeSet<&String> = printed.iter().collect();
    let expected: BTreeSet<String> = (1..=400).map(|n| format!("v{n:03}")).collect();
    assert_eq!(printed.len(), 400);
    assert_eq!(distinct.len(), 400, "no two processes got the same version");
    assert_eq!(
        distinct.into_iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );

    let json = ok(capsa(&store)
        .args(["crates", ID, "--json"])
        .output()
        .unwrap());
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 400);
    for row in &rows {
        let dir = Path::new(row["path"].as_str().unwrap());
        for s in ["artifacts", "publishes", "scenes"] {
            assert!(dir.join(s).is_dir(), "{} lacks {s}", dir.display());
        }
        assert!(row["created_at"].is_string());
    }
    let fsck = ok(capsa(&store).args(["fsck", "--json"]).output().unwrap());
    let report: serde_json::Value = serde_json::from_str(&fsck).unwrap();
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{fsck}");
}

/// Start `cmd`, wait until `ready()` holds, then SIGKILL it. Returns whether it was still
/// running when killed (so the test knows it interrupted real work).
fn kill_when(mut cmd: Command, ready: impl Fn() -> bool) -> bool {
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while !ready() {
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(60) {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL on unix
    child.wait().unwrap();
    running
}

#[test]
fn sigkill_during_bump_leaves_nothing_that_looks_complete() {
    let (_d, store) = new_store();
    ok(capsa(&store).args(["bump", ID]).output().unwrap());
    // Many scene files make the carry-over of the next bump take a while.
    let scenes = store.join(ID).join("v001/scenes");
    for i in 0..20_000 {
        fs::write(scenes.join(format!("shot_{i:05}_v001.ma")), b"scene data").unwrap();
    }
    let mut cmd = capsa(&store);
    cmd.args(["bump", ID, "--carry", "scenes"]);
    let v2 = store.join(ID).join("v002");
    let marker = v2.join(".capsa-incomplete");
    let interrupted = kill_when(cmd, || v2.join("scenes").exists() && marker.exists());
    assert!(interrupted, "the bump finished before it could be killed");
    assert!(
        !v2.join(".capsa-crate.json").exists(),
        "killed mid-way: no metadata"
    );

    // Readers skip it.
    let latest = ok(capsa(&store).args(["latest", ID]).output().unwrap());
    assert_eq!(latest.trim(), "v001");
    let crates = ok(capsa(&store).args(["crates", ID]).output().unwrap());
    assert_eq!(crates.lines().count(), 1);

    // fsck reports it, exits non-zero, changes nothing.
    let out = capsa(&store).args(["fsck", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"incomplete_crate"), "{kinds:?}");
    assert!(marker.exists());

    ok(capsa(&store).args(["fsck", "--repair"]).output().unwrap());
    ok(capsa(&store).arg("fsck").output().unwrap());
    let next = ok(capsa(&store).args(["bump", ID]).output().unwrap());
    assert_eq!(next.trim(), "v003");
    let crates = ok(capsa(&store).args(["crates", ID]).output().unwrap());
    assert_eq!(
        crates.lines().count(),
        3,
        "v002 completed (empty), v003 new"
    );
}

#[test]
fn sigkill_during_publish_leaves_no_half_file() {
    let (d, store) = new_store();
    ok(capsa(&store).args(["bump", ID]).output().unwrap());
    let src = d.path().join("plate.exr");
    let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut data = Vec::new();
    for _ in 0..400 {
        data.extend_from_slice(&chunk);
    }
    fs::write(&src, &data).unwrap();
    drop(data);
    let publishes = store.join(ID).join("v001/publishes");
    let temp_present = || {
        fs::read_dir(&publishes)
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(".capsa-tmp-"))
            })
            .unwrap_or(false)
    };
    let mut cmd = capsa(&store);
    cmd.args(["publish", ID, "v001"]).arg(&src);
    let interrupted = kill_when(cmd, temp_present);
    assert!(interrupted, "publish finished before it could be killed");
    assert!(
        !publishes.join("plate.exr").exists(),
        "no half-written published file"
    );

    let out = capsa(&store).args(["fsck"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("StaleTemp"));
    ok(capsa(&store).args(["fsck", "--repair"]).output().unwrap());
    assert!(!temp_present());
    let published = ok(capsa(&store)
        .args(["publish", ID, "v001"])
        .arg(&src)
        .output()
        .unwrap());
    assert_eq!(
        fs::metadata(published.trim()).unwrap().len(),
        400 * 1024 * 1024
    );
}

fn fails_with(out: Output, code: capsa::ErrorCode, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(10 + code.number() as i32),
        "expected {code}: {stderr}"
    );
    assert!(
        stderr.contains(needle),
        "stderr {stderr:?} lacks {needle:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
}

#[test]
fn bad_input_gives_one_clear_line_and_a_distinct_exit_code() {
    use capsa::ErrorCode::*;
    let (d, store) = new_store();
    for (id, rule) in [
        ("../x", "separator"),
        ("a/b", "separator"),
        ("", "empty"),
        (".hidden", "dot"),
    ] {
        fails_with(
            capsa(&store)
                .args(["capsule", "create", id])
                .output()
                .unwrap(),
            InvalidName,
            rule,
        );
    }
    let long = "a".repeat(200);
    fails_with(
        capsa(&store)
            .args(["capsule", "create", &long])
            .output()
            .unwrap(),
        InvalidName,
        "at most 128",
    );
    let names: Vec<_> = fs::read_dir(&store)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 2, "only .capsa and the capsule: {names:?}");
    assert!(!d.path().join("x").exists());

    for v in ["v", "v-1", "x001"] {
        fails_with(
            capsa(&store).args(["seal", ID, v]).output().unwrap(),
            InvalidVersion,
            v,
        );
    }
    fails_with(
        capsa(&store).args(["bump", "nothere"]).output().unwrap(),
        NotFound,
        "capsule not found: nothere",
    );
    let not_store = d.path().join("plain");
    fs::create_dir(&not_store).unwrap();
    fails_with(
        capsa(&not_store)
            .args(["capsule", "list"])
            .output()
            .unwrap(),
        InvalidStore,
        "not a capsa store",
    );
    assert!(!not_store.join(".capsa").exists());

    let cfg = store.join(".capsa/store.toml");
    fs::write(&cfg, "schema = \"9.0.0\"\npadding = 3\n").unwrap();
    fails_with(
        capsa(&store).args(["capsule", "list"]).output().unwrap(),
        Unsupported,
        "9.0.0",
    );
}

#[test]
fn publish_and_seal_through_the_cli() {
    use capsa::ErrorCode::*;
    let (d, store) = new_store();
    ok(capsa(&store)
        .args(["bump", ID, "--comment", "first pass"])
        .output()
        .unwrap());
    let src = d.path().join("review.mov");
    fs::write(&src, b"mov").unwrap();
    ok(capsa(&store)
        .args(["publish", ID, "v001"])
        .arg(&src)
        .output()
        .unwrap());
    fails_with(
        capsa(&store)
            .args(["publish", ID, "v001"])
            .arg(&src)
            .output()
            .unwrap(),
        AlreadyExists,
        "review.mov",
    );
    let latest = capsa(&store)
        .args(["latest", ID, "--published"])
        .output()
        .unwrap();
    fails_with(latest, NotFound, "published crate");
    ok(capsa(&store)
        .args(["publish", ID, "v001"])
        .arg(&src)
        .arg("final/review.mov")
        .arg("--seal")
        .output()
        .unwrap());
    fails_with(
        capsa(&store)
            .args(["publish", ID, "v001"])
            .arg(&src)
            .arg("late.mov")
            .output()
            .unwrap(),
        Sealed,
        "sealed",
    );
    let json = ok(capsa(&store)
        .args(["latest", ID, "--published", "--json"])
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["version"], "v001");
    assert_eq!(v["published"], true);
    assert_eq!(v["comment"], "first pass");
    let list = ok(capsa(&store)
        .args(["capsule", "list", "--json"])
        .output()
        .unwrap());
    let rows: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(rows[0]["id"], ID);
    assert_eq!(rows[0]["latest"], "v001");
}

#[test]
fn seq_all_lists_every_crates_sequences() {
    let (_d, store) = new_store();
    for _ in 0..2 {
        ok(capsa(&store).args(["bump", ID]).output().unwrap());
    }
    for v in ["v001", "v002"] {
        let dir = store.join(ID).join(v).join("artifacts/beauty");
        fs::create_dir_all(&dir).unwrap();
        for f in [1001, 1002, 1004] {
            fs::write(dir.join(format!("plate.{f}.exr")), b"").unwrap();
        }
    }
    let out = ok(capsa(&store).args(["seq", "--all"]).output().unwrap());
    assert_eq!(
        out,
        format!(
            "{ID}/v001/artifacts/beauty/plate.1001-1002,1004#.exr  (3 frames, missing 1003)\n\
             {ID}/v002/artifacts/beauty/plate.1001-1002,1004#.exr  (3 frames, missing 1003)\n"
        )
    );
    let json: serde_json::Value = serde_json::from_str(&ok(capsa(&store)
        .args(["--json", "seq", "--all"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[1]["count"], 3);
    // A directory and --all together are refused.
    let out = capsa(&store).args(["seq", "--all", "x"]).output().unwrap();
    assert!(!out.status.success());
}
