//! The PostgreSQL state store across processes: migrations, 4 processes × 200 random commands
//! on 20 stagings against one database, and a subscriber process following every change.
//!
//! These tests need a server: `make test-postgres` builds and runs them (feature `postgres-tests`)
//! against a throwaway one; without `CAPSA_TEST_POSTGRES_URL` they fail, never skip. Worker
//! processes are the `capsa-pg-worker` binary (`tests/pg_worker/worker.rs`).
#![cfg(all(unix, feature = "postgres"))]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capsa::staging::{
    AuditQuery, Event, EventKind, ManagerOptions, MockDeployer, Outcome, PostgresOptions,
    PostgresStateStore, StagingManager, StateStore, Status,
};
use capsa::ErrorCode;

const WORKERS: usize = 4;
const COMMANDS: usize = 200;

fn store(schema: &str) -> PostgresStateStore {
    let mut o = PostgresOptions::new(common::postgres_url());
    o.schema = Some(schema.into());
    o.pool_size = 4;
    PostgresStateStore::open_with(o).unwrap()
}

fn psql(schema: &str, sql: &str) {
    let o = Process::new("psql")
        .args([
            &common::postgres_url(),
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            &format!("SET search_path = {schema}; {sql}"),
        ])
        .output()
        .expect("psql");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn fresh_schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}_{}_{nanos}", std::process::id())
}

#[test]
fn postgres_migrations_are_versioned() {
    let schema = fresh_schema("mig");
    assert_eq!(store(&schema).schema_version().unwrap(), 2);
    assert_eq!(store(&schema).schema_version().unwrap(), 2);
    psql(&schema, "UPDATE schema_version SET version = 99");
    let mut o = PostgresOptions::new(common::postgres_url());
    o.schema = Some(schema);
    let e = PostgresStateStore::open_with(o).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
}

#[test]
fn postgres_unreachable_server_is_a_clear_backend_error() {
    let _ = common::postgres_url();
    let mut o = PostgresOptions::new("postgres://capsa@127.0.0.1:1/capsa");
    o.connect_timeout = Duration::from_secs(2);
    let e = PostgresStateStore::open_with(o).unwrap_err();
    assert_eq!(e.code(), ErrorCode::State);
    let msg = e.to_string();
    assert!(
        msg.contains("postgres") && msg.contains("127.0.0.1:1"),
        "{msg}"
    );
    // TLS is not built in: asking for it is refused, never silently ignored.
    let e = PostgresStateStore::open(&format!("{}?sslmode=require", common::postgres_url()))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
    // The URL selects the store.
    let e = StagingManager::open(
        "postgres://capsa@127.0.0.1:1/capsa",
        Arc::new(MockDeployer::new()),
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::State, "{e}");
}

