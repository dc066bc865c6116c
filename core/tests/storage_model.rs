//! Bump, publish, seal and queries through the public API.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use capsa::{BumpOptions, ErrorCode, Section, Store, StoreOptions, Version};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("show"), StoreOptions::default()).unwrap();
    (dir, store)
}

fn assert_complete(path: &Path) {
    for s in Section::ALL {
        assert!(
            path.join(s.as_str()).is_dir(),
            "{} lacks {s}",
            path.display()
        );
    }
    assert!(path.join(capsa::krate::METADATA_FILE).is_file());
    assert!(!path.join(capsa::krate::INCOMPLETE_MARKER).exists());
}

#[test]
fn threads_bumping_at_once_get_distinct_contiguous_versions() {
    let (_d, store) = store();
    let capsule = Arc::new(store.create_capsule("656796239c1b981568180614").unwrap());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let capsule = Arc::clone(&capsule);
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| capsule.bump(BumpOptions::default()).unwrap().version())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<Version> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let distinct: BTreeSet<u32> = all.iter().map(|v| v.number()).collect();
    assert_eq!(all.len(), 400);
    assert_eq!(distinct, (1..=400).collect::<BTreeSet<u32>>());
    let crates = capsule.crates().unwrap();
    assert_eq!(crates.len(), 400);
    assert_eq!(crates[0].version_str(), "v001");
    assert_eq!(crates[399].version_str(), "v400");
    for c in &crates {
        assert_complete(c.path());
    }
    assert_eq!(capsule.latest().unwrap().unwrap().version_str(), "v400");
}

