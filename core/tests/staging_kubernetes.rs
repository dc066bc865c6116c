//! The Kubernetes backend against a real kube-apiserver (the test control plane of `tests/k8s`).
//!
//! Built only with the feature `kubernetes-tests` and run by `make test-k8s`, which is
//! `tests/k8s/with-control-plane.sh cargo test -p capsa --features kubernetes-tests
//! --test staging_kubernetes`. The tests that stop the API server hold the control plane alone
//! (`require_control_plane_alone`), so any thread count works.
//! A missing `KUBECONFIG`, or one that does not point at a loopback API server, fails every
//! test.
//!
//! No controllers run: the tests play them, patching `/status`, creating the claims of the
//! StatefulSet's volume claim template, removing `pvc-protection` finalizers and finalizing
//! namespaces.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use capsa::runtime::block_on;
use capsa::staging::kubernetes::k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use capsa::staging::kubernetes::k8s_openapi::api::batch::v1::Job;
use capsa::staging::kubernetes::k8s_openapi::api::core::v1::{
    ConfigMap, Event as KEvent, Namespace, PersistentVolumeClaim, Secret, Service,
};
use capsa::staging::kubernetes::k8s_openapi::api::networking::v1::Ingress;
use capsa::staging::kubernetes::kube::api::{Api, ListParams, Patch, PatchParams};
use capsa::staging::kubernetes::kube::ResourceExt;
use capsa::staging::kubernetes::{APP_CONFIGMAP, APP_SECRET, LABEL_MANAGED_BY, LABEL_STAGING};
use capsa::staging::{
    AuditQuery, CommandRequest, KubernetesDeployer, Outcome, Override, Scope, StagingManager,
    Status,
};
use capsa::ErrorCode;
use serde_json::json;

mod k8s_common;
use k8s_common::*;

