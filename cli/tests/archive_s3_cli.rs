//! `capsa archive -o s3://…`, `verify s3://…`, `offline ID s3://…`, `retrieve ID` against a
//! real MinIO server (`make test-s3`): SIGKILL mid-upload leaves no object and a rerun works;
//! wrong credentials fail clearly.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use capsa::{BumpOptions, Section, Store, StoreOptions};

mod support;
use support::{capsa_in as capsa, noise, noisy_capsule};

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

/// Temporary credentials from MinIO's STS `AssumeRole`, optionally limited by a session policy:
/// (access key, secret key, session token).
fn assume_role(policy: Option<&str>) -> (String, String, String) {
    let mut args = vec![
        "sts",
        "assume-role",
        "--role-arn",
        "arn:xxx:xxx:xxx:xxxx",
        "--role-session-name",
        "capsa-test",
        "--output",
        "json",
    ];
    if let Some(p) = policy {
        args.extend(["--policy", p]);
    }
    let out = aws(&args);
    assert!(
        out.status.success(),
        "assume-role: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["Credentials"];
    let field = |k: &str| c[k].as_str().unwrap().to_string();
    (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    )
}

fn archive_with(root: &Path, id: &str, key: &str, creds: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(CAPSA);
    cmd.env_remove("AWS_SESSION_TOKEN");
    for (k, v) in creds {
        cmd.env(k, v);
    }
    cmd.arg("--store")
        .arg(root)
        .args(["archive", id, "-o", &url(key)])
        .output()
        .unwrap()
}

fn one_crate_store(dir: &Path, id: &str) -> std::path::PathBuf {
    let root = dir.join("store");
    let store = Store::init(&root, StoreOptions::default()).unwrap();
    let capsule = store.create_capsule(id).unwrap();
    let v = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(v.section(Section::Scenes).join("a.ma"), b"a scene").unwrap();
    root
}

#[test]
fn temporary_credentials_need_their_session_token() {
    let dir = tempfile::tempdir().unwrap();
    let root = one_crate_store(dir.path(), "token");
    let (key_id, secret, token) = assume_role(None);
    let key = "cli/token.zip";
    let without = archive_with(
        &root,
        "token",
        key,
        &[
            ("AWS_ACCESS_KEY_ID", &key_id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
    );
    assert!(!without.status.success(), "accepted without the token");
    let err = String::from_utf8_lossy(&without.stderr);
    assert!(err.contains("bad credentials"), "{err}");
    assert!(!exists(key));
    let with = archive_with(
        &root,
        "token",
        key,
        &[
            ("AWS_ACCESS_KEY_ID", &key_id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
            ("AWS_SESSION_TOKEN", &token),
        ],
    );
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(exists(key));
}

#[test]
fn a_policy_that_forbids_writing_is_access_denied() {
    let dir = tempfile::tempdir().unwrap();
    let root = one_crate_store(dir.path(), "denied");
    let read_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::*"]}]}"#;
    let (key_id, secret, token) = assume_role(Some(read_only));
    let key = "cli/denied.zip";
    let out = archive_with(
        &root,
        "denied",
        key,
        &[
            ("AWS_ACCESS_KEY_ID", &key_id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
            ("AWS_SESSION_TOKEN", &token),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access denied"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!exists(key));
}

/// `?endpoint=` in the URL is enough: no `AWS_ENDPOINT_URL` in the environment.
#[test]
fn the_url_endpoint_alone_reaches_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = one_crate_store(dir.path(), "perurl");
    let endpoint = env("AWS_ENDPOINT_URL");
    let target = format!(
        "{}?endpoint={endpoint}&region=us-east-1",
        url("cli/perurl.zip")
    );
    for args in [
        vec!["archive", "perurl", "-o", target.as_str()],
        vec!["verify", target.as_str(), "--sha256"],
        vec!["offline", "perurl", target.as_str()],
        vec!["retrieve", "perurl"],
    ] {
        let out = Command::new(CAPSA)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT")
            .arg("--store")
            .arg(&root)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(exists("cli/perurl.zip"));
    let store = Store::open(&root).unwrap();
    let c = store.capsule("perurl").unwrap();
    assert!(!c.is_offline());
    let v = c.latest().unwrap().unwrap();
    assert_eq!(
        fs::read(v.section(Section::Scenes).join("a.ma")).unwrap(),
        b"a scene"
    );
}
