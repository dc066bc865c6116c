//! `capsa serve` as a real process on loopback, called with a real HTTP client: tokens and
//! roles, the staging commands and queries, show storage, the event stream and its resume,
//! problem responses for hostile input, the refusal of plain HTTP off loopback, SIGTERM.
#![cfg(unix)] // SIGTERM

mod support;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::server::*;

#[test]
fn tokens_are_shown_once_stored_hashed_and_revocable() {
    let (dir, store) = setup();
    let t = token(dir.path(), "ci-bot", "operate");
    assert!(t.starts_with("capsa_"), "{t}");
    let file = store.join(".capsa/serve-tokens.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(t.rsplit('_').next().unwrap()),
        "the secret is stored"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let list = capsa(dir.path(), &["serve", "token", "list"]);
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains("ci-bot") && list.contains("operate") && !list.contains(&t));
    let again = capsa(dir.path(), &["serve", "token", "add", "ci-bot"]);
    assert_eq!(again.status.code(), Some(12), "ALREADY_EXISTS");
    let bad = capsa(
        dir.path(),
        &["serve", "token", "add", "x", "--role", "root"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected read, operate or admin"));

    let server = Server::start(dir.path(), &[]);
    let c = client();
    let (s, _) = call(c.get(server.url("/v1/stagings")).bearer_auth(&t));
    assert_eq!(s, StatusCode::OK);
    let out = capsa(dir.path(), &["serve", "token", "revoke", "ci-bot"]);
    assert!(out.status.success());
    let (s, v) = call(c.get(server.url("/v1/stagings")).bearer_auth(&t));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED"))
    );
    let (status, _) = server.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn stagings_through_the_api() {
    let (dir, _) = setup();
    let op = token(dir.path(), "alice", "operate");
    let ro = token(dir.path(), "viewer", "read");
    let server = Server::start(dir.path(), &[]);
    let c = client();
    let u = |p: &str| server.url(p);

    // No token, a wrong one, Basic with the wrong name: 401; a read token writing: 403.
    let (s, v) = call(c.get(u("/v1/stagings")));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED"))
    );
    let (s, _) = call(c.get(u("/v1/stagings")).bearer_auth(format!("{op}0")));
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(c.get(u("/v1/stagings")).basic_auth("mallory", Some(&op)));
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(c.get(u("/v1/stagings")).basic_auth("alice", Some(&op)));
    assert_eq!(s, StatusCode::OK);
    let body = json!({"name": "web", "tag": "1.0.0", "overrides": [
        {"key": "DB_PASSWORD", "value": "hunter2-srv", "scope": "app", "private": true},
        {"key": "LOG", "value": "debug"}]});
    let (s, v) = call(c.post(u("/v1/stagings")).bearer_auth(&ro).json(&body));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("FORBIDDEN"))
    );
    assert_eq!(
        call(c.get(u("/v1/stagings")).bearer_auth(&ro)).1,
        json!([]),
        "nothing made"
    );

    // create: 202 with the pending staging, then Running.
    let (s, v) = call(c.post(u("/v1/stagings")).bearer_auth(&op).json(&body));
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "CreatePending");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = call(c.get(u("/v1/stagings/web")).bearer_auth(&ro));
        if v["status"] == "Running" {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Forbidden transitions are 409 with their code: creating a Running staging again,
    // restoring one.
    let (s, v) = call(
        c.post(u("/v1/stagings?wait=true"))
            .bearer_auth(&op)
            .json(&body),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("INVALID_TRANSITION"))
    );
    let (s, v) = call(
        c.post(u("/v1/stagings/web/restore?wait=true"))
            .bearer_auth(&op),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("INVALID_TRANSITION"))
    );

    // update with a per-key change, waited for.
    let upd = json!({"tag": "1.1.0", "set": [{"key": "LOG", "value": "info"}]});
    let (s, v) = call(
        c.post(u("/v1/stagings/web/update?wait=true"))
            .bearer_auth(&op)
            .json(&upd),
    );
    assert_eq!(
        (s, v["status"].as_str(), v["tag"].as_str()),
        (StatusCode::OK, Some("Running"), Some("1.1.0")),
        "{v}"
    );
    // delete, restore, delete, cleanup.
    let (_, v) = call(
        c.post(u("/v1/stagings/web/delete?wait=true"))
            .bearer_auth(&op),
    );
    assert_eq!(v["status"], "Archived");
    let (_, v) = call(
        c.post(u("/v1/stagings/web/restore?wait=true"))
            .bearer_auth(&op),
    );
    assert_eq!(v["status"], "Running");
    let (_, v) = call(
        c.post(u("/v1/stagings/web/delete?wait=true"))
            .bearer_auth(&op),
    );
    assert_eq!(v["status"], "Archived");

    // The audit log names the token as the actor.
    let (s, log) = call(c.get(u("/v1/stagings/web/audit")).bearer_auth(&ro));
    assert_eq!(s, StatusCode::OK);
    let rows = log.as_array().unwrap();
    assert!(rows.len() >= 5, "{log}");
    assert!(
        rows.iter()
            .filter(|r| r["action"] != "reconcile")
            .all(|r| r["actor"] == "alice"),
        "{log}"
    );
    let (s, v) = call(c.get(u("/v1/stagings/nope/audit")).bearer_auth(&ro));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (s, v) = call(c.get(u("/v1/stagings/web/info")).bearer_auth(&ro));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_IMPLEMENTED, Some("UNSUPPORTED"))
    );

    let (s, v) = call(
        c.post(u("/v1/stagings/web/cleanup?wait=true"))
            .bearer_auth(&op),
    );
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"name": "web", "removed": true}))
    );
    let (s, v) = call(c.get(u("/v1/stagings/web")).bearer_auth(&ro));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );

    // The private value never came back, and is not in the server's log.
    let (status, err) = server.stop();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("SIGTERM: server stopped"), "{err}");
    // The log has a line per request (route and status, never a body or a header)...
    assert!(err.contains("route=/v1/stagings status=202"), "{err}");
    assert!(
        err.contains("route=/v1/stagings/{name}/cleanup status=200"),
        "{err}"
    );
    // ... and no private value, no token.
    assert!(!err.contains("hunter2-srv"), "{err}");
    assert!(!err.contains(&op) && !err.contains(&ro), "{err}");
    assert!(!log.to_string().contains("hunter2-srv"));
}