/// create → (readiness played) → Running → update (new image tag) → delete → Archived
/// (workloads gone, PVCs kept) → restore → Running (same PVCs, same settings) → delete →
/// cleanup (PVCs, Secrets, namespace gone; record gone).
#[test]
fn full_lifecycle() {
    let _cp = require_control_plane();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let m = manager(
        &dir.path().join("state.db"),
        deployer(Duration::from_secs(60)),
    );
    let name = unique("life");
    let ns = name.clone();
    let overrides = vec![
        Override::public(Scope::App, "LOG_LEVEL", "debug"),
        Override::public(Scope::Staging, "REPLICAS", "2"),
    ];

    let p = m
        .start(CommandRequest::Create {
            name: name.clone(),
            tag: "1.0.0".into(),
            overrides,
        })
        .unwrap();
    assert_eq!(p.staging.status, Status::CreatePending);
    example_ready(&c, &ns);
    let s = finish(p);
    assert_eq!(s.status, Status::Running, "{s:?}");

    // Labels on everything, the namespace included.
    let nsobj = block_on(Api::<Namespace>::all(c.clone()).get(&ns)).unwrap();
    assert_eq!(nsobj.labels().get(LABEL_STAGING), Some(&name));
    let web: Deployment = get_opt(&c, &ns, "web").unwrap();
    assert_eq!(
        web.labels().get(LABEL_MANAGED_BY).map(String::as_str),
        Some("capsa")
    );
    assert_eq!(web.labels().get(LABEL_STAGING), Some(&name));
    assert_eq!(web.spec.as_ref().unwrap().replicas, Some(2));
    let image = |d: &Deployment| {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .clone()
            .unwrap()
    };
    assert_eq!(image(&web), "registry.example.com/capsa/web:1.0.0");
    let ing: Ingress = get_opt(&c, &ns, "web").unwrap();
    assert_eq!(ing.labels().get(LABEL_STAGING), Some(&name));
    let cm: ConfigMap = get_opt(&c, &ns, APP_CONFIGMAP).unwrap();
    assert_eq!(cm.data.unwrap()["LOG_LEVEL"], "debug");

    // update: the new tag reaches the Deployment's image.
    let p = m
        .start(CommandRequest::Update {
            name: name.clone(),
            tag: "1.1.0".into(),
            overrides: None,
        })
        .unwrap();
    assert_eq!(p.staging.status, Status::UpdatePending);
    let web = wait_for("the new image", 30, || {
        let d: Deployment = get_opt(&c, &ns, "web")?;
        (image(&d) == "registry.example.com/capsa/web:1.1.0").then_some(d)
    });
    // The new generation is not observed yet: still pending.
    pending_for(&m, &name, Duration::from_millis(800));
    assert!(web.metadata.generation.unwrap() >= 2);
    example_ready(&c, &ns);
    assert_eq!(finish(p).status, Status::Running);

    // delete (archive): workloads, services, ingresses, config gone; claims and secrets kept.
    let claim = wait_for("claim data-db-0", 10, || {
        get_opt::<PersistentVolumeClaim>(&c, &ns, "data-db-0")
    });
    let claim_uid = claim.metadata.uid.clone().unwrap();
    let s = m.delete(&name).unwrap();
    assert_eq!(s.status, Status::Archived, "{s:?}");
    assert!(names::<Deployment>(&c, &ns).is_empty());
    assert!(names::<StatefulSet>(&c, &ns).is_empty());
    assert!(names::<Service>(&c, &ns).is_empty());
    assert!(names::<Ingress>(&c, &ns).is_empty());
    assert!(names::<ConfigMap>(&c, &ns).is_empty());
    assert_eq!(names::<PersistentVolumeClaim>(&c, &ns), vec!["data-db-0"]);
    assert!(names::<Secret>(&c, &ns).contains(&APP_SECRET.to_string()));
    // archive_check agrees (reconcile keeps it Archived with no problem).
    let r = m.reconcile().unwrap();
    assert_eq!(r.archive_problems, 0, "{r:?}");
    assert_eq!(m.get(&name).unwrap().status, Status::Archived);

    // restore: same settings, same claim.
    let p = m
        .start(CommandRequest::Restore { name: name.clone() })
        .unwrap();
    assert_eq!(p.staging.status, Status::CreatePending);
    example_ready(&c, &ns);
    assert_eq!(finish(p).status, Status::Running);
    let web: Deployment = get_opt(&c, &ns, "web").unwrap();
    assert_eq!(image(&web), "registry.example.com/capsa/web:1.1.0");
    assert_eq!(web.spec.as_ref().unwrap().replicas, Some(2));
    let claim: PersistentVolumeClaim = get_opt(&c, &ns, "data-db-0").unwrap();
    assert_eq!(
        claim.metadata.uid.unwrap(),
        claim_uid,
        "the same claim, not a new one"
    );
    let cm: ConfigMap = get_opt(&c, &ns, APP_CONFIGMAP).unwrap();
    assert_eq!(cm.data.unwrap()["LOG_LEVEL"], "debug");

    // delete, then cleanup: claims, secrets and the namespace gone, the record too.
    assert_eq!(m.delete(&name).unwrap().status, Status::Archived);
    let p = m
        .start(CommandRequest::Cleanup { name: name.clone() })
        .unwrap();
    play_cleanup_controllers(&c, &ns);
    assert_eq!(p.wait().unwrap(), None);
    assert_eq!(m.get(&name).unwrap_err().code(), ErrorCode::NotFound);
    assert!(block_on(Api::<Namespace>::all(c.clone()).get_opt(&ns))
        .unwrap()
        .is_none());
    assert!(names::<PersistentVolumeClaim>(&c, &ns).is_empty());
    assert!(names::<Secret>(&c, &ns).is_empty());
    let audit = m.audit_log(&AuditQuery::default()).unwrap();
    let actions: Vec<_> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.outcome))
        .collect();
    assert!(
        actions.contains(&("cleanup", Outcome::Success)),
        "{actions:?}"
    );
}

/// The staging stays pending until every workload's status says ready, then goes Running.
#[test]
fn readiness_pending_until_status_ready() {
    let _cp = require_control_plane();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let m = manager(
        &dir.path().join("state.db"),
        deployer(Duration::from_secs(60)),
    );
    let name = unique("ready");
    let p = m
        .start(CommandRequest::Create {
            name: name.clone(),
            tag: "1.0.0".into(),
            overrides: vec![],
        })
        .unwrap();
    wait_for("Deployment web", 30, || {
        get_opt::<Deployment>(&c, &name, "web")
    });
    pending_for(&m, &name, Duration::from_secs(1));
    deployment_ready(&c, &name, "web");
    // The StatefulSet is still not ready: still pending.
    pending_for(&m, &name, Duration::from_secs(1));
    statefulset_ready(&c, &name, "db");
    assert_eq!(finish(p).status, Status::Running);

    // A check on a staging whose workload loses readiness says Failure, naming it.
    let api: Api<StatefulSet> = Api::namespaced(c.clone(), &name);
    let status = json!({"status": {"readyReplicas": 0, "availableReplicas": 0}});
    block_on(api.patch_status("db", &PatchParams::default(), &Patch::Merge(&status))).unwrap();
    m.reconcile().unwrap();
    let s = m.get(&name).unwrap();
    assert_eq!(s.status, Status::Failure);
    assert!(
        s.reason.as_deref().unwrap().contains("StatefulSet/db"),
        "{s:?}"
    );
    statefulset_ready(&c, &name, "db");
    m.reconcile().unwrap();
    assert_eq!(m.get(&name).unwrap().status, Status::Running);
}

