//! The bridge's Rust side: failures cross as structured records, panics never unwind.

use super::*;

fn taken() -> (u32, String, String) {
    let e = take_error();
    (e.code, e.name, e.message)
}

#[test]
fn a_panic_in_a_bridge_function_becomes_an_error_not_an_abort() {
    let what = g(|| -> Result<(), _> { panic!("boom") })
        .unwrap_err()
        .to_string();
    let (code, name, message) = taken();
    assert_eq!(
        (code, name.as_str(), what.as_str()),
        (1000, "PANIC", message.as_str())
    );
    assert!(message.contains("boom"), "{message}");
}

#[test]
fn errors_carry_number_code_and_message_once() {
    assert!(capsule_id_kind(b"../x").is_err());
    let (code, name, message) = taken();
    assert_eq!((code, name.as_str()), (3, "INVALID_NAME"));
    assert!(message.contains("../x"), "{message}");
    assert_eq!(taken().0, 0, "taken, not left for the next call");
    assert!(version_parse(b"v\xff").is_err());
    assert_eq!(taken().1, "INVALID_ARGUMENT");
}

#[test]
fn a_null_progress_sink_means_none_and_a_null_event_sink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = |p: &std::path::Path| p.as_os_str().as_encoded_bytes().to_vec();
    let store = store_init(&bytes(&dir.path().join("s")), 0).unwrap();
    let capsule = store.create_capsule(b"sh010").unwrap();
    capsule.bump(&RustBumpOptions::default()).unwrap();
    let zip = bytes(&dir.path().join("sh010.zip"));
    assert!(capsule
        .archive(&zip, "", false, cxx::UniquePtr::null())
        .is_ok());
    assert!(archive_verify(&zip, cxx::UniquePtr::null()).is_ok());
    let m = staging_open_mock(&bytes(&dir.path().join("st.db"))).unwrap();
    assert!(m.subscribe(cxx::UniquePtr::null()).is_err());
    assert_eq!(taken().1, "INVALID_ARGUMENT");
}
