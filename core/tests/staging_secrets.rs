//! Private override values never escape, not even as a fragment cut at an output boundary.
#![cfg(unix)] // the tests use shell scripts

mod common;

use capsa::staging::{AuditQuery, Override, Scope, Status};
use common::{options, write_script, ScriptHarness};

const SECRET: &str = "S3cretPassw0rdValue42";

/// Every window of 4 characters of the secret.
fn fragments() -> Vec<&'static str> {
    (0..=SECRET.len() - 4).map(|i| &SECRET[i..i + 4]).collect()
}

fn assert_no_fragment(what: &str, text: &str) {
    for f in fragments() {
        assert!(
            !text.contains(f),
            "{what} shows {f:?} of the secret: {text}"
        );
    }
}

fn private() -> Vec<Override> {
    vec![Override::private(Scope::App, "DB_PASSWORD", SECRET)]
}

fn check_everything(h: &ScriptHarness, name: &str) {
    let s = h.manager.get(name).unwrap();
    assert_eq!(s.status, Status::Failure);
    assert_no_fragment("the reason", s.reason.as_deref().unwrap_or(""));
    for row in h.manager.audit_log(&AuditQuery::default()).unwrap() {
        assert_no_fragment("the audit output", &row.output);
        assert_no_fragment("the audit reason", row.reason.as_deref().unwrap_or(""));
        assert_no_fragment("the audit row", &serde_json::to_string(&row).unwrap());
    }
}

/// The reason keeps the last 500 bytes of stderr: the secret straddles that cut.
#[test]
fn staging_secret_straddling_the_stderr_tail_cut_is_masked() {
    let h = ScriptHarness::new();
    // 21 bytes of secret then 490 of padding: a 500-byte tail starts inside the secret.
    let pad = "x".repeat(490);
    write_script(
        &h.scripts,
        "create",
        &format!(
            "#!/bin/sh\nprintf '%s' \"$4\" >/dev/null\nprintf 'db={SECRET}{pad}' >&2\nexit 3\n"
        ),
    );
    h.manager.create("tail", "1.0.0", private()).unwrap();
    check_everything(&h, "tail");
}

/// The head and the tail of each stream are kept: the secret straddles both cuts.
#[test]
fn staging_secret_straddling_the_output_head_and_tail_cuts_is_masked() {
    for shift in [1usize, 4, 7, 10, 13, 17, 20] {
        let h = ScriptHarness::with(|d| d.with_output_limit(64), options());
        // stdout: the secret straddles the end of the 64-byte head, then a gap, then the
        // secret straddles the start of the 64-byte tail.
        let head_pad = "h".repeat(64 - shift);
        let mid = "m".repeat(300);
        let tail_pad = "t".repeat(64 - (SECRET.len() - shift));
        let body = format!("{head_pad}{SECRET}{mid}{SECRET}{tail_pad}");
        write_script(
            &h.scripts,
            "create",
            &format!("#!/bin/sh\nprintf '%s' '{body}'\nprintf '%s' '{body}' >&2\nexit 3\n"),
        );
        let name = format!("cut{shift}");
        h.manager.create(&name, "1.0.0", private()).unwrap();
        check_everything(&h, &name);
    }
}
