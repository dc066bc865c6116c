//! Fuzz target: capsule ids and crate versions from arbitrary strings never panic, and what
//! they accept round-trips.
mod fuzz_support;

use capsa::{CapsuleId, ErrorCode, Version};
use proptest::prelude::*;

#[test]
fn capsule_ids_parse_or_refuse_cleanly() {
    fuzz_support::run("capsule_id", 2048, any::<String>(), |s| {
        match CapsuleId::parse(&s) {
            Ok(id) => prop_assert_eq!(id.as_str(), s.as_str()),
            Err(e) => prop_assert_eq!(e.code(), ErrorCode::InvalidName),
        }
        Ok(())
    });
}

#[test]
fn versions_parse_or_refuse_cleanly() {
    let input = prop_oneof![any::<String>(), "v[0-9]{0,25}", "[vV]?[0-9 +-]{0,12}"];
    fuzz_support::run("version", 2048, input, |s| {
        match Version::parse(&s) {
            Ok(v) => {
                let again = Version::parse(&v.to_string()).expect("a formatted version parses");
                prop_assert_eq!(again, v);
            }
            Err(e) => prop_assert_eq!(e.code(), ErrorCode::InvalidVersion),
        }
        Ok(())
    });
}
