//! The OpenAPI document matches the routes: every operation of `openapi::ROUTES` is served by
//! the real router (an unknown route would get the fallback's 404, a wrong method 405), and
//! the copy kept in `server/openapi.json` is the document the server serves. `CAPSA_BLESS=1`
//! rewrites the copy. `make test` also validates it with openapi-spec-validator.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use capsa::staging::{ManagerOptions, MockDeployer, StagingManager};
use capsa_server::openapi::{document, is_public, ROUTES};
use capsa_server::{App, Limits, Tokens};
use tower::ServiceExt;

fn app(dir: &std::path::Path) -> Arc<App> {
    let m = StagingManager::open_with(
        dir.join("state.db"),
        Arc::new(MockDeployer::new()),
        ManagerOptions::default(),
    )
    .unwrap();
    Arc::new(App::new(None, m, Tokens::at(dir.join("tokens.json"))))
}

fn call(app: &Arc<App>, method: &str, path: &str) -> StatusCode {
    let router = capsa_server::router(app.clone(), &Limits::default());
    let req = Request::builder()
        .method(method.to_uppercase().as_str())
        .uri(path)
        .body(Body::empty())
        .unwrap();
    capsa::runtime::block_on(router.oneshot(req))
        .unwrap()
        .status()
}

#[test]
fn every_documented_operation_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    for r in ROUTES {
        let path = r
            .path
            .replace("{name}", "web")
            .replace("{id}", "shot010")
            .replace("{version}", "v001");
        let status = call(&app, r.method, &path);
        if is_public(r.path) {
            assert!(
                status.is_success() || status == StatusCode::SERVICE_UNAVAILABLE,
                "{} {path}: {status}",
                r.method
            );
        } else {
            // Served, and behind a token.
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {path}", r.method);
        }
        // The other method is not served on the path, unless documented.
        let other = if r.method == "get" { "post" } else { "get" };
        if !ROUTES.iter().any(|o| o.path == r.path && o.method == other) {
            let s = call(&app, other, &path);
            assert!(
                s == StatusCode::METHOD_NOT_ALLOWED || s == StatusCode::UNAUTHORIZED,
                "{other} {path}: {s}"
            );
        }
    }
    assert_eq!(call(&app, "get", "/v1/nothing-here"), StatusCode::NOT_FOUND);
}

#[test]
fn the_kept_document_is_the_served_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let doc = serde_json::to_string_pretty(&document()).unwrap() + "\n";
    if std::env::var_os("CAPSA_BLESS").is_some() {
        std::fs::write(path, &doc).unwrap();
    }
    let kept = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        kept == doc,
        "server/openapi.json is not the document the server serves: run \
         CAPSA_BLESS=1 cargo test -p capsa-server --test openapi, and review the change"
    );
    let served = {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let router = capsa_server::router(app, &Limits::default());
        let req = Request::get("/v1/openapi.json")
            .body(Body::empty())
            .unwrap();
        let resp = capsa::runtime::block_on(router.oneshot(req)).unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes =
            capsa::runtime::block_on(axum::body::to_bytes(resp.into_body(), 1 << 20)).unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    assert_eq!(served, document());
}
