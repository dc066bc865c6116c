//! One error type for the whole library, with a stable [`ErrorCode`].
//!
//! Bindings map the *code*, never the message: Python raises one subclass of
//! `capsa.CapsaError` per code, Node sets `error.code` to [`ErrorCode::as_str`], C returns
//! the number. Codes are never renumbered and a retired number is never reused.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The stable, language-independent identity of an error.
///
/// The numbers are part of the C ABI and of every binding: they are explicit and never reused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum ErrorCode {
    /// A capsule, crate, file, staging or other named thing does not exist.
    NotFound = 1,
    /// The thing to create exists already (a capsule, a published file, a staging…).
    AlreadyExists = 2,
    /// A name (capsule id, staging name, relative path) breaks a naming rule.
    InvalidName = 3,
    /// A crate version string does not parse.
    InvalidVersion = 4,
    /// A frame sequence pattern or frame set does not parse, or is too large.
    InvalidSequence = 5,
    /// Another command is in progress on the same staging.
    Busy = 6,
    /// The command is not allowed from the staging's current status.
    InvalidTransition = 7,
    /// Stored data (an archive, metadata, a config file) is damaged.
    Corrupt = 8,
    /// The operation was cancelled by its caller.
    Cancelled = 9,
    /// An operating system I/O error.
    Io = 10,
    /// A deploy backend failed.
    Backend = 11,
    /// The operation or format version is not supported by this build.
    Unsupported = 12,
    /// The crate is sealed (published) and refuses further writes.
    Sealed = 13,
    /// The directory is not a capsa store (no `.capsa/store.toml`).
    InvalidStore = 14,
    /// An argument is out of range or inconsistent with the others.
    InvalidArgument = 15,
    /// An operation did not finish within its time limit.
    Timeout = 16,
    /// The data changed under the operation: a file rewritten while it was archived, or a
    /// capsule whose content no longer matches the archive it is to be taken offline with.
    Changed = 17,
    /// A path would lead outside the store or onto something capsa refuses to open: a
    /// symbolic link, a FIFO, a device, a name reserved for capsa's own files.
    UnsafePath = 18,
    /// An input exceeds a size limit: an archive's expanded size, a small metadata file, the
    /// free space at the destination.
    TooLarge = 19,
    /// The state store (the SQLite state file or the PostgreSQL database of stagings, audit
    /// log and events) failed: unreachable, locked for too long, or refusing a statement.
    State = 20,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::InvalidName,
        ErrorCode::InvalidVersion,
        ErrorCode::InvalidSequence,
        ErrorCode::Busy,
        ErrorCode::InvalidTransition,
        ErrorCode::Corrupt,
        ErrorCode::Cancelled,
        ErrorCode::Io,
        ErrorCode::Backend,
        ErrorCode::Unsupported,
        ErrorCode::Sealed,
        ErrorCode::InvalidStore,
        ErrorCode::InvalidArgument,
        ErrorCode::Timeout,
        ErrorCode::Changed,
        ErrorCode::UnsafePath,
        ErrorCode::TooLarge,
        ErrorCode::State,
    ];

    /// The stable string form used by every binding (`"NOT_FOUND"`, `"BUSY"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::InvalidName => "INVALID_NAME",
            ErrorCode::InvalidVersion => "INVALID_VERSION",
            ErrorCode::InvalidSequence => "INVALID_SEQUENCE",
            ErrorCode::Busy => "BUSY",
            ErrorCode::InvalidTransition => "INVALID_TRANSITION",
            ErrorCode::Corrupt => "CORRUPT",
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::Io => "IO",
            ErrorCode::Backend => "BACKEND",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::Sealed => "SEALED",
            ErrorCode::InvalidStore => "INVALID_STORE",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Changed => "CHANGED",
            ErrorCode::UnsafePath => "UNSAFE_PATH",
            ErrorCode::TooLarge => "TOO_LARGE",
            ErrorCode::State => "STATE",
        }
    }

    /// The stable number (C ABI value).
    pub fn number(self) -> u32 {
        self as u32
    }

    /// Parse the string form back (`"NOT_FOUND"` → [`ErrorCode::NotFound`]).
    pub fn from_str_code(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The code for a number, if it is one.
    pub fn from_number(n: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.number() == n)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in capsa.
///
/// Each variant carries structured fields; [`Error::code`] gives its stable [`ErrorCode`].
/// Messages never contain private override values.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A named thing does not exist.
    #[error("{what} not found: {name}")]
    NotFound {
        /// What kind of thing ("capsule", "crate", "staging", "file"…).
        what: &'static str,
        /// Its name or path.
        name: String,
    },
    /// The thing to create exists already.
    #[error("{what} already exists: {name}")]
    AlreadyExists {
        /// What kind of thing.
        what: &'static str,
        /// Its name or path.
        name: String,
    },
    /// A name breaks a naming rule.
    #[error("invalid {what} {value:?}: {rule}")]
    InvalidName {
        /// What kind of name ("capsule id", "staging name", "path"…).
        what: &'static str,
        /// The offending value (truncated when very long).
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A crate version does not parse.
    #[error("invalid version {value:?}: {rule}")]
    InvalidVersion {
        /// The offending value.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A sequence pattern or frame set does not parse or is too large.
    #[error("invalid sequence {value:?}: {rule}")]
    InvalidSequence {
        /// The offending value.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// Another command is in progress on a staging.
    #[error("staging {name} is busy: {status} in progress")]
    Busy {
        /// The staging name.
        name: String,
        /// The pending status it is in.
        status: String,
    },
    /// A command is not allowed from the current status.
    #[error("cannot {command} staging {name}: it is {status}")]
    InvalidTransition {
        /// The staging name.
        name: String,
        /// The refused command.
        command: String,
        /// The current status (or "absent").
        status: String,
    },
    /// Stored data is damaged.
    #[error("{path}: corrupt{}: {reason}", entry.as_ref().map(|e| format!(" entry {e:?}")).unwrap_or_default())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// The first bad entry inside it, if it is a container.
        entry: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// An I/O error on a path.
    #[error("{op} {path}: {cause}")]
    Io {
        /// What was being done ("create directory", "read"…).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error: part of the message, and not chained again as
        /// [`std::error::Error::source`], so it prints once.
        cause: io::Error,
    },
    /// A deploy backend (mock, control scripts, Kubernetes) failed.
    #[error("{backend} backend: {message}")]
    Backend {
        /// Backend name (`mock`, `script`, `kubernetes`).
        backend: String,
        /// What failed, the underlying error's text included (never a private value).
        message: String,
    },
    /// The state store (SQLite or PostgreSQL: stagings, audit log, events) failed.
    #[error("{store} state store {place}: {message}")]
    State {
        /// `sqlite` or `postgres`.
        store: &'static str,
        /// The state file or the database (without its password).
        place: String,
        /// What failed, the database's error text included.
        message: String,
    },
    /// Not supported by this build or this format version.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// The crate is sealed.
    #[error("crate {capsule}/{version} is sealed (published) and refuses writes")]
    Sealed {
        /// Capsule id.
        capsule: String,
        /// Crate version.
        version: String,
    },
    /// Not a capsa store.
    #[error("{path} is not a capsa store: {reason}")]
    InvalidStore {
        /// The directory.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// An argument is invalid.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Out of time.
    #[error("{what} timed out after {seconds} s")]
    Timeout {
        /// What timed out.
        what: String,
        /// The limit.
        seconds: u64,
    },
    /// The data changed under the operation.
    #[error("{path}: changed: {reason}")]
    Changed {
        /// The file (or capsule directory) that changed.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A path capsa refuses to follow or open.
    #[error("{path}: refused: {reason}")]
    UnsafePath {
        /// The path (relative to the store or archive where that is clearer).
        path: PathBuf,
        /// Why it is refused ("is a symbolic link", "is a FIFO"…).
        reason: String,
    },
    /// An input exceeds a size limit.
    #[error("{what} is too large: {reason}")]
    TooLarge {
        /// What is too large ("archive …", "metadata file …").
        what: String,
        /// The size and the limit it exceeds.
        reason: String,
    },
    /// What a capsa server answered (the CLI's `--server` mode): the error it raised there,
    /// with its code and message.
    #[error("{message}")]
    Remote {
        /// The code the server gave.
        code: ErrorCode,
        /// Its message (one line).
        message: String,
    },
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Remote { code, .. } => *code,
            Error::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Error::InvalidName { .. } => ErrorCode::InvalidName,
            Error::InvalidVersion { .. } => ErrorCode::InvalidVersion,
            Error::InvalidSequence { .. } => ErrorCode::InvalidSequence,
            Error::Busy { .. } => ErrorCode::Busy,
            Error::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            Error::Corrupt { .. } => ErrorCode::Corrupt,
            Error::Cancelled => ErrorCode::Cancelled,
            Error::Io { .. } => ErrorCode::Io,
            Error::Backend { .. } => ErrorCode::Backend,
            Error::Unsupported { .. } => ErrorCode::Unsupported,
            Error::Sealed { .. } => ErrorCode::Sealed,
            Error::InvalidStore { .. } => ErrorCode::InvalidStore,
            Error::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::Changed { .. } => ErrorCode::Changed,
            Error::UnsafePath { .. } => ErrorCode::UnsafePath,
            Error::TooLarge { .. } => ErrorCode::TooLarge,
            Error::State { .. } => ErrorCode::State,
        }
    }

    /// A call on a handle its owner closed (a store, a staging manager): `InvalidArgument`
    /// "`what`: it is closed", the same in every binding.
    pub fn closed(what: &'static str) -> Error {
        Error::InvalidArgument {
            what,
            reason: "it is closed".into(),
        }
    }

    /// An I/O error on `path` while doing `op`. Not-found and already-exists OS errors keep
    /// their kind as [`Error::Io`]; callers that mean "the capsule is missing" map explicitly.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, cause: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            cause,
        }
    }

    /// A closure for `map_err` that wraps an `io::Error` with its operation and path.
    pub fn io_at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::io(op, path, source)
    }

    /// A corrupt-data error without an entry name.
    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.into(),
            entry: None,
            reason: joined_lines(&reason.into()),
        }
    }
}

