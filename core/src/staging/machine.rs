//! The transition table (DESIGN.md "Stagings"), the single source of truth for what each
//! command may do.
//!
//! | command | from | while running | on success | on failure |
//! | --- | --- | --- | --- | --- |
//! | create | (none) | CreatePending | Running | Failure |
//! | update | Running, Failure | UpdatePending | Running | Failure |
//! | delete | Running, Failure | DeletePending | Archived | Failure |
//! | restore | Archived | CreatePending | Running | Failure |
//! | cleanup | Archived, Failure | (unchanged, marked busy) | gone | Failure |
//!
//! With a backend that settles by check ([`Deployer::settles_by_check`](super::Deployer::settles_by_check), DM's way), a
//! successful create, update or restore leaves the staging in its pending status and a
//! successful delete in DeletePending, with no command in flight; `reconcile` then settles it
//! ([`settle`]): `check` (for DeletePending `archive_check`) passing moves it to the success
//! status of the table, and a pending status older than the pending timeout becomes Failure.
//!
//! Anything else is [`Error::InvalidTransition`] naming the current status (`"absent"` when
//! there is no staging); a command on a staging that has a command in progress is
//! [`Error::Busy`].

use super::{Command, Status};
use crate::error::{Error, Result};

/// One row of the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The command.
    pub command: Command,
    /// The statuses it may start from; `None` stands for "no staging".
    pub from: &'static [Option<Status>],
    /// The status while it runs (`None`: unchanged, as for cleanup).
    pub running: Option<Status>,
    /// The status on success (`None`: the record is gone).
    pub success: Option<Status>,
    /// The status on failure.
    pub failure: Status,
}

/// The whole table.
pub const TABLE: [Transition; 5] = [
    Transition {
        command: Command::Create,
        from: &[None],
        running: Some(Status::CreatePending),
        success: Some(Status::Running),
        failure: Status::Failure,
    },
    Transition {
        command: Command::Update,
        from: &[Some(Status::Running), Some(Status::Failure)],
        running: Some(Status::UpdatePending),
        success: Some(Status::Running),
        failure: Status::Failure,
    },
    Transition {
        command: Command::Delete,
        from: &[Some(Status::Running), Some(Status::Failure)],
        running: Some(Status::DeletePending),
        success: Some(Status::Archived),
        failure: Status::Failure,
    },
    Transition {
        command: Command::Restore,
        from: &[Some(Status::Archived)],
        running: Some(Status::CreatePending),
        success: Some(Status::Running),
        failure: Status::Failure,
    },
    Transition {
        command: Command::Cleanup,
        from: &[Some(Status::Archived), Some(Status::Failure)],
        running: None,
        success: None,
        failure: Status::Failure,
    },
];

/// The row for a command.
pub fn transition(command: Command) -> &'static Transition {
    TABLE
        .iter()
        .find(|t| t.command == command)
        .expect("every command has a row")
}

/// The name used for "no staging" in [`Error::InvalidTransition`].
pub const ABSENT: &str = "absent";

/// Decide whether `command` may start on staging `name` whose current status is `current`
/// (`None`: no record) and whose command in progress is `in_progress`.
///
/// Returns the status to set while the command runs (`None`: keep the current one).
pub fn start(
    name: &str,
    command: Command,
    current: Option<Status>,
    in_progress: Option<Command>,
) -> Result<Option<Status>> {
    if let Some(cur) = current {
        if in_progress.is_some() || cur.is_pending() {
            let status = if cur.is_pending() {
                cur.as_str().to_string()
            } else {
                format!(
                    "{} of {cur}",
                    in_progress.map(Command::as_str).unwrap_or("command")
                )
            };
            return Err(Error::Busy {
                name: name.to_string(),
                status,
            });
        }
    }
    let t = transition(command);
    if t.from.contains(&current) {
        Ok(t.running)
    } else {
        Err(Error::InvalidTransition {
            name: name.to_string(),
            command: command.as_str().to_string(),
            status: current.map(Status::as_str).unwrap_or(ABSENT).to_string(),
        })
    }
}

