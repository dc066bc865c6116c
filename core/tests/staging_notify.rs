//! Notifications: webhooks received by a real HTTP listener (signature checked, retries with the
//! same delivery id), command hooks, and hooks that are down or hang never slowing a command.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use capsa::staging::notify::SIGNATURE_HEADER;
use hmac::{Hmac, Mac};

/// The signature a receiver computes: HMAC-SHA256 of the body under the secret, hex.
fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}
use capsa::staging::{Hook, ManagerOptions, MockDeployer, NotifyConfig, StagingManager};

/// One request as the listener read it.
#[derive(Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(s: &mut TcpStream) -> Option<Received> {
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if !line.starts_with("POST ") {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))?
        .1
        .parse()
        .ok()?;
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Received { headers, body })
}

/// A real HTTP listener on loopback answering each request with the next of `answers` (then
/// 200), sending what it read to the returned channel.
fn listener(answers: Vec<u16>) -> (String, mpsc::Receiver<Received>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/capsa/TOKEN", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut answers = answers.into_iter();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let Some(req) = read_request(&mut s) else {
                continue;
            };
            let code = answers.next().unwrap_or(200);
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            if tx.send(req).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

/// Held while a manager opens: the environment test sets `CAPSA_NOTIFICATIONS`, which any
/// manager opened without hooks in the meantime would read.
static OPENING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn manager(
    dir: &std::path::Path,
    hooks: Vec<Hook>,
    tweak: impl FnOnce(&mut NotifyConfig),
) -> StagingManager {
    let mut notifications = NotifyConfig {
        hooks,
        backoff: Duration::from_millis(20),
        timeout: Duration::from_secs(2),
        ..NotifyConfig::default()
    };
    tweak(&mut notifications);
    let opts = ManagerOptions {
        notifications,
        ..common::options()
    };
    let _env = OPENING.lock().unwrap_or_else(|e| e.into_inner());
    common::open_manager(dir, std::sync::Arc::new(MockDeployer::new()), opts)
}

fn json(r: &Received) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn webhooks_are_signed_and_retried_with_the_same_delivery_id() {
    let dir = tempfile::tempdir().unwrap();
    // The first attempt gets a 503, the second a 200.
    let (url, rx) = listener(vec![503]);
    let secret = b"s3cr3t-of-this-hook".to_vec();
    let hook = Hook::Webhook {
        url,
        secret: Some(capsa::staging::notify::HookSecret::new(secret.clone()).unwrap()),
    };
    let m = manager(dir.path(), vec![hook], |_| {});
    m.create("alpha", "1.0.0", vec![]).unwrap();
    assert_eq!(m.flush_notifications(Duration::from_secs(20)), 0);
    let got: Vec<Received> = rx.try_iter().collect();
    // CreatePending twice (503, then 200), then Running.
    assert_eq!(got.len(), 3, "{got:?}");
    for r in &got {
        let sig = r.header(SIGNATURE_HEADER).expect("signature header");
        assert_eq!(sig, signature(&secret, &r.body), "signature of {r:?}");
        assert_ne!(sig, signature(b"another secret", &r.body));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-capsa-event"), Some("StatusChanged"));
    }
    assert_eq!(
        got[0].header("x-capsa-delivery"),
        got[1].header("x-capsa-delivery")
    );
    assert_eq!(got[0].body, got[1].body);
    let (first, last) = (json(&got[1]), json(&got[2]));
    assert_eq!(first["name"], "alpha");
    assert_eq!(first["from"], serde_json::Value::Null);
    assert_eq!(first["to"], "CreatePending");
    assert_eq!(last["from"], "CreatePending");
    assert_eq!(last["to"], "Running");
    let stats = m.notification_stats();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (stats[0].delivered, stats[0].failed, stats[0].dropped),
        (2, 0, 0)
    );
    // The label shows neither the path (which may hold a token) nor the secret.
    assert!(!stats[0].hook.contains("TOKEN"), "{}", stats[0].hook);
    assert!(!format!("{:?}", m.options()).contains("s3cr3t"));
}

