//! The script backend with real shell scripts.
#![cfg(unix)] // the tests use shell scripts and Unix process control

mod common;

use std::time::{Duration, Instant};

use capsa::staging::{AuditQuery, Override, Scope, Status};
use common::{options, write_script, Harness, Mode, ScriptHarness};

#[test]
fn staging_script_success_passes_the_contract_arguments() {
    let h = ScriptHarness::with(
        |d| {
            d.with_project_name("show one")
                .with_base_domain("stg.example.test")
        },
        options(),
    );
    let s = h
        .manager
        .create(
            "web",
            "2.0.0",
            vec![
                Override::public(Scope::App, "GREETING", "hello world"),
                Override::public(Scope::Staging, "DSN", "a=b;c=d e"),
                Override::public(Scope::App, "EMPTY", ""),
            ],
        )
        .unwrap();
    assert_eq!(s.status, Status::Running);
    let calls = h.calls();
    let create = calls.lines().find(|l| l.starts_with("create ")).unwrap();
    assert_eq!(
        create,
        "create [--project-name] [show one] [--base-domain] [stg.example.test] [--namespace] [web] \
         [--name] [web] [--tag] [2.0.0] [--app-env-override] [GREETING=hello world] \
         [--app-env-override] [EMPTY=] [--staging-override] [DSN=a=b;c=d e]"
    );
    let rows = h.manager.audit_log(&AuditQuery::default()).unwrap();
    assert_eq!(rows[0].exit_code, Some(0));
    assert!(rows[0].output.contains("create output"));
    h.manager.delete("web").unwrap();
    let calls = h.calls();
    let delete = calls.lines().find(|l| l.starts_with("delete ")).unwrap();
    assert_eq!(
        delete,
        "delete [--project-name] [show one] [--base-domain] [stg.example.test] [--namespace] [web] [--name] [web]"
    );
}

#[test]
fn staging_script_nonzero_exit_is_failure_with_code_and_stderr_tail() {
    let h = ScriptHarness::new();
    h.set("create", Mode::Fail);
    let s = h.manager.create("broken", "1.0.0", vec![]).unwrap();
    assert_eq!(s.status, Status::Failure);
    let reason = s.reason.unwrap();
    assert!(reason.contains("exited with code 3"), "{reason}");
    assert!(reason.contains("create failed on purpose"), "{reason}");
    let row = &h.manager.audit_log(&AuditQuery::default()).unwrap()[0];
    assert_eq!(row.exit_code, Some(3));
    assert!(row.output.contains("create failed on purpose"));
}

#[test]
fn staging_script_hanging_script_times_out_into_failure() {
    let h = ScriptHarness::with(|d| d.with_timeout(Duration::from_secs(1)), options());
    // A script that spawns a child holding the pipes open: the whole group must be killed.
    write_script(
        &h.scripts,
        "create",
        "#!/bin/sh\necho starting\nsleep 60 &\nsleep 60\n",
    );
    let t = Instant::now();
    let s = h.manager.create("hangs", "1.0.0", vec![]).unwrap();
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(s.status, Status::Failure);
    assert!(
        s.reason.as_deref().unwrap().contains("timed out after 1 s"),
        "{s:?}"
    );
    let row = &h.manager.audit_log(&AuditQuery::default()).unwrap()[0];
    assert!(row.output.contains("starting"));
}

#[test]
fn staging_script_huge_output_is_captured_bounded() {
    let h = ScriptHarness::with(|d| d.with_output_limit(16 * 1024), options());
    write_script(
        &h.scripts,
        "create",
        "#!/bin/sh\necho FIRST-LINE\nhead -c 104857600 /dev/zero | tr '\\0' x\necho\necho LAST-LINE\n\
         head -c 1048576 /dev/zero | tr '\\0' e >&2\n",
    );
    let s = h.manager.create("chatty", "1.0.0", vec![]).unwrap();
    assert_eq!(s.status, Status::Running);
    let row = &h.manager.audit_log(&AuditQuery::default()).unwrap()[0];
    assert!(row.output.len() < 80 * 1024, "{}", row.output.len());
    assert!(row.output.starts_with("FIRST-LINE"));
    assert!(row.output.contains("LAST-LINE"));
    assert!(row.output.contains("bytes not kept"));
}

#[test]
fn staging_script_check_exit_75_is_transient_and_changes_nothing() {
    let h = ScriptHarness::new();
    h.manager.create("steady", "1.0.0", vec![]).unwrap();
    std::fs::write(h.scripts.join("check.exit"), "75").unwrap();
    let r = h.manager.reconcile().unwrap();
    assert_eq!(r.transient_errors, 1);
    assert_eq!(h.manager.get("steady").unwrap().status, Status::Running);
    h.set("check", Mode::Fail);
    let r = h.manager.reconcile().unwrap();
    assert_eq!(r.changed, 1);
    let s = h.manager.get("steady").unwrap();
    assert_eq!(s.status, Status::Failure);
    assert!(s.reason.unwrap().contains("check exited with code 3"));
    assert!(!h
        .calls()
        .lines()
        .any(|l| l.starts_with("delete") || l.starts_with("cleanup")));
}

#[test]
fn staging_script_missing_script_fails_the_command() {
    let h = ScriptHarness::new();
    std::fs::remove_file(h.scripts.join("update")).unwrap();
    h.manager.create("partial", "1.0.0", vec![]).unwrap();
    let s = h.manager.update("partial", "1.0.1", None).unwrap();
    assert_eq!(s.status, Status::Failure);
    assert!(s.reason.unwrap().contains("no update script"));
}

#[test]
fn staging_script_background_child_holding_pipes_does_not_block() {
    let h = ScriptHarness::new();
    write_script(
        &h.scripts,
        "create",
        "#!/bin/sh\nsleep 30 &\necho deployed\nexit 0\n",
    );
    let t = Instant::now();
    let s = h.manager.create("daemonic", "1.0.0", vec![]).unwrap();
    assert_eq!(s.status, Status::Running);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let row = &h.manager.audit_log(&AuditQuery::default()).unwrap()[0];
    assert!(row.output.contains("deployed"));
}
