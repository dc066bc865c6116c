//! Stagings: a manager on the mock, script or Kubernetes backend, the lifecycle commands,
//! and event subscriptions delivering to a C++ [`EventSink`].

use std::time::Duration;

use capsa::staging::{
    AuditQuery, BackendSpec, Event, OpenSettings, Override, Scope, Staging, StagingManager,
    Visibility, DEFAULT_EVENTS_LIMIT,
};
use cxx::UniquePtr;

use super::callbacks::{EventSink, StagingEvent};
use super::{ffi, g, path, text, to_json, R};
use crate::error::{bad_arg, Failure};
use crate::staging::{capsa_subscription, event_fields, subscribe};

/// A staging manager.
pub struct RustStagingManager(StagingManager);
/// Overrides for a command.
#[derive(Default)]
pub struct RustOverrides(Vec<Override>);

fn staging_info(s: Option<Staging>) -> Result<ffi::StagingInfo, Failure> {
    let Some(s) = s else {
        return Ok(ffi::StagingInfo {
            json: "null".into(),
            ..Default::default()
        });
    };
    Ok(ffi::StagingInfo {
        json: to_json(&s)?,
        name: s.name,
        tag: s.tag,
        status: s.status.as_str().to_owned(),
        reason: s.reason.unwrap_or_default(),
        exists: true,
    })
}

/// Open through core's one opening ([`OpenSettings::open`]), as the C API does.
fn open(
    state: &[u8],
    spec: BackendSpec,
    settings: &OpenSettings,
) -> Result<Box<RustStagingManager>, Failure> {
    let m = settings.open(path(state, "state")?, &spec)?;
    Ok(Box::new(RustStagingManager(m)))
}

pub(super) fn staging_open(
    state: &[u8],
    backend: &str,
    options_json: &str,
) -> R<Box<RustStagingManager>> {
    g(|| {
        let settings = match options_json {
            "" => OpenSettings::default(),
            json => OpenSettings::from_json(json)?,
        };
        open(state, BackendSpec::parse(backend)?, &settings)
    })
}

pub(super) fn staging_open_mock(state: &[u8]) -> R<Box<RustStagingManager>> {
    g(|| open(state, BackendSpec::Mock, &OpenSettings::default()))
}

pub(super) fn staging_open_script(state: &[u8], dir: &[u8]) -> R<Box<RustStagingManager>> {
    g(|| {
        let spec = BackendSpec::Script(path(dir, "dir")?);
        open(state, spec, &OpenSettings::default())
    })
}

pub(super) fn staging_open_kubernetes(
    state: &[u8],
    template_dir: &[u8],
    kubeconfig: &[u8],
    has_kubeconfig: bool,
) -> R<Box<RustStagingManager>> {
    g(|| {
        let settings = OpenSettings {
            kubeconfig: has_kubeconfig
                .then(|| path(kubeconfig, "kubeconfig"))
                .transpose()?,
            ..OpenSettings::default()
        };
        let spec = BackendSpec::Kubernetes(path(template_dir, "template_dir")?);
        open(state, spec, &settings)
    })
}

pub(super) fn scope_parse(name: &[u8]) -> R<ffi::Scope> {
    g(|| match Scope::parse(text(name, "scope")?)? {
        Scope::App => Ok(ffi::Scope::App),
        Scope::Staging => Ok(ffi::Scope::Staging),
    })
}

pub(super) fn visibility_parse(name: &[u8]) -> R<ffi::Visibility> {
    g(|| match Visibility::parse(text(name, "visibility")?)? {
        Visibility::Public => Ok(ffi::Visibility::Public),
        Visibility::Private => Ok(ffi::Visibility::Private),
    })
}

pub(super) fn new_overrides() -> Box<RustOverrides> {
    Box::default()
}

impl RustOverrides {
    pub(super) fn push(
        &mut self,
        scope: ffi::Scope,
        visibility: ffi::Visibility,
        key: &[u8],
        value: &[u8],
    ) -> R<()> {
        g(|| {
            let scope = match scope {
                ffi::Scope::App => Scope::App,
                ffi::Scope::Staging => Scope::Staging,
                other => return Err(bad_arg(format!("{} is not a capsa::Scope", other.repr))),
            };
            let (key, value) = (text(key, "key")?, text(value, "value")?);
            self.0.push(match visibility {
                ffi::Visibility::Public => Override::public(scope, key, value),
                ffi::Visibility::Private => Override::private(scope, key, value),
                other => {
                    return Err(bad_arg(format!(
                        "{} is not a capsa::Visibility",
                        other.repr
                    )))
                }
            });
            Ok(())
        })
    }
}