#[test]
fn hostile_requests_get_a_problem_and_change_nothing() {
    let (dir, _) = setup();
    let op = token(dir.path(), "alice", "operate");
    let server = Server::start(dir.path(), &["--body-limit", "4096"]);
    let c = client();
    let u = |p: &str| server.url(p);
    let post = |path: &str, body: &str| {
        c.post(u(path))
            .bearer_auth(&op)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    for (path, body, want) in [
        ("/v1/stagings", "{not json", "INVALID_ARGUMENT"),
        (
            "/v1/stagings",
            r#"{"name": "web", "tag": "1", "extra": 1}"#,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1/stagings",
            r#"{"name": "../../etc", "tag": "1.0.0"}"#,
            "INVALID_NAME",
        ),
        (
            "/v1/stagings",
            r#"{"name": "we\nb", "tag": "1.0.0"}"#,
            "INVALID_NAME",
        ),
        (
            "/v1/stagings",
            r#"{"name": "web", "tag": "1.0.0", "overrides": [{"key": "K", "value": "v", "scope": "App"}]}"#,
            "INVALID_ARGUMENT",
        ),
        ("/v1/capsules", r#"{"id": "../outside"}"#, "INVALID_NAME"),
        (
            "/v1/stagings?wait=maybe",
            r#"{"name": "web", "tag": "1.0.0"}"#,
            "INVALID_ARGUMENT",
        ),
    ] {
        let (s, v) = call(post(path, body));
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(want)),
            "{path} {body}: {v}"
        );
        assert!(!v["detail"].as_str().unwrap().contains('\n'), "{v}");
    }
    let big = format!(r#"{{"name": "web", "tag": "{}"}}"#, "x".repeat(8192));
    let (s, v) = call(post("/v1/stagings", &big));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("TOO_LARGE")),
        "{v}"
    );
    let (s, v) = call(
        c.get(u("/v1/capsules/..%2F..%2Fetc/crates"))
            .bearer_auth(&op),
    );
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = call(c.get(u("/v1/no/such/route")).bearer_auth(&op));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    assert_eq!(call(c.get(u("/v1/stagings")).bearer_auth(&op)).1, json!([]));
    assert_eq!(call(c.get(u("/v1/capsules")).bearer_auth(&op)).1, json!([]));
    // Health needs no token.
    assert_eq!(call(c.get(u("/healthz"))).0, StatusCode::OK);
    assert_eq!(call(c.get(u("/readyz"))).0, StatusCode::OK);
}

