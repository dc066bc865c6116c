//! Reconcile, pending recovery, retention, cleanup and the audit log, events, private values.
#![cfg(unix)] // the tests use shell scripts and Unix process control

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capsa::staging::store::Begin;
use capsa::staging::{
    AuditQuery, BackendReply, Command, Event, EventKind, ManagerOptions, MockCall, MockDeployer,
    Outcome, Override, Scope, SqliteStore, StagingManager, Status,
};
use capsa::ErrorCode;
use common::{options, write_script, Harness, MockHarness, Mode, ScriptHarness};

fn all_rows(m: &StagingManager, name: &str) -> Vec<capsa::staging::AuditEntry> {
    m.audit_log(&AuditQuery {
        name: Some(name.into()),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn staging_cleanup_removes_the_record_but_keeps_the_audit_rows() {
    let h = MockHarness::new();
    let m = &h.manager;
    m.create("keeper", "1.0.0", vec![]).unwrap();
    m.update("keeper", "1.1.0", None).unwrap();
    m.delete("keeper").unwrap();
    assert_eq!(m.cleanup("keeper").unwrap(), None);
    assert_eq!(m.get("keeper").unwrap_err().code(), ErrorCode::NotFound);
    let rows = all_rows(m, "keeper");
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["create", "update", "delete", "cleanup"]);
    assert!(rows
        .iter()
        .all(|r| r.outcome == Outcome::Success && r.actor == "tester"));
    assert_eq!(rows[3].status_after, None);
    // Created again under the same name: history goes on.
    m.create("keeper", "2.0.0", vec![]).unwrap();
    assert_eq!(all_rows(m, "keeper").len(), 5);
}

#[test]
fn staging_restore_uses_the_last_settings() {
    let h = MockHarness::new();
    let m = &h.manager;
    let o = vec![Override::private(Scope::App, "TOKEN", "s3cr3t-restore")];
    m.create("phoenix", "3.1.4", o).unwrap();
    m.delete("phoenix").unwrap();
    let s = m.restore("phoenix").unwrap();
    assert_eq!(s.status, Status::Running);
    assert_eq!(s.tag, "3.1.4");
    assert_eq!(s.overrides[0].value.expose(), "s3cr3t-restore");
    // update without overrides keeps them; with an empty list clears them
    let s = m.update("phoenix", "3.2.0", None).unwrap();
    assert_eq!(s.overrides.len(), 1);
    let s = m.update("phoenix", "3.2.1", Some(vec![])).unwrap();
    assert!(s.overrides.is_empty());
}

#[test]
fn staging_reconcile_moves_running_and_failure_both_ways() {
    let h = MockHarness::new();
    let m = &h.manager;
    m.create("health", "1.0.0", vec![]).unwrap();
    h.set("check", Mode::Fail);
    let r = m.reconcile().unwrap();
    assert_eq!((r.checked, r.changed), (1, 1));
    let s = m.get("health").unwrap();
    assert_eq!(s.status, Status::Failure);
    assert!(s.reason.unwrap().contains("check failed on purpose"));
    h.set("check", Mode::Ok);
    m.reconcile().unwrap();
    let s = m.get("health").unwrap();
    assert_eq!((s.status, s.reason), (Status::Running, None));
    let rows = all_rows(m, "health");
    let rec: Vec<_> = rows.iter().filter(|r| r.action == "reconcile").collect();
    assert_eq!(rec.len(), 2);
    assert_eq!(rec[0].status_after, Some(Status::Failure));
    assert_eq!(rec[1].status_after, Some(Status::Running));
}

#[test]
fn staging_reconcile_respects_the_check_interval() {
    let h = MockHarness::with_options(ManagerOptions {
        check_interval: Duration::from_secs(3600),
        ..options()
    });
    h.manager.create("fresh", "1.0.0", vec![]).unwrap();
    let r = h.manager.reconcile().unwrap();
    assert_eq!(r.checked, 0, "just deployed: not due");
    assert_eq!(h.mock.count(MockCall::Check), 0);
}

/// A transient backend error during `check` never leads to a delete or a cleanup, and leaves
/// every status as it was, however often reconcile runs.
#[test]
fn staging_transient_check_error_never_deletes() {
    let h = MockHarness::with_options(ManagerOptions {
        pending_timeout: Duration::ZERO,
        ..options()
    });
    let m = &h.manager;
    m.create("run-a", "1.0.0", vec![]).unwrap();
    h.set("create", Mode::Fail);
    m.create("fail-b", "1.0.0", vec![]).unwrap();
    h.set("create", Mode::Ok);
    m.create("arch-c", "1.0.0", vec![]).unwrap();
    m.delete("arch-c").unwrap();
    h.mock.clear_calls();
    for c in [MockCall::Check, MockCall::ArchiveCheck] {
        h.mock
            .set_default(c, BackendReply::unavailable("api server timeout"));
    }
    for _ in 0..5 {
        let r = m.reconcile().unwrap();
        assert_eq!(r.transient_errors, 3);
        assert_eq!(r.changed, 0);
    }
    // clean_archived with the default 14 days retention: nothing is old enough.
    assert!(m.clean_archived(None).unwrap().is_empty());
    assert_eq!(h.mock.count(MockCall::Delete), 0);
    assert_eq!(h.mock.count(MockCall::Cleanup), 0);
    assert_eq!(h.mock.count(MockCall::Check), 10);
    let st: Vec<_> = m
        .list()
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.status))
        .collect();
    assert_eq!(
        st,
        [
            ("arch-c".to_string(), Status::Archived),
            ("fail-b".to_string(), Status::Failure),
            ("run-a".to_string(), Status::Running)
        ]
    );
}

fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

fn fake_interrupted(m: &StagingManager, name: &str, command: Command, pid: u32) {
    fake_interrupted_at(m, name, command, pid, Duration::ZERO);
}

/// A command begun `ago` by process `pid` that never finished.
fn fake_interrupted_at(m: &StagingManager, name: &str, command: Command, pid: u32, ago: Duration) {
    m.store()
        .begin(&Begin {
            name,
            command,
            actor: "crashed",
            tag: (command == Command::Create).then_some("1.0.0"),
            overrides: None,
            edits: &[],
            expiry: Default::default(),
            pid,
            now: chrono::Utc::now() - chrono::Duration::from_std(ago).unwrap(),
        })
        .unwrap();
}

#[test]
fn staging_reconcile_finishes_a_command_whose_process_died() {
    let h = MockHarness::new();
    let m = &h.manager;
    fake_interrupted(m, "orphan", Command::Create, dead_pid());
    let s = m.get("orphan").unwrap();
    assert_eq!(s.status, Status::CreatePending);
    let e = m.update("orphan", "1.0.1", None).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Busy);
    let r = m.reconcile().unwrap();
    assert_eq!(r.resolved_pending, 1);
    assert_eq!(m.get("orphan").unwrap().status, Status::Running);
    let row = &all_rows(m, "orphan")[0];
    assert_eq!(row.outcome, Outcome::Success);
    assert!(row.output.contains("interrupted"), "{}", row.output);
    // Dead delete whose archive_check says "no" → Failure with a reason.
    fake_interrupted(m, "orphan", Command::Delete, dead_pid());
    h.set("archive_check", Mode::Fail);
    let r = m.reconcile().unwrap();
    assert_eq!(r.failed_pending, 1);
    let s = m.get("orphan").unwrap();
    assert_eq!(s.status, Status::Failure);
    assert!(s.reason.unwrap().contains("delete interrupted"));
}

#[test]
fn staging_reconcile_fails_a_pending_command_after_the_timeout() {
    // Time is driven through the begin time, not waited for: one command began just inside
    // the timeout, one just past it.
    let hour = Duration::from_secs(3600);
    let h = MockHarness::with_options(ManagerOptions {
        pending_timeout: hour,
        ..options()
    });
    let m = &h.manager;
    // Our own pid: the owner looks alive, so only the timeout can resolve them.
    let me = std::process::id();
    fake_interrupted_at(
        m,
        "recent",
        Command::Create,
        me,
        hour - Duration::from_secs(60),
    );
    fake_interrupted_at(
        m,
        "stuck",
        Command::Create,
        me,
        hour + Duration::from_secs(60),
    );
    h.mock
        .set_default(MockCall::Check, BackendReply::unavailable("no answer"));
    let r = m.reconcile().unwrap();
    assert_eq!(r.failed_pending, 1);
    assert_eq!(r.resolved_pending, 0);
    assert_eq!(
        m.get("recent").unwrap().status,
        Status::CreatePending,
        "not yet timed out"
    );
    let s = m.get("stuck").unwrap();
    assert_eq!(s.status, Status::Failure);
    assert!(s.reason.unwrap().contains("pending for more than"));
    assert_eq!(all_rows(m, "stuck")[0].outcome, Outcome::Failure);
}

