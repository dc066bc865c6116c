//! Round trips, corruption, truncation, cancellation, offline/retrieve.

#[path = "archive_support/mod.rs"]
mod common;

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use capsa::archive::{self, ArchiveOptions, CancelToken, Policy, RestoreOptions};
use capsa::{BumpOptions, ErrorCode, Store, StoreOptions};
use common::*;

fn opts(policy: Policy) -> ArchiveOptions {
    ArchiveOptions {
        policy: Some(policy),
        ..Default::default()
    }
}

#[test]
fn round_trip_keeps_bytes_names_empty_dirs_and_exec_bits() {
    for policy in [Policy::Auto, Policy::Store, Policy::Deflate] {
        let (dir, store) = new_store();
        let capsule = sample_capsule(&store, "656796239c1b981568180614");
        let before = tree_hash(capsule.path());
        assert!(before.values().any(|v| v.ends_with("exec=111")));
        assert!(before.keys().any(|k| k.ends_with("inner_empty")));
        let zip = dir.path().join("c.zip");
        let seen = Arc::new(AtomicU64::new(0));
        let s2 = seen.clone();
        let report = archive::archive(
            &capsule,
            &zip,
            ArchiveOptions {
                progress: Some(Arc::new(move |p| {
                    assert!(p.bytes_done <= p.bytes_total && p.files_done <= p.files_total);
                    s2.store(p.bytes_done, Ordering::Relaxed);
                })),
                ..opts(policy)
            },
        )
        .unwrap();
        assert!(report.verified);
        assert_eq!(seen.load(Ordering::Relaxed), report.bytes);
        assert_eq!(report.symlinks, 1);
        match policy {
            Policy::Store => assert_eq!(report.deflated, 0),
            Policy::Deflate => assert!(report.deflated >= 5, "{report:?}"),
            Policy::Auto => assert!(report.deflated > 0 && report.stored > 0),
        }
        let v = archive::verify(&zip).unwrap();
        assert_eq!(v.files, report.files);
        assert_eq!(v.tool_version, env!("CARGO_PKG_VERSION"));

        // Restore into a second store and compare the trees.
        let other = Store::init(dir.path().join("other"), StoreOptions::default()).unwrap();
        let restored = archive::restore(&zip, &other, RestoreOptions::default()).unwrap();
        assert_eq!(tree_hash(restored.path()), before, "policy {policy:?}");
        assert_eq!(restored.crates().unwrap().len(), 2);
        assert!(names_in(&other.scratch_dir().unwrap()).is_empty());

        // Existing capsule: refused, then replaced on request.
        let err = archive::restore(&zip, &other, RestoreOptions::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::AlreadyExists);
        fs::write(restored.path().join("stray"), b"x").unwrap();
        let again = archive::restore(
            &zip,
            &other,
            RestoreOptions {
                replace: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(tree_hash(again.path()), before);
        assert!(names_in(&other.scratch_dir().unwrap()).is_empty());
    }
}

#[test]
fn archive_layout_and_refusals() {
    let (dir, store) = new_store();
    let capsule = sample_capsule(&store, "shot010");
    let zip = dir.path().join("c.zip");
    archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    let entries = archive::list(&zip).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names[0], "shot010/");
    assert!(names.contains(&"manifest-sha256.txt"));
    assert!(names.contains(&"capsa-archive.json"));
    assert!(names.contains(&"shot010/v001/scenes/empty/inner_empty/"));
    let exr = entries.iter().find(|e| e.name.ends_with(".exr")).unwrap();
    assert_eq!(exr.method, "stored");
    let ma = entries
        .iter()
        .find(|e| e.name.ends_with("v001.ma"))
        .unwrap();
    assert_eq!(ma.method, "deflated");
    let sh = entries.iter().find(|e| e.name.ends_with("run.sh")).unwrap();
    assert_eq!(sh.mode.unwrap() & 0o777, 0o755);

    // Existing destination: refused and untouched; replace on request.
    let err = archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::AlreadyExists);
    archive::archive(
        &capsule,
        &zip,
        ArchiveOptions {
            replace: true,
            ..Default::default()
        },
    )
    .unwrap();

    // A symlink leaving the capsule is refused at archive time.
    #[cfg(unix)]
    {
        let v = capsule.latest().unwrap().unwrap();
        std::os::unix::fs::symlink("../../../../etc/passwd", v.path().join("escape")).unwrap();
        let err = archive::archive(
            &capsule,
            dir.path().join("e.zip"),
            ArchiveOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unsupported);
        assert!(err.to_string().contains("outside the capsule"), "{err}");
        assert!(!dir.path().join("e.zip").exists());
        assert_eq!(names_in(dir.path()).len(), 2, "{:?}", names_in(dir.path()));
    }
}

