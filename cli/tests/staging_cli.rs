//! `capsa staging` as separate processes: concurrency across processes, SIGKILL in the middle
//! of a command, private values in every output, `--no-wait`, the default state file.
#![cfg(unix)] // the tests use shell scripts and Unix process control

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CAPSA: &str = env!("CARGO_BIN_EXE_capsa");

struct Env {
    dir: tempfile::TempDir,
    /// A `postgres://` state instead of the state file.
    url: Option<String>,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            url: None,
        }
    }
    fn state(&self) -> std::ffi::OsString {
        match &self.url {
            Some(u) => u.into(),
            None => self.dir.path().join("state.db").into(),
        }
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(CAPSA);
        c.env_remove("CAPSA_STORE")
            .env_remove("CAPSA_STAGING_BACKEND")
            .env_remove("CAPSA_STAGING_KEY_FILE")
            .env_remove("CAPSA_NAMESPACE")
            .env_remove("CAPSA_SCRIPT_DIALECT")
            // These suites predate check-settled statuses: a script's exit settles them.
            .env("CAPSA_SETTLE", "exit")
            .env("CAPSA_STAGING_STATE", self.state())
            .args(args);
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
    fn scripts(&self) -> PathBuf {
        let s = self.dir.path().join("scripts");
        fs::create_dir_all(&s).unwrap();
        for call in [
            "create",
            "update",
            "delete",
            "check",
            "cleanup",
            "archive_check",
        ] {
            script(
                &s,
                call,
                "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> \"$(dirname \"$0\")/calls.log\"\n",
            );
        }
        s
    }
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }
    fn status(&self, name: &str) -> String {
        self.json(&["--json", "staging", "show", name])["status"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn script(dir: &Path, call: &str, body: &str) {
    let p = dir.join(call);
    fs::write(&p, body).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Two processes issue commands on the same staging at once: exactly one proceeds, the
/// other gets Busy (exit 16), and both commands are in the audit log. The backend's scripts
/// block until the test releases them, so the two commands overlap whatever the machine load.
#[test]
fn staging_two_processes_one_proceeds_the_other_is_busy() {
    let env = Env::new();
    let s = env.scripts();
    let gate =
        "#!/bin/sh\nd=\"$(dirname \"$0\")\"\nwhile [ ! -f \"$d/release\" ]; do sleep 0.05; done\n";
    for call in ["create", "update", "delete"] {
        script(&s, call, gate);
    }
    let backend = format!("script:{}", s.display());
    let b = backend.as_str();
    let rounds: [(&[&str], &[&str]); 2] = [
        (
            &[
                "staging",
                "create",
                "duel",
                "--tag",
                "1.0.0",
                "--backend",
                b,
            ],
            &[
                "staging",
                "create",
                "duel",
                "--tag",
                "1.0.0",
                "--backend",
                b,
            ],
        ),
        (
            &[
                "staging",
                "update",
                "duel",
                "--tag",
                "1.1.0",
                "--backend",
                b,
            ],
            &["staging", "delete", "duel", "--backend", b],
        ),
    ];
    for (i, (a, b)) in rounds.into_iter().enumerate() {
        let _ = fs::remove_file(s.join("release"));
        let mut pa = env.spawn(a);
        let mut pb = env.spawn(b);
        // The loser exits on its own while the winner waits for the gate.
        let t = Instant::now();
        let first_done = loop {
            if pa.try_wait().unwrap().is_some() {
                break 'a';
            }
            if pb.try_wait().unwrap().is_some() {
                break 'b';
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "round {i}: neither returned"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        fs::write(s.join("release"), "").unwrap();
        let oa = pa.wait_with_output().unwrap();
        let ob = pb.wait_with_output().unwrap();
        let (loser, winner) = if first_done == 'a' {
            (&oa, &ob)
        } else {
            (&ob, &oa)
        };
        assert_eq!(loser.status.code(), Some(16), "round {i}: {}", text(loser));
        assert!(text(loser).contains("[BUSY]"), "{}", text(loser));
        assert!(winner.status.success(), "round {i}: {}", text(winner));
    }
    let log = env.json(&["--json", "staging", "log", "duel"]);
    let rows = log.as_array().unwrap();
    assert_eq!(rows.len(), 4, "{log:#}");
    let outcomes: Vec<&str> = rows
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "Success").count(), 2);
    assert_eq!(outcomes.iter().filter(|o| **o == "Refused").count(), 2);
    assert!(rows
        .iter()
        .filter(|r| r["outcome"] == "Refused")
        .all(|r| r["reason"].as_str().unwrap().contains("busy")));
}

fn wait_for_status(env: &Env, name: &str, want: &str) {
    let t = Instant::now();
    loop {
        let o = env.run(&["--json", "staging", "show", name]);
        if o.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            if v["status"] == want {
                return;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{name} never became {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill_pid_file(p: &Path) {
    if let Ok(pid) = fs::read_to_string(p) {
        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    }
}

/// SIGKILL in the middle of a command: the next open finds the staging pending; reconcile
/// finishes it from the backend's answer, or fails it once the pending timeout has passed.
#[test]
fn staging_sigkill_mid_command_is_found_pending_and_reconciled() {
    let env = Env::new();
    let s = env.scripts();
    script(
        &s,
        "create",
        "#!/bin/sh\necho $$ > \"$(dirname \"$0\")/create.pid\"\nexec sleep 30\n",
    );
    let backend = format!("script:{}", s.display());
    let b = backend.as_str();

    // 1. killed create, backend check says healthy → Running.
    let mut child = env.spawn(&[
        "staging",
        "create",
        "killed",
        "--tag",
        "1.0.0",
        "--backend",
        b,
    ]);
    wait_for_status(&env, "killed", "CreatePending");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    kill_pid_file(&s.join("create.pid"));
    assert_eq!(env.status("killed"), "CreatePending");
    let v = env.json(&["--json", "staging", "show", "killed"]);
    assert_eq!(v["command_in_progress"], "create");
    let r = env.json(&["--json", "staging", "reconcile", "--all", "--backend", b]);
    assert_eq!(r["report"]["resolved_pending"], 1, "{r}");
    assert_eq!(env.status("killed"), "Running");

    // 2. killed update, backend cannot say (exit 75) → stays pending until the timeout, then
    //    Failure with a reason.
    script(
        &s,
        "update",
        "#!/bin/sh\necho $$ > \"$(dirname \"$0\")/update.pid\"\nexec sleep 30\n",
    );
    script(
        &s,
        "check",
        "#!/bin/sh\necho 'api unreachable' >&2\nexit 75\n",
    );
    let mut child = env.spawn(&[
        "staging",
        "update",
        "killed",
        "--tag",
        "1.1.0",
        "--backend",
        b,
    ]);
    wait_for_status(&env, "killed", "UpdatePending");
    child.kill().unwrap();
    child.wait().unwrap();
    kill_pid_file(&s.join("update.pid"));
    let args = [
        "--json",
        "staging",
        "reconcile",
        "--all",
        "--backend",
        b,
        "--pending-timeout",
        "2",
    ];
    let r = env.json(&args);
    assert_eq!(r["report"]["failed_pending"], 0, "{r}");
    assert_eq!(env.status("killed"), "UpdatePending");
    std::thread::sleep(Duration::from_millis(2500));
    let r = env.json(&args);
    assert_eq!(r["report"]["failed_pending"], 1, "{r}");
    let v = env.json(&["--json", "staging", "show", "killed"]);
    assert_eq!(v["status"], "Failure");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("pending for more than 2 s"),
        "{v}"
    );
    // The interrupted commands' audit rows were completed, none lost.
    let log = env.json(&["--json", "staging", "log", "killed"]);
    let outcomes: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["Success", "Failure"]);
}

const SECRET: &str = "s3cret value=with spaces";

/// A private value appears in no output: show, list, log, watch, events, errors — but the
/// backend received it.
#[test]
fn staging_private_value_appears_in_no_output() {
    let env = Env::new();
    let s = env.scripts();
    let echo_fail = "#!/bin/sh\necho \"got $*\"\necho \"got $*\" >&2\nexit 5\n";
    script(&s, "create", "#!/bin/sh\necho \"got $*\"\necho \"got $*\" >&2\necho \"$*\" >> \"$(dirname \"$0\")/calls.log\"\n");
    script(&s, "update", echo_fail);
    script(&s, "check", echo_fail);
    let backend = format!("script:{}", s.display());
    let b = backend.as_str();
    let kv = format!("DB_PASSWORD={SECRET}");
    let mut outputs = Vec::new();
    let mut watch = env.spawn(&["staging", "watch", "--count", "7"]);
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(watch.stderr.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("watching"), "{first}");
    let mut go = |args: &[&str]| {
        let o = env.run(args);
        outputs.push((args.join(" "), text(&o)));
        o
    };
    assert!(go(&[
        "staging",
        "create",
        "vault",
        "--tag",
        "1.0.0",
        "--app",
        &kv,
        "--private",
        "DB_PASSWORD",
        "--staging",
        "X=1",
        "--backend",
        b
    ])
    .status
    .success());
    let o = go(&[
        "staging",
        "update",
        "vault",
        "--tag",
        "1.0.1",
        "--app",
        &kv,
        "--private",
        "DB_PASSWORD",
        "--backend",
        b,
    ]);
    assert_eq!(o.status.code(), Some(21), "update fails: BACKEND");
    go(&["staging", "restore", "vault", "--backend", b]);
    go(&["staging", "reconcile", "--all", "--backend", b]);
    go(&[
        "--json",
        "staging",
        "update",
        "vault",
        "--tag",
        "1.0.2",
        "--app",
        &kv,
        "--private",
        "DB_PASSWORD",
        "--backend",
        b,
    ]);
    go(&["staging", "show", "vault"]);
    go(&["--json", "staging", "show", "vault"]);
    go(&["staging", "list"]);
    go(&["--json", "staging", "list"]);
    go(&["staging", "log"]);
    go(&["--json", "staging", "log", "vault"]);
    go(&["staging", "watch", "--from-start", "--count", "7"]);
    go(&["--json", "staging", "watch", "--from-start", "--count", "7"]);
    let t = Instant::now();
    while watch.try_wait().unwrap().is_none() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = watch.kill();
    let w = watch.wait_with_output().unwrap();
    outputs.push(("live watch".into(), text(&w)));
    assert!(
        text(&w).contains("vault: (none) -> CreatePending"),
        "{}",
        text(&w)
    );
    for (what, out) in &outputs {
        assert!(
            !out.contains(SECRET) && !out.contains("s3cret"),
            "{what} leaked it:\n{out}"
        );
    }
    let all: String = outputs.iter().map(|(_, o)| o.as_str()).collect();
    assert!(all.contains("DB_PASSWORD=***"));
    assert!(all.contains("exited with code 5"));
    let calls = fs::read_to_string(s.join("calls.log")).unwrap();
    assert!(
        calls.contains(SECRET),
        "the backend must receive the real value"
    );
}

#[test]
fn staging_no_wait_returns_pending_and_finishes_in_background() {
    let env = Env::new();
    let s = env.scripts();
    script(
        &s,
        "create",
        "#!/bin/sh\nd=\"$(dirname \"$0\")\"\nwhile [ ! -f \"$d/release\" ]; do sleep 0.05; done\n",
    );
    let backend = format!("script:{}", s.display());
    // Returns while the backend is still blocked.
    let v = env.json(&[
        "--json",
        "staging",
        "create",
        "later",
        "--tag",
        "1.0.0",
        "--backend",
        &backend,
        "--no-wait",
    ]);
    assert_eq!(v["status"], "CreatePending");
    assert_eq!(env.status("later"), "CreatePending");
    fs::write(s.join("release"), "").unwrap();
    wait_for_status(&env, "later", "Running");
    // a refused --no-wait command reports the refusal and its exit code
    let o = env.run(&["staging", "restore", "later", "--no-wait"]);
    assert_eq!(o.status.code(), Some(17), "{}", text(&o));
    assert!(text(&o).contains("INVALID_TRANSITION"));
}

#[test]
fn staging_state_file_defaults_to_the_store() {
    let env = Env::new();
    let store = env.dir.path().join("show");
    fs::create_dir_all(&store).unwrap();
    let mut c = Command::new(CAPSA);
    c.env_remove("CAPSA_STAGING_STATE")
        .env_remove("CAPSA_STORE");
    let o = c.args(["staging", "list"]).output().unwrap();
    assert_eq!(o.status.code(), Some(25), "{}", text(&o));
    assert!(text(&o).contains("--state"));
    let run = |args: &[&str]| {
        Command::new(CAPSA)
            .env_remove("CAPSA_STAGING_STATE")
            .env_remove("CAPSA_STAGING_KEY_FILE")
            .env("CAPSA_STORE", &store)
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["staging", "list"]);
    assert_eq!(o.status.code(), Some(24), "not a store yet: {}", text(&o));
    fs::create_dir_all(store.join(".capsa")).unwrap();
    assert!(run(&["staging", "create", "home", "--tag", "1.0.0"])
        .status
        .success());
    assert!(store.join(".capsa/staging.db").is_file());
    // The key file that seals private values sits beside it, private to its owner.
    let key = store.join(".capsa/staging.key");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(text(&run(&["staging", "list"])).contains("home"));
}

/// `--state postgres://…`: processes share one PostgreSQL state. One proceeds while the other
/// is busy; a `watch` process sees the changes the others make (LISTEN/NOTIFY); `--no-wait`
/// works with the URL too. Needs the server of `make test-postgres`; fails without it.
#[cfg(feature = "postgres-tests")]
#[test]
fn staging_postgres_state_url_is_shared_by_processes() {
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
        url: Some(support::postgres_database("cli")),
    };
    // Create the schema before the watcher starts from "now".
    assert_eq!(
        env.json(&["--json", "staging", "list"]),
        serde_json::json!([])
    );
    let mut watch = env.spawn(&["--json", "staging", "watch", "--count", "6"]);
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(watch.stderr.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("watching"), "{first}");

    // The create is held at the backend until the file goes: certainly in flight.
    let hold = env.dir.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let slow = env.spawn(&[
        "staging",
        "create",
        "shared",
        "--tag",
        "1.0.0",
        "--mock-hold",
        hold.to_str().unwrap(),
    ]);
    wait_for_status(&env, "shared", "CreatePending");
    let busy = env.run(&["staging", "delete", "shared"]);
    assert_eq!(busy.status.code(), Some(16), "{}", text(&busy));
    assert!(text(&busy).contains("[BUSY]"), "{}", text(&busy));
    std::fs::remove_file(&hold).unwrap();
    let o = slow.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(&["staging", "delete", "shared", "--no-wait"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for_status(&env, "shared", "Archived");

    let t = Instant::now();
    while watch.try_wait().unwrap().is_none() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = watch.kill();
    let w = watch.wait_with_output().unwrap();
    let changes: Vec<(String, String)> = String::from_utf8_lossy(&w.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "StatusChanged")
        .map(|v| {
            let s = |x: &serde_json::Value| x.as_str().unwrap_or("-").to_string();
            (s(&v["from"]), s(&v["to"]))
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("-", "CreatePending"),
            ("CreatePending", "Running"),
            ("Running", "DeletePending"),
            ("DeletePending", "Archived"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
        "watch output: {}",
        String::from_utf8_lossy(&w.stdout)
    );
    // A private value needs a key file on a shared state: refused on one line naming the
    // remedy; with `--key-file` it is accepted.
    let kv = format!("DB_PASSWORD={SECRET}");
    let create = [
        "staging",
        "create",
        "sealed",
        "--tag",
        "1",
        "--app",
        &kv,
        "--private",
        "DB_PASSWORD",
    ];
    let err = failed_one_line(&env.run(&create));
    assert!(
        err.contains("--key-file") && err.contains("CAPSA_STAGING_KEY_FILE"),
        "{err}"
    );
    let key = env.dir.path().join("shared.key");
    let mut with_key = create.to_vec();
    with_key.extend(["--key-file", key.to_str().unwrap()]);
    let o = env.run(&with_key);
    assert!(o.status.success(), "{}", text(&o));
}

/// No input forges an output line: a newline in `--actor` is refused before anything is
/// recorded; a script's stderr and a path holding `\ncapsa: error [...]` are printed escaped,
/// on the one error line.
#[test]
fn no_input_can_forge_an_output_line() {
    let env = Env::new();
    let s = env.scripts();
    let backend = format!("script:{}", s.display());
    let forged = "capsa: error [NOT_FOUND]: forged";
    let is_forged = |out: &str| {
        out.lines()
            .any(|l| l.starts_with("capsa: error [NOT_FOUND]"))
    };

    // --actor with a newline: refused, nothing recorded.
    let evil = "evil\n#999  2026-01-01 00:00:00 create    web                  by root";
    let o = env.run(&[
        "staging",
        "create",
        "--backend",
        &backend,
        "--actor",
        evil,
        "web",
        "--tag",
        "1.0.0",
    ]);
    let err = failed_one_line(&o);
    assert!(
        err.contains("[INVALID_NAME]") && err.contains("actor"),
        "{err}"
    );
    assert!(
        err.contains("evil\\n#999"),
        "the newline is shown escaped: {err}"
    );
    let log = env.run(&["staging", "log"]);
    assert!(!text(&log).contains("#999"), "{}", text(&log));

    // A failing script prints a fake error line on stderr.
    script(
        &s,
        "create",
        &format!("#!/bin/sh\nprintf 'boom\\n{forged}\\n\\033[2J' >&2\nexit 3\n"),
    );
    let o = env.run(&[
        "staging",
        "create",
        "--backend",
        &backend,
        "web",
        "--tag",
        "1.0.0",
    ]);
    let err = failed_one_line(&o);
    assert!(!is_forged(&err) && !err.contains('\u{1b}'), "{err}");
    assert!(
        err.contains("forged"),
        "the script's words are kept, escaped: {err}"
    );
    for args in [
        &["staging", "log"][..],
        &["staging", "show", "web"],
        &["staging", "list"],
    ] {
        let out = text(&env.run(args));
        assert!(
            !is_forged(&out) && !out.contains('\u{1b}'),
            "{args:?}: {out}"
        );
    }

    // A store path with a newline.
    let o = env
        .cmd(&[
            "--store",
            &format!("/nonexistent\n{forged}"),
            "crates",
            "sh010",
        ])
        .output()
        .unwrap();
    let err = failed_one_line(&o);
    assert!(!is_forged(&err), "{err}");
}

/// `--key-file FILE` (or `CAPSA_STAGING_KEY_FILE`) names the key that seals private values: the
/// state file holds none of the value, the key file is created 0600, and a show with another key
/// fails on one line naming that key file.
#[test]
fn staging_key_file_seals_private_values() {
    let env = Env::new();
    let key = env.dir.path().join("given.key");
    let k = key.to_str().unwrap();
    let kv = format!("DB_PASSWORD={SECRET}");
    let o = env.run(&[
        "staging",
        "create",
        "web",
        "--tag",
        "1.0.0",
        "--app",
        &kv,
        "--private",
        "DB_PASSWORD",
        "--key-file",
        k,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !env.dir.path().join("state.key").exists(),
        "the default key is not used"
    );
    let mut bytes = Vec::new();
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        if let Ok(b) = fs::read(env.dir.path().join(f)) {
            bytes.extend(b);
        }
    }
    assert!(!bytes.is_empty());
    for i in 0..=SECRET.len() - 6 {
        let frag = &SECRET.as_bytes()[i..i + 6];
        assert!(
            !bytes.windows(6).any(|w| w == frag),
            "the state holds a fragment"
        );
    }
    // The same key through the environment reads it.
    let o = env
        .cmd(&["staging", "show", "web"])
        .env("CAPSA_STAGING_KEY_FILE", &key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // Without it, the default key beside the state file (made now) does not open the value.
    let o = env.run(&["staging", "show", "web"]);
    let err = failed_one_line(&o);
    assert!(
        err.contains("state.key") && err.contains("--key-file"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");
}

/// The command failed and said so on exactly one stderr line; that line.
fn failed_one_line(o: &Output) -> String {
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}
