//! `capsa staging` with Octopod's scripts: `--backend octopod:DIR`, `--namespace`, statuses
//! settled by `check` through `reconcile` (or at once with `--settle exit`), `config_check`'s
//! refusal shown on one line, `staging info`.
#![cfg(unix)] // the tests use shell scripts

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CAPSA: &str = env!("CARGO_BIN_EXE_capsa");

/// Logs `name args…`; `config_check` refuses the tag `bad` with a message on stdout; `info`
/// prints two named URLs.
const SCRIPT: &str = r#"#!/bin/sh
d="$(dirname "$0")"
call="$(basename "$0")"
echo "$call $*" >> "$d/calls.log"
case "$call" in
  config_check)
    case "$*" in *image.tag=bad*) echo "image bad is not in the registry"; exit 1;; esac;;
  info)
    echo "app,https://$8.example.test"
    echo "logs,https://logs.example.test/$8";;
esac
exit 0
"#;

fn scripts(root: &Path) -> PathBuf {
    let s = root.join("octopod");
    fs::create_dir_all(&s).unwrap();
    for call in [
        "create",
        "update",
        "archive",
        "unarchive",
        "check",
        "cleanup",
        "archive_check",
        "config_check",
        "info",
    ] {
        let p = s.join(call);
        fs::write(&p, SCRIPT).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    s
}

fn capsa(root: &Path, backend: &str, args: &[&str]) -> Output {
    Command::new(CAPSA)
        .env_remove("CAPSA_STORE")
        .env_remove("CAPSA_NAMESPACE")
        .env_remove("CAPSA_SCRIPT_DIALECT")
        .env_remove("CAPSA_SETTLE")
        .env("CAPSA_STAGING_STATE", root.join("state.db"))
        .env("CAPSA_STAGING_BACKEND", backend)
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn status(root: &Path, backend: &str, name: &str) -> String {
    let out = ok(&capsa(root, backend, &["--json", "staging", "show", name]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["status"].as_str().unwrap().to_string()
}

#[test]
fn staging_cli_octopod_backend_settles_by_check_and_prints_info() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let s = scripts(root);
    let backend = format!("octopod:{}", s.display());
    let out = ok(&capsa(
        root,
        &backend,
        &[
            "staging",
            "create",
            "web",
            "--tag",
            "1.0.0",
            "--app",
            "A=1",
            "--namespace",
            "cactus",
        ],
    ));
    assert!(out.starts_with("web: CreatePending"), "{out}");
    let calls = fs::read_to_string(s.join("calls.log")).unwrap();
    let create = calls.lines().find(|l| l.starts_with("create ")).unwrap();
    assert_eq!(
        create,
        "create --project-name capsa --base-domain localhost --namespace cactus --name web \
         --application-config A=1 --deployment-config image.tag=1.0.0"
    );
    assert!(calls.starts_with("config_check "), "{calls}");
    ok(&capsa(root, &backend, &["staging", "reconcile"]));
    assert_eq!(status(root, &backend, "web"), "Running");

    let info = ok(&capsa(root, &backend, &["staging", "info", "web"]));
    assert_eq!(
        info,
        "app https://web.example.test\nlogs https://logs.example.test/web\n"
    );
    let json = ok(&capsa(
        root,
        &backend,
        &["--json", "staging", "info", "web"],
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["name"], "app");
    assert_eq!(v[1]["url"], "https://logs.example.test/web");

    // `config_check` refuses: one clear line, the invalid-argument exit code, nothing run.
    let o = capsa(
        root,
        &backend,
        &["staging", "create", "api", "--tag", "bad"],
    );
    assert_eq!(o.status.code(), Some(10 + 15));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "invalid configuration: config_check refused: image bad is not in the registry"
        ),
        "{err}"
    );
    let calls = fs::read_to_string(s.join("calls.log")).unwrap();
    assert!(!calls.contains(
        "create --project-name capsa --base-domain localhost --namespace stagings --name api"
    ));

    // Today's behaviour on request.
    let out = ok(&capsa(
        root,
        &backend,
        &[
            "staging", "create", "fast", "--tag", "1.0.0", "--settle", "exit",
        ],
    ));
    assert!(out.starts_with("fast: Running"), "{out}");
    let o = capsa(root, &backend, &["staging", "list", "--settle", "later"]);
    assert_eq!(
        o.status.code(),
        Some(10 + 15),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn staging_cli_info_with_dm_scripts_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let s = scripts(root);
    let backend = format!("script:{}", s.display());
    ok(&capsa(
        root,
        &backend,
        &[
            "staging", "create", "web", "--tag", "1.0.0", "--settle", "exit",
        ],
    ));
    let o = capsa(root, &backend, &["staging", "info", "web"]);
    assert_eq!(
        o.status.code(),
        Some(10 + 12),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
