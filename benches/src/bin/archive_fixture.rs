//! Build a store with one capsule for the archive benches.
//!
//! ```text
//! archive_fixture STORE ID [--sparse NAME BYTES] [--noise COUNT BYTES] [--text COUNT BYTES]
//! ```
//! `--sparse` makes one sparse file (cheap at any size), `--noise` COUNT incompressible files,
//! `--text` COUNT small text files (which deflate well).

use std::fs;
use std::io::Write;

use capsa::{BumpOptions, Section, Store, StoreOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: archive_fixture STORE ID [--sparse NAME BYTES] [--noise N BYTES] [--text N BYTES]");
        std::process::exit(2);
    }
    let store = Store::init(&args[0], StoreOptions::default()).expect("init store");
    let capsule = store.create_capsule(&args[1]).expect("create capsule");
    let krate = capsule.bump(BumpOptions::default()).expect("bump");
    let art = krate.section(Section::Artifacts);
    let scenes = krate.section(Section::Scenes);
    let mut i = 2;
    while i + 2 < args.len() {
        let flag = args[i].as_str();
        let a = &args[i + 1];
        let bytes: u64 = args[i + 2].parse().expect("a byte count");
        match flag {
            "--sparse" => {
                let f = fs::File::create(art.join(a)).expect("create");
                f.set_len(bytes).expect("set_len");
            }
            "--noise" => {
                let n: u64 = a.parse().expect("a count");
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
                let mut buf = vec![0u8; bytes as usize];
                for k in 0..n {
                    for chunk in buf.chunks_mut(8) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let b = x.to_le_bytes();
                        chunk.copy_from_slice(&b[..chunk.len()]);
                    }
                    fs::write(art.join(format!("render_{k:04}.bin")), &buf).expect("write");
                }
            }
            "--text" => {
                let n: u64 = a.parse().expect("a count");
                for k in 0..n {
                    let dir = scenes.join(format!("shot{:03}", k / 100));
                    fs::create_dir_all(&dir).expect("mkdir");
                    let mut f =
                        fs::File::create(dir.join(format!("layout_{k:05}.ma"))).expect("create");
                    let mut written = 0u64;
                    let mut line = 0u64;
                    while written < bytes {
                        let s = format!(
                            "setAttr \"shot{k}_cam{line}.translate\" -type double3 {} {} {};\n",
                            line % 97,
                            (line * 7) % 13,
                            k % 31
                        );
                        f.write_all(s.as_bytes()).expect("write");
                        written += s.len() as u64;
                        line += 1;
                    }
                }
            }
            other => panic!("unknown flag {other}"),
        }
        i += 3;
    }
}
