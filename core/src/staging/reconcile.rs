//! `reconcile`: ask the backend about every staging that is due and act on the answers (health
//! checks, archive checks, interrupted commands), once or in a loop.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::manager::{blocking, lock};
use super::store::{CheckUpdate, Claim, StagingRecord};
use super::{
    machine, redact, BackendOutcome, BackendReply, Command, CommandOptions, CommandRequest,
    DeployRequest, StagingManager, Status, TTL_ACTOR,
};
use crate::error::Result;
use crate::runtime;

/// What one `reconcile` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Stagings whose health or archive state was asked.
    pub checked: usize,
    /// Stable stagings whose status changed (Running ⇄ Failure).
    pub changed: usize,
    /// Backend calls that could not be made (no status changed because of them).
    pub transient_errors: usize,
    /// Pending stagings settled from the backend's answer: interrupted commands finished, and
    /// (with a backend that settles by check) commands confirmed by `check` / `archive_check`.
    pub resolved_pending: usize,
    /// Pending commands failed (timed out, answered "failed", or not confirmed by check
    /// within the pending timeout).
    pub failed_pending: usize,
    /// Archived stagings whose `archive_check` answered "not properly archived".
    pub archive_problems: usize,
    /// Stagings past their expiry ([`Staging::expires_at`](super::Staging::expires_at))
    /// whose `delete` (archive) was started.
    pub expired: usize,
    /// Stagings left to another reconcile sharing the state, which held their lease or had
    /// just checked them.
    pub skipped: usize,
}

/// How a reconcile loop runs ([`StagingManager::spawn_reconcile_loop_with`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileLoopOptions {
    /// How often a round runs. A stable staging is checked when its
    /// [`check_interval`](super::ManagerOptions::check_interval) has passed, a pending one
    /// awaiting its settling check once a period; a fifth of the period is allowed for the
    /// jitter of the rounds.
    pub every: Duration,
    /// Also clean up Archived stagings past the retention on every round
    /// ([`StagingManager::clean_archived_async`]).
    pub clean_archived: bool,
}

impl ReconcileLoopOptions {
    /// A loop every `every`, without retention cleanup.
    pub fn every(every: Duration) -> ReconcileLoopOptions {
        ReconcileLoopOptions {
            every,
            clean_archived: false,
        }
    }
}

/// The leases of one reconcile round ([`StateStore::claim`](super::StateStore::claim)),
/// released when the round ends, also when it is cancelled (the loop stopped) or fails.
struct Leases {
    manager: StagingManager,
    names: Vec<String>,
    until: chrono::DateTime<Utc>,
}

impl Leases {
    /// Release on the blocking pool, as a task that [`ReconcileLoop::stop`] waits for: the
    /// round may be cancelled while it waits here (a stop in the middle of the release), and
    /// the release must still be over when `stop` returns.
    fn spawn_release(&mut self) -> tokio::sync::oneshot::Receiver<()> {
        let names = std::mem::take(&mut self.names);
        let (store, until) = (self.manager.inner.store.clone(), self.until);
        let (done, released) = tokio::sync::oneshot::channel();
        let h = runtime::runtime().spawn_blocking(move || {
            if let Err(e) = store.release(&names, until) {
                tracing::warn!(
                    "reconcile leases could not be released (they run out by themselves): {e}"
                );
            }
            let _ = done.send(());
        });
        let mut releases = lock(&self.manager.inner.releases);
        releases.retain(|h| !h.is_finished());
        releases.push(h);
        released
    }

    async fn release(mut self) {
        let released = self.spawn_release();
        let _ = released.await;
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        // Cancelled before the release: release now; ReconcileLoop::stop waits for it.
        if !self.names.is_empty() {
            drop(self.spawn_release());
        }
    }
}

/// The background reconcile loop; dropping it (or [`ReconcileLoop::stop`]) stops it.
#[must_use = "dropping a ReconcileLoop stops it at once"]
#[derive(Debug)]
pub struct ReconcileLoop {
    handle: tokio::task::JoinHandle<()>,
    manager: StagingManager,
}

