//! The worker processes of `staging_postgres.rs` (a binary, not a test, so no test passes by
//! doing nothing): `capsa-pg-worker commands SCHEMA SEED` runs random commands and prints one
//! line per command; `capsa-pg-worker subscriber SCHEMA STOP` follows the event feed until
//! the file STOP exists and prints every event as a JSON line. The server is
//! `CAPSA_TEST_POSTGRES_URL`. Built only with feature `postgres-tests`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use capsa::staging::{
    BackendReply, Command, CommandRequest, Event, ManagerOptions, MockCall, MockDeployer,
    PostgresOptions, PostgresStateStore, StagingManager,
};
use capsa::ErrorCode;

/// Commands each command worker runs, and the stagings they are spread over (the test
/// checks the totals against these).
const COMMANDS: usize = 200;
const STAGINGS: usize = 20;

fn manager(schema: &str, deployer: Arc<MockDeployer>, actor: &str) -> StagingManager {
    let url = std::env::var("CAPSA_TEST_POSTGRES_URL").expect("CAPSA_TEST_POSTGRES_URL");
    let mut o = PostgresOptions::new(url);
    o.schema = Some(schema.into());
    o.pool_size = 4;
    StagingManager::new(
        Arc::new(PostgresStateStore::open_with(o).unwrap()),
        deployer,
        ManagerOptions {
            actor: actor.into(),
            ..ManagerOptions::default()
        },
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["commands", schema, seed] => command_worker(schema, seed.parse().expect("seed")),
        ["subscriber", schema, stop] => subscriber_worker(schema, Path::new(stop)),
        _ => {
            eprintln!("usage: capsa-pg-worker commands SCHEMA SEED | subscriber SCHEMA STOP");
            std::process::exit(2);
        }
    }
}

/// A small deterministic generator (no extra dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn request(cmd: Command, name: String, n: usize) -> CommandRequest {
    match cmd {
        Command::Create => CommandRequest::Create {
            name,
            tag: "1.0.0".into(),
            overrides: vec![],
        },
        Command::Update => CommandRequest::Update {
            name,
            tag: format!("1.0.{}", n + 1),
            overrides: None,
        },
        Command::Delete => CommandRequest::Delete { name },
        Command::Restore => CommandRequest::Restore { name },
        Command::Cleanup => CommandRequest::Cleanup { name },
    }
}

/// Worker: `COMMANDS` random commands on `STAGINGS` stagings, several in flight at once from
/// this process; prints one line per command: `started <audit id>` or `refused <code>`.
fn command_worker(schema: &str, seed: u64) {
    let mock = Arc::new(MockDeployer::new());
    let m = manager(schema, mock.clone(), &format!("worker-{seed}"));
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let out = std::io::stdout();
    let mut inflight = Vec::new();
    for n in 0..COMMANDS {
        let cmd = Command::ALL[rng.below(Command::ALL.len())];
        let name = format!("stg-{:02}", rng.below(STAGINGS));
        // Backend outcomes vary: a quarter of the commands fail; calls take 0-4 ms.
        let reply = if rng.below(4) == 0 {
            BackendReply::failed("told to fail")
        } else {
            BackendReply::success()
        };
        mock.set_default(MockCall::of(cmd), reply);
        mock.set_delay(
            MockCall::of(cmd),
            Duration::from_millis(rng.below(5) as u64),
        );
        let line = match m.start(request(cmd, name, n)) {
            Ok(p) => {
                let id = p.audit_id;
                inflight.push(p);
                if inflight.len() >= 3 {
                    inflight.remove(0).wait().unwrap();
                }
                format!("started {id}")
            }
            Err(e) => {
                assert!(
                    matches!(e.code(), ErrorCode::Busy | ErrorCode::InvalidTransition),
                    "{e}"
                );
                format!("refused {}", e.code())
            }
        };
        writeln!(out.lock(), "{line}").unwrap();
    }
    for p in inflight {
        p.wait().unwrap();
    }
}

/// Worker: follow the event feed from the start with [`StagingManager::follow`] (woken by
/// NOTIFY) until `stop` exists and nothing new came for a while; print every event as a JSON
/// line.
fn subscriber_worker(schema: &str, stop: &Path) {
    let m = manager(schema, Arc::new(MockDeployer::new()), "watcher");
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let tx = std::sync::Mutex::new(tx);
    let _follower = m
        .follow(Some(0), move |e| {
            let _ = tx.lock().unwrap().send(e.clone());
        })
        .unwrap();
    let out = std::io::stdout();
    eprintln!("subscriber ready");
    loop {
        match rx.recv_timeout(Duration::from_millis(1000)) {
            Ok(e) => writeln!(out.lock(), "{}", serde_json::to_string(&e).unwrap()).unwrap(),
            Err(_) if stop.exists() => return,
            Err(_) => {}
        }
    }
}
