//! An in-memory deploy backend with scriptable outcomes and delays, for tests (yours too).
//!
//! By default every call succeeds at once and `tag_check` accepts any tag. Queue one-shot
//! replies with [`MockDeployer::push`], change the standing reply with
//! [`MockDeployer::set_default`], slow a call down with [`MockDeployer::set_delay`], hold a
//! call until the test lets it go with [`MockDeployer::hold`] / [`MockDeployer::release`]
//! (so a command is certainly in flight, however loaded the machine), and count what was
//! called with [`MockDeployer::calls`] / [`MockDeployer::count`].

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
}