impl ReconcileLoop {
    /// Stop the loop at once, also in the middle of a round (backend calls in flight are
    /// dropped: a script is killed, its answer never recorded, so nothing is changed by
    /// half), and wait until it has stopped and released its leases: no reconcile of it runs
    /// after this returns (dropping it stops it too, without waiting).
    pub fn stop(self) {
        runtime::block_on(self.stop_async());
    }

    /// Async form of [`ReconcileLoop::stop`].
    pub async fn stop_async(mut self) {
        self.handle.abort();
        let _ = (&mut self.handle).await;
        let pending: Vec<_> = std::mem::take(&mut *lock(&self.manager.inner.releases));
        for h in pending {
            let _ = h.await;
        }
    }
}

impl Drop for ReconcileLoop {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl StagingManager {
    /// Ask the backend about every staging that is due and act on the answers:
    ///
    /// - Running / Failure: `check`; success → Running, failure → Failure with the reason;
    ///   a backend that cannot be asked changes nothing (a failed read never deletes).
    /// - Archived: `archive_check`; a problem is logged and counted, the status stays.
    /// - A pending command not run by this manager whose process is gone, or that is older
    ///   than `pending_timeout`: finished from the backend's answer (`check` for create,
    ///   restore and update, `archive_check` for delete); if the backend cannot say, a command
    ///   past its timeout becomes Failure with a reason.
    /// - A pending status with no command in flight (a backend that settles by check,
    ///   [`Deployer::settles_by_check`](super::Deployer::settles_by_check)): `check`, or
    ///   `archive_check` for DeletePending, on every call; a pass settles it (Running,
    ///   Archived, counted in `resolved_pending`), and once its status is older than
    ///   `pending_timeout` it becomes Failure with the last answer as the reason (counted in
    ///   `failed_pending`) ([`machine::settle`]).
    ///
    /// - Running / Failure past its expiry ([`Staging::expires_at`](super::Staging::expires_at)):
    ///   `delete` (archive), by the actor [`TTL_ACTOR`], and counted in `expired`.
    ///
    /// Calls `delete` only for an expiry the staging was given, and `cleanup` never. Several
    /// processes or hosts may reconcile one shared state at once: each staging is claimed
    /// first ([`StateStore::claim`](super::StateStore::claim)), so the backend is asked about
    /// it by one of them (the others count it in `skipped`).
    pub async fn reconcile_async(&self) -> Result<ReconcileReport> {
        self.reconcile_round(None).await
    }

