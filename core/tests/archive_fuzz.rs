//! Damaged archives never panic `list`, `verify` or `restore`: random byte changes and
//! truncations of a real archive either fail `verify` and `restore` with an error, or verify
//! and restore the very tree that was archived.

#[path = "archive_support/mod.rs"]
mod common;

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use capsa::archive::{self, ArchiveOptions, RestoreOptions};
use capsa::{Store, StoreOptions};
use proptest::prelude::*;

struct Fixture {
    _dir: tempfile::TempDir,
    bytes: Vec<u8>,
    tree: std::collections::BTreeMap<String, String>,
    work: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (dir, store) = common::new_store();
        let capsule = common::sample_capsule(&store, "fuzz");
        let zip = dir.path().join("f.zip");
        archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        Fixture {
            bytes: fs::read(&zip).unwrap(),
            tree: common::tree_hash(capsule.path()),
            work,
            _dir: dir,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn damaged_archives_fail_cleanly(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        tail_edit in any::<bool>(),
    ) {
        let f = fixture();
        let mut bytes = f.bytes.clone();
        let n = bytes.len();
        for (i, v) in &edits {
            // Half the time aim at the central directory and end records, where the
            // structure lives.
            let pos = if tail_edit { n - 1 - i.index(n.min(4096)) } else { i.index(n) };
            bytes[pos] = *v;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(n));
        }
        let tmp = tempfile::tempdir_in(&f.work).unwrap();
        let zip = tmp.path().join("d.zip");
        fs::write(&zip, &bytes).unwrap();
        let _ = archive::list(&zip);
        let verified = archive::verify(&zip).is_ok();
        let store = Store::init(tmp.path().join("s"), StoreOptions::default()).unwrap();
        let restored = archive::restore(&zip, &store, RestoreOptions::default());
        match restored {
            // What restores is what was archived, and verify agrees.
            Ok(c) => {
                prop_assert!(verified, "restore took an archive verify refuses");
                prop_assert_eq!(&common::tree_hash(c.path()), &f.tree);
            }
            Err(_) => {
                prop_assert!(!verified, "verify passed an archive restore refuses");
                prop_assert!(!store.root().join("fuzz").exists());
            }
        }
        prop_assert!(common::names_in(&store.scratch_dir().unwrap()).is_empty());
    }
}