#[test]
fn show_storage_through_the_api() {
    let (dir, store) = setup();
    let op = token(dir.path(), "bob", "operate");
    let server = Server::start(dir.path(), &[]);
    let c = client();
    let u = |p: &str| server.url(p);
    let (s, v) = call(
        c.post(u("/v1/capsules"))
            .bearer_auth(&op)
            .json(&json!({"id": "shot010"})),
    );
    assert_eq!(
        (s, v["id"].as_str()),
        (StatusCode::CREATED, Some("shot010")),
        "{v}"
    );
    let (s, v) = call(
        c.post(u("/v1/capsules"))
            .bearer_auth(&op)
            .json(&json!({"id": "shot010"})),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("ALREADY_EXISTS"))
    );
    let (s, v) = call(c.get(u("/v1/capsules/shot010/latest")).bearer_auth(&op));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (s, v) = call(
        c.post(u("/v1/capsules/shot010/crates"))
            .bearer_auth(&op)
            .json(&json!({"comment": "first lighting pass"})),
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["version"].as_str(), v["created_by"].as_str()),
        (Some("v001"), Some("bob"))
    );
    // Frames on disk, with a gap.
    let artifacts = store.join("shot010/v001/artifacts");
    for f in [1, 2, 3, 5] {
        std::fs::write(artifacts.join(format!("beauty.{f:04}.exr")), b"x").unwrap();
    }
    let (s, v) = call(
        c.get(u(
            "/v1/capsules/shot010/crates/v001/sequences?section=artifacts",
        ))
        .bearer_auth(&op),
    );
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v[0]["frames"].as_str(), v[0]["missing"].as_str()),
        (Some("1-3,5"), Some("4")),
        "{v}"
    );
    let (s, v) = call(
        c.post(u("/v1/capsules/shot010/crates"))
            .bearer_auth(&op)
            .json(&json!({"carry_over": ["artifacts"]})),
    );
    assert_eq!(
        (s, v["version"].as_str()),
        (StatusCode::CREATED, Some("v002")),
        "{v}"
    );
    assert_eq!(v["parent"], "v001");
    let (s, v) = call(
        c.post(u("/v1/capsules/shot010/crates/v001/seal"))
            .bearer_auth(&op),
    );
    assert_eq!(
        (s, v["published"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
    let (_, v) = call(c.get(u("/v1/capsules/shot010/latest")).bearer_auth(&op));
    assert_eq!(v["version"], "v002");
    let (_, v) = call(
        c.get(u("/v1/capsules/shot010/latest?published=true"))
            .bearer_auth(&op),
    );
    assert_eq!(v["version"], "v001");
    let (_, v) = call(c.get(u("/v1/capsules/shot010/crates")).bearer_auth(&op));
    assert_eq!(v.as_array().unwrap().len(), 2);
    // The same shape as the CLI's --json.
    let cli = capsa(dir.path(), &["--json", "crates", "shot010"]);
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(cli, v);
    let (_, v) = call(c.get(u("/v1/capsules")).bearer_auth(&op));
    assert_eq!(
        v,
        json!([{"id": "shot010", "latest": "v002", "offline": false}])
    );
    let (s, v) = call(c.get(u("/v1/capsules/shot010/crates/v9x")).bearer_auth(&op));
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_VERSION")),
        "{v}"
    );
    let (s, v) = call(c.get(u("/v1/fsck")).bearer_auth(&op));
    assert_eq!(s, StatusCode::OK, "{v}");

    // The store commands over --server print what they print here, exit as they exit here.
    let remote = |args: &[&str]| {
        let mut c = base(dir.path());
        c.env("CAPSA_SERVER", &server.url).env("CAPSA_TOKEN", &op);
        c.args(args).output().unwrap()
    };
    let local = |args: &[&str]| capsa(dir.path(), args);
    for args in [
        &["crates", "shot010"][..],
        &["--json", "crates", "shot010"],
        &["capsule", "list"],
        &["--json", "capsule", "list"],
        &["latest", "shot010", "--published"],
        &["latest", "nope"],
        &["fsck"],
    ] {
        let (r, l) = (remote(args), local(args));
        assert_eq!(
            r.status.code(),
            l.status.code(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&l.stdout),
            "{args:?}"
        );
    }
    let o = remote(&["capsule", "create", "shot020"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "shot020");
    let o = remote(&["--json", "latest", "shot020"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "null",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = remote(&["bump", "shot020", "--comment", "from afar"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "v001");
    let o = remote(&["seal", "shot020", "v001"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "sealed shot020/v001"
    );
    let o = remote(&["publish", "shot020", "v001", "/etc/hostname"]);
    assert_eq!(o.status.code(), Some(22), "UNSUPPORTED over --server");
}

/// Read SSE events (`id`, `event`, `data`) from `r` until `n` have come.
fn sse(r: reqwest::blocking::Response, n: usize) -> Vec<(i64, String, Value)> {
    let mut out = Vec::new();
    let (mut id, mut ev, mut data) = (0, String::new(), String::new());
    for line in BufReader::new(r).lines() {
        let line = line.unwrap();
        if line.is_empty() {
            if !data.is_empty() {
                out.push((
                    id,
                    std::mem::take(&mut ev),
                    serde_json::from_str(&data).unwrap(),
                ));
                data.clear();
                if out.len() == n {
                    break;
                }
            }
        } else if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().parse().unwrap();
        } else if let Some(v) = line.strip_prefix("event:") {
            ev = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    out
}

#[test]
fn events_stream_live_and_resume_from_the_last_id() {
    let (dir, _) = setup();
    let op = token(dir.path(), "alice", "operate");
    let server = Server::start(dir.path(), &[]);
    let c = client();
    let u = |p: &str| server.url(p);
    // Subscribed first: only new events, of the one staging asked for.
    let live = c
        .get(u("/v1/events?staging=web"))
        .bearer_auth(&op)
        .send()
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert!(live.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    // web's create: two status changes and the command's end.
    let reader = std::thread::spawn(move || sse(live, 3));
    for name in ["other", "web"] {
        let body = json!({"name": name, "tag": "1.0.0"});
        let (s, _) = call(
            c.post(u("/v1/stagings?wait=true"))
                .bearer_auth(&op)
                .json(&body),
        );
        assert_eq!(s, StatusCode::OK);
    }
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|(_, _, d)| d["name"] == "web"), "{got:?}");
    assert!(
        got.iter().all(|(_, ev, d)| d["event"] == ev.as_str()),
        "{got:?}"
    );
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "{got:?}");
    assert_eq!(
        (&got[0].2["from"], &got[0].2["to"]),
        (&Value::Null, &json!("CreatePending"))
    );
    let changes: Vec<&Value> = got.iter().map(|g| &g.2["to"]).collect();
    assert!(changes.contains(&&json!("Running")), "{got:?}");
    // Reconnect after the first: the second again, nothing twice, nothing missed.
    let again = c
        .get(u("/v1/events"))
        .bearer_auth(&op)
        .header("Last-Event-ID", got[0].0.to_string())
        .send()
        .unwrap();
    let resumed = sse(again, 1);
    assert_eq!(resumed[0].0, got[1].0, "{resumed:?}");
    let (s, v) = call(
        c.get(u("/v1/events"))
            .bearer_auth(&op)
            .header("Last-Event-ID", "x"),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_ARGUMENT"))
    );
    // SIGTERM ends the open streams: the server does not wait for the clients.
    let _open = c.get(u("/v1/events")).bearer_auth(&op).send().unwrap();
    let t = Instant::now();
    let (status, _) = server.stop();
    assert!(status.success());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn a_command_in_flight_makes_the_next_busy() {
    let (dir, _) = setup();
    let op = token(dir.path(), "alice", "operate");
    let hold = dir.path().join("hold");
    std::fs::write(&hold, b"").unwrap();
    let server = Server::start(dir.path(), &["--mock-hold", hold.to_str().unwrap()]);
    let c = client();
    let u = |p: &str| server.url(p);
    let body = json!({"name": "web", "tag": "1.0.0"});
    let (s, v) = call(c.post(u("/v1/stagings")).bearer_auth(&op).json(&body));
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::ACCEPTED, Some("CreatePending"))
    );
    let upd = json!({"tag": "1.1.0"});
    let (s, v) = call(
        c.post(u("/v1/stagings/web/update"))
            .bearer_auth(&op)
            .json(&upd),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("BUSY")),
        "{v}"
    );
    std::fs::remove_file(&hold).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(c.get(u("/v1/stagings/web")).bearer_auth(&op)).1["status"] != "Running" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn events_over_a_websocket_then_a_close_frame_at_shutdown() {
    use tungstenite::client::IntoClientRequest;
    use tungstenite::Message;
    let (dir, _) = setup();
    let op = token(dir.path(), "alice", "operate");
    let server = Server::start(dir.path(), &[]);
    let ws_url = server
        .url("/v1/events?staging=web")
        .replacen("http://", "ws://", 1);
    let mut req = ws_url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {op}").parse().unwrap());
    let (mut socket, resp) = tungstenite::connect(req).expect("websocket");
    assert_eq!(resp.status(), 101);
    // A WebSocket without a token is refused before the upgrade.
    let anon = server.url("/v1/events").replacen("http://", "ws://", 1);
    match tungstenite::connect(anon) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("{:?}", other.map(|(_, r)| r.status())),
    }
    let c = client();
    let body = json!({"name": "web", "tag": "1.0.0", "overrides": [
        {"key": "PW", "value": "ws-secret-1", "private": true}]});
    let (s, _) = call(
        c.post(server.url("/v1/stagings?wait=true"))
            .bearer_auth(&op)
            .json(&body),
    );
    assert_eq!(s, StatusCode::OK);
    let mut seen = Vec::new();
    while !seen.iter().any(|v: &Value| v["to"] == "Running") {
        match socket.read().unwrap() {
            Message::Text(t) => {
                assert!(!t.contains("ws-secret-1"));
                seen.push(serde_json::from_str(&t).unwrap());
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(seen.iter().all(|v| v["name"] == "web"), "{seen:?}");
    assert_eq!(seen[0]["to"], "CreatePending");
    // SIGTERM: the server says goodbye with a close frame, and exits.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let frame = loop {
        match socket.read() {
            Ok(Message::Close(f)) => break f,
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    let frame = frame.expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 1001);
    let (status, _) = server.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn metrics_count_requests_by_route_stagings_by_status_and_subscribers() {
    let (dir, _) = setup();
    let ro = token(dir.path(), "prom", "read");
    let op = token(dir.path(), "alice", "operate");
    let server = Server::start(dir.path(), &[]);
    let c = client();
    let u = |p: &str| server.url(p);
    assert_eq!(call(c.get(u("/metrics"))).0, StatusCode::UNAUTHORIZED);
    let body = json!({"name": "web", "tag": "1.0.0"});
    assert_eq!(
        call(
            c.post(u("/v1/stagings?wait=true"))
                .bearer_auth(&op)
                .json(&body)
        )
        .0,
        StatusCode::OK
    );
    for _ in 0..3 {
        call(c.get(u("/v1/stagings/web")).bearer_auth(&ro));
    }
    call(c.get(u("/v1/stagings/no-such-one")).bearer_auth(&ro));
    let _sse = c.get(u("/v1/events")).bearer_auth(&ro).send().unwrap();
    let r = c.get(u("/metrics")).bearer_auth(&ro).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().unwrap();
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    has(r#"capsa_http_requests_total{method="GET",route="/v1/stagings/{name}",status="200"} 3"#);
    has(r#"capsa_http_requests_total{method="GET",route="/v1/stagings/{name}",status="404"} 1"#);
    has(r#"capsa_http_requests_total{method="POST",route="/v1/stagings",status="200"} 1"#);
    has(r#"capsa_stagings{status="Running"} 1"#);
    has(r#"capsa_staging_commands_total{command="create",outcome="Success"} 1"#);
    has("capsa_event_subscribers 1");
    assert!(
        text.contains("capsa_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("capsa_reconcile_lag_seconds "), "{text}");
    // Routes, never raw paths: no staging name becomes a label.
    assert!(!text.contains("no-such-one"), "{text}");
}

/// `capsa --server URL`: the staging commands through the API, with local mode's output and
/// exit codes (the same tour on a PostgreSQL state: serve_replicas.rs).
#[test]
fn the_cli_runs_staging_commands_through_the_server() {
    remote_cli_tour(&[]);
}

/// Archive commands are not run over the API: with `--server` they are refused, never run
/// on this machine's store instead.
#[test]
fn archive_commands_over_a_server_are_refused() {
    let (dir, _) = setup();
    assert!(capsa(dir.path(), &["capsule", "create", "shot010"])
        .status
        .success());
    let out = dir.path().join("shot010.zip");
    let o = base(dir.path())
        .env("CAPSA_SERVER", "http://127.0.0.1:9")
        .args(["archive", "shot010", "-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(22),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--server"));
    assert!(!out.exists());
}

#[test]
fn a_config_file_gives_the_options_the_command_line_does_not() {
    let (dir, _) = setup();
    let op = token(dir.path(), "alice", "operate");
    let conf = dir.path().join("serve.toml");
    std::fs::write(
        &conf,
        "body_limit = 200\nheader_timeout = 5\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    // --listen on the command line wins over the file's.
    let server = Server::start(dir.path(), &["--config", conf.to_str().unwrap()]);
    let c = client();
    let body = json!({"name": "web", "tag": "x".repeat(300)});
    let (s, v) = call(
        c.post(server.url("/v1/stagings"))
            .bearer_auth(&op)
            .json(&body),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("TOO_LARGE")),
        "{v}"
    );
    std::fs::write(&conf, "body_limt = 200\n").unwrap();
    let o = capsa(dir.path(), &["serve", "--config", conf.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown key \"body_limt\"") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn plain_http_off_loopback_is_refused() {
    let (dir, _) = setup();
    let out = capsa(dir.path(), &["serve", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--insecure") && err.contains("0.0.0.0"),
        "{err}"
    );
}

/// Pages of an allowed origin may call the API from a browser (a preflight answered, the
/// origin echoed); pages of any other origin get no CORS headers, so the browser keeps them
/// out. A bad origin is refused at start.
#[test]
fn cors_lets_only_the_allowed_origins_in() {
    let (dir, _) = setup();
    let ro = token(dir.path(), "ui", "read");
    let allowed = "https://tools.example:8443";
    let server = Server::start(dir.path(), &["--cors-origin", allowed]);
    let c = client();
    let preflight = |origin: &str| {
        c.request(reqwest::Method::OPTIONS, server.url("/v1/stagings"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .unwrap()
    };
    let r = preflight(allowed);
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], allowed);
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let headers = h["access-control-allow-headers"].to_str().unwrap();
    assert!(headers.contains("authorization"), "{headers}");
    let r = preflight("https://evil.example");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = c
        .get(server.url("/v1/stagings"))
        .header("origin", allowed)
        .bearer_auth(&ro)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], allowed);
    drop(server);
    for bad in [
        "*",
        "tools.example",
        "https://tools.example/ui",
        "ftp://tools.example",
    ] {
        let out = capsa(dir.path(), &["serve", "--cors-origin", bad]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("--cors-origin") && err.contains("not an origin"),
            "{err}"
        );
    }
}

/// A client that asks for gzip gets it (the same JSON, fewer bytes); an event stream is
/// never compressed (it would sit in the compressor's buffer).
#[test]
fn answers_are_gzipped_when_asked_but_not_event_streams() {
    use std::io::Read;
    let (dir, _) = setup();
    let ro = token(dir.path(), "reader", "read");
    let server = Server::start(dir.path(), &[]);
    let c = client();
    let plain = c
        .get(server.url("/v1/openapi.json"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let r = c
        .get(server.url("/v1/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let packed = r.bytes().unwrap();
    assert!(
        packed.len() * 3 < plain.len(),
        "{} of {}",
        packed.len(),
        plain.len()
    );
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain);
    let r = c
        .get(server.url("/v1/events"))
        .header("accept-encoding", "gzip")
        .bearer_auth(&ro)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers().get("content-encoding").is_none(),
        "{:?}",
        r.headers()
    );
    // Live at once: the stream's first comment arrives uncompressed.
    let mut first = [0u8; 2];
    let mut r = r;
    r.read_exact(&mut first).unwrap();
    assert_eq!(&first, b": ");
}
