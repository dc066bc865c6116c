//! Archives in an S3-compatible bucket, against a real MinIO server (`make test-s3`, which runs
//! `tests/minio/with-minio.sh`: it exports `AWS_ENDPOINT_URL`, the credentials,
//! `CAPSA_TEST_S3_BUCKET`, `CAPSA_TEST_MINIO_CTL` and `CAPSA_TEST_AWS`). Run with
//! `--test-threads=1`: one test stops and restarts the server.

#[path = "archive_support/mod.rs"]
mod common;
#[path = "s3_support/fault_proxy.rs"]
mod fault_proxy;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use capsa::archive::{self, ArchiveOptions, Policy, RestoreOptions};
use capsa::{BumpOptions, ErrorCode, Section, Store, StoreOptions};
use common::*;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests through `make test-s3` (tests/minio/with-minio.sh)"
        )
    })
}

fn bucket() -> String {
    env("CAPSA_TEST_S3_BUCKET")
}

fn url(key: &str) -> String {
    format!("s3://{}/{key}", bucket())
}

/// Run the aws CLI against the test server; returns stdout, panics on failure.
fn aws(args: &[&str]) -> String {
    let out = Command::new(env("CAPSA_TEST_AWS"))
        .arg("--endpoint-url")
        .arg(env("AWS_ENDPOINT_URL"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether an object exists at `key` (aws s3api head-object).
fn exists(key: &str) -> bool {
    Command::new(env("CAPSA_TEST_AWS"))
        .arg("--endpoint-url")
        .arg(env("AWS_ENDPOINT_URL"))
        .args(["s3api", "head-object", "--bucket", &bucket(), "--key", key])
        .output()
        .unwrap()
        .status
        .success()
}

fn download(key: &str, to: &Path) {
    aws(&["s3", "cp", "--quiet", &url(key), to.to_str().unwrap()]);
}

fn upload(from: &Path, key: &str) {
    aws(&["s3", "cp", "--quiet", from.to_str().unwrap(), &url(key)]);
}

fn ctl(action: &str) {
    let cmd = env("CAPSA_TEST_MINIO_CTL");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} {action}"))
        .status()
        .unwrap();
    assert!(status.success(), "minio ctl {action}");
}

#[test]
fn round_trip_through_the_bucket_is_byte_identical() {
    let (dir, store) = new_store();
    let capsule = sample_capsule(&store, "656796239c1b981568180614");
    let before = tree_hash(capsule.path());
    let key = "rt/c.zip";
    let report = archive::archive(&capsule, url(key), ArchiveOptions::default()).unwrap();
    assert!(report.verified);
    assert_eq!(report.path, PathBuf::from(url(key)));
    assert!(exists(key));

    // Refused when the object exists (the object is left as it was).
    let err = archive::archive(&capsule, url(key), ArchiveOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
    assert_eq!(
        archive::verify(url(key)).unwrap().archive_bytes,
        report.archive_bytes
    );

    // verify and list read through ranged GETs.
    let v = archive::verify(url(key)).unwrap();
    assert_eq!(v.capsule, "656796239c1b981568180614");
    assert_eq!(v.archive_bytes, report.archive_bytes);
    assert_eq!(archive::list(url(key)).unwrap().len() as u64, v.entries);

    // The streamed zip (data descriptors) is a zip every tool reads, and it restores the same
    // tree from the bucket.
    let local = dir.path().join("downloaded.zip");
    download(key, &local);
    check_with_external_tools(&local);
    let out = dir.path().join("unzipped");
    run(Command::new(tool("unzip"))
        .arg("-q")
        .arg(&local)
        .arg("-d")
        .arg(&out));
    assert_eq!(tree_hash(&out.join("656796239c1b981568180614")), before);
    let other = Store::init(dir.path().join("other"), StoreOptions::default()).unwrap();
    let restored = archive::restore(url(key), &other, RestoreOptions::default()).unwrap();
    assert_eq!(tree_hash(restored.path()), before);

    // Offline against the bucket: the stub records the URL and the checksum; retrieve reads
    // it back from the bucket.
    let stub = capsule.take_offline(url(key)).unwrap();
    assert_eq!(stub.archive, url(key));
    assert_eq!(stub.archive_sha256.len(), 64);
    assert!(capsule.is_offline());
    assert_eq!(names_in(capsule.path()), [".capsa"]);
    let back = store.retrieve("656796239c1b981568180614").unwrap();
    assert!(!back.is_offline());
    assert_eq!(tree_hash(back.path()), before);
    back.bump(BumpOptions::default()).unwrap();
}

#[test]
fn replace_overwrites_an_existing_object_with_the_new_archive() {
    let (_dir, store) = new_store();
    let capsule = sample_capsule(&store, "replaced");
    let key = "replace/c.zip";
    archive::archive(&capsule, url(key), ArchiveOptions::default()).unwrap();
    let first = archive::verify(url(key)).unwrap();
    let v = capsule.bump(BumpOptions::default()).unwrap();
    fs::write(v.section(Section::Scenes).join("new.ma"), b"a new scene").unwrap();
    let err = archive::archive(&capsule, url(key), ArchiveOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
    let report = archive::archive(
        &capsule,
        url(key),
        ArchiveOptions {
            replace: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(report.verified);
    let second = archive::verify(url(key)).unwrap();
    assert!(second.entries > first.entries, "{first:?} then {second:?}");
    assert!(archive::list(url(key))
        .unwrap()
        .iter()
        .any(|e| e.name.ends_with("/new.ma")));
}

/// The URL's `?endpoint=` wins over `AWS_ENDPOINT_URL` (the proxy sees every request), and a
/// transient server error (503) is retried: the archive lands and verifies.
#[test]
fn a_transient_server_error_is_retried_through_the_url_endpoint() {
    let (_dir, store) = new_store();
    let capsule = sample_capsule(&store, "retried");
    let proxy = fault_proxy::FaultProxy::start(
        &env("AWS_ENDPOINT_URL"),
        fault_proxy::Fault::UnavailableFirst(2),
    );
    let key = "retry/c.zip";
    let via = format!("{}?endpoint={}&region=us-east-1", url(key), proxy.endpoint);
    let report = archive::archive(&capsule, &via, ArchiveOptions::default()).unwrap();
    assert!(report.verified);
    assert_eq!(proxy.refused(), 2, "both refused requests were retried");
    assert!(proxy.requests() > 2, "{} requests", proxy.requests());
    assert!(exists(key));
    assert_eq!(archive::verify(url(key)).unwrap().capsule, "retried");
}

/// An uploaded object that does not read back as written is deleted, and the error says so.
#[test]
fn an_uploaded_object_that_does_not_verify_is_deleted() {
    let (_dir, store) = new_store();
    let capsule = sample_capsule(&store, "garbled");
    let before = tree_hash(capsule.path());
    let proxy = fault_proxy::FaultProxy::start(
        &env("AWS_ENDPOINT_URL"),
        fault_proxy::Fault::CorruptRangedReads,
    );
    let key = "garbled/c.zip";
    let via = format!("{}?endpoint={}", url(key), proxy.endpoint);
    let err = archive::archive(&capsule, &via, ArchiveOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert!(
        err.to_string().contains("does not verify (deleted)"),
        "{err}"
    );
    assert!(proxy.corrupted() > 0);
    assert!(!exists(key), "the object that did not verify is gone");
    assert_eq!(incomplete_uploads(key), 0);
    assert_eq!(tree_hash(capsule.path()), before);
}

#[test]
fn every_policy_and_zip64_sized_entries_stream() {
    // Larger files than one chunk in every policy: data descriptors on each.
    for policy in [Policy::Store, Policy::Deflate, Policy::Auto] {
        let (dir, store) = new_store();
        let capsule = store.create_capsule("streamed").unwrap();
        let v1 = capsule.bump(BumpOptions::default()).unwrap();
        let art = v1.section(Section::Artifacts);
        fs::write(
            art.join("a.bin"),
            [text(3_000_000), noise(3_000_000, 1)].concat(),
        )
        .unwrap();
        fs::write(art.join("zeros.bin"), vec![0u8; 5_000_000]).unwrap();
        fs::write(art.join("small.txt"), b"x").unwrap();
        let key = format!("policy/{policy:?}.zip");
        archive::archive(
            &capsule,
            url(&key),
            ArchiveOptions {
                policy: Some(policy),
                ..Default::default()
            },
        )
        .unwrap();
        let local = dir.path().join("d.zip");
        download(&key, &local);
        check_with_external_tools(&local);
        archive::verify(&local).unwrap();
    }
}

#[test]
fn missing_bucket_missing_object_and_bad_urls_fail_clearly() {
    let (_dir, store) = new_store();
    let capsule = sample_capsule(&store, "errs");
    let err = archive::archive(
        &capsule,
        "s3://capsa-no-such-bucket/x.zip",
        ArchiveOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    assert!(err.to_string().contains("bucket"), "{err}");
    let err = archive::verify("s3://capsa-no-such-bucket/x.zip").unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    assert!(err.to_string().contains("bucket"), "{err}");
    let err = archive::verify(url("nothing/here.zip")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    assert!(err.to_string().contains("archive"), "{err}");
    for bad in [
        "s3://",
        "s3://b",
        "s3://b/",
        "s3://b/a//c.zip",
        "gs://b/x.zip",
    ] {
        let err = archive::archive(&capsule, bad, ArchiveOptions::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{bad}: {err}");
    }
    assert!(!capsule.is_offline());
}

#[test]
fn a_corrupted_object_names_the_bad_entry() {
    let (dir, store) = new_store();
    let capsule = sample_capsule(&store, "corrupt");
    let key = "corrupt/c.zip";
    archive::archive(&capsule, url(key), ArchiveOptions::default()).unwrap();
    let local = dir.path().join("c.zip");
    download(key, &local);
    // Overwrite one byte inside big.bin's data through the S3 API.
    let entries = archive::list(&local).unwrap();
    let big = entries
        .iter()
        .find(|e| e.name.ends_with("/big.bin"))
        .unwrap();
    let mut bytes = fs::read(&local).unwrap();
    let name_at = bytes
        .windows(big.name.len())
        .position(|w| w == big.name.as_bytes())
        .unwrap();
    let data_start = name_at + big.name.len();
    let pos = data_start + (big.compressed / 2) as usize;
    bytes[pos] ^= 0xFF;
    let bad = dir.path().join("bad.zip");
    fs::write(&bad, &bytes).unwrap();
    upload(&bad, key);
    let err = archive::verify(url(key)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    match &err {
        capsa::Error::Corrupt { entry, .. } => {
            assert_eq!(entry.as_deref(), Some(big.name.as_str()), "{err}")
        }
        other => panic!("{other}"),
    }
    // Not taken offline against it, nothing removed; restore refuses it.
    let before = tree_hash(capsule.path());
    let err = capsule.take_offline(url(key)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert_eq!(tree_hash(capsule.path()), before);
    let other = Store::init(dir.path().join("other"), StoreOptions::default()).unwrap();
    let err = archive::restore(url(key), &other, RestoreOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert!(!other.root().join("corrupt").exists());
}

#[test]
fn a_cancelled_upload_leaves_no_object() {
    let (_dir, store) = new_store();
    let capsule = big_capsule(&store, "cancelled", 48);
    let key = "cancel/c.zip";
    let options = ArchiveOptions::default();
    let token = options.cancel.clone();
    let fired = Arc::new(AtomicBool::new(false));
    let f2 = fired.clone();
    let err = archive::archive(
        &capsule,
        url(key),
        ArchiveOptions {
            progress: Some(Arc::new(move |p| {
                if p.bytes_done > 40 << 20 && !f2.swap(true, Ordering::SeqCst) {
                    token.cancel();
                }
            })),
            policy: Some(Policy::Store),
            ..options
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled, "{err}");
    assert!(fired.load(Ordering::SeqCst));
    assert!(!exists(key));
    assert_eq!(
        incomplete_uploads(key),
        0,
        "the multipart upload was aborted"
    );
}

/// A capsule with `mib` MiB of incompressible data in 8 MiB files.
fn big_capsule(store: &Store, id: &str, mib: usize) -> capsa::Capsule {
    let capsule = store.create_capsule(id).unwrap();
    let v1 = capsule.bump(BumpOptions::default()).unwrap();
    let art = v1.section(Section::Artifacts);
    for i in 0..mib.div_ceil(8) {
        fs::write(
            art.join(format!("plate.{i:04}.exr")),
            noise(8 << 20, i as u64 + 1),
        )
        .unwrap();
    }
    capsule
}

/// Multipart uploads in progress for `key`.
fn incomplete_uploads(key: &str) -> usize {
    let out = aws(&[
        "s3api",
        "list-multipart-uploads",
        "--bucket",
        &bucket(),
        "--prefix",
        key,
        "--output",
        "json",
    ]);
    out.matches("\"UploadId\"").count()
}

#[test]
fn stopping_the_server_mid_upload_fails_clearly_and_a_rerun_works() {
    let (_dir, store) = new_store();
    let capsule = big_capsule(&store, "stopped", 96);
    let before = tree_hash(capsule.path());
    let key = "stopped/c.zip";
    let stopped = Arc::new(AtomicBool::new(false));
    let s2 = stopped.clone();
    let err = archive::archive(
        &capsule,
        url(key),
        ArchiveOptions {
            policy: Some(Policy::Store),
            progress: Some(Arc::new(move |p| {
                if p.bytes_done > 40 << 20 && !s2.swap(true, Ordering::SeqCst) {
                    ctl("stop");
                }
            })),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(stopped.load(Ordering::SeqCst));
    eprintln!("server stopped mid-upload: {err}");
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
    assert!(err.to_string().contains(&url(key)), "{err}");
    ctl("start");
    assert!(!exists(key), "nothing half-visible at the final key");
    let report = archive::archive(&capsule, url(key), ArchiveOptions::default()).unwrap();
    assert!(report.verified);
    let stub = capsule.take_offline(url(key)).unwrap();
    assert_eq!(stub.archive, url(key));
    let back = store.retrieve("stopped").unwrap();
    assert_eq!(tree_hash(back.path()), before);
}
