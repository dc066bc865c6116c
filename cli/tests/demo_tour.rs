//! `make demo` runs the whole tour (`examples/demo/demo.sh`: storage, archive, stagings) to the
//! end, and every step that the tour says is refused is refused.

use std::process::Command;

#[test]
fn the_demo_tour_runs_to_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo/demo.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_capsa"))
        .env("TMPDIR", tmp.path())
        .env_remove("CAPSA_STORE")
        .output()
        .expect("run demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for expected in [
        // storage
        "$ capsa bump",
        "v002",
        "1004",
        "(refused, as it should be)",
        // archive
        "archive: capsule",
        // stagings: the told-to-fail update exits 21 (BACKEND), a second delete 17
        "(capsa exited with 21",
        "(capsa exited with 17)",
        // server
        "listening on http://127.0.0.1:",
        "\"status\":\"Running\"",
        "event: StatusChanged",
        "\"code\":\"UNAUTHENTICATED\"",
        "SIGTERM: server stopped",
        "Tour finished",
    ] {
        assert!(
            stdout.contains(expected),
            "the tour's output lacks {expected:?}:\n{stdout}\n{stderr}"
        );
    }
    let all = format!("{stdout}{stderr}");
    assert!(
        !all.contains("hunter2"),
        "a private value was printed:\n{all}"
    );
    // The tour removes its temporary store.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the tour left {left:?} behind");
}
