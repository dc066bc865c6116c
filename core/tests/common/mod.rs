//! Helpers shared by the staging integration tests.
#![allow(dead_code, missing_docs)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use capsa::staging::{
    BackendReply, Deployer, ManagerOptions, MockCall, MockDeployer, ScriptDeployer, StagingManager,
    StateStore,
};

/// Whether the staging suite runs on PostgreSQL: `CAPSA_TEST_STATE_STORE=postgres` (set by
/// `tests/postgres/with-postgres.sh`, which `make test-postgres` uses), or
/// `CAPSA_TEST_POSTGRES_URL` set on its own. Otherwise the suite runs on SQLite.
pub fn postgres_mode() -> bool {
    match std::env::var("CAPSA_TEST_STATE_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") => false,
        Ok(other) => panic!("CAPSA_TEST_STATE_STORE={other:?}: expected `sqlite` or `postgres`"),
        Err(_) => std::env::var_os("CAPSA_TEST_POSTGRES_URL").is_some(),
    }
}

/// The PostgreSQL server of the test run. Fails the test, never skips it, when missing.
pub fn postgres_url() -> String {
    std::env::var("CAPSA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "CAPSA_TEST_POSTGRES_URL is not set: this test needs a PostgreSQL server. Run `make test-postgres` (tests/postgres/with-postgres.sh starts a throwaway one)."
        )
    })
}

/// A schema name for the state kept under `dir`: the same directory gives the same schema
/// (two connections to one store), every test its own.
pub fn schema_for(dir: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("t_{h:016x}")
}

/// The state store of the test whose scratch directory is `dir`: an SQLite file in it, or a
/// schema of its own in the PostgreSQL database.
pub fn open_store(dir: &Path) -> Arc<dyn StateStore> {
    if postgres_mode() {
        #[cfg(feature = "postgres")]
        {
            let mut o = capsa::staging::PostgresOptions::new(postgres_url());
            o.schema = Some(schema_for(dir));
            o.pool_size = 4;
            // Private values are sealed: a key file per test, like SQLite's default one.
            o.key_file = Some(dir.join("staging.key"));
            return Arc::new(capsa::staging::PostgresStateStore::open_with(o).unwrap());
        }
        #[cfg(not(feature = "postgres"))]
        panic!(
            "the staging suite is asked to run on PostgreSQL, but capsa was built without the `postgres` feature: cargo test -p capsa --features postgres"
        );
    }
    Arc::new(capsa::staging::SqliteStore::open(dir.join("staging.db")).unwrap())
}

/// A manager over [`open_store`].
pub fn open_manager(
    dir: &Path,
    deployer: Arc<dyn Deployer>,
    opts: ManagerOptions,
) -> StagingManager {
    StagingManager::new(open_store(dir), deployer, opts)
}

/// How the next calls of one kind behave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Ok,
    Fail,
    Slow(Duration),
    /// Wait without answering until [`Harness::release`]: a command is certainly in flight.
    Held,
}

pub const CALLS: [&str; 7] = [
    "create",
    "update",
    "delete",
    "check",
    "cleanup",
    "archive_check",
    "tag_check",
];

/// A manager with a backend whose behaviour the test controls.
pub trait Harness {
    fn manager(&self) -> &StagingManager;
    fn set(&self, call: &str, mode: Mode);
    /// Let the calls held by [`Mode::Held`] go (their reply is unchanged).
    fn release(&self, call: &str);
    fn reset(&self) {
        for c in CALLS {
            self.release(c);
            self.set(c, Mode::Ok);
        }
    }
}

pub fn options() -> ManagerOptions {
    ManagerOptions {
        actor: "tester".into(),
        check_interval: Duration::ZERO,
        ..ManagerOptions::default()
    }
}

pub struct MockHarness {
    pub dir: tempfile::TempDir,
    pub mock: Arc<MockDeployer>,
    pub manager: StagingManager,
}

pub fn mock_call(call: &str) -> MockCall {
    MockCall::parse(call).unwrap()
}

impl MockHarness {
    pub fn new() -> MockHarness {
        Self::with_options(options())
    }
    pub fn with_options(opts: ManagerOptions) -> MockHarness {
        let dir = tempfile::tempdir().unwrap();
        let mock = Arc::new(MockDeployer::new());
        let manager = open_manager(dir.path(), mock.clone(), opts);
        MockHarness { dir, mock, manager }
    }
}

