//! Status codes, the thread-local last error, and the guard every export runs under.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use capsa::error::panic_message;
use capsa::{Error, ErrorCode};

/// The result of every fallible `capsa_` function.
///
/// `CAPSA_STATUS_OK` (0) is success; every other value is the stable number of a capsa error
/// code (the same numbers in every binding, see the README), plus `CAPSA_STATUS_PANIC` for a
/// bug inside capsa that was caught before it could cross into the host. On failure the
/// calling thread's last error holds the code and a message
/// ([`capsa_last_error_code`], [`capsa_last_error_message`]).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum capsa_status {
    /// Success.
    Ok = 0,
    /// A capsule, crate, file or other named thing does not exist.
    NotFound = 1,
    /// The thing to create exists already.
    AlreadyExists = 2,
    /// A name (capsule id, path) breaks a naming rule.
    InvalidName = 3,
    /// A crate version string does not parse.
    InvalidVersion = 4,
    /// A frame sequence pattern or frame set does not parse, or is too large.
    InvalidSequence = 5,
    /// Another command is in progress on the same staging.
    Busy = 6,
    /// The command is not allowed from the staging's current status.
    InvalidTransition = 7,
    /// Stored data is damaged.
    Corrupt = 8,
    /// The operation was cancelled (by a callback, for example).
    Cancelled = 9,
    /// An operating system I/O error.
    Io = 10,
    /// A deploy backend failed.
    Backend = 11,
    /// Not supported by this build.
    Unsupported = 12,
    /// The crate is sealed and refuses writes.
    Sealed = 13,
    /// The directory is not a capsa store.
    InvalidStore = 14,
    /// An argument is invalid: a NULL pointer, a string that is not UTF-8, an unknown enum
    /// value, an out-of-range number.
    InvalidArgument = 15,
    /// An operation did not finish within its time limit.
    Timeout = 16,
    /// The data changed under the operation (a file rewritten while archived, a capsule
    /// that no longer matches its archive).
    Changed = 17,
    /// A path capsa refuses to follow or open (a symbolic link, a FIFO, a reserved name).
    UnsafePath = 18,
    /// An input exceeds a size limit (an archive's expanded size, a metadata file).
    TooLarge = 19,
    /// The state store (the SQLite state file, the PostgreSQL database) failed.
    State = 20,
    /// A panic inside capsa was caught at the boundary (a bug: please report it).
    Panic = 1000,
}

impl capsa_status {
    /// The status for a core error code (by its stable number).
    pub fn from_code(code: ErrorCode) -> capsa_status {
        use capsa_status as S;
        match code.number() {
            1 => S::NotFound,
            2 => S::AlreadyExists,
            3 => S::InvalidName,
            4 => S::InvalidVersion,
            5 => S::InvalidSequence,
            6 => S::Busy,
            7 => S::InvalidTransition,
            8 => S::Corrupt,
            9 => S::Cancelled,
            10 => S::Io,
            11 => S::Backend,
            12 => S::Unsupported,
            13 => S::Sealed,
            14 => S::InvalidStore,
            15 => S::InvalidArgument,
            16 => S::Timeout,
            17 => S::Changed,
            18 => S::UnsafePath,
            19 => S::TooLarge,
            20 => S::State,
            // A code newer than this binding: the nearest honest answer.
            _ => S::Unsupported,
        }
    }

    /// The stable code string (`"NOT_FOUND"`, …, `"PANIC"`, `"OK"`).
    pub fn name(self) -> &'static str {
        match self {
            capsa_status::Ok => "OK",
            capsa_status::Panic => "PANIC",
            other => ErrorCode::from_number(other as u32)
                .map(ErrorCode::as_str)
                .unwrap_or("UNKNOWN"),
        }
    }
}

/// What went wrong in one call: a core error, or a caught panic.
#[derive(Debug)]
pub enum Failure {
    /// An error from core (or an argument refused by the binding, as `InvalidArgument`).
    Core(Error),
    /// A panic caught at the boundary, with its message.
    Panic(String),
    /// A status with a message of the binding's own (a callback that refused, say).
    Message(capsa_status, String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Core(e)
    }
}

