//! An in-memory deploy backend with scriptable outcomes and delays, for tests (yours too).
//!
//! By default every call succeeds at once and `tag_check` accepts any tag. Queue one-shot
//! replies with [`MockDeployer::push`], change the standing reply with
//! [`MockDeployer::set_default`], slow a call down with [`MockDeployer::set_delay`], hold a
//! call until the test lets it go with [`MockDeployer::hold`] / [`MockDeployer::release`]
//! (so a command is certainly in flight, however loaded the machine), and count what was
//! called with [`MockDeployer::calls`] / [`MockDeployer::count`]. [`MockDeployer::control`]
//! does each of these from one JSON command, for the C and C++ APIs.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{compare_tags, BackendReply, DeployRequest, Deployer};
use crate::error::{Error, Result};

/// One of the seven backend calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MockCall {
    /// `create`
    Create,
    /// `update`
    Update,
    /// `delete`
    Delete,
    /// `check`
    Check,
    /// `cleanup`
    Cleanup,
    /// `archive_check`
    ArchiveCheck,
    /// `tag_check`
    TagCheck,
}

crate::staging::spelling::spelled!(MockCall, "backend call", {
    Create => "create",
    Update => "update",
    Delete => "delete",
    Check => "check",
    Cleanup => "cleanup",
    ArchiveCheck => "archive_check",
    TagCheck => "tag_check",
});

impl MockCall {
    /// The backend call `command` makes (a restore creates again).
    pub fn of(command: super::Command) -> MockCall {
        match command {
            super::Command::Create | super::Command::Restore => MockCall::Create,
            super::Command::Update => MockCall::Update,
            super::Command::Delete => MockCall::Delete,
            super::Command::Cleanup => MockCall::Cleanup,
        }
    }
}

#[derive(Default)]
struct Inner {
    queued: HashMap<MockCall, VecDeque<BackendReply>>,
    defaults: HashMap<MockCall, BackendReply>,
    delays: HashMap<MockCall, Duration>,
    calls: Vec<(MockCall, String)>,
    min_tag: Option<String>,
    /// Held calls: the gate opens (`true`) on release.
    holds: HashMap<MockCall, tokio::sync::watch::Sender<bool>>,
    /// Calls waiting at a hold now.
    waiting: HashMap<MockCall, usize>,
}

/// A [`MockDeployer::control`] command: one verb key and the arguments it takes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    push: Option<String>,
    set_default: Option<String>,
    set_delay: Option<String>,
    hold: Option<String>,
    release: Option<String>,
    held: Option<String>,
    count: Option<String>,
    calls: Option<serde::de::IgnoredAny>,
    clear_calls: Option<serde::de::IgnoredAny>,
    set_min_tag: Option<String>,
    outcome: Option<String>,
    reason: Option<String>,
    output: Option<String>,
    seconds: Option<f64>,
}

impl Control {
    const VERBS: &'static [&'static str] = &[
        "push",
        "set_default",
        "set_delay",
        "hold",
        "release",
        "held",
        "count",
        "calls",
        "clear_calls",
        "set_min_tag",
    ];
}

/// The mock backend. Share it as `Arc<MockDeployer>` to keep a handle for scripting while
/// the manager holds it as `Arc<dyn Deployer>`.
#[derive(Default)]
pub struct MockDeployer {
    inner: Mutex<Inner>,
}

impl fmt::Debug for MockDeployer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockDeployer")
            .field("calls", &self.lock().calls.len())
            .finish()
    }
}