#[test]
fn staging_reconcile_leaves_commands_of_this_manager_alone() {
    let h = MockHarness::with_options(ManagerOptions {
        pending_timeout: Duration::ZERO,
        ..options()
    });
    h.set("create", Mode::Held);
    let p = h
        .manager
        .start(capsa::staging::CommandRequest::Create {
            name: "inflight".into(),
            tag: "1.0.0".into(),
            overrides: vec![],
        })
        .unwrap();
    // Issue 23: without this the check below passes trivially (nothing pending to leave alone).
    assert_eq!(
        h.manager.get("inflight").unwrap().status,
        Status::CreatePending,
        "the staging must be pending when reconcile runs"
    );
    let r = h.manager.reconcile().unwrap();
    assert_eq!(r.failed_pending + r.resolved_pending, 0);
    assert_eq!(
        h.manager.get("inflight").unwrap().status,
        Status::CreatePending,
        "reconcile must leave this manager's in-flight create alone"
    );
    h.release("create");
    assert_eq!(p.wait().unwrap().unwrap().status, Status::Running);
}

#[test]
fn staging_clean_archived_removes_old_archives_only() {
    let h = MockHarness::new();
    let m = &h.manager;
    m.create("old-one", "1.0.0", vec![]).unwrap();
    m.delete("old-one").unwrap();
    m.create("live-one", "1.0.0", vec![]).unwrap();
    // Time is the argument, not a wait: archived just now, it is kept by an hour's
    // retention and removed by none.
    let removed = m.clean_archived(Some(Duration::from_secs(3600))).unwrap();
    assert!(removed.is_empty(), "{removed:?}");
    let removed = m.clean_archived(Some(Duration::ZERO)).unwrap();
    assert_eq!(removed, ["old-one"]);
    assert_eq!(m.list().unwrap().len(), 1);
    assert_eq!(all_rows(m, "old-one").len(), 3);
}

#[test]
fn staging_events_reach_subscribers_and_the_feed() {
    let h = MockHarness::new();
    let m = &h.manager;
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let s2 = seen.clone();
    let sub = m.subscribe(move |e| s2.lock().unwrap().push(e.clone()));
    let mut rx = m.event_channel();
    m.create("evented", "1.0.0", vec![]).unwrap();
    let got = seen.lock().unwrap().clone();
    let kinds: Vec<_> = got.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds[0],
        EventKind::StatusChanged {
            from: None,
            to: Some(Status::CreatePending),
            reason: None
        }
    );
    assert_eq!(
        kinds[1],
        EventKind::StatusChanged {
            from: Some(Status::CreatePending),
            to: Some(Status::Running),
            reason: None
        }
    );
    assert!(matches!(
        kinds[2],
        EventKind::CommandFinished {
            outcome: Outcome::Success,
            ..
        }
    ));
    assert_eq!(rx.try_recv().unwrap(), got[0]);
    // The feed that other processes poll holds the same events.
    assert_eq!(m.events_since(0, 100).unwrap(), got);
    assert_eq!(m.last_event_seq().unwrap(), got[2].seq);
    drop(sub);
    m.delete("evented").unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3, "unsubscribed");
    assert_eq!(m.events_since(got[2].seq, 100).unwrap().len(), 3);
}

#[test]
fn staging_busy_across_two_store_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mock = Arc::new(MockDeployer::new());
    mock.hold(MockCall::Create);
    let a = common::open_manager(dir.path(), mock.clone(), options());
    // A second, independent connection to the same state (file or database schema).
    let b = common::open_manager(dir.path(), Arc::new(MockDeployer::new()), options());
    let p = a
        .start(capsa::staging::CommandRequest::Create {
            name: "shared".into(),
            tag: "1.0.0".into(),
            overrides: vec![],
        })
        .unwrap();
    assert_eq!(b.delete("shared").unwrap_err().code(), ErrorCode::Busy);
    mock.release(MockCall::Create);
    assert_eq!(p.wait().unwrap().unwrap().status, Status::Running);
    assert_eq!(b.delete("shared").unwrap().status, Status::Archived);
}

