//! Staging templates: the manifests of a template directory and its `capsa.yaml`, read
//! safely and rendered for one staging (the rules are in the [parent module](super)).

use super::*;

/// The template's `capsa.yaml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Settings {
    #[serde(default)]
    pub(super) tags: Option<Vec<String>>,
    #[serde(default)]
    pub(super) tag_range: Option<String>,
    #[serde(default)]
    pub(super) defaults: BTreeMap<String, String>,
    /// Readiness rules of custom resources.
    #[serde(default)]
    pub(super) readiness: Vec<ReadinessRule>,
    /// A Helm chart's value that receives the tag (default `image.tag`).
    #[serde(default)]
    pub(super) tag_value: Option<String>,
}

/// When an object of a kind the backend has no rule for (a custom resource) is ready: the
/// value of a status field (`readiness:` in `capsa.yaml`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadinessRule {
    /// The kind (`Workflow`).
    pub(super) kind: String,
    /// Its API version (`argoproj.io/v1alpha1`); any when absent.
    #[serde(default, rename = "apiVersion")]
    pub(super) api_version: Option<String>,
    /// The field, dotted (`status.phase`).
    pub(super) field: String,
    /// The values that mean ready.
    pub(super) ready: Vec<String>,
    /// The values that mean failed (waiting cannot help).
    #[serde(default)]
    pub(super) failed: Vec<String>,
}

impl ReadinessRule {
    pub(super) fn matches(&self, api_version: &str, kind: &str) -> bool {
        self.kind == kind && self.api_version.as_deref().is_none_or(|a| a == api_version)
    }

    /// The rule's verdict on an object as the API server returned it.
    pub(super) fn judge(&self, obj: &Value) -> super::readiness::Readiness {
        use super::readiness::Readiness;
        let pointer: String = self.field.split('.').map(|p| format!("/{p}")).collect();
        let value = match obj.pointer(&pointer) {
            None | Some(Value::Null) => {
                return Readiness::Pending(format!("no {} yet", self.field))
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if self.ready.contains(&value) {
            Readiness::Ready
        } else if self.failed.contains(&value) {
            Readiness::Failed(format!("{} is {value}", self.field))
        } else {
            Readiness::Pending(format!("{} is {value}", self.field))
        }
    }
}

/// A template object, rendered.
#[derive(Debug, Clone)]
pub(super) struct Manifest {
    pub(super) api_version: String,
    pub(super) kind: String,
    pub(super) name: String,
    pub(super) body: Value,
}

impl Manifest {
    /// A document taken as it is (a chart's, rendered by helm).
    pub(super) fn of(body: Value) -> Manifest {
        let s = |p: &str| {
            body.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (api_version, kind, name) = (s("/apiVersion"), s("/kind"), s("/metadata/name"));
        Manifest {
            api_version,
            kind,
            name,
            body,
        }
    }
}

pub(super) fn load_settings(dir: &Path) -> std::result::Result<Settings, String> {
    let path = dir.join(SETTINGS_FILE);
    if std::fs::symlink_metadata(&path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Ok(Settings::default());
    }
    match read_template(&path) {
        Ok(s) if s.trim().is_empty() => Ok(Settings::default()),
        Ok(s) => {
            let st: Settings =
                serde_yaml::from_str(&s).map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some(r) = &st.tag_range {
                semver::VersionReq::parse(r)
                    .map_err(|e| format!("{}: tag_range {r:?}: {e}", path.display()))?;
            }
            for r in &st.readiness {
                if r.field.is_empty() || r.field.split('.').any(str::is_empty) || r.ready.is_empty()
                {
                    return Err(format!(
                        "{}: readiness rule of {}: needs a dotted field and at least one ready value",
                        path.display(),
                        r.kind
                    ));
                }
            }
            Ok(st)
        }
        Err(e) => Err(e),
    }
}

/// A template file, capped and never blocking on a FIFO (the directory is the operator's,
/// but a mistake there must not hang a staging command).
pub(super) fn read_template(path: &Path) -> std::result::Result<String, String> {
    use crate::safe_file::{limits, read_small_text, Links};
    read_small_text(path, Links::Follow, limits::TEMPLATE_FILE, "template file")
        .map_err(|e| e.to_string())
}

/// Every document of the template, with the file it comes from.
pub(super) fn load_documents(dir: &Path) -> std::result::Result<Vec<(String, Value)>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                && !matches!(
                    p.file_name().and_then(|n| n.to_str()),
                    Some("capsa.yaml" | "capsa.yml")
                )
        })
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let fname = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = read_template(&f)?;
        parse_documents(&fname, &text, &mut docs)?;
    }
    if docs.is_empty() {
        return Err(format!(
            "{}: no Kubernetes manifest (*.yaml)",
            dir.display()
        ));
    }
    Ok(docs)
}

