//! The Rust side of `make bench` (driven by `benches/report/run.py`): builds fixtures and
//! times capsa calls in-process, printing one JSON object per command on stdout.
//!
//! ```text
//! capsa_bench seq NAMES_FILE WARMUP REPS           sequences_in on the names (one per line)
//! capsa_bench store-fixture DIR CAPSULES CRATES LAYERS FRAMES
//!                                                   a store: CAPSULES x CRATES crates, each with
//!                                                   LAYERS sequences of FRAMES empty files
//! capsa_bench bump DIR EXISTING WARMUP REPS         one bump on a capsule of EXISTING crates
//!                                                   (the store in DIR is made or grown)
//! capsa_bench bump-loop STORE ID COUNT [START]      COUNT bumps, one version per line,
//!                                                   starting at Unix time START
//! capsa_bench staging DIR COUNT REPS                staging commands through SQLite + mock
//! ```
//! Times are wall-clock seconds (`"times"`: one per repetition, warm-up runs left out).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capsa::staging::{ManagerOptions, MockDeployer, StagingManager};
use capsa::{BumpOptions, Section, Store, StoreOptions, Version};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    let Some(a) = args.get(i) else {
        usage(&format!("missing {what}"));
    };
    a.parse()
        .unwrap_or_else(|_| usage(&format!("{what}: {a:?} is not valid")))
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "capsa_bench: {problem} (see the usage at the top of benches/src/bin/capsa_bench.rs)"
    );
    std::process::exit(2);
}

fn times_json(times: &[f64]) -> String {
    let parts: Vec<String> = times.iter().map(|t| format!("{t:.9}")).collect();
    format!("[{}]", parts.join(","))
}

/// Run `f` `warmup` times untimed, then `reps` times timed.
fn timed(warmup: usize, reps: usize, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..warmup {
        f();
    }
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect()
}

fn seq(args: &[String]) {
    let file: PathBuf = arg(args, 1, "NAMES_FILE");
    let warmup: usize = arg(args, 2, "WARMUP");
    let reps: usize = arg(args, 3, "REPS");
    let text = fs::read_to_string(&file).expect("read the names file");
    let names: Vec<&str> = text.lines().collect();
    let mut found = 0;
    let times = timed(warmup, reps, || {
        found = std::hint::black_box(capsa::sequences_in(&names)).len();
    });
    println!(
        "{{\"names\":{},\"sequences\":{found},\"times\":{}}}",
        names.len(),
        times_json(&times)
    );
}

fn store_fixture(args: &[String]) {
    let dir: PathBuf = arg(args, 1, "DIR");
    let capsules: usize = arg(args, 2, "CAPSULES");
    let crates: usize = arg(args, 3, "CRATES");
    let layers: usize = arg(args, 4, "LAYERS");
    let frames: usize = arg(args, 5, "FRAMES");
    let store = Store::init(&dir, StoreOptions::default()).expect("init store");
    let mut files = 0u64;
    for c in 0..capsules {
        let capsule = store
            .create_capsule(&format!("show-asset-{c:04}"))
            .expect("create capsule");
        for _ in 0..crates {
            let k = capsule.bump(BumpOptions::default()).expect("bump");
            let art = k.section(Section::Artifacts);
            for l in 0..layers {
                let layer = format!("layer{l:02}");
                let d = art.join(&layer);
                fs::create_dir(&d).expect("mkdir");
                for f in 0..frames {
                    // A gap every 97 frames, as renders have.
                    if f % 97 == 96 {
                        continue;
                    }
                    fs::File::create(d.join(format!("{layer}.{:04}.exr", 1001 + f)))
                        .expect("create");
                    files += 1;
                }
            }
        }
    }
    println!("{{\"files\":{files}}}");
}

/// A capsule with `existing` complete crates, in the store at `dir` (made if absent, grown if
/// it holds fewer crates: one fixture serves every size). The first crate is a real bump; the
/// others copy its metadata (version rewritten) to build large capsules fast, without sections
/// (a directory costs a lot to delete on a disk mounted with `discard`). The version hint is
/// set as a bump would leave it.
fn capsule_with(dir: &Path, existing: u32) -> capsa::Capsule {
    let store = if dir.join(".capsa").is_dir() {
        Store::open(dir).expect("open store")
    } else {
        Store::init(dir, StoreOptions::default()).expect("init store")
    };
    let capsule = store
        .capsule("bench")
        .or_else(|_| store.create_capsule("bench"))
        .expect("capsule");
    let first = match capsule.get(Version::new(1).expect("v1")) {
        Ok(k) => k,
        Err(_) => capsule.bump(BumpOptions::default()).expect("bump"),
    };
    let have = capsule
        .latest()
        .expect("latest")
        .map_or(0, |k| k.version().number());
    assert!(have <= existing, "the fixture already holds {have} crates");
    let meta_name = capsa::krate::METADATA_FILE;
    let meta = fs::read_to_string(first.path().join(meta_name)).expect("read metadata");
    for v in have + 1..=existing {
        let name = Version::new(v).expect("version").padded(store.padding());
        let path = capsule.path().join(&name);
        fs::create_dir(&path).expect("mkdir crate");
        let m = meta.replace(&first.version_str(), &name);
        fs::write(path.join(meta_name), m).expect("write metadata");
    }
    fs::write(capsule.path().join(".capsa/head"), format!("{existing}\n")).expect("hint");
    // Flush the fixture now, so the first timed fsync does not pay for writing it.
    let _ = std::process::Command::new("sync").status();
    capsule
}

