//! Issue 16 "Nothing lost, nothing escapes": a store that holds hostile or damaged entries.
//! Every operation that could hang runs under a timeout guard so a regression fails.

use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use capsa::{BumpOptions, ErrorCode, ProblemKind, Section, Store, StoreOptions};

const ID: &str = "656796239c1b981568180614";

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("show"), StoreOptions::default()).unwrap();
    (dir, store)
}

/// Run `f` in a thread; fail the test instead of hanging when it takes more than 20 s.
fn guarded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what} hung (more than 20 s)"))
}

#[cfg(unix)]
fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn age(p: &Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    fs::File::open(p).unwrap().set_modified(t).unwrap();
}

fn all_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                out.push(e.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

// ---- item 2: repair never deletes user files ----

#[test]
fn repair_keeps_every_file_of_a_crate_that_lost_its_metadata() {
    let (d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let k = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(k.section(Section::Artifacts).join("render.exr"), b"pixels").unwrap();
    fs::create_dir(k.section(Section::Scenes).join("sub")).unwrap();
    fs::write(k.section(Section::Scenes).join("sub/shot.ma"), b"scene").unwrap();
    let src = d.path().join("src.txt");
    fs::write(&src, b"published").unwrap();
    k.publish(&src, None).unwrap();
    fs::remove_file(k.path().join(capsa::krate::METADATA_FILE)).unwrap();
    age(k.path(), 2 * 3600);
    let before = all_files(k.path());

    let report = store.fsck(true).unwrap();
    let p = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::IncompleteCrate)
        .expect("the crate is reported");
    assert!(p.repaired, "{report:?}");
    let mut after = all_files(k.path());
    after.retain(|f| f != capsa::krate::METADATA_FILE);
    assert_eq!(after, before, "repair deleted user files");
    let k = capsule.get(k.version()).unwrap();
    let meta = k.metadata().unwrap();
    assert!(meta.rebuilt, "{meta:?}");
    assert_eq!(
        fs::read(k.section(Section::Artifacts).join("render.exr")).unwrap(),
        b"pixels"
    );
}

#[test]
fn repair_resets_only_empty_scaffolding_of_a_killed_bump() {
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let k = capsule.bump(BumpOptions::default()).unwrap();
    fs::remove_file(k.path().join(capsa::krate::METADATA_FILE)).unwrap();
    age(k.path(), 2 * 3600);
    let report = store.fsck(true).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let meta = capsule.get(k.version()).unwrap().metadata().unwrap();
    assert!(!meta.rebuilt);
}

// ---- item 11: the version hint is only a hint ----

/// Bump `capsule` and return the new crate's number.
fn bumped(capsule: &capsa::Capsule) -> u32 {
    capsule
        .bump(BumpOptions::default())
        .unwrap()
        .version()
        .number()
}

fn head(store: &Store) -> std::path::PathBuf {
    store.capsule_path(&ID.parse().unwrap()).join(".capsa/head")
}

#[test]
fn a_hint_far_above_the_directory_is_corrected() {
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    for _ in 0..3 {
        capsule.bump(BumpOptions::default()).unwrap();
    }
    fs::write(head(&store), "1000000\n").unwrap();
    let report = store.fsck(false).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::StaleHint),
        "{report:?}"
    );
    let report = store.fsck(true).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(fs::read_to_string(head(&store)).unwrap().trim(), "3");
    fs::write(head(&store), "1000000\n").unwrap();
    assert_eq!(bumped(&capsule), 4);
    assert_eq!(fs::read_to_string(head(&store)).unwrap().trim(), "4");
}

#[test]
fn a_hint_at_the_top_of_the_range_does_not_break_bump() {
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    capsule.bump(BumpOptions::default()).unwrap();
    fs::write(head(&store), "4294967295\n").unwrap();
    assert_eq!(bumped(&capsule), 2);
    assert_eq!(bumped(&capsule), 3);
}

