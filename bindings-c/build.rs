//! Generates the C++ side of the cxx bridge (`src/cpp.rs`) without compiling it here.
//!
//! The generated `cpp.rs.h` / `cpp.rs.cc` land under `target/cxxbridge/capsa-c/src/`, where
//! the CMake build picks them up and compiles them (into `libcapsa_cxx.a`). The Rust libraries
//! hold the Rust side of the bridge and cxx's own runtime.

fn main() {
    let _ = cxx_build::bridge("src/cpp.rs");
    println!("cargo:rerun-if-changed=src/cpp.rs");
    // A SONAME, so programs linked against the shared library record a name, not a path.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcapsa_c.so");
    }
}