#[test]
fn versions_grow_past_the_padding() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(
        dir.path(),
        StoreOptions {
            padding: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let c = store.create_capsule("wide").unwrap();
    let names: Vec<String> = (0..11)
        .map(|_| c.bump(BumpOptions::default()).unwrap().version_str())
        .collect();
    assert_eq!(names[0], "v1");
    assert_eq!(names[9], "v10");
    assert_eq!(c.latest().unwrap().unwrap().version_str(), "v11");
    assert_eq!(
        c.get(Version::parse("v010").unwrap())
            .unwrap()
            .version_str(),
        "v10"
    );
}

#[test]
fn a_lost_hint_costs_a_rescan_not_a_wrong_version() {
    let (_d, store) = store();
    let c = store.create_capsule("hint").unwrap();
    for _ in 0..5 {
        c.bump(BumpOptions::default()).unwrap();
    }
    fs::remove_file(c.path().join(".capsa/head")).unwrap();
    assert_eq!(
        c.bump(BumpOptions::default()).unwrap().version_str(),
        "v006"
    );
    // A hint that lags behind (a slow writer) only costs extra mkdir attempts.
    fs::write(c.path().join(".capsa/head"), "2\n").unwrap();
    assert_eq!(
        c.bump(BumpOptions::default()).unwrap().version_str(),
        "v007"
    );
    assert_eq!(c.latest().unwrap().unwrap().version_str(), "v007");
}

#[test]
fn readers_skip_incomplete_crates() {
    let (_d, store) = store();
    let c = store.create_capsule("half").unwrap();
    c.bump(BumpOptions::default()).unwrap();
    // What a crashed bump leaves: a reserved directory without metadata.
    fs::create_dir(c.path().join("v002")).unwrap();
    assert_eq!(c.crates().unwrap().len(), 1);
    assert_eq!(c.latest().unwrap().unwrap().version_str(), "v001");
    let err = c.get(Version::parse("v002").unwrap()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(
        c.bump(BumpOptions::default()).unwrap().version_str(),
        "v003"
    );
}

#[test]
fn carry_over_renames_version_tokens_and_links_read_only_files() {
    let (_d, store) = store();
    let c = store.create_capsule("sh010").unwrap();
    let v1 = c.bump(BumpOptions::default()).unwrap();
    let scenes = v1.section(Section::Scenes);
    fs::create_dir_all(scenes.join("sub")).unwrap();
    fs::write(scenes.join("sh010_v001.ma"), b"maya").unwrap();
    fs::write(scenes.join("sub/notes.txt"), b"keep").unwrap();
    fs::write(
        v1.section(Section::Artifacts).join("big.bin"),
        b"not carried",
    )
    .unwrap();
    let ro = scenes.join("cache_v001.abc");
    fs::write(&ro, b"alembic").unwrap();
    let mut perms = fs::metadata(&ro).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(&ro, perms).unwrap();

    let (v2, stats) = c
        .bump_with_stats(BumpOptions {
            carry_over: vec![Section::Scenes],
            comment: Some("version up".into()),
            ..Default::default()
        })
        .unwrap();
    let s2 = v2.section(Section::Scenes);
    assert_eq!(fs::read(s2.join("sh010_v002.ma")).unwrap(), b"maya");
    assert_eq!(fs::read(s2.join("sub/notes.txt")).unwrap(), b"keep");
    assert_eq!(fs::read(s2.join("cache_v002.abc")).unwrap(), b"alembic");
    assert!(!s2.join("sh010_v001.ma").exists());
    assert!(!v2.section(Section::Artifacts).join("big.bin").exists());
    assert_eq!(stats.renamed, 2);
    assert_eq!(stats.reflinked + stats.hardlinked + stats.copied, 3);
    // Which method ran depends on the filesystem, never on the file: a copy-on-write one
    // clones all three; elsewhere the read-only cache is hard-linked and the two writable
    // files are copied. Nothing else is allowed (a writable file is never hard-linked).
    let methods = (stats.reflinked, stats.hardlinked, stats.copied);
    assert!(matches!(methods, (3, 0, 0) | (0, 1, 2)), "{stats:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| fs::metadata(p).unwrap().ino();
        let linked = ino(&ro) == ino(&s2.join("cache_v002.abc"));
        assert_eq!(linked, stats.hardlinked == 1, "{stats:?}");
        assert_ne!(
            ino(&scenes.join("sh010_v001.ma")),
            ino(&s2.join("sh010_v002.ma"))
        );
    }
    // The writable scene is never hard-linked: editing the new one leaves the old intact.
    fs::write(s2.join("sh010_v002.ma"), b"edited").unwrap();
    assert_eq!(fs::read(scenes.join("sh010_v001.ma")).unwrap(), b"maya");
    let meta = v2.metadata().unwrap();
    assert_eq!(meta.parent.as_deref(), Some("v001"));
    assert_eq!(meta.comment.as_deref(), Some("version up"));
}

#[test]
fn publish_is_read_only_never_overwrites_and_seal_locks_the_crate() {
    let (d, store) = store();
    let c = store.create_capsule("pub").unwrap();
    let v1 = c.bump(BumpOptions::default()).unwrap();
    let src = d.path().join("review.mov");
    fs::write(&src, b"movie").unwrap();
    let p = v1.publish(&src, None).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"movie");
    assert!(fs::metadata(&p).unwrap().permissions().readonly());
    let p2 = v1
        .publish(&src, Some(Path::new("review/final.mov")))
        .unwrap();
    assert!(p2.ends_with("publishes/review/final.mov"));

    fs::write(&src, b"other").unwrap();
    let err = v1.publish(&src, None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::AlreadyExists);
    assert_eq!(
        fs::read(&p).unwrap(),
        b"movie",
        "existing publish untouched"
    );

    for bad in ["../escape.mov", "/abs.mov", ".capsa-crate.json"] {
        let err = v1.publish(&src, Some(Path::new(bad))).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidName, "{bad}");
    }
    assert!(!store.root().join("pub/escape.mov").exists());
    let missing = v1.publish(d.path().join("nope.exr"), None).unwrap_err();
    assert_eq!(missing.code(), ErrorCode::NotFound);

    assert!(c.latest_published().unwrap().is_none());
    v1.seal().unwrap();
    assert!(v1.is_published().unwrap());
    assert_eq!(c.latest_published().unwrap().unwrap().version_str(), "v001");
    let err = v1.publish(&src, Some(Path::new("late.mov"))).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Sealed);
    assert!(!v1.section(Section::Publishes).join("late.mov").exists());
    assert_eq!(v1.set_comment("x").unwrap_err().code(), ErrorCode::Sealed);
    v1.seal().unwrap();

    // A newer unpublished crate does not change latest_published.
    c.bump(BumpOptions::default()).unwrap();
    assert_eq!(c.latest().unwrap().unwrap().version_str(), "v002");
    assert_eq!(c.latest_published().unwrap().unwrap().version_str(), "v001");
    let entries: Vec<_> = fs::read_dir(v1.section(Section::Publishes))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        entries.iter().all(|n| !n.starts_with(".capsa-tmp")),
        "{entries:?}"
    );
}

