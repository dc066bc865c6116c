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