#[cfg(unix)]
#[test]
fn a_failed_carry_gives_its_number_back() {
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let k = capsule.bump(BumpOptions::default()).unwrap();
    let fifo = k.section(Section::Scenes).join("pipe");
    mkfifo(&fifo);
    let c = capsule.clone();
    let e = guarded("bump --carry scenes over a FIFO", move || {
        c.bump(BumpOptions {
            carry_over: vec![Section::Scenes],
            ..Default::default()
        })
    })
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    assert!(e.to_string().contains("pipe"), "{e}");
    assert!(
        !capsule.path().join("v002").exists(),
        "incomplete crate left"
    );
    fs::remove_file(&fifo).unwrap();
    assert_eq!(bumped(&capsule), 2);
}

// ---- item 8 and 10: capsa's small files are read with a cap, special files refused ----

#[cfg(unix)]
#[test]
fn a_hint_that_is_dev_zero_or_a_fifo_neither_hangs_nor_eats_memory() {
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    capsule.bump(BumpOptions::default()).unwrap();
    fs::remove_file(head(&store)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", head(&store)).unwrap();
    let c = capsule.clone();
    let v = guarded("bump with /dev/zero as hint", move || {
        c.bump(BumpOptions::default())
    });
    assert_eq!(v.unwrap().version().number(), 2);
    fs::remove_file(head(&store)).unwrap();
    mkfifo(&head(&store));
    let c = capsule.clone();
    let v = guarded("bump with a FIFO as hint", move || {
        c.bump(BumpOptions::default())
    });
    // A FIFO hint is unusable: the directory decides; the FIFO is never opened blocking.
    assert_eq!(v.unwrap().version().number(), 3);
    // The bump replaced the unusable hint; plant the FIFO again for fsck.
    fs::remove_file(head(&store)).unwrap();
    mkfifo(&head(&store));
    let s = store.clone();
    let report = guarded("fsck with a FIFO hint", move || s.fsck(false)).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::StaleHint),
        "{report:?}"
    );
    let s = store.clone();
    let report = guarded("fsck --repair with a FIFO hint", move || s.fsck(true)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(fs::read_to_string(head(&store)).unwrap().trim(), "3");
}

#[cfg(unix)]
#[test]
fn store_toml_that_is_a_fifo_or_dev_zero_is_refused() {
    let (_d, store) = store();
    let cfg = store.root().join(".capsa/store.toml");
    fs::remove_file(&cfg).unwrap();
    mkfifo(&cfg);
    let root = store.root().to_path_buf();
    let e = guarded("open with a FIFO store.toml", move || Store::open(root)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    assert!(e.to_string().contains("store.toml"), "{e}");
    fs::remove_file(&cfg).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &cfg).unwrap();
    let root = store.root().to_path_buf();
    let e = guarded("open with /dev/zero store.toml", move || Store::open(root)).unwrap_err();
    assert!(e.to_string().contains("store.toml"), "{e}");
    fs::remove_file(&cfg).unwrap();
    fs::write(&cfg, vec![b'#'; 1 << 20]).unwrap();
    let e = Store::open(store.root()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::TooLarge, "{e}");
    assert!(e.to_string().contains("store.toml"), "{e}");
}

/// Found by `make fuzz` (fuzz_store_files, seed 1796306325): the TOML parser's message for
/// this file spans two lines, and so did the error.
#[test]
fn a_store_toml_parse_error_is_one_line() {
    let (_d, store) = store();
    let cfg = store.root().join(".capsa/store.toml");
    fs::write(&cfg, b"schema =\x00 \"9.0.0\"\n").unwrap();
    let e = Store::open(store.root()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Corrupt, "{e}");
    assert!(!e.to_string().contains('\n'), "{e:?}");
}

