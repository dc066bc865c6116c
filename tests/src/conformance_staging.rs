//! The `staging` and `mock` calls of the conformance suite (`tests/conformance/staging.json`):
//! a staging manager over an SQLite state file in the scenario directory and core's mock
//! backend, with the result shapes of `tests/conformance/README.md`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capsa::staging::{
    AuditEntry, AuditQuery, CommandRequest, Event, EventKind, ManagerOptions, MockCall,
    MockDeployer, Override, PendingCommand, Scope, Secret, Staging as Record, StagingManager,
    Visibility,
};
use capsa::{Error, Result};
use serde_json::{json, Value};

use crate::conformance::{opt_str, s, Ctx};

/// How long `mock.wait_held` waits for a held call.
const HELD_WAIT: Duration = Duration::from_secs(10);

/// The staging manager of a scenario and its mock backend.
pub(crate) struct Staging {
    manager: StagingManager,
    mock: Arc<MockDeployer>,
    /// Commands started by `staging.start`, by staging name: the command, and its start.
    started: HashMap<String, (capsa::staging::Command, Result<PendingCommand>)>,
}

fn ms(args: &Value, key: &str) -> Option<Duration> {
    args.get(key)
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
}

fn open(ctx: &mut Ctx, args: &Value) -> Result<()> {
    let mock = Arc::new(MockDeployer::new());
    if let Some(min) = opt_str(args, "min_tag") {
        mock.set_min_tag(min);
    }
    let mut options = ManagerOptions {
        actor: "conformance".into(),
        ..ManagerOptions::default()
    };
    if let Some(d) = ms(args, "check_interval_ms") {
        options.check_interval = d;
    }
    if let Some(d) = ms(args, "retention_ms") {
        options.retention = d;
    }
    let state = ctx.dir.path().join("staging.db");
    let manager = StagingManager::open_with(&state, mock.clone(), options)?;
    ctx.staging = Some(Staging {
        manager,
        mock,
        started: HashMap::new(),
    });
    Ok(())
}

fn staging(ctx: &mut Ctx) -> Result<&mut Staging> {
    if ctx.staging.is_none() {
        open(ctx, &json!({}))?;
    }
    Ok(ctx.staging.as_mut().expect("just opened"))
}