/// The status after a finished command (`None`: record gone).
pub fn finish(command: Command, success: bool) -> Option<Status> {
    let t = transition(command);
    if success {
        t.success
    } else {
        Some(t.failure)
    }
}

/// The status after a finished command whose backend settles by check (`by_check`): a
/// success of a command with a pending status leaves that pending status, to be settled by
/// [`settle`]; anything else is [`finish`].
pub fn finish_settled(command: Command, success: bool, by_check: bool) -> Option<Status> {
    let t = transition(command);
    match t.running {
        Some(pending) if success && by_check => Some(pending),
        _ => finish(command, success),
    }
}

/// The command whose success a pending status awaits (`None` for a stable status): delete for
/// DeletePending, else create (restore shares CreatePending and its outcome) or update.
pub fn awaited(status: Status) -> Option<Command> {
    match status {
        Status::CreatePending => Some(Command::Create),
        Status::UpdatePending => Some(Command::Update),
        Status::DeletePending => Some(Command::Delete),
        _ => None,
    }
}

/// Settle a pending status with no command in flight from the backend's answer (`check`, or
/// `archive_check` for DeletePending): `Some(true)` passed, `Some(false)` did not, `None` no
/// answer. A pass moves it to its command's success status; otherwise it stays pending until
/// `expired` (older than the pending timeout), then becomes that command's failure status. A
/// stable status is returned unchanged.
pub fn settle(status: Status, passed: Option<bool>, expired: bool) -> Status {
    let Some(command) = awaited(status) else {
        return status;
    };
    let t = transition(command);
    match passed {
        Some(true) => t.success.unwrap_or(status),
        _ if expired => t.failure,
        _ => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn settling_by_check_keeps_the_pending_status_until_the_check_passes() {
        use Status::*;
        for c in [
            Command::Create,
            Command::Update,
            Command::Restore,
            Command::Delete,
        ] {
            let pending = transition(c).running;
            assert_eq!(finish_settled(c, true, true), pending, "{c}");
            assert_eq!(finish_settled(c, true, false), finish(c, true), "{c}");
            assert_eq!(finish_settled(c, false, true), Some(Failure), "{c}");
        }
        assert_eq!(finish_settled(Command::Cleanup, true, true), None);
        for (pending, success) in [
            (CreatePending, Running),
            (UpdatePending, Running),
            (DeletePending, Archived),
        ] {
            assert_eq!(settle(pending, Some(true), false), success);
            assert_eq!(settle(pending, Some(true), true), success);
            assert_eq!(settle(pending, Some(false), false), pending);
            assert_eq!(settle(pending, None, false), pending);
            assert_eq!(settle(pending, Some(false), true), Failure);
            assert_eq!(settle(pending, None, true), Failure);
        }
        for stable in [Running, Failure, Archived] {
            assert_eq!(settle(stable, Some(false), true), stable);
        }
    }

    #[test]
    fn table_is_total_and_exact() {
        let states: Vec<Option<Status>> = std::iter::once(None)
            .chain(Status::ALL.into_iter().map(Some))
            .collect();
        for c in Command::ALL {
            for s in &states {
                let r = start("abc", c, *s, None);
                let allowed = transition(c).from.contains(s);
                match (s, r) {
                    (Some(st), Err(e)) if st.is_pending() => assert_eq!(e.code(), ErrorCode::Busy),
                    (_, Ok(_)) => assert!(allowed, "{c} from {s:?}"),
                    (_, Err(e)) => {
                        assert!(!allowed);
                        assert_eq!(e.code(), ErrorCode::InvalidTransition);
                        let want = s.map(Status::as_str).unwrap_or(ABSENT);
                        assert!(e.to_string().contains(want), "{e}");
                    }
                }
            }
        }
        assert_eq!(
            start(
                "abc",
                Command::Update,
                Some(Status::Archived),
                Some(Command::Cleanup)
            )
            .unwrap_err()
            .code(),
            ErrorCode::Busy
        );
    }
}
