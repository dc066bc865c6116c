//! Shared by the suites that run against the test control plane (`tests/k8s`): the guard
//! that refuses anything but the loopback API server, log capture, and the tests playing the
//! controllers that do not run (deployments, stateful sets, claims, namespaces).
#![allow(dead_code)] // each suite uses its own part

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capsa::runtime::block_on;
use capsa::staging::kubernetes::k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use capsa::staging::kubernetes::k8s_openapi::api::batch::v1::Job;
use capsa::staging::kubernetes::k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use capsa::staging::kubernetes::kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use capsa::staging::kubernetes::kube::{Client, ResourceExt};
use capsa::staging::{KubernetesDeployer, ManagerOptions, PendingCommand, StagingManager};
use serde_json::json;

pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Every `tracing` event and span field of the process (capsa's, kube's, hyper's…), at every
/// level, captured so that a test can look for private values in the logs.
pub mod logs {
    use std::fmt::Write;
    use std::sync::{Mutex, OnceLock};
    use tracing::field::{Field, Visit};
    use tracing::{span, Event, Metadata, Subscriber};

    static LOG: Mutex<String> = Mutex::new(String::new());

    struct Capture;
    struct Fields<'a>(&'a mut String);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={v:?}", f.name());
        }
    }

    fn push(s: &str) {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).push_str(s);
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, a: &span::Attributes<'_>) -> span::Id {
            let mut s = format!("\nspan {}", a.metadata().name());
            a.record(&mut Fields(&mut s));
            push(&s);
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, r: &span::Record<'_>) {
            let mut s = String::new();
            r.record(&mut Fields(&mut s));
            push(&s);
        }
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, e: &Event<'_>) {
            let m = e.metadata();
            let mut s = format!("\n{} {}", m.level(), m.target());
            e.record(&mut Fields(&mut s));
            push(&s);
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }

    pub fn install() {
        static ONCE: OnceLock<()> = OnceLock::new();
        ONCE.get_or_init(|| {
            let _ = tracing::subscriber::set_global_default(Capture);
        });
    }

    pub fn text() -> String {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub fn template() -> PathBuf {
    Path::new(ROOT).join("examples/kubernetes")
}

/// Tests share the control plane; a test that stops the API server holds it alone.
pub static CONTROL_PLANE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Panics unless KUBECONFIG points at the loopback test API server (make test-k8s); holds the
/// control plane shared (no outage test runs meanwhile, however the tests are started).
pub fn require_control_plane() -> std::sync::RwLockReadGuard<'static, ()> {
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
    logs::install();
    CONTROL_PLANE.read().unwrap_or_else(|e| e.into_inner())
}

/// As `require_control_plane`, holding the control plane alone: for the tests that stop the
/// API server.
pub fn require_control_plane_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    drop(require_control_plane());
    CONTROL_PLANE.write().unwrap_or_else(|e| e.into_inner())
}

/// A staging name unique to this run.
pub fn unique(base: &str) -> String {
    format!("{base}-{}", std::process::id())
}

pub fn client() -> Client {
    block_on(async { Client::try_default().await }).expect("client from KUBECONFIG")
}

pub fn deployer(ready: Duration) -> KubernetesDeployer {
    deployer_of(template(), ready)
}

/// A deployer of the template in `dir` with the test timings.
pub fn deployer_of(dir: PathBuf, ready: Duration) -> KubernetesDeployer {
    KubernetesDeployer::new(dir, None)
        .expect("deployer")
        .with_ready_timeout(ready)
        .with_cleanup_timeout(Duration::from_secs(60))
        .with_poll_interval(Duration::from_millis(200))
        .with_retries(2)
}

pub fn manager(state: &Path, d: KubernetesDeployer) -> StagingManager {
    let opts = ManagerOptions {
        check_interval: Duration::ZERO,
        ..ManagerOptions::default()
    };
    StagingManager::open_sqlite(state, Arc::new(d), opts).expect("manager")
}

pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn get_opt<K>(c: &Client, ns: &str, name: &str) -> Option<K>
where
    K: capsa::staging::kubernetes::kube::Resource<
            Scope = capsa::staging::kubernetes::k8s_openapi::NamespaceResourceScope,
            DynamicType = (),
        > + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(c.clone(), ns);
    block_on(api.get_opt(name)).expect("get")
}

pub fn names<K>(c: &Client, ns: &str) -> Vec<String>
where
    K: capsa::staging::kubernetes::kube::Resource<
            Scope = capsa::staging::kubernetes::k8s_openapi::NamespaceResourceScope,
            DynamicType = (),
        > + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(c.clone(), ns);
    let l = block_on(api.list(&ListParams::default())).expect("list");
    l.items.iter().map(|o| o.name_any()).collect()
}

