//! Fuzz target: arbitrary bytes as capsa's own small files (`.capsa/store.toml`, a crate's
//! `.capsa-crate.json`, a capsule's version hint, the offline stub) never panic: every
//! operation that reads them returns `Ok` or a clean, one-line error with an expected code.
mod fuzz_support;

use std::fs;
use std::path::Path;

use capsa::{BumpOptions, Error, ErrorCode, Store, StoreOptions};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const ID: &str = "656796239c1b981568180614";

/// Bytes that look like the file sometimes (so parsers get past the first byte), else noise.
fn contents(samples: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        proptest::sample::select(samples).prop_map(|s| s.as_bytes().to_vec()),
        (
            proptest::sample::select(samples),
            proptest::collection::vec(any::<u8>(), 0..16),
            any::<prop::sample::Index>()
        )
            .prop_map(|(s, noise, at)| {
                let mut b = s.as_bytes().to_vec();
                let i = at.index(b.len() + 1);
                b.splice(i..i, noise);
                b
            }),
    ]
}

/// A clean error: one line, and one of `allowed` codes.
fn clean(e: &Error, allowed: &[ErrorCode]) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(!text.contains('\n'), "error spans lines: {text:?}");
    prop_assert!(
        allowed.contains(&e.code()),
        "unexpected code {:?}: {text}",
        e.code()
    );
    Ok(())
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("show"), StoreOptions::default()).unwrap();
    (dir, store)
}

fn replace(path: &Path, bytes: &[u8]) {
    let _ = fs::remove_file(path);
    fs::write(path, bytes).unwrap();
}

#[test]
fn store_config_bytes_open_or_refuse_cleanly() {
    const SAMPLES: &[&str] = &[
        "schema = \"1.0.0\"\npadding = 3\n",
        "schema = \"9.0.0\"\n",
        "schema = \"1.0.0\"\npadding = 99\n",
        "padding = -1\n",
        "[x]\ny = 1\n",
    ];
    let (_d, store) = store();
    let cfg = store.root().join(".capsa/store.toml");
    fuzz_support::run("store_toml", 256, contents(SAMPLES), |bytes| {
        replace(&cfg, &bytes);
        if let Err(e) = Store::open(store.root()) {
            clean(
                &e,
                &[
                    ErrorCode::Corrupt,
                    ErrorCode::Unsupported,
                    ErrorCode::InvalidStore,
                    ErrorCode::InvalidArgument,
                    ErrorCode::TooLarge,
                ],
            )?;
        }
        Ok(())
    });
}

#[test]
fn crate_metadata_bytes_read_or_refuse_cleanly() {
    const SAMPLES: &[&str] = &[
        "{}",
        "{\"schema\":1,\"version\":\"v001\",\"published\":true}",
        "{\"schema\":999}",
        "[]",
        "null",
    ];
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let k = capsule.bump(BumpOptions::default()).unwrap();
    let meta = k.path().join(capsa::krate::METADATA_FILE);
    fuzz_support::run("crate_metadata", 256, contents(SAMPLES), |bytes| {
        replace(&meta, &bytes);
        let allowed = [
            ErrorCode::Corrupt,
            ErrorCode::Unsupported,
            ErrorCode::TooLarge,
            ErrorCode::Sealed,
            ErrorCode::NotFound,
        ];
        if let Err(e) = k.metadata() {
            clean(&e, &allowed)?;
        }
        if let Err(e) = capsule.latest() {
            clean(&e, &allowed)?;
        }
        if let Err(e) = store.fsck(false) {
            clean(&e, &allowed)?;
        }
        Ok(())
    });
}

