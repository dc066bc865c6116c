//! The Kubernetes deploy backend (cargo feature `kubernetes`): kube-rs over rustls, talking to
//! the API server directly, no external binaries.
//!
//! # Templates
//!
//! A staging template is a directory of Kubernetes YAML manifests (`*.yaml` / `*.yml`, read in
//! file-name order, several documents per file allowed), plus an optional `capsa.yaml` holding
//! the template's own settings (see below). Every object is server-side applied (field manager
//! `capsa`, forced) into the staging's namespace (the staging name, with the manager's
//! `namespace_prefix`), which is created if absent. Every object, the namespace included,
//! carries the labels `app.kubernetes.io/managed-by: capsa` and `capsa.io/staging: NAME`.
//! `metadata.namespace` is always set to the staging's namespace. Of the cluster-scoped kinds
//! a template may hold only [`CLUSTER_KINDS`] (a staging's own volume): they carry the same
//! labels, are never pruned, kept by delete and removed by cleanup, and one that exists
//! without the staging's label is never taken over (the command fails naming it).
//!
//! A directory holding `Chart.yaml` is a Helm chart, rendered per call by `helm template`
//! (see [`HELM_ENV`]; the values are the tag at `image.tag` or `tag_value`, the Staging-scope
//! overrides at their dotted keys, and `capsa.*`), then applied as the manifests of a
//! directory are; a private Staging-scope value found outside a Secret fails the command.
//!
//! Placeholders are rendered *inside string values* after the YAML is parsed, so no value can
//! change the structure of a manifest:
//!
//! | placeholder | value |
//! | --- | --- |
//! | `{{ tag }}` | the staging's tag |
//! | `{{ name }}` | the staging's name |
//! | `{{ namespace }}` | its namespace |
//! | `{{ staging.KEY }}` | the Staging-scope override `KEY` (else `defaults.KEY` of `capsa.yaml`) |
//! | `{{ app_config }}` | `capsa-app-env`, the ConfigMap of the public App-scope overrides |
//! | `{{ app_secret }}` | `capsa-app-secret`, the Secret of the private App-scope overrides |
//!
//! Spaces inside the braces are optional; `{{{{` and `}}}}` are literal `{{` and `}}` (for
//! Argo's and other tools' own placeholders). A string that is exactly one placeholder followed by
//! `| int` or `| bool` (`replicas: "{{ staging.REPLICAS | int }}"`) becomes a number or a boolean.
//! Quote placeholders that start a YAML value (`"{{ tag }}"`): unquoted `{{` is YAML flow
//! syntax. An unknown placeholder, or a missing `staging.KEY` without a default, fails the
//! command with a reason naming it. A *private* Staging-scope override may only be rendered
//! into a `Secret`; using it in any other kind fails the command, so that private values never
//! land in a ConfigMap, an annotation or a workload spec.
//!
//! App-scope overrides are not rendered: the public ones go into the ConfigMap
//! `capsa-app-env`, the private ones into the Secret `capsa-app-secret` (both always exist,
//! possibly empty); workloads consume them with `envFrom`.
//!
//! `capsa.yaml` (all keys optional):
//!
//! ```yaml
//! tags: ["1.0.0", "1.1.0"]      # allowed tags, exactly
//! tag_range: ">=1.0, <2"        # allowed tags, as a semver requirement (a leading `v` is ignored)
//! defaults:                     # defaults of `{{ staging.KEY }}`
//!   REPLICAS: "1"
//! readiness:                    # when a custom resource is ready / failed
//!   - apiVersion: argoproj.io/v1alpha1   # optional
//!     kind: Workflow
//!     field: status.phase
//!     ready: [Succeeded]
//!     failed: [Failed, Error]
//! tag_value: image.tag          # a chart's value that receives the tag
//! ```
//!
//! `tag_check` accepts a tag listed in `tags` or matching `tag_range`; without either, any tag.
//!
//! # Calls
//!
//! - `create` / `update` (restore is `create`): apply, delete the staging's objects (found by
//!   label) that the template no longer holds (PersistentVolumeClaims are never pruned), then
//!   wait (at most
//!   [`KubernetesDeployer::with_ready_timeout`], 300 s by default) until `check` says ready; a
//!   hard failure (`ProgressDeadlineExceeded`, a failed Job) ends the wait at once.
//! - `check`: kubedog's readiness rules for the template's Deployments, StatefulSets and Jobs,
//!   and `capsa.yaml`'s rules for its custom resources (a missing one is not ready), plus pods waiting in `ImagePullBackOff`, `ErrImagePull` or
//!   `CrashLoopBackOff`; the reply names the first object that is not ready and why. A read
//!   that fails, for whatever reason, makes `check` and `archive_check` unavailable: never an
//!   answer about the staging.
//! - `delete` (archive): deletes the staging's workloads, pods, services, ingresses,
//!   ConfigMaps and custom resources (by label; background propagation), keeps
//!   PersistentVolumeClaims, Secrets and cluster-scoped objects, and waits until no workload
//!   is left. `archive_check` confirms that no workload or custom resource is left.
//! - `cleanup`: deletes every PVC and Secret in the namespace and what delete removes, then
//!   the namespace, waits (at most [`KubernetesDeployer::with_cleanup_timeout`], 120 s by
//!   default) until it is gone, then removes the staging's cluster-scoped objects. It refuses
//!   a namespace that does not carry the staging's label.
//! - `info`: the staging's Ingress hosts, one named URL per rule host (`https` when the
//!   Ingress's TLS names the host).
//!
//! # Errors
//!
//! A request that fails for a transient reason (connection refused, timeout, HTTP 429 or 5xx)
//! is retried with exponential backoff, as are conflicts (409); when the retries are spent the
//! reply is [`BackendOutcome::Unavailable`](super::BackendOutcome::Unavailable). Only an
//! answer of the API server is taken as an answer: "not found" is only ever a 404, and no
//! deletion follows from a read that failed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret as KSecret, Service,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope as KScope;
use kube::{Client, Config, ResourceExt};
use serde_json::{json, Value};