#[cfg(unix)]
#[test]
fn crate_metadata_that_is_dev_zero_is_refused() {
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let k = capsule.bump(BumpOptions::default()).unwrap();
    let m = k.path().join(capsa::krate::METADATA_FILE);
    fs::remove_file(&m).unwrap();
    fs::write(&m, vec![b' '; 2 << 20]).unwrap();
    let e = k.metadata().unwrap_err();
    assert_eq!(e.code(), ErrorCode::TooLarge, "{e}");
    assert!(e.to_string().contains(capsa::krate::METADATA_FILE), "{e}");
    fs::remove_file(&m).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &m).unwrap();
    let k2 = k.clone();
    let e = guarded("metadata at /dev/zero", move || k2.metadata()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
}

#[cfg(unix)]
#[test]
fn publishing_a_sequence_with_a_fifo_frame_is_refused_and_leaves_nothing() {
    let (d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let k = capsule.bump(BumpOptions::default()).unwrap();
    let src = d.path().join("renders");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("plate.1001.exr"), b"a").unwrap();
    mkfifo(&src.join("plate.1002.exr"));
    fs::write(src.join("plate.1003.exr"), b"c").unwrap();
    let k2 = k.clone();
    let pattern = src.join("plate.1001-1003#.exr");
    let e = guarded("publish of a sequence with a FIFO frame", move || {
        k2.publish(&pattern, None)
    })
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    assert!(e.to_string().contains("plate.1002.exr"), "{e}");
    assert_eq!(
        all_files(&k.section(Section::Publishes)),
        Vec::<String>::new()
    );
    assert_eq!(
        fs::read_dir(k.section(Section::Publishes)).unwrap().count(),
        0,
        "temporary left behind"
    );
}

// ---- item 9: writes never follow links planted in the store ----

#[cfg(unix)]
#[test]
fn publish_refuses_a_linked_directory_in_publishes() {
    let (d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let k = capsule.bump(BumpOptions::default()).unwrap();
    let elsewhere = d.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, k.section(Section::Publishes).join("linked")).unwrap();
    let src = d.path().join("src.txt");
    fs::write(&src, b"x").unwrap();
    let e = k.publish(&src, Some(Path::new("linked/x"))).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    assert!(e.to_string().contains("linked"), "{e}");
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "wrote outside the store"
    );
    let report = store.fsck(false).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::UnsafeLink),
        "{report:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_crate_directory_that_is_a_link_receives_no_writes() {
    let (d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let k = capsule.bump(BumpOptions::default()).unwrap();
    let elsewhere = d.path().join("elsewhere");
    fs::rename(k.path(), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, k.path()).unwrap();
    let before = all_files(&elsewhere);
    let src = d.path().join("src.txt");
    fs::write(&src, b"x").unwrap();
    let e = k.publish(&src, None).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    let e = k.seal().unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    assert_eq!(all_files(&elsewhere), before, "wrote outside the store");
    let report = store.fsck(false).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::UnsafeLink),
        "{report:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_capsule_directory_that_is_a_link_receives_no_bump() {
    let (d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    capsule.bump(BumpOptions::default()).unwrap();
    let elsewhere = d.path().join("elsewhere");
    fs::rename(capsule.path(), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, capsule.path()).unwrap();
    let e = capsule.bump(BumpOptions::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    assert!(!elsewhere.join("v002").exists(), "bumped outside the store");
}

// ---- issue 23: the other problem kinds ----

#[test]
fn fsck_reports_bad_metadata_duplicate_versions_and_stray_entries() {
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let k = capsule.bump(BumpOptions::default()).unwrap();
    capsule.bump(BumpOptions::default()).unwrap();
    fs::write(k.path().join(capsa::krate::METADATA_FILE), b"{not json").unwrap();
    fs::create_dir(capsule.path().join("v2")).unwrap();
    fs::write(capsule.path().join("notes.txt"), b"x").unwrap();
    let report = store.fsck(false).unwrap();
    let kinds: Vec<_> = report.problems.iter().map(|p| p.kind).collect();
    for kind in [
        ProblemKind::BadMetadata,
        ProblemKind::DuplicateVersion,
        ProblemKind::StrayEntry,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} missing in {report:?}");
    }
    // Repair never deletes any of them.
    store.fsck(true).unwrap();
    assert!(capsule.path().join("v2").is_dir());
    assert!(capsule.path().join("notes.txt").is_file());
    assert!(k.path().join(capsa::krate::METADATA_FILE).is_file());
}

