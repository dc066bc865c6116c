//! `capsa staging --backend kubernetes:DIR` as separate processes against the real API server
//! of `tests/k8s` (built with the feature `kubernetes-tests` and run by `make test-k8s`; failing without a
//! usable `KUBECONFIG`).
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use capsa::runtime::block_on;
use capsa::staging::kubernetes::k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use capsa::staging::kubernetes::k8s_openapi::api::core::v1::PersistentVolumeClaim;
use capsa::staging::kubernetes::kube::api::{Api, Patch, PatchParams, PostParams};
use capsa::staging::kubernetes::kube::Client;
use serde_json::json;

const CAPSA: &str = env!("CARGO_BIN_EXE_capsa");

/// Panics unless KUBECONFIG points at the loopback test API server (make test-k8s).
fn require_control_plane() {
    let kc = std::env::var("KUBECONFIG").unwrap_or_else(|_| {
        panic!(
            "KUBECONFIG is not set: run through \
             tests/k8s/with-control-plane.sh (make test-k8s)"
        )
    });
    let text = std::fs::read_to_string(&kc).unwrap_or_else(|e| panic!("KUBECONFIG={kc}: {e}"));
    assert!(
        text.contains("https://127.0.0.1:"),
        "KUBECONFIG={kc} does not point at the loopback test API server: refusing to run"
    );
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn capsa(state: &Path, args: &[&str]) -> Command {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kubernetes");
    let mut c = Command::new(CAPSA);
    c.env_remove("CAPSA_STORE")
        .env("CAPSA_STAGING_STATE", state)
        .env(
            "CAPSA_STAGING_BACKEND",
            format!("kubernetes:{}", template.display()),
        )
        .args(args);
    c
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Play the controllers of the example template: Deployment `web` and StatefulSet `db` ready.
fn example_ready(c: &Client, ns: &str) {
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), ns);
    let d = wait_for("Deployment web", 60, || {
        block_on(deploys.get_opt("web")).unwrap()
    });
    let status = json!({"status": {"observedGeneration": d.metadata.generation, "replicas": 1,
        "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}});
    block_on(deploys.patch_status("web", &PatchParams::default(), &Patch::Merge(&status))).unwrap();
    let sets: Api<StatefulSet> = Api::namespaced(c.clone(), ns);
    let s = wait_for("StatefulSet db", 60, || {
        block_on(sets.get_opt("db")).unwrap()
    });
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), ns);
    if block_on(pvcs.get_opt("data-db-0")).unwrap().is_none() {
        let t = &s
            .spec
            .as_ref()
            .unwrap()
            .volume_claim_templates
            .as_ref()
            .unwrap()[0];
        let pvc: PersistentVolumeClaim =
            serde_json::from_value(json!({"metadata": {"name": "data-db-0"}, "spec": t.spec}))
                .unwrap();
        block_on(pvcs.create(&PostParams::default(), &pvc)).unwrap();
    }
    let status = json!({"status": {"observedGeneration": s.metadata.generation, "replicas": 1,
        "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
        "currentRevision": "db-1", "updateRevision": "db-1"}});
    block_on(sets.patch_status("db", &PatchParams::default(), &Patch::Merge(&status))).unwrap();
}

/// Two `capsa` processes sharing one state file and one cluster: while the first one's create
/// waits for readiness, the second one's commands on that staging get `BUSY` (exit 16) and
/// change nothing in the cluster; the first one then finishes Running.
#[test]
fn two_processes_are_serialized() {
    require_control_plane();
    let dir = tempfile::tempdir().unwrap();
    let state: PathBuf = dir.path().join("state.db");
    let name = format!("cli-{}", std::process::id());
    let first = capsa(
        &state,
        &[
            "staging",
            "create",
            &name,
            "--tag",
            "1.0.0",
            "--ready-timeout",
            "120",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let c = block_on(async { Client::try_default().await }).unwrap();
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), &name);
    wait_for("Deployment web", 60, || {
        block_on(deploys.get_opt("web")).unwrap()
    });

    for args in [
        vec!["staging", "update", &name, "--tag", "1.1.0"],
        vec!["staging", "delete", &name],
        vec!["staging", "create", &name, "--tag", "1.1.0"],
    ] {
        let o = capsa(&state, &args).output().unwrap();
        assert_eq!(o.status.code(), Some(16), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("[BUSY]"), "{}", text(&o));
    }
    let d = block_on(deploys.get("web")).unwrap();
    let image = d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    assert!(
        image.ends_with(":1.0.0"),
        "the loser changed the cluster: {image}"
    );

    example_ready(&c, &name);
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = capsa(&state, &["--json", "staging", "show", &name])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "Running", "{v:#}");
    // Once free, the other process may act (here with --kubeconfig instead of KUBECONFIG).
    let kc = std::env::var("KUBECONFIG").unwrap();
    let o = capsa(&state, &["staging", "delete", &name, "--kubeconfig", &kc])
        .env_remove("KUBECONFIG")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

fn control_plane_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run through tests/k8s/with-control-plane.sh (make test-k8s)")
    })
}

