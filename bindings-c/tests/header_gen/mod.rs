//! `include/capsa.h` as cbindgen generates it from the sources today: shared by the drift test
//! (`tests/header.rs`) and the bless command (`examples/bless_header.rs`).

use std::path::{Path, PathBuf};

/// The crate directory of capsa-c.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the committed header lives.
pub fn committed_path() -> PathBuf {
    crate_dir().join("include/capsa.h")
}

/// A fresh generation of the header.
pub fn generate() -> String {
    let config =
        cbindgen::Config::from_file(crate_dir().join("cbindgen.toml")).expect("cbindgen.toml");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir())
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut fresh);
    String::from_utf8(fresh).expect("UTF-8 header")
}