#[test]
fn fsck_finds_and_repairs_what_a_crash_leaves() {
    let (_d, store) = store();
    let c = store.create_capsule("crash").unwrap();
    let v1 = c.bump(BumpOptions::default()).unwrap();
    // An abandoned bump: a crate directory with a marker of a process that is gone.
    let v2 = c.path().join("v002");
    fs::create_dir_all(v2.join("scenes")).unwrap();
    fs::write(v2.join("scenes/partial.ma"), b"half").unwrap();
    fs::write(
        v2.join(capsa::krate::INCOMPLETE_MARKER),
        "otherhost 999999 0\n",
    )
    .unwrap();
    filetime_old(&v2.join(capsa::krate::INCOMPLETE_MARKER));
    // An abandoned publish temp file.
    let tmp = v1
        .section(Section::Publishes)
        .join(".capsa-tmp-publish-otherhost-999999-0-0");
    fs::write(&tmp, b"partial").unwrap();
    filetime_old(&tmp);
    fs::remove_dir(v1.section(Section::Artifacts)).unwrap();

    let report = store.fsck(false).unwrap();
    let kinds: Vec<_> = report.problems.iter().map(|p| p.kind).collect();
    use capsa::ProblemKind::*;
    assert!(kinds.contains(&IncompleteCrate), "{report:?}");
    assert!(kinds.contains(&StaleTemp), "{report:?}");
    assert!(kinds.contains(&MissingSection), "{report:?}");
    assert!(!report.is_clean());
    assert!(
        v2.join("scenes/partial.ma").exists(),
        "report-only changes nothing"
    );

    let repaired = store.fsck(true).unwrap();
    assert!(repaired.is_clean(), "{repaired:?}");
    assert!(store.fsck(false).unwrap().problems.is_empty());
    let crates: Vec<String> = c
        .crates()
        .unwrap()
        .iter()
        .map(|c| c.version_str())
        .collect();
    assert_eq!(crates, ["v001", "v002"]);
    let meta = c
        .get(Version::parse("v002").unwrap())
        .unwrap()
        .metadata()
        .unwrap();
    // Repair never deletes a user's file: the crate keeps it and gets rebuilt metadata.
    assert!(meta.tags.contains(&capsa::fsck::REBUILT_TAG.to_string()));
    assert!(meta.rebuilt);
    assert!(v2.join("scenes/partial.ma").exists());
    assert!(!tmp.exists());
    assert_eq!(
        c.bump(BumpOptions::default()).unwrap().version_str(),
        "v003"
    );
}

/// Age a file past the fsck grace period (for work owned by another host).
fn filetime_old(path: &Path) {
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(old).unwrap();
}

#[test]
fn fsck_leaves_work_in_progress_alone() {
    let (_d, store) = store();
    let c = store.create_capsule("busy").unwrap();
    let v1 = c.path().join("v001");
    fs::create_dir(&v1).unwrap();
    // Owned by this very (live) process on this host.
    fs::write(
        v1.join(capsa::krate::INCOMPLETE_MARKER),
        format!("{} {} 0\n", hostname_tag(), std::process::id()),
    )
    .unwrap();
    let report = store.fsck(true).unwrap();
    assert!(report
        .problems
        .iter()
        .any(|p| p.kind == capsa::ProblemKind::InProgressCrate && !p.repaired));
    assert!(!v1.join(capsa::krate::METADATA_FILE).exists());
}

fn hostname_tag() -> String {
    // Same rule as capsa's temp names: read it back from one.
    let p = capsa::atomic::temp_path(Path::new("/"), "x");
    let name = p.file_name().unwrap().to_string_lossy().into_owned();
    let parts: Vec<&str> = name.rsplit('-').collect();
    parts[3].to_string()
}