    /// One round; `period`: that of the loop running it (`None`: a one-shot reconcile).
    async fn reconcile_round(&self, period: Option<Duration>) -> Result<ReconcileReport> {
        let store = self.inner.store.clone();
        let records = blocking(move || store.list()).await?;
        let now = Utc::now();
        let opts = &self.inner.opts;
        let ago = |d: Duration| now - super::expiry::chrono_duration(d);
        // A loop's rounds drift: allow a fifth of the period, so a staging checked by the
        // round before (here or on another host) is due again on the next one.
        let slack = period.map_or(Duration::ZERO, |p| p / 5);
        let check_due = ago(opts.check_interval.saturating_sub(slack));
        let settle_due = period.map(|p| ago(p.saturating_sub(slack)));
        let mut jobs = Vec::new();
        let my_pid = std::process::id();
        let running_ops = lock(&self.inner.running_ops).clone();
        let abandoned_ops = lock(&self.inner.abandoned_ops).clone();
        let my_host = super::this_host();
        for rec in records {
            let StagingRecord { staging, in_flight } = rec;
            let kind = match &in_flight {
                Some(f) => {
                    if running_ops.contains(&f.op_id) {
                        continue;
                    }
                    let age = (now - f.started_at).to_std().unwrap_or_default();
                    let expired = age > opts.pending_timeout;
                    // A process id is checked only on its own host; a command of this manager
                    // whose result could not be written is settled at once.
                    let local = f.host.as_deref().is_none_or(|h| h == my_host);
                    let orphan = abandoned_ops.contains(&f.op_id)
                        || (local && f.pid != my_pid && !crate::sys::process_alive(f.pid));
                    if !expired && !orphan {
                        continue;
                    }
                    Job::Pending {
                        op_id: f.op_id,
                        command: f.command,
                        expired,
                    }
                }
                // A pending status with no command in flight awaits its settling check
                // (a backend that settles by check): asked on every one-shot reconcile,
                // once a period by a loop.
                None if staging.status.is_pending() => {
                    if !is_due(staging.checked_at, settle_due) {
                        continue;
                    }
                    Job::Settle {
                        status: staging.status,
                        expired: (now - staging.status_since).to_std().unwrap_or_default()
                            > opts.pending_timeout,
                    }
                }
                None if matches!(staging.status, Status::Running | Status::Failure)
                    && staging.expires_at.is_some_and(|t| t <= now) =>
                {
                    Job::Expire
                }
                None => {
                    if !is_due(staging.checked_at, Some(check_due)) {
                        continue;
                    }
                    Job::Check {
                        status: staging.status,
                    }
                }
            };
            jobs.push((kind, staging));
        }
        // Claim what is due, in one statement per staging, so that of several reconciles
        // sharing the state one asks the backend about each staging.
        let claims: Vec<Claim> = jobs
            .iter()
            .map(|(kind, staging)| Claim {
                name: staging.name.clone(),
                due_before: match kind {
                    Job::Check { .. } => Some(check_due),
                    Job::Settle { .. } => settle_due,
                    Job::Pending { .. } | Job::Expire => None,
                },
            })
            .collect();
        let until = now + super::expiry::chrono_duration(opts.pending_timeout);
        let store = self.inner.store.clone();
        let claimed = blocking(move || store.claim(&claims, now, until)).await?;
        let leases = Leases {
            manager: self.clone(),
            names: claimed.clone(),
            until,
        };
        let mut report = ReconcileReport {
            skipped: jobs.len() - claimed.len(),
            ..ReconcileReport::default()
        };
        let claimed: std::collections::HashSet<String> = claimed.into_iter().collect();
        let result = self.run_jobs(jobs, &claimed, &mut report).await;
        leases.release().await;
        result?;
        tracing::debug!(?report, "reconcile done");
        Ok(report)
    }