#[test]
fn version_hint_bytes_never_break_bump() {
    const SAMPLES: &[&str] = &["1\n", "0\n", "4294967295\n", "-1", "99999999999", " 2 "];
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let head = capsule.path().join(".capsa/head");
    capsule.bump(BumpOptions::default()).unwrap();
    fuzz_support::run("version_hint", 128, contents(SAMPLES), |bytes| {
        let before = capsule.crates().unwrap().len();
        replace(&head, &bytes);
        // Whatever the hint says, the next bump takes the number right above the top.
        let top = capsule
            .crates()
            .unwrap()
            .last()
            .map(|c| c.version().number());
        let k = capsule
            .bump(BumpOptions::default())
            .map_err(|e| TestCaseError::fail(format!("bump failed with hint {bytes:?}: {e}")))?;
        prop_assert_eq!(Some(k.version().number() - 1), top);
        prop_assert_eq!(capsule.crates().unwrap().len(), before + 1);
        if let Err(e) = store.fsck(false) {
            clean(&e, &[ErrorCode::Corrupt, ErrorCode::TooLarge])?;
        }
        Ok(())
    });
}

#[test]
fn offline_stub_bytes_read_or_refuse_cleanly() {
    const SAMPLES: &[&str] = &[
        "{}",
        "{\"archive\":\"/x.zip\",\"sha256\":\"00\"}",
        "{\"archive\":42}",
        "[]",
    ];
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    capsule.bump(BumpOptions::default()).unwrap();
    let stub = capsule.path().join(".capsa/offline.json");
    fuzz_support::run("offline_stub", 256, contents(SAMPLES), |bytes| {
        replace(&stub, &bytes);
        let allowed = [
            ErrorCode::Corrupt,
            ErrorCode::TooLarge,
            ErrorCode::InvalidArgument,
            ErrorCode::Unsupported,
        ];
        if let Err(e) = capsule.offline_stub() {
            clean(&e, &allowed)?;
        }
        if let Err(e) = capsule.bump(BumpOptions::default()) {
            clean(&e, &allowed)?;
        }
        Ok(())
    });
}

/// The edge the hint fuzzing found: a crate at the largest number leaves no number for the
/// next bump, which must refuse cleanly (no overflow panic, no wrap to `v0`).
#[test]
fn a_crate_at_the_largest_version_makes_bump_refuse_cleanly() {
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    capsule.bump(BumpOptions::default()).unwrap();
    fs::create_dir(capsule.path().join("v4294967295")).unwrap();
    let _ = fs::remove_file(capsule.path().join(".capsa/head"));
    let e = capsule.bump(BumpOptions::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidVersion, "{e}");
    assert!(e.to_string().contains("largest"), "{e}");
}

/// A sealed private value as the state store holds it (a file in the store, or a row anyone
/// with database access can change): damaged, truncated or foreign values never open to
/// anything but the sealed value, and fail as one clean `INVALID_ARGUMENT` line.
#[test]
fn sealed_values_open_or_refuse_cleanly() {
    use capsa::staging::SealKey;
    let key = SealKey::ephemeral();
    let good = key.seal("DB_PASSWORD", "S3cretPassw0rdValue42");
    let stored = prop_oneof![
        any::<String>(),
        (any::<prop::sample::Index>(), any::<char>()).prop_map({
            let good = good.clone();
            move |(at, c)| {
                let mut chars: Vec<char> = good.chars().collect();
                let i = at.index(chars.len());
                chars[i] = c;
                chars.into_iter().collect::<String>()
            }
        }),
        any::<prop::sample::Index>().prop_map({
            let good = good.clone();
            move |at| good[..at.index(good.len())].to_string()
        }),
    ];
    fuzz_support::run("sealed_value", 512, stored, |s| {
        match key.open("DB_PASSWORD", &s) {
            // Only the sealed bytes open (hex digits may differ in case), and to the value.
            Ok(clear) => prop_assert_eq!(clear, "S3cretPassw0rdValue42"),
            Err(e) => {
                clean(&e, &[ErrorCode::InvalidArgument])?;
                prop_assert!(!e.to_string().contains("S3cret"), "{}", e);
            }
        }
        Ok(())
    });
}
