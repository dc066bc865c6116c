//! 100 MB of script output: captured bounded, and the capsa process's peak memory stays far
//! below the output size. Alone in its test binary so that the children's peak memory
//! (`RUSAGE_CHILDREN`) is this test's only.
#![cfg(unix)] // the tests use shell scripts and Unix process control

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn staging_script_100mb_output_keeps_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("scripts");
    fs::create_dir_all(&s).unwrap();
    let p = s.join("create");
    fs::write(
        &p,
        "#!/bin/sh\necho START\nhead -c 104857600 /dev/zero | tr '\\0' y\necho\necho END\n",
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state.db");
    let o = Command::new(env!("CARGO_BIN_EXE_capsa"))
        .args(["staging", "create", "loud", "--tag", "1.0.0"])
        .arg("--backend")
        .arg(format!("script:{}", s.display()))
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) },
        0
    );
    let peak_mb = ru.ru_maxrss / 1024; // KiB on Linux
    assert!(
        peak_mb < 60,
        "peak RSS of capsa {peak_mb} MB for 100 MB of output"
    );
    let log = Command::new(env!("CARGO_BIN_EXE_capsa"))
        .args(["--json", "staging", "log", "loud", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    let out = rows[0]["output"].as_str().unwrap();
    assert!(out.starts_with("START"));
    assert!(out.trim_end().ends_with("END"));
    assert!(out.contains("bytes not kept"));
    assert!(out.len() < 100 * 1024, "{}", out.len());
}