/// `Progressing=False` with `ProgressDeadlineExceeded` makes the staging Failure with that
/// reason, without waiting for the ready timeout.
#[test]
fn progress_deadline_exceeded_is_failure() {
    let _cp = require_control_plane();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let m = manager(
        &dir.path().join("state.db"),
        deployer(Duration::from_secs(120)),
    );
    let name = unique("deadline");
    let t0 = Instant::now();
    let p = m
        .start(CommandRequest::Create {
            name: name.clone(),
            tag: "1.0.0".into(),
            overrides: vec![],
        })
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(c.clone(), &name);
    let d = wait_for("Deployment web", 30, || {
        block_on(api.get_opt("web")).unwrap()
    });
    let status = json!({"status": {"observedGeneration": d.metadata.generation, "replicas": 1,
        "updatedReplicas": 1, "unavailableReplicas": 1, "conditions": [{"type": "Progressing",
        "status": "False", "reason": "ProgressDeadlineExceeded",
        "message": "ReplicaSet \"web-1\" has timed out progressing."}]}});
    block_on(api.patch_status("web", &PatchParams::default(), &Patch::Merge(&status))).unwrap();
    let s = finish(p);
    assert_eq!(s.status, Status::Failure);
    let reason = s.reason.unwrap();
    assert!(
        reason.contains("Deployment/web") && reason.contains("ProgressDeadlineExceeded"),
        "{reason}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "did not wait for the timeout"
    );
}

/// Private overrides land only in a Secret: not in a ConfigMap, an annotation, any other
/// object, an event, the capsa audit log or events, the backend output, a `tracing` log of
/// this process at any level, the API server log.
#[test]
fn private_overrides_only_in_a_secret() {
    let _cp = require_control_plane();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let m = manager(
        &dir.path().join("state.db"),
        deployer(Duration::from_secs(60)),
    );
    let name = unique("private");
    let secret = format!("pw-{}-s3cr3t-value", std::process::id());
    let p = m
        .start(CommandRequest::Create {
            name: name.clone(),
            tag: "1.0.0".into(),
            overrides: vec![
                Override::private(Scope::App, "DB_PASSWORD", &secret),
                Override::public(Scope::App, "LOG_LEVEL", "info"),
            ],
        })
        .unwrap();
    example_ready(&c, &name);
    let s = finish(p);
    assert_eq!(s.status, Status::Running);

    // In the Secret, as data.
    let sec: Secret = get_opt(&c, &name, APP_SECRET).unwrap();
    assert_eq!(
        sec.data.as_ref().unwrap()["DB_PASSWORD"].0,
        secret.as_bytes()
    );
    // Not in the Secret's metadata (annotations, managed fields), plain or base64.
    let b64 = {
        let v = serde_json::to_value(&sec).unwrap();
        v["data"]["DB_PASSWORD"].as_str().unwrap().to_string()
    };
    let leaks = |text: &str| text.contains(&secret) || text.contains(&b64);
    assert!(!leaks(&serde_json::to_string(&sec.metadata).unwrap()));
    // Nowhere in any other object of the namespace, annotations included.
    let mut seen = 0;
    macro_rules! scan {
        ($t:ty) => {{
            let api: Api<$t> = Api::namespaced(c.clone(), &name);
            for o in block_on(api.list(&ListParams::default())).unwrap().items {
                let text = serde_json::to_string(&o).unwrap();
                assert!(!leaks(&text), "private value in {}", o.name_any());
                seen += 1;
            }
        }};
    }
    scan!(ConfigMap);
    scan!(Deployment);
    scan!(StatefulSet);
    scan!(Service);
    scan!(Ingress);
    scan!(PersistentVolumeClaim);
    assert!(seen >= 6, "scanned {seen} objects");
    let nsobj = block_on(Api::<Namespace>::all(c.clone()).get(&name)).unwrap();
    assert!(!leaks(&serde_json::to_string(&nsobj).unwrap()));
    // Not in any event of the cluster.
    let events = block_on(Api::<KEvent>::all(c.clone()).list(&ListParams::default())).unwrap();
    assert!(!leaks(&serde_json::to_string(&events.items).unwrap()));
    // Not in capsa's audit log, events or the staging record.
    let audit = m.audit_log(&AuditQuery::default()).unwrap();
    assert!(!leaks(&serde_json::to_string(&audit).unwrap()));
    assert!(!leaks(&format!("{audit:?}")));
    let evs = m.events_since(0, 1000).unwrap();
    assert!(!leaks(&serde_json::to_string(&evs).unwrap()));
    assert!(!leaks(&format!("{:?}", m.get(&name).unwrap())));
    // Not in any log line of this process (capsa, kube, hyper, at every level).
    let log = logs::text();
    assert!(log.contains("applied"), "the log capture works: {log}");
    assert!(!leaks(&log), "private value in a tracing log");
    // Not in the API server's log.
    if let Some(d) = std::env::var_os("CAPSA_K8S_DIR") {
        let path = Path::new(&d).join("kube-apiserver.log");
        let log =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!leaks(&log), "private value in the API server log");
    }

    // A private Staging-scope override rendered into a non-Secret object is refused, and the
    // refusal does not show it.
    let tpl = tempfile::tempdir().unwrap();
    std::fs::write(
        tpl.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leaky\ndata:\n  token: \"{{ staging.TOKEN }}\"\n",
    )
    .unwrap();
    let d = KubernetesDeployer::new(tpl.path(), None)
        .unwrap()
        .with_ready_timeout(Duration::from_secs(5));
    let m2 = manager(&dir.path().join("state2.db"), d);
    let name2 = unique("leaky");
    let s = m2
        .create(
            &name2,
            "1.0.0",
            vec![Override::private(Scope::Staging, "TOKEN", &secret)],
        )
        .unwrap();
    assert_eq!(s.status, Status::Failure);
    let reason = s.reason.unwrap();
    assert!(reason.contains("only be used in a Secret"), "{reason}");
    assert!(!leaks(&reason));
    assert!(get_opt::<ConfigMap>(&c, &name2, "leaky").is_none());
}

