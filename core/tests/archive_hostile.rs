//! Hostile archives, built here with Python `zipfile` or by hand: restore refuses them with
//! a clear error, writes nothing outside its temporary directory, and removes that.

#[path = "archive_support/mod.rs"]
mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use capsa::archive::{self, RestoreOptions};
use capsa::{ErrorCode, Store, StoreOptions};
use common::*;

/// Build a zip with Python: `entries` is a Python list literal of
/// `(name, data, unix_mode_or_None)`.
fn py_zip(out: &Path, entries: &str, compression: &str) {
    let script = format!(
        "import sys, zipfile, warnings\n\
         warnings.simplefilter('ignore')\n\
         with zipfile.ZipFile(sys.argv[1], 'w', zipfile.{compression}) as z:\n\
         \x20   for name, data, mode in {entries}:\n\
         \x20       i = zipfile.ZipInfo(name)\n\
         \x20       i.compress_type = zipfile.{compression}\n\
         \x20       if mode is not None:\n\
         \x20           i.create_system = 3\n\
         \x20           i.external_attr = mode << 16\n\
         \x20       z.writestr(i, data)\n"
    );
    run(Command::new(tool("python3")).arg("-c").arg(script).arg(out));
}

/// Restore `zip` into a fresh store under a fresh base directory; it must fail with
/// `Corrupt` and a message containing `why`, leaving the base exactly as it was.
fn refused(zip: &Path, why: &str, options: RestoreOptions) {
    refused_with(zip, ErrorCode::Corrupt, why, options)
}

/// [`refused`] with another error code.
fn refused_with(zip: &Path, code: ErrorCode, why: &str, options: RestoreOptions) {
    let base = tempfile::tempdir().unwrap();
    let store = Store::init(base.path().join("store"), StoreOptions::default()).unwrap();
    let err = archive::restore(zip, &store, options).unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(why), "expected {why:?} in: {msg}");
    assert_eq!(names_in(base.path()), ["store"], "wrote outside the store");
    assert_eq!(
        names_in(store.root()),
        [".capsa"],
        "left something in the store"
    );
    assert!(
        names_in(&store.scratch_dir().unwrap()).is_empty(),
        "temp dir left behind"
    );
    // verify refuses the same archive.
    assert!(archive::verify(zip).is_err());
}

#[test]
fn hostile_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("dotdot", "[('caps/', b'', 0o40755), ('caps/../../evil.txt', b'x', 0o100644)]", "'..'"),
        ("dotdot_top", "[('../evil.txt', b'x', None)]", "'..'"),
        ("absolute", "[('caps/', b'', 0o40755), ('/tmp/capsa-evil.txt', b'x', None)]", "absolute path"),
        ("drive", "[('C:/evil.txt', b'x', None)]", "drive-letter"),
        ("backslash", "[('caps/', b'', 0o40755), ('caps\\\\..\\\\..\\\\evil.txt', b'x', None)]", "backslash"),
        ("outside_capsule", "[('caps/a', b'x', None), ('evil.txt', b'x', None)]", "outside the capsule directory"),
        ("two_capsules", "[('caps/a', b'x', None), ('other/b', b'x', None)]", "second top-level"),
        ("duplicate", "[('caps/a.txt', b'one', None), ('caps/a.txt', b'two', None)]", "duplicate"),
        ("symlink_out", "[('caps/', b'', 0o40755), ('caps/link', b'../../outside', 0o120777)]", "outside the capsule"),
        ("symlink_abs", "[('caps/link', b'/etc/passwd', 0o120777)]", "outside the capsule"),
        ("symlink_chain", "[('caps/d/', b'', 0o40755), ('caps/d/up', b'..', 0o120777), ('caps/d/esc', b'up/..', 0o120777)]", "through another symlink"),
        ("through_symlink", "[('caps/sub/', b'', 0o40755), ('caps/link', b'sub', 0o120777), ('caps/link/x', b'x', None)]", "not a directory"),
        ("file_as_dir", "[('caps/f', b'x', None), ('caps/f/x', b'x', None)]", "not a directory"),
        // The capsule directory entry itself a symlink (once a panic in the link check).
        ("top_symlink", "[('caps', b'elsewhere', 0o120777)]", "the capsule directory entry is a Symlink"),
        ("top_symlink_slash", "[('caps/', b'elsewhere', 0o120777)]", "the capsule directory entry is a Symlink"),
        ("top_symlink_then_file", "[('caps', b'.', 0o120777), ('caps/a', b'x', None)]", "the capsule directory entry is a Symlink"),
    ];
    for (name, entries, why) in cases {
        let zip = dir.path().join(format!("{name}.zip"));
        py_zip(&zip, entries, "ZIP_DEFLATED");
        refused(&zip, why, RestoreOptions::default());
    }
    assert!(!Path::new("/tmp/capsa-evil.txt").exists());
}

