//! Both script dialects (DM's and Octopod's) against strict scripts: each parses its
//! arguments the way the real utilities do (clap / structopt: an unknown flag, a missing
//! required one or a repeated single one is a failure), so a script only runs when capsa
//! passes exactly what the dialect defines.
#![cfg(unix)] // the tests use executable scripts

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capsa::staging::script::{Dialect, ScriptNamespace, Settle};
use capsa::staging::{
    AuditQuery, DeployRequest, ManagerOptions, NamedUrl, Outcome, Override, Scope, ScriptDeployer,
    StagingManager, Status,
};
use capsa::ErrorCode;

/// The strict script: the argument table of both dialects, as DM's `clap` utilities and
/// Octopod's documentation define them. Reads its dialect from `dialect` beside it, logs each
/// accepted call (`call [arg]…`) to `calls.log` and each refusal to `rejected.log`, prints
/// `<call>.out` if present and exits with `<call>.exit` (default 0).
const STRICT: &str = r#"#!/usr/bin/env python3
import os, sys
d = os.path.dirname(os.path.abspath(__file__))
call = os.path.basename(sys.argv[0])
dialect = open(os.path.join(d, "dialect")).read().strip()
BASE = {"--project-name": "1", "--base-domain": "1", "--namespace": "1", "--name": "1"}
STATUSES = {"Running", "GenericFailure", "TagMismatch", "PartialAvailability", "CreatePending",
            "UpdatePending", "ArchivePending", "Archived", "CleanupFailed"}
def spec():
    if dialect == "dm":
        if call in ("create", "update"):
            return dict(BASE, **{"--tag": "1", "--app-env-override": "*", "--staging-override": "*"})
        if call == "tag_check":
            return dict(BASE, **{"--tag": "1"})
        if call in ("delete", "check", "cleanup", "archive_check"):
            return BASE
    elif dialect == "octopod":
        if call == "notifications":
            return dict(BASE, **{"--old-status": "1", "--new-status": "1"})
        if call in ("create", "update", "archive", "unarchive", "check", "cleanup",
                    "archive_check", "config_check", "info"):
            return dict(BASE, **{"--application-config": "*", "--deployment-config": "*"})
    return None
def reject(why):
    with open(os.path.join(d, "rejected.log"), "a") as f:
        f.write("%s: %s\n" % (call, why))
    sys.stderr.write("error: %s\n" % why)
    sys.exit(2)
s = spec()
if s is None:
    reject("no script %s in the %s dialect" % (call, dialect))
args = sys.argv[1:]
seen = {}
i = 0
while i < len(args):
    flag = args[i]
    if flag not in s:
        reject("unknown argument %r" % flag)
    if i + 1 >= len(args):
        reject("%s needs a value" % flag)
    value = args[i + 1]
    if s[flag] == "1" and flag in seen:
        reject("%s given twice" % flag)
    if s[flag] == "*" and "=" not in value:
        reject("%s wants KEY=VALUE, got %r" % (flag, value))
    if flag in ("--old-status", "--new-status") and value not in STATUSES:
        reject("%s %r" % (flag, value))
    seen.setdefault(flag, []).append(value)
    i += 2
for flag, kind in s.items():
    if kind == "1" and flag not in seen:
        reject("missing %s" % flag)
with open(os.path.join(d, "calls.log"), "a") as f:
    f.write(call + "".join(" [%s]" % a for a in args) + "\n")
out = os.path.join(d, call + ".out")
if os.path.exists(out):
    sys.stdout.write(open(out).read())
code = os.path.join(d, call + ".exit")
sys.exit(int(open(code).read()) if os.path.exists(code) else 0)
"#;

