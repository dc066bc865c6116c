//! The committed `include/capsa.h` must be what cbindgen generates from the sources today.
//!
//! This test only compares; `make bless-header` (`cargo run -p capsa-c --example
//! bless_header`) rewrites the header, as a separate step whose diff is reviewed.

mod header_gen;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let fresh = header_gen::generate();
    let committed = std::fs::read_to_string(header_gen::committed_path()).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/capsa.h is stale: regenerate it with `make bless-header` and review the diff"
    );
    assert!(fresh.contains("capsa_status capsa_store_open("));
}
