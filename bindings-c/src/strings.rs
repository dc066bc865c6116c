//! Strings in (UTF-8 `const char *`) and out (owned `char *` freed with
//! [`capsa_string_free`]), string lists, and out-parameter helpers.

use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;

use crate::error::{bad_arg, guard, Failure};

/// Borrow a required UTF-8 string argument.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for the call.
pub unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(bad_arg(format!("`{name}` is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|e| bad_arg(format!("`{name}` is not valid UTF-8 ({e})")))
}

/// Borrow an optional UTF-8 string argument (NULL gives `None`).
///
/// # Safety
/// As [`str_arg`].
pub unsafe fn opt_str_arg<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { str_arg(ptr, name) }.map(Some)
    }
}

/// A required path argument. On Unix any bytes are accepted (paths need not be UTF-8);
/// elsewhere it must be UTF-8.
///
/// # Safety
/// As [`str_arg`].
pub unsafe fn path_arg(ptr: *const c_char, name: &str) -> Result<PathBuf, Failure> {
    if ptr.is_null() {
        return Err(bad_arg(format!("`{name}` is NULL")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: non-NULL and NUL-terminated per the caller's contract.
        let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        // SAFETY: forwarded contract.
        unsafe { str_arg(ptr, name) }.map(PathBuf::from)
    }
}

/// Borrow an array of `len` UTF-8 strings (NULL with `len == 0` is an empty array).
///
/// # Safety
/// `items` is NULL or points to `len` valid string pointers.
pub unsafe fn str_array<'a>(
    items: *const *const c_char,
    len: usize,
    name: &str,
) -> Result<Vec<&'a str>, Failure> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(bad_arg(format!("`{name}` is NULL but its length is {len}")));
    }
    // SAFETY: `items` points to `len` pointers per the contract.
    let slice = unsafe { std::slice::from_raw_parts(items, len) };
    slice
        .iter()
        .enumerate()
        // SAFETY: each element is a valid string per the contract.
        .map(|(i, p)| unsafe { str_arg(*p, &format!("{name}[{i}]")) })
        .collect()
}

/// An owned C string for `s` (interior NULs are refused as `InvalidArgument`).
pub fn owned(s: impl Into<Vec<u8>>) -> Result<*mut c_char, Failure> {
    CString::new(s)
        .map(CString::into_raw)
        .map_err(|_| bad_arg("the result contains a NUL byte"))
}

/// An owned C string for a path (bytes as they are on Unix).
pub fn owned_path(p: &std::path::Path) -> Result<*mut c_char, Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        owned(p.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    {
        owned(p.to_string_lossy().into_owned())
    }
}

/// Check an out-parameter and clear it, so a failed call leaves NULL (or 0) behind.
///
/// # Safety
/// `out` is NULL or valid for writes.
pub unsafe fn out_param<'a, T>(out: *mut T, name: &str, empty: T) -> Result<&'a mut T, Failure> {
    if out.is_null() {
        return Err(bad_arg(format!("out-parameter `{name}` is NULL")));
    }
    // SAFETY: non-NULL and writable per the contract.
    let r = unsafe { &mut *out };
    *r = empty;
    Ok(r)
}

/// Borrow a handle argument.
///
/// # Safety
/// `ptr` is NULL or a live handle of this type.
pub unsafe fn handle<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: per the contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| bad_arg(format!("`{name}` handle is NULL")))
}

/// Free a string returned by capsa. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a string returned by a `capsa_` function and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn capsa_string_free(s: *mut c_char) {
    if !s.is_null() {
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: it came from CString::into_raw in this library.
            drop(unsafe { CString::from_raw(s) });
        });
    }
}

/// A list of owned strings (capsule ids, crate versions, sequence texts).
pub struct capsa_string_list {
    pub(crate) items: Vec<CString>,
}

impl capsa_string_list {
    /// A boxed list from Rust strings (NUL bytes are refused).
    pub fn boxed<I, S>(items: I) -> Result<*mut capsa_string_list, Failure>
    where
        I: IntoIterator<Item = S>,
        S: Into<Vec<u8>>,
    {
        let items = items
            .into_iter()
            .map(|s| CString::new(s).map_err(|_| bad_arg("a result contains a NUL byte")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::into_raw(Box::new(capsa_string_list { items })))
    }
}

/// The number of strings in `list` (0 for NULL).
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn capsa_string_list_len(list: *const capsa_string_list) -> usize {
    std::panic::catch_unwind(|| {
        // SAFETY: per the contract.
        unsafe { list.as_ref() }.map_or(0, |l| l.items.len())
    })
    .unwrap_or(0)
}

/// The string at `index`, borrowed from `list` (valid until the list is freed), or NULL when
/// `list` is NULL or `index` is out of range.
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn capsa_string_list_get(
    list: *const capsa_string_list,
    index: usize,
) -> *const c_char {
    std::panic::catch_unwind(|| {
        // SAFETY: per the contract.
        unsafe { list.as_ref() }
            .and_then(|l| l.items.get(index))
            .map_or(std::ptr::null(), |s| s.as_ptr())
    })
    .unwrap_or(std::ptr::null())
}

/// Free a string list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or a list returned by capsa and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn capsa_string_list_free(list: *mut capsa_string_list) {
    free_box(list);
}

/// Drop a boxed handle, ignoring NULL and catching any panic in a destructor.
pub(crate) fn free_box<T>(ptr: *mut T) {
    if !ptr.is_null() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: every handle is made by Box::into_raw in this library.
            drop(unsafe { Box::from_raw(ptr) });
        }));
    }
}

/// The library version (`"0.1.0"`): a static string, do not free it.
#[no_mangle]
pub extern "C" fn capsa_version() -> *const c_char {
    // A constant: nothing here can panic (no catch_unwind needed).
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// Run `body` under [`guard`] with a `Result` of a value to write into `out`.
pub(crate) fn with_out<T>(
    out: *mut T,
    empty: T,
    body: impl FnOnce() -> Result<T, Failure>,
) -> crate::capsa_status {
    guard(|| {
        // SAFETY: out-parameters are NULL or writable, per every export's contract.
        let slot = unsafe { out_param(out, "out", empty) }?;
        *slot = body()?;
        Ok(())
    })
}
