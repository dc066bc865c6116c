//! `make bench-serve`: capsa serve under a real load generator (`wrk`), in one run:
//!
//! - `GET /v1/capsules/ID/latest` through capsa serve against a bare axum handler returning
//!   fixed JSON on the same machine (goal: at least 0.5 of its requests per second);
//! - staging create-and-wait (`POST /v1/stagings?wait=true`) with the mock backend on SQLite
//!   (goal: at least 1,000 a second);
//! - one status change delivered to 1,000 WebSocket subscribers (goal: p99 under 100 ms), and
//!   the server's memory per idle WebSocket.
//!
//! Usage: `serve_bench CAPSA_BINARY OUT.json` (wrk on PATH). Prints a Markdown table.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECS: &str = "8";

fn capsa(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("CAPSA_STORE", dir.join("store"))
        .env("CAPSA_STAGING_STATE", dir.join("state.db"))
        .env("RUST_LOG", "warn")
        .env_remove("CAPSA_SERVER");
    c
}

fn run_ok(mut c: Command) -> String {
    let o = c.output().expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn start(bin: &Path, dir: &Path) -> (Child, String) {
    let mut child = capsa(bin, dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--backend", "mock"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("capsa serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    (child, url)
}

/// wrk's requests per second (and p99 latency, ms) for `url`, with `script` if any.
fn wrk(url: &str, token: Option<&str>, script: Option<&Path>) -> (f64, f64) {
    let mut c = Command::new("wrk");
    c.args(["-t2", "-c64", "-d", &format!("{SECS}s"), "--latency"]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(s) = script {
        c.arg("-s").arg(s);
    }
    let out = run_ok({
        c.arg(url);
        c
    });
    let rps = out
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in:\n{out}"));
    let p99 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| {
            let v = v.trim();
            let (n, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
            let n: f64 = n.parse().unwrap_or(0.0);
            match unit {
                "us" => n / 1000.0,
                "s" => n * 1000.0,
                _ => n,
            }
        })
        .unwrap_or(0.0);
    (rps, p99)
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let l = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bin = std::path::PathBuf::from(args.next().expect("usage: serve_bench CAPSA OUT.json"));
    let out_path = args
        .next()
        .unwrap_or_else(|| "target/bench/serve.json".into());
    let dir = tempfile::tempdir().unwrap();
    run_ok({
        let mut c = capsa(&bin, dir.path());
        c.arg("init");
        c
    });
    let token = run_ok({
        let mut c = capsa(&bin, dir.path());
        c.args(["serve", "token", "add", "bench", "--role", "operate"]);
        c
    });
    run_ok({
        let mut c = capsa(&bin, dir.path());
        c.args(["capsule", "create", "shot010"]);
        c
    });
    run_ok({
        let mut c = capsa(&bin, dir.path());
        c.args(["bump", "shot010", "--comment", "bench"]);
        c
    });
    let (mut server, url) = start(&bin, dir.path());

    // The bare axum handler, fixed JSON of the same size, in this process.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixed = run_ok({
        let mut c = capsa(&bin, dir.path());
        c.args(["--json", "latest", "shot010"]);
        c
    });
    let fixed: serde_json::Value = serde_json::from_str(&fixed).unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let bare = format!("http://{}/latest", listener.local_addr().unwrap());
    rt.spawn(async move {
        let app = axum::Router::new().route(
            "/latest",
            axum::routing::get(move || {
                let v = fixed.clone();
                async move { axum::Json(v) }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });

    let (bare_rps, bare_p99) = wrk(&bare, None, None);
    let (latest_rps, latest_p99) = wrk(
        &format!("{url}/v1/capsules/shot010/latest"),
        Some(&token),
        None,
    );

    let lua = dir.path().join("create.lua");
    std::fs::write(
        &lua,
        format!(
            r#"
local n = 0
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
request = function()
  n = n + 1
  local body = string.format('{{"name":"b%d-%d","tag":"1.0.0"}}', tid, n)
  return wrk.format("POST", "/v1/stagings?wait=true",
    {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {token}"}}, body)
end
"#
        ),
    )
    .unwrap();
    let (create_rps, create_p99) = wrk(&format!("{url}/v1/stagings?wait=true"), None, Some(&lua));

    // 1,000 WebSocket subscribers, then one status change, on a fresh server: memory freed
    // by the load above would otherwise hide what the sockets take.
    let _ = server.kill();
    let _ = server.wait();
    let (mut server, url) = start(&bin, dir.path());
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(server.id());
    let ws_url = format!(
        "{}/v1/events?staging=fanout",
        url.replacen("http://", "ws://", 1)
    );
    let n = 1000;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (got_tx, got_rx) = std::sync::mpsc::channel::<Instant>();
    let mut threads = Vec::new();
    for _ in 0..n {
        let (ws_url, token, ready_tx, got_tx) = (
            ws_url.clone(),
            token.clone(),
            ready_tx.clone(),
            got_tx.clone(),
        );
        threads.push(
            std::thread::Builder::new()
                .stack_size(128 << 10)
                .spawn(move || {
                    use tungstenite::client::IntoClientRequest;
                    let mut req = ws_url.into_client_request().unwrap();
                    req.headers_mut()
                        .insert("authorization", format!("Bearer {token}").parse().unwrap());
                    let (mut socket, _) = tungstenite::connect(req).expect("websocket");
                    ready_tx.send(()).unwrap();
                    loop {
                        match socket.read() {
                            Ok(tungstenite::Message::Text(_)) => {
                                got_tx.send(Instant::now()).unwrap();
                                return;
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                })
                .unwrap(),
        );
    }
    for _ in 0..n {
        ready_rx.recv().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(server.id());
    // The change: a create, sent on a connection opened beforehand, so that the clock
    // starts when the request leaves.
    let body = r#"{"name":"fanout","tag":"1.0.0"}"#;
    let addr = url.strip_prefix("http://").unwrap();
    let request = format!(
        "POST /v1/stagings HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    let t0 = Instant::now();
    conn.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut conn, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let mut lat: Vec<f64> = (0..n)
        .map(|_| {
            let t = got_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("event delivered");
            t.duration_since(t0).as_secs_f64() * 1000.0
        })
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p99 = lat[(n * 99) / 100 - 1];
    let (first, p50) = (lat[0], lat[n / 2]);
    let per_ws = (after.saturating_sub(before) * 1024) / n as u64;
    for t in threads {
        let _ = t.join();
    }
    let _ = server.kill();
    let _ = server.wait();

    let ratio = latest_rps / bare_rps;
    let report = serde_json::json!({
        "bare_axum_rps": bare_rps, "bare_axum_p99_ms": bare_p99,
        "latest_rps": latest_rps, "latest_p99_ms": latest_p99, "latest_ratio": ratio,
        "create_wait_rps": create_rps, "create_wait_p99_ms": create_p99,
        "ws_subscribers": n, "ws_fanout_p99_ms": p99, "ws_fanout_first_ms": first,
        "ws_fanout_p50_ms": p50, "ws_idle_bytes_each": per_ws,
    });
    if let Some(parent) = Path::new(&out_path).parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&out_path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    let mut o = std::io::stdout().lock();
    writeln!(o, "| measure | result | goal |").unwrap();
    writeln!(o, "| --- | --- | --- |").unwrap();
    writeln!(
        o,
        "| GET latest, capsa serve | {latest_rps:.0} req/s (p99 {latest_p99:.2} ms) | |"
    )
    .unwrap();
    writeln!(
        o,
        "| fixed JSON, bare axum | {bare_rps:.0} req/s (p99 {bare_p99:.2} ms) | |"
    )
    .unwrap();
    writeln!(o, "| ratio | {ratio:.2} | ≥ 0.5 |").unwrap();
    writeln!(o, "| create and wait, mock backend, SQLite | {create_rps:.0} /s (p99 {create_p99:.1} ms) | ≥ 1,000/s |").unwrap();
    writeln!(
        o,
        "| one change to {n} WebSockets | p99 {p99:.1} ms (first {first:.1}, p50 {p50:.1}) | < 100 ms |"
    )
    .unwrap();
    writeln!(o, "| memory per idle WebSocket | {per_ws} bytes | |").unwrap();
}
