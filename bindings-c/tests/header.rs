//! The committed `include/capsa.h` must be what cbindgen generates from the sources today.
//!
//! `CAPSA_BLESS=1 cargo test -p capsa-c --test header` rewrites it.

use std::path::Path;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut fresh);
    let fresh = String::from_utf8(fresh).expect("UTF-8 header");
    let committed_path = crate_dir.join("include/capsa.h");
    if std::env::var_os("CAPSA_BLESS").is_some() {
        std::fs::write(&committed_path, &fresh).expect("write include/capsa.h");
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/capsa.h is stale: regenerate it with `CAPSA_BLESS=1 cargo test -p capsa-c --test header`"
    );
    assert!(fresh.contains("capsa_status capsa_store_open("));
}
