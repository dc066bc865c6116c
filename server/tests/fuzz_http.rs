//! Property-based fuzzing of the HTTP face (the harness of `core/tests/fuzz_support`): any
//! method, path (traversal, control characters, percent escapes, the real routes), headers
//! (missing, wrong and right tokens, broken Basic) and body (bytes, JSON-ish text) gets an
//! answer without a panic; every refusal is a problem document with a code, never a 500; and
//! nothing is changed without the operate token.

#[path = "../../core/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use capsa::staging::{ManagerOptions, MockDeployer, StagingManager};
use capsa_server::{App, Limits, Role, Tokens};
use proptest::prelude::*;
use tower::ServiceExt;

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v1".to_string()),
        Just("stagings".to_string()),
        Just("capsules".to_string()),
        Just("crates".to_string()),
        Just("web".to_string()),
        Just("update".to_string()),
        Just("cleanup".to_string()),
        Just("events".to_string()),
        Just("..".to_string()),
        Just("%2e%2e%2F".to_string()),
        Just("%00".to_string()),
        Just("v001".to_string()),
        "[a-z0-9.-]{0,12}",
        "\\PC{0,8}",
    ]
}

fn request() -> impl Strategy<Value = (String, String, String, u8, Vec<u8>)> {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("PUT".to_string()),
        Just("DELETE".to_string()),
    ];
    let path = proptest::collection::vec(segment(), 0..6).prop_map(|s| format!("/{}", s.join("/")));
    let query = prop_oneof![
        Just(String::new()),
        Just("?wait=true".to_string()),
        Just("?wait=maybe".to_string()),
        "\\?[a-z=&%0-9]{0,16}",
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        Just(br#"{"name": "web", "tag": "1.0.0"}"#.to_vec()),
        Just(br#"{"name": "../x", "tag": "1"}"#.to_vec()),
        Just(br#"{"tag": "2.0.0", "set": [{"key": "K", "value": "v", "scope": "nope"}]}"#.to_vec()),
        "\\{\"[a-z]{1,6}\": \"\\PC{0,10}\"\\}".prop_map(String::into_bytes),
    ];
    // 0: no credentials, 1: garbage, 2: broken Basic, 3: the read token, 4: the operate token.
    (method, path, query, 0u8..5, body)
}

#[test]
fn any_request_gets_a_clean_answer_and_changes_nothing_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let m = StagingManager::open_with(
        dir.path().join("state.db"),
        Arc::new(MockDeployer::new()),
        ManagerOptions::default(),
    )
    .unwrap();
    let tokens = Tokens::at(dir.path().join("tokens.json"));
    let read = tokens.add("reader", Role::Read).unwrap();
    let operate = tokens.add("operator", Role::Operate).unwrap();
    let app = Arc::new(App::new(None, m.clone(), tokens));
    let router = capsa_server::router(app, &Limits::default());
    fuzz_support::run(
        "http",
        300,
        request(),
        |(method, path, query, auth, body)| {
            let uri = format!("{path}{query}");
            let Ok(mut b) = Request::builder()
                .method(method.as_str())
                .uri(&uri)
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
            else {
                return Ok(()); // not a request hyper would hand over
            };
            let value = match auth {
                0 => None,
                1 => Some("Bearer capsa_00_11".to_string()),
                2 => Some("Basic %%%".to_string()),
                3 => Some(format!("Bearer {read}")),
                _ => Some(format!("Bearer {operate}")),
            };
            if let Some(v) = value {
                b.headers_mut().insert("authorization", v.parse().unwrap());
            }
            let before = m.list().unwrap().len();
            let resp = capsa::runtime::block_on(router.clone().oneshot(b)).unwrap();
            let status = resp.status();
            let ctype = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            prop_assert!(status != 500, "{method} {uri}: 500");
            if status.is_client_error() || status.is_server_error() {
                prop_assert_eq!(
                    ctype.as_str(),
                    "application/problem+json",
                    "{} {}: {}",
                    method,
                    uri,
                    status
                );
                let bytes =
                    capsa::runtime::block_on(axum::body::to_bytes(resp.into_body(), 1 << 20))
                        .unwrap();
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                prop_assert!(v["code"].is_string(), "{}", v);
                prop_assert!(
                    !v["detail"].as_str().unwrap_or("\n").contains('\n'),
                    "{}",
                    v
                );
            }
            if auth != 4 {
                prop_assert_eq!(
                    m.list().unwrap().len(),
                    before,
                    "{} {} changed something",
                    method,
                    uri
                );
            }
            Ok(())
        },
    );
}