#[test]
fn zip_bombs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB of zeros deflates about 1000:1.
    let zip = dir.path().join("bomb.zip");
    py_zip(
        &zip,
        "[('caps/zeros', bytes(64 << 20), None)]",
        "ZIP_DEFLATED",
    );
    refused(
        &zip,
        "ratio above the limit",
        RestoreOptions {
            max_ratio: 100,
            ..Default::default()
        },
    );
    refused_with(
        &zip,
        ErrorCode::TooLarge,
        "more than the restore limit of 16777216 bytes",
        RestoreOptions {
            max_total_bytes: 16 << 20,
            ..Default::default()
        },
    );

    // A lying header: the entry claims 1,000 bytes but inflates to 2 MiB. Restore stops
    // at the recorded size instead of trusting it.
    let liar = dir.path().join("liar.zip");
    py_zip(
        &liar,
        "[('caps/zeros', bytes(2 << 20), None)]",
        "ZIP_DEFLATED",
    );
    let mut bytes = fs::read(&liar).unwrap();
    for sig in [[0x50u8, 0x4b, 3, 4], [0x50, 0x4b, 1, 2]] {
        let at = bytes.windows(4).position(|w| w == sig).unwrap();
        let field = if sig[2] == 3 { at + 22 } else { at + 24 };
        bytes[field..field + 4].copy_from_slice(&1000u32.to_le_bytes());
    }
    fs::write(&liar, &bytes).unwrap();
    refused(
        &liar,
        "more than its recorded 1000 bytes",
        RestoreOptions::default(),
    );

    // Overlapping entries (the "better zip bomb" trick): two names share one data block.
    let overlap = dir.path().join("overlap.zip");
    py_zip(
        &overlap,
        "[('caps/a', bytes(4096), None), ('caps/b', bytes(4096), None)]",
        "ZIP_DEFLATED",
    );
    let mut bytes = fs::read(&overlap).unwrap();
    let cds: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [0x50, 0x4b, 1, 2])
        .map(|(i, _)| i)
        .collect();
    let first_offset = bytes[cds[0] + 42..cds[0] + 46].to_vec();
    bytes[cds[1] + 42..cds[1] + 46].copy_from_slice(&first_offset);
    fs::write(&overlap, &bytes).unwrap();
    refused(&overlap, "overlaps", RestoreOptions::default());
}

#[test]
fn a_plain_python_archive_of_one_capsule_is_accepted() {
    // The control case for the refusals above: the same builder, a well-formed archive.
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("ok.zip");
    py_zip(
        &zip,
        "[('caps/', b'', 0o40755), ('caps/d/x.txt', b'x', 0o100755), ('caps/d/l', b'x.txt', 0o120777)]",
        "ZIP_DEFLATED",
    );
    let base = tempfile::tempdir().unwrap();
    let store = Store::init(base.path().join("store"), StoreOptions::default()).unwrap();
    let c = archive::restore(&zip, &store, RestoreOptions::default()).unwrap();
    assert_eq!(fs::read(c.path().join("d/l")).unwrap(), b"x");
}

#[test]
fn capsa_internal_names_are_never_taken_from_an_archive() {
    let dir = tempfile::tempdir().unwrap();
    let d = "('caps/', b'', 0o40755), ('caps/v001/', b'', 0o40755)";
    let cases: &[(&str, &str)] = &[
        ("stub", "caps/.capsa/offline.json"),
        ("stub_upper", "caps/.CAPSA/offline.json"),
        ("store_toml", "caps/.capsa/store.toml"),
        ("tmp_name", "caps/.capsa-tmp-restore-h-1-2-3/a"),
        ("crate_meta_at_top", "caps/.capsa-crate.json"),
        ("crate_meta_deep", "caps/v001/scenes/.capsa-crate.json"),
        ("crate_meta_not_crate", "caps/notacrate/.capsa-crate.json"),
        ("marker_deep", "caps/v001/scenes/.capsa-incomplete"),
        ("nested_internal", "caps/v001/.capsa/head"),
        ("hint_upper", "caps/.Capsa/head"),
    ];
    for (case, name) in cases {
        let zip = dir.path().join(format!("{case}.zip"));
        py_zip(
            &zip,
            &format!("[{d}, ('{name}', b'{{}}', 0o100644)]"),
            "ZIP_DEFLATED",
        );
        refused_with(&zip, ErrorCode::UnsafePath, name, RestoreOptions::default());
        let err = archive::verify(&zip).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnsafePath, "{case}: {err}");
        assert!(err.to_string().contains(name), "{case}: {err}");
    }
    // A directory entry alone is refused too.
    let zip = dir.path().join("tmp_dir.zip");
    py_zip(
        &zip,
        &format!("[{d}, ('caps/.capsa-tmp-x/', b'', 0o40755)]"),
        "ZIP_DEFLATED",
    );
    refused_with(
        &zip,
        ErrorCode::UnsafePath,
        "caps/.capsa-tmp-x/",
        RestoreOptions::default(),
    );
    // What the archiver itself writes is accepted: the hint and crate metadata.
    let zip = dir.path().join("own.zip");
    py_zip(
        &zip,
        &format!(
            "[{d}, ('caps/.capsa/', b'', 0o40755), ('caps/.capsa/head', b'1', 0o100644), \
             ('caps/v001/.capsa-crate.json', b'{{}}', 0o100644)]"
        ),
        "ZIP_DEFLATED",
    );
    let base = tempfile::tempdir().unwrap();
    let store = Store::init(base.path().join("store"), StoreOptions::default()).unwrap();
    archive::restore(&zip, &store, RestoreOptions::default()).unwrap();
}

