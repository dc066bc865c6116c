//! `/healthz` (the process answers) and `/readyz` (the state store and the store root are
//! reachable). Neither needs a token; neither says more than ready or why not.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{extract::State, Json, Router};
use serde_json::json;

use crate::problem::{ApiResult, Problem};
use crate::App;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(ready))
}

async fn ready(State(app): State<Arc<App>>) -> ApiResult<Response> {
    app.stagings.last_event_seq()?;
    if let Some(store) = &app.store {
        let root = store.root().to_path_buf();
        let ok = tokio::task::spawn_blocking(move || capsa::Store::open(&root).is_ok())
            .await
            .unwrap_or(false);
        if !ok {
            return Err(Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "INVALID_STORE",
                "the store root is not reachable",
            ));
        }
    }
    Ok(Json(json!({ "status": "ready" })).into_response())
}