#[test]
fn staging_store_migrations_are_versioned() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    assert_eq!(SqliteStore::open(&db).unwrap().schema_version().unwrap(), 2);
    assert_eq!(SqliteStore::open(&db).unwrap().schema_version().unwrap(), 2);
    // A version 1 file (no expiry, no reconcile lease) is migrated, its stagings kept.
    let m = StagingManager::open_sqlite(&db, Arc::new(MockDeployer::new()), Default::default())
        .unwrap();
    m.create("old-one", "1.0.0", vec![]).unwrap();
    drop(m);
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "ALTER TABLE stagings DROP COLUMN expires_at; ALTER TABLE stagings DROP COLUMN check_lease;
         UPDATE schema_version SET version = 1",
    )
    .unwrap();
    drop(c);
    assert_eq!(SqliteStore::open(&db).unwrap().schema_version().unwrap(), 2);
    let m = StagingManager::open_sqlite(&db, Arc::new(MockDeployer::new()), Default::default())
        .unwrap();
    let old = m.get("old-one").unwrap();
    assert_eq!((old.status, old.expires_at), (Status::Running, None));
    drop(m);
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("UPDATE schema_version SET version = 99")
        .unwrap();
    drop(c);
    let e = SqliteStore::open(&db).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported);
}

// ----- private values -----

const SECRET: &str = "pa55-W0rd-never-shown";

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET),
        "private value leaked into {what}: {text}"
    );
}

fn check_privacy(h: &dyn Harness, fail_create: bool) {
    let m = h.manager();
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let s2 = seen.clone();
    let _sub = m.subscribe(move |e| s2.lock().unwrap().push(e.clone()));
    let o = vec![
        Override::private(Scope::App, "DB_PASSWORD", SECRET),
        Override::public(Scope::Staging, "REPLICAS", "2"),
    ];
    if fail_create {
        h.set("create", Mode::Fail);
    }
    let s = m.create("secretive", "1.0.0", o.clone()).unwrap();
    assert_clean("Debug", &format!("{s:?}"));
    assert_clean("Display", &format!("{}", s.overrides[0].value));
    assert_clean("JSON", &serde_json::to_string(&s).unwrap());
    assert_clean("reason", s.reason.as_deref().unwrap_or(""));
    h.set("update", Mode::Fail);
    let s = m.update("secretive", "1.0.1", Some(o.clone())).unwrap();
    assert_clean("reason", s.reason.as_deref().unwrap_or(""));
    // An error message naming the staging.
    let e = m.restore("secretive").unwrap_err();
    assert_clean("error", &format!("{e} {e:?}"));
    h.set("check", Mode::Fail);
    m.reconcile().unwrap();
    let rows = m.audit_log(&AuditQuery::default()).unwrap();
    assert!(rows
        .iter()
        .any(|r| r.overrides.iter().any(|o| o == "app:DB_PASSWORD=***")));
    assert_clean("audit Debug", &format!("{rows:?}"));
    assert_clean("audit JSON", &serde_json::to_string(&rows).unwrap());
    assert_clean("events", &format!("{:?}", seen.lock().unwrap()));
    assert_clean(
        "event feed",
        &serde_json::to_string(&m.events_since(0, 1000).unwrap()).unwrap(),
    );
    assert_clean("list", &format!("{:?}", m.list().unwrap()));
    // but the backend did get it, and restore keeps it
    assert_eq!(
        m.get("secretive").unwrap().overrides[0].value.expose(),
        SECRET
    );
}

