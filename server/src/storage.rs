//! `/v1/capsules…` and `/v1/fsck`: show storage, as the CLI's storage commands. Store calls
//! touch the file system, so they run on the blocking pool, but for the lookups of one crate
//! (`latest`, one version: a handful of `stat`s and one small read), which run in place: the
//! hand-off to the pool and back cost more than they do (docs/decisions/0011).

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use capsa::{BumpOptions, PadStyle, Section, Store, Version};
use serde::Deserialize;
use serde_json::json;

use crate::api::{Bump, CreateCapsule};
use crate::auth::Caller;
use crate::problem::{ApiResult, Problem};
use crate::App;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/capsules", get(capsules).post(create_capsule))
        .route("/capsules/{id}/crates", get(crates).post(bump))
        .route("/capsules/{id}/latest", get(latest))
        .route("/capsules/{id}/crates/{version}", get(one_crate))
        .route("/capsules/{id}/crates/{version}/seal", post(seal))
        .route("/capsules/{id}/crates/{version}/sequences", get(sequences))
        .route("/fsck", get(fsck))
}

fn store_of(app: &App) -> ApiResult<Store> {
    app.store.clone().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "INVALID_STORE",
            "this server has no store (capsa serve was started without --store)",
        )
    })
}

/// Run the lookup `f` of one crate on the store, in place.
fn lookup<T>(app: &App, f: impl FnOnce(&Store) -> capsa::Result<T>) -> ApiResult<T> {
    Ok(f(&store_of(app)?)?)
}

/// Run `f` on the store, on the blocking pool.
async fn with_store<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&Store) -> capsa::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let store = store_of(app)?;
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "PANIC",
            "the store call failed unexpectedly",
        )),
    }
}

async fn capsules(State(app): State<Arc<App>>) -> ApiResult<Response> {
    let rows = with_store(&app, |store| {
        store
            .capsules()?
            .iter()
            .map(|c| c.info())
            .collect::<capsa::Result<Vec<_>>>()
    })
    .await?;
    Ok(Json(rows).into_response())
}

async fn create_capsule(
    State(app): State<Arc<App>>,
    body: Result<Json<CreateCapsule>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body?;
    let created = with_store(&app, move |store| {
        let c = store.create_capsule(&b.id)?;
        Ok(json!({ "id": c.id().as_str(), "path": c.path() }))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn crates(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Response> {
    let rows = with_store(&app, move |store| {
        store
            .capsule(&id)?
            .crates()?
            .iter()
            .map(|k| k.info())
            .collect::<capsa::Result<Vec<_>>>()
    })
    .await?;
    Ok(Json(rows).into_response())
}

async fn bump(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<Bump>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body?;
    let info = with_store(&app, move |store| {
        let (k, stats) = store.capsule(&id)?.bump_with_stats(BumpOptions {
            comment: b.comment,
            carry_over: b.carry_over,
            created_by: Some(caller.name),
            tags: b.tags,
        })?;
        let mut v = serde_json::to_value(k.info()?).unwrap_or_default();
        v["carried"] = serde_json::to_value(stats).unwrap_or_default();
        Ok(v)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LatestQuery {
    #[serde(default)]
    published: bool,
}

async fn latest(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    q: Result<Query<LatestQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q?;
    let info = lookup(&app, move |store| {
        let c = store.capsule(&id)?;
        let k = if q.published {
            c.latest_published()?
        } else {
            c.latest()?
        };
        match k {
            Some(k) => k.info(),
            None => Err(capsa::Error::NotFound {
                what: if q.published {
                    "published crate"
                } else {
                    "crate"
                },
                name: id,
            }),
        }
    })?;
    Ok(Json(info).into_response())
}

async fn one_crate(
    State(app): State<Arc<App>>,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let info = lookup(&app, move |store| {
        store.capsule(&id)?.get(Version::parse(&version)?)?.info()
    })?;
    Ok(Json(info).into_response())
}

async fn seal(
    State(app): State<Arc<App>>,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let info = with_store(&app, move |store| {
        let k = store.capsule(&id)?.get(Version::parse(&version)?)?;
        k.seal()?;
        k.info()
    })
    .await?;
    Ok(Json(info).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SequencesQuery {
    section: Option<String>,
}

async fn sequences(
    State(app): State<Arc<App>>,
    Path((id, version)): Path<(String, String)>,
    q: Result<Query<SequencesQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q?;
    let rows = with_store(&app, move |store| {
        let section: Section = q.section.as_deref().unwrap_or("artifacts").parse()?;
        let k = store.capsule(&id)?.get(Version::parse(&version)?)?;
        Ok(k.sequences(section)?
            .iter()
            .map(|s| s.info("", PadStyle::Hash))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(rows).into_response())
}

async fn fsck(State(app): State<Arc<App>>) -> ApiResult<Response> {
    let report = with_store(&app, |store| store.fsck(false)).await?;
    Ok(Json(report).into_response())
}