impl Failure {
    /// The status number for this failure.
    pub fn status(&self) -> capsa_status {
        match self {
            Failure::Core(e) => capsa_status::from_code(e.code()),
            Failure::Panic(_) => capsa_status::Panic,
            Failure::Message(status, _) => *status,
        }
    }

    /// The message for this failure.
    pub fn message(&self) -> String {
        match self {
            // Core's messages carry their cause ("read x: permission denied") once.
            Failure::Core(e) => e.to_string(),
            Failure::Panic(m) => format!("internal error (panic caught at the C boundary): {m}"),
            Failure::Message(_, m) => m.clone(),
        }
    }
}

/// An `InvalidArgument` error naming the argument.
pub fn bad_arg(reason: impl Into<String>) -> Failure {
    Failure::Core(Error::InvalidArgument {
        what: "argument",
        reason: reason.into(),
    })
}

struct LastError {
    status: capsa_status,
    message: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

fn set_last(status: capsa_status, message: String) {
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = Some(LastError { status, message }));
}

fn clear_last() {
    LAST_ERROR.with(|l| *l.borrow_mut() = None);
}

/// Run an export's body: catch any panic, record a failure as the thread's last error, and
/// return its status. Success clears the last error.
pub fn guard(body: impl FnOnce() -> Result<(), Failure>) -> capsa_status {
    let outcome = catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(Failure::Panic(panic_message(payload.as_ref()))));
    match outcome {
        Ok(()) => {
            clear_last();
            capsa_status::Ok
        }
        Err(f) => {
            let status = f.status();
            set_last(status, f.message());
            status
        }
    }
}

/// The code of the last failure on the calling thread, or `CAPSA_STATUS_OK` when the last
/// `capsa_` call on this thread succeeded (or none failed yet).
#[no_mangle]
pub extern "C" fn capsa_last_error_code() -> capsa_status {
    catch_unwind(|| LAST_ERROR.with(|l| l.borrow().as_ref().map(|e| e.status)))
        .ok()
        .flatten()
        .unwrap_or(capsa_status::Ok)
}

/// The message of the last failure on the calling thread (UTF-8, never NULL; `""` when there
/// is none). The pointer stays valid until the next `capsa_` call on this thread; copy it to
/// keep it. Do not free it.
#[no_mangle]
pub extern "C" fn capsa_last_error_message() -> *const c_char {
    static EMPTY: &CStr = c"";
    catch_unwind(|| {
        LAST_ERROR.with(|l| {
            l.borrow()
                .as_ref()
                .map(|e| e.message.as_ptr())
                .unwrap_or(EMPTY.as_ptr())
        })
    })
    .unwrap_or(EMPTY.as_ptr())
}

/// The stable string form of a status (`"NOT_FOUND"`, `"INVALID_NAME"`, `"OK"`, `"PANIC"`;
/// `"UNKNOWN"` for a number that is no status). A static string: do not free it.
#[no_mangle]
pub extern "C" fn capsa_status_name(status: u32) -> *const c_char {
    static NAMES: std::sync::OnceLock<Vec<(u32, CString)>> = std::sync::OnceLock::new();
    catch_unwind(|| {
        let names = NAMES.get_or_init(|| {
            let mut v: Vec<(u32, CString)> = ErrorCode::ALL
                .iter()
                .map(|c| (c.number(), CString::new(c.as_str()).unwrap_or_default()))
                .collect();
            v.push((0, CString::new("OK").unwrap_or_default()));
            v.push((
                capsa_status::Panic as u32,
                CString::new("PANIC").unwrap_or_default(),
            ));
            v
        });
        names
            .iter()
            .find(|(n, _)| *n == status)
            .map(|(_, s)| s.as_ptr())
            .unwrap_or(c"UNKNOWN".as_ptr())
    })
    .unwrap_or(c"UNKNOWN".as_ptr())
}