/// The overrides of `args["overrides"]` (`None` when absent).
fn overrides(args: &Value) -> Result<Option<Vec<Override>>> {
    let Some(list) = args.get("overrides").and_then(Value::as_array) else {
        return Ok(None);
    };
    list.iter()
        .map(|o| {
            let ov = Override {
                key: s(o, "key").to_string(),
                value: Secret::new(s(o, "value")),
                scope: Scope::parse(o.get("scope").and_then(Value::as_str).unwrap_or("app"))?,
                visibility: Visibility::parse(
                    o.get("visibility")
                        .and_then(Value::as_str)
                        .unwrap_or("public"),
                )?,
            };
            ov.validate()?;
            Ok(ov)
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn staging_json(st: &Record) -> Value {
    let overrides: Vec<Value> = st
        .overrides
        .iter()
        .map(|o| {
            json!({
                "key": o.key,
                "value": o.shown_value(),
                "scope": o.scope.as_str(),
                "visibility": o.visibility.as_str(),
            })
        })
        .collect();
    json!({
        "name": st.name,
        "tag": st.tag,
        "status": st.status.as_str(),
        "reason": st.reason,
        "command_in_progress": st.command_in_progress.map(|c| c.as_str()),
        "overrides": overrides,
    })
}

fn event_json(e: &Event) -> Value {
    match &e.kind {
        EventKind::StatusChanged { from, to, reason } => json!({
            "kind": "status_changed",
            "name": e.name,
            "from": from.map(|s| s.as_str()),
            "to": to.map(|s| s.as_str()),
            "reason": reason,
        }),
        EventKind::CommandFinished {
            action,
            outcome,
            reason,
            ..
        } => json!({
            "kind": "command_finished",
            "name": e.name,
            "action": action,
            "outcome": outcome.as_str(),
            "reason": reason,
        }),
    }
}

fn audit_json(a: &AuditEntry) -> Value {
    json!({
        "name": a.name,
        "action": a.action,
        "actor": a.actor,
        "tag": a.tag,
        "overrides": a.overrides,
        "outcome": a.outcome.as_str(),
        "status_before": a.status_before.map(|s| s.as_str()),
        "status_after": a.status_after.map(|s| s.as_str()),
        "reason": a.reason,
    })
}

fn request(command: capsa::staging::Command, args: &Value) -> Result<CommandRequest> {
    use capsa::staging::Command as C;
    let name = s(args, "name").to_string();
    let tag = || opt_str(args, "tag").unwrap_or_default();
    Ok(match command {
        C::Create => CommandRequest::Create {
            name,
            tag: tag(),
            overrides: overrides(args)?.unwrap_or_default(),
        },
        C::Update => CommandRequest::Update {
            name,
            tag: tag(),
            overrides: overrides(args)?,
        },
        C::Delete => CommandRequest::Delete { name },
        C::Restore => CommandRequest::Restore { name },
        C::Cleanup => CommandRequest::Cleanup { name },
    })
}

/// A command's result: the staging, or for cleanup `{ "staging": staging | null }`.
fn command_result(command: capsa::staging::Command, st: Option<Record>, name: &str) -> Value {
    match (command, st) {
        (capsa::staging::Command::Cleanup, st) => {
            json!({ "staging": st.as_ref().map(staging_json) })
        }
        (_, Some(st)) => staging_json(&st),
        (_, None) => panic!("{command} of {name} left no staging"),
    }
}

fn command_of(name: &str) -> Option<capsa::staging::Command> {
    capsa::staging::Command::parse(name.strip_prefix("staging.")?)
}

/// Run one `staging.*` or `mock.*` call; `None` when `name` is neither.
pub(crate) fn call(ctx: &mut Ctx, name: &str, args: &Value) -> Option<Result<Value>> {
    if !(name.starts_with("staging.") || name.starts_with("mock.")) {
        return None;
    }
    let result = (|| -> Result<Option<Value>> {
        if name == "staging.open" {
            open(ctx, args)?;
            return Ok(Some(json!({})));
        }
        let st = staging(ctx)?;
        let m = &st.manager;
        let mock = &st.mock;
        let call_arg = || MockCall::parse(s(args, "call"));
        Ok(Some(match name {
            "mock.push" | "mock.set_default" => {
                let reply = MockDeployer::reply(
                    s(args, "outcome"),
                    opt_str(args, "reason").unwrap_or_default(),
                )?;
                if name == "mock.push" {
                    mock.push(call_arg()?, reply);
                } else {
                    mock.set_default(call_arg()?, reply);
                }
                json!({})
            }
            "mock.hold" => {
                mock.hold(call_arg()?);
                json!({})
            }
            "mock.release" => {
                mock.release(call_arg()?);
                json!({})
            }
            "mock.held" => json!({ "held": mock.held(call_arg()?) }),
            "mock.wait_held" => {
                let c = call_arg()?;
                let want = args.get("count").and_then(Value::as_u64).unwrap_or(1) as usize;
                let deadline = Instant::now() + HELD_WAIT;
                while mock.held(c) < want && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                json!({ "held": mock.held(c) })
            }
            "mock.calls" => {
                let calls: Vec<Value> = mock
                    .calls()
                    .into_iter()
                    .map(|(c, n)| json!({ "call": c.as_str(), "name": n }))
                    .collect();
                json!({ "calls": calls })
            }
            "mock.count" => json!({ "count": mock.count(call_arg()?) }),
            "staging.start" => {
                let command =
                    capsa::staging::Command::parse(s(args, "command")).ok_or_else(|| {
                        Error::InvalidArgument {
                            what: "command",
                            reason: format!("{:?} is not a command", s(args, "command")),
                        }
                    })?;
                let started = request(command, args).and_then(|r| m.start(r));
                st.started
                    .insert(s(args, "name").to_string(), (command, started));
                json!({})
            }
            "staging.wait" => {
                let n = s(args, "name");
                let (command, started) = st
                    .started
                    .remove(n)
                    .unwrap_or_else(|| panic!("no command of {n} was started"));
                command_result(command, started?.wait()?, n)
            }
            "staging.get" => staging_json(&m.get(s(args, "name"))?),
            "staging.list" => {
                let all = m.list()?;
                let names: Vec<&str> = all.iter().map(|x| x.name.as_str()).collect();
                let by_name: serde_json::Map<String, Value> = all
                    .iter()
                    .map(|x| (x.name.clone(), staging_json(x)))
                    .collect();
                json!({ "names": names, "stagings": by_name })
            }
            "staging.log" => {
                let query = AuditQuery {
                    name: opt_str(args, "name"),
                    after_id: None,
                    limit: args
                        .get("limit")
                        .and_then(Value::as_u64)
                        .map(|l| l as usize),
                };
                let entries: Vec<Value> = m.audit_log(&query)?.iter().map(audit_json).collect();
                json!({ "entries": entries })
            }
            "staging.events" => {
                let filter = opt_str(args, "name");
                let mut events: Vec<Value> = m
                    .events_since(0, capsa::staging::DEFAULT_EVENTS_LIMIT)?
                    .iter()
                    .filter(|e| filter.as_deref().is_none_or(|f| e.name == f))
                    .map(event_json)
                    .collect();
                if let Some(last) = args.get("last").and_then(Value::as_u64) {
                    let keep = events.len().saturating_sub(last as usize);
                    events.drain(..keep);
                }
                json!({ "events": events })
            }
            "staging.reconcile" => serde_json::to_value(m.reconcile()?).expect("serialises"),
            "staging.clean_archived" => {
                json!({ "removed": m.clean_archived(ms(args, "older_than_ms"))? })
            }
            other => match command_of(other) {
                Some(command) => {
                    let n = s(args, "name");
                    let done = match request(command, args)? {
                        CommandRequest::Create {
                            name,
                            tag,
                            overrides,
                        } => Some(m.create(&name, &tag, overrides)?),
                        CommandRequest::Update {
                            name,
                            tag,
                            overrides,
                        } => Some(m.update(&name, &tag, overrides)?),
                        CommandRequest::Delete { name } => Some(m.delete(&name)?),
                        CommandRequest::Restore { name } => Some(m.restore(&name)?),
                        CommandRequest::Cleanup { name } => m.cleanup(&name)?,
                    };
                    command_result(command, done, n)
                }
                None => return Ok(None),
            },
        }))
    })();
    result.transpose()
}