impl RustStagingManager {
    pub(super) fn create(&self, name: &[u8], tag: &[u8], o: &RustOverrides) -> R<ffi::StagingInfo> {
        g(|| {
            let s = self
                .0
                .create(text(name, "name")?, text(tag, "tag")?, o.0.clone())?;
            staging_info(Some(s))
        })
    }
    pub(super) fn update(
        &self,
        name: &[u8],
        tag: &[u8],
        o: &RustOverrides,
        keep_overrides: bool,
    ) -> R<ffi::StagingInfo> {
        g(|| {
            let o = if keep_overrides {
                None
            } else {
                Some(o.0.clone())
            };
            staging_info(Some(self.0.update(
                text(name, "name")?,
                text(tag, "tag")?,
                o,
            )?))
        })
    }
    pub(super) fn delete_(&self, name: &[u8]) -> R<ffi::StagingInfo> {
        g(|| staging_info(Some(self.0.delete(text(name, "name")?)?)))
    }
    pub(super) fn restore(&self, name: &[u8]) -> R<ffi::StagingInfo> {
        g(|| staging_info(Some(self.0.restore(text(name, "name")?)?)))
    }
    pub(super) fn cleanup(&self, name: &[u8]) -> R<ffi::StagingInfo> {
        g(|| staging_info(self.0.cleanup(text(name, "name")?)?))
    }
    pub(super) fn get(&self, name: &[u8]) -> R<ffi::StagingInfo> {
        g(|| staging_info(Some(self.0.get(text(name, "name")?)?)))
    }
    pub(super) fn list(&self) -> R<Vec<ffi::StagingInfo>> {
        g(|| {
            self.0
                .list()?
                .into_iter()
                .map(|s| staging_info(Some(s)))
                .collect()
        })
    }
    pub(super) fn reconcile(&self) -> R<String> {
        g(|| to_json(&self.0.reconcile()?))
    }
    pub(super) fn mock(&self, command_json: &[u8]) -> R<String> {
        g(|| {
            let command = text(command_json, "command_json")?;
            to_json(&self.0.mock()?.control(command)?)
        })
    }
    pub(super) fn audit_log(&self, name: &[u8], has_name: bool, limit: usize) -> R<String> {
        g(|| {
            let query = AuditQuery {
                name: has_name
                    .then(|| text(name, "name"))
                    .transpose()?
                    .map(Into::into),
                after_id: None,
                limit: (limit > 0).then_some(limit),
            };
            to_json(&self.0.audit_log(&query)?)
        })
    }
    pub(super) fn events_since(&self, after: i64, limit: usize) -> R<String> {
        let limit = if limit == 0 {
            DEFAULT_EVENTS_LIMIT
        } else {
            limit
        };
        g(|| to_json(&self.0.events_since(after, limit)?))
    }
    pub(super) fn clean_archived(&self, older_than_ms: u64, has: bool) -> R<Vec<String>> {
        let older_than = has.then(|| Duration::from_millis(older_than_ms));
        g(|| Ok(self.0.clean_archived(older_than)?))
    }
    pub(super) fn subscribe(&self, sink: UniquePtr<EventSink>) -> R<Box<RustSubscription>> {
        g(|| {
            if sink.is_null() {
                return Err(bad_arg("the event sink is null"));
            }
            let on_event = move |e: &Event| {
                i32::from(!sink.as_ref().is_some_and(|s| s.on_event(&staging_event(e))))
            };
            Ok(Box::new(RustSubscription(subscribe(
                &self.0,
                Box::new(on_event),
            ))))
        })
    }
}

/// An event subscription (the C API's): dropping it waits for a call in flight, destroys the
/// sink, then unsubscribes.
pub struct RustSubscription(capsa_subscription);

impl RustSubscription {
    pub(super) fn stopped(&self) -> bool {
        self.0.stopped()
    }
}

fn staging_event(event: &Event) -> StagingEvent {
    let (kind, fields) = event_fields(event);
    let [from, to, action, outcome, reason] = fields.map(|s| s.unwrap_or_default().to_owned());
    StagingEvent {
        seq: event.seq,
        name: event.name.clone(),
        event: kind.to_owned(),
        from,
        to,
        action,
        outcome,
        reason,
        json: serde_json::to_string(event).unwrap_or_default(),
    }
}
