//! `capsa serve` as a real process for the server tests: a store, tokens, the server on a
//! free loopback port, a real HTTP client, problem checks.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::StatusCode;
use serde_json::Value;

pub const CAPSA: &str = env!("CARGO_BIN_EXE_capsa");

pub fn capsa(dir: &Path, args: &[&str]) -> Output {
    base(dir).args(args).output().unwrap()
}

pub fn base(dir: &Path) -> Command {
    let mut c = Command::new(CAPSA);
    c.env_remove("CAPSA_STAGING_BACKEND")
        .env_remove("CAPSA_NOTIFICATIONS")
        .env_remove("CAPSA_LISTEN")
        .env_remove("CAPSA_SERVE_TOKENS")
        .env("CAPSA_STORE", dir.join("store"))
        .env("CAPSA_STAGING_STATE", dir.join("state.db"));
    c
}

/// A token added with the CLI.
pub fn token(dir: &Path, name: &str, role: &str) -> String {
    let out = capsa(dir, &["serve", "token", "add", name, "--role", role]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub struct Server {
    pub child: Child,
    pub url: String,
    stderr: Option<ChildStderr>,
}

impl Server {
    /// Start `capsa serve` (on a free loopback port unless `extra` names `--listen`) and read
    /// its first line for the URL.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut cmd = base(dir);
        cmd.arg("serve");
        if !extra.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_string();
        let stderr = child.stderr.take();
        Server { child, url, stderr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// SIGTERM, then the exit status and everything the server wrote on stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        (status, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub fn call(rb: RequestBuilder) -> (StatusCode, Value) {
    let r = rb.send().unwrap();
    let status = r.status();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        assert_eq!(ctype, "application/problem+json", "{status} {v}");
        assert_eq!(v["status"], status.as_u16(), "{v}");
    }
    (status, v)
}

pub fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = capsa(dir.path(), &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, store)
}

/// The remote CLI against a server started with `server_args` (its state: SQLite by
/// default, PostgreSQL with `--state postgres://…`): staging commands, queries, refusals and
/// `watch`, each with the output and exit code of the same command in local mode.
pub fn remote_cli_tour(server_args: &[&str]) {
    let (dir, _) = setup();
    let op = token(dir.path(), "remote-alice", "operate");
    let server = Server::start(dir.path(), server_args);
    // Another directory: the remote CLI has no state of its own.
    let elsewhere = tempfile::tempdir().unwrap();
    let remote = |args: &[&str]| {
        let mut c = base(elsewhere.path());
        c.env("CAPSA_SERVER", &server.url).env("CAPSA_TOKEN", &op);
        c.args(args).output().unwrap()
    };
    let local_dir = tempfile::tempdir().unwrap();
    let local = |args: &[&str]| base(local_dir.path()).args(args).output().unwrap();
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).to_string();
    let create = [
        "staging",
        "create",
        "web",
        "--tag",
        "1.0.0",
        "--app",
        "PW=remote-pw-3",
        "--private",
        "PW",
        "--app",
        "LOG=debug",
    ];
    let (r, l) = (remote(&create), local(&create));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(text(&r), text(&l));
    assert_eq!(text(&r).trim(), "web: Running");
    let upd = [
        "staging",
        "update",
        "web",
        "--tag",
        "1.1.0",
        "--set-app-env-override",
        "LOG=info",
    ];
    let (r, l) = (remote(&upd), local(&upd));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!((r.status.code(), text(&r)), (l.status.code(), text(&l)));
    // The same refusal, exit code and message.
    let (r, l) = (
        remote(&["staging", "restore", "web"]),
        local(&["staging", "restore", "web"]),
    );
    assert_eq!(r.status.code(), Some(17));
    assert_eq!(r.status.code(), l.status.code());
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        String::from_utf8_lossy(&l.stderr)
    );
    let (r, l) = (
        remote(&["staging", "show", "nope"]),
        local(&["staging", "show", "nope"]),
    );
    assert_eq!((r.status.code(), l.status.code()), (Some(11), Some(11)));
    // --json show is the server's document; the private value is masked everywhere.
    let shown: Value =
        serde_json::from_slice(&remote(&["--json", "staging", "show", "web"]).stdout).unwrap();
    assert_eq!(shown["tag"], "1.1.0");
    assert_eq!(shown["overrides"][0]["value"], "***");
    let list = text(&remote(&["staging", "list"]));
    assert!(
        list.starts_with("web ") && list.contains("Running") && list.contains("1.1.0"),
        "{list}"
    );
    let log = text(&remote(&["staging", "log", "web"]));
    assert!(log.contains("by remote-alice"), "{log}");
    assert!(!log.contains("remote-pw-3") && !list.contains("remote-pw-3"));
    let gone = remote(&["staging", "delete", "web", "--no-wait"]);
    assert!(
        gone.status.success(),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    // A bad token: refused, one line, exit 1; nothing changed.
    let mut bad = base(elsewhere.path());
    bad.env("CAPSA_SERVER", &server.url)
        .env("CAPSA_TOKEN", "capsa_0_0");
    let o = bad.args(["staging", "list"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("UNAUTHENTICATED") && err.trim().lines().count() == 1,
        "{err}"
    );
    let o = remote(&["staging", "reconcile"]);
    assert_eq!(o.status.code(), Some(22), "UNSUPPORTED");
    // `watch` follows the server's events with local mode's lines: from the start, the
    // same as a local watch of the same commands; live, the events of a new command.
    let go = |run: &dyn Fn(&[&str]) -> std::process::Output| {
        let o = run(&["staging", "watch", "--from-start", "--count", "4"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let lines: Vec<String> = text(&o)
            .lines()
            .map(|l| l.split_once(' ').unwrap().1.to_string()) // no clock
            .collect();
        (lines, String::from_utf8_lossy(&o.stderr).to_string())
    };
    let (r, l) = (go(&remote), go(&local));
    assert_eq!(r, l);
    assert_eq!(r.1.trim(), "watching for events after #0");
    let mut live = base(elsewhere.path());
    live.env("CAPSA_SERVER", &server.url)
        .env("CAPSA_TOKEN", &op)
        .args(["--json", "staging", "watch", "--count", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut live = live.spawn().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(live.stderr.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("watching for events after #"), "{first}");
    let o = remote(&["staging", "create", "watched", "--tag", "2.0.0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = live.wait_with_output().unwrap();
    assert!(out.status.success());
    let events: Vec<Value> = text(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e["name"] == "watched"), "{events:?}");
    assert_eq!(events[0]["event"], "StatusChanged");
    assert!(events[0]["seq"].as_i64() < events[1]["seq"].as_i64());
}
