//! Property test: random sequences of commands, backend outcomes and reconciles against a
//! small reference model.
//!
//! Invariants checked after every step: the stored statuses equal the model's; no command is
//! left in flight and never two at once on one staging (a second command while one runs is
//! `Busy`); every command leaves exactly one audit row and no row stays `Pending`.
#![cfg(unix)] // the tests use shell scripts and Unix process control

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use capsa::staging::{AuditQuery, Command, CommandRequest, Outcome, Status};
use capsa::ErrorCode;
use common::{Harness, MockHarness, Mode};
use proptest::prelude::*;

const NAMES: [&str; 3] = ["alpha", "bravo", "charlie"];

#[derive(Debug, Clone, Copy)]
enum Check {
    Healthy,
    Unhealthy,
    Unavailable,
}

#[derive(Debug, Clone)]
enum Op {
    Cmd {
        cmd: Command,
        who: usize,
        ok: bool,
    },
    Overlap {
        first: Command,
        second: Command,
        who: usize,
        ok: bool,
    },
    Reconcile(Check),
}

fn command() -> impl Strategy<Value = Command> {
    prop::sample::select(Command::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (command(), 0..3usize, any::<bool>()).prop_map(|(cmd, who, ok)| Op::Cmd { cmd, who, ok }),
        1 => (command(), command(), 0..3usize, any::<bool>())
            .prop_map(|(first, second, who, ok)| Op::Overlap { first, second, who, ok }),
        2 => prop::sample::select(vec![Check::Healthy, Check::Unhealthy, Check::Unavailable])
            .prop_map(Op::Reconcile),
    ]
}

/// The reference model of one staging: `None` = absent.
fn model_step(cmd: Command, cur: Option<Status>, ok: bool) -> Result<Option<Status>, ErrorCode> {
    use Status::*;
    let allowed = matches!(
        (cmd, cur),
        (Command::Create, None)
            | (Command::Update, Some(Running | Failure))
            | (Command::Delete, Some(Running | Failure))
            | (Command::Restore, Some(Archived))
            | (Command::Cleanup, Some(Archived | Failure))
    );
    if !allowed {
        return Err(ErrorCode::InvalidTransition);
    }
    Ok(match (ok, cmd) {
        (false, _) => Some(Failure),
        (true, Command::Create | Command::Update | Command::Restore) => Some(Running),
        (true, Command::Delete) => Some(Archived),
        (true, Command::Cleanup) => None,
    })
}

fn call_of(cmd: Command) -> &'static str {
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
            tag: "1.0.1".into(),
            overrides: Some(vec![]),
        },
        Command::Delete => CommandRequest::Delete { name },
        Command::Restore => CommandRequest::Restore { name },
        Command::Cleanup => CommandRequest::Cleanup { name },
    }
}

fn run(h: &MockHarness, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let m = &h.manager;
    let mut model: BTreeMap<&str, Status> = BTreeMap::new();
    let mut expected_rows = 0usize;
    for op in ops {
        h.reset();
        match op {
            Op::Cmd { cmd, who, ok } => {
                let name = NAMES[who];
                if !ok {
                    h.set(call_of(cmd), Mode::Fail);
                }
                let want = model_step(cmd, model.get(name).copied(), ok);
                let got = m.start(request(cmd, name)).and_then(|p| p.wait());
                expected_rows += 1;
                match (want, got) {
                    (Ok(w), Ok(g)) => {
                        prop_assert_eq!(g.map(|s| s.status), w);
                        match w {
                            Some(s) => model.insert(name, s),
                            None => model.remove(name),
                        };
                    }
                    (Err(code), Err(e)) => prop_assert_eq!(code, e.code()),
                    (w, g) => prop_assert!(false, "{cmd} on {name}: model {w:?}, got {g:?}"),
                }
            }
            Op::Overlap {
                first,
                second,
                who,
                ok,
            } => {
                let name = NAMES[who];
                let cur = model.get(name).copied();
                let Ok(after) = model_step(first, cur, ok) else {
                    continue;
                };
                h.set(call_of(first), Mode::Held);
                if !ok {
                    h.set(call_of(first), Mode::Fail);
                }
                let p = m.start(request(first, name)).unwrap();
                prop_assert_eq!(p.staging.command_in_progress, Some(first));
                prop_assert!(p.staging.status.is_pending() || first == Command::Cleanup);
                let e = m.start(request(second, name)).unwrap_err();
                prop_assert_eq!(e.code(), ErrorCode::Busy);
                h.release(call_of(first));
                prop_assert_eq!(p.wait().unwrap().map(|s| s.status), after);
                expected_rows += 2;
                match after {
                    Some(s) => model.insert(name, s),
                    None => model.remove(name),
                };
            }
            Op::Reconcile(check) => {
                let mode = match check {
                    Check::Healthy => Mode::Ok,
                    Check::Unhealthy => Mode::Fail,
                    Check::Unavailable => {
                        for c in [
                            capsa::staging::MockCall::Check,
                            capsa::staging::MockCall::ArchiveCheck,
                        ] {
                            h.mock
                                .set_default(c, capsa::staging::BackendReply::unavailable("down"));
                        }
                        Mode::Slow(Duration::ZERO)
                    }
                };
                h.set("check", mode);
                h.set("archive_check", mode);
                let report = m.reconcile().unwrap();
                let mut changes = 0;
                for st in model.values_mut() {
                    let new = match (*st, check) {
                        (Status::Archived, _) | (_, Check::Unavailable) => *st,
                        (_, Check::Healthy) => Status::Running,
                        (_, Check::Unhealthy) => Status::Failure,
                    };
                    if new != *st {
                        changes += 1;
                        *st = new;
                    }
                }
                prop_assert_eq!(report.changed, changes);
                expected_rows += changes;
            }
        }
        // invariants
        let stored: BTreeMap<String, Status> = m
            .list()
            .unwrap()
            .into_iter()
            .map(|s| {
                assert!(
                    s.command_in_progress.is_none(),
                    "command left in flight: {s:?}"
                );
                assert!(Status::ALL.contains(&s.status));
                (s.name, s.status)
            })
            .collect();
        let modeled: BTreeMap<String, Status> =
            model.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        prop_assert_eq!(stored, modeled);
        let rows = m.audit_log(&AuditQuery::default()).unwrap();
        prop_assert_eq!(rows.len(), expected_rows);
        prop_assert!(rows.iter().all(|r| r.outcome != Outcome::Pending));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn staging_random_sequences_match_the_model(ops in prop::collection::vec(op(), 1..30)) {
        let h = MockHarness::new();
        run(&h, ops)?;
    }
}
