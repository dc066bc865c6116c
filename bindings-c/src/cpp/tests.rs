//! The bridge's Rust side: failures cross as structured records, panics never unwind.

use super::*;

#[test]
fn a_panic_in_a_bridge_function_becomes_an_error_not_an_abort() {
    let r: R<()> = g(|| panic!("boom"));
    let what = r.unwrap_err().to_string();
    let e = take_error();
    assert_eq!((e.code, e.name.as_str()), (1000, "PANIC"));
    assert!(e.message.contains("boom"), "{}", e.message);
    assert_eq!(what, e.message);
}

#[test]
fn errors_carry_number_code_and_message_once() {
    assert!(capsule_id_kind(b"../x").is_err());
    let e = take_error();
    assert_eq!((e.code, e.name.as_str()), (3, "INVALID_NAME"));
    assert!(e.message.contains("../x"), "{}", e.message);
    assert_eq!(take_error().code, 0, "taken, not left for the next call");
    assert!(version_parse(b"v\xff").is_err());
    let e = take_error();
    assert_eq!((e.code, e.name.as_str()), (15, "INVALID_ARGUMENT"));
    assert!(e.message.contains("UTF-8"), "{}", e.message);
}

#[test]
fn a_null_sink_means_no_callback_and_a_null_event_sink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_init(dir.path().join("s").as_os_str().as_encoded_bytes(), 0).unwrap();
    let capsule = store.create_capsule(b"sh010").unwrap();
    capsule.bump(&RustBumpOptions::default()).unwrap();
    let zip = dir.path().join("sh010.zip");
    let zip = zip.as_os_str().as_encoded_bytes();
    assert!(capsule.archive(zip, false, cxx::UniquePtr::null()).is_ok());
    assert!(archive_verify(zip, cxx::UniquePtr::null()).is_ok());
    let state = dir.path().join("st.db");
    let m = staging_open_mock(state.as_os_str().as_encoded_bytes()).unwrap();
    assert!(m.subscribe(cxx::UniquePtr::null()).is_err());
    assert_eq!(take_error().name, "INVALID_ARGUMENT");
}