impl Harness for MockHarness {
    fn manager(&self) -> &StagingManager {
        &self.manager
    }
    fn set(&self, call: &str, mode: Mode) {
        let c = mock_call(call);
        match mode {
            Mode::Ok => {
                self.mock.set_default(c, BackendReply::success());
                self.mock.set_delay(c, Duration::ZERO);
            }
            Mode::Fail => self
                .mock
                .set_default(c, BackendReply::failed(format!("{call} failed on purpose"))),
            Mode::Slow(d) => self.mock.set_delay(c, d),
            Mode::Held => self.mock.hold(c),
        }
    }
    fn release(&self, call: &str) {
        self.mock.release(mock_call(call));
    }
}

/// The test script: logs its name and arguments (one `[arg]` each) to `calls.log`, waits
/// while `<call>.hold` exists, sleeps `<call>.sleep` seconds if present, prints a line, exits
/// with `<call>.exit` (default 0).
pub const SCRIPT: &str = r#"#!/bin/sh
d="$(dirname "$0")"
call="$(basename "$0")"
{ printf '%s' "$call"; for a in "$@"; do printf ' [%s]' "$a"; done; echo; } >> "$d/calls.log"
while [ -f "$d/$call.hold" ]; do sleep 0.02; done
if [ -f "$d/$call.sleep" ]; then sleep "$(cat "$d/$call.sleep")"; fi
echo "$call output"
code=0
if [ -f "$d/$call.exit" ]; then code="$(cat "$d/$call.exit")"; fi
if [ "$code" != 0 ]; then echo "$call failed on purpose" >&2; fi
exit "$code"
"#;

pub fn write_script(dir: &Path, call: &str, body: &str) {
    let p = dir.join(call);
    fs::write(&p, body).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A directory with all seven scripts.
pub fn script_dir(dir: &Path) -> PathBuf {
    let s = dir.join("scripts");
    fs::create_dir_all(&s).unwrap();
    for c in CALLS {
        write_script(&s, c, SCRIPT);
    }
    s
}

pub struct ScriptHarness {
    pub dir: tempfile::TempDir,
    pub scripts: PathBuf,
    pub manager: StagingManager,
}

impl ScriptHarness {
    pub fn new() -> ScriptHarness {
        Self::with(|d| d, options())
    }
    pub fn with(
        f: impl FnOnce(ScriptDeployer) -> ScriptDeployer,
        opts: ManagerOptions,
    ) -> ScriptHarness {
        let dir = tempfile::tempdir().unwrap();
        let scripts = script_dir(dir.path());
        // The suites written before the dialects: statuses settled on the script's exit and
        // one namespace per staging, as the backend did then (both are settings now).
        let deployer = f(ScriptDeployer::new(&scripts)
            .with_settle(capsa::staging::script::Settle::Exit)
            .with_namespace(capsa::staging::script::ScriptNamespace::parse("{name}").unwrap()));
        let manager = open_manager(dir.path(), Arc::new(deployer), opts);
        ScriptHarness {
            dir,
            scripts,
            manager,
        }
    }
    pub fn calls(&self) -> String {
        fs::read_to_string(self.scripts.join("calls.log")).unwrap_or_default()
    }
}

impl Harness for ScriptHarness {
    fn manager(&self) -> &StagingManager {
        &self.manager
    }
    fn set(&self, call: &str, mode: Mode) {
        let exit = self.scripts.join(format!("{call}.exit"));
        let sleep = self.scripts.join(format!("{call}.sleep"));
        match mode {
            Mode::Ok => {
                let _ = fs::remove_file(exit);
                let _ = fs::remove_file(sleep);
            }
            Mode::Fail => fs::write(exit, "3").unwrap(),
            Mode::Slow(d) => fs::write(sleep, format!("{}", d.as_secs_f64())).unwrap(),
            Mode::Held => fs::write(self.scripts.join(format!("{call}.hold")), "").unwrap(),
        }
    }
    fn release(&self, call: &str) {
        let _ = fs::remove_file(self.scripts.join(format!("{call}.hold")));
    }
}
