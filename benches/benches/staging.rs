//! Staging benches: full create → Running round trips through the SQLite store with the mock
//! backend, and `reconcile` over 10,000 stagings.
#![allow(missing_docs)] // criterion's macros generate undocumented public functions

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use capsa::staging::{ManagerOptions, MockDeployer, StagingManager};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn manager(dir: &tempfile::TempDir) -> StagingManager {
    StagingManager::open_sqlite(
        dir.path().join("staging.db"),
        Arc::new(MockDeployer::new()),
        ManagerOptions {
            check_interval: Duration::ZERO,
            actor: "bench".into(),
            ..ManagerOptions::default()
        },
    )
    .unwrap()
}

fn round_trips(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(&dir);
    let n = AtomicU64::new(0);
    let mut g = c.benchmark_group("staging");
    g.throughput(Throughput::Elements(1));
    g.bench_function("create_to_running_round_trip", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let s = m.create(&format!("stg-{i}"), "1.0.0", vec![]).unwrap();
            assert_eq!(s.status, capsa::staging::Status::Running);
        })
    });
    g.finish();
}

fn reconcile_10k(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(&dir);
    for i in 0..10_000 {
        m.create(&format!("stg-{i:05}"), "1.0.0", vec![]).unwrap();
    }
    let mut g = c.benchmark_group("staging");
    g.sample_size(10);
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("reconcile_10k_stagings", |b| {
        b.iter(|| {
            let r = m.reconcile().unwrap();
            assert_eq!(r.checked, 10_000);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = round_trips, reconcile_10k
}
criterion_main!(benches);