#[test]
fn a_smuggled_offline_stub_in_a_capsa_archive_is_refused() {
    // The case: a real archive with `<id>/.capsa/offline.json` added (manifest
    // untouched, so only the name rule can catch it before the capsule refuses bumps).
    let (dir, store) = common::new_store();
    let capsule = common::sample_capsule(&store, "smug");
    let zip = dir.path().join("smug.zip");
    archive::archive(&capsule, &zip, archive::ArchiveOptions::default()).unwrap();
    let script = "import sys, zipfile\n\
                  with zipfile.ZipFile(sys.argv[1], 'a') as z:\n\
                  \x20   i = zipfile.ZipInfo('smug/.capsa/offline.json')\n\
                  \x20   i.create_system = 3\n\
                  \x20   i.external_attr = 0o100644 << 16\n\
                  \x20   z.writestr(i, b'{}')\n";
    run(Command::new(tool("python3"))
        .arg("-c")
        .arg(script)
        .arg(&zip));
    let err = archive::verify(&zip).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnsafePath, "{err}");
    assert!(
        err.to_string().contains("smug/.capsa/offline.json"),
        "{err}"
    );
    refused_with(
        &zip,
        ErrorCode::UnsafePath,
        "smug/.capsa/offline.json",
        RestoreOptions::default(),
    );
}

#[test]
fn many_small_bomb_entries_are_refused_by_the_total_limit() {
    // No single entry is over 1 MiB (the per-entry ratio check passes them); together they
    // expand about 1000 times.
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("small_bombs.zip");
    py_zip(
        &zip,
        "[('caps/z%03d' % i, bytes(1 << 20), None) for i in range(40)]",
        "ZIP_DEFLATED",
    );
    assert!(fs::metadata(&zip).unwrap().len() < 200 << 10);
    refused_with(
        &zip,
        ErrorCode::TooLarge,
        "more than the restore limit of 8388608 bytes",
        RestoreOptions {
            max_total_bytes: 8 << 20,
            ..Default::default()
        },
    );
    assert_eq!(archive::DEFAULT_MAX_TOTAL_BYTES, 4 << 40);
    assert_eq!(RestoreOptions::default().max_total_bytes, 4 << 40);
}

/// A tiny archive whose 4,096 stored entries each claim 4 GiB (16 TiB in all).
fn lying_giant(dir: &Path) -> std::path::PathBuf {
    let zip = dir.join("giant.zip");
    py_zip(
        &zip,
        "[('caps/g%04d' % i, b'x', None) for i in range(4096)]",
        "ZIP_STORED",
    );
    let mut bytes = fs::read(&zip).unwrap();
    let mut at = 0;
    while let Some(p) = bytes[at..].windows(4).position(|w| w == [0x50, 0x4b, 1, 2]) {
        let c = at + p;
        bytes[c + 20..c + 28].copy_from_slice(&[0xFF; 8]);
        at = c + 46;
    }
    fs::write(&zip, &bytes).unwrap();
    zip
}

#[test]
fn an_archive_larger_than_the_limit_or_the_free_space_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let zip = lying_giant(dir.path());
    // The default limit (4 TiB).
    refused_with(
        &zip,
        ErrorCode::TooLarge,
        "more than the restore limit of 4398046511104 bytes",
        RestoreOptions::default(),
    );
    // No limit: the free space still refuses it.
    refused_with(
        &zip,
        ErrorCode::TooLarge,
        "bytes free",
        RestoreOptions {
            max_total_bytes: u64::MAX,
            max_ratio: u64::MAX,
            ..Default::default()
        },
    );
}