#[test]
fn publish_a_frame_sequence_whole_and_list_sequences() {
    let (d, store) = store();
    let c = store.create_capsule("seqs").unwrap();
    let v1 = c.bump(BumpOptions::default()).unwrap();
    let renders = d.path().join("renders");
    fs::create_dir(&renders).unwrap();
    for f in (1001..=1010).filter(|f| *f != 1005) {
        fs::write(renders.join(format!("plate.{f}.exr")), f.to_string()).unwrap();
    }
    fs::write(renders.join("plate_v001.mov"), b"mov").unwrap();

    // Frames found beside the pattern.
    let dir = v1.publish(renders.join("plate.####.exr"), None).unwrap();
    assert!(dir.ends_with("publishes/plate"));
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 9);
    assert_eq!(names[0], "plate.1001.exr");
    assert!(fs::metadata(dir.join("plate.1010.exr"))
        .unwrap()
        .permissions()
        .readonly());
    // Same again: the directory exists.
    let err = v1
        .publish(renders.join("plate.####.exr"), None)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AlreadyExists);
    // Explicit frames: a missing one refuses the whole publish, nothing appears.
    let err = v1
        .publish(
            renders.join("plate.1001-1006#.exr"),
            Some(Path::new("plate_b")),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(err.to_string().contains("plate.1005.exr"), "{err}");
    assert!(!v1.section(Section::Publishes).join("plate_b").exists());
    let leftovers: Vec<_> = fs::read_dir(v1.section(Section::Publishes))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    v1.publish(
        renders.join("plate.1001-1004#.exr"),
        Some(Path::new("plate_b")),
    )
    .unwrap();
    // A pattern whose frames do not exist at all.
    let err = v1
        .publish(renders.join("other.####.exr"), None)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);

    // Sequences in a section, subdirectories included, with the gap reported.
    let art = v1.section(Section::Artifacts);
    fs::create_dir(art.join("beauty")).unwrap();
    for f in [1, 2, 4] {
        fs::write(art.join(format!("beauty/sh010.{f:04}.exr")), b"").unwrap();
    }
    fs::write(art.join("sh010_v001.nk"), b"").unwrap();
    let seqs = v1.sequences(Section::Artifacts).unwrap();
    assert_eq!(seqs.len(), 1, "{seqs:?}");
    assert_eq!(seqs[0].head, "beauty/sh010.");
    assert_eq!(seqs[0].missing().to_string(), "3");
    let published = v1.sequences(Section::Publishes).unwrap();
    assert_eq!(published.len(), 2);
}

#[test]
fn store_lists_every_crates_sequences_in_order() {
    let (_d, store) = store();
    // Two capsules (created out of order), two crates each, one incomplete crate, a hidden
    // directory and a plain file that is not a sequence.
    for id in ["zeta", "alpha"] {
        let c = store.create_capsule(id).unwrap();
        for v in 1..=2 {
            let k = c.bump(BumpOptions::default()).unwrap();
            let art = k.section(Section::Artifacts);
            fs::create_dir_all(art.join("beauty")).unwrap();
            fs::create_dir_all(art.join(".hidden")).unwrap();
            for f in [1, 2, 4] {
                fs::write(art.join(format!("beauty/{id}.{f:04}.exr")), b"").unwrap();
                fs::write(art.join(format!(".hidden/{id}.{f:04}.exr")), b"").unwrap();
            }
            fs::write(
                k.section(Section::Scenes).join(format!("{id}_v{v}.ma")),
                b"",
            )
            .unwrap();
            fs::write(k.section(Section::Scenes).join("cam.10.abc"), b"").unwrap();
        }
    }
    fs::create_dir(store.capsule("alpha").unwrap().path().join("v009")).unwrap();
    let found = store.sequences().unwrap();
    let rows: Vec<String> = found
        .iter()
        .map(|s| {
            format!(
                "{}/{}/{}/{}",
                s.capsule,
                s.version,
                s.section.as_str(),
                s.sequence.format(capsa::PadStyle::Hash)
            )
        })
        .collect();
    let mut expected = Vec::new();
    for id in ["alpha", "zeta"] {
        for v in ["v001", "v002"] {
            expected.push(format!("{id}/{v}/artifacts/beauty/{id}.1-2,4#.exr"));
            expected.push(format!("{id}/{v}/scenes/cam.10##.abc"));
        }
    }
    assert_eq!(rows, expected);
    assert_eq!(found[0].sequence.frames.len(), 3);
    // Each crate's part is what Crate::sequences gives for it.
    let k = store
        .capsule("zeta")
        .unwrap()
        .get(Version::new(2).unwrap())
        .unwrap();
    assert_eq!(
        k.sequences(Section::Artifacts).unwrap(),
        vec![found[6].sequence.clone()]
    );
}