/// Offsets of each entry's data: (name, data start, compressed size).
fn data_ranges(zip: &std::path::Path) -> Vec<(String, u64, u64)> {
    let bytes = fs::read(zip).unwrap();
    let mut out = Vec::new();
    let mut at = 0usize;
    while u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) == 0x0403_4b50 {
        let u16at = |i: usize| u16::from_le_bytes([bytes[at + i], bytes[at + i + 1]]) as usize;
        let n = u16at(26);
        let m = u16at(28);
        let cs = u32::from_le_bytes(bytes[at + 18..at + 22].try_into().unwrap()) as u64;
        let name = String::from_utf8(bytes[at + 30..at + 30 + n].to_vec()).unwrap();
        let start = at + 30 + n + m;
        out.push((name, start as u64, cs));
        at = start + cs as usize;
    }
    out
}

#[test]
fn one_flipped_byte_names_the_entry_and_restores_nothing() {
    let (dir, store) = new_store();
    let capsule = sample_capsule(&store, "flip");
    let zip = dir.path().join("c.zip");
    archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    let original = fs::read(&zip).unwrap();
    let ranges = data_ranges(&zip);
    let mut checked = 0;
    for (name, start, size) in ranges.iter().filter(|r| r.2 > 0) {
        for pos in [*start, start + size / 2, start + size - 1] {
            let mut bytes = original.clone();
            // Invert the whole byte: the padding bits after a deflate stream's last code carry no
            // data, so a change confined to them is undetectable by any zip tool.
            bytes[pos as usize] ^= 0xFF;
            let bad = dir.path().join("bad.zip");
            fs::write(&bad, &bytes).unwrap();
            let err = match archive::verify(&bad) {
                Ok(_) => panic!("flipping byte {pos} of {name} ({start}+{size}) went unnoticed"),
                Err(e) => e,
            };
            assert_eq!(err.code(), ErrorCode::Corrupt, "{name} @ {pos}: {err}");
            match &err {
                capsa::Error::Corrupt { entry, .. } => {
                    assert_eq!(entry.as_deref(), Some(name.as_str()), "{err}")
                }
                other => panic!("{other}"),
            }
            let target = Store::init(
                dir.path().join(format!("s{checked}")),
                StoreOptions::default(),
            )
            .unwrap();
            let err = archive::restore(&bad, &target, RestoreOptions::default()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
            assert!(!target.root().join("flip").exists());
            assert!(names_in(&target.scratch_dir().unwrap()).is_empty());
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked}");
}

#[test]
fn truncated_archive_fails_clearly_and_restores_nothing() {
    let (dir, store) = new_store();
    let capsule = sample_capsule(&store, "trunc");
    let zip = dir.path().join("c.zip");
    archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    let bytes = fs::read(&zip).unwrap();
    for keep in [
        0,
        10,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 30,
        bytes.len() - 1,
    ] {
        let bad = dir.path().join("t.zip");
        fs::write(&bad, &bytes[..keep]).unwrap();
        let err = archive::verify(&bad).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Corrupt, "{keep}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("truncated"), "{keep}: {msg}");
        let target =
            Store::init(dir.path().join(format!("s{keep}")), StoreOptions::default()).unwrap();
        assert!(archive::restore(&bad, &target, RestoreOptions::default()).is_err());
        assert!(!target.root().join("trunc").exists());
        assert!(names_in(&target.scratch_dir().unwrap()).is_empty());
    }
}

#[test]
fn cancellation_reports_cancelled_and_leaves_nothing() {
    let (dir, store) = new_store();
    let capsule = store.create_capsule("cancel").unwrap();
    let v = capsule.bump(BumpOptions::default()).unwrap();
    for i in 0..8 {
        fs::write(
            v.section(capsa::Section::Scenes).join(format!("f{i}.ma")),
            text(3 << 20),
        )
        .unwrap();
    }
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let zip = out_dir.join("c.zip");
    let token = CancelToken::new();
    let t2 = token.clone();
    let err = archive::archive(
        &capsule,
        &zip,
        ArchiveOptions {
            cancel: token,
            progress: Some(Arc::new(move |p| {
                if p.bytes_done > 4 << 20 {
                    t2.cancel()
                }
            })),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(names_in(&out_dir).is_empty(), "{:?}", names_in(&out_dir));

    archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    let other = Store::init(dir.path().join("other"), StoreOptions::default()).unwrap();
    let token = CancelToken::new();
    let t2 = token.clone();
    let err = archive::restore(
        &zip,
        &other,
        RestoreOptions {
            cancel: token,
            progress: Some(Arc::new(move |p| {
                if p.bytes_done > 4 << 20 {
                    t2.cancel()
                }
            })),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(!other.root().join("cancel").exists());
    assert!(names_in(&other.scratch_dir().unwrap()).is_empty());

    let token = CancelToken::new();
    token.cancel();
    let err = archive::verify_with(
        &zip,
        archive::VerifyOptions {
            cancel: token,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
}

#[test]
fn offline_and_retrieve() {
    let (_dir, store) = new_store();
    let capsule = sample_capsule(&store, "656796239c1b981568180614");
    let before = tree_hash(capsule.path());
    let archives = store.root().join("archives");
    fs::create_dir(&archives).unwrap();
    let zip = archives.join("c.zip");
    archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();

    // An archive that no longer matches the capsule is refused, nothing removed.
    let v2 = capsule.latest().unwrap().unwrap();
    let extra = v2.section(capsa::Section::Scenes).join("later.ma");
    fs::write(&extra, b"new work").unwrap();
    let err = capsule.take_offline(&zip).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Changed, "{err}");
    assert!(extra.exists() && !capsule.is_offline());
    fs::remove_file(&extra).unwrap();

    let stub = capsule.take_offline(&zip).unwrap();
    assert_eq!(stub.archive, "archives/c.zip", "relative inside the store");
    assert_eq!(stub.archive_sha256.len(), 64);
    assert!(capsule.is_offline());
    assert!(capsule.crates().unwrap().is_empty());
    let left = names_in(capsule.path());
    assert_eq!(left, [".capsa"], "only the stub remains");
    let err = capsule.bump(BumpOptions::default()).unwrap_err();
    assert!(err.to_string().contains("offline"), "{err}");
    let err = archive::archive(
        &capsule,
        store.root().join("x.zip"),
        ArchiveOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("offline"), "{err}");

    // A changed archive is refused.
    let saved = fs::read(&zip).unwrap();
    let mut tampered = saved.clone();
    let n = tampered.len();
    tampered[n / 2] ^= 1;
    fs::write(&zip, &tampered).unwrap();
    assert!(store.retrieve("656796239c1b981568180614").is_err());
    assert!(capsule.is_offline());
    fs::write(&zip, &saved).unwrap();

    // The store moves: the relative stub still finds the archive.
    let moved = store.root().with_file_name("moved");
    fs::rename(store.root(), &moved).unwrap();
    let store = Store::open(&moved).unwrap();
    let back = store.retrieve("656796239c1b981568180614").unwrap();
    assert!(!back.is_offline());
    assert_eq!(tree_hash(back.path()), before);
    assert_eq!(back.crates().unwrap().len(), 2);
    back.bump(BumpOptions::default()).unwrap();
    assert!(names_in(&store.scratch_dir().unwrap()).is_empty());
}

#[test]
fn async_forms_run_on_the_shared_runtime() {
    let (dir, store) = new_store();
    let capsule = sample_capsule(&store, "asyncy");
    let zip = dir.path().join("a.zip");
    let report = capsa::runtime::block_on(archive::archive_async(
        capsule,
        zip.clone(),
        ArchiveOptions::default(),
    ))
    .unwrap();
    let v =
        capsa::runtime::block_on(archive::verify_async(zip.clone(), Default::default())).unwrap();
    assert_eq!(report.files, v.files);
    // The blocking forms also work from a thread of the runtime's blocking pool.
    let z2 = zip.clone();
    let nested = capsa::runtime::block_on(async move {
        capsa::runtime::runtime()
            .spawn_blocking(move || archive::verify(&z2))
            .await
            .unwrap()
    })
    .unwrap();
    assert_eq!(nested.files, v.files);
    let other = Store::init(dir.path().join("o"), StoreOptions::default()).unwrap();
    capsa::runtime::block_on(archive::restore_async(zip, other, Default::default())).unwrap();
}