/// A create that gives up on readiness after 2 s: the namespace it made shows that the
/// process reached the API server with the credentials it found.
fn create_args(name: &str) -> Vec<String> {
    [
        "staging",
        "create",
        name,
        "--tag",
        "1.0.0",
        "--ready-timeout",
        "2",
    ]
    .map(String::from)
    .to_vec()
}

fn namespace_exists(name: &str) -> bool {
    use capsa::staging::kubernetes::k8s_openapi::api::core::v1::Namespace;
    let c = block_on(async { Client::try_default().await }).unwrap();
    let nss: Api<Namespace> = Api::all(c);
    block_on(nss.get_opt(name)).unwrap().is_some()
}

/// Without `--kubeconfig` or `KUBECONFIG`, `~/.kube/config` is used; with none of them and no
/// service account, the error names every place looked at.
#[test]
fn home_kubeconfig_is_the_fallback_and_none_is_a_clear_error() {
    require_control_plane();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    let state = dir.path().join("state.db");

    let name = format!("home-{}", std::process::id());
    let args = create_args(&name);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let o = capsa(&state, &args)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and not in a cluster"
        ),
        "{}",
        text(&o)
    );

    std::fs::copy(control_plane_env("KUBECONFIG"), home.join(".kube/config")).unwrap();
    let o = capsa(&state, &args)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(
        namespace_exists(&name),
        "no namespace {name}: ~/.kube/config was not used: {}",
        text(&o)
    );
}

/// Inside a pod: `KUBERNETES_SERVICE_HOST`/`_PORT` and the service account mounted at
/// /var/run/secrets/kubernetes.io/serviceaccount (here a private mount namespace with a
/// tmpfs over /run holding the test server's token and CA; nothing on the host changes).
#[test]
fn the_in_cluster_service_account_is_the_last_fallback() {
    require_control_plane();
    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("sa");
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("token"), control_plane_env("CAPSA_K8S_TOKEN")).unwrap();
    std::fs::copy(
        Path::new(&control_plane_env("CAPSA_K8S_DIR")).join("pki/apiserver.crt"),
        sa.join("ca.crt"),
    )
    .unwrap();
    std::fs::write(sa.join("namespace"), "default").unwrap();
    let server = control_plane_env("CAPSA_K8S_SERVER");
    let port = server.rsplit(':').next().unwrap().to_string();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let state = dir.path().join("state.db");
    let name = format!("pod-{}", std::process::id());
    let script = r#"set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
cp "$SA"/token "$SA"/ca.crt "$SA"/namespace /run/secrets/kubernetes.io/serviceaccount/
exec "$@""#;
    let capsa_cmd = capsa(&state, &[]);
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(CAPSA)
    .args(create_args(&name));
    for (k, v) in capsa_cmd.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let o = cmd
        .env_remove("KUBECONFIG")
        .env("HOME", &home)
        .env("SA", &sa)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &port)
        .output()
        .unwrap();
    assert!(
        namespace_exists(&name),
        "no namespace {name}: the service account was not used: {}",
        text(&o)
    );
    assert!(
        !Path::new("/run/secrets/kubernetes.io/serviceaccount/token").exists()
            || std::fs::read_to_string("/run/secrets/kubernetes.io/serviceaccount/token").unwrap()
                != control_plane_env("CAPSA_K8S_TOKEN"),
        "the mount leaked onto the host"
    );
}