#[test]
fn staging_private_values_never_shown_mock() {
    let h = MockHarness::new();
    // The mock's failure reason and output contain the secret: they must be scrubbed.
    h.mock.set_default(
        MockCall::Update,
        BackendReply {
            outcome: capsa::staging::BackendOutcome::Failed {
                reason: format!("bad password {SECRET}"),
            },
            exit_code: Some(1),
            output: format!("connecting with {SECRET}"),
        },
    );
    struct NoSet<'a>(&'a MockHarness);
    impl Harness for NoSet<'_> {
        fn manager(&self) -> &StagingManager {
            &self.0.manager
        }
        fn set(&self, call: &str, mode: Mode) {
            if call != "update" {
                self.0.set(call, mode)
            }
        }
        fn release(&self, call: &str) {
            self.0.release(call)
        }
    }
    check_privacy(&NoSet(&h), false);
}

#[test]
fn staging_private_values_never_shown_script() {
    let h = ScriptHarness::new();
    // Scripts that echo every argument to stdout and stderr, then fail.
    let echo_all = "#!/bin/sh\necho \"args: $*\"\necho \"args: $*\" >&2\nexit 4\n";
    write_script(&h.scripts, "update", echo_all);
    write_script(&h.scripts, "check", echo_all);
    check_privacy(&h, false);
    let h = ScriptHarness::new();
    write_script(&h.scripts, "create", echo_all);
    write_script(&h.scripts, "update", echo_all);
    check_privacy(&h, true);
}

