//! Every single-bit change of a small capsa archive (two bits of every byte: the lowest and
//! the ASCII case bit) either fails `verify` and `restore`, or restores a tree identical to
//! the capsule that was archived. A flipped directory name, link name or mode in the central
//! directory used to verify and restore a different tree.

#[path = "archive_support/mod.rs"]
mod common;

use std::fs;
use std::process::Command;

use capsa::archive::{self, RestoreOptions};
use capsa::{ErrorCode, Store, StoreOptions};
use common::*;

#[test]
fn every_bit_flip_is_refused_or_restores_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, want) = small_archive(dir.path());
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let (mut refused, mut same) = (0usize, 0usize);
    for pos in 0..bytes.len() {
        for bit in [0x01u8, 0x20] {
            let mut b = bytes.clone();
            b[pos] ^= bit;
            let zip = work.join("f.zip");
            fs::write(&zip, &b).unwrap();
            let verified = archive::verify(&zip).is_ok();
            let store_dir = tempfile::tempdir_in(&work).unwrap();
            let store = Store::init(store_dir.path().join("s"), StoreOptions::default()).unwrap();
            match archive::restore(&zip, &store, RestoreOptions::default()) {
                Ok(c) => {
                    assert!(
                        verified,
                        "byte {pos} ^ {bit:#x}: restore took what verify refused"
                    );
                    assert_eq!(
                        tree_hash(c.path()),
                        want,
                        "byte {pos} ^ {bit:#x}: verified, but restored a different tree"
                    );
                    same += 1;
                }
                Err(e) => {
                    assert!(
                        !verified,
                        "byte {pos} ^ {bit:#x}: verify passed, restore: {e}"
                    );
                    assert_eq!(names_in(store.root()), [".capsa"], "restore left a capsule");
                    refused += 1;
                }
            }
        }
    }
    eprintln!(
        "{} flips of {} bytes: {refused} refused, {same} restored the same tree",
        refused + same,
        bytes.len()
    );
    assert!(refused > bytes.len(), "most flips are refused");
}

/// An archive whose `capsa-archive.json` names a format this capsa does not know is
/// UNSUPPORTED by verify and restore, and nothing is restored.
#[test]
fn an_unknown_archive_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = small_archive(dir.path());
    let zip = dir.path().join("small.zip");
    fs::write(&zip, &bytes).unwrap();
    let future = dir.path().join("future.zip");
    // Rewrite the metadata with Python's zipfile, keeping every other entry as it was.
    let script = "import sys, json, zipfile\n\
                  src, dst = zipfile.ZipFile(sys.argv[1]), zipfile.ZipFile(sys.argv[2], 'w')\n\
                  for i in src.infolist():\n\
                  \x20   data = src.read(i)\n\
                  \x20   if i.filename == 'capsa-archive.json':\n\
                  \x20       m = json.loads(data); m['format'] = 99; data = json.dumps(m).encode()\n\
                  \x20   dst.writestr(i, data)\n\
                  dst.close()\n";
    run(Command::new(tool("python3"))
        .arg("-c")
        .arg(script)
        .arg(&zip)
        .arg(&future));
    let e = archive::verify(&future).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
    assert!(e.to_string().contains("archive format 99"), "{e}");
    let store = Store::init(dir.path().join("s"), StoreOptions::default()).unwrap();
    let e = archive::restore(&future, &store, RestoreOptions::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
    assert_eq!(names_in(store.root()), [".capsa"], "restore left a capsule");
}
