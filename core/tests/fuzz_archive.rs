//! Fuzz targets for the archive reader (the zip local headers, central directory, end
//! records and capsa's metadata entries): damaged archives never panic `list`, `verify` or
//! `restore`. Each damaged archive either fails `verify` and `restore` with a clean,
//! one-line error and leaves nothing in the store, or verifies and restores the very tree
//! that was archived.
//!
//! Two targets: random byte edits and truncations anywhere (biased to the tail, where the
//! structure lives), and structured edits that set one field of a central-directory entry,
//! a local header or the end record to an arbitrary or edge value.

#[path = "archive_support/mod.rs"]
mod common;
mod fuzz_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use capsa::archive::{self, RestoreOptions};
use capsa::{ErrorCode, Store, StoreOptions};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

struct Fixture {
    _dir: tempfile::TempDir,
    bytes: Vec<u8>,
    tree: BTreeMap<String, String>,
    /// Where the central directory entries start, and where the end record starts.
    central: Vec<usize>,
    local: Vec<usize>,
    eocd: usize,
    work: PathBuf,
}

fn le16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, tree) = common::small_archive(dir.path());
        // The archive is small and has no comment: the end record is the last 22 bytes.
        let eocd = bytes.len() - 22;
        assert_eq!(le32(&bytes, eocd), 0x0605_4b50, "end record");
        let (count, mut at) = (le16(&bytes, eocd + 10), le32(&bytes, eocd + 16));
        let (mut central, mut local) = (Vec::new(), Vec::new());
        for _ in 0..count {
            assert_eq!(le32(&bytes, at), 0x0201_4b50, "central entry");
            central.push(at);
            local.push(le32(&bytes, at + 42));
            at += 46 + le16(&bytes, at + 28) + le16(&bytes, at + 30) + le16(&bytes, at + 32);
        }
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        Fixture {
            bytes,
            tree,
            central,
            local,
            eocd,
            work,
            _dir: dir,
        }
    })
}

/// Every code a damaged archive may be refused with.
const REFUSALS: &[ErrorCode] = &[
    ErrorCode::Corrupt,
    ErrorCode::Unsupported,
    ErrorCode::InvalidArgument,
    ErrorCode::InvalidName,
    ErrorCode::InvalidVersion,
    ErrorCode::UnsafePath,
];

/// The property: `list`, `verify` and `restore` return; `restore` succeeds exactly when
/// `verify` does, and then restores the archived tree; a refusal is one clean line and
/// leaves neither a capsule nor scratch files behind.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let f = fixture();
    let tmp = tempfile::tempdir_in(&f.work).unwrap();
    let zip = tmp.path().join("d.zip");
    fs::write(&zip, bytes).unwrap();
    let _ = archive::list(&zip);
    let verified = archive::verify(&zip);
    let store = Store::init(tmp.path().join("s"), StoreOptions::default()).unwrap();
    match archive::restore(&zip, &store, RestoreOptions::default()) {
        Ok(c) => {
            prop_assert!(verified.is_ok(), "restore took an archive verify refuses");
            prop_assert_eq!(&common::tree_hash(c.path()), &f.tree);
        }
        Err(e) => {
            let text = e.to_string();
            prop_assert!(
                verified.is_err(),
                "verify passed an archive restore refuses: {}",
                text
            );
            prop_assert!(!text.contains('\n'), "error spans lines: {:?}", text);
            prop_assert!(
                REFUSALS.contains(&e.code()),
                "code {:?}: {}",
                e.code(),
                text
            );
            prop_assert_eq!(common::names_in(store.root()), [".capsa"]);
        }
    }
    prop_assert!(common::names_in(&store.scratch_dir().unwrap()).is_empty());
    Ok(())
}

#[test]
fn damaged_archives_fail_cleanly() {
    let strategy = (
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        proptest::option::of(any::<prop::sample::Index>()),
        any::<bool>(),
    );
    fuzz_support::run("archive_bytes", 64, strategy, |(edits, cut, tail_edit)| {
        let f = fixture();
        let mut bytes = f.bytes.clone();
        let n = bytes.len();
        for (i, v) in &edits {
            // Half the time aim at the central directory and end records.
            let pos = if tail_edit {
                n - 1 - i.index(n.min(4096))
            } else {
                i.index(n)
            };
            bytes[pos] = *v;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(n));
        }
        check(&bytes)
    });
}

/// Which record a structured edit lands in.
#[derive(Debug, Clone, Copy)]
enum Record {
    Central,
    Local,
    End,
}

/// Field offsets and widths: central entry (46-byte header), local header (30), end record.
const CENTRAL_FIELDS: &[(usize, usize)] = &[
    (4, 2),  // version made by
    (6, 2),  // version needed
    (8, 2),  // flags
    (10, 2), // method
    (12, 4), // time, date
    (16, 4), // crc
    (20, 4), // compressed size
    (24, 4), // uncompressed size
    (28, 2), // name length
    (30, 2), // extra length
    (32, 2), // comment length
    (34, 2), // disk
    (36, 2), // internal attributes
    (38, 4), // external attributes (the unix mode)
    (42, 4), // local header offset
];
const LOCAL_FIELDS: &[(usize, usize)] = &[
    (4, 2),
    (6, 2),
    (8, 2),
    (14, 4),
    (18, 4),
    (22, 4),
    (26, 2),
    (28, 2),
];
const END_FIELDS: &[(usize, usize)] = &[(4, 2), (6, 2), (8, 2), (10, 2), (12, 4), (16, 4), (20, 2)];

/// A value for a field: an edge (0, max, max-1, 1) or the old value nudged, or anything.
fn value() -> impl Strategy<Value = (u8, u32)> {
    (0u8..6, any::<u32>())
}

#[test]
fn central_directory_fields_fail_cleanly() {
    let record = prop_oneof![
        Just(Record::Central),
        Just(Record::Local),
        Just(Record::End)
    ];
    let edit = (
        record,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        value(),
    );
    fuzz_support::run(
        "archive_central_directory",
        96,
        proptest::collection::vec(edit, 1..3),
        |edits| {
            let f = fixture();
            let mut bytes = f.bytes.clone();
            for (record, entry, field, (kind, raw)) in edits {
                let (base, fields) = match record {
                    Record::Central => (f.central[entry.index(f.central.len())], CENTRAL_FIELDS),
                    Record::Local => (f.local[entry.index(f.local.len())], LOCAL_FIELDS),
                    Record::End => (f.eocd, END_FIELDS),
                };
                let (off, width) = fields[field.index(fields.len())];
                let at = base + off;
                let max: u64 = if width == 2 { 0xFFFF } else { 0xFFFF_FFFF };
                let old = if width == 2 {
                    le16(&bytes, at) as u64
                } else {
                    le32(&bytes, at) as u64
                };
                let new = match kind {
                    0 => 0,
                    1 => max,
                    2 => max - 1,
                    3 => old.wrapping_add(1) & max,
                    4 => old.wrapping_sub(1) & max,
                    _ => u64::from(raw) & max,
                };
                bytes[at..at + width].copy_from_slice(&new.to_le_bytes()[..width]);
            }
            check(&bytes)
        },
    );
}