/// Start the worker binary (`tests/pg_worker/worker.rs`) as `role` on `schema` with `arg`.
fn spawn_worker(role: &str, schema: &str, arg: &str) -> Child {
    Process::new(env!("CARGO_BIN_EXE_capsa-pg-worker"))
        .args([role, schema, arg])
        .env("CAPSA_TEST_POSTGRES_URL", common::postgres_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn worker_lines(child: Child, what: &str) -> Vec<String> {
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        // the test harness prints its own lines around the worker's
        .filter(|l| l.starts_with("started ") || l.starts_with("refused ") || l.starts_with('{'))
        .map(str::to_string)
        .collect()
}

/// 4 processes × 200 random commands on 20 stagings against one database, plus a subscriber
/// process. Checks: no staging ever had two commands in flight (every command and every
/// status change starts from the stable status the previous one left);
/// every command is in the audit log exactly once; final statuses equal the replay of the
/// audit log; the subscriber saw every event, in order.
#[test]
fn postgres_four_processes_random_commands_and_a_subscriber() {
    let schema = fresh_schema("mp");
    let st = store(&schema); // migrate once before the crowd arrives
    let dir = tempfile::tempdir().unwrap();
    let stop = dir.path().join("stop");
    let mut sub = spawn_worker("subscriber", &schema, &stop.display().to_string());
    // Wait until the subscriber is connected.
    let mut err = BufReader::new(sub.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("subscriber ready"), "{line}");
    let t0 = Instant::now();
    let workers: Vec<Child> = (0..WORKERS)
        .map(|i| spawn_worker("commands", &schema, &(i as u64 + 1).to_string()))
        .collect();
    let mut started = Vec::new();
    let mut refused = 0usize;
    let mut busy = 0usize;
    for (i, w) in workers.into_iter().enumerate() {
        let lines = worker_lines(w, &format!("worker {i}"));
        assert_eq!(lines.len(), COMMANDS, "worker {i}: {lines:?}");
        for l in lines {
            match l.strip_prefix("started ") {
                Some(id) => started.push(id.parse::<i64>().unwrap()),
                None => {
                    refused += 1;
                    busy += usize::from(l == "refused BUSY");
                }
            }
        }
    }
    eprintln!(
        "{} commands from {WORKERS} processes in {:?}: {} started, {refused} refused ({busy} busy)",
        WORKERS * COMMANDS,
        t0.elapsed(),
        started.len()
    );
    std::fs::write(&stop, "").unwrap();
    let mut seen_lines = Vec::new();
    {
        let mut out = sub.stdout.take().unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        seen_lines.extend(s.lines().filter(|l| l.starts_with('{')).map(str::to_string));
    }
    assert!(sub.wait().unwrap().success(), "subscriber failed");

    // Every command is in the audit log exactly once.
    let rows = st.audit(&AuditQuery::default()).unwrap();
    assert_eq!(rows.len(), WORKERS * COMMANDS, "one audit row per command");
    assert!(rows.iter().all(|r| r.outcome != Outcome::Pending));
    let started_set: HashSet<i64> = started.iter().copied().collect();
    assert_eq!(
        started_set.len(),
        started.len(),
        "an audit id handed out twice"
    );
    let run_ids: HashSet<i64> = rows
        .iter()
        .filter(|r| r.outcome != Outcome::Refused)
        .map(|r| r.id)
        .collect();
    assert_eq!(
        run_ids, started_set,
        "started commands = non-refused audit rows"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.outcome == Outcome::Refused)
            .count(),
        refused
    );

    // Replay the audit log per staging: each command starts from where the previous one left
    // the staging, never while the previous one runs; the last one gives the final status.
    // A command started while another ran would have started from a pending status, which
    // no finished command leaves behind.
    let mut last: BTreeMap<String, Option<Status>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.outcome != Outcome::Refused) {
        let prev = last.get(&r.name).copied().unwrap_or(None);
        assert_eq!(
            r.status_before, prev,
            "audit row {} of {} starts from elsewhere: two commands in flight",
            r.id, r.name
        );
        assert!(r.status_after.is_none_or(|s| !s.is_pending()));
        last.insert(r.name.clone(), r.status_after);
    }
    let replayed: BTreeMap<String, Status> = last
        .into_iter()
        .filter_map(|(n, s)| s.map(|s| (n, s)))
        .collect();
    let stored: BTreeMap<String, Status> = st
        .list()
        .unwrap()
        .into_iter()
        .map(|r| {
            assert!(
                r.in_flight.is_none(),
                "left in flight: {:?}",
                r.staging.name
            );
            (r.staging.name, r.staging.status)
        })
        .collect();
    assert_eq!(stored, replayed, "final statuses = audit replay");

    // The feed: per staging, every status change starts where the previous one ended.
    let feed = st.events_since(0, 1_000_000).unwrap();
    let mut at: HashMap<String, Option<Status>> = HashMap::new();
    for e in &feed {
        if let EventKind::StatusChanged { from, to, .. } = &e.kind {
            let prev = at.get(&e.name).copied().unwrap_or(None);
            assert_eq!(
                *from, prev,
                "event {} of {}: two commands interleaved",
                e.seq, e.name
            );
            at.insert(e.name.clone(), *to);
        }
    }
    // The subscriber process saw every event of the others, in order.
    let seen: Vec<Event> = seen_lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["seq"].as_i64().unwrap(), v)
        })
        .map(|(seq, _)| {
            feed.iter()
                .find(|e| e.seq == seq)
                .cloned()
                .expect("seen event is in the feed")
        })
        .collect();
    let seqs: Vec<i64> = seen.iter().map(|e| e.seq).collect();
    let feed_seqs: Vec<i64> = feed.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, feed_seqs, "the subscriber missed or reordered events");
    for (l, e) in seen_lines.iter().zip(&feed) {
        assert_eq!(*l, serde_json::to_string(e).unwrap());
    }
}