    /// Ask the backend about the claimed jobs and record the answers.
    async fn run_jobs(
        &self,
        jobs: Vec<(Job, super::Staging)>,
        claimed: &std::collections::HashSet<String>,
        report: &mut ReconcileReport,
    ) -> Result<()> {
        let opts = &self.inner.opts;
        let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let mut expiring = Vec::new();
        for (kind, staging) in jobs {
            if !claimed.contains(&staging.name) {
                continue;
            }
            if let Job::Expire = kind {
                expiring.push(staging.name);
                continue;
            }
            let dreq = DeployRequest {
                name: staging.name.clone(),
                namespace: self.namespace(&staging.name),
                tag: Some(staging.tag.clone()),
                overrides: staging.overrides.clone(),
            };
            let deployer = self.inner.deployer.clone();
            let sem = sem.clone();
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let reply = match &kind {
                    Job::Check {
                        status: Status::Archived,
                    }
                    | Job::Settle {
                        status: Status::DeletePending,
                        ..
                    }
                    | Job::Pending {
                        command: Command::Delete,
                        ..
                    } => Some(deployer.archive_check(&dreq).await),
                    Job::Pending {
                        command: Command::Cleanup,
                        ..
                    } => None,
                    _ => Some(deployer.check(&dreq).await),
                };
                (kind, dreq, reply)
            });
        }
        let mut updates = Vec::new();
        let mut pending = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (kind, dreq, reply) = match joined {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!("reconcile task failed: {e}");
                    continue;
                }
            };
            match kind {
                Job::Check { status } => {
                    let reply = reply.expect("checks have a reply");
                    report.checked += 1;
                    let new_status = match (&reply.outcome, status) {
                        (BackendOutcome::Unavailable { reason }, _) => {
                            report.transient_errors += 1;
                            tracing::warn!(name = %dreq.name, "check could not be made: {}", redact(reason, &dreq.overrides));
                            continue;
                        }
                        (BackendOutcome::Failed { reason }, Status::Archived) => {
                            report.archive_problems += 1;
                            tracing::warn!(name = %dreq.name, "archive_check failed: {}", redact(reason, &dreq.overrides));
                            Status::Archived
                        }
                        (BackendOutcome::Success, Status::Archived) => Status::Archived,
                        (BackendOutcome::Success, _) => Status::Running,
                        (BackendOutcome::Failed { .. }, _) => Status::Failure,
                    };
                    if new_status != status {
                        report.changed += 1;
                    }
                    updates.push(CheckUpdate {
                        name: dreq.name.clone(),
                        expected: status,
                        new_status,
                        reason: reply
                            .reason()
                            .map(|r| format!("check: {}", redact(r, &dreq.overrides))),
                        now: Utc::now(),
                    });
                }
                Job::Settle { status, expired } => {
                    let reply = reply.expect("settling checks have a reply");
                    report.checked += 1;
                    let passed = match &reply.outcome {
                        BackendOutcome::Success => Some(true),
                        BackendOutcome::Failed { .. } => Some(false),
                        BackendOutcome::Unavailable { .. } => None,
                    };
                    let new_status = machine::settle(status, passed, expired);
                    if new_status == status && passed.is_none() {
                        report.transient_errors += 1;
                        continue; // no answer, not yet expired: nothing to write
                    }
                    let call = if status == Status::DeletePending {
                        "archive_check"
                    } else {
                        "check"
                    };
                    let reason = (new_status == Status::Failure).then(|| {
                        let command = machine::awaited(status).map_or("command", Command::as_str);
                        format!(
                            "{command} not confirmed by {call} within {} s: {}",
                            opts.pending_timeout.as_secs(),
                            reply.reason().map_or_else(
                                || "no answer".to_string(),
                                |r| redact(r, &dreq.overrides)
                            )
                        )
                    });
                    match new_status {
                        Status::Failure => report.failed_pending += 1,
                        s if s != status => report.resolved_pending += 1,
                        _ => {}
                    }
                    updates.push(CheckUpdate {
                        name: dreq.name.clone(),
                        expected: status,
                        new_status,
                        reason,
                        now: Utc::now(),
                    });
                }
                Job::Pending {
                    op_id,
                    command,
                    expired,
                } => pending.push((op_id, command, expired, dreq, reply)),
                Job::Expire => {}
            }
        }
        let store = self.inner.store.clone();
        let events = blocking(move || store.record_checks(&updates)).await?;
        self.emit(events);
        let timeout_s = opts.pending_timeout.as_secs();
        for (op_id, command, expired, dreq, reply) in pending {
            let verdict = match reply {
                Some(r) => match &r.outcome {
                    BackendOutcome::Success => {
                        let output = format!(
                            "[reconcile] {command} was interrupted; the backend reports it done\n{}",
                            r.output
                        );
                        Some((BackendReply { output, ..r }, String::new()))
                    }
                    BackendOutcome::Failed { .. } => {
                        Some((r, format!("{command} interrupted; backend answered")))
                    }
                    BackendOutcome::Unavailable { .. } if expired => Some((
                        BackendReply {
                            outcome: BackendOutcome::Failed {
                                reason: r.reason().unwrap_or_default().to_string(),
                            },
                            ..r
                        },
                        format!(
                            "{command} pending for more than {timeout_s} s; backend cannot say"
                        ),
                    )),
                    BackendOutcome::Unavailable { .. } => {
                        report.transient_errors += 1;
                        None
                    }
                },
                None => Some((
                    BackendReply::failed("no backend answer can confirm it"),
                    if expired {
                        format!("{command} pending for more than {timeout_s} s")
                    } else {
                        format!("{command} interrupted (its process is gone)")
                    },
                )),
            };
            let Some((reply, prefix)) = verdict else {
                continue;
            };
            let success = reply.outcome == BackendOutcome::Success;
            // The backend's answer confirmed it: nothing left to settle.
            self.finish_op(&dreq, command, op_id, reply, Some(prefix), false)
                .await?;
            lock(&self.inner.abandoned_ops).remove(&op_id);
            if success {
                report.resolved_pending += 1;
            } else {
                report.failed_pending += 1;
            }
        }
        for name in expiring {
            let req = CommandRequest::Delete { name: name.clone() };
            match self
                .start_as(req, CommandOptions::default(), TTL_ACTOR.to_string())
                .await
            {
                Ok(p) => {
                    report.expired += 1;
                    tracing::info!(name = %name, "expired: archiving");
                    if let Err(e) = p.wait_async().await {
                        tracing::warn!(name = %name, "expiry delete could not be recorded: {e}");
                    }
                }
                Err(e) => tracing::warn!(name = %name, "expiry delete refused: {e}"),
            }
        }
        Ok(())
    }

    /// Blocking form of [`StagingManager::reconcile_async`].
    pub fn reconcile(&self) -> Result<ReconcileReport> {
        runtime::block_on(self.reconcile_async())
    }

    /// Run [`StagingManager::reconcile_async`] every `every` on the shared runtime until the
    /// returned handle is dropped. Errors are logged.
    pub fn spawn_reconcile_loop(&self, every: Duration) -> ReconcileLoop {
        self.spawn_reconcile_loop_with(ReconcileLoopOptions::every(every))
    }

    /// The reconcile loop of a status updater (DM's server checks every 30 s): a round every
    /// [`ReconcileLoopOptions::every`], with retention cleanup if asked, on the shared runtime
    /// until the returned handle is stopped or dropped. Several processes or hosts may run it
    /// on one shared state: each staging is checked by one of them once a period. A round
    /// that fails (the state store unreachable) changes nothing and is logged; the next one
    /// runs on time.
    pub fn spawn_reconcile_loop_with(&self, opts: ReconcileLoopOptions) -> ReconcileLoop {
        let this = self.clone();
        let every = opts.every.max(Duration::from_millis(10));
        let handle = runtime::runtime().spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match this.reconcile_round(Some(every)).await {
                    Ok(r) => tracing::info!(
                        checked = r.checked,
                        changed = r.changed,
                        transient_errors = r.transient_errors,
                        expired = r.expired,
                        skipped = r.skipped,
                        "reconcile round"
                    ),
                    Err(e) => tracing::warn!("reconcile failed: {e}"),
                }
                if opts.clean_archived {
                    match this.clean_archived_async(None).await {
                        Ok(names) => {
                            for n in names {
                                tracing::info!(name = %n, "retention: cleaned up");
                            }
                        }
                        Err(e) => tracing::warn!("retention cleanup failed: {e}"),
                    }
                }
            }
        });
        ReconcileLoop {
            handle,
            manager: self.clone(),
        }
    }
}

/// Whether a staging last checked at `checked_at` is due for a check by `due_before`
/// (`None`: always).
fn is_due(
    checked_at: Option<chrono::DateTime<Utc>>,
    due_before: Option<chrono::DateTime<Utc>>,
) -> bool {
    match (checked_at, due_before) {
        (Some(t), Some(due)) => t <= due,
        _ => true,
    }
}

enum Job {
    Check {
        status: Status,
    },
    /// A pending status with no command in flight, settled by `check` / `archive_check`.
    Settle {
        status: Status,
        expired: bool,
    },
    Pending {
        op_id: i64,
        command: Command,
        expired: bool,
    },
    /// Past its expiry: archived (`delete`).
    Expire,
}