/// The offline stub is read capped and never blocks: a FIFO in its place is refused at once
/// by `retrieve`, a 1 GiB one by its size.
#[cfg(unix)]
#[test]
fn an_offline_stub_that_is_a_fifo_or_huge_neither_hangs_nor_eats_memory() {
    let (_d, store) = store();
    let capsule = store.create_capsule(ID).unwrap();
    let dir = capsule.path().join(".capsa");
    fs::create_dir_all(&dir).unwrap();
    let stub = dir.join("offline.json");
    mkfifo(&stub);
    let s = store.clone();
    let e = guarded("retrieve with a FIFO stub", move || s.retrieve(ID)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    assert!(e.to_string().contains("offline.json"), "{e}");
    fs::remove_file(&stub).unwrap();
    fs::File::create(&stub).unwrap().set_len(1 << 30).unwrap();
    let c = capsule.clone();
    let e = guarded("a 1 GiB stub", move || c.offline_stub()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::TooLarge, "{e}");
}

/// A capsule with one crate holding `scenes/a.ma`, archived to `c.zip` beside the store.
fn archived_capsule(
    d: &tempfile::TempDir,
    store: &Store,
) -> (capsa::Capsule, capsa::Crate, std::path::PathBuf) {
    let capsule = store.create_capsule(ID).unwrap();
    let k = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(k.section(Section::Scenes).join("a.ma"), b"a").unwrap();
    let zip = d.path().join("c.zip");
    capsa::archive::archive(&capsule, &zip, Default::default()).unwrap();
    (capsule, k, zip)
}

/// The store's scratch directory (`.capsa/tmp`) as a link to elsewhere: restore refuses
/// before it extracts anything there.
#[cfg(unix)]
#[test]
fn a_scratch_directory_that_is_a_link_receives_no_restore() {
    let (d, store) = store();
    let (_, _, zip) = archived_capsule(&d, &store);
    let other = Store::init(d.path().join("other"), StoreOptions::default()).unwrap();
    let scratch = other.root().join(".capsa/tmp");
    let _ = fs::remove_dir(&scratch);
    let elsewhere = d.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &scratch).unwrap();
    let e = capsa::archive::restore(&zip, &other, Default::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    assert!(
        all_files(&elsewhere).is_empty(),
        "restored outside the store"
    );
    assert!(!other.root().join(ID).exists());
    // fsck reports the link, and repair never enters it (it would take an old file at the
    // other end for an abandoned temporary).
    let precious = elsewhere.join("precious.exr");
    fs::write(&precious, b"frame").unwrap();
    age(&precious, 3 * 3600);
    let report = other.fsck(true).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::UnsafeLink),
        "{report:?}"
    );
    assert!(
        precious.exists(),
        "fsck --repair removed a file outside the store"
    );
}

/// A capsule's own `.capsa` directory as a link to elsewhere: `take_offline` refuses before
/// it writes the stub there, and removes nothing.
#[cfg(unix)]
#[test]
fn a_capsule_internal_directory_that_is_a_link_receives_no_offline_stub() {
    let (d, store) = store();
    let (capsule, k, zip) = archived_capsule(&d, &store);
    let internal = capsule.path().join(".capsa");
    let elsewhere = d.path().join("elsewhere");
    fs::rename(&internal, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &internal).unwrap();
    let before = all_files(&elsewhere);
    let e = capsule.take_offline(&zip).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsafePath, "{e}");
    assert_eq!(all_files(&elsewhere), before, "wrote outside the store");
    assert!(
        k.section(Section::Scenes).join("a.ma").exists(),
        "content removed"
    );
}
