//! Real stacks on the real kube-apiserver (the test control plane of `tests/k8s`, run by `make
//! test-k8s`): the Cosmogony template of `examples/kubernetes-cosmogony` (Deployments, a
//! StatefulSet, Services, an Ingress, claims, a PersistentVolume, a Job, Argo's
//! WorkflowTemplate and Workflow as custom resources) and the Helm chart of
//! `examples/kubernetes-chart`, rendered by the real `helm` (`CAPSA_HELM`, built by
//! `tests/helm/build.sh`), each through create → update → delete → restore → cleanup.
//!
//! No controllers run: the tests play them (status patches, finalizers), as in
//! `staging_kubernetes.rs`.

mod k8s_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use capsa::runtime::block_on;
use capsa::staging::kubernetes::k8s_openapi::api::apps::v1::Deployment;
use capsa::staging::kubernetes::k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Secret, Service,
};
use capsa::staging::kubernetes::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use capsa::staging::kubernetes::kube::api::{
    Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use capsa::staging::kubernetes::kube::core::GroupVersionKind;
use capsa::staging::kubernetes::kube::{Client, ResourceExt};
use capsa::staging::kubernetes::LABEL_STAGING;
use capsa::staging::{CommandRequest, Override, PendingCommand, Scope, StagingManager, Status};
use k8s_common::*;
use serde_json::json;

fn example(dir: &str) -> PathBuf {
    Path::new(ROOT).join("examples").join(dir)
}

/// Argo's two kinds, as much of their CRDs as a staging needs (no schema: any fields).
fn install_argo_crds(c: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(c.clone());
    for (plural, kind) in [
        ("workflows", "Workflow"),
        ("workflowtemplates", "WorkflowTemplate"),
    ] {
        let name = format!("{plural}.argoproj.io");
        if block_on(api.get_opt(&name)).expect("get crd").is_none() {
            let crd: CustomResourceDefinition = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"group": "argoproj.io", "scope": "Namespaced",
                    "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind,
                              "listKind": format!("{kind}List")},
                    "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                        "subresources": {"status": {}},
                        "schema": {"openAPIV3Schema": {"type": "object",
                            "x-kubernetes-preserve-unknown-fields": true}}}]}
            }))
            .expect("crd");
            match block_on(api.create(&PostParams::default(), &crd)) {
                Ok(_) => {}
                // Another run made it first.
                Err(capsa::staging::kubernetes::kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("create crd {name}: {e}"),
            }
        }
        wait_for(&format!("CRD {name} established"), 30, || {
            let crd = block_on(api.get(&name)).expect("get crd");
            let established = crd.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            established.then_some(())
        });
    }
}

fn argo(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind))
}

fn dynamic_names(c: &Client, ns: &str, ar: &ApiResource) -> Vec<String> {
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), ns, ar);
    let l = block_on(api.list(&ListParams::default())).expect("list");
    l.items.iter().map(|o| o.name_any()).collect()
}

/// Play Argo: the Workflow's `status.phase`.
fn workflow_phase(c: &Client, ns: &str, name: &str, phase: &str) {
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), ns, &argo("Workflow"));
    wait_for(&format!("Workflow {ns}/{name}"), 30, || {
        block_on(api.get_opt(name)).expect("get")
    });
    let status = json!({"status": {"phase": phase}});
    block_on(api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)))
        .expect("patch workflow status");
}

