//! `capsa staging reconcile --every`: the status updater as long-running processes. Two of
//! them on one state check each staging once a period (counted in the `check` script's log),
//! SIGTERM stops each within a second, and a backend that cannot be asked changes and deletes
//! nothing. On an SQLite state file, and on a shared PostgreSQL state under
//! `make test-postgres`. Also `--ttl`, the expiry in `show` / `list`, and per-key override
//! edits from the command line.
#![cfg(unix)] // the tests use shell scripts and Unix signals

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CAPSA: &str = env!("CARGO_BIN_EXE_capsa");

/// Logs `call args…`; exits with `<call>.exit` if present.
const SCRIPT: &str = r#"#!/bin/sh
d="$(dirname "$0")"
call="$(basename "$0")"
echo "$call $*" >> "$d/calls.log"
if [ -f "$d/$call.exit" ]; then exit "$(cat "$d/$call.exit")"; fi
exit 0
"#;

struct Env {
    dir: tempfile::TempDir,
    state: std::ffi::OsString,
}

impl Env {
    fn sqlite() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.db").into();
        Env::with(dir, state)
    }

    fn with(dir: tempfile::TempDir, state: std::ffi::OsString) -> Env {
        let s = dir.path().join("scripts");
        fs::create_dir_all(&s).unwrap();
        for call in [
            "create",
            "update",
            "delete",
            "check",
            "cleanup",
            "archive_check",
        ] {
            let p = s.join(call);
            fs::write(&p, SCRIPT).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Env { dir, state }
    }

    fn scripts(&self) -> PathBuf {
        self.dir.path().join("scripts")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(CAPSA);
        c.env_remove("CAPSA_STORE")
            .env_remove("CAPSA_NAMESPACE")
            .env_remove("CAPSA_SCRIPT_DIALECT")
            .env("CAPSA_SETTLE", "exit")
            .env("CAPSA_STAGING_STATE", &self.state)
            .env(
                "CAPSA_STAGING_BACKEND",
                format!("script:{}", self.scripts().display()),
            )
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let o = self.cmd(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        o
    }

    fn calls(&self, call: &str) -> Vec<String> {
        fs::read_to_string(self.scripts().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split(' ').next() == Some(call))
            .map(str::to_string)
            .collect()
    }

    /// A `reconcile --every` process, returned once it says its loop is up.
    fn updater(&self, every: &str) -> Child {
        let mut child = self
            .cmd(&["staging", "reconcile", "--every", every])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("reconciling every") {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "the updater ended before its loop started"
            );
        }
        // Keep draining its log so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in err.lines() {});
        child
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// SIGTERM `child`; how long it took to exit, which it must do successfully.
fn terminate(child: &mut Child) -> Duration {
    let t = Instant::now();
    // SAFETY: kill with a valid signal on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    let took = t.elapsed();
    assert!(status.success(), "the updater exited with {status}");
    took
}

const NAMES: [&str; 3] = ["web-one", "web-two", "web-three"];

fn two_updaters_check_each_staging_once_a_period(env: &Env) {
    for n in NAMES {
        env.run(&["staging", "create", n, "--tag", "1.0.0"]);
    }
    let t0 = Instant::now();
    let mut a = env.updater("1s");
    let mut b = env.updater("1s");
    while env.calls("check").len() < 3 * NAMES.len() {
        assert!(t0.elapsed() < Duration::from_secs(60), "no checks");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ta, tb) = (terminate(&mut a), terminate(&mut b));
    let elapsed = t0.elapsed();
    eprintln!("SIGTERM stopped the updaters in {ta:?} and {tb:?}");
    assert!(ta < Duration::from_secs(1), "SIGTERM took {ta:?}");
    assert!(tb < Duration::from_secs(1), "SIGTERM took {tb:?}");
    // A staging is due once its last check is 4/5 of a period old.
    let bound = (elapsed.as_secs_f64() / 0.8).floor() as usize + 1;
    for n in NAMES {
        let mine = env
            .calls("check")
            .iter()
            .filter(|l| l.contains(&format!("--name {n}")))
            .count();
        assert!(
            (1..=bound).contains(&mine),
            "{n}: {mine} checks in {elapsed:?} by two updaters (at most {bound})"
        );
    }
    // Stopped: nothing runs any more.
    let total = env.calls("check").len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(env.calls("check").len(), total);
}

#[test]
fn staging_updaters_on_one_state_file_check_each_staging_once() {
    two_updaters_check_each_staging_once_a_period(&Env::sqlite());
}

#[test]
fn staging_updater_with_an_unreachable_backend_changes_nothing() {
    let env = Env::sqlite();
    for n in NAMES {
        env.run(&["staging", "create", n, "--tag", "1.0.0"]);
    }
    env.run(&["staging", "delete", NAMES[0]]);
    // 75: the backend cannot be asked (capsa's transient exit code).
    fs::write(env.scripts().join("check.exit"), "75").unwrap();
    fs::write(env.scripts().join("archive_check.exit"), "75").unwrap();
    let mut u = env.updater("300ms");
    let t0 = Instant::now();
    while env.calls("check").len() < 2 * (NAMES.len() - 1) {
        assert!(t0.elapsed() < Duration::from_secs(60), "no checks");
        std::thread::sleep(Duration::from_millis(50));
    }
    terminate(&mut u);
    let list: serde_json::Value =
        serde_json::from_slice(&env.run(&["--json", "staging", "list"]).stdout).unwrap();
    let statuses: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("web-one", "Archived"),
            ("web-three", "Running"),
            ("web-two", "Running")
        ]
    );
    assert_eq!(env.calls("delete").len(), 1, "only the delete asked for");
    assert!(env.calls("cleanup").is_empty());
}