// ---- Private values at rest ----

const SECRET: &str = "S3cretPassw0rdValue42";
const PUBLIC: &str = "PlainVisibleValue7";

fn sealed_overrides() -> Vec<capsa::staging::Override> {
    use capsa::staging::{Override, Scope};
    vec![
        Override::private(Scope::App, "DB_PASSWORD", SECRET),
        Override::public(Scope::Staging, "REPLICAS", PUBLIC),
    ]
}

fn keyed_manager(schema: &str, key: Option<&Path>) -> StagingManager {
    let mut o = PostgresOptions::new(common::postgres_url());
    o.schema = Some(schema.into());
    o.pool_size = 2;
    if let Some(k) = key {
        o = o.with_key_file(k);
    }
    StagingManager::new(
        Arc::new(PostgresStateStore::open_with(o).unwrap()),
        Arc::new(MockDeployer::new()),
        ManagerOptions::default(),
    )
}

#[test]
fn postgres_dump_holds_no_private_value() {
    let schema = fresh_schema("sealed");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("shared.key");
    let m = keyed_manager(&schema, Some(&key));
    m.create("web", "1.0.0", sealed_overrides()).unwrap();
    m.update("web", "1.0.1", Some(sealed_overrides())).unwrap();
    m.delete("web").unwrap();
    m.restore("web").unwrap();
    assert_eq!(m.get("web").unwrap().overrides[0].value.expose(), SECRET);

    let dump = Process::new("pg_dump")
        .args(["--schema", &schema, &common::postgres_url()])
        .output()
        .expect("pg_dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains(PUBLIC),
        "the dump has the public value: {dump}"
    );
    assert!(dump.contains("capsa-sealed:v1:"), "{dump}");
    for i in 0..=SECRET.len() - 6 {
        let f = &SECRET[i..i + 6];
        assert!(
            !dump.contains(f),
            "the dump holds {f:?} of the private value"
        );
    }

    // Another host with a copy of the key file reads the value; one with another key cannot.
    let copy = dir.path().join("copy.key");
    std::fs::copy(&key, &copy).unwrap();
    let other = keyed_manager(&schema, Some(&copy));
    assert_eq!(
        other.get("web").unwrap().overrides[0].value.expose(),
        SECRET
    );
    let wrong = keyed_manager(&schema, Some(&dir.path().join("wrong.key")));
    let e = wrong.get("web").unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    assert!(e.to_string().contains("wrong.key"), "{e}");
}

#[test]
fn postgres_without_a_key_file_refuses_private_values() {
    let schema = fresh_schema("nokey");
    let m = keyed_manager(&schema, None);
    // Public values need no key.
    let public: Vec<_> = sealed_overrides().into_iter().skip(1).collect();
    m.create("pub", "1.0.0", public).unwrap();
    let e = m.create("priv", "1.0.0", sealed_overrides()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("--key-file") && msg.contains(capsa::staging::KEY_FILE_ENV),
        "{msg}"
    );
    assert!(!msg.contains(SECRET) && !msg.contains('\n'), "{msg}");
    assert!(matches!(m.get("priv"), Err(e) if e.code() == ErrorCode::NotFound));
    let refused = m.audit_log(&AuditQuery::default()).unwrap();
    assert_eq!(refused.last().unwrap().outcome, Outcome::Refused);

    // A staging sealed by a host with the key: a host without one says what is missing.
    let dir = tempfile::tempdir().unwrap();
    let keyed = keyed_manager(&schema, Some(&dir.path().join("k.key")));
    keyed.create("priv", "1.0.0", sealed_overrides()).unwrap();
    let e = m.get("priv").unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    assert!(e.to_string().contains("--key-file"), "{e}");
}