fn write_exe(path: &Path, body: &str) {
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A directory with every script of `dialect`, each the strict script.
fn strict_dir(root: &Path, dialect: Dialect) -> PathBuf {
    let s = root.join(format!("scripts-{dialect}"));
    fs::create_dir_all(&s).unwrap();
    fs::write(s.join("dialect"), dialect.as_str()).unwrap();
    for (script, _) in dialect.scripts() {
        write_exe(&s.join(script), STRICT);
    }
    s
}

fn deployer(scripts: &Path, dialect: Dialect) -> ScriptDeployer {
    ScriptDeployer::new(scripts)
        .with_dialect(dialect)
        .with_project_name("show one")
        .with_base_domain("stg.example.test")
        .with_timeout(Duration::from_secs(30))
}

fn options() -> ManagerOptions {
    ManagerOptions {
        actor: "tester".into(),
        check_interval: Duration::ZERO,
        ..ManagerOptions::default()
    }
}

fn open(root: &Path, d: ScriptDeployer, opts: ManagerOptions) -> StagingManager {
    StagingManager::open_sqlite(root.join("state.db"), Arc::new(d), opts).unwrap()
}

fn calls(scripts: &Path) -> Vec<String> {
    fs::read_to_string(scripts.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The script calls once `done(calls)` holds, polled for up to 10 s (the notifications run in
/// the background); the calls as they are then, whether it held or not.
fn calls_once(scripts: &Path, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let t0 = Instant::now();
    loop {
        let now = calls(scripts);
        if done(&now) || t0.elapsed() > Duration::from_secs(10) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn notifications(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|l| l.starts_with("notifications "))
        .cloned()
        .collect()
}

fn assert_none_rejected(scripts: &Path) {
    let rejected = fs::read_to_string(scripts.join("rejected.log")).unwrap_or_default();
    assert!(rejected.is_empty(), "strict scripts refused: {rejected}");
}

/// `[a] [b] …` of an argument list, as `calls.log` writes it.
fn logged(script: &str, args: &[&str]) -> String {
    let mut s = script.to_string();
    for a in args {
        s.push_str(&format!(" [{a}]"));
    }
    s
}

const BASE: [&str; 8] = [
    "--project-name",
    "show one",
    "--base-domain",
    "stg.example.test",
    "--namespace",
    "stagings",
    "--name",
    "web",
];

fn with_base(rest: &[&'static str]) -> Vec<&'static str> {
    BASE.iter().copied().chain(rest.iter().copied()).collect()
}

fn overrides() -> Vec<Override> {
    vec![
        Override::public(Scope::App, "GREETING", "hello world"),
        Override::public(Scope::Staging, "DSN", "a=b;c=d e"),
        Override::public(Scope::App, "EMPTY", ""),
    ]
}

/// Every script of each dialect, with its full expected argument list.
fn expected(dialect: Dialect) -> Vec<(&'static str, Vec<&'static str>)> {
    let base = with_base(&[]);
    match dialect {
        Dialect::Dm => {
            let settings = with_base(&[
                "--tag",
                "2.0.0",
                "--app-env-override",
                "GREETING=hello world",
                "--app-env-override",
                "EMPTY=",
                "--staging-override",
                "DSN=a=b;c=d e",
            ]);
            vec![
                ("create", settings.clone()),
                ("update", settings),
                ("delete", base.clone()),
                ("check", base.clone()),
                ("cleanup", base.clone()),
                ("archive_check", base),
                ("tag_check", with_base(&["--tag", "2.0.0"])),
            ]
        }
        Dialect::Octopod => {
            let config = with_base(&[
                "--application-config",
                "GREETING=hello world",
                "--application-config",
                "EMPTY=",
                "--deployment-config",
                "image.tag=2.0.0",
                "--deployment-config",
                "DSN=a=b;c=d e",
            ]);
            let mut v: Vec<(&'static str, Vec<&'static str>)> = [
                "create",
                "update",
                "archive",
                "unarchive",
                "check",
                "cleanup",
                "archive_check",
                "config_check",
                "info",
            ]
            .into_iter()
            .map(|s| (s, config.clone()))
            .collect();
            v.push((
                "notifications",
                with_base(&["--old-status", "CreatePending", "--new-status", "Running"]),
            ));
            v
        }
    }
}

#[test]
fn staging_dialects_every_script_gets_exactly_its_arguments_and_strict_scripts_accept_them() {
    let root = tempfile::tempdir().unwrap();
    for dialect in [Dialect::Dm, Dialect::Octopod] {
        let scripts = strict_dir(root.path(), dialect);
        let d = deployer(&scripts, dialect);
        let req = DeployRequest {
            name: "web".into(),
            namespace: "not-the-script-namespace".into(),
            tag: Some("2.0.0".into()),
            overrides: overrides(),
        };
        let got = d.arguments(&req);
        let want = expected(dialect);
        assert_eq!(
            got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            want.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            "{dialect}: every script of the dialect"
        );
        for ((script, args), (_, want_args)) in got.iter().zip(&want) {
            assert_eq!(args, want_args, "{dialect} {script}");
            let o = std::process::Command::new(scripts.join(script))
                .args(args)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{dialect} {script} refused {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert_none_rejected(&scripts);
    }
}

#[test]
fn staging_dialects_strict_scripts_refuse_what_the_other_dialect_passes() {
    // The strict scripts can fail: a flag of the other dialect, or one missing, is refused.
    let root = tempfile::tempdir().unwrap();
    let dm = strict_dir(root.path(), Dialect::Dm);
    let octopod = strict_dir(root.path(), Dialect::Octopod);
    let cases: [(&Path, &str, Vec<&str>); 5] = [
        (&dm, "check", with_base(&["--tag", "1"])),
        (
            &dm,
            "create",
            with_base(&["--tag", "1", "--application-config", "A=1"]),
        ),
        (&dm, "create", BASE.to_vec()),
        (&octopod, "create", with_base(&["--tag", "1"])),
        (
            &octopod,
            "archive_check",
            with_base(&["--app-env-override", "A=1"]),
        ),
    ];
    for (dir, script, args) in cases {
        let o = std::process::Command::new(dir.join(script))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{script} {args:?}");
    }
    assert!(fs::read_to_string(dm.join("rejected.log"))
        .unwrap()
        .contains("check: unknown argument '--tag'"));
}

#[test]
fn staging_dialects_dm_lifecycle_settles_by_check_with_strict_scripts() {
    let root = tempfile::tempdir().unwrap();
    let scripts = strict_dir(root.path(), Dialect::Dm);
    let m = open(root.path(), deployer(&scripts, Dialect::Dm), options());

    let s = m.create("web", "2.0.0", overrides()).unwrap();
    assert_eq!(
        s.status,
        Status::CreatePending,
        "pending until check passes"
    );
    assert_eq!(s.command_in_progress, None);
    let r = m.reconcile().unwrap();
    assert_eq!(r.resolved_pending, 1, "{r:?}");
    assert_eq!(m.get("web").unwrap().status, Status::Running);

    assert_eq!(
        m.update("web", "2.0.0", None).unwrap().status,
        Status::UpdatePending
    );
    m.reconcile().unwrap();
    assert_eq!(m.get("web").unwrap().status, Status::Running);

    assert_eq!(m.delete("web").unwrap().status, Status::DeletePending);
    m.reconcile().unwrap();
    assert_eq!(m.get("web").unwrap().status, Status::Archived);

    assert_eq!(m.restore("web").unwrap().status, Status::CreatePending);
    m.reconcile().unwrap();
    assert_eq!(m.get("web").unwrap().status, Status::Running);
    m.delete("web").unwrap();
    m.reconcile().unwrap();
    assert_eq!(m.cleanup("web").unwrap(), None);

    assert_none_rejected(&scripts);
    let want = expected(Dialect::Dm);
    let line = |script: &str| {
        let (_, args) = want.iter().find(|(s, _)| *s == script).unwrap();
        logged(script, args)
    };
    let got = calls(&scripts);
    let expected_calls = [
        "tag_check",
        "create",
        "check",
        "tag_check",
        "update",
        "check",
        "delete",
        "archive_check",
        "create", // restore
        "check",
        "delete",
        "archive_check",
        "cleanup",
    ]
    .map(line);
    assert_eq!(got, expected_calls);
}

#[test]
fn staging_dialects_octopod_lifecycle_with_strict_scripts() {
    let root = tempfile::tempdir().unwrap();
    let scripts = strict_dir(root.path(), Dialect::Octopod);
    fs::write(
        scripts.join("info.out"),
        "app,https://web.stg.example.test\n\napi,\"https://api.example.test/?a=1,2\"\r\n",
    )
    .unwrap();
    let m = open(root.path(), deployer(&scripts, Dialect::Octopod), options());
    assert_eq!(
        m.create("web", "2.0.0", overrides()).unwrap().status,
        Status::CreatePending
    );
    m.reconcile().unwrap();
    assert_eq!(m.get("web").unwrap().status, Status::Running);
    assert_eq!(
        m.info("web").unwrap(),
        vec![
            NamedUrl {
                name: "app".into(),
                url: "https://web.stg.example.test".into()
            },
            NamedUrl {
                name: "api".into(),
                url: "https://api.example.test/?a=1,2".into()
            },
        ]
    );
    m.update("web", "2.0.0", None).unwrap();
    m.reconcile().unwrap();
    assert_eq!(m.delete("web").unwrap().status, Status::DeletePending);
    m.reconcile().unwrap();
    assert_eq!(m.get("web").unwrap().status, Status::Archived);
    assert_eq!(m.restore("web").unwrap().status, Status::CreatePending);
    m.reconcile().unwrap();
    assert_eq!(m.get("web").unwrap().status, Status::Running);

    let want = expected(Dialect::Octopod);
    let config = &want[0].1;
    let got = calls(&scripts);
    let lifecycle: Vec<String> = got
        .iter()
        .filter(|l| !l.starts_with("notifications "))
        .cloned()
        .collect();
    let expected_calls: Vec<String> = [
        "config_check",
        "create",
        "check",
        "info",
        "config_check",
        "update",
        "check",
        "archive",
        "archive_check",
        "unarchive", // restore
        "check",
    ]
    .iter()
    .map(|s| logged(s, config))
    .collect();
    assert_eq!(lifecycle, expected_calls);

    // Every status change but the creation, in order, with Octopod's status names.
    let changes = [
        ("CreatePending", "Running"),
        ("Running", "UpdatePending"),
        ("UpdatePending", "Running"),
        ("Running", "ArchivePending"),
        ("ArchivePending", "Archived"),
        ("Archived", "CreatePending"),
        ("CreatePending", "Running"),
    ];
    let want_notes: Vec<String> = changes
        .iter()
        .map(|(old, new)| {
            logged(
                "notifications",
                &with_base(&["--old-status", old, "--new-status", new]),
            )
        })
        .collect();
    let all = calls_once(&scripts, |c| notifications(c).len() >= want_notes.len());
    assert_eq!(notifications(&all), want_notes);
    assert_none_rejected(&scripts);
}

#[test]
fn staging_dialects_octopod_check_exit_codes_are_the_failure_reason() {
    let root = tempfile::tempdir().unwrap();
    let scripts = strict_dir(root.path(), Dialect::Octopod);
    let d = deployer(&scripts, Dialect::Octopod).with_settle(Settle::Exit);
    let m = open(root.path(), d, options());
    assert_eq!(
        m.create("web", "1.0.0", vec![]).unwrap().status,
        Status::Running
    );
    for (code, meaning) in [
        (2, "partial availability"),
        (3, "tag mismatch"),
        (1, "generic failure"),
        (9, "generic failure"),
    ] {
        fs::write(scripts.join("check.exit"), code.to_string()).unwrap();
        m.reconcile().unwrap();
        let s = m.get("web").unwrap();
        assert_eq!(s.status, Status::Failure);
        let reason = s.reason.unwrap();
        assert!(
            reason.starts_with(&format!("check: {meaning}: check exited with code {code}")),
            "{code}: {reason}"
        );
    }
    // Running → Failure was notified with the kind of failure of its reason.
    let notified = |c: &[String]| {
        c.iter()
            .any(|l| l.ends_with("[--old-status] [Running] [--new-status] [PartialAvailability]"))
    };
    let all = calls_once(&scripts, notified);
    assert!(notified(&all), "{all:?}");
    assert_none_rejected(&scripts);
}

#[test]
fn staging_dialects_octopod_config_check_refusal_shows_its_stdout() {
    let root = tempfile::tempdir().unwrap();
    let scripts = strict_dir(root.path(), Dialect::Octopod);
    fs::write(scripts.join("config_check.exit"), "1").unwrap();
    fs::write(
        scripts.join("config_check.out"),
        "image 9.9.9 is not in the registry\n\nDSN is required\n",
    )
    .unwrap();
    let m = open(root.path(), deployer(&scripts, Dialect::Octopod), options());
    let e = m.create("web", "9.9.9", vec![]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert_eq!(
        e.to_string(),
        "invalid configuration: config_check refused: image 9.9.9 is not in the registry; \
         DSN is required"
    );
    assert!(calls(&scripts).iter().all(|l| !l.starts_with("create ")));
    let rows = m.audit_log(&AuditQuery::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, Outcome::Refused);
    assert!(m.get("web").is_err(), "nothing was created");
}

#[test]
fn staging_dialects_a_failing_notification_never_fails_a_command() {
    let root = tempfile::tempdir().unwrap();
    let scripts = strict_dir(root.path(), Dialect::Octopod);
    fs::write(scripts.join("notifications.exit"), "1").unwrap();
    let d = deployer(&scripts, Dialect::Octopod).with_settle(Settle::Exit);
    let m = open(root.path(), d, options());
    assert_eq!(
        m.create("web", "1.0.0", vec![]).unwrap().status,
        Status::Running
    );
    assert_eq!(m.delete("web").unwrap().status, Status::Archived);
    assert_eq!(m.restore("web").unwrap().status, Status::Running);
    let all = calls_once(&scripts, |c| notifications(c).len() >= 4);
    assert!(notifications(&all).len() >= 4, "{all:?}");
    assert_none_rejected(&scripts);
}

#[test]
fn staging_dialects_pending_until_check_passes_then_failure_after_the_timeout() {
    let root = tempfile::tempdir().unwrap();
    let scripts = strict_dir(root.path(), Dialect::Dm);
    let opts = ManagerOptions {
        pending_timeout: Duration::from_secs(4),
        ..options()
    };
    let m = open(root.path(), deployer(&scripts, Dialect::Dm), opts);
    fs::write(scripts.join("check.exit"), "1").unwrap();
    assert_eq!(
        m.create("web", "1.0.0", vec![]).unwrap().status,
        Status::CreatePending
    );
    let r = m.reconcile().unwrap();
    assert_eq!((r.resolved_pending, r.failed_pending), (0, 0), "{r:?}");
    assert_eq!(m.get("web").unwrap().status, Status::CreatePending);
    // A transient answer (capsa's exit 75) changes nothing either.
    fs::write(scripts.join("check.exit"), "75").unwrap();
    let r = m.reconcile().unwrap();
    assert_eq!(r.transient_errors, 1, "{r:?}");
    // Busy while pending: no other command starts.
    assert_eq!(m.delete("web").unwrap_err().code(), ErrorCode::Busy);
    fs::write(scripts.join("check.exit"), "1").unwrap();
    // Past the timeout, counted from when the status was set.
    let since = m.get("web").unwrap().status_since;
    let left = since + chrono::Duration::milliseconds(4300) - chrono::Utc::now();
    std::thread::sleep(left.to_std().unwrap_or_default());
    let r = m.reconcile().unwrap();
    assert_eq!(r.failed_pending, 1, "{r:?}");
    let s = m.get("web").unwrap();
    assert_eq!(s.status, Status::Failure);
    let reason = s.reason.unwrap();
    assert!(
        reason.starts_with("create not confirmed by check within 4 s: check exited with code 1"),
        "{reason}"
    );
    assert_none_rejected(&scripts);
}

#[test]
fn staging_dialects_delete_stays_pending_until_archive_check_passes() {
    let root = tempfile::tempdir().unwrap();
    let scripts = strict_dir(root.path(), Dialect::Dm);
    let m = open(root.path(), deployer(&scripts, Dialect::Dm), options());
    m.create("web", "1.0.0", vec![]).unwrap();
    m.reconcile().unwrap();
    fs::write(scripts.join("archive_check.exit"), "1").unwrap();
    assert_eq!(m.delete("web").unwrap().status, Status::DeletePending);
    m.reconcile().unwrap();
    m.reconcile().unwrap();
    assert_eq!(m.get("web").unwrap().status, Status::DeletePending);
    fs::remove_file(scripts.join("archive_check.exit")).unwrap();
    m.reconcile().unwrap();
    assert_eq!(m.get("web").unwrap().status, Status::Archived);
    let reconciles: Vec<_> = m
        .audit_log(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "reconcile")
        .collect();
    assert_eq!(
        reconciles
            .iter()
            .map(|r| (r.status_before, r.status_after))
            .collect::<Vec<_>>(),
        vec![
            (Some(Status::CreatePending), Some(Status::Running)),
            (Some(Status::DeletePending), Some(Status::Archived)),
        ]
    );
}

#[test]
fn staging_dialects_settle_on_exit_is_the_old_behaviour() {
    let root = tempfile::tempdir().unwrap();
    let scripts = strict_dir(root.path(), Dialect::Dm);
    let d = deployer(&scripts, Dialect::Dm).with_settle(Settle::Exit);
    let m = open(root.path(), d, options());
    assert_eq!(
        m.create("web", "1.0.0", vec![]).unwrap().status,
        Status::Running
    );
    assert_eq!(m.delete("web").unwrap().status, Status::Archived);
    assert!(calls(&scripts).iter().all(|l| !l.starts_with("check ")));
}

#[test]
fn staging_dialects_script_locations_from_the_environment_variables() {
    let root = tempfile::tempdir().unwrap();
    let scripts = strict_dir(root.path(), Dialect::Dm);
    let elsewhere = root.path().join("utils");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("dialect"), "dm").unwrap();
    write_exe(&elsewhere.join("create"), STRICT);
    let env: HashMap<&str, OsString> = [
        (
            "CREATION_COMMAND",
            elsewhere.join("create").into_os_string(),
        ),
        ("TAG_CHECKING_COMMAND", OsString::new()), // empty: ignored
        ("ARCHIVE_COMMAND", "/not/a/dm/variable".into()),
    ]
    .into_iter()
    .collect();
    let d = deployer(&scripts, Dialect::Dm)
        .with_settle(Settle::Exit)
        .with_env_locations(|v| env.get(v).cloned());
    assert_eq!(d.script_path("create"), elsewhere.join("create"));
    assert_eq!(d.script_path("tag_check"), scripts.join("tag_check"));
    assert_eq!(d.script_path("archive"), scripts.join("archive"));
    let m = open(root.path(), d, options());
    m.create("web", "1.0.0", vec![]).unwrap();
    assert!(calls(&elsewhere)[0].starts_with("create [--project-name]"));
    assert!(calls(&scripts).iter().all(|l| !l.starts_with("create ")));

    // Octopod's names for its own scripts.
    let o = deployer(&scripts, Dialect::Octopod).with_env_locations(|v| {
        (v == "ARCHIVE_COMMAND" || v == "NOTIFICATION_COMMAND").then(|| OsString::from("/x/y"))
    });
    assert_eq!(o.script_path("archive"), PathBuf::from("/x/y"));
    assert_eq!(o.script_path("notifications"), PathBuf::from("/x/y"));
    assert_eq!(o.script_path("create"), scripts.join("create"));
}

#[test]
fn staging_dialects_namespace_is_fixed_or_a_pattern() {
    let req = DeployRequest {
        name: "web".into(),
        namespace: "web".into(),
        tag: Some("1".into()),
        overrides: vec![],
    };
    let ns = |d: &ScriptDeployer| {
        let args = d.arguments(&req).remove(0).1;
        let i = args.iter().position(|a| a == "--namespace").unwrap();
        args[i + 1].clone()
    };
    let d = ScriptDeployer::new("/s");
    assert_eq!(ns(&d), "stagings");
    let fixed = ScriptNamespace::parse("cactus").unwrap();
    assert_eq!(fixed, ScriptNamespace::Fixed("cactus".into()));
    assert_eq!(ns(&d.clone().with_namespace(fixed)), "cactus");
    let pattern = ScriptNamespace::parse("stg-{name}").unwrap();
    assert!(matches!(pattern, ScriptNamespace::Pattern(_)));
    assert_eq!(ns(&d.with_namespace(pattern)), "stg-web");
    for bad in ["", "a b", "stg-{nme}", "{name", "x\n"] {
        let e = ScriptNamespace::parse(bad).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{bad:?}");
    }
}

#[test]
fn staging_dialects_info_is_unsupported_with_dm_scripts_and_other_backends() {
    let root = tempfile::tempdir().unwrap();
    let scripts = strict_dir(root.path(), Dialect::Dm);
    let d = deployer(&scripts, Dialect::Dm).with_settle(Settle::Exit);
    let m = open(root.path(), d, options());
    m.create("web", "1.0.0", vec![]).unwrap();
    assert_eq!(m.info("web").unwrap_err().code(), ErrorCode::Unsupported);
    assert_eq!(m.info("nope").unwrap_err().code(), ErrorCode::NotFound);
    let mock = StagingManager::open_sqlite(
        root.path().join("mock.db"),
        Arc::new(capsa::staging::MockDeployer::new()),
        options(),
    )
    .unwrap();
    mock.create("web", "1.0.0", vec![]).unwrap();
    assert_eq!(mock.info("web").unwrap_err().code(), ErrorCode::Unsupported);
}
