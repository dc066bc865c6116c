//! Sequence detection throughput: `sequences_in` over 10k, 100k and 1M file names
//! (sequences of 1,000 frames each), in names per second.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use capsa::seq::sequences_in;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// `sequences` sequences of `frames` frames each, interleaved the way a directory listing
/// may hand them out (not grouped), plus a few names that are not frames.
fn names(sequences: usize, frames: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(sequences * frames + 2);
    for f in 0..frames {
        for s in 0..sequences {
            out.push(format!("sh{s:04}_comp_v001.{:04}.exr", 1001 + f));
        }
    }
    out.push("sh0000_comp_v001.nk".to_string());
    out.push("notes_v002.txt".to_string());
    out
}

fn detect(c: &mut Criterion) {
    let mut group = c.benchmark_group("sequences_in");
    group.sample_size(10);
    for sequences in [10usize, 100, 1000] {
        let names = names(sequences, 1000);
        group.throughput(Throughput::Elements(names.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{sequences}x1000")),
            &names,
            |b, names| {
                b.iter(|| {
                    let found = sequences_in(black_box(names));
                    assert_eq!(found.len(), sequences);
                    found
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, detect);
criterion_main!(benches);
