//! The default pending timeout (600 s) is what a manager opened with `ManagerOptions::default()`
//! applies: a command left pending by another manager is left alone at 599 s and settled from
//! the backend's answer at 601 s. Time is driven by moving the command's start back in the
//! state file, not by waiting.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use capsa::staging::{
    CommandRequest, ManagerOptions, MockCall, MockDeployer, StagingManager, Status,
};

/// Move the in-flight command's start of `name` back by `ms` milliseconds.
fn age_command(state: &Path, name: &str, ms: i64) {
    let db = rusqlite::Connection::open(state).unwrap();
    let n = db
        .execute(
            "UPDATE stagings SET op_started_at = op_started_at - ?1 WHERE name = ?2 AND op_id IS NOT NULL",
            rusqlite::params![ms, name],
        )
        .unwrap();
    assert_eq!(n, 1, "{name} has a command in flight");
}

#[test]
fn the_default_pending_timeout_is_600_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    // The first manager's create never finishes within the test.
    let slow = Arc::new(MockDeployer::new());
    slow.set_delay(MockCall::Create, Duration::from_secs(3600));
    let first = StagingManager::open_sqlite(&state, slow, ManagerOptions::default()).unwrap();
    let _pending = first
        .start(CommandRequest::Create {
            name: "held".into(),
            tag: "1.0.0".into(),
            overrides: vec![],
        })
        .unwrap();
    assert!(first.get("held").unwrap().status.is_pending());

    // A second manager of this process, with every default: the first one's command is its
    // own process's, so only the timeout can settle it.
    let backend = Arc::new(MockDeployer::new());
    let second =
        StagingManager::open_sqlite(&state, backend.clone(), ManagerOptions::default()).unwrap();
    assert_eq!(
        ManagerOptions::default().pending_timeout,
        Duration::from_secs(600)
    );
    age_command(&state, "held", 599_000);
    second.reconcile().unwrap();
    assert!(second.get("held").unwrap().status.is_pending());
    assert_eq!(
        backend.count(MockCall::Check),
        0,
        "asked before the timeout"
    );

    age_command(&state, "held", 2_000);
    second.reconcile().unwrap();
    assert_eq!(
        backend.count(MockCall::Check),
        1,
        "not asked after the timeout"
    );
    assert_eq!(second.get("held").unwrap().status, Status::Running);
}
