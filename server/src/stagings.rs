//! `/v1/stagings…`: the staging commands and queries, as the CLI runs them.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use capsa::staging::{AuditQuery, CommandOptions, CommandRequest};
use serde::Deserialize;
use serde_json::json;

use crate::api::{expiry, overrides, CreateStaging, RestoreStaging, UpdateStaging};
use crate::auth::Caller;
use crate::problem::{ApiResult, Problem};
use crate::App;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/stagings", get(list).post(create))
        .route("/stagings/{name}", get(show))
        .route("/stagings/{name}/update", post(update))
        .route("/stagings/{name}/delete", post(delete))
        .route("/stagings/{name}/restore", post(restore))
        .route("/stagings/{name}/cleanup", post(cleanup))
        .route("/stagings/{name}/audit", get(audit))
        .route("/stagings/{name}/info", get(info))
}

/// `?wait=true`: answer when the command has finished.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    #[serde(default)]
    wait: bool,
}

/// Start `req` as `caller`; answer 202 with the pending staging, or (`wait`) 200 with the
/// staging after the command, or `{"name", "removed": true}` when cleanup removed it.
async fn run(
    app: &App,
    caller: Caller,
    req: CommandRequest,
    mut opts: CommandOptions,
    wait: bool,
) -> ApiResult<Response> {
    opts.actor = Some(caller.name);
    let name = req.name().to_string();
    let pending = app.stagings.start_with_async(req, opts).await?;
    if !wait {
        return Ok((StatusCode::ACCEPTED, Json(pending.staging.clone())).into_response());
    }
    Ok(match pending.wait_async().await? {
        Some(s) => Json(s).into_response(),
        None => Json(json!({ "name": name, "removed": true })).into_response(),
    })
}

fn query(q: Result<Query<WaitQuery>, QueryRejection>) -> ApiResult<bool> {
    Ok(q?.0.wait)
}

async fn list(State(app): State<Arc<App>>) -> ApiResult<Response> {
    Ok(Json(app.stagings.list_async().await?).into_response())
}

async fn show(State(app): State<Arc<App>>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(app.stagings.get_async(&name).await?).into_response())
}

async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<WaitQuery>, QueryRejection>,
    body: Result<Json<CreateStaging>, JsonRejection>,
) -> ApiResult<Response> {
    let wait = query(q)?;
    let Json(b) = body?;
    let req = CommandRequest::Create {
        name: b.name,
        tag: b.tag,
        overrides: overrides(&b.overrides)?,
    };
    let opts = CommandOptions {
        expiry: expiry(b.ttl.as_deref())?,
        ..CommandOptions::default()
    };
    run(&app, caller, req, opts, wait).await
}

async fn update(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    q: Result<Query<WaitQuery>, QueryRejection>,
    body: Result<Json<UpdateStaging>, JsonRejection>,
) -> ApiResult<Response> {
    let wait = query(q)?;
    let Json(b) = body?;
    let edits = b.edits()?;
    let req = CommandRequest::Update {
        name,
        tag: b.tag,
        overrides: b.overrides.as_deref().map(overrides).transpose()?,
    };
    let opts = CommandOptions {
        expiry: expiry(b.ttl.as_deref())?,
        edits,
        ..CommandOptions::default()
    };
    run(&app, caller, req, opts, wait).await
}

async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    q: Result<Query<WaitQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let req = CommandRequest::Delete { name };
    run(&app, caller, req, CommandOptions::default(), query(q)?).await
}

async fn restore(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    q: Result<Query<WaitQuery>, QueryRejection>,
    body: Option<Json<RestoreStaging>>,
) -> ApiResult<Response> {
    let wait = query(q)?;
    let b = body.map(|b| b.0).unwrap_or_default();
    let opts = CommandOptions {
        expiry: expiry(b.ttl.as_deref())?,
        ..CommandOptions::default()
    };
    run(&app, caller, CommandRequest::Restore { name }, opts, wait).await
}

async fn cleanup(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    q: Result<Query<WaitQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let req = CommandRequest::Cleanup { name };
    run(&app, caller, req, CommandOptions::default(), query(q)?).await
}

/// `?after=ID&limit=N`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    after: Option<i64>,
    limit: Option<usize>,
}

async fn audit(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(p) = q?;
    // A staging that never existed is NOT_FOUND, not an empty log.
    if app.stagings.get_async(&name).await.is_err() {
        let rows = app
            .stagings
            .audit_log_async(AuditQuery {
                name: Some(name.clone()),
                limit: Some(1),
                ..AuditQuery::default()
            })
            .await?;
        if rows.is_empty() {
            return Err(Problem::from(capsa::Error::NotFound {
                what: "staging",
                name: capsa::error::one_line(&name).into_owned(),
            }));
        }
    }
    let rows = app
        .stagings
        .audit_log_async(AuditQuery {
            name: Some(name),
            after_id: p.after,
            limit: p.limit,
        })
        .await?;
    Ok(Json(rows).into_response())
}

async fn info(State(app): State<Arc<App>>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(app.stagings.info_async(&name).await?).into_response())
}
