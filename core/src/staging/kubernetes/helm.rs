//! Helm charts as staging templates: a template directory holding `Chart.yaml` is rendered
//! with a real `helm template` (the tag and the Staging-scope overrides as values), then
//! applied and watched as any other template.

use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// The environment variable naming the `helm` binary (default: `helm` on `PATH`).
pub const HELM_ENV: &str = "CAPSA_HELM";

/// The chart file that makes a template directory a Helm chart.
pub const CHART_FILE: &str = "Chart.yaml";

/// The value that receives the tag when `capsa.yaml` names none.
pub const DEFAULT_TAG_VALUE: &str = "image.tag";

/// How long `helm template` may run.
const HELM_TIMEOUT: Duration = Duration::from_secs(60);

/// The most `helm template` may print (the rendered manifests).
const HELM_OUTPUT_LIMIT: u64 = 16 << 20;

/// Whether the template directory is a Helm chart.
pub(super) fn is_chart(dir: &Path) -> bool {
    dir.join(CHART_FILE).is_file()
}

/// The values file capsa gives `helm template`: `capsa.{name,namespace,tag,appConfig,
/// appSecret}`, the tag at `tag_value`, and every Staging-scope override at its dotted key.
pub(super) fn values(
    req: &DeployRequest,
    settings: &Settings,
) -> std::result::Result<Value, String> {
    let tag = req.tag.clone().unwrap_or_default();
    let mut v = json!({"capsa": {
        "name": req.name, "namespace": req.namespace, "tag": tag,
        "appConfig": APP_CONFIGMAP, "appSecret": APP_SECRET,
    }});
    let tag_key = settings.tag_value.as_deref().unwrap_or(DEFAULT_TAG_VALUE);
    set_dotted(&mut v, tag_key, Value::String(tag))?;
    for o in req.overrides.iter().filter(|o| o.scope == Scope::Staging) {
        set_dotted(&mut v, &o.key, Value::String(o.value.expose().to_string()))?;
    }
    Ok(v)
}

/// Set `a.b.c` in `root`, making the maps on the way; a key that runs through a value that is
/// not a map fails, naming it.
fn set_dotted(root: &mut Value, key: &str, value: Value) -> std::result::Result<(), String> {
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(format!("value key {key:?}: not a dotted name"));
    }
    let mut at = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        let map = at
            .as_object_mut()
            .ok_or_else(|| format!("value key {key:?}: {} is not a map", parts[..i].join(".")))?;
        if i + 1 == parts.len() {
            map.insert((*p).to_string(), value);
            return Ok(());
        }
        at = map.entry((*p).to_string()).or_insert_with(|| json!({}));
    }
    Ok(())
}

/// Render the chart in `dir` for `req` with `helm` (`CAPSA_HELM`, else `helm` on `PATH`):
/// the documents of its output. The values go on helm's stdin (`--values -`), so private
/// values never touch a disk; `helm` runs with no kubeconfig and no home, so it never
/// reaches a cluster or a repository.
pub(super) async fn render_chart(
    dir: &Path,
    req: &DeployRequest,
    settings: &Settings,
) -> std::result::Result<Vec<(String, Value)>, String> {
    let values = serde_json::to_vec(&values(req, settings)?).map_err(|e| e.to_string())?;
    let helm = std::env::var_os(HELM_ENV).unwrap_or_else(|| "helm".into());
    // helm's own directories: none (a `helm template` of a local chart writes nothing).
    let home = "/nonexistent/capsa-helm";
    let mut child = tokio::process::Command::new(&helm)
        .arg("template")
        .arg(&req.name)
        .arg(dir)
        .arg("--namespace")
        .arg(&req.namespace)
        .arg("--values")
        .arg("-")
        .arg("--skip-tests")
        .env_remove("KUBECONFIG")
        .env("HELM_CACHE_HOME", home)
        .env("HELM_CONFIG_HOME", home)
        .env("HELM_DATA_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {} ({e}): install helm or name it in {HELM_ENV}",
                Path::new(&helm).display()
            )
        })?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child
        .stdout
        .take()
        .expect("piped")
        .take(HELM_OUTPUT_LIMIT + 1);
    let mut stderr = child.stderr.take().expect("piped").take(64 << 10);
    let run = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let feed = async {
            // A helm that exits without reading its values is reported by its status.
            let _ = stdin.write_all(&values).await;
            drop(stdin);
        };
        let (_, a, b) = tokio::join!(
            feed,
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err)
        );
        a.and(b)
            .map_err(|e| format!("helm: reading its output: {e}"))?;
        let status = child.wait().await.map_err(|e| format!("helm: {e}"))?;
        Ok::<_, String>((status, out, err))
    };
    let (status, out, err) = tokio::time::timeout(HELM_TIMEOUT, run)
        .await
        .map_err(|_| {
            format!(
                "helm template did not finish in {} s",
                HELM_TIMEOUT.as_secs()
            )
        })??;
    if !status.success() {
        let err = String::from_utf8_lossy(&err);
        let err = redact(err.trim(), req);
        return Err(format!(
            "helm template failed ({status}): {}",
            crate::error::one_line(&err)
        ));
    }
    if out.len() as u64 > HELM_OUTPUT_LIMIT {
        return Err(format!(
            "helm template printed more than {HELM_OUTPUT_LIMIT} bytes"
        ));
    }
    let text = String::from_utf8(out).map_err(|_| "helm template printed non-UTF-8".to_string())?;
    let mut docs = Vec::new();
    parse_documents("helm template", &text, &mut docs)?;
    if docs.is_empty() {
        return Err(format!("{}: the chart renders no manifest", dir.display()));
    }
    Ok(docs)
}

