//! PostgreSQL killed in the middle of a command: the command fails with a clear error, nothing
//! is half-written, and after a restart the same manager reconnects and `reconcile` settles
//! the staging.
//!
//! Needs the throwaway server of `make test-postgres` (`CAPSA_TEST_POSTGRES_URL` and
//! `CAPSA_TEST_POSTGRES_CTL` to kill and restart it); fails, never skips, without them. It has
//! a test binary of its own so that no other test runs while the server is down.
#![cfg(all(unix, feature = "postgres"))]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use capsa::staging::{
    AuditQuery, CommandRequest, ManagerOptions, MockCall, MockDeployer, Outcome, PostgresOptions,
    PostgresStateStore, StagingManager, Status,
};
use capsa::ErrorCode;

fn ctl(action: &str) {
    let ctl = std::env::var("CAPSA_TEST_POSTGRES_CTL").unwrap_or_else(|_| {
        panic!(
            "CAPSA_TEST_POSTGRES_CTL is not set: this test kills and restarts the throwaway \
             server of `make test-postgres`"
        )
    });
    let mut parts = ctl.split_whitespace();
    let st = std::process::Command::new(parts.next().unwrap())
        .args(parts)
        .arg(action)
        .status()
        .unwrap();
    assert!(st.success(), "postgres ctl {action} failed");
}

/// Restarts the server if the test fails while it is down.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::panic::catch_unwind(|| ctl("start"));
        }
    }
}

#[test]
fn postgres_killed_mid_command_fails_clearly_and_reconcile_settles_it() {
    let url = common::postgres_url();
    let dir = tempfile::tempdir().unwrap();
    let mut o = PostgresOptions::new(url);
    o.schema = Some(common::schema_for(dir.path()));
    o.connect_timeout = Duration::from_secs(3);
    let mock = Arc::new(MockDeployer::new());
    let m = StagingManager::new(
        Arc::new(PostgresStateStore::open_with(o).unwrap()),
        mock.clone(),
        ManagerOptions {
            actor: "crash".into(),
            ..ManagerOptions::default()
        },
    );
    m.create("before", "1.0.0", vec![]).unwrap();
    let _restart = Restart;

    // The backend call is running when the server dies.
    mock.hold(MockCall::Create);
    let p = m
        .start(CommandRequest::Create {
            name: "victim".into(),
            tag: "1.0.0".into(),
            overrides: vec![],
        })
        .unwrap();
    assert_eq!(p.staging.status, Status::CreatePending);
    let t = Instant::now();
    while mock.held(MockCall::Create) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the create never reached the backend"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    ctl("kill");
    mock.release(MockCall::Create);
    let e = p.wait().unwrap_err();
    assert_eq!(e.code(), ErrorCode::State, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("postgres"),
        "the error names the state store: {msg}"
    );
    // While it is down: every call fails at once with the same kind of error.
    let t = Instant::now();
    let e = m.get("before").unwrap_err();
    assert_eq!(e.code(), ErrorCode::State, "{e}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let e = m.create("other", "1.0.0", vec![]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::State, "{e}");

    ctl("start");
    // The same manager reconnects; the begin was committed, the finish was not: the staging is
    // pending with one pending audit row, no half-finished state.
    let s = m.get("victim").unwrap();
    assert_eq!(s.status, Status::CreatePending);
    let rows = m
        .audit_log(&AuditQuery {
            name: Some("victim".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, Outcome::Pending);
    assert_eq!(m.get("other").unwrap_err().code(), ErrorCode::NotFound);
    // reconcile settles it from the backend's answer, without waiting for the timeout.
    let r = m.reconcile().unwrap();
    assert_eq!(r.resolved_pending, 1, "{r:?}");
    assert_eq!(m.get("victim").unwrap().status, Status::Running);
    let rows = m
        .audit_log(&AuditQuery {
            name: Some("victim".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, Outcome::Success);
    assert!(rows[0].output.contains("interrupted"), "{}", rows[0].output);
    assert_eq!(m.get("before").unwrap().status, Status::Running);
    // And commands work again.
    assert_eq!(m.delete("victim").unwrap().status, Status::Archived);
}
