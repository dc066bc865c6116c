//! `capsa serve` against clients that are not polite: HTTPS with a certificate made by the real
//! `openssl` (a plain-HTTP client and an untrusting client get nothing), a request head that
//! never finishes (disconnected after --header-timeout), and 1,000 idle connections (the
//! server's memory measured, and bounded).
#![cfg(unix)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::server::*;

/// A CA and a server certificate for 127.0.0.1, made by openssl: (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let sh = |args: &str| {
        let st = Command::new("sh")
            .arg("-c")
            .arg(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            st.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    };
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=capsa-test-ca -keyout ca.key -out ca.pem",
    );
    sh(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
        -keyout key.pem -out server.csr",
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    sh(
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext.cnf -out cert.pem",
    );
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

#[test]
fn https_with_a_certificate_and_nothing_in_the_clear() {
    let (dir, _) = setup();
    let op = token(dir.path(), "alice", "operate");
    let (ca, cert, key) = certificates(dir.path());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    // TLS allows a non-loopback address without --insecure.
    let server = Server::start(
        dir.path(),
        &[
            "--listen",
            "0.0.0.0:0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ],
    );
    let port = server.url.rsplit(':').next().unwrap().to_string();
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let url = format!("https://127.0.0.1:{port}/v1/stagings");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let trusting = reqwest::blocking::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let (s, v) = call(trusting.get(&url).bearer_auth(&op));
    assert_eq!((s, v), (StatusCode::OK, serde_json::json!([])));
    // A client that does not trust the CA, and one that speaks plain HTTP, get nothing.
    let e = reqwest::blocking::Client::new()
        .get(&url)
        .send()
        .unwrap_err();
    assert!(
        e.is_connect() || e.to_string().contains("certificate"),
        "{e}"
    );
    let plain = format!("http://127.0.0.1:{port}/v1/stagings");
    assert!(client().get(&plain).bearer_auth(&op).send().is_err());
    // A bad key file is refused at start, in one line.
    let out = capsa(
        dir.path(),
        &["serve", "--tls-cert", cert, "--tls-key", cert],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--tls-key"), "{err}");
    let (status, _) = server.stop();
    assert!(status.success());
}

/// A client CA and a client certificate for `cn`, by openssl: (ca.pem, client cert+key PEM).
fn client_certificate(dir: &Path, tag: &str, cn: &str) -> (std::path::PathBuf, Vec<u8>) {
    let sh = |args: String| {
        let st = Command::new("sh")
            .arg("-c")
            .arg(&args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    };
    sh(format!(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN={tag}-ca -keyout {tag}-ca.key -out {tag}-ca.pem"
    ));
    sh(format!(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN={cn} \
        -keyout {tag}.key -out {tag}.csr"
    ));
    std::fs::write(
        dir.join(format!("{tag}.cnf")),
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    sh(format!(
        "openssl x509 -req -in {tag}.csr -CA {tag}-ca.pem -CAkey {tag}-ca.key \
        -CAcreateserial -days 2 -extfile {tag}.cnf -out {tag}.pem"
    ));
    let mut pem = std::fs::read(dir.join(format!("{tag}.pem"))).unwrap();
    pem.extend(std::fs::read(dir.join(format!("{tag}.key"))).unwrap());
    (dir.join(format!("{tag}-ca.pem")), pem)
}

#[test]
fn a_client_certificate_from_the_ca_identifies_the_caller() {
    let (dir, _) = setup();
    let (ca, cert, key) = certificates(dir.path());
    let (client_ca, alice) = client_certificate(dir.path(), "clients", "alice.pipeline");
    let (_, mallory) = client_certificate(dir.path(), "other", "mallory");
    let args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--client-ca",
        client_ca.to_str().unwrap(),
    ];
    let server = Server::start(dir.path(), &args);
    let port = server.url.rsplit(':').next().unwrap().to_string();
    let url = |p: &str| format!("https://127.0.0.1:{port}{p}");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let with = |identity: Option<&[u8]>| {
        let mut b = reqwest::blocking::Client::builder().add_root_certificate(ca.clone());
        if let Some(pem) = identity {
            b = b.identity(reqwest::Identity::from_pem(pem).unwrap());
        }
        b.build().unwrap()
    };
    let c = with(Some(&alice));
    let body = serde_json::json!({"name": "web", "tag": "1.0.0"});
    let (s, v) = call(c.post(url("/v1/stagings?wait=true")).json(&body));
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("Running")),
        "{v}"
    );
    let (_, log) = call(c.get(url("/v1/stagings/web/audit")));
    assert_eq!(log[0]["actor"], "alice.pipeline", "{log}");
    // No certificate, or one from another CA: the handshake is refused.
    assert!(with(None).get(url("/v1/stagings")).send().is_err());
    assert!(with(Some(&mallory))
        .get(url("/v1/stagings"))
        .send()
        .is_err());
    let (status, _) = server.stop();
    assert!(status.success());
}

#[test]
fn a_request_head_that_never_ends_is_cut_off() {
    let (dir, _) = setup();
    let server = Server::start(dir.path(), &["--header-timeout", "1"]);
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let took = t.elapsed();
    eprintln!("a request head left unfinished was cut off after {took:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    // The server still serves everybody else.
    assert_eq!(call(client().get(server.url("/healthz"))).0, StatusCode::OK);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_thousand_idle_connections_cost_bounded_memory() {
    // Room for 1,000 sockets on each side, whatever the soft limit is.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max.min(8192);
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
    let (dir, _) = setup();
    let server = Server::start(dir.path(), &["--header-timeout", "120"]);
    let addr = server.url.trim_start_matches("http://").to_string();
    assert_eq!(call(client().get(server.url("/healthz"))).0, StatusCode::OK);
    let before = rss_kib(server.child.id());
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // Let the server accept them all.
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(server.child.id());
    let per = (after.saturating_sub(before) * 1024) / 1000;
    eprintln!(
        "1,000 idle connections: server RSS {before} KiB -> {after} KiB, about {per} bytes each"
    );
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "{before} -> {after} KiB"
    );
    // And it still answers.
    assert_eq!(call(client().get(server.url("/healthz"))).0, StatusCode::OK);
    drop(idle);
}