/// The documents of one YAML stream (a template file, `helm template`'s output), checked.
pub(super) fn parse_documents(
    fname: &str,
    text: &str,
    docs: &mut Vec<(String, Value)>,
) -> std::result::Result<(), String> {
    use serde::Deserialize;
    {
        let fname = fname.to_string();
        for d in serde_yaml::Deserializer::from_str(text) {
            let v = serde_yaml::Value::deserialize(d).map_err(|e| format!("{fname}: {e}"))?;
            if v.is_null() {
                continue;
            }
            let j: Value = serde_json::to_value(v).map_err(|e| format!("{fname}: {e}"))?;
            if !j.is_object() {
                return Err(format!("{fname}: a document is not a mapping"));
            }
            for key in ["apiVersion", "kind"] {
                if !j.get(key).is_some_and(Value::is_string) {
                    return Err(format!("{fname}: a document has no {key}"));
                }
            }
            if j.pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_none()
            {
                return Err(format!("{fname}: a document has no metadata.name"));
            }
            if j["kind"] == "Namespace" {
                return Err(format!(
                    "{fname}: a template may not declare a Namespace (the staging's is made for it)"
                ));
            }
            docs.push((fname.clone(), j));
        }
    }
    Ok(())
}

/// `{{{{` renders as a literal `{{` and `}}}}` as `}}` (Argo's `{{steps.x.outputs}}` is written
/// `{{{{steps.x.outputs}}}}`).
const ESCAPED_CLOSE: &str = "}}}}";

pub(super) struct RenderCtx<'a> {
    pub(super) req: &'a DeployRequest,
    pub(super) settings: &'a Settings,
    pub(super) used_private: BTreeSet<String>,
}