/// The Kubernetes API types crate this backend is built with.
pub use k8s_openapi;
/// The kube-rs client crate this backend is built with (for callers that need a client of
/// their own on the same versions, such as tests playing a controller).
pub use kube;

use super::{BackendReply, DeployRequest, Deployer, Override, Scope, Visibility};
use crate::error::{Error, Result};
use crate::runtime;

mod helm;
mod readiness;
mod template;

pub use helm::{CHART_FILE, DEFAULT_TAG_VALUE, HELM_ENV};

use readiness::*;
use template::*;

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "capsa";
/// Label naming the manager of every object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label naming the staging of every object.
pub const LABEL_STAGING: &str = "capsa.io/staging";
/// The ConfigMap holding the public App-scope overrides.
pub const APP_CONFIGMAP: &str = "capsa-app-env";
/// The Secret holding the private App-scope overrides.
pub const APP_SECRET: &str = "capsa-app-secret";
/// The template's settings file, inside the template directory.
pub const SETTINGS_FILE: &str = "capsa.yaml";

/// The Kubernetes backend. See the [module documentation](self).
pub struct KubernetesDeployer {
    template_dir: PathBuf,
    client: Client,
    ready_timeout: Duration,
    cleanup_timeout: Duration,
    poll_interval: Duration,
    retries: u32,
}

impl std::fmt::Debug for KubernetesDeployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesDeployer")
            .field("template_dir", &self.template_dir)
            .field("ready_timeout", &self.ready_timeout)
            .field("cleanup_timeout", &self.cleanup_timeout)
            .finish_non_exhaustive()
    }
}

/// Why a call could not succeed.
#[derive(Debug)]
enum Fail {
    /// The API server (or the template) answered no.
    Permanent(String),
    /// The API server answered 404 Not Found.
    NotFound(String),
    /// No answer could be had (after the retries).
    Transient(String),
}

type KResult<T> = std::result::Result<T, Fail>;

impl Fail {
    fn message(self) -> String {
        match self {
            Fail::Permanent(m) | Fail::NotFound(m) | Fail::Transient(m) => m,
        }
    }

    fn reply(self, output: String) -> BackendReply {
        let mut r = match self {
            Fail::Permanent(m) | Fail::NotFound(m) => BackendReply::failed(m),
            Fail::Transient(m) => BackendReply::unavailable(m),
        };
        r.output = output;
        r
    }
}

/// Whether a failed request is worth retrying: a conflict (409), throttling (429), a server
/// error (5xx), or no answer at all (connection refused, timeout).
fn retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(r) => r.code == 409 || r.code == 429 || r.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(r) => format!("{} ({} {})", r.message, r.code, r.reason),
        other => other.to_string(),
    }
}

fn load_config(kubeconfig: Option<&Path>) -> Result<Config> {
    let backend_err = |message: String| Error::Backend {
        backend: "kubernetes".into(),
        message,
    };
    runtime::block_on(async {
        match kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    backend_err(format!("kubeconfig {}: {e}", path.display()))
                })?;
                Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                    .await
                    .map_err(|e| backend_err(format!("kubeconfig {}: {e}", path.display())))
            }
            None => Config::infer().await.map_err(|e| {
                backend_err(format!(
                    "no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and not in a cluster: {e}"
                ))
            }),
        }
    })
}

