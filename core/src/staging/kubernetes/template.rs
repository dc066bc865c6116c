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
}

/// A template object, rendered.
#[derive(Debug, Clone)]
pub(super) struct Manifest {
    pub(super) api_version: String,
    pub(super) kind: String,
    pub(super) name: String,
    pub(super) body: Value,
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
    use serde::Deserialize;
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
        for d in serde_yaml::Deserializer::from_str(&text) {
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
    if docs.is_empty() {
        return Err(format!(
            "{}: no Kubernetes manifest (*.yaml)",
            dir.display()
        ));
    }
    Ok(docs)
}

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
        if !s.contains("{{") {
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
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
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
    let body = ctx.render_value(doc)?;
    let s = |p: &str| {
        body.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind, name) = (s("/apiVersion"), s("/kind"), s("/metadata/name"));
    let is_secret = api_version == "v1" && kind == "Secret";
    if !is_secret && !ctx.used_private.is_empty() {
        return Err(format!(
            "{kind}/{name}: private Staging-scope overrides ({}) may only be used in a Secret",
            ctx.used_private.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(Manifest {
        api_version,
        kind,
        name,
        body,
    })
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
