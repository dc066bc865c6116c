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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

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
