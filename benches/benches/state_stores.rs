//! Commands per second through each state store, with 1 and 4 clients.
//!
//! A command is a full `update` round trip (begin transaction, mock backend, finish
//! transaction) on the client's own staging. Each client has its own manager and its own
//! connection(s) to the store, as separate processes would. SQLite always; PostgreSQL when
//! `CAPSA_BENCH_POSTGRES_URL` (or `CAPSA_TEST_POSTGRES_URL`) is set, e.g.
//!
//! ```sh
//! tests/postgres/with-postgres.sh cargo bench -p capsa-benches --bench state_stores
//! ```
#![allow(missing_docs)] // criterion's macros generate undocumented public functions

use std::sync::Arc;
use std::time::{Duration, Instant};

use capsa::staging::{
    ManagerOptions, MockDeployer, PostgresOptions, PostgresStateStore, SqliteStore, StagingManager,
    StateStore,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn manager(store: Arc<dyn StateStore>) -> StagingManager {
    StagingManager::new(
        store,
        Arc::new(MockDeployer::new()),
        ManagerOptions {
            actor: "bench".into(),
            ..ManagerOptions::default()
        },
    )
}

fn postgres_url() -> Option<String> {
    std::env::var("CAPSA_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("CAPSA_TEST_POSTGRES_URL"))
        .ok()
}

/// One store per client, all sharing the same state.
fn open_clients(kind: &str, dir: &std::path::Path, clients: usize) -> Vec<StagingManager> {
    let schema = format!("bench_{}_{clients}", std::process::id());
    (0..clients)
        .map(|_| {
            let store: Arc<dyn StateStore> = match kind {
                "sqlite" => Arc::new(SqliteStore::open(dir.join("staging.db")).unwrap()),
                _ => {
                    let mut o = PostgresOptions::new(postgres_url().unwrap());
                    o.schema = Some(schema.clone());
                    o.pool_size = 2;
                    Arc::new(PostgresStateStore::open_with(o).unwrap())
                }
            };
            manager(store)
        })
        .collect()
}

fn commands(c: &mut Criterion) {
    let mut kinds = vec!["sqlite"];
    if postgres_url().is_some() {
        kinds.push("postgres");
    } else {
        eprintln!("state_stores: CAPSA_BENCH_POSTGRES_URL is not set: SQLite only");
    }
    let mut g = c.benchmark_group("state_store_commands");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(1));
    for kind in kinds {
        for clients in [1usize, 4] {
            let dir = tempfile::tempdir().unwrap();
            let ms = open_clients(kind, dir.path(), clients);
            for (i, m) in ms.iter().enumerate() {
                m.create(&format!("client-{i}"), "1.0.0", vec![]).unwrap();
            }
            g.bench_with_input(BenchmarkId::new(kind, clients), &clients, |b, &clients| {
                b.iter_custom(|iters| {
                    let per = iters.div_ceil(clients as u64);
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for (i, m) in ms.iter().enumerate() {
                            s.spawn(move || {
                                let name = format!("client-{i}");
                                for n in 0..per {
                                    m.update(&name, &format!("1.0.{n}"), None).unwrap();
                                }
                            });
                        }
                    });
                    // Time per command: the clients ran `per * clients` of them.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per * clients as u64) as f64)
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, commands);
criterion_main!(benches);
