//! The status updater: reconciles sharing one state check each staging once (leases), the
//! reconcile loop and its stop, time to live, retention cleanup by the loop, per-key override
//! edits. Runs on SQLite, and on PostgreSQL under `make test-postgres`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use capsa::staging::{
    AuditQuery, BackendReply, CommandOptions, CommandRequest, Expiry, ManagerOptions, MockCall,
    MockDeployer, Override, OverrideEdit, ReconcileLoopOptions, Scope, StagingManager, Status,
    TTL_ACTOR,
};
use capsa::ErrorCode;

/// Two managers (as two hosts) on the state kept under `dir`, each with its own backend.
fn two_hosts(
    dir: &std::path::Path,
    opts: ManagerOptions,
) -> [(StagingManager, Arc<MockDeployer>); 2] {
    let host = || {
        let mock = Arc::new(MockDeployer::new());
        (common::open_manager(dir, mock.clone(), opts.clone()), mock)
    };
    [host(), host()]
}

fn checks(hosts: &[(StagingManager, Arc<MockDeployer>)]) -> usize {
    hosts.iter().map(|(_, m)| m.count(MockCall::Check)).sum()
}

const NAMES: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];

#[test]
fn reconciles_sharing_a_state_check_each_staging_once() {
    let dir = tempfile::tempdir().unwrap();
    let interval = Duration::from_secs(1);
    let opts = ManagerOptions {
        check_interval: interval,
        ..common::options()
    };
    let hosts = two_hosts(dir.path(), opts);
    for n in NAMES {
        hosts[0].0.create(n, "1.0.0", vec![]).unwrap();
    }
    // Checked by create: due once the interval has passed.
    std::thread::sleep(interval + Duration::from_millis(100));
    // Every check is slow, so that the two reconciles overlap.
    for (_, m) in &hosts {
        m.set_delay(MockCall::Check, Duration::from_millis(200));
    }
    let reports: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = hosts
            .iter()
            .map(|(m, _)| s.spawn(move || m.reconcile().unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(checks(&hosts), NAMES.len(), "{reports:?}");
    assert_eq!(
        reports.iter().map(|r| r.checked).sum::<usize>(),
        NAMES.len()
    );
    assert_eq!(
        reports.iter().map(|r| r.skipped).sum::<usize>(),
        NAMES.len(),
        "the other reconcile skips what one claimed"
    );
    // Checked now: not due again within the interval, on either host.
    for (m, _) in &hosts {
        let r = m.reconcile().unwrap();
        assert_eq!(r.checked, 0, "{r:?}");
    }
    assert_eq!(checks(&hosts), NAMES.len());
}

#[test]
fn two_loops_on_one_state_check_each_staging_once_a_period() {
    let dir = tempfile::tempdir().unwrap();
    let period = Duration::from_millis(300);
    let opts = ManagerOptions {
        check_interval: period,
        ..common::options()
    };
    let hosts = two_hosts(dir.path(), opts);
    for n in NAMES {
        hosts[0].0.create(n, "1.0.0", vec![]).unwrap();
    }
    let t0 = Instant::now();
    let loops: Vec<_> = hosts
        .iter()
        .map(|(m, _)| m.spawn_reconcile_loop(period))
        .collect();
    while checks(&hosts) < 3 * NAMES.len() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the loops do not check"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for l in loops {
        l.stop();
    }
    let elapsed = t0.elapsed();
    let total = checks(&hosts);
    // A staging is due once its last check is 4/5 of a period old: at most this many
    // checks each in `elapsed`, by both hosts together (each alone would make about that
    // many, twice as many together without the leases).
    let bound = (elapsed.as_secs_f64() / (period.as_secs_f64() * 0.8)).floor() as usize + 1;
    assert!(
        total <= bound * NAMES.len(),
        "{total} checks of {} stagings in {elapsed:?}: more than one per period",
        NAMES.len()
    );
    // Stopped: no round runs any more.
    std::thread::sleep(period * 3);
    assert_eq!(checks(&hosts), total);
    for (m, _) in &hosts {
        for s in m.list().unwrap() {
            assert_eq!(s.status, Status::Running);
        }
    }
}

#[test]
fn a_stopped_loop_releases_the_stagings_it_had_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = two_hosts(dir.path(), common::options());
    hosts[0].0.create("held", "1.0.0", vec![]).unwrap();
    let (a, mock_a) = &hosts[0];
    let (b, mock_b) = &hosts[1];
    mock_a.hold(MockCall::Check);
    let l = a.spawn_reconcile_loop(Duration::from_millis(50));
    let t0 = Instant::now();
    while mock_a.held(MockCall::Check) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "no check started");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The check is in flight: the staging is claimed, the other host leaves it alone.
    assert_eq!(b.reconcile().unwrap().skipped, 1);
    let t = Instant::now();
    l.stop();
    let stopped_in = t.elapsed();
    assert!(
        stopped_in < Duration::from_secs(1),
        "stop took {stopped_in:?}"
    );
    // Released on stop: the other host checks it now, not after the lease runs out.
    let r = b.reconcile().unwrap();
    assert_eq!((r.checked, r.skipped), (1, 0), "{r:?}");
    assert_eq!(mock_b.count(MockCall::Check), 1);
    assert_eq!(b.get("held").unwrap().status, Status::Running);
}