#[test]
fn staging_ttl_shows_and_archives_on_reconcile() {
    let env = Env::sqlite();
    env.run(&[
        "staging", "create", "preview", "--tag", "1.0.0", "--ttl", "3d",
    ]);
    let show = text(&env.run(&["staging", "show", "preview"]));
    assert!(show.contains("expires:"), "{show}");
    let list = text(&env.run(&["staging", "list"]));
    assert!(list.contains(" expires "), "{list}");
    let o = env
        .cmd(&[
            "staging", "update", "preview", "--tag", "1.0.1", "--ttl", "3x",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(25), "{}", text(&o)); // 10 + INVALID_ARGUMENT
    assert!(text(&o).contains("ttl"), "{}", text(&o));
    // An expiry that has passed: the next reconcile archives it.
    env.run(&[
        "staging", "update", "preview", "--tag", "1.0.1", "--ttl", "0s",
    ]);
    let o = text(&env.run(&["staging", "reconcile"]));
    assert!(o.contains("expired 1"), "{o}");
    let log = text(&env.run(&["staging", "log", "preview"]));
    assert!(
        log.lines()
            .any(|l| l.contains("delete") && l.contains("by ttl")),
        "{log}"
    );
    let s: serde_json::Value =
        serde_json::from_slice(&env.run(&["--json", "staging", "show", "preview"]).stdout).unwrap();
    assert_eq!(s["status"], "Archived");
}

#[test]
fn staging_update_sets_and_unsets_single_overrides() {
    let env = Env::sqlite();
    env.run(&[
        "staging",
        "create",
        "web",
        "--tag",
        "1.0.0",
        "--app",
        "LOG=info",
        "--app",
        "MODE=a",
        "--staging",
        "replicas=2",
    ]);
    env.run(&[
        "staging",
        "update",
        "web",
        "--tag",
        "1.0.1",
        "--set-app-env-override",
        "LOG=debug",
        "--set-app-env-override",
        "TOKEN=t0ps3cret",
        "--private",
        "TOKEN",
        "--unset-staging-override",
        "replicas",
    ]);
    let s: serde_json::Value =
        serde_json::from_slice(&env.run(&["--json", "staging", "show", "web"]).stdout).unwrap();
    let got: Vec<String> = s["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{}:{}={}", o["scope"], o["key"], o["value"]))
        .collect();
    assert_eq!(
        got,
        [
            r#""app":"LOG"="debug""#,
            r#""app":"MODE"="a""#,
            r#""app":"TOKEN"="***""#
        ]
    );
    // The script got the real value, with the kept keys.
    let update = env.calls("update").pop().unwrap();
    assert!(
        update.contains("TOKEN=t0ps3cret") && update.contains("MODE=a"),
        "{update}"
    );
    assert!(!update.contains("replicas"), "{update}");
    let o = env
        .cmd(&[
            "staging",
            "update",
            "web",
            "--tag",
            "1.0.2",
            "--unset-app-env-override",
            "NOPE",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no app override \"NOPE\" to unset"),
        "{}",
        text(&o)
    );
}

/// Two updaters on one shared PostgreSQL state (the server of `make test-postgres`).
#[cfg(feature = "postgres-tests")]
#[test]
fn staging_updaters_on_postgres_check_each_staging_once() {
    let url = support::postgres_database("updater");
    let env = Env::with(tempfile::tempdir().unwrap(), url.into());
    two_updaters_check_each_staging_once_a_period(&env);
}