/// The API server stops in the middle of `create`: the command fails with a reason, nothing
/// is deleted; once it is back, `reconcile` brings the staging to its true status.
#[test]
fn api_server_down_mid_create_then_reconcile() {
    let _cp = require_control_plane_alone();
    let dir = tempfile::tempdir().unwrap();
    let m = manager(
        &dir.path().join("state.db"),
        deployer(Duration::from_secs(8)),
    );
    let name = unique("outage");
    let p = m
        .start(CommandRequest::Create {
            name: name.clone(),
            tag: "1.0.0".into(),
            overrides: vec![],
        })
        .unwrap();
    // Every object applied and the prune done (the deployer logs "applied" just before it
    // starts polling): the command is waiting for readiness.
    let applied = format!("message=applied name={name} ");
    wait_for("the applied log line", 30, || {
        logs::text().contains(&applied).then_some(())
    });
    // SIGKILL: a SIGTERM'd API server keeps answering through its graceful shutdown, which
    // can outlast the readiness wait.
    apiserver("kill");
    let s = p.wait();
    // While it is down: a reconcile cannot ask, and changes nothing.
    let r = m.reconcile();
    apiserver("start");
    let s = s.unwrap().unwrap();
    assert_eq!(s.status, Status::Failure, "{s:?}");
    let reason = s.reason.clone().unwrap();
    assert!(reason.contains("readiness unknown"), "{reason}");
    let audit = m.audit_log(&AuditQuery::default()).unwrap();
    let create = audit.iter().find(|a| a.action == "create").unwrap();
    assert_eq!(create.outcome, Outcome::Failure, "{audit:?}");
    let r = r.unwrap();
    assert!(r.transient_errors >= 1, "{r:?}");
    assert_eq!(m.get(&name).unwrap().status, Status::Failure);

    // Nothing was deleted.
    let c = client();
    wait_for("the API server back", 60, || {
        block_on(Api::<Namespace>::all(c.clone()).get_opt(&name)).ok()
    })
    .expect("namespace still there");
    assert!(get_opt::<Deployment>(&c, &name, "web").is_some());
    assert!(get_opt::<StatefulSet>(&c, &name, "db").is_some());
    assert!(get_opt::<ConfigMap>(&c, &name, APP_CONFIGMAP).is_some());
    assert!(get_opt::<Secret>(&c, &name, APP_SECRET).is_some());

    // The workloads are in fact fine: reconcile finds it Running.
    example_ready(&c, &name);
    m.reconcile().unwrap();
    let s = m.get(&name).unwrap();
    assert_eq!(s.status, Status::Running, "{s:?}");
}