#[test]
fn staging_background_reconcile_loop_runs_until_dropped() {
    let h = MockHarness::new();
    h.manager.create("looped", "1.0.0", vec![]).unwrap();
    h.set("check", Mode::Fail);
    let l = h.manager.spawn_reconcile_loop(Duration::from_millis(50));
    let t = std::time::Instant::now();
    while h.manager.get("looped").unwrap().status != Status::Failure {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the loop never checked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // `stop` returns once the loop has ended: the count is final at once. A manual
    // reconcile adds exactly its own check, so nothing of the loop is still running.
    l.stop();
    let n = h.mock.count(MockCall::Check);
    h.manager.reconcile().unwrap();
    assert_eq!(
        h.mock.count(MockCall::Check),
        n + 1,
        "the loop ran after stop"
    );
}

/// The suite runs on the store it is asked for (`make test-postgres`: PostgreSQL, whose
/// store has a cross-process event signal; otherwise SQLite, which has none).
#[test]
fn staging_suite_runs_on_the_store_asked_for() {
    let h = MockHarness::new();
    assert_eq!(
        h.manager.store().event_signal().is_some(),
        common::postgres_mode()
    );
}

/// A state store that counts the reads of its event feed.
struct CountingReads {
    inner: Arc<dyn capsa::staging::StateStore>,
    reads: std::sync::atomic::AtomicUsize,
}

impl capsa::staging::StateStore for CountingReads {
    fn begin(&self, req: &Begin<'_>) -> capsa::Result<capsa::staging::store::Begun> {
        self.inner.begin(req)
    }
    fn refuse(
        &self,
        name: &str,
        command: Command,
        actor: &str,
        settings: Option<(&str, &[Override])>,
        reason: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> capsa::Result<()> {
        self.inner
            .refuse(name, command, actor, settings, reason, now)
    }
    fn finish(
        &self,
        req: &capsa::staging::store::Finish<'_>,
    ) -> capsa::Result<capsa::staging::store::Finished> {
        self.inner.finish(req)
    }
    fn get(&self, name: &str) -> capsa::Result<Option<capsa::staging::store::StagingRecord>> {
        self.inner.get(name)
    }
    fn list(&self) -> capsa::Result<Vec<capsa::staging::store::StagingRecord>> {
        self.inner.list()
    }
    fn record_checks(
        &self,
        updates: &[capsa::staging::store::CheckUpdate],
    ) -> capsa::Result<Vec<Event>> {
        self.inner.record_checks(updates)
    }
    fn claim(
        &self,
        claims: &[capsa::staging::store::Claim],
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> capsa::Result<Vec<String>> {
        self.inner.claim(claims, now, until)
    }
    fn release(&self, names: &[String], until: chrono::DateTime<chrono::Utc>) -> capsa::Result<()> {
        self.inner.release(names, until)
    }
    fn audit(&self, query: &AuditQuery) -> capsa::Result<Vec<capsa::staging::AuditEntry>> {
        self.inner.audit(query)
    }
    fn events_since(&self, after: i64, limit: usize) -> capsa::Result<Vec<Event>> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.events_since(after, limit)
    }
    fn last_event_seq(&self) -> capsa::Result<i64> {
        self.inner.last_event_seq()
    }
    fn prune_events(&self, before: chrono::DateTime<chrono::Utc>) -> capsa::Result<usize> {
        self.inner.prune_events(before)
    }
    fn event_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.event_signal()
    }
}

/// Two hundred waiters on one manager share one reader of the feed: each gets every event
/// after its starting point, in order, none twice (those resuming from before the reader
/// started read the store themselves until they catch up), and the store's feed is read a
/// few dozen times, not once per waiter per change.
#[test]
fn staging_event_waiters_share_one_reader_of_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CountingReads {
        inner: common::open_store(dir.path()),
        reads: Default::default(),
    });
    let m = StagingManager::new(store.clone(), Arc::new(MockDeployer::new()), options());
    m.create("early", "1.0.0", vec![]).unwrap();
    let start = m.last_event_seq().unwrap();
    assert!(start > 0);
    let (late, waiters) = (10, 200);
    let handles: Vec<_> = (0..waiters)
        .map(|i| {
            let m = m.clone();
            let from = if i < late { 0 } else { start };
            std::thread::spawn(move || {
                let mut got: Vec<Event> = Vec::new();
                let mut after = from;
                // The last event of the script below: the delete's CommandFinished.
                while !got.iter().any(|e| {
                    e.name == "later"
                        && matches!(&e.kind, EventKind::CommandFinished { action, .. } if action == "delete")
                }) {
                    let batch = m.wait_events(after, 7, Duration::from_secs(30)).unwrap();
                    assert!(!batch.is_empty(), "waiter {i} timed out after {after}");
                    after = batch.last().unwrap().seq;
                    got.extend(batch);
                }
                (from, got)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = store.reads.load(std::sync::atomic::Ordering::Relaxed);
    m.create("later", "1.0.0", vec![]).unwrap();
    m.update("later", "1.0.1", None).unwrap();
    m.delete("later").unwrap();
    let feed = m.events_since(0, 1000).unwrap();
    for h in handles {
        let (from, got) = h.join().unwrap();
        let want: Vec<Event> = feed.iter().filter(|e| e.seq > from).cloned().collect();
        assert_eq!(got, want, "a waiter from {from}");
    }
    let reads = store.reads.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(
        reads < 60,
        "{reads} reads of the feed for {waiters} waiters and {} events",
        feed.len()
    );
}

/// A second manager on the same state (another process, another host) follows every change
/// the first one makes, in order: polling with SQLite, LISTEN/NOTIFY with PostgreSQL.
#[test]
fn staging_follow_sees_the_changes_of_another_manager() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::open_manager(dir.path(), Arc::new(MockDeployer::new()), options());
    let b = common::open_manager(dir.path(), Arc::new(MockDeployer::new()), options());
    a.create("before", "1.0.0", vec![]).unwrap();
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let s2 = seen.clone();
    let follower = b
        .follow(None, move |e| s2.lock().unwrap().push(e.clone()))
        .unwrap();
    a.create("followed", "1.0.0", vec![]).unwrap();
    a.delete("followed").unwrap();
    let t = std::time::Instant::now();
    while seen.lock().unwrap().len() < 6 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = seen.lock().unwrap().clone();
    let feed = a.events_since(0, 100).unwrap();
    assert_eq!(
        got,
        feed[3..],
        "every event after `now`, none before, in order"
    );
    assert!(got.iter().all(|e| e.name == "followed"));
    // `stop` returns once the follower has ended. A second follower marks the point up
    // to which the update's events were delivered; the stopped one has none of them.
    follower.stop();
    let marks: Arc<Mutex<Vec<Event>>> = Arc::default();
    let m2 = marks.clone();
    let marker = b
        .follow(None, move |e| m2.lock().unwrap().push(e.clone()))
        .unwrap();
    a.update("before", "1.0.1", None).unwrap();
    let t = std::time::Instant::now();
    while !marks
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e.kind, EventKind::CommandFinished { .. }))
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the marker saw nothing"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    marker.stop();
    assert_eq!(
        seen.lock().unwrap().len(),
        6,
        "an event reached a stopped follower"
    );
}
