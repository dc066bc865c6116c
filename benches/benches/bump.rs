//! Bump cost versus the number of crates already in the capsule.
//!
//! capsa keeps a hint of the highest version, so a bump is one `mkdir` plus the crate's
//! sections and metadata whatever the count: 5,000 existing crates should cost the same as 5.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use capsa::{BumpOptions, Store, StoreOptions};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn bump(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), StoreOptions::default()).unwrap();
    let mut group = c.benchmark_group("bump");
    group.measurement_time(Duration::from_secs(5));
    for existing in [5u32, 5_000] {
        let capsule = store.create_capsule(&format!("c{existing}")).unwrap();
        for _ in 0..existing {
            capsule.bump(BumpOptions::default()).unwrap();
        }
        group.bench_with_input(BenchmarkId::from_parameter(existing), &existing, |b, &n| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    capsule.bump(BumpOptions::default()).unwrap();
                }
                let took = start.elapsed();
                // Back to exactly `n` crates for the next sample (not timed).
                for v in n + 1..=n + iters as u32 {
                    let name = capsa::Version::new(v).unwrap().padded(store.padding());
                    std::fs::remove_dir_all(capsule.path().join(name)).unwrap();
                }
                std::fs::write(capsule.path().join(".capsa/head"), format!("{n}\n")).unwrap();
                took
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bump);
criterion_main!(benches);
