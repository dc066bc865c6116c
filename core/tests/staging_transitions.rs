//! Every row of the transition table and every forbidden transition, on both backends.
#![cfg(unix)] // the tests use shell scripts and Unix process control

mod common;

use capsa::staging::{AuditQuery, Command, CommandRequest, Outcome, Staging, Status};
use capsa::ErrorCode;
use common::{Harness, MockHarness, Mode, ScriptHarness};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    Absent,
    Running,
    Failure,
    Archived,
}

/// DESIGN.md's table, written out independently of `capsa::staging::machine`:
/// `Some((on success, on failure))` when `cmd` may start from `from`; `None` on success = gone.
fn expected(cmd: Command, from: Start) -> Option<(Option<Status>, Status)> {
    use Start::*;
    match (cmd, from) {
        (Command::Create, Absent) => Some((Some(Status::Running), Status::Failure)),
        (Command::Update, Running | Failure) => Some((Some(Status::Running), Status::Failure)),
        (Command::Delete, Running | Failure) => Some((Some(Status::Archived), Status::Failure)),
        (Command::Restore, Archived) => Some((Some(Status::Running), Status::Failure)),
        (Command::Cleanup, Archived | Failure) => Some((None, Status::Failure)),
        _ => None,
    }
}

fn backend_call(cmd: Command) -> &'static str {
    capsa::staging::MockCall::of(cmd).as_str()
}

fn request(cmd: Command, name: &str) -> CommandRequest {
    let name = name.to_string();
    match cmd {
        Command::Create => CommandRequest::Create {
            name,
            tag: "1.0.0".into(),
            overrides: vec![],
        },
        Command::Update => CommandRequest::Update {
            name,
            tag: "1.1.0".into(),
            overrides: None,
        },
        Command::Delete => CommandRequest::Delete { name },
        Command::Restore => CommandRequest::Restore { name },
        Command::Cleanup => CommandRequest::Cleanup { name },
    }
}

fn reach(h: &dyn Harness, name: &str, start: Start) {
    let m = h.manager();
    match start {
        Start::Absent => {}
        Start::Running => {
            assert_eq!(
                m.create(name, "1.0.0", vec![]).unwrap().status,
                Status::Running
            )
        }
        Start::Failure => {
            h.set("create", Mode::Fail);
            assert_eq!(
                m.create(name, "1.0.0", vec![]).unwrap().status,
                Status::Failure
            );
            h.set("create", Mode::Ok);
        }
        Start::Archived => {
            m.create(name, "1.0.0", vec![]).unwrap();
            assert_eq!(m.delete(name).unwrap().status, Status::Archived);
        }
    }
}

fn status_name(start: Start) -> &'static str {
    match start {
        Start::Absent => "absent",
        Start::Running => "Running",
        Start::Failure => "Failure",
        Start::Archived => "Archived",
    }
}

fn check_table(h: &dyn Harness) {
    let m = h.manager();
    let mut n = 0;
    for cmd in Command::ALL {
        for start in [
            Start::Absent,
            Start::Running,
            Start::Failure,
            Start::Archived,
        ] {
            for success in [true, false] {
                n += 1;
                let name = format!("s{n}-{}", cmd.as_str());
                h.reset();
                reach(h, &name, start);
                let before = m.audit_log(&AuditQuery::default()).unwrap().len();
                if !success {
                    h.set(backend_call(cmd), Mode::Fail);
                }
                let r = m.start(request(cmd, &name)).and_then(|p| p.wait());
                let rows = m.audit_log(&AuditQuery::default()).unwrap();
                assert_eq!(
                    rows.len(),
                    before + 1,
                    "{cmd} from {start:?}: one audit row"
                );
                let row = rows.last().unwrap();
                assert_eq!(row.action, cmd.as_str());
                match (expected(cmd, start), r) {
                    (Some((ok, fail)), Ok(after)) => {
                        let want = if success { ok } else { Some(fail) };
                        assert_eq!(
                            after.as_ref().map(|s| s.status),
                            want,
                            "{cmd} from {start:?} success={success}"
                        );
                        let stored = m.get(&name).ok().map(|s| s.status);
                        assert_eq!(stored, want, "stored status");
                        assert_eq!(
                            row.outcome,
                            if success {
                                Outcome::Success
                            } else {
                                Outcome::Failure
                            }
                        );
                        assert_eq!(row.status_after, want);
                        if let Some(s) = after {
                            assert_eq!(s.command_in_progress, None);
                            assert_eq!(s.reason.is_some(), !success, "{s:?}");
                        }
                    }
                    (None, Err(e)) => {
                        assert_eq!(
                            e.code(),
                            ErrorCode::InvalidTransition,
                            "{cmd} from {start:?}: {e}"
                        );
                        assert!(e.to_string().contains(status_name(start)), "{e}");
                        assert_eq!(row.outcome, Outcome::Refused);
                        // nothing changed
                        let stored = m.get(&name).ok().map(|s| s.status);
                        let want = match start {
                            Start::Absent => None,
                            Start::Running => Some(Status::Running),
                            Start::Failure => Some(Status::Failure),
                            Start::Archived => Some(Status::Archived),
                        };
                        assert_eq!(stored, want);
                    }
                    (want, got) => panic!("{cmd} from {start:?}: expected {want:?}, got {got:?}"),
                }
            }
        }
    }
}