#[test]
fn a_failed_read_changes_and_deletes_nothing() {
    let h = common::MockHarness::new();
    let m = &h.manager;
    m.create("steady", "1.0.0", vec![]).unwrap();
    m.create("gone-bad", "1.0.0", vec![]).unwrap();
    m.delete("gone-bad").unwrap();
    let unavailable = BackendReply::unavailable("cluster unreachable");
    h.mock.set_default(MockCall::Check, unavailable.clone());
    h.mock.set_default(MockCall::ArchiveCheck, unavailable);
    let before = m.audit_log(&AuditQuery::default()).unwrap().len();
    let r = m.reconcile().unwrap();
    assert_eq!(r.transient_errors, 2, "{r:?}");
    assert_eq!(m.get("steady").unwrap().status, Status::Running);
    assert_eq!(m.get("gone-bad").unwrap().status, Status::Archived);
    assert_eq!(m.audit_log(&AuditQuery::default()).unwrap().len(), before);
    assert_eq!(h.mock.count(MockCall::Delete), 1);
    assert_eq!(h.mock.count(MockCall::Cleanup), 0);
}

#[test]
fn the_loop_cleans_archived_stagings_past_the_retention() {
    let h = common::MockHarness::with_options(ManagerOptions {
        retention: Duration::ZERO,
        ..common::options()
    });
    let m = &h.manager;
    m.create("old", "1.0.0", vec![]).unwrap();
    m.delete("old").unwrap();
    m.create("live", "1.0.0", vec![]).unwrap();
    let l = m.spawn_reconcile_loop_with(ReconcileLoopOptions {
        every: Duration::from_millis(50),
        clean_archived: true,
    });
    let t0 = Instant::now();
    while m.list().unwrap().len() > 1 {
        assert!(t0.elapsed() < Duration::from_secs(30), "not cleaned up");
        std::thread::sleep(Duration::from_millis(20));
    }
    l.stop();
    assert_eq!(m.get("old").unwrap_err().code(), ErrorCode::NotFound);
    assert_eq!(m.get("live").unwrap().status, Status::Running);
}