/// Two managers sharing one state file and one cluster: one command at a time per staging,
/// the loser gets `Busy` and nothing reaches the cluster from it.
#[test]
fn two_managers_are_serialized() {
    let _cp = require_control_plane();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let m1 = manager(&state, deployer(Duration::from_secs(60)));
    let m2 = manager(&state, deployer(Duration::from_secs(60)));
    let name = unique("busy");
    let p = m1
        .start(CommandRequest::Create {
            name: name.clone(),
            tag: "1.0.0".into(),
            overrides: vec![],
        })
        .unwrap();
    wait_for("Deployment web", 30, || {
        get_opt::<Deployment>(&c, &name, "web")
    });
    let e = m2.create(&name, "1.1.0", vec![]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Busy, "{e}");
    let e = m2.update(&name, "1.1.0", None).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Busy, "{e}");
    let e = m2.delete(&name).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Busy, "{e}");
    let web: Deployment = get_opt(&c, &name, "web").unwrap();
    let image = web.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    assert!(image.ends_with(":1.0.0"), "{image}");
    example_ready(&c, &name);
    assert_eq!(finish(p).status, Status::Running);
    // Once free, the other manager may act.
    assert_eq!(m2.get(&name).unwrap().status, Status::Running);
    assert_eq!(m2.delete(&name).unwrap().status, Status::Archived);
}

/// The template's `capsa.yaml` declares the allowed tags; a refused tag touches nothing.
#[test]
fn tag_check_follows_the_template() {
    let _cp = require_control_plane();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let m = manager(
        &dir.path().join("state.db"),
        deployer(Duration::from_secs(5)),
    );
    let name = unique("tags");
    let e = m.create(&name, "2.0.0", vec![]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    assert!(e.to_string().contains(">=1.0, <2"), "{e}");
    assert!(block_on(Api::<Namespace>::all(c.clone()).get_opt(&name))
        .unwrap()
        .is_none());
    // Any tag passes a template without settings.
    let tpl = tempfile::tempdir().unwrap();
    std::fs::write(
        tpl.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  tag: \"{{ tag }}\"\n",
    )
    .unwrap();
    let d = KubernetesDeployer::new(tpl.path(), None).unwrap();
    let m2 = manager(&dir.path().join("state2.db"), d);
    let s = m2.create(&name, "nightly-7", vec![]).unwrap();
    assert_eq!(s.status, Status::Running, "{s:?}");
    let cm: ConfigMap = get_opt(&c, &name, "x").unwrap();
    assert_eq!(cm.data.unwrap()["tag"], "nightly-7");
}

/// `update` deletes the staging's objects that the template no longer holds (claims excepted)
/// and keeps the app ConfigMap and Secret.
#[test]
fn update_prunes_objects_dropped_from_the_template() {
    let _cp = require_control_plane();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let tpl = tempfile::tempdir().unwrap();
    let cm = |n: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\ndata:\n  tag: \"{{{{ tag }}}}\"\n")
    };
    let pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: keepme\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n";
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: extra\nstringData:\n  k: v\n";
    std::fs::write(
        tpl.path().join("all.yaml"),
        format!("{}---\n{}---\n{pvc}---\n{secret}", cm("a"), cm("b")),
    )
    .unwrap();
    let d = KubernetesDeployer::new(tpl.path(), None).unwrap();
    let m = manager(&dir.path().join("state.db"), d);
    let name = unique("prune");
    let s = m
        .create(
            &name,
            "1.0.0",
            vec![Override::private(Scope::App, "PW", "x")],
        )
        .unwrap();
    assert_eq!(s.status, Status::Running, "{s:?}");
    let mut all = names::<ConfigMap>(&c, &name);
    all.sort();
    assert_eq!(all, vec!["a", "b", APP_CONFIGMAP]);
    std::fs::write(tpl.path().join("all.yaml"), cm("a")).unwrap();
    let s = m.update(&name, "1.1.0", None).unwrap();
    assert_eq!(s.status, Status::Running, "{s:?}");
    let mut all = names::<ConfigMap>(&c, &name);
    all.sort();
    assert_eq!(all, vec!["a", APP_CONFIGMAP]);
    assert_eq!(names::<Secret>(&c, &name), vec![APP_SECRET]);
    assert_eq!(names::<PersistentVolumeClaim>(&c, &name), vec!["keepme"]);
    let a: ConfigMap = get_opt(&c, &name, "a").unwrap();
    assert_eq!(a.data.unwrap()["tag"], "1.1.0");
}

