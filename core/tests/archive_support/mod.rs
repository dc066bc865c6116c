//! Helpers shared by the archive tests: sample capsules, tree hashes, external tools.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use capsa::{BumpOptions, Capsule, Section, Store, StoreOptions};
use sha2::{Digest, Sha256};

pub fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("store"), StoreOptions::default()).unwrap();
    (dir, store)
}

/// Deterministic, poorly compressible bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text that deflates well.
pub fn text(len: usize) -> Vec<u8> {
    let line = b"createNode transform -n \"shot010_cam\" -p \"world\"; setAttr \".t\" 1 2 3;\n";
    line.iter().copied().cycle().take(len).collect()
}

/// A capsule with two crates, nested and empty directories, non-ASCII names, an
/// executable, a symlink, compressed media, an empty file and a multi-chunk file.
pub fn sample_capsule(store: &Store, id: &str) -> Capsule {
    let capsule = store.create_capsule(id).unwrap();
    let v1 = capsule.bump(BumpOptions::default()).unwrap();
    let scenes = v1.section(Section::Scenes);
    fs::write(scenes.join("shot010_v001.ma"), text(200_000)).unwrap();
    fs::create_dir_all(scenes.join("deep/er/still")).unwrap();
    fs::write(scenes.join("deep/er/still/notes.txt"), b"deep\n").unwrap();
    fs::create_dir_all(scenes.join("empty/inner_empty")).unwrap();
    fs::write(scenes.join("Ümläut_シーン_ñ.txt"), "non-ASCII ✓\n").unwrap();
    fs::write(scenes.join("empty_file"), b"").unwrap();
    let art = v1.section(Section::Artifacts);
    fs::write(art.join("plate.0001.exr"), noise(300_000, 7)).unwrap();
    fs::write(
        art.join("big.bin"),
        [text(2_500_000), noise(700_000, 3)].concat(),
    )
    .unwrap();
    let tool = art.join("run.sh");
    fs::write(&tool, b"#!/bin/sh\necho hi\n").unwrap();
    set_mode(&tool, 0o755);
    #[cfg(unix)]
    std::os::unix::fs::symlink("../scenes/shot010_v001.ma", art.join("scene_link.ma")).unwrap();
    let v2 = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(
        v2.section(Section::Scenes).join("shot010_v002.ma"),
        text(5000),
    )
    .unwrap();
    v1.seal().unwrap();
    capsule
}

pub fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Everything that must survive a round trip: names, kinds, bytes, executable bits, links.
pub fn tree_hash(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let meta = fs::symlink_metadata(&p).unwrap();
        let exec = mode(&meta) & 0o111;
        if meta.file_type().is_symlink() {
            out.insert(
                rel,
                format!("link {}", fs::read_link(&p).unwrap().display()),
            );
        } else if meta.is_dir() {
            out.insert(rel, "dir".into());
            walk(root, &p, out);
        } else {
            let mut h = Sha256::new();
            let mut f = fs::File::open(&p).unwrap();
            std::io::copy(&mut f, &mut h).unwrap();
            out.insert(rel, format!("file {:x} exec={exec:o}", h.finalize()));
        }
    }
}

fn mode(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions())
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// The path of an external tool; fails the test (never skips) when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "this test needs the external tool `{name}`, which is not installed \
             (Debian: apt-get install -y zip unzip p7zip-full python3)"
        )
    })
}

/// Run a command; panic with its output if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// `unzip -t`, `7z t` and Python `zipfile.testzip()` must all accept `zip`.
pub fn check_with_external_tools(zip: &Path) {
    let out = run(Command::new(tool("unzip")).arg("-tq").arg(zip));
    assert!(out.contains("No errors detected"), "unzip -t: {out}");
    let out = run(Command::new(tool("7z")).arg("t").arg(zip));
    assert!(out.contains("Everything is Ok"), "7z t: {out}");
    let script = "import sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  bad = z.testzip()\n\
                  assert bad is None, 'bad entry %r' % bad\n\
                  print('ok', len(z.infolist()))\n";
    let out = run(Command::new(tool("python3")).arg("-c").arg(script).arg(zip));
    assert!(out.starts_with("ok"), "python zipfile: {out}");
}

/// Files in `dir` (not recursive).
pub fn names_in(dir: &Path) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The bytes of an archive of a capsule with every kind of entry and little data (so that
/// every byte can be flipped), and the capsule's tree hash.
pub fn small_archive(dir: &Path) -> (Vec<u8>, std::collections::BTreeMap<String, String>) {
    let store = Store::init(dir.join("store"), StoreOptions::default()).unwrap();
    let capsule = store.create_capsule("flip").unwrap();
    let v1 = capsule.bump(BumpOptions::default()).unwrap();
    let scenes = v1.section(Section::Scenes);
    fs::write(scenes.join("a.ma"), b"createNode transform;\n").unwrap();
    fs::create_dir_all(scenes.join("empty")).unwrap();
    fs::create_dir_all(scenes.join("sub")).unwrap();
    fs::write(scenes.join("sub/x"), b"x").unwrap();
    let tool = scenes.join("run.sh");
    fs::write(&tool, b"#!/bin/sh\n").unwrap();
    set_mode(&tool, 0o755);
    #[cfg(unix)]
    std::os::unix::fs::symlink("a.ma", scenes.join("link.ma")).unwrap();
    let zip = dir.join("small.zip");
    capsa::archive::archive(&capsule, &zip, capsa::archive::ArchiveOptions::default()).unwrap();
    (fs::read(&zip).unwrap(), tree_hash(capsule.path()))
}

/// A progress callback that runs `act` on its first call only, and a flag that tells whether
/// it ran: how a test changes the world at a known point of a long archive or restore.
pub fn on_first_progress(
    act: impl Fn() + Send + Sync + 'static,
) -> (
    capsa::archive::ProgressFn,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let ran = std::sync::Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let callback = move |_p: &capsa::archive::Progress| {
        if !flag.swap(true, Ordering::SeqCst) {
            act();
        }
    };
    (std::sync::Arc::new(callback), ran)
}
