//! Two `capsa serve` replicas on one PostgreSQL state (the server of `make test-postgres`;
//! fails without it): a command on A is seen on B's event stream, a kill -9 of A in the middle
//! of a command is settled by B's status updater, and SIGTERM of B lets its request in flight
//! finish.
#![cfg(all(unix, feature = "postgres-tests"))]

mod support;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::server::*;

#[test]
fn two_replicas_share_one_postgresql_state() {
    let (dir, _) = setup();
    let url = support::postgres_database("serve");
    let op = token(dir.path(), "alice", "operate");
    let hold = dir.path().join("hold");
    std::fs::write(&hold, b"").unwrap();
    let hold_arg = hold.to_str().unwrap();
    let state = ["--state", url.as_str(), "--pending-timeout", "2"];
    let a = Server::start(
        dir.path(),
        &[&state[..], &["--mock-hold", hold_arg]].concat(),
    );
    let b = Server::start(
        dir.path(),
        &[
            &state[..],
            &["--reconcile-every", "1s", "--mock-delay", "1500"],
        ]
        .concat(),
    );
    let c = client();

    // B's event stream, then a create on A, held at A's backend.
    let events = c
        .get(b.url("/v1/events?staging=shared"))
        .bearer_auth(&op)
        .send()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(events).lines() {
            let Ok(line) = line else { return };
            if let Some(data) = line.strip_prefix("data:") {
                if tx.send(serde_json::from_str(data.trim()).unwrap()).is_err() {
                    return;
                }
            }
        }
    });
    let body = json!({"name": "shared", "tag": "1.0.0"});
    let (s, v) = call(c.post(a.url("/v1/stagings")).bearer_auth(&op).json(&body));
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::ACCEPTED, Some("CreatePending"))
    );
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("B saw A's change");
    assert_eq!(
        (first["from"].clone(), first["to"].clone()),
        (Value::Null, json!("CreatePending"))
    );
    // Busy on B too: the command is A's.
    let upd = json!({"tag": "1.1.0"});
    let (s, v) = call(
        c.post(b.url("/v1/stagings/shared/update"))
            .bearer_auth(&op)
            .json(&upd),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("BUSY")),
        "{v}"
    );

    // kill -9 A in the middle of the command: B's status updater settles the staging.
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let t = Instant::now();
    let settled = loop {
        let (_, v) = call(c.get(b.url("/v1/stagings/shared")).bearer_auth(&op));
        if !v["status"].as_str().unwrap().ends_with("Pending") && v["command_in_progress"].is_null()
        {
            break v;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "still pending: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "B settled A's killed create after {:?}: {settled}",
        t.elapsed()
    );
    let next = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("B's stream saw the settlement");
    assert_eq!(next["from"], "CreatePending", "{next}");

    // SIGTERM of B while a request is in flight (1.5 s at the mock backend): it finishes.
    let c2 = client();
    let url_b = b.url("/v1/stagings?wait=true");
    let op2 = op.clone();
    let in_flight = std::thread::spawn(move || {
        call(
            c2.post(url_b)
                .bearer_auth(&op2)
                .json(&json!({"name": "late", "tag": "1.0.0"})),
        )
    });
    std::thread::sleep(Duration::from_millis(400));
    let (status, err) = b.stop();
    let (s, v) = in_flight.join().unwrap();
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("Running")),
        "{v}\n{err}"
    );
    assert!(status.success(), "{status}: {err}");
}

/// The remote CLI's tour (serve_api.rs) on a server whose state is PostgreSQL.
#[test]
fn the_remote_cli_on_a_postgresql_state() {
    let url = support::postgres_database("remote");
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("staging.key");
    let key = key.to_str().unwrap();
    remote_cli_tour(&["--state", url.as_str(), "--key-file", key]);
}
