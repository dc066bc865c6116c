//! `capsa staging … --notifications FILE` as a process: the webhook deliveries of a command are
//! made before the process exits (a real HTTP listener receives them, signed), and a hook that
//! hangs delays the exit by the grace period only, with a warning.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CAPSA: &str = env!("CARGO_BIN_EXE_capsa");

fn capsa(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(CAPSA)
        .env_remove("CAPSA_STORE")
        .env_remove("CAPSA_STAGING_BACKEND")
        .env_remove(capsa::staging::NOTIFICATIONS_ENV)
        .env("CAPSA_STAGING_STATE", dir.join("state.db"))
        .env("CAPSA_SETTLE", "exit")
        .args(args)
        .output()
        .unwrap()
}

/// `capsa staging create alpha --tag 1.0.0 --notifications FILE`.
fn create_alpha(dir: &std::path::Path, file: &std::path::Path) -> Output {
    let f = file.to_str().unwrap();
    let args = [
        "staging",
        "create",
        "alpha",
        "--tag",
        "1.0.0",
        "--notifications",
        f,
    ];
    capsa(dir, &args)
}

/// A loopback HTTP listener answering 200; sends each request's head and body. With `hang`, it
/// reads the request and never answers.
fn listener(hang: bool) -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let _ = tx.send((head, body));
            if hang {
                held.push(s);
            } else {
                let mut s = s;
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        }
    });
    (url, rx)
}

#[test]
fn a_command_delivers_its_webhooks_before_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (url, rx) = listener(false);
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "k3y").unwrap();
    let file = dir.path().join("notifications.toml");
    std::fs::write(
        &file,
        format!("[[webhook]]\nurl = \"{url}\"\nsecret_file = \"secret\"\n"),
    )
    .unwrap();
    let out = create_alpha(dir.path(), &file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Already received when the process has exited: nothing is waited for here.
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got.len(), 2, "{got:?}");
    let (head, body) = &got[1];
    let j: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        (j["name"].as_str(), j["to"].as_str()),
        (Some("alpha"), Some("Running"))
    );
    let sig = capsa::staging::notify::signature(b"k3y", body);
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-capsa-signature-256: {sig}")),
        "{head}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
    readme_receiver_accepts("k3y", body, &sig);
}

/// The receiver's check in the README's Notifications section, run by the real Python, accepts
/// what capsa sent and refuses a changed body.
fn readme_receiver_accepts(secret: &str, body: &[u8], header: &str) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = &readme[readme.find("### Notifications").unwrap()..];
    let code = section.split("```python\n").nth(1).unwrap();
    let code = code.split("```").next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body"), body).unwrap();
    let script = format!(
        "{code}\nimport sys\nb = open(sys.argv[1], 'rb').read()\n\
         assert verified(b{secret:?}, b, sys.argv[2])\n\
         assert not verified(b{secret:?}, b + b' ', sys.argv[2])\nprint('ok')\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("body"))
        .arg(header)
        .output()
        .expect("python3 runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{err}");
}

#[test]
fn a_hanging_hook_delays_the_exit_by_the_grace_period_only() {
    let dir = tempfile::tempdir().unwrap();
    let (url, rx) = listener(true);
    let file = dir.path().join("notifications.toml");
    std::fs::write(
        &file,
        format!("grace = \"1s\"\ntimeout = \"60s\"\n[[webhook]]\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let t = Instant::now();
    let out = Command::new(CAPSA)
        .env_remove("CAPSA_STORE")
        .env_remove("CAPSA_STAGING_BACKEND")
        .env("CAPSA_STAGING_STATE", dir.path().join("state.db"))
        .env("CAPSA_SETTLE", "exit")
        .env(capsa::staging::NOTIFICATIONS_ENV, &file)
        .args(["staging", "create", "alpha", "--tag", "1.0.0"])
        .output()
        .unwrap();
    let took = t.elapsed();
    eprintln!("create with a hanging webhook and grace 1 s took {took:?}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the hook was called");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: 2 notification(s) not delivered within 1s"),
        "{err}"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(30),
        "{took:?}"
    );
    // The command itself is done.
    let show = capsa(dir.path(), &["staging", "show", "alpha"]);
    assert!(String::from_utf8_lossy(&show.stdout).contains("Running"));
}

#[test]
fn a_bad_notifications_file_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("n.toml");
    std::fs::write(&file, "[[webhook]]\nurl = \"ftp://x\"\n").unwrap();
    let out = create_alpha(dir.path(), &file);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("url"), "{err}");
    // Refused before anything happened.
    let list = capsa(dir.path(), &["staging", "list"]);
    assert!(!String::from_utf8_lossy(&list.stdout).contains("alpha"));
}
