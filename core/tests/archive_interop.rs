//! Interop with the zip tools people have: Info-ZIP `unzip -t`, `7z t`, Python `zipfile`,
//! and restoring archives those tools (Info-ZIP `zip`, Python `zipfile`) made.
//! These tests fail, never skip, when a tool is missing.

#[path = "archive_support/mod.rs"]
mod common;

use std::fs;
use std::process::Command;

use capsa::archive::{self, ArchiveOptions, Policy, RestoreOptions};
use capsa::{BumpOptions, Section, Store, StoreOptions};
use common::*;

#[test]
fn capsa_archives_pass_unzip_7z_and_python_for_every_policy() {
    for policy in [Policy::Auto, Policy::Store, Policy::Deflate] {
        let (dir, store) = new_store();
        let capsule = sample_capsule(&store, "656796239c1b981568180614");
        let zip = dir.path().join("c.zip");
        archive::archive(
            &capsule,
            &zip,
            ArchiveOptions {
                policy: Some(policy),
                ..Default::default()
            },
        )
        .unwrap();
        check_with_external_tools(&zip);
        // unzip extracts the same tree (nested and empty dirs, non-ASCII names, exec bits).
        let out = dir.path().join("unzipped");
        run(Command::new(tool("unzip"))
            .arg("-q")
            .arg(&zip)
            .arg("-d")
            .arg(&out));
        assert_eq!(
            tree_hash(&out.join("656796239c1b981568180614")),
            tree_hash(capsule.path()),
            "{policy:?}"
        );
    }
}

#[test]
fn more_than_65535_entries() {
    let (dir, store) = new_store();
    let capsule = store.create_capsule("many").unwrap();
    let v = capsule.bump(BumpOptions::default()).unwrap();
    let base = v.section(Section::Artifacts);
    for d in 0..70 {
        let sub = base.join(format!("d{d:02}"));
        fs::create_dir(&sub).unwrap();
        for f in 0..1000 {
            fs::write(sub.join(format!("f{f:04}")), format!("{d}/{f}\n")).unwrap();
        }
    }
    let zip = dir.path().join("many.zip");
    let report = archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    assert!(report.files >= 70_000);
    assert!(
        report.zip64,
        "more than 65,535 entries need the ZIP64 end records"
    );
    assert_eq!(
        archive::list(&zip).unwrap().len() as u64,
        report.files + report.dirs + 2
    );
    check_with_external_tools(&zip);
    let other = Store::init(dir.path().join("o"), StoreOptions::default()).unwrap();
    let back = archive::restore(&zip, &other, RestoreOptions::default()).unwrap();
    assert_eq!(tree_hash(back.path()), tree_hash(capsule.path()));
}

/// One deflated entry over 4 GiB and over 5 GiB of content in total, from sparse files:
/// cheap on disk, and the archive's stored zeros become holes too.
#[test]
fn entry_over_4_gib_and_total_over_4_gib() {
    let (dir, store) = new_store();
    let capsule = store.create_capsule("huge").unwrap();
    let v = capsule.bump(BumpOptions::default()).unwrap();
    let art = v.section(Section::Artifacts);
    let big = (4u64 << 30) + (3 << 20) + 17;
    let f = fs::File::create(art.join("big.bin")).unwrap();
    f.set_len(big).unwrap();
    drop(f);
    let f = fs::File::create(art.join("plate.mov")).unwrap();
    f.set_len((1u64 << 30) + 5).unwrap();
    drop(f);
    fs::write(art.join("zz_after.txt"), b"after the 4 GiB mark\n").unwrap();
    let zip = dir.path().join("huge.zip");
    let report = archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    assert!(report.zip64);
    assert!(report.deflated >= 2, "{report:?}"); // big.bin, the crate metadata
    let entries = archive::list(&zip).unwrap();
    let e = entries
        .iter()
        .find(|e| e.name.ends_with("big.bin"))
        .unwrap();
    assert_eq!((e.size, e.method.as_str()), (big, "deflated"));
    assert!(e.compressed < big / 500);
    assert!(report.bytes > 5 << 30);
    check_with_external_tools(&zip);
    archive::verify(&zip).unwrap();
    let other = Store::init(dir.path().join("o"), StoreOptions::default()).unwrap();
    let back = archive::restore(&zip, &other, RestoreOptions::default()).unwrap();
    let restored = back.latest().unwrap().unwrap().section(Section::Artifacts);
    assert_eq!(fs::metadata(restored.join("big.bin")).unwrap().len(), big);
    assert_eq!(
        fs::read(restored.join("zz_after.txt")).unwrap(),
        b"after the 4 GiB mark\n"
    );
}