/// A command on a staging with a command in flight (each pending status, and a cleanup in
/// progress) is refused with Busy, whatever the command.
fn check_busy(h: &dyn Harness) {
    let m = h.manager();
    let setups: [(Start, Command, Option<Status>); 5] = [
        (Start::Absent, Command::Create, Some(Status::CreatePending)),
        (Start::Running, Command::Update, Some(Status::UpdatePending)),
        (Start::Running, Command::Delete, Some(Status::DeletePending)),
        (
            Start::Archived,
            Command::Restore,
            Some(Status::CreatePending),
        ),
        (Start::Archived, Command::Cleanup, None),
    ];
    for (i, (start, first, pending)) in setups.into_iter().enumerate() {
        h.reset();
        let name = format!("busy-{i}");
        reach(h, &name, start);
        h.set(backend_call(first), Mode::Held);
        let p = m.start(request(first, &name)).unwrap();
        let want = pending.unwrap_or(Status::Archived);
        assert_eq!(p.staging.status, want);
        assert_eq!(p.staging.command_in_progress, Some(first));
        for cmd in Command::ALL {
            let e = m.start(request(cmd, &name)).unwrap_err();
            assert_eq!(e.code(), ErrorCode::Busy, "{cmd} while {first}: {e}");
        }
        h.release(backend_call(first));
        let done: Option<Staging> = p.wait().unwrap();
        assert_eq!(done.map(|s| s.status), expected(first, start).unwrap().0);
        let rows = m
            .audit_log(&AuditQuery {
                name: Some(name.clone()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            rows.iter()
                .filter(|r| r.outcome == Outcome::Refused)
                .count(),
            5
        );
    }
}

#[test]
fn staging_table_mock() {
    let h = MockHarness::new();
    check_table(&h);
}

#[test]
fn staging_table_script() {
    let h = ScriptHarness::new();
    check_table(&h);
}

#[test]
fn staging_busy_mock() {
    check_busy(&MockHarness::new());
}

#[test]
fn staging_busy_script() {
    check_busy(&ScriptHarness::new());
}

#[test]
fn staging_invalid_names_are_refused_before_anything() {
    let h = MockHarness::new();
    for bad in ["ab", "Upper", "9lives", "has_underscore", &"x".repeat(41)] {
        let e = h.manager.create(bad, "1.0.0", vec![]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidName);
    }
    assert!(h.mock.calls().is_empty());
}

#[test]
fn staging_tag_check_rejects_older_semver_tags() {
    let h = MockHarness::new();
    h.mock.set_min_tag("1.10.0");
    let e = h.manager.create("tagged", "1.9.0", vec![]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert!(h.manager.get("tagged").is_err());
    h.manager.create("tagged", "v1.10.1", vec![]).unwrap();
    let rows = h.manager.audit_log(&AuditQuery::default()).unwrap();
    assert_eq!(rows[0].outcome, Outcome::Refused);
    assert_eq!(rows[1].outcome, Outcome::Success);
}