impl RenderCtx<'_> {
    fn lookup(&mut self, expr: &str) -> std::result::Result<String, String> {
        let tag = self.req.tag.as_deref().unwrap_or("");
        match expr {
            "tag" => Ok(tag.to_string()),
            "name" => Ok(self.req.name.clone()),
            "namespace" => Ok(self.req.namespace.clone()),
            "app_config" => Ok(APP_CONFIGMAP.into()),
            "app_secret" => Ok(APP_SECRET.into()),
            _ => {
                let Some(key) = expr.strip_prefix("staging.") else {
                    return Err(format!("unknown placeholder {{{{ {expr} }}}}"));
                };
                let found: Option<&Override> = self
                    .req
                    .overrides
                    .iter()
                    .rev()
                    .find(|o| o.scope == Scope::Staging && o.key == key);
                match found {
                    Some(o) => {
                        if o.visibility == Visibility::Private {
                            self.used_private.insert(key.to_string());
                        }
                        Ok(o.value.expose().to_string())
                    }
                    None => self.settings.defaults.get(key).cloned().ok_or_else(|| {
                        format!("{{{{ staging.{key} }}}}: no Staging-scope override {key} and no default in {SETTINGS_FILE}")
                    }),
                }
            }
        }
    }

    fn render_str(&mut self, s: &str) -> std::result::Result<Value, String> {
        if !s.contains("{{") && !s.contains(ESCAPED_CLOSE) {
            return Ok(Value::String(s.to_string()));
        }
        // A whole-string placeholder with a type filter.
        let t = s.trim();
        if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) {
            if !inner.contains("{{") && !inner.contains("}}") {
                if let Some((expr, filter)) = inner.split_once('|') {
                    let v = self.lookup(expr.trim())?;
                    return match filter.trim() {
                        "int" => v
                            .trim()
                            .parse::<i64>()
                            .map(Value::from)
                            .map_err(|_| format!("{{{{{inner}}}}}: not an integer")),
                        "bool" => v
                            .trim()
                            .parse::<bool>()
                            .map(Value::from)
                            .map_err(|_| format!("{{{{{inner}}}}}: not true or false")),
                        other => Err(format!("unknown filter {other:?} (int, bool)")),
                    };
                }
            }
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        loop {
            let open = rest.find("{{");
            let close = rest.find(ESCAPED_CLOSE);
            let i = match (open, close) {
                (Some(i), None) => i,
                (Some(i), Some(c)) if i < c => i,
                (_, Some(c)) => {
                    out.push_str(&rest[..c]);
                    out.push_str("}}");
                    rest = &rest[c + ESCAPED_CLOSE.len()..];
                    continue;
                }
                (None, None) => break,
            };
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            if let Some(a) = after.strip_prefix("{{") {
                out.push_str("{{");
                rest = a;
                continue;
            }
            let j = after
                .find("}}")
                .ok_or_else(|| format!("unclosed placeholder in {s:?}"))?;
            let expr = after[..j].trim();
            if expr.contains('|') {
                return Err(format!(
                    "{{{{ {expr} }}}}: a filter needs the placeholder to be the whole value"
                ));
            }
            out.push_str(&self.lookup(expr)?);
            rest = &after[j + 2..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }

    fn render_value(&mut self, v: Value) -> std::result::Result<Value, String> {
        Ok(match v {
            Value::String(s) => self.render_str(&s)?,
            Value::Array(a) => Value::Array(
                a.into_iter()
                    .map(|x| self.render_value(x))
                    .collect::<std::result::Result<_, _>>()?,
            ),
            Value::Object(o) => {
                let mut m = serde_json::Map::with_capacity(o.len());
                for (k, x) in o {
                    let k = match self.render_str(&k)? {
                        Value::String(k) => k,
                        _ => return Err("a filter may not be used in a key".into()),
                    };
                    m.insert(k, self.render_value(x)?);
                }
                Value::Object(m)
            }
            other => other,
        })
    }
}

pub(super) fn render_document(
    doc: Value,
    req: &DeployRequest,
    settings: &Settings,
) -> std::result::Result<Manifest, String> {
    let mut ctx = RenderCtx {
        req,
        settings,
        used_private: BTreeSet::new(),
    };
    let m = Manifest::of(ctx.render_value(doc)?);
    let is_secret = m.api_version == "v1" && m.kind == "Secret";
    if !is_secret && !ctx.used_private.is_empty() {
        return Err(format!(
            "{}/{}: private Staging-scope overrides ({}) may only be used in a Secret",
            m.kind,
            m.name,
            ctx.used_private.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(m)
}

pub(super) fn tag_allowed(settings: &Settings, tag: &str) -> std::result::Result<(), String> {
    if settings.tags.is_none() && settings.tag_range.is_none() {
        return Ok(());
    }
    if let Some(tags) = &settings.tags {
        if tags.iter().any(|t| t == tag) {
            return Ok(());
        }
    }
    if let Some(range) = &settings.tag_range {
        let req = semver::VersionReq::parse(range).map_err(|e| format!("tag_range: {e}"))?;
        if let Ok(v) = semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)) {
            if req.matches(&v) {
                return Ok(());
            }
        }
    }
    let mut allowed = Vec::new();
    if let Some(t) = &settings.tags {
        allowed.push(format!("one of [{}]", t.join(", ")));
    }
    if let Some(r) = &settings.tag_range {
        allowed.push(format!("a version matching {r:?}"));
    }
    Err(format!(
        "tag {tag:?} is not allowed by the template: expected {}",
        allowed.join(" or ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(overrides: Vec<Override>) -> DeployRequest {
        DeployRequest {
            name: "web".into(),
            namespace: "ns-web".into(),
            tag: Some("1.2.3".into()),
            overrides,
        }
    }

    #[test]
    fn renders_inside_strings_only() {
        let r = req(vec![
            Override::public(Scope::Staging, "HOST", "a.example: {x}\nb: 1"),
            Override::public(Scope::Staging, "N", "3"),
        ]);
        let doc = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "{{name}}-cfg"},
            "data": {"image": "app:{{ tag }}", "host": "{{ staging.HOST }}", "ns": "{{namespace}}",
                     "n": "{{ staging.N | int }}", "d": "{{ staging.D }}"}});
        let mut st = Settings::default();
        st.defaults.insert("D".into(), "dflt".into());
        let m = render_document(doc, &r, &st).unwrap();
        assert_eq!(m.name, "web-cfg");
        assert_eq!(m.body["data"]["image"], "app:1.2.3");
        assert_eq!(m.body["data"]["host"], "a.example: {x}\nb: 1");
        assert_eq!(m.body["data"]["ns"], "ns-web");
        assert_eq!(m.body["data"]["n"], 3);
        assert_eq!(m.body["data"]["d"], "dflt");
    }

    /// A `capsa.yaml` that is a FIFO is refused at once (it used to block the command
    /// forever); a missing one is the defaults.
    #[cfg(unix)]
    #[test]
    fn a_settings_file_that_is_a_fifo_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load_settings(dir.path()).unwrap().tag_range,
            Settings::default().tag_range
        );
        let fifo = dir.path().join(SETTINGS_FILE);
        crate::sys::make_fifo(&fifo);
        let (tx, rx) = std::sync::mpsc::channel();
        let d = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(load_settings(&d).map(|_| ()));
        });
        let e = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("load_settings blocked on a FIFO")
            .unwrap_err();
        assert!(e.contains("FIFO") || e.contains("fifo"), "{e}");
    }

    #[test]
    fn doubled_braces_are_literal_braces() {
        let r = req(vec![]);
        let st = Settings::default();
        let doc = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": v}});
        let out = |v: &str| render_document(doc(v), &r, &st).map(|m| m.body["data"]["a"].clone());
        assert_eq!(
            out("{{{{steps.a.outputs.result}}}}").unwrap(),
            "{{steps.a.outputs.result}}"
        );
        assert_eq!(
            out("{{{{ inputs.parameters.x }}}}-{{ name }}").unwrap(),
            "{{ inputs.parameters.x }}-web"
        );
        assert_eq!(out("{{ tag }}}}}}").unwrap(), "1.2.3}}");
        assert_eq!(out("a }} b").unwrap(), "a }} b");
        assert!(out("{{steps.a}}")
            .unwrap_err()
            .contains("unknown placeholder"));
    }

    #[test]
    fn readiness_rules_read_a_status_field() {
        use super::super::readiness::Readiness;
        let st: Settings = serde_yaml::from_str(
            "readiness:\n  - kind: Workflow\n    apiVersion: argoproj.io/v1alpha1\n    field: status.phase\n    ready: [Succeeded]\n    failed: [Failed, Error]\n",
        )
        .unwrap();
        let rule = &st.readiness[0];
        assert!(rule.matches("argoproj.io/v1alpha1", "Workflow"));
        assert!(!rule.matches("argoproj.io/v1", "Workflow"));
        assert_eq!(
            rule.judge(&json!({"status": {"phase": "Succeeded"}})),
            Readiness::Ready
        );
        assert_eq!(
            rule.judge(&json!({"status": {"phase": "Error"}})),
            Readiness::Failed("status.phase is Error".into())
        );
        assert_eq!(
            rule.judge(&json!({"status": {"phase": "Running"}})),
            Readiness::Pending("status.phase is Running".into())
        );
        assert_eq!(
            rule.judge(&json!({})),
            Readiness::Pending("no status.phase yet".into())
        );
        let bad = serde_yaml::from_str::<Settings>(
            "readiness:\n  - kind: X\n    field: status.\n    ready: [a]\n",
        );
        assert!(bad.is_ok(), "parsed; load_settings checks the field");
    }

    #[test]
    fn unknown_and_missing_placeholders_fail() {
        let r = req(vec![]);
        let st = Settings::default();
        let doc = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": v}});
        assert!(render_document(doc("{{ nope }}"), &r, &st)
            .unwrap_err()
            .contains("unknown placeholder"));
        assert!(render_document(doc("{{ staging.X }}"), &r, &st)
            .unwrap_err()
            .contains("staging.X"));
        assert!(render_document(doc("{{ tag"), &r, &st)
            .unwrap_err()
            .contains("unclosed"));
    }

    #[test]
    fn private_staging_values_only_in_secrets() {
        let r = req(vec![Override::private(Scope::Staging, "PW", "hunter2")]);
        let st = Settings::default();
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "{{ staging.PW }}"}});
        let e = render_document(cm, &r, &st).unwrap_err();
        assert!(
            e.contains("only be used in a Secret") && !e.contains("hunter2"),
            "{e}"
        );
        let sec = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": {"a": "{{ staging.PW }}"}});
        assert_eq!(
            render_document(sec, &r, &st).unwrap().body["stringData"]["a"],
            "hunter2"
        );
    }

    #[test]
    fn tags() {
        let any = Settings::default();
        assert!(tag_allowed(&any, "whatever").is_ok());
        let st: Settings = serde_yaml::from_str("tags: [latest]\ntag_range: '>=1.0, <2'").unwrap();
        assert!(tag_allowed(&st, "latest").is_ok());
        assert!(tag_allowed(&st, "1.4.0").is_ok());
        assert!(tag_allowed(&st, "v1.0.0").is_ok());
        assert!(tag_allowed(&st, "2.0.0").unwrap_err().contains(">=1.0, <2"));
        assert!(tag_allowed(&st, "nightly").is_err());
    }
}
