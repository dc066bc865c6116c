//! The few operating-system calls std does not offer, in one place: the only module of core
//! allowed `unsafe` (`#![deny(unsafe_code)]` holds everywhere else). Each function is safe to
//! call and degrades to a harmless answer where the platform has no such call.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

/// This host's name (`gethostname`, else `HOSTNAME`/`COMPUTERNAME`, else `unknown-host`),
/// read once: what a store shared by hosts records beside a process id, and the source of
/// [`host_tag`], so the two always agree.
pub(crate) fn host_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        #[cfg(unix)]
        {
            let mut buf = [0u8; 256];
            // SAFETY: the buffer is valid for its length; we stop at the first NUL or its end.
            let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
            if r == 0 {
                let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
                let h = String::from_utf8_lossy(&buf[..end]).into_owned();
                if !h.is_empty() {
                    return h;
                }
            }
        }
        std::env::var("HOSTNAME")
            .or_else(|_| std::env::var("COMPUTERNAME"))
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".into())
    })
}

/// A short tag of [`host_name`] (ASCII letters and digits, at most 16) for temporary names
/// and owner stamps, so names made by two hosts on one mount never clash.
pub(crate) fn host_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let clean: String = host_name()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect();
        if clean.is_empty() {
            "host".into()
        } else {
            clean
        }
    })
}

/// Whether process `pid` exists on this host (a process we may not signal exists too).
/// `false` for 0 and out-of-range ids; `true` where the platform cannot tell.
pub(crate) fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid == 0 {
            return false;
        }
        // SAFETY: kill with signal 0 only checks for existence and permission.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Send SIGKILL to the process group `leader` leads (a child started in a group of its own).
pub(crate) fn kill_process_group(leader: u32) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(leader) {
        if pid > 0 {
            // SAFETY: kill has no memory preconditions; a negative id names the group.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = leader;
}

/// Take an exclusive advisory lock on `file` (`flock`), held until the file is closed.
/// Best effort: an error leaves the file unlocked.
pub(crate) fn lock_exclusive(file: &File) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the lock goes with it when `file` drops.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// Clear `O_NONBLOCK` on `file` (opened non-blocking so that opening a FIFO cannot hang).
pub(crate) fn clear_nonblocking(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own, with integer arguments only.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// This process's effective user id (`None` off Unix).
pub(crate) fn effective_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions.
        Some(unsafe { libc::geteuid() })
    }
    #[cfg(not(unix))]
    None
}

/// Bytes available to an unprivileged writer on the filesystem holding `dir` (`None`:
/// unknown).
pub(crate) fn free_space(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `c` is a NUL-terminated path and `st` a properly sized out-parameter.
        let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: statvfs succeeded, so it filled `st`.
        let st = unsafe { st.assume_init() };
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Rename `from` to `to` unless `to` exists (Linux `renameat2(RENAME_NOREPLACE)`), atomically.
#[cfg(target_os = "linux")]
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(from.as_os_str().as_bytes())?;
    let b = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both strings are valid NUL-terminated C strings for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Make a FIFO at `path` (tests of the refusal to open one).
#[cfg(all(test, unix))]
pub(crate) fn make_fifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in a test path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_tag_is_the_host_name_cleaned() {
        let clean: String = host_name()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect();
        assert!(clean.is_empty() || host_tag() == clean);
    }

    #[test]
    fn this_process_is_alive_and_pid_zero_is_not() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(0));
        assert!(!process_alive(u32::MAX));
    }
}