/// Wait until the Deployment exists at a generation its status has not observed, then play
/// the deployment controller: everything rolled out.
pub fn deployment_ready(c: &Client, ns: &str, name: &str) {
    let api: Api<Deployment> = Api::namespaced(c.clone(), ns);
    let d = wait_for(&format!("Deployment {ns}/{name}"), 30, || {
        block_on(api.get_opt(name)).expect("get")
    });
    let generation = d.metadata.generation.expect("generation");
    let r = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = json!({"status": {"observedGeneration": generation, "replicas": r,
        "updatedReplicas": r, "readyReplicas": r, "availableReplicas": r, "conditions": [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}});
    block_on(api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)))
        .expect("patch deployment status");
}

/// Play the StatefulSet controller: the claims of its volume claim template exist (created
/// if missing) and every replica is ready at the current revision.
pub fn statefulset_ready(c: &Client, ns: &str, name: &str) {
    let api: Api<StatefulSet> = Api::namespaced(c.clone(), ns);
    let s = wait_for(&format!("StatefulSet {ns}/{name}"), 30, || {
        block_on(api.get_opt(name)).expect("get")
    });
    let spec = s.spec.as_ref().expect("spec");
    let r = spec.replicas.unwrap_or(1);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), ns);
    for t in spec.volume_claim_templates.iter().flatten() {
        for i in 0..r {
            let claim = format!("{}-{name}-{i}", t.name_any());
            if block_on(pvcs.get_opt(&claim)).expect("get").is_none() {
                let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
                    "metadata": {"name": claim, "labels": {"app": name}},
                    "spec": t.spec,
                }))
                .expect("pvc");
                block_on(pvcs.create(&PostParams::default(), &pvc)).expect("create pvc");
            }
        }
    }
    let generation = s.metadata.generation.expect("generation");
    let rev = format!("{name}-{generation}");
    let status = json!({"status": {"observedGeneration": generation, "replicas": r,
        "readyReplicas": r, "currentReplicas": r, "updatedReplicas": r, "availableReplicas": r,
        "currentRevision": rev, "updateRevision": rev}});
    block_on(api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)))
        .expect("patch statefulset status");
}

pub fn example_ready(c: &Client, ns: &str) {
    deployment_ready(c, ns, "web");
    statefulset_ready(c, ns, "db");
}

/// Play the namespace and PVC-protection controllers while a cleanup runs: drop the
/// finalizers of deleted claims, finalize the namespace once it is terminating.
pub fn play_cleanup_controllers(c: &Client, ns: &str) {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), ns);
    let nss: Api<Namespace> = Api::all(c.clone());
    wait_for(&format!("Namespace {ns} gone"), 60, || {
        for p in block_on(pvcs.list(&ListParams::default()))
            .expect("list")
            .items
        {
            if p.metadata.deletion_timestamp.is_some() && !p.finalizers().is_empty() {
                let patch = json!({"metadata": {"finalizers": null}});
                block_on(pvcs.patch(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                ))
                .expect("drop pvc finalizers");
            }
        }
        match block_on(nss.get_opt(ns)).expect("get namespace") {
            None => Some(()),
            Some(mut n) if n.metadata.deletion_timestamp.is_some() => {
                if let Some(spec) = n.spec.as_mut() {
                    spec.finalizers = Some(vec![]);
                }
                let body = serde_json::to_vec(&n).expect("json");
                block_on(nss.replace_subresource("finalize", ns, &PostParams::default(), body))
                    .expect("finalize namespace");
                None
            }
            Some(_) => None,
        }
    });
}

pub fn finish(p: PendingCommand) -> capsa::staging::Staging {
    p.wait().expect("command").expect("staging still recorded")
}

pub fn pending_for(m: &StagingManager, name: &str, d: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        let s = m.get(name).expect("get");
        assert!(
            s.status.is_pending(),
            "expected a pending status, got {s:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn apiserver(action: &str) {
    let st = std::process::Command::new(Path::new(ROOT).join("tests/k8s/apiserver.sh"))
        .arg(action)
        .status()
        .expect("run tests/k8s/apiserver.sh");
    assert!(st.success(), "tests/k8s/apiserver.sh {action} failed: {st}");
}

/// Play the Job controller: Job `name` ends with `outcome` (`Complete`, or failed for any
/// other), with the conditions the API server requires before it (SuccessCriteriaMet /
/// FailureTarget).
pub fn job_ends(c: &Client, ns: &str, name: &str, outcome: &str) {
    let api: Api<Job> = Api::namespaced(c.clone(), ns);
    wait_for(&format!("Job {ns}/{name}"), 30, || {
        block_on(api.get_opt(name)).expect("get")
    });
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = match outcome {
        "Complete" => json!({"status": {"startTime": now, "completionTime": now,
            "succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
             "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached",
             "lastTransitionTime": now}]}}),
        _ => json!({"status": {"startTime": now, "failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastTransitionTime": now},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastTransitionTime": now}]}}),
    };
    block_on(api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)))
        .expect("patch job status");
}