#[test]
fn a_hook_that_is_down_or_hangs_never_slows_a_command() {
    let dir = tempfile::tempdir().unwrap();
    // Down: a port nobody listens on.
    let down = TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://{}/", down.local_addr().unwrap());
    drop(down);
    // Hangs: accepts and reads, never answers.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_url = format!("http://{}/", hang.local_addr().unwrap());
    let (seen_tx, seen) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hang.incoming().flatten() {
            let _ = seen_tx.send(());
            held.push(s);
        }
    });
    let hooks = vec![
        Hook::Webhook {
            url: down_url,
            secret: None,
        },
        Hook::Webhook {
            url: hang_url,
            secret: None,
        },
    ];
    // Long enough that no delivery can finish while the commands run.
    let m = manager(dir.path(), hooks, |c| {
        c.timeout = Duration::from_secs(30);
        c.retries = 3;
        c.backoff = Duration::from_secs(30);
        c.queue = 4;
    });
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = manager(plain_dir.path(), vec![], |_| {});
    let time = |m: &StagingManager| {
        let t = Instant::now();
        for i in 0..5 {
            m.create(&format!("stage{i}"), "1.0.0", vec![]).unwrap();
        }
        t.elapsed()
    };
    let with_hooks = time(&m);
    let without = time(&plain);
    eprintln!(
        "5 creates: {with_hooks:?} with a down and a hanging webhook, {without:?} without hooks"
    );
    // The commands finished while the hanging hook still holds its first request.
    seen.recv_timeout(Duration::from_secs(10))
        .expect("the hanging listener was called");
    let stats = m.notification_stats();
    assert_eq!(
        stats.iter().map(|s| s.delivered).sum::<u64>(),
        0,
        "{stats:?}"
    );
    // 10 changes, a queue of 4 per hook: the rest were dropped, not waited for.
    assert!(stats.iter().all(|s| s.dropped > 0), "{stats:?}");
    assert!(m.flush_notifications(Duration::from_millis(200)) > 0);
    assert!(m.list().unwrap().len() == 5);
}

#[cfg(unix)]
#[test]
fn command_hooks_get_the_change_as_arguments_and_json() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("calls");
    let hook = dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nprintf '%s ' \"$@\" >> '{0}'\necho >> '{0}'\ncat >> '{0}'\necho >> '{0}'\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let m = manager(dir.path(), vec![Hook::Command { path: hook }], |_| {});
    m.create("alpha", "1.0.0", vec![]).unwrap();
    assert_eq!(m.flush_notifications(Duration::from_secs(20)), 0);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].trim(),
        "--name alpha --old-status none --new-status CreatePending"
    );
    let j: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(j["to"], "CreatePending");
    assert_eq!(
        lines[2].trim(),
        "--name alpha --old-status CreatePending --new-status Running"
    );
    assert_eq!(m.notification_stats()[0].delivered, 2);
}

#[test]
fn a_notifications_file_is_read_from_the_environment_variable_by_open_with() {
    let dir = tempfile::tempdir().unwrap();
    let (url, rx) = listener(vec![]);
    let file = dir.path().join("notifications.toml");
    std::fs::write(&file, format!("[[webhook]]\nurl = \"{url}\"\n")).unwrap();
    // Set for this process only, while no other test opens a manager.
    let env = OPENING.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var(capsa::staging::NOTIFICATIONS_ENV, &file);
    let m = StagingManager::open_with(
        dir.path().join("state.db"),
        std::sync::Arc::new(MockDeployer::new()),
        common::options(),
    );
    std::env::remove_var(capsa::staging::NOTIFICATIONS_ENV);
    drop(env);
    let m = m.unwrap();
    m.create("alpha", "1.0.0", vec![]).unwrap();
    assert_eq!(m.flush_notifications(Duration::from_secs(20)), 0);
    assert_eq!(rx.try_iter().count(), 2);
}
