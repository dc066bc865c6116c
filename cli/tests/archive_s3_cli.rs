//! `capsa archive -o s3://…`, `verify s3://…`, `offline ID s3://…`, `retrieve ID` against a
//! real MinIO server (`make test-s3`): SIGKILL mid-upload leaves no object and a rerun works;
//! wrong credentials fail clearly.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use capsa::{BumpOptions, Section, Store, StoreOptions};

mod support;
use support::{noise, noisy_capsule};

const CAPSA: &str = env!("CARGO_BIN_EXE_capsa");

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests through `make test-s3` (tests/minio/with-minio.sh)"
        )
    })
}

fn url(key: &str) -> String {
    format!("s3://{}/{key}", env("CAPSA_TEST_S3_BUCKET"))
}

fn aws(args: &[&str]) -> Output {
    Command::new(env("CAPSA_TEST_AWS"))
        .arg("--endpoint-url")
        .arg(env("AWS_ENDPOINT_URL"))
        .args(args)
        .output()
        .unwrap()
}

fn exists(key: &str) -> bool {
    let bucket = env("CAPSA_TEST_S3_BUCKET");
    aws(&["s3api", "head-object", "--bucket", &bucket, "--key", key])
        .status
        .success()
}

fn uploads_in_progress(key: &str) -> usize {
    let bucket = env("CAPSA_TEST_S3_BUCKET");
    let out = aws(&[
        "s3api",
        "list-multipart-uploads",
        "--bucket",
        &bucket,
        "--prefix",
        key,
        "--output",
        "json",
    ]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .matches("\"UploadId\"")
        .count()
}

fn capsa(store: &Path, args: &[&str]) -> Output {
    Command::new(CAPSA)
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn sigkill_mid_upload_leaves_no_object_and_the_cli_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let (store, capsule) = noisy_capsule(&root, "killme");
    let key = "cli/killme.zip";
    let mut child = Command::new(CAPSA)
        .arg("--store")
        .arg(&root)
        .args(["archive", "killme", "-o", &url(key), "--policy", "deflate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once its multipart upload is under way.
    let start = Instant::now();
    while uploads_in_progress(key) == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("capsa finished ({status}) before it could be killed");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no upload started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    assert!(
        !child.wait().unwrap().success(),
        "capsa finished before the kill"
    );
    assert!(
        !exists(key),
        "a killed upload left an object at the final key"
    );
    assert_eq!(
        uploads_in_progress(key),
        1,
        "the killed run's upload is left for the bucket's expiry"
    );

    // The rerun succeeds; verify, offline and retrieve work on the URL.
    let out = capsa(&root, &["archive", "killme", "-o", &url(key)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(exists(key));
    let out = capsa(&root, &["--json", "verify", &url(key), "--sha256"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["capsule"], "killme", "{v}");
    let out = capsa(&root, &["offline", "killme", &url(key)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(capsule.is_offline());
    assert_eq!(capsule.offline_stub().unwrap().unwrap().archive, url(key));
    let out = capsa(&root, &["retrieve", "killme"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!capsule.is_offline());
    assert_eq!(
        fs::read(v_path(&store).join("f07.bin")).unwrap(),
        noise(8 << 20, 8)
    );
}

fn v_path(store: &Store) -> std::path::PathBuf {
    let c = store.capsule("killme").unwrap();
    c.latest().unwrap().unwrap().section(Section::Artifacts)
}

#[test]
fn wrong_credentials_and_missing_bucket_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::init(&root, StoreOptions::default()).unwrap();
    let capsule = store.create_capsule("creds").unwrap();
    let v = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(v.section(Section::Scenes).join("a.ma"), b"x").unwrap();
    let key = "cli/creds.zip";
    for (var, value) in [
        ("AWS_SECRET_ACCESS_KEY", "wrong-secret"),
        ("AWS_ACCESS_KEY_ID", "nobody"),
    ] {
        let out = Command::new(CAPSA)
            .env(var, value)
            .arg("--store")
            .arg(&root)
            .args(["archive", "creds", "-o", &url(key)])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad credentials"), "{var}: {err}");
        assert!(!exists(key));
    }
    let out = capsa(
        &root,
        &["archive", "creds", "-o", "s3://capsa-missing-bucket/x.zip"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bucket not found: capsa-missing-bucket"),
        "{err}"
    );
    let out = capsa(&root, &["verify", &url("cli/none.zip")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("archive not found"), "{err}");
}