#[test]
fn an_expired_staging_is_archived_by_reconcile() {
    let h = common::MockHarness::new();
    let m = &h.manager;
    let ttl = |expiry| CommandOptions {
        expiry,
        ..CommandOptions::default()
    };
    let create = |name: &str, expiry| {
        let req = CommandRequest::Create {
            name: name.into(),
            tag: "1.0.0".into(),
            overrides: vec![],
        };
        m.start_with(req, ttl(expiry))
            .unwrap()
            .wait()
            .unwrap()
            .unwrap()
    };
    let t0 = chrono::Utc::now();
    let preview = create("preview", Expiry::In(Duration::ZERO));
    let later = create("later", Expiry::In(Duration::from_secs(3 * 86_400)));
    let forever = create("forever", Expiry::Keep);
    assert!(preview
        .expires_at
        .is_some_and(|t| t >= t0 - chrono::Duration::seconds(1)));
    let in_3d = later.expires_at.unwrap() - t0;
    assert!(
        (in_3d - chrono::Duration::days(3)).num_seconds().abs() < 60,
        "{in_3d}"
    );
    assert_eq!(forever.expires_at, None);

    let r = m.reconcile().unwrap();
    assert_eq!(r.expired, 1, "{r:?}");
    assert_eq!(m.get("preview").unwrap().status, Status::Archived);
    assert_eq!(m.get("later").unwrap().status, Status::Running);
    assert_eq!(m.get("forever").unwrap().status, Status::Running);
    let rows = m
        .audit_log(&AuditQuery {
            name: Some("preview".into()),
            ..AuditQuery::default()
        })
        .unwrap();
    let last = rows.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor.as_str()),
        ("delete", TTL_ACTOR)
    );
    // Archived: not expired again.
    assert_eq!(m.reconcile().unwrap().expired, 0);

    // A restore drops the expiry that has passed (else it is archived again at once)…
    let restored = m.restore("preview").unwrap();
    assert_eq!(
        (restored.status, restored.expires_at),
        (Status::Running, None)
    );
    assert_eq!(m.reconcile().unwrap().expired, 0);
    // …an update may set or drop one, and keeps it otherwise.
    let update = |expiry| {
        let req = CommandRequest::Update {
            name: "later".into(),
            tag: "1.1.0".into(),
            overrides: None,
        };
        m.start_with(req, ttl(expiry))
            .unwrap()
            .wait()
            .unwrap()
            .unwrap()
    };
    assert_eq!(update(Expiry::Keep).expires_at, later.expires_at);
    assert_eq!(update(Expiry::Never).expires_at, None);
    let e = m
        .start_with(
            CommandRequest::Delete {
                name: "later".into(),
            },
            ttl(Expiry::In(Duration::from_secs(60))),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
}

#[test]
fn per_key_edits_change_one_override_and_keep_the_rest() {
    let h = common::MockHarness::new();
    let m = &h.manager;
    m.create(
        "web",
        "1.0.0",
        vec![
            Override::public(Scope::App, "LOG", "info"),
            Override::private(Scope::App, "DB_PASSWORD", "s3cret-value"),
            Override::public(Scope::Staging, "replicas", "2"),
        ],
    )
    .unwrap();
    let update = |edits: Vec<OverrideEdit>| {
        let req = CommandRequest::Update {
            name: "web".into(),
            tag: "1.0.1".into(),
            overrides: None,
        };
        let opts = CommandOptions {
            edits,
            ..CommandOptions::default()
        };
        m.start_with(req, opts).and_then(|p| p.wait())
    };
    let s = update(vec![
        OverrideEdit::Set(Override::public(Scope::App, "LOG", "debug")),
        OverrideEdit::Unset {
            scope: Scope::Staging,
            key: "replicas".into(),
        },
    ])
    .unwrap()
    .unwrap();
    let keys: Vec<_> = s
        .overrides
        .iter()
        .map(|o| (o.scope, o.key.as_str(), o.shown_value()))
        .collect();
    assert_eq!(
        keys,
        [
            (Scope::App, "LOG", "debug"),
            (Scope::App, "DB_PASSWORD", "***")
        ]
    );
    // The kept private value is stored as it was (the backend gets it).
    let rec = m.store().get("web").unwrap().unwrap();
    let pw = rec
        .staging
        .overrides
        .iter()
        .find(|o| o.key == "DB_PASSWORD");
    assert_eq!(pw.map(|o| o.value.expose()), Some("s3cret-value"));
    // An unset of a key that is not there is refused, recorded, and changes nothing.
    let e = update(vec![OverrideEdit::Unset {
        scope: Scope::Staging,
        key: "replicas".into(),
    }])
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    assert!(e.to_string().contains("replicas"), "{e}");
    let after = m.get("web").unwrap();
    assert_eq!((after.tag.as_str(), after.overrides.len()), ("1.0.1", 2));
    let last = m.audit_log(&AuditQuery::default()).unwrap().pop().unwrap();
    assert_eq!(last.outcome.as_str(), "Refused");
    // Edits belong to create and update.
    let e = m
        .start_with(
            CommandRequest::Delete { name: "web".into() },
            CommandOptions {
                edits: vec![OverrideEdit::Unset {
                    scope: Scope::App,
                    key: "LOG".into(),
                }],
                ..CommandOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
}
