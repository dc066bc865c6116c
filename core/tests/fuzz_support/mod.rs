//! The harness every property-based fuzz target (`core/tests/fuzz_*.rs`) runs under.
//!
//! A target is an ordinary `#[test]` that calls [`run`] with a proptest strategy and a check
//! that must hold for every input (usually: no panic, and either `Ok` or a clean error with a
//! stable code). Under `make test` each target runs a short, fixed-seed pass so the run is
//! deterministic; `make fuzz FUZZ_SECS=N` runs each target for about N seconds with fresh seeds
//! and prints its cases per second.
//!
//! Environment:
//! - `CAPSA_FUZZ_SECS`: run for this many seconds (repeating passes) instead of one pass.
//! - `CAPSA_FUZZ_CASES`: cases per pass (default: the target's own default).
//! - `CAPSA_FUZZ_SEED`: the seed of the first pass (default fixed; later passes add one).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Run `check` over inputs drawn from `strategy`: one fixed-seed pass of `default_cases`, or
/// repeated passes for `CAPSA_FUZZ_SECS`. A failing input is shrunk and reported as a panic
/// of the test with the minimal input.
pub fn run<S, F>(name: &str, default_cases: u32, strategy: S, check: F)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(S::Value) -> Result<(), TestCaseError>,
{
    let cases = env_u64("CAPSA_FUZZ_CASES")
        .map(|c| c as u32)
        .unwrap_or(default_cases);
    let budget = env_u64("CAPSA_FUZZ_SECS").map(Duration::from_secs);
    let mut seed = env_u64("CAPSA_FUZZ_SEED").unwrap_or(0xCA95A);
    let started = Instant::now();
    let mut total: u64 = 0;
    loop {
        let config = Config {
            cases,
            rng_seed: RngSeed::Fixed(seed),
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        match runner.run(&strategy, &check) {
            Ok(()) => {}
            Err(TestError::Fail(reason, value)) => {
                panic!(
                    "fuzz target {name} failed (seed {seed}): {reason}\nminimal input: {value:#?}"
                )
            }
            Err(TestError::Abort(reason)) => {
                panic!("fuzz target {name} aborted (seed {seed}): {reason}")
            }
        }
        total += u64::from(cases);
        seed = seed.wrapping_add(1);
        match budget {
            Some(b) if started.elapsed() < b => continue,
            _ => break,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {name}: {total} cases in {secs:.2} s ({:.0} cases/s)",
        total as f64 / secs.max(1e-9)
    );
}
