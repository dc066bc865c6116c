//! Shared by the CLI archive tests: running `capsa` on a store, and a capsule big enough to
//! kill `capsa archive` half-way.
#![allow(dead_code)] // each test crate uses its own part

pub mod server;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use capsa::{BumpOptions, Capsule, Section, Store, StoreOptions};

/// Run `capsa --store STORE ARGS…` to the end.
pub fn capsa_in(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capsa"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

/// Hex digits of a pseudo-random stream: deflate works hard on it (it halves, slowly), so
/// the archive stays busy long enough to be killed half-way.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 17);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(format!("{x:016x}\n").as_bytes());
    }
    out.truncate(len);
    out
}

/// A new store at `root` with capsule `id`: 48 files `f00.bin`… of 8 MiB of [`noise`]
/// (seeds 1…) in `v001/artifacts`.
pub fn noisy_capsule(root: &Path, id: &str) -> (Store, Capsule) {
    let store = Store::init(root, StoreOptions::default()).unwrap();
    let capsule = store.create_capsule(id).unwrap();
    let v = capsule.bump(BumpOptions::default()).unwrap();
    for i in 0..48 {
        fs::write(
            v.section(Section::Artifacts).join(format!("f{i:02}.bin")),
            noise(8 << 20, i + 1),
        )
        .unwrap();
    }
    (store, capsule)
}

/// A fresh database on the PostgreSQL server of `make test-postgres` (`CAPSA_TEST_POSTGRES_URL`;
/// panics without it), named `PREFIX_PID_NANOS`: its URL.
pub fn postgres_database(prefix: &str) -> String {
    let url = std::env::var("CAPSA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| panic!("CAPSA_TEST_POSTGRES_URL is not set: run `make test-postgres`"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let db = format!("{prefix}_{}_{nanos}", std::process::id());
    let o = Command::new("psql")
        .args([url.as_str(), "-q", "-c", &format!("CREATE DATABASE {db}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{db}")
}
