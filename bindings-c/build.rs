//! With the `cpp` feature, the C++ side of the cxx bridges in `src/cpp/`: `mod.rs` (what C++
//! calls) is only generated (under `target/cxxbridge/capsa-c/src/cpp/`, where the CMake build
//! compiles it into `libcapsa_cxx.a`); `callbacks.rs` (the C++ callbacks Rust calls) is
//! generated and compiled here, into the Rust libraries, which also hold cxx's own runtime.

fn main() {
    #[cfg(feature = "cpp")]
    {
        let _ = cxx_build::bridge("src/cpp/mod.rs");
        let include = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("include");
        std::fs::create_dir_all(include.join("capsa")).unwrap();
        std::fs::copy("src/cpp/callbacks.h", include.join("capsa/callbacks.h")).unwrap();
        cxx_build::bridge("src/cpp/callbacks.rs")
            .include(&include)
            .std("c++17")
            .compile("capsa_cxx_callbacks");
        for f in [
            "src/cpp/mod.rs",
            "src/cpp/callbacks.rs",
            "src/cpp/callbacks.h",
        ] {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    // A SONAME, so programs linked against the shared library record a name, not a path.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcapsa_c.so");
    }
}