/// A parser's message on one line: its lines trimmed and joined with `; ` (the TOML parser
/// says `invalid string` and `expected ...` on two lines).
pub fn joined_lines(text: &str) -> String {
    if !text.contains(['\n', '\r']) {
        return text.to_string();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Shorten a user-supplied value for an error message so a hostile 1 MB name does not
/// become a 1 MB message.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 80;
    if value.chars().count() <= MAX {
        value.to_string()
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head}… ({} chars)", value.chars().count())
    }
}

/// The message of a caught panic payload (`std::panic::catch_unwind`'s error), as every
/// binding's panic boundary reports it; `unknown panic` for a payload that is not a string.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// `text` safe to print as (part of) one line: every control character (newline, carriage
/// return, escape, …) and the Unicode line and paragraph separators are written as Rust
/// escapes (`\n`, `\u{1b}`), so no input can split an output line or forge one.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_reasons_are_one_line() {
        let e = Error::corrupt("/s/store.toml", "invalid string\nexpected `\"`, `'`\n");
        assert_eq!(
            e.to_string(),
            "/s/store.toml: corrupt: invalid string; expected `\"`, `'`"
        );
    }

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut numbers: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.number()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), ErrorCode::ALL.len());
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_str_code(c.as_str()), Some(c));
            assert_eq!(ErrorCode::from_number(c.number()), Some(c));
        }
    }

    #[test]
    fn io_error_keeps_its_cause_and_path() {
        let e = Error::io(
            "read",
            "/x/y",
            io::Error::new(io::ErrorKind::PermissionDenied, "nope"),
        );
        assert_eq!(e.code(), ErrorCode::Io);
        assert_eq!(e.to_string(), "read /x/y: nope");
        // Printed once: in the message, not chained again as the source.
        assert!(std::error::Error::source(&e).is_none());
        assert!(
            matches!(e, Error::Io { ref cause, .. } if cause.kind() == io::ErrorKind::PermissionDenied)
        );
    }

    #[test]
    fn one_line_escapes_every_line_breaker() {
        assert_eq!(super::one_line("plain ✓"), "plain ✓");
        assert_eq!(
            super::one_line("a\nb\r\u{1b}[2J\u{2028}"),
            "a\\nb\\r\\u{1b}[2J\\u{2028}"
        );
    }
}