/// A cleanup while the API server is down never takes the failed read for "already gone": the
/// command fails with a reason, the record stays; once the server is back, everything is still
/// there and a new cleanup removes it.
#[test]
fn cleanup_with_api_server_down_removes_nothing() {
    let _cp = require_control_plane_alone();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let tpl = tempfile::tempdir().unwrap();
    std::fs::write(
        tpl.path().join("all.yaml"),
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: files\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n",
    )
    .unwrap();
    let d = KubernetesDeployer::new(tpl.path(), None)
        .unwrap()
        .with_cleanup_timeout(Duration::from_secs(30))
        .with_poll_interval(Duration::from_millis(200))
        .with_retries(2);
    let m = manager(&dir.path().join("state.db"), d);
    let name = unique("keep");
    assert_eq!(
        m.create(&name, "1.0.0", vec![]).unwrap().status,
        Status::Running
    );
    assert_eq!(m.delete(&name).unwrap().status, Status::Archived);
    apiserver("stop");
    let r = m.cleanup(&name);
    apiserver("start");
    let s = r.unwrap().expect("the record stays");
    assert_eq!(s.status, Status::Failure, "{s:?}");
    assert!(s.reason.as_deref().unwrap().contains("Namespace"), "{s:?}");
    let c2 = client();
    wait_for("the API server back", 60, || {
        block_on(Api::<Namespace>::all(c2.clone()).get_opt(&name)).ok()
    })
    .expect("namespace still there");
    assert_eq!(names::<PersistentVolumeClaim>(&c, &name), vec!["files"]);
    assert!(get_opt::<Secret>(&c, &name, APP_SECRET).is_some());
    // Back up: cleanup (from Failure) removes it all.
    let p = m
        .start(CommandRequest::Cleanup { name: name.clone() })
        .unwrap();
    play_cleanup_controllers(&c, &name);
    assert_eq!(p.wait().unwrap(), None);
}

/// A template of one Job (a migration run once per deploy).
fn job_template(dir: &Path) -> PathBuf {
    let t = dir.join("job-template");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("capsa.yaml"), "tag_range: \">=1.0, <2\"\n").unwrap();
    std::fs::write(
        t.join("migrate.yaml"),
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: "registry.example.com/capsa/migrate:{{ tag }}"
"#,
    )
    .unwrap();
    t
}

fn job_manager(dir: &Path, ready: Duration) -> StagingManager {
    manager(&dir.join("state.db"), deployer_of(job_template(dir), ready))
}

/// A staging whose template holds a Job stays pending until the Job completes, then runs.
#[test]
fn a_job_is_ready_once_complete() {
    let _cp = require_control_plane();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let m = job_manager(dir.path(), Duration::from_secs(60));
    let name = unique("job-ok");
    let p = m
        .start(CommandRequest::Create {
            name: name.clone(),
            tag: "1.0.0".into(),
            overrides: vec![],
        })
        .unwrap();
    wait_for("Job migrate", 30, || get_opt::<Job>(&c, &name, "migrate"));
    pending_for(&m, &name, Duration::from_secs(1));
    job_ends(&c, &name, "migrate", "Complete");
    assert_eq!(finish(p).status, Status::Running);
}

/// A failed Job ends the wait at once: Failure naming the Job and its reason, long before
/// the ready timeout.
#[test]
fn a_failed_job_ends_the_wait() {
    let _cp = require_control_plane();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let m = job_manager(dir.path(), Duration::from_secs(300));
    let name = unique("job-failed");
    let t0 = Instant::now();
    let p = m
        .start(CommandRequest::Create {
            name: name.clone(),
            tag: "1.0.0".into(),
            overrides: vec![],
        })
        .unwrap();
    job_ends(&c, &name, "migrate", "Failed");
    let s = finish(p);
    assert_eq!(s.status, Status::Failure);
    let reason = s.reason.unwrap();
    assert!(
        reason.contains("Job/migrate") && reason.contains("BackoffLimitExceeded"),
        "{reason}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "waited for the ready timeout"
    );
}