fn image(d: &Deployment) -> String {
    let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    spec.and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

/// Wait until an update has applied the Deployment with `want` as its image.
fn wait_image(c: &Client, ns: &str, name: &str, want: &str) {
    wait_for(&format!("Deployment {ns}/{name} at {want}"), 30, || {
        let d: Deployment = get_opt(c, ns, name)?;
        (image(&d) == want).then_some(())
    });
}

/// Every controller the Cosmogony stack waits on, but Argo.
fn cosmogony_workloads_ready(c: &Client, ns: &str, tag: &str) {
    for d in ["minio", "tiles", "api", "web"] {
        deployment_ready(c, ns, d);
    }
    statefulset_ready(c, ns, "postgres");
    job_ends(c, ns, &format!("import-{tag}"), "Complete");
}

/// Play the PV-protection controller for the staging's volumes being deleted.
fn release_volumes(c: &Client, staging: &str) {
    let pvs: Api<PersistentVolume> = Api::all(c.clone());
    let lp = ListParams::default().labels(&format!("{LABEL_STAGING}={staging}"));
    wait_for(&format!("the volumes of {staging} gone"), 60, || {
        let l = block_on(pvs.list(&lp)).expect("list pvs");
        if l.items.is_empty() {
            return Some(());
        }
        for p in l.items {
            if p.metadata.deletion_timestamp.is_some() && !p.finalizers().is_empty() {
                let patch = json!({"metadata": {"finalizers": null}});
                block_on(pvs.patch(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                ))
                .expect("drop pv finalizers");
            }
        }
        None
    });
}

/// Cleanup while the tests play the namespace, claim and volume controllers.
fn cleanup(m: &StagingManager, c: &Client, name: &str) {
    let pending = m
        .start(CommandRequest::Cleanup { name: name.into() })
        .expect("cleanup starts");
    let (c1, c2, n1, n2) = (c.clone(), c.clone(), name.to_string(), name.to_string());
    let ns_thread = std::thread::spawn(move || play_cleanup_controllers(&c1, &n1));
    let pv_thread = std::thread::spawn(move || release_volumes(&c2, &n2));
    assert!(
        pending.wait().expect("cleanup").is_none(),
        "the record is gone"
    );
    ns_thread.join().expect("namespace controller");
    pv_thread.join().expect("volume controller");
}

fn create(
    m: &StagingManager,
    name: &str,
    tag: &str,
    overrides: Vec<Override>,
) -> capsa::Result<PendingCommand> {
    m.start(CommandRequest::Create {
        name: name.into(),
        tag: tag.into(),
        overrides,
    })
}

fn update(m: &StagingManager, name: &str, tag: &str) -> capsa::Result<PendingCommand> {
    m.start(CommandRequest::Update {
        name: name.into(),
        tag: tag.into(),
        overrides: None,
    })
}

fn restore(m: &StagingManager, name: &str) -> capsa::Result<PendingCommand> {
    m.start(CommandRequest::Restore { name: name.into() })
}

fn uid<K: ResourceExt>(o: &K) -> String {
    o.uid().expect("uid")
}

/// create (pending until the Job completes and Argo's Workflow succeeds) → update → delete
/// (workloads and custom resources gone; claims, Secrets and the volume kept) → restore (the
/// same claims and volume) → delete → cleanup (nothing of the staging left in the namespace or
/// the cluster).
#[test]
fn the_cosmogony_stack_through_its_whole_lifecycle() {
    let _cp = require_control_plane();
    let c = client();
    install_argo_crds(&c);
    let state = tempfile::tempdir().unwrap();
    let m = manager(
        &state.path().join("state.db"),
        deployer_of(example("kubernetes-cosmogony"), Duration::from_secs(60)),
    );
    let name = unique("cosmo");
    let ns = name.clone();
    let overrides = vec![
        Override::private(Scope::Staging, "PG_PASSWORD", "pg-s3cret-9"),
        Override::public(Scope::Staging, "REGION", "andorra"),
        Override::public(Scope::App, "API_WORKERS", "4"),
    ];

    // create: Running only once every workload is ready, the Job complete and the Workflow
    // succeeded; the Workflow's failure phases are read from capsa.yaml's rule.
    let pending = create(&m, &name, "1.0.0", overrides.clone()).expect("create starts");
    cosmogony_workloads_ready(&c, &ns, "1.0.0");
    workflow_phase(&c, &ns, "data-refresh-first", "Running");
    pending_for(&m, &name, Duration::from_secs(1));
    workflow_phase(&c, &ns, "data-refresh-first", "Succeeded");
    let s = finish(pending);
    assert_eq!(s.status, Status::Running, "{s:?}");

    // What landed: the volume, cluster-scoped, labelled; Argo's braces left to Argo; the
    // private password only in its Secret; info from the Ingress.
    let pvs: Api<PersistentVolume> = Api::all(c.clone());
    let pv_name = format!("{ns}-tiles-cache");
    let pv = block_on(pvs.get(&pv_name)).expect("the volume");
    assert_eq!(pv.labels().get(LABEL_STAGING), Some(&name));
    assert!(pv.namespace().is_none());
    let wt: Api<DynamicObject> = Api::namespaced_with(c.clone(), &ns, &argo("WorkflowTemplate"));
    let wt = serde_json::to_string(&block_on(wt.get("data-refresh")).expect("template")).unwrap();
    assert!(
        wt.contains("{{steps.extract.outputs.parameters.file}}"),
        "{wt}"
    );
    assert!(wt.contains("\"value\":\"andorra\""), "{wt}");
    let secret: Secret = get_opt(&c, &ns, "postgres").expect("postgres secret");
    let pw = secret
        .data
        .as_ref()
        .and_then(|d| d.get("POSTGRES_PASSWORD"))
        .expect("password");
    assert_eq!(pw.0, b"pg-s3cret-9");
    for cm in names::<ConfigMap>(&c, &ns) {
        let cm: ConfigMap = get_opt(&c, &ns, &cm).unwrap();
        assert!(!serde_json::to_string(&cm).unwrap().contains("pg-s3cret-9"));
    }
    let urls = m.info(&name).expect("info");
    assert_eq!(urls.len(), 1, "{urls:?}");
    assert_eq!(
        (urls[0].name.as_str(), urls[0].url.as_str()),
        (
            "web",
            format!("https://{name}.cosmogony.localhost/").as_str()
        )
    );

    // update: the new tag everywhere, the old import Job pruned for the new one.
    let pending = update(&m, &name, "1.1.0").expect("update starts");
    wait_image(&c, &ns, "api", "registry.example.com/cosmogony/api:1.1.0");
    cosmogony_workloads_ready(&c, &ns, "1.1.0");
    let s = finish(pending);
    assert_eq!(s.status, Status::Running, "{s:?}");
    let api: Deployment = get_opt(&c, &ns, "api").unwrap();
    let image = api.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(
        image.as_deref(),
        Some("registry.example.com/cosmogony/api:1.1.0")
    );
    let jobs = names::<capsa::staging::kubernetes::k8s_openapi::api::batch::v1::Job>(&c, &ns);
    assert_eq!(jobs, vec!["import-1.1.0".to_string()]);

    // delete: workloads, services, ingress and Argo's objects gone; the data kept.
    let claims_before: Vec<String> = {
        let mut v = names::<PersistentVolumeClaim>(&c, &ns);
        v.sort();
        v
    };
    assert_eq!(
        claims_before,
        ["data-postgres-0", "minio-data", "tiles-cache"]
    );
    let claim_uids: Vec<String> = claims_before
        .iter()
        .map(|n| uid(&get_opt::<PersistentVolumeClaim>(&c, &ns, n).unwrap()))
        .collect();
    let pv_uid = uid(&pv);
    let s = m.delete(&name).expect("delete");
    assert_eq!(s.status, Status::Archived, "{s:?}");
    assert!(names::<Deployment>(&c, &ns).is_empty());
    assert!(names::<Service>(&c, &ns).is_empty());
    assert!(dynamic_names(&c, &ns, &argo("Workflow")).is_empty());
    assert!(dynamic_names(&c, &ns, &argo("WorkflowTemplate")).is_empty());
    let mut claims = names::<PersistentVolumeClaim>(&c, &ns);
    claims.sort();
    assert_eq!(claims, claims_before, "delete keeps the claims");
    assert!(names::<Secret>(&c, &ns).contains(&"postgres".to_string()));
    assert_eq!(
        uid(&block_on(pvs.get(&pv_name)).unwrap()),
        pv_uid,
        "delete keeps the volume"
    );

    // restore: the same claims and volume serve the restored stack.
    let pending = restore(&m, &name).expect("restore starts");
    cosmogony_workloads_ready(&c, &ns, "1.1.0");
    workflow_phase(&c, &ns, "data-refresh-first", "Succeeded");
    let s = finish(pending);
    assert_eq!(s.status, Status::Running, "{s:?}");
    let uids: Vec<String> = claims_before
        .iter()
        .map(|n| uid(&get_opt::<PersistentVolumeClaim>(&c, &ns, n).unwrap()))
        .collect();
    assert_eq!(uids, claim_uids, "restore uses the kept claims");
    assert_eq!(uid(&block_on(pvs.get(&pv_name)).unwrap()), pv_uid);

    // delete, cleanup: nothing of the staging left, in the namespace or the cluster.
    assert_eq!(m.delete(&name).unwrap().status, Status::Archived);
    cleanup(&m, &c, &name);
    let nss: Api<Namespace> = Api::all(c.clone());
    assert!(block_on(nss.get_opt(&ns)).unwrap().is_none());
    assert!(names::<PersistentVolumeClaim>(&c, &ns).is_empty());
    assert!(names::<Secret>(&c, &ns).is_empty());
    assert!(names::<ConfigMap>(&c, &ns).is_empty());
    assert!(names::<Service>(&c, &ns).is_empty());
    assert!(dynamic_names(&c, &ns, &argo("Workflow")).is_empty());
    assert!(block_on(pvs.get_opt(&pv_name)).unwrap().is_none());
    assert!(m.list().unwrap().iter().all(|s| s.name != name));
}

/// A cluster-scoped object that exists without the staging's label (another staging's
/// volume, the cluster's own) is never taken over: the create fails naming it, and the object
/// is as it was.
#[test]
fn a_cluster_object_the_staging_did_not_make_is_never_taken_over() {
    let _cp = require_control_plane();
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pv.yaml"),
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: \"{{ namespace }}-vol\"\n\
         spec:\n  capacity:\n    storage: 1Gi\n  accessModes: [ReadWriteOnce]\n  \
         hostPath:\n    path: /srv/capsa-new\n",
    )
    .unwrap();
    let name = unique("taken");
    let pvs: Api<PersistentVolume> = Api::all(c.clone());
    let theirs: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-vol"), "labels": {"owner": "someone-else"}},
        "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/srv/precious"}}
    }))
    .unwrap();
    block_on(pvs.create(&PostParams::default(), &theirs)).expect("their volume");
    let state = tempfile::tempdir().unwrap();
    let m = manager(
        &state.path().join("state.db"),
        deployer_of(dir.path().to_path_buf(), Duration::from_secs(10)),
    );
    let s = finish(create(&m, &name, "1.0.0", vec![]).expect("create starts"));
    assert_eq!(s.status, Status::Failure, "{s:?}");
    let reason = s.reason.unwrap_or_default();
    assert!(
        reason.contains("not taking it over") && reason.contains(&format!("{name}-vol")),
        "{reason}"
    );
    let after = block_on(pvs.get(&format!("{name}-vol"))).unwrap();
    assert_eq!(
        after.labels().get("owner").map(String::as_str),
        Some("someone-else")
    );
    assert!(after.labels().get(LABEL_STAGING).is_none());
    let path = after.spec.and_then(|s| s.host_path).map(|h| h.path);
    assert_eq!(path.as_deref(), Some("/srv/precious"));
    // Cleanup removes the staging's namespace but not their volume.
    cleanup(&m, &c, &name);
    assert!(block_on(pvs.get_opt(&format!("{name}-vol")))
        .unwrap()
        .is_some());
    block_on(pvs.delete(&format!("{name}-vol"), &Default::default())).expect("remove it");
}