impl KubernetesDeployer {
    /// A backend deploying the template in `template_dir`, talking to the cluster of the
    /// kubeconfig file `kubeconfig`; without one, of `KUBECONFIG` or `~/.kube/config`, else the
    /// in-cluster service account.
    ///
    /// The template is loaded once here to report mistakes early (it is read again on every
    /// call, so edits take effect without a restart). Errors: `InvalidArgument` (template),
    /// `Backend` (no usable configuration).
    pub fn new(
        template_dir: impl Into<PathBuf>,
        kubeconfig: Option<PathBuf>,
    ) -> Result<KubernetesDeployer> {
        let template_dir = template_dir.into();
        let bad = |reason| Error::InvalidArgument {
            what: "kubernetes template",
            reason,
        };
        load_settings(&template_dir).map_err(bad)?;
        // A chart is rendered per staging, by helm; a directory of manifests is checked now.
        if !helm::is_chart(&template_dir) {
            load_documents(&template_dir).map_err(bad)?;
        }
        let mut config = load_config(kubeconfig.as_deref())?;
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(30));
        config.write_timeout = Some(Duration::from_secs(30));
        // Building the client spawns its buffer task: do it on the shared runtime.
        let client =
            runtime::block_on(async { Client::try_from(config) }).map_err(|e| Error::Backend {
                backend: "kubernetes".into(),
                message: format!("cannot build a client: {e}"),
            })?;
        Ok(KubernetesDeployer {
            template_dir,
            client,
            ready_timeout: super::DEFAULT_READY_TIMEOUT,
            cleanup_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            retries: 5,
        })
    }

    /// How long `create` and `update` wait for the workloads to be ready (default 300 s).
    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How long `delete` and `cleanup` wait for objects to be gone (default 120 s).
    pub fn with_cleanup_timeout(mut self, timeout: Duration) -> Self {
        self.cleanup_timeout = timeout;
        self
    }

    /// How often readiness and deletion are polled (default 1 s).
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.max(Duration::from_millis(10));
        self
    }

    /// How many times a transient error or a conflict is retried, with exponential backoff
    /// from 200 ms (default 5).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The template directory.
    pub fn template_dir(&self) -> &Path {
        &self.template_dir
    }

    /// Run `f` with retries on transient errors and conflicts.
    async fn call<T, F, Fut>(&self, what: &str, mut f: F) -> KResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = kube::Result<T>>,
    {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if !retryable(&e) => {
                    let msg = format!("{what}: {}", describe(&e));
                    return Err(match &e {
                        kube::Error::Api(r) if r.code == 404 => Fail::NotFound(msg),
                        _ => Fail::Permanent(msg),
                    });
                }
                Err(e) if attempt >= self.retries => {
                    return Err(Fail::Transient(format!(
                        "{what}: {} (after {} attempts)",
                        describe(&e),
                        attempt + 1
                    )))
                }
                Err(e) => {
                    // The kind of error only: a message could quote a value.
                    let code = match &e {
                        kube::Error::Api(r) => r.code,
                        _ => 0,
                    };
                    tracing::debug!(what, attempt, code, "retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(3));
                    attempt += 1;
                }
            }
        }
    }

    /// The template rendered for `req` (a chart by `helm template`), with its settings.
    async fn render(&self, req: &DeployRequest) -> KResult<(Vec<Manifest>, Settings)> {
        let settings = load_settings(&self.template_dir).map_err(Fail::Permanent)?;
        if helm::is_chart(&self.template_dir) {
            let docs = helm::render_chart(&self.template_dir, req, &settings)
                .await
                .map_err(Fail::Permanent)?;
            let out: Vec<Manifest> = docs.into_iter().map(|(_, d)| Manifest::of(d)).collect();
            helm::check_private(&out, req).map_err(Fail::Permanent)?;
            return Ok((out, settings));
        }
        let docs = load_documents(&self.template_dir).map_err(Fail::Permanent)?;
        let mut out = Vec::with_capacity(docs.len());
        for (file, doc) in docs {
            let m = render_document(doc, req, &settings)
                .map_err(|e| Fail::Permanent(format!("template {file}: {e}")))?;
            out.push(m);
        }
        Ok((out, settings))
    }

    /// The API resource of a manifest's kind, and whether it is cluster-scoped (only the
    /// [`CLUSTER_KINDS`] are allowed).
    async fn resource_of(&self, m: &Manifest) -> KResult<(ApiResource, bool)> {
        if let Some(ar) = known_resource(&m.api_version, &m.kind) {
            return Ok((ar, false));
        }
        if let Some(ar) = cluster_resource(&m.api_version, &m.kind) {
            return Ok((ar, true));
        }
        let (group, version) = match m.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", m.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &m.kind);
        let (ar, caps) = self
            .call(&format!("discover {}", m.kind), || {
                kube::discovery::pinned_kind(&self.client, &gvk)
            })
            .await?;
        if caps.scope == KScope::Cluster {
            return Err(Fail::Permanent(format!(
                "{}/{}: of the cluster-scoped kinds a staging template may only hold {}",
                m.kind,
                m.name,
                CLUSTER_KINDS.map(|(_, k)| k).join(", ")
            )));
        }
        Ok((ar, false))
    }

    /// The custom resources of the template: the namespaced kinds the backend has no typed
    /// rules for, each once.
    async fn custom_kinds(&self, manifests: &[Manifest]) -> KResult<Vec<ApiResource>> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for m in manifests {
            let known = known_resource(&m.api_version, &m.kind).is_some()
                || cluster_resource(&m.api_version, &m.kind).is_some();
            if known || !seen.insert((m.api_version.clone(), m.kind.clone())) {
                continue;
            }
            out.push(self.resource_of(m).await?.0);
        }
        Ok(out)
    }

    /// A cluster-scoped object is applied only when it is new or already this staging's: it
    /// must never take over another staging's volume or an object the cluster had before.
    async fn claim_cluster_object(
        &self,
        ar: &ApiResource,
        m: &Manifest,
        staging: &str,
    ) -> KResult<()> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), ar);
        let id = format!("{}/{}", m.kind, m.name);
        match self.call(&format!("get {id}"), || api.get_opt(&m.name)).await? {
            Some(o) if o.labels().get(LABEL_STAGING).map(String::as_str) != Some(staging) => {
                Err(Fail::Permanent(format!(
                    "{id} exists and does not carry the label {LABEL_STAGING}={staging}: not taking it over"
                )))
            }
            _ => Ok(()),
        }
    }

    async fn apply(
        &self,
        ns: &str,
        ar: &ApiResource,
        body: &Value,
        out: &mut String,
    ) -> KResult<()> {
        let obj: DynamicObject = serde_json::from_value(body.clone())
            .map_err(|e| Fail::Permanent(format!("bad object: {e}")))?;
        let name = obj.name_any();
        let api: Api<DynamicObject> = if ns.is_empty() {
            Api::all_with(self.client.clone(), ar)
        } else {
            Api::namespaced_with(self.client.clone(), ns, ar)
        };
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(&obj);
        self.call(&format!("apply {}/{name}", ar.kind), || {
            api.patch(&name, &pp, &patch)
        })
        .await?;
        let _ = writeln!(out, "applied {}/{name}", ar.kind);
        Ok(())
    }

    async fn deploy(&self, req: &DeployRequest) -> BackendReply {
        let mut out = String::new();
        match self.deploy_inner(req, &mut out).await {
            Ok(r) => {
                let mut reply = r;
                out.push_str(&reply.output);
                reply.output = out;
                reply
            }
            Err(f) => f.reply(out),
        }
    }

    async fn deploy_inner(&self, req: &DeployRequest, out: &mut String) -> KResult<BackendReply> {
        let (manifests, settings) = self.render(req).await?;
        let ns = &req.namespace;
        let labels = labels(&req.name);
        let ns_obj = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": labels},
        });
        self.apply("", &ApiResource::erase::<Namespace>(&()), &ns_obj, out)
            .await?;
        let (config, secret) = app_env(req);
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": APP_CONFIGMAP, "namespace": ns, "labels": labels},
            "data": config,
        });
        self.apply(ns, &ApiResource::erase::<ConfigMap>(&()), &cm, out)
            .await?;
        let data: BTreeMap<String, ByteString> = secret
            .into_iter()
            .map(|(k, v)| (k, ByteString(v.into_bytes())))
            .collect();
        let sec = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": APP_SECRET, "namespace": ns, "labels": labels},
            "data": data,
        });
        self.apply(ns, &ApiResource::erase::<KSecret>(&()), &sec, out)
            .await?;
        for m in &manifests {
            let (ar, cluster) = self.resource_of(m).await?;
            let mut body = m.body.clone();
            if cluster {
                self.claim_cluster_object(&ar, m, &req.name).await?;
                set_meta(&mut body, None, &req.name);
                self.apply("", &ar, &body, out).await?;
            } else {
                set_meta(&mut body, Some(ns), &req.name);
                self.apply(ns, &ar, &body, out).await?;
            }
        }
        self.prune(req, &manifests, out).await?;
        tracing::info!(name = %req.name, namespace = %ns, objects = manifests.len(), "applied");
        Ok(self.wait_ready(req, &manifests, &settings).await)
    }

    async fn wait_ready(
        &self,
        req: &DeployRequest,
        manifests: &[Manifest],
        settings: &Settings,
    ) -> BackendReply {
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            let r = self.readiness(req, manifests, settings).await;
            let last = match r {
                Ok(Readiness::Ready) => return BackendReply::success(),
                Ok(Readiness::Failed(reason)) => return BackendReply::failed(reason),
                Ok(Readiness::Pending(reason)) => Fail::Permanent(reason),
                Err(f) => f,
            };
            if Instant::now() >= deadline {
                let secs = self.ready_timeout.as_secs();
                return match last {
                    Fail::Permanent(reason) | Fail::NotFound(reason) => {
                        BackendReply::failed(format!("not ready after {secs} s: {reason}"))
                    }
                    Fail::Transient(reason) => BackendReply::unavailable(format!(
                        "readiness unknown after {secs} s: {reason}"
                    )),
                };
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// kubedog's readiness rules over the template's workloads, and the template's own rules
    /// over its custom resources.
    async fn readiness(
        &self,
        req: &DeployRequest,
        manifests: &[Manifest],
        settings: &Settings,
    ) -> KResult<Readiness> {
        let ns = &req.namespace;
        let mut pending: Option<String> = None;
        let note = |pending: &mut Option<String>, r: String| {
            if pending.is_none() {
                *pending = Some(r);
            }
        };
        for m in manifests {
            let id = format!("{}/{}", m.kind, m.name);
            match (m.api_version.as_str(), m.kind.as_str()) {
                ("apps/v1", "Deployment") => {
                    let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                    match self
                        .call(&format!("get {id}"), || api.get_opt(&m.name))
                        .await?
                    {
                        None => note(&mut pending, format!("{id}: missing")),
                        Some(d) => match deployment_readiness(&d) {
                            Readiness::Ready => {}
                            Readiness::Pending(r) => note(&mut pending, format!("{id}: {r}")),
                            Readiness::Failed(r) => {
                                return Ok(Readiness::Failed(format!("{id}: {r}")))
                            }
                        },
                    }
                }
                ("apps/v1", "StatefulSet") => {
                    let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
                    match self
                        .call(&format!("get {id}"), || api.get_opt(&m.name))
                        .await?
                    {
                        None => note(&mut pending, format!("{id}: missing")),
                        Some(s) => {
                            if let Readiness::Pending(r) = statefulset_readiness(&s) {
                                note(&mut pending, format!("{id}: {r}"));
                            }
                        }
                    }
                }
                ("batch/v1", "Job") => {
                    let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
                    match self
                        .call(&format!("get {id}"), || api.get_opt(&m.name))
                        .await?
                    {
                        None => note(&mut pending, format!("{id}: missing")),
                        Some(j) => match job_readiness(&j) {
                            Readiness::Ready => {}
                            Readiness::Pending(r) => note(&mut pending, format!("{id}: {r}")),
                            Readiness::Failed(r) => {
                                return Ok(Readiness::Failed(format!("{id}: {r}")))
                            }
                        },
                    }
                }
                (api_version, kind) => {
                    let Some(rule) = settings
                        .readiness
                        .iter()
                        .find(|r| r.matches(api_version, kind))
                    else {
                        continue;
                    };
                    let (ar, cluster) = self.resource_of(m).await?;
                    let api: Api<DynamicObject> = if cluster {
                        Api::all_with(self.client.clone(), &ar)
                    } else {
                        Api::namespaced_with(self.client.clone(), ns, &ar)
                    };
                    let found = self
                        .call(&format!("get {id}"), || api.get_opt(&m.name))
                        .await?;
                    let Some(obj) = found else {
                        note(&mut pending, format!("{id}: missing"));
                        continue;
                    };
                    let obj = serde_json::to_value(obj).unwrap_or(Value::Null);
                    match rule.judge(&obj) {
                        Readiness::Ready => {}
                        Readiness::Pending(r) => note(&mut pending, format!("{id}: {r}")),
                        Readiness::Failed(r) => return Ok(Readiness::Failed(format!("{id}: {r}"))),
                    }
                }
            }
        }
        if pending.is_none() {
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let lp = ListParams::default();
            let list = self.call("list pods", || pods.list(&lp)).await?;
            for p in list.items {
                if let Some(r) = pod_error(&p) {
                    note(&mut pending, format!("Pod/{}: {r}", p.name_any()));
                    break;
                }
            }
        }
        Ok(match pending {
            None => Readiness::Ready,
            Some(r) => Readiness::Pending(r),
        })
    }

    /// Workloads (and pods) and custom resources of the staging still present, as
    /// `Kind/name`.
    async fn workloads_left(
        &self,
        req: &DeployRequest,
        custom: &[ApiResource],
    ) -> KResult<Vec<String>> {
        let lp = staging_objects(&req.name);
        let mut left = Vec::new();
        let kinds = WORKLOADS.iter().map(|k| k()).chain(custom.iter().cloned());
        for ar in kinds {
            let api = self.api(Some(&req.namespace), &ar);
            let l = self
                .call(&format!("list {}", ar.kind), || api.list_metadata(&lp))
                .await?;
            left.extend(
                l.items
                    .iter()
                    .map(|o| format!("{}/{}", ar.kind, o.name_any())),
            );
        }
        Ok(left)
    }

    /// The API of objects of `ar` in namespace `ns`, or cluster-wide.
    fn api(&self, ns: Option<&str>, ar: &ApiResource) -> Api<DynamicObject> {
        match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Delete the objects of `ar` listed by `lp` in `ns` (cluster-wide: `None`), but those
    /// `keep` names; a 404 on delete means someone else was first (fine). Only ever after a
    /// list that succeeded.
    async fn delete_matching(
        &self,
        ns: Option<&str>,
        ar: &ApiResource,
        lp: &ListParams,
        keep: &(dyn Fn(&str) -> bool + Sync),
        out: &mut String,
    ) -> KResult<()> {
        let api = self.api(ns, ar);
        let kind = &ar.kind;
        let dp = DeleteParams::background();
        let l = self
            .call(&format!("list {kind}"), || api.list_metadata(lp))
            .await?;
        for o in l.items {
            let n = o.name_any();
            if keep(&n) {
                continue;
            }
            match self
                .call(&format!("delete {kind}/{n}"), || api.delete(&n, &dp))
                .await
            {
                Ok(_) => {
                    let _ = writeln!(out, "deleted {kind}/{n}");
                }
                Err(Fail::NotFound(_)) => {}
                Err(f) => return Err(f),
            }
        }
        Ok(())
    }

    /// Delete every object of the kinds `kinds` that the staging labels in `ns`.
    async fn delete_all(
        &self,
        ns: Option<&str>,
        kinds: impl IntoIterator<Item = ApiResource>,
        lp: &ListParams,
        out: &mut String,
    ) -> KResult<()> {
        for ar in kinds {
            self.delete_matching(ns, &ar, lp, &|_| false, out).await?;
        }
        Ok(())
    }

    /// Delete the staging's objects that the rendered template no longer holds (an object
    /// dropped from the template between versions). Claims, volumes and the other
    /// cluster-scoped objects are never pruned.
    async fn prune(
        &self,
        req: &DeployRequest,
        manifests: &[Manifest],
        out: &mut String,
    ) -> KResult<()> {
        let lp = staging_objects(&req.name);
        let custom = self.custom_kinds(manifests).await?;
        let kinds = pruned().chain(custom);
        for ar in kinds {
            let keep: BTreeSet<&str> = manifests
                .iter()
                .filter(|m| m.kind == ar.kind && m.api_version == ar.api_version)
                .map(|m| m.name.as_str())
                .chain(match ar.kind.as_str() {
                    "ConfigMap" => Some(APP_CONFIGMAP),
                    "Secret" => Some(APP_SECRET),
                    _ => None,
                })
                .collect();
            self.delete_matching(Some(&req.namespace), &ar, &lp, &|n| keep.contains(n), out)
                .await?;
        }
        Ok(())
    }

    /// Delete (archive): the workloads, pods, services, ingresses, ConfigMaps and custom
    /// resources go; claims, Secrets and cluster-scoped objects stay.
    async fn archive(&self, req: &DeployRequest) -> KResult<String> {
        let (manifests, _) = self.render(req).await?;
        let custom = self.custom_kinds(&manifests).await?;
        let lp = staging_objects(&req.name);
        let ns = Some(req.namespace.as_str());
        let mut out = String::new();
        let kinds = archived().chain(custom.iter().cloned());
        self.delete_all(ns, kinds, &lp, &mut out).await?;
        let deadline = Instant::now() + self.cleanup_timeout;
        loop {
            let left = self.workloads_left(req, &custom).await?;
            if left.is_empty() {
                return Ok(out);
            }
            if Instant::now() >= deadline {
                return Err(Fail::Permanent(format!(
                    "still present after {} s: {}",
                    self.cleanup_timeout.as_secs(),
                    left.join(", ")
                )));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// Poll `left` until it lists nothing; at the deadline, fail with what it last listed.
    async fn wait_gone<F, Fut>(&self, what: &str, mut left: F) -> KResult<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = KResult<Vec<String>>>,
    {
        let deadline = Instant::now() + self.cleanup_timeout;
        loop {
            let last = match left().await {
                Ok(l) if l.is_empty() => return Ok(()),
                Ok(l) => Fail::Permanent(format!(
                    "{what} still present after {} s: {}",
                    self.cleanup_timeout.as_secs(),
                    l.join(", ")
                )),
                Err(f) => f,
            };
            if Instant::now() >= deadline {
                return Err(last);
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// The names of the objects of `ar` that `lp` lists in `ns` (cluster-wide: `None`).
    async fn listed(
        &self,
        ns: Option<&str>,
        ar: &ApiResource,
        lp: &ListParams,
    ) -> KResult<Vec<String>> {
        let api = self.api(ns, ar);
        let l = self
            .call(&format!("list {}", ar.kind), || api.list_metadata(lp))
            .await?;
        Ok(l.items.iter().map(|o| o.name_any()).collect())
    }

    /// Cleanup: everything in the namespace (claims and Secrets first, then what archiving
    /// left, custom resources included), the namespace, then the staging's cluster-scoped
    /// objects (volumes last, once their claims are gone).
    async fn clean(&self, req: &DeployRequest) -> KResult<String> {
        let ns = &req.namespace;
        let mut out = String::new();
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let found = self
            .call(&format!("get Namespace/{ns}"), || nss.get_opt(ns))
            .await?;
        if let Some(found) = found {
            if found.labels().get(LABEL_STAGING) != Some(&req.name) {
                return Err(Fail::Permanent(format!(
                    "Namespace/{ns} does not carry the label {LABEL_STAGING}={}: not removing it",
                    req.name
                )));
            }
            self.clean_namespace(req, &found, &mut out).await?;
        } else {
            let _ = writeln!(out, "Namespace/{ns} already gone");
        }
        let lp = staging_objects(&req.name);
        let cluster: Vec<ApiResource> = CLUSTER_KINDS
            .iter()
            .filter_map(|(v, k)| cluster_resource(v, k))
            .collect();
        self.delete_all(None, cluster.iter().cloned(), &lp, &mut out)
            .await?;
        self.wait_gone("cluster-scoped objects", || async {
            let mut left = Vec::new();
            for ar in &cluster {
                let names = self.listed(None, ar, &lp).await?;
                left.extend(names.into_iter().map(|n| format!("{}/{n}", ar.kind)));
            }
            Ok(left)
        })
        .await?;
        Ok(out)
    }

    async fn clean_namespace(
        &self,
        req: &DeployRequest,
        found: &Namespace,
        out: &mut String,
    ) -> KResult<()> {
        let ns = &req.namespace;
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let every = ListParams::default();
        let pvc = ApiResource::erase::<PersistentVolumeClaim>(&());
        let first = [pvc.clone(), ApiResource::erase::<KSecret>(&())];
        self.delete_all(Some(ns), first, &every, out).await?;
        // What archiving left behind (a cleanup without a delete, a custom resource).
        let custom = match self.render(req).await {
            Ok((m, _)) => self.custom_kinds(&m).await?,
            // A template that no longer renders must not keep a namespace forever: the
            // namespace's deletion removes its custom resources.
            Err(_) => Vec::new(),
        };
        let rest = archived().chain(custom);
        self.delete_all(Some(ns), rest, &staging_objects(&req.name), out)
            .await?;
        // The claims go first (their volumes are released by the storage controllers), then
        // the namespace with whatever is left in it.
        self.wait_gone("PersistentVolumeClaims", || {
            self.listed(Some(ns), &pvc, &every)
        })
        .await?;
        if found.metadata.deletion_timestamp.is_none() {
            let dp = DeleteParams::background();
            match self
                .call(&format!("delete Namespace/{ns}"), || nss.delete(ns, &dp))
                .await
            {
                Ok(_) => {
                    let _ = writeln!(out, "deleted Namespace/{ns}");
                }
                Err(Fail::NotFound(_)) => {}
                Err(f) => return Err(f),
            }
        }
        self.wait_gone(&format!("Namespace/{ns}"), || async {
            let n = self
                .call(&format!("get Namespace/{ns}"), || nss.get_opt(ns))
                .await?;
            Ok(n.map(|n| {
                let phase = n
                    .status
                    .and_then(|s| s.phase)
                    .unwrap_or_else(|| "present".into());
                vec![format!("{ns} ({phase})")]
            })
            .unwrap_or_default())
        })
        .await?;
        let _ = writeln!(out, "Namespace/{ns} gone");
        Ok(())
    }

    /// The named URLs of the staging's Ingress hosts, as the API server has them: one per
    /// host of each rule, `https` when the Ingress's TLS names the host.
    async fn ingress_urls(&self, req: &DeployRequest) -> KResult<Vec<super::NamedUrl>> {
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), &req.namespace);
        let lp = staging_objects(&req.name);
        let list = self.call("list Ingress", || api.list(&lp)).await?;
        let mut urls = Vec::new();
        for ing in list.items {
            let name = ing.name_any();
            let Some(spec) = ing.spec else { continue };
            let tls: BTreeSet<String> = spec
                .tls
                .iter()
                .flatten()
                .flat_map(|t| t.hosts.iter().flatten().cloned())
                .collect();
            let rules = spec.rules.unwrap_or_default();
            let hosts: Vec<&str> = rules.iter().filter_map(|r| r.host.as_deref()).collect();
            for (i, r) in rules.iter().enumerate() {
                let Some(host) = r.host.as_deref() else {
                    continue;
                };
                let scheme = if tls.contains(host) { "https" } else { "http" };
                let path = r
                    .http
                    .as_ref()
                    .and_then(|h| h.paths.first())
                    .and_then(|p| p.path.as_deref())
                    .unwrap_or("/");
                let label = if hosts.len() > 1 {
                    format!("{name}-{}", i + 1)
                } else {
                    name.clone()
                };
                urls.push(super::NamedUrl {
                    name: label,
                    url: format!("{scheme}://{host}{path}"),
                });
            }
        }
        Ok(urls)
    }
}

#[async_trait::async_trait]
impl Deployer for KubernetesDeployer {
    fn name(&self) -> &str {
        "kubernetes"
    }

    async fn create(&self, req: &DeployRequest) -> BackendReply {
        self.deploy(req).await
    }

    async fn update(&self, req: &DeployRequest) -> BackendReply {
        self.deploy(req).await
    }

    async fn delete(&self, req: &DeployRequest) -> BackendReply {
        match self.archive(req).await {
            Ok(out) => BackendReply {
                output: out,
                ..BackendReply::success()
            },
            Err(f) => f.reply(String::new()),
        }
    }

    async fn check(&self, req: &DeployRequest) -> BackendReply {
        let (manifests, settings) = match self.render(req).await {
            Ok(m) => m,
            Err(f) => return f.reply(String::new()),
        };
        match self.readiness(req, &manifests, &settings).await {
            Ok(Readiness::Ready) => BackendReply::success(),
            Ok(Readiness::Pending(r) | Readiness::Failed(r)) => BackendReply::failed(r),
            // A read that failed says nothing about the staging, whatever the error.
            Err(f) => BackendReply::unavailable(f.message()),
        }
    }

    async fn cleanup(&self, req: &DeployRequest) -> BackendReply {
        match self.clean(req).await {
            Ok(out) => BackendReply {
                output: out,
                ..BackendReply::success()
            },
            Err(f) => f.reply(String::new()),
        }
    }

    async fn archive_check(&self, req: &DeployRequest) -> BackendReply {
        let custom = match self.render(req).await {
            Ok((m, _)) => self.custom_kinds(&m).await,
            Err(f) => Err(f),
        };
        let left = match custom {
            Ok(custom) => self.workloads_left(req, &custom).await,
            Err(f) => Err(f),
        };
        match left {
            Ok(left) if left.is_empty() => BackendReply::success(),
            Ok(left) => BackendReply::failed(format!("workloads left: {}", left.join(", "))),
            Err(f) => BackendReply::unavailable(f.message()),
        }
    }

    async fn info(&self, req: &DeployRequest) -> Result<Vec<super::NamedUrl>> {
        self.ingress_urls(req).await.map_err(|f| Error::Backend {
            backend: "kubernetes".into(),
            message: f.message(),
        })
    }

    async fn tag_check(&self, req: &DeployRequest) -> BackendReply {
        let settings = match load_settings(&self.template_dir) {
            Ok(s) => s,
            Err(e) => return BackendReply::failed(e),
        };
        match tag_allowed(&settings, req.tag.as_deref().unwrap_or("")) {
            Ok(()) => BackendReply::success(),
            Err(e) => BackendReply::failed(e),
        }
    }
}

fn labels(name: &str) -> Value {
    json!({ LABEL_MANAGED_BY: "capsa", LABEL_STAGING: name })
}

/// The staging's objects, by label.
fn staging_objects(name: &str) -> ListParams {
    ListParams::default().labels(&format!("{LABEL_STAGING}={name}"))
}

/// The cluster-scoped kinds a template may hold (labelled with the staging, kept by delete,
/// removed by cleanup, never pruned).
pub const CLUSTER_KINDS: [(&str, &str); 3] = [
    ("v1", "PersistentVolume"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
];

fn cluster_resource(api_version: &str, kind: &str) -> Option<ApiResource> {
    use k8s_openapi::api::core::v1::PersistentVolume;
    use k8s_openapi::api::scheduling::v1::PriorityClass;
    use k8s_openapi::api::storage::v1::StorageClass;
    Some(match (api_version, kind) {
        ("v1", "PersistentVolume") => ApiResource::erase::<PersistentVolume>(&()),
        ("storage.k8s.io/v1", "StorageClass") => ApiResource::erase::<StorageClass>(&()),
        ("scheduling.k8s.io/v1", "PriorityClass") => ApiResource::erase::<PriorityClass>(&()),
        _ => return None,
    })
}

type Kind = fn() -> ApiResource;

/// The workload kinds (and pods): what `archive_check` waits to see gone.
const WORKLOADS: [Kind; 6] = [
    || ApiResource::erase::<Deployment>(&()),
    || ApiResource::erase::<StatefulSet>(&()),
    || ApiResource::erase::<DaemonSet>(&()),
    || ApiResource::erase::<Job>(&()),
    || ApiResource::erase::<CronJob>(&()),
    || ApiResource::erase::<Pod>(&()),
];

/// What delete (archive) removes besides the workloads.
const SERVING: [Kind; 3] = [
    || ApiResource::erase::<Ingress>(&()),
    || ApiResource::erase::<Service>(&()),
    || ApiResource::erase::<ConfigMap>(&()),
];

/// What delete (archive) removes, in this order: the workloads, then what serves them.
fn archived() -> impl Iterator<Item = ApiResource> {
    WORKLOADS.iter().chain(SERVING.iter()).map(|k| k())
}

/// What create and update prune when the template no longer holds it: the archived kinds
/// and Secrets.
fn pruned() -> impl Iterator<Item = ApiResource> {
    archived().chain([ApiResource::erase::<KSecret>(&())])
}

fn set_meta(body: &mut Value, ns: Option<&str>, name: &str) {
    let meta = body
        .as_object_mut()
        .expect("manifests are objects")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        match ns {
            Some(ns) => meta.insert("namespace".into(), json!(ns)),
            None => meta.remove("namespace"),
        };
        let l = meta.entry("labels").or_insert_with(|| json!({}));
        if !l.is_object() {
            *l = json!({});
        }
        let l = l.as_object_mut().expect("object");
        l.insert(LABEL_MANAGED_BY.into(), json!("capsa"));
        l.insert(LABEL_STAGING.into(), json!(name));
    }
}

/// Public App-scope overrides (ConfigMap data) and private ones (Secret data).
fn app_env(req: &DeployRequest) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut public = BTreeMap::new();
    let mut private = BTreeMap::new();
    for o in req.overrides.iter().filter(|o| o.scope == Scope::App) {
        let v = o.value.expose().to_string();
        match o.visibility {
            Visibility::Public => public.insert(o.key.clone(), v),
            Visibility::Private => private.insert(o.key.clone(), v),
        };
    }
    (public, private)
}

fn known_resource(api_version: &str, kind: &str) -> Option<ApiResource> {
    Some(match (api_version, kind) {
        ("apps/v1", "Deployment") => ApiResource::erase::<Deployment>(&()),
        ("apps/v1", "StatefulSet") => ApiResource::erase::<StatefulSet>(&()),
        ("apps/v1", "DaemonSet") => ApiResource::erase::<DaemonSet>(&()),
        ("batch/v1", "Job") => ApiResource::erase::<Job>(&()),
        ("batch/v1", "CronJob") => ApiResource::erase::<CronJob>(&()),
        ("v1", "Service") => ApiResource::erase::<Service>(&()),
        ("v1", "ConfigMap") => ApiResource::erase::<ConfigMap>(&()),
        ("v1", "Secret") => ApiResource::erase::<KSecret>(&()),
        ("v1", "PersistentVolumeClaim") => ApiResource::erase::<PersistentVolumeClaim>(&()),
        ("v1", "Pod") => ApiResource::erase::<Pod>(&()),
        ("networking.k8s.io/v1", "Ingress") => ApiResource::erase::<Ingress>(&()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried() {
        let api = |code: u16| {
            kube::Error::Api(kube::core::ErrorResponse {
                status: "Failure".into(),
                message: String::new(),
                reason: String::new(),
                code,
            })
        };
        for code in [409, 429, 500, 503, 504] {
            assert!(retryable(&api(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 422] {
            assert!(!retryable(&api(code)), "{code}");
        }
    }
}
