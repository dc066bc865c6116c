//! `reconcile`: ask the backend about every staging that is due and act on the answers (health
//! checks, archive checks, interrupted commands), once or in a loop.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::manager::{blocking, lock};
use super::store::{CheckUpdate, StagingRecord};
use super::{
    machine, redact, BackendOutcome, BackendReply, Command, DeployRequest, StagingManager, Status,
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
}

/// The background reconcile loop; dropping it (or [`ReconcileLoop::stop`]) stops it.
#[must_use = "dropping a ReconcileLoop stops it at once"]
#[derive(Debug)]
pub struct ReconcileLoop {
    handle: tokio::task::JoinHandle<()>,
}

impl ReconcileLoop {
    /// Stop the loop, and wait until it has stopped: no reconcile of it runs after this
    /// returns (dropping it stops it too, without waiting).
    pub fn stop(mut self) {
        self.handle.abort();
        let _ = runtime::block_on(&mut self.handle);
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
    /// Never calls `delete` or `cleanup`.
    pub async fn reconcile_async(&self) -> Result<ReconcileReport> {
        let store = self.inner.store.clone();
        let records = blocking(move || store.list()).await?;
        let now = Utc::now();
        let opts = &self.inner.opts;
        let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
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
                // (a backend that settles by check): asked on every reconcile.
                None if staging.status.is_pending() => Job::Settle {
                    status: staging.status,
                    expired: (now - staging.status_since).to_std().unwrap_or_default()
                        > opts.pending_timeout,
                },
                None => {
                    let due = match staging.checked_at {
                        None => true,
                        Some(t) => (now - t).to_std().unwrap_or_default() >= opts.check_interval,
                    };
                    if !due || staging.status.is_pending() {
                        continue;
                    }
                    Job::Check {
                        status: staging.status,
                    }
                }
            };
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
        let mut report = ReconcileReport::default();
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
        tracing::debug!(?report, "reconcile done");
        Ok(report)
    }

    /// Blocking form of [`StagingManager::reconcile_async`].
    pub fn reconcile(&self) -> Result<ReconcileReport> {
        runtime::block_on(self.reconcile_async())
    }

    /// Run [`StagingManager::reconcile_async`] every `every` on the shared runtime until the
    /// returned handle is dropped. Errors are logged.
    pub fn spawn_reconcile_loop(&self, every: Duration) -> ReconcileLoop {
        let this = self.clone();
        let handle = runtime::runtime().spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = this.reconcile_async().await {
                    tracing::warn!("reconcile failed: {e}");
                }
            }
        });
        ReconcileLoop { handle }
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
}
