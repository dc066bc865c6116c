//! With the `cpp` feature, generates the C++ side of the cxx bridge (`src/cpp/mod.rs`)
//! without compiling it here.
//!
//! The generated `mod.rs.h` / `mod.rs.cc` land under `target/cxxbridge/capsa-c/src/cpp/`,
//! where the CMake build picks them up and compiles them (into `libcapsa_cxx.a`). The Rust
//! libraries hold the Rust side of the bridge and cxx's own runtime.

fn main() {
    #[cfg(feature = "cpp")]
    {
        let _ = cxx_build::bridge("src/cpp/mod.rs");
        println!("cargo:rerun-if-changed=src/cpp/mod.rs");
    }
    // A SONAME, so programs linked against the shared library record a name, not a path.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcapsa_c.so");
    }
}