fn helm_path() -> String {
    std::env::var(capsa::staging::kubernetes::HELM_ENV).unwrap_or_else(|_| {
        panic!(
            "{} is not set: run through make test-k8s (tests/helm/build.sh builds helm)",
            capsa::staging::kubernetes::HELM_ENV
        )
    })
}

/// The chart of `examples/kubernetes-chart`, rendered by the real helm with the tag and the
/// Staging-scope overrides as values: create → update → delete → restore → cleanup, and a
/// private value that would land outside a Secret refused without being shown.
#[test]
fn a_helm_chart_is_staged_like_any_template() {
    let _cp = require_control_plane();
    let helm = helm_path();
    assert!(Path::new(&helm).is_file(), "{helm}");
    let c = client();
    let state = tempfile::tempdir().unwrap();
    let m = manager(
        &state.path().join("state.db"),
        deployer_of(example("kubernetes-chart"), Duration::from_secs(60)),
    );
    let name = unique("chart");
    let ns = name.clone();
    let web = format!("{name}-web");
    let overrides = vec![
        Override::public(Scope::Staging, "replicas", "2"),
        Override::private(Scope::Staging, "dbPassword", "chart-pw-77"),
    ];
    let pending = create(&m, &name, "1.2.0", overrides).expect("create starts");
    deployment_ready(&c, &ns, &web);
    let s = finish(pending);
    assert_eq!(s.status, Status::Running, "{s:?}");
    let d: Deployment = get_opt(&c, &ns, &web).expect("deployment");
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let image = spec.template.spec.unwrap().containers[0].image.clone();
    assert_eq!(
        image.as_deref(),
        Some("registry.example.com/capsa/web:1.2.0")
    );
    let secret: Secret = get_opt(&c, &ns, &format!("{name}-db")).expect("secret");
    assert_eq!(secret.labels().get(LABEL_STAGING), Some(&name));
    let pw = secret.data.unwrap();
    assert_eq!(pw["DB_PASSWORD"].0, b"chart-pw-77");
    let urls = m.info(&name).unwrap();
    assert_eq!(urls[0].url, format!("https://{name}.localhost/"));

    let pending = update(&m, &name, "1.3.0").expect("update starts");
    wait_image(&c, &ns, &web, "registry.example.com/capsa/web:1.3.0");
    deployment_ready(&c, &ns, &web);
    assert_eq!(finish(pending).status, Status::Running);
    let d: Deployment = get_opt(&c, &ns, &web).unwrap();
    let image = d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(
        image.as_deref(),
        Some("registry.example.com/capsa/web:1.3.0")
    );

    assert_eq!(m.delete(&name).unwrap().status, Status::Archived);
    assert!(names::<Deployment>(&c, &ns).is_empty());
    assert!(names::<Secret>(&c, &ns).contains(&format!("{name}-db")));
    let pending = restore(&m, &name).expect("restore starts");
    deployment_ready(&c, &ns, &web);
    assert_eq!(finish(pending).status, Status::Running);
    assert_eq!(m.delete(&name).unwrap().status, Status::Archived);
    cleanup(&m, &c, &name);
    assert!(names::<Secret>(&c, &ns).is_empty());
    assert!(names::<Service>(&c, &ns).is_empty());

    // A private value the chart would put in an Ingress host is refused, not shown.
    let leak = unique("leak");
    let s = finish(
        create(
            &m,
            &leak,
            "1.2.0",
            vec![Override::private(Scope::Staging, "host", "leaky-host-5")],
        )
        .unwrap(),
    );
    assert_eq!(s.status, Status::Failure, "{s:?}");
    let reason = s.reason.unwrap_or_default();
    assert!(
        reason.contains("only be used in a Secret") && reason.contains("host"),
        "{reason}"
    );
    assert!(!reason.contains("leaky-host-5"), "{reason}");
    cleanup(&m, &c, &leak);
}