impl MockDeployer {
    /// A backend where everything succeeds at once.
    pub fn new() -> MockDeployer {
        MockDeployer::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reply named by `outcome` (`success`, `failed` or `unavailable`, as the bindings
    /// spell it) with `reason`; `InvalidArgument` otherwise.
    pub fn reply(outcome: &str, reason: impl Into<String>) -> Result<BackendReply> {
        Ok(match outcome {
            "success" => BackendReply::success(),
            "failed" => BackendReply::failed(reason),
            "unavailable" => BackendReply::unavailable(reason),
            other => {
                return Err(Error::InvalidArgument {
                    what: "backend outcome",
                    reason: format!("{other:?} is not success, failed or unavailable"),
                })
            }
        })
    }

    /// Queue a one-shot reply for the next `call` (replies are used first in, first out).
    pub fn push(&self, call: MockCall, reply: BackendReply) {
        self.lock().queued.entry(call).or_default().push_back(reply);
    }

    /// Set the reply `call` gives when nothing is queued.
    pub fn set_default(&self, call: MockCall, reply: BackendReply) {
        self.lock().defaults.insert(call, reply);
    }

    /// Make `call` take `delay` before it answers.
    pub fn set_delay(&self, call: MockCall, delay: Duration) {
        self.lock().delays.insert(call, delay);
    }

    /// Hold `call`: from now on it is recorded and then waits, without answering, until
    /// [`release`](Self::release). A command whose backend call is held stays pending, so a
    /// test can act on it while it is certainly in flight.
    pub fn hold(&self, call: MockCall) {
        self.lock()
            .holds
            .entry(call)
            .or_insert_with(|| tokio::sync::watch::channel(false).0);
    }

    /// Let the held `call`s go (they answer as they would have), and stop holding `call`.
    pub fn release(&self, call: MockCall) {
        if let Some(gate) = self.lock().holds.remove(&call) {
            gate.send_replace(true);
        }
    }

    /// How many `call`s are waiting at a hold now.
    pub fn held(&self, call: MockCall) -> usize {
        self.lock().waiting.get(&call).copied().unwrap_or(0)
    }

    /// Make `tag_check` reject tags lower than `min` (compared as semver when both parse).
    pub fn set_min_tag(&self, min: impl Into<String>) {
        self.lock().min_tag = Some(min.into());
    }

    /// Every call made so far, with the staging name, in order.
    pub fn calls(&self) -> Vec<(MockCall, String)> {
        self.lock().calls.clone()
    }

    /// How many times `call` was made.
    pub fn count(&self, call: MockCall) -> usize {
        self.lock().calls.iter().filter(|(c, _)| *c == call).count()
    }

    /// Forget the recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Run one scripting command written as a JSON object whose one verb key names what to
    /// do (the C and C++ APIs' one entry point; call names as [`MockCall::as_str`] spells them):
    ///
    /// | command | does | answer |
    /// | --- | --- | --- |
    /// | `{"push": CALL, "outcome": O, "reason"?: str, "output"?: str}` | [`push`](Self::push) | `null` |
    /// | `{"set_default": CALL, "outcome": O, "reason"?, "output"?}` | [`set_default`](Self::set_default) | `null` |
    /// | `{"set_delay": CALL, "seconds": number}` | [`set_delay`](Self::set_delay) | `null` |
    /// | `{"hold": CALL}`, `{"release": CALL}` | [`hold`](Self::hold), [`release`](Self::release) | `null` |
    /// | `{"held": CALL}`, `{"count": CALL}` | [`held`](Self::held), [`count`](Self::count) | a number |
    /// | `{"calls": true}` | [`calls`](Self::calls) | `[["create", "web"], …]` |
    /// | `{"clear_calls": true}` | [`clear_calls`](Self::clear_calls) | `null` |
    /// | `{"set_min_tag": str}` | [`set_min_tag`](Self::set_min_tag) | `null` |
    ///
    /// `O` is `success`, `failed` or `unavailable` ([`reply`](Self::reply)). Bad JSON, an
    /// unknown key, not exactly one verb, an argument the verb does not take or an unknown
    /// call name is `InvalidArgument` with a one-line message, and changes nothing.
    pub fn control(&self, command: &str) -> Result<serde_json::Value> {
        let bad = |reason: String| Error::InvalidArgument {
            what: "mock command",
            reason,
        };
        let one_line = |e: serde_json::Error| bad(crate::error::one_line(&e.to_string()).into());
        let value: serde_json::Value = serde_json::from_str(command).map_err(one_line)?;
        let c = <Control as serde::Deserialize>::deserialize(&value).map_err(one_line)?;
        let keys = value.as_object().into_iter().flat_map(|o| o.keys());
        if keys
            .filter(|k| Control::VERBS.contains(&k.as_str()))
            .count()
            != 1
        {
            let verbs = crate::staging::spelling::one_of(Control::VERBS);
            return Err(bad(format!("needs exactly one of {verbs}")));
        }
        let replies = c.push.is_some() || c.set_default.is_some();
        if !replies && (c.outcome.is_some() || c.reason.is_some() || c.output.is_some()) {
            return Err(bad(
                "`outcome`, `reason` and `output` go with push or set_default".into(),
            ));
        }
        if c.set_delay.is_none() && c.seconds.is_some() {
            return Err(bad("`seconds` goes with set_delay".into()));
        }
        let reply = || {
            let outcome = c
                .outcome
                .as_deref()
                .ok_or_else(|| bad("`outcome` is missing".into()))?;
            let mut r = Self::reply(outcome, c.reason.clone().unwrap_or_default())?;
            r.output = c.output.clone().unwrap_or(r.output);
            Ok::<_, Error>(r)
        };
        let call = |name: &str| MockCall::parse(name);
        let n = serde_json::Value::from;
        if let Some(name) = &c.push {
            self.push(call(name)?, reply()?);
        } else if let Some(name) = &c.set_default {
            self.set_default(call(name)?, reply()?);
        } else if let Some(name) = &c.set_delay {
            let s = c
                .seconds
                .ok_or_else(|| bad("`seconds` is missing".into()))?;
            let d = Duration::try_from_secs_f64(s)
                .map_err(|_| bad(format!("`seconds` {s} is not a duration")))?;
            self.set_delay(call(name)?, d);
        } else if let Some(name) = &c.hold {
            self.hold(call(name)?);
        } else if let Some(name) = &c.release {
            self.release(call(name)?);
        } else if let Some(name) = &c.held {
            return Ok(n(self.held(call(name)?)));
        } else if let Some(name) = &c.count {
            return Ok(n(self.count(call(name)?)));
        } else if c.calls.is_some() {
            let calls = self.calls().into_iter().map(|(c, name)| (c.as_str(), name));
            return Ok(serde_json::json!(calls.collect::<Vec<_>>()));
        } else if c.clear_calls.is_some() {
            self.clear_calls();
        } else if let Some(min) = c.set_min_tag {
            self.set_min_tag(min);
        }
        Ok(serde_json::Value::Null)
    }

    async fn answer(&self, call: MockCall, req: &DeployRequest) -> BackendReply {
        let (reply, delay, gate) = {
            let mut g = self.lock();
            g.calls.push((call, req.name.clone()));
            let queued = g.queued.get_mut(&call).and_then(VecDeque::pop_front);
            let reply = match queued {
                Some(r) => r,
                None => match (call, &g.min_tag, &req.tag) {
                    (MockCall::TagCheck, Some(min), Some(tag))
                        if compare_tags(tag, min) == std::cmp::Ordering::Less =>
                    {
                        BackendReply::failed(format!("tag {tag} is older than {min}"))
                    }
                    _ => g
                        .defaults
                        .get(&call)
                        .cloned()
                        .unwrap_or_else(BackendReply::success),
                },
            };
            let gate = g.holds.get(&call).map(|tx| tx.subscribe());
            if gate.is_some() {
                *g.waiting.entry(call).or_default() += 1;
            }
            (reply, g.delays.get(&call).copied(), gate)
        };
        if let Some(mut gate) = gate {
            // Released, or the mock dropped (which ends the wait too).
            let _ = gate.wait_for(|open| *open).await;
            if let Some(n) = self.lock().waiting.get_mut(&call) {
                *n = n.saturating_sub(1);
            }
        }
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        reply
    }
}

#[async_trait::async_trait]
impl Deployer for MockDeployer {
    fn name(&self) -> &str {
        "mock"
    }
    async fn create(&self, req: &DeployRequest) -> BackendReply {
        self.answer(MockCall::Create, req).await
    }
    async fn update(&self, req: &DeployRequest) -> BackendReply {
        self.answer(MockCall::Update, req).await
    }
    async fn delete(&self, req: &DeployRequest) -> BackendReply {
        self.answer(MockCall::Delete, req).await
    }
    async fn check(&self, req: &DeployRequest) -> BackendReply {
        self.answer(MockCall::Check, req).await
    }
    async fn cleanup(&self, req: &DeployRequest) -> BackendReply {
        self.answer(MockCall::Cleanup, req).await
    }
    async fn archive_check(&self, req: &DeployRequest) -> BackendReply {
        self.answer(MockCall::ArchiveCheck, req).await
    }
    async fn tag_check(&self, req: &DeployRequest) -> BackendReply {
        self.answer(MockCall::TagCheck, req).await
    }
    fn as_mock(&self) -> Option<&MockDeployer> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_names_round_trip_and_unknown_ones_are_refused() {
        for c in MockCall::ALL {
            assert_eq!(MockCall::parse(c.as_str()).unwrap(), *c);
        }
        let e = MockCall::parse("deploy").unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument);
        assert!(e.to_string().contains("\"deploy\""), "{e}");
        assert!(MockDeployer::reply("maybe", "").is_err());
        for r in [
            BackendReply::success(),
            BackendReply::failed("x"),
            BackendReply::unavailable("x"),
        ] {
            let back = MockDeployer::reply(r.outcome.as_str(), "x").unwrap();
            assert_eq!(back.outcome.as_str(), r.outcome.as_str());
        }
        assert_eq!(
            MockDeployer::reply("failed", "no").unwrap(),
            BackendReply::failed("no")
        );
    }

    #[test]
    fn control_commands_script_the_mock() {
        let m = MockDeployer::new();
        let run = |c: &str| m.control(c).unwrap();
        let null = serde_json::Value::Null;
        assert_eq!(
            run(r#"{"push": "create", "outcome": "failed", "reason": "boom", "output": "o"}"#),
            null
        );
        let mut failed = BackendReply::failed("boom");
        failed.output = "o".into();
        assert_eq!(m.lock().queued[&MockCall::Create][0], failed);
        run(r#"{"set_default": "check", "outcome": "unavailable"}"#);
        assert_eq!(
            m.lock().defaults[&MockCall::Check],
            BackendReply::unavailable("")
        );
        run(r#"{"set_delay": "update", "seconds": 0.25}"#);
        assert_eq!(
            m.lock().delays[&MockCall::Update],
            Duration::from_millis(250)
        );
        run(r#"{"hold": "delete"}"#);
        assert!(m.lock().holds.contains_key(&MockCall::Delete));
        assert_eq!(run(r#"{"held": "delete"}"#), serde_json::json!(0));
        run(r#"{"release": "delete"}"#);
        assert!(m.lock().holds.is_empty());
        run(r#"{"set_min_tag": "1.0.0"}"#);
        assert_eq!(m.lock().min_tag.as_deref(), Some("1.0.0"));
        m.lock().calls = vec![
            (MockCall::Create, "web".into()),
            (MockCall::TagCheck, "db".into()),
        ];
        assert_eq!(run(r#"{"count": "create"}"#), serde_json::json!(1));
        assert_eq!(
            run(r#"{"calls": true}"#),
            serde_json::json!([["create", "web"], ["tag_check", "db"]])
        );
        assert_eq!(run(r#"{"clear_calls": true}"#), null);
        assert_eq!(run(r#"{"calls": true}"#), serde_json::json!([]));
    }

    #[test]
    fn bad_control_commands_are_refused_in_one_line_and_change_nothing() {
        let m = MockDeployer::new();
        for (bad, says) in [
            ("{\"push\": \n", "EOF"),
            ("[1]", "invalid type"),
            (r#"{"push": "deploy", "outcome": "success"}"#, "\"deploy\""),
            (r#"{"push": "create"}"#, "`outcome` is missing"),
            (r#"{"push": "create", "outcome": "maybe"}"#, "\"maybe\""),
            (
                r#"{"hold": "create", "release": "create"}"#,
                "exactly one of push",
            ),
            (r#"{}"#, "exactly one of"),
            (r#"{"calls": true, "clear_calls": true}"#, "exactly one of"),
            (r#"{"fly": "create"}"#, "unknown field `fly`"),
            (r#"{"hold": "create", "outcome": "failed"}"#, "go with push"),
            (r#"{"hold": "create", "seconds": 1}"#, "goes with set_delay"),
            (r#"{"set_delay": "create"}"#, "`seconds` is missing"),
            (
                r#"{"set_delay": "create", "seconds": -1}"#,
                "not a duration",
            ),
            (r#"{"held": 3}"#, "invalid type"),
        ] {
            let e = m.control(bad).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidArgument, "{bad}");
            let text = e.to_string();
            assert!(text.contains(says), "{bad}: {text}");
            assert!(!text.contains('\n'), "{bad}: {text}");
        }
        let g = m.lock();
        assert!(g.queued.is_empty() && g.holds.is_empty() && g.delays.is_empty());
    }
}
