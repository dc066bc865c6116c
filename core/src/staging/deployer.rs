//! The deploy backend contract: the [`Deployer`] trait, what it is asked ([`DeployRequest`]) and
//! what it answers ([`BackendReply`], [`BackendOutcome`]).

use super::{Override, Status};
use crate::error::{Error, Result};

/// What a backend answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendOutcome {
    /// Success: for `check`, healthy; for `archive_check`, properly archived; for
    /// `tag_check`, a valid tag.
    Success,
    /// The backend answered "no" (a script's non-zero exit): the command failed, the staging
    /// is unhealthy, the tag is invalid.
    Failed {
        /// Why (for a script: the exit code and a tail of stderr).
        reason: String,
    },
    /// The backend could not be asked (spawn error, timeout, a script's exit code 75 =
    /// `EX_TEMPFAIL`). For a command this is a failure; for a check it is *not* an answer and
    /// changes nothing.
    Unavailable {
        /// Why.
        reason: String,
    },
}

impl BackendOutcome {
    /// `success`, `failed` or `unavailable`: the spelling every binding prints, and the one
    /// [`MockDeployer::reply`](super::MockDeployer::reply) parses.
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendOutcome::Success => "success",
            BackendOutcome::Failed { .. } => "failed",
            BackendOutcome::Unavailable { .. } => "unavailable",
        }
    }
}

/// A backend's reply to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendReply {
    /// The outcome.
    pub outcome: BackendOutcome,
    /// The exit code, for backends that run processes.
    pub exit_code: Option<i32>,
    /// Captured output (bounded).
    pub output: String,
}

impl BackendReply {
    /// A success without output.
    pub fn success() -> BackendReply {
        BackendReply {
            outcome: BackendOutcome::Success,
            exit_code: None,
            output: String::new(),
        }
    }

    /// A failure answer.
    pub fn failed(reason: impl Into<String>) -> BackendReply {
        BackendReply {
            outcome: BackendOutcome::Failed {
                reason: reason.into(),
            },
            exit_code: None,
            output: String::new(),
        }
    }

    /// An unavailable backend (transient error).
    pub fn unavailable(reason: impl Into<String>) -> BackendReply {
        BackendReply {
            outcome: BackendOutcome::Unavailable {
                reason: reason.into(),
            },
            exit_code: None,
            output: String::new(),
        }
    }

    /// The failure reason, if not a success.
    pub fn reason(&self) -> Option<&str> {
        match &self.outcome {
            BackendOutcome::Success => None,
            BackendOutcome::Failed { reason } | BackendOutcome::Unavailable { reason } => {
                Some(reason)
            }
        }
    }
}

/// What a backend is asked to act on.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The staging name.
    pub name: String,
    /// Its Kubernetes namespace (the manager's prefix and the name; the script backend passes
    /// its own `--namespace` setting instead).
    pub namespace: String,
    /// The tag, for create, update, restore and tag_check.
    pub tag: Option<String>,
    /// The overrides (with real private values: use [`Secret::expose`](super::Secret::expose) only to deploy).
    pub overrides: Vec<Override>,
}

/// A deploy backend: DM's staging control contract (`create`, `update`, `delete`, `check`,
/// `cleanup`, `archive_check`, `tag_check`), with Octopod's additions as provided methods
/// (`restore`, `notify`, `info`, and how statuses settle) whose defaults keep a backend's
/// behaviour as it was before them.
///
/// Object-safe (`Arc<dyn Deployer>`). Every call returns a [`BackendReply`]; a backend never
/// panics on a failed call and never reports "gone" from a failed read: a call it could not
/// make is [`BackendOutcome::Unavailable`].
#[async_trait::async_trait]
pub trait Deployer: Send + Sync {
    /// A short backend name for messages (`mock`, `script`, `octopod`, `kubernetes`).
    fn name(&self) -> &str;
    /// Deploy a new staging (also restore's, by default).
    async fn create(&self, req: &DeployRequest) -> BackendReply;
    /// Redeploy with a new tag and overrides.
    async fn update(&self, req: &DeployRequest) -> BackendReply;
    /// Archive: remove workloads, keep volumes.
    async fn delete(&self, req: &DeployRequest) -> BackendReply;
    /// Health check of a running (or failed) staging.
    async fn check(&self, req: &DeployRequest) -> BackendReply;
    /// Remove volumes, claims and certificates.
    async fn cleanup(&self, req: &DeployRequest) -> BackendReply;
    /// Check that an archived staging is properly archived.
    async fn archive_check(&self, req: &DeployRequest) -> BackendReply;
    /// Validate a tag before a create or update (the Octopod dialect's scripts validate the
    /// whole configuration here: see [`Deployer::validates_config`]).
    async fn tag_check(&self, req: &DeployRequest) -> BackendReply;

    /// Recreate an archived staging. Default: [`Deployer::create`] (DM's restore); the
    /// Octopod dialect runs its `unarchive` script where there is one.
    async fn restore(&self, req: &DeployRequest) -> BackendReply {
        self.create(req).await
    }

    /// Whether a successful create, update or restore leaves the staging in its pending
    /// status until `check` passes, and a successful delete until `archive_check` passes
    /// (settled by [`reconcile`](super::StagingManager::reconcile_async), failed after the
    /// pending timeout), as DM's status updater does. Default `false`: the command's own
    /// success settles the status (Running, Archived) at once.
    fn settles_by_check(&self) -> bool {
        false
    }

    /// Whether [`Deployer::tag_check`] validates the whole configuration (Octopod's
    /// `config_check`) rather than the tag: a refusal is then reported as a configuration
    /// refusal, its reason shown as is. Default `false`.
    fn validates_config(&self) -> bool {
        false
    }

    /// Whether [`Deployer::notify`] does anything (the manager then delivers every status
    /// change to it, in order, in the background). Default `false`.
    fn notifies(&self) -> bool {
        false
    }

    /// Told of a status change of `req.name` (`None`: no staging before, or gone after).
    /// Called in the background in the order of the changes; what it answers never changes a
    /// status or fails a command. Default: nothing.
    async fn notify(
        &self,
        req: &DeployRequest,
        from: Option<Status>,
        to: Option<Status>,
        reason: Option<&str>,
    ) -> BackendReply {
        let _ = (req, from, to, reason);
        BackendReply::success()
    }

    /// The named URLs of a staging (Octopod's `info`: the deployment, its logs, its
    /// database…), in the backend's order. Default: `Unsupported`.
    async fn info(&self, req: &DeployRequest) -> Result<Vec<NamedUrl>> {
        let _ = req;
        Err(Error::Unsupported {
            what: format!("staging info on the {} backend", self.name()),
        })
    }

    /// The mock backend this is, if it is one (so a manager opened with `mock` can be
    /// scripted through [`StagingManager::mock`](super::StagingManager::mock)).
    fn as_mock(&self) -> Option<&super::MockDeployer> {
        None
    }
}

/// A named URL of a staging, as [`Deployer::info`] answers (`app`, `https://web.example.com`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NamedUrl {
    /// The name (first column of Octopod's `info` CSV).
    pub name: String,
    /// The URL (second column).
    pub url: String,
}