#[test]
fn stored_total_over_4_gib_puts_entries_beyond_4_gib() {
    let (dir, store) = new_store();
    let capsule = store.create_capsule("wide").unwrap();
    let v = capsule.bump(BumpOptions::default()).unwrap();
    let art = v.section(Section::Artifacts);
    for name in ["a.exr", "b.exr", "c.exr"] {
        let f = fs::File::create(art.join(name)).unwrap();
        f.set_len(1500 << 20).unwrap();
    }
    fs::write(art.join("d.txt"), text(3 << 20)).unwrap();
    let zip = dir.path().join("wide.zip");
    let report = archive::archive(&capsule, &zip, ArchiveOptions::default()).unwrap();
    assert!(report.archive_bytes > 4 << 30, "{report:?}");
    assert!(report.zip64);
    check_with_external_tools(&zip);
}

/// A capsule tree zipped by Info-ZIP `zip -r` restores.
#[test]
fn restores_archives_made_by_info_zip() {
    let (dir, store) = new_store();
    let capsule = sample_capsule(&store, "infozip");
    for flags in [&["-r", "-q", "-y"][..], &["-r", "-q", "-y", "-0"][..]] {
        let zip = dir.path().join(format!("iz{}.zip", flags.len()));
        run(Command::new(tool("zip"))
            .current_dir(store.root())
            .args(flags)
            .arg(&zip)
            .arg("infozip"));
        let other = Store::init(
            dir.path().join(format!("o{}", flags.len())),
            StoreOptions::default(),
        )
        .unwrap();
        let back = archive::restore(&zip, &other, RestoreOptions::default()).unwrap();
        assert_eq!(
            tree_hash(back.path()),
            tree_hash(capsule.path()),
            "{flags:?}"
        );
    }
}

/// A capsule tree zipped by Python `zipfile` (stored and deflated) restores.
#[test]
fn restores_archives_made_by_python_zipfile() {
    let (dir, store) = new_store();
    let capsule = sample_capsule(&store, "pyzip");
    for method in ["ZIP_STORED", "ZIP_DEFLATED"] {
        let zip = dir.path().join(format!("{method}.zip"));
        let script = format!(
            "import os, sys, zipfile\n\
             root, out = sys.argv[1], sys.argv[2]\n\
             with zipfile.ZipFile(out, 'w', zipfile.{method}) as z:\n\
             \x20   for d, dirs, files in os.walk('pyzip'):\n\
             \x20       dirs.sort()\n\
             \x20       z.write(d)\n\
             \x20       for f in sorted(files):\n\
             \x20           p = os.path.join(d, f)\n\
             \x20           if os.path.islink(p):\n\
             \x20               i = zipfile.ZipInfo(p)\n\
             \x20               i.create_system = 3\n\
             \x20               i.external_attr = (0o120777 << 16)\n\
             \x20               z.writestr(i, os.readlink(p))\n\
             \x20           else:\n\
             \x20               z.write(p)\n"
        );
        run(Command::new(tool("python3"))
            .current_dir(store.root())
            .arg("-c")
            .arg(&script)
            .arg(store.root())
            .arg(&zip));
        let other = Store::init(dir.path().join(method), StoreOptions::default()).unwrap();
        let back = archive::restore(&zip, &other, RestoreOptions::default()).unwrap();
        assert_eq!(
            tree_hash(back.path()),
            tree_hash(capsule.path()),
            "{method}"
        );
    }
}