fn bump(args: &[String]) {
    let dir: PathBuf = arg(args, 1, "DIR");
    let existing: u32 = arg(args, 2, "EXISTING");
    let warmup: usize = arg(args, 3, "WARMUP");
    let reps: usize = arg(args, 4, "REPS");
    let capsule = capsule_with(&dir, existing);
    let padding = capsule.store().padding();
    let mut times = Vec::new();
    for i in 0..warmup + reps {
        let t = Instant::now();
        let k = capsule.bump(BumpOptions::default()).expect("bump");
        let took = t.elapsed().as_secs_f64();
        assert_eq!(k.version().number(), existing + 1);
        // Back to exactly `existing` crates (not timed).
        fs::remove_dir_all(k.path()).expect("remove crate");
        fs::write(capsule.path().join(".capsa/head"), format!("{existing}\n")).expect("hint");
        if i >= warmup {
            times.push(took);
        }
    }
    let dir_of = capsule.path().display().to_string();
    println!(
        "{{\"existing\":{existing},\"padding\":{padding},\"capsule_dir\":{dir_of:?},\"times\":{}}}",
        times_json(&times)
    );
}

fn bump_loop(args: &[String]) {
    let store: PathBuf = arg(args, 1, "STORE");
    let id: String = arg(args, 2, "ID");
    let count: usize = arg(args, 3, "COUNT");
    let capsule = Store::open(&store)
        .expect("open store")
        .capsule(&id)
        .expect("capsule");
    if let Some(start) = args.get(4) {
        wait_until(
            start
                .parse()
                .unwrap_or_else(|_| usage("START: not a Unix time")),
        );
    }
    let mut out = std::io::stdout().lock();
    for _ in 0..count {
        let k = capsule.bump(BumpOptions::default()).expect("bump");
        writeln!(out, "{}", k.version().number()).expect("stdout");
    }
}

/// Sleep until the Unix time `start` (seconds): racing processes start together.
fn wait_until(start: f64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if start > now {
        std::thread::sleep(Duration::from_secs_f64(start - now));
    }
}

fn staging(args: &[String]) {
    let dir: PathBuf = arg(args, 1, "DIR");
    let count: usize = arg(args, 2, "COUNT");
    let reps: usize = arg(args, 3, "REPS");
    let mut phases: Vec<(&str, Vec<f64>)> = ["create", "update", "delete", "restore"]
        .iter()
        .map(|p| (*p, Vec::new()))
        .collect();
    // Round 0 is the warm-up.
    for round in 0..=reps {
        let db = dir.join(format!("staging-{round}.db"));
        let m = StagingManager::open_sqlite(
            &db,
            Arc::new(MockDeployer::new()),
            ManagerOptions {
                check_interval: Duration::ZERO,
                actor: "bench".into(),
                ..ManagerOptions::default()
            },
        )
        .expect("open the SQLite state");
        let names: Vec<String> = (0..count).map(|i| format!("stg-{i:05}")).collect();
        let run = |f: &dyn Fn(&str)| {
            let t = Instant::now();
            for n in &names {
                f(n);
            }
            t.elapsed().as_secs_f64()
        };
        let took = [
            run(&|n| {
                m.create(n, "1.0.0", vec![]).expect("create");
            }),
            run(&|n| {
                m.update(n, "1.1.0", None).expect("update");
            }),
            run(&|n| {
                m.delete(n).expect("delete");
            }),
            run(&|n| {
                m.restore(n).expect("restore");
            }),
        ];
        if round > 0 {
            for (p, t) in phases.iter_mut().zip(took) {
                p.1.push(t);
            }
        }
        drop(m);
        let _ = fs::remove_file(&db);
    }
    let parts: Vec<String> = phases
        .iter()
        .map(|(p, t)| format!("{p:?}:{}", times_json(t)))
        .collect();
    println!("{{\"count\":{count},\"phases\":{{{}}}}}", parts.join(","));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seq") => seq(&args),
        Some("store-fixture") => store_fixture(&args),
        Some("bump") => bump(&args),
        Some("bump-loop") => bump_loop(&args),
        Some("staging") => staging(&args),
        _ => usage("no command"),
    }
}
