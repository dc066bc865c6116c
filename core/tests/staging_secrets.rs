//! Private override values never escape, not even as a fragment cut at an output boundary.
#![cfg(unix)] // the tests use shell scripts

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use capsa::staging::{
    AuditQuery, MockDeployer, Override, Scope, ScriptDeployer, SqliteStore, StagingManager,
    StateStore, Status,
};
use capsa::ErrorCode;
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

// ---- At rest: the SQLite state files hold no private value ----

/// Every window of 6 bytes of the secret.
fn fragments6() -> Vec<&'static [u8]> {
    let b = SECRET.as_bytes();
    (0..=b.len() - 6).map(|i| &b[i..i + 6]).collect()
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The raw bytes of the state file and of its WAL and SHM (those that exist).
fn state_bytes(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(b) = std::fs::read(with_suffix(db, suffix)) {
            all.extend_from_slice(&b);
        }
    }
    all
}

fn assert_no_fragment_in_bytes(what: &str, bytes: &[u8]) {
    for f in fragments6() {
        assert!(
            !bytes.windows(f.len()).any(|w| w == f),
            "{what} holds {:?} of the private value",
            String::from_utf8_lossy(f)
        );
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A manager on the SQLite state `db` (whatever store the suite runs on) with the test script
/// deployer of `scripts`.
fn sqlite_manager(db: &Path, scripts: &Path) -> StagingManager {
    StagingManager::open_sqlite(
        db,
        Arc::new(ScriptDeployer::new(scripts).with_settle(capsa::staging::script::Settle::Exit)),
        options(),
    )
    .unwrap()
}

const PUBLIC: &str = "PlainVisibleValue7";

fn overrides() -> Vec<Override> {
    vec![
        Override::private(Scope::App, "DB_PASSWORD", SECRET),
        Override::public(Scope::Staging, "REPLICAS", PUBLIC),
    ]
}

#[test]
fn sqlite_state_files_hold_no_private_value_and_are_0600() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = common::script_dir(dir.path());
    let db = dir.path().join(".capsa").join("staging.db");
    let m = sqlite_manager(&db, &scripts);
    m.create("web", "1.0.0", overrides()).unwrap();
    m.update("web", "1.0.1", Some(overrides())).unwrap();

    // While the store is open its WAL and SHM exist: the three files together.
    assert!(with_suffix(&db, "-wal").exists() && with_suffix(&db, "-shm").exists());
    let bytes = state_bytes(&db);
    // The test reads the right bytes: the public value is there in clear.
    assert!(
        bytes.windows(PUBLIC.len()).any(|w| w == PUBLIC.as_bytes()),
        "the public value is stored in clear"
    );
    assert_no_fragment_in_bytes("the state file, WAL or SHM", &bytes);
    for suffix in ["", "-wal", "-shm"] {
        let p = with_suffix(&db, suffix);
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    let key = dir.path().join(".capsa").join("staging.key");
    assert_eq!(mode(&key), 0o600, "{}", key.display());
    assert_eq!(std::fs::metadata(&key).unwrap().len(), 32);

    // The application reads the value in clear, and the deployer got it.
    let s = m.get("web").unwrap();
    assert_eq!(s.overrides[0].value.expose(), SECRET);
    assert!(
        std::fs::read_to_string(scripts.join("calls.log"))
            .unwrap()
            .contains(&format!("DB_PASSWORD={SECRET}")),
        "the script was given the value"
    );

    // Closed (the WAL checkpointed into the file): still nothing.
    drop(m);
    assert_no_fragment_in_bytes("the closed state file", &state_bytes(&db));

    // A second store on the same file (and the same default key) reads it back.
    let again = sqlite_manager(&db, &scripts);
    assert_eq!(
        again.get("web").unwrap().overrides[0].value.expose(),
        SECRET
    );
    // Restore after delete needs the value: it comes back from the sealed form.
    again.delete("web").unwrap();
    let before = std::fs::read_to_string(scripts.join("calls.log")).unwrap();
    again.restore("web").unwrap();
    let after = std::fs::read_to_string(scripts.join("calls.log")).unwrap();
    assert!(after[before.len()..].contains(&format!("DB_PASSWORD={SECRET}")));
}

#[test]
fn sqlite_state_opened_with_another_key_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("staging.db");
    let m = StagingManager::open_sqlite(&db, Arc::new(MockDeployer::new()), options()).unwrap();
    m.create("web", "1.0.0", overrides()).unwrap();
    drop(m);

    let other = dir.path().join("other.key");
    let store = SqliteStore::open_with_key(&db, &other).unwrap();
    let e = store.get("web").unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("other.key") && msg.contains("another key"),
        "{msg}"
    );
    assert!(!msg.contains(SECRET), "{msg}");
    assert_eq!(store.list().unwrap_err().code(), ErrorCode::InvalidArgument);
    // Through open_store and the key file given: the same.
    let s = capsa::staging::open_store_with_key(&db, Some(&other)).unwrap();
    assert_eq!(s.get("web").unwrap_err().code(), ErrorCode::InvalidArgument);
    // The right key still opens it.
    let s =
        capsa::staging::open_store_with_key(&db, Some(&dir.path().join("staging.key"))).unwrap();
    let rec = s.get("web").unwrap().unwrap();
    assert_eq!(rec.staging.overrides[0].value.expose(), SECRET);
}

#[test]
fn a_bad_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("staging.db");
    for (name, len) in [("short.key", 17usize), ("long.key", 33), ("empty.key", 0)] {
        let k = dir.path().join(name);
        std::fs::write(&k, vec![7u8; len]).unwrap();
        let e = SqliteStore::open_with_key(&db, &k).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
        let msg = e.to_string();
        assert!(msg.contains(name) && msg.contains("32"), "{msg}");
    }
    let e = SqliteStore::open_with_key(&db, dir.path()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    let big = dir.path().join("big.key");
    std::fs::write(&big, vec![0u8; 1 << 20]).unwrap();
    let e = SqliteStore::open_with_key(&db, &big).unwrap_err();
    assert_eq!(e.code(), ErrorCode::TooLarge, "{e}");
    // Nothing was created with a key refused.
    assert!(!db.exists());
}

#[test]
fn wide_modes_are_narrowed_on_open() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("staging.db");
    let key = dir.path().join("staging.key");
    drop(SqliteStore::open(&db).unwrap());
    for p in [&db, &key] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let s = SqliteStore::open(&db).unwrap();
    assert_eq!(s.key_file(), key);
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn memory_state_makes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::env::current_dir().unwrap();
    let s = SqliteStore::open(":memory:").unwrap();
    let m = StagingManager::new(Arc::new(s), Arc::new(MockDeployer::new()), options());
    m.create("web", "1.0.0", overrides()).unwrap();
    assert_eq!(m.get("web").unwrap().overrides[0].value.expose(), SECRET);
    drop(capsa::staging::open_store(":memory:").unwrap());
    assert!(!cwd.join(":memory:").exists() && !cwd.join(":memory:.key").exists());
    drop(dir);
}