/// `text` with every private override value masked (helm may quote a value in an error).
fn redact(text: &str, req: &DeployRequest) -> String {
    super::super::overrides::redact(text, &req.overrides)
}

/// A private Staging-scope override may only end up in a Secret: the rendered objects of any
/// other kind must not hold its value.
pub(super) fn check_private(
    manifests: &[Manifest],
    req: &DeployRequest,
) -> std::result::Result<(), String> {
    let private: Vec<&Override> = req
        .overrides
        .iter()
        .filter(|o| o.scope == Scope::Staging && o.visibility == Visibility::Private)
        .filter(|o| !o.value.expose().is_empty())
        .collect();
    for m in manifests
        .iter()
        .filter(|m| !(m.api_version == "v1" && m.kind == "Secret"))
    {
        let text = m.body.to_string();
        let found: Vec<&str> = private
            .iter()
            .filter(|o| text.contains(o.value.expose()))
            .map(|o| o.key.as_str())
            .collect();
        if !found.is_empty() {
            return Err(format!(
                "{}/{}: private Staging-scope overrides ({}) may only be used in a Secret",
                m.kind,
                m.name,
                found.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(overrides: Vec<Override>) -> DeployRequest {
        DeployRequest {
            name: "web".into(),
            namespace: "stagings".into(),
            tag: Some("1.2.3".into()),
            overrides,
        }
    }

    #[test]
    fn values_nest_dotted_keys() {
        let r = req(vec![
            Override::public(Scope::Staging, "image.repository", "r.example/x"),
            Override::public(Scope::Staging, "replicas", "2"),
            Override::public(Scope::App, "NOT_A_VALUE", "x"),
        ]);
        let v = values(&r, &Settings::default()).unwrap();
        assert_eq!(
            v["image"],
            json!({"tag": "1.2.3", "repository": "r.example/x"})
        );
        assert_eq!(v["replicas"], "2");
        assert_eq!(v["capsa"]["appConfig"], APP_CONFIGMAP);
        assert!(v.get("NOT_A_VALUE").is_none());
        let bad = req(vec![
            Override::public(Scope::Staging, "a", "1"),
            Override::public(Scope::Staging, "a.b", "2"),
        ]);
        assert!(values(&bad, &Settings::default())
            .unwrap_err()
            .contains("\"a.b\""));
    }

    #[test]
    fn private_values_only_in_secrets() {
        let r = req(vec![Override::private(Scope::Staging, "pw", "hunter2")]);
        let m = |kind: &str, v: &str| Manifest {
            api_version: "v1".into(),
            kind: kind.into(),
            name: "x".into(),
            body: json!({"data": {"a": v}}),
        };
        assert!(check_private(&[m("Secret", "hunter2"), m("ConfigMap", "other")], &r).is_ok());
        let e = check_private(&[m("ConfigMap", "x hunter2 y")], &r).unwrap_err();
        assert!(e.contains("pw") && !e.contains("hunter2"), "{e}");
    }
}
