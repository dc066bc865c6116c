//! Races on one state store: the compare-and-set of `begin`, `finish` and `record_checks`.
//!
//! Several threads work on the same stagings at once, through one store shared between
//! threads and a second one opened on the same state (two connections: SQLite's file lock,
//! PostgreSQL's row locks). The store is SQLite, or PostgreSQL under
//! `CAPSA_TEST_STATE_STORE=postgres` (`make test-postgres`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use capsa::staging::store::{Begin, Begun, CheckUpdate, Finish, Finished};
use capsa::staging::{AuditQuery, Command, EventKind, Outcome, StateStore, Status};
use capsa::ErrorCode;
use chrono::Utc;

const THREADS: usize = 6;

fn stores(dir: &std::path::Path) -> [Arc<dyn StateStore>; 2] {
    [common::open_store(dir), common::open_store(dir)]
}

fn begin(store: &dyn StateStore, name: &str, command: Command) -> capsa::Result<Begun> {
    store.begin(&Begin {
        name,
        command,
        actor: "racer",
        tag: matches!(command, Command::Create | Command::Update).then_some("1.0.0"),
        overrides: None,
        edits: &[],
        expiry: Default::default(),
        pid: std::process::id(),
        now: Utc::now(),
    })
}

fn finish(store: &dyn StateStore, b: &Begun, command: Command, success: bool) -> Finished {
    store
        .finish(&Finish {
            name: &b.record.staging.name,
            op_id: b.op_id,
            command,
            success,
            settle_by_check: false,
            reason: (!success).then(|| format!("{command} failed on purpose")),
            exit_code: Some(if success { 0 } else { 3 }),
            output: "",
            now: Utc::now(),
        })
        .unwrap()
}

/// `THREADS` threads start `command` on `name` at once; returns the winners and checks that
/// every loser was refused with `Busy`.
fn race_begins(stores: &[Arc<dyn StateStore>; 2], name: &str, command: Command) -> Vec<Begun> {
    let barrier = Barrier::new(THREADS);
    let results: Vec<capsa::Result<Begun>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let store = stores[i % 2].clone();
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    begin(&*store, name, command)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut won = Vec::new();
    for r in results {
        match r {
            Ok(b) => won.push(b),
            Err(e) => assert_eq!(e.code(), ErrorCode::Busy, "{command} on {name}: {e}"),
        }
    }
    won
}

#[test]
fn exactly_one_of_concurrent_begins_on_one_staging_wins() {
    let dir = tempfile::tempdir().unwrap();
    let stores = stores(dir.path());
    let name = "contested";
    let mut rounds = 0;
    let won = race_begins(&stores, name, Command::Create);
    assert_eq!(won.len(), 1, "concurrent creates: {} winners", won.len());
    finish(&*stores[0], &won[0], Command::Create, true);
    rounds += 1;
    // Every command of the table, each from a status it may start from.
    let plan = [
        (Command::Update, true),
        (Command::Update, false),
        (Command::Update, true),
        (Command::Delete, true),
        (Command::Restore, true),
        (Command::Delete, false),
        (Command::Cleanup, true),
        (Command::Create, true),
    ];
    for (round, (command, success)) in plan.into_iter().enumerate() {
        let won = race_begins(&stores, name, command);
        assert_eq!(won.len(), 1, "round {round}: {} winners", won.len());
        let b = &won[0];
        let rec = stores[1].get(name).unwrap().unwrap();
        assert_eq!(rec.in_flight.as_ref().map(|f| f.op_id), Some(b.op_id));
        let f = finish(&*stores[round % 2], b, command, success);
        assert!(f.applied);
        rounds += 1;
    }
    let rows = stores[0]
        .audit(&AuditQuery {
            name: Some(name.into()),
            ..Default::default()
        })
        .unwrap();
    let started = rows
        .iter()
        .filter(|r| r.outcome != Outcome::Refused)
        .count();
    let refused = rows
        .iter()
        .filter(|r| r.outcome == Outcome::Refused)
        .count();
    assert_eq!(started, rounds, "one command started per round");
    assert_eq!(refused, rounds * (THREADS - 1), "every loser audited");
    assert!(rows.iter().all(|r| r.outcome != Outcome::Pending));
}

/// The status a command leaves its staging in while it runs.
fn running_status(command: Command, before: Status) -> Status {
    match command {
        Command::Update => Status::UpdatePending,
        Command::Delete => Status::DeletePending,
        Command::Create | Command::Restore => Status::CreatePending,
        Command::Cleanup => before,
    }
}

#[test]
fn a_check_result_never_overwrites_a_staging_with_a_command_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let stores = stores(dir.path());
    let name = "checked";
    let b = begin(&*stores[0], name, Command::Create).unwrap();
    finish(&*stores[0], &b, Command::Create, true);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Checkers: read the staging and record the opposite health answer for the status
        // read, as a reconcile would with a slow backend (or reading while a command runs).
        for i in 0..THREADS - 1 {
            let store = stores[i % 2].clone();
            let done = &done;
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let Some(rec) = store.get(name).unwrap() else {
                        continue;
                    };
                    let expected = rec.staging.status;
                    let new_status = match expected {
                        Status::Running => Status::Failure,
                        Status::Failure => Status::Running,
                        // Also try on a pending status: it must not apply either.
                        Status::UpdatePending => Status::Running,
                        _ => continue,
                    };
                    store
                        .record_checks(&[CheckUpdate {
                            name: name.into(),
                            expected,
                            new_status,
                            reason: Some("check: racing".into()),
                            now: Utc::now(),
                        }])
                        .unwrap();
                }
            });
        }
        // The commander: cleanup (which keeps the status while it runs) and update, over and
        // over; while its command is in flight nothing may change the staging.
        let store = stores[1].clone();
        let done = &done;
        s.spawn(move || {
            // Stop the checkers also when an assertion below fails.
            struct Done<'a>(&'a AtomicBool);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _done = Done(done);
            let mut in_flight_seen = 0;
            for round in 0..150 {
                let Some(rec) = store.get(name).unwrap() else {
                    panic!("round {round}: the staging is gone");
                };
                let command = match rec.staging.status {
                    Status::Failure if round % 2 == 0 => Command::Cleanup,
                    Status::Running | Status::Failure => Command::Update,
                    other => panic!("round {round}: unexpected {other}"),
                };
                let b = match begin(&*store, name, command) {
                    Ok(b) => b,
                    // A check changed the status between our read and our begin.
                    Err(e) if e.code() == ErrorCode::InvalidTransition => continue,
                    Err(e) => panic!("round {round}: {e}"),
                };
                let want = running_status(command, b.status_before.unwrap());
                for _ in 0..5 {
                    let rec = store.get(name).unwrap().unwrap();
                    assert_eq!(
                        (rec.staging.status, rec.in_flight.map(|f| f.op_id)),
                        (want, Some(b.op_id)),
                        "round {round}: {command} in flight, yet the staging changed"
                    );
                    assert_eq!(rec.staging.reason, b.record.staging.reason);
                    in_flight_seen += 1;
                    std::thread::yield_now();
                }
                // Cleanup fails on purpose (the staging stays); update alternates.
                let success = command == Command::Update && round % 3 != 0;
                let f = finish(&*store, &b, command, success);
                assert!(f.applied, "round {round}: the finish did not apply");
                let from = f.events.iter().find_map(|e| match &e.kind {
                    EventKind::StatusChanged { from, .. } => Some(*from),
                    _ => None,
                });
                assert_eq!(from, Some(Some(want)), "round {round}: {command}");
            }
            assert!(in_flight_seen > 0);
        });
    });
}
