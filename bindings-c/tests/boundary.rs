//! The boundary rules, checked from Rust: panics become `PANIC` (C) or an error (C++ bridge),
//! every export runs under `catch_unwind`, the last error is per thread.

use std::ffi::CStr;
use std::ptr::null_mut;

use capsa_c::error::{guard, Failure};
use capsa_c::{capsa_last_error_code, capsa_last_error_message, capsa_status};

fn last_message() -> String {
    // SAFETY: capsa_last_error_message never returns NULL.
    unsafe { CStr::from_ptr(capsa_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_panic_becomes_the_panic_status_with_its_message() {
    let status = guard(|| -> Result<(), Failure> { panic!("boom in core") });
    assert_eq!(status, capsa_status::Panic);
    assert_eq!(capsa_last_error_code(), capsa_status::Panic);
    assert!(
        last_message().contains("boom in core"),
        "{}",
        last_message()
    );
    // And the next success clears it.
    assert_eq!(guard(|| Ok(())), capsa_status::Ok);
    assert_eq!(capsa_last_error_code(), capsa_status::Ok);
    assert_eq!(last_message(), "");
}

#[test]
fn the_last_error_is_per_thread() {
    // SAFETY: NULL arguments are part of the contract.
    let status = unsafe { capsa_c::store::capsa_store_open(std::ptr::null(), null_mut()) };
    assert_eq!(status, capsa_status::InvalidArgument);
    std::thread::spawn(|| {
        assert_eq!(capsa_last_error_code(), capsa_status::Ok);
        let mut out = null_mut();
        // SAFETY: valid arguments.
        let s = unsafe { capsa_c::store::capsa_store_open(c"/nonexistent/x".as_ptr(), &mut out) };
        assert_ne!(s, capsa_status::Ok);
        assert!(out.is_null());
    })
    .join()
    .unwrap();
    assert_eq!(capsa_last_error_code(), capsa_status::InvalidArgument);
    assert!(last_message().contains("NULL"));
}

/// Every `extern "C"` function in the sources runs its body under `catch_unwind` (directly or
/// through `guard`, `with_out`, `json_out` or `free_box`), or is a constant.
#[test]
fn every_export_is_guarded() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut exports = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // src/cpp/: the cxx bridge, which exports no `extern "C"` functions.
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, chunk) in text.split("extern \"C\" fn ").enumerate().skip(1) {
            exports += 1;
            // The body runs up to the next top-level item.
            let body = chunk.split("\n}\n").next().unwrap_or(chunk);
            let name = chunk.split('(').next().unwrap_or("?");
            let guarded = [
                "guard(",
                "with_out(",
                "json_out(",
                "catch_unwind",
                "free_box(",
            ]
            .iter()
            .any(|g| body.contains(g))
                || name == "capsa_version";
            assert!(
                guarded,
                "{}: export #{i} `{name}` is not under catch_unwind",
                path.display()
            );
        }
    }
    assert!(exports >= 50, "only {exports} exports found");
}
