//! `/v1/events`: the staging events of every process sharing the state, as Server-Sent
//! Events. Each event's SSE `id` is its `seq`; a client that reconnects with `Last-Event-ID`
//! (or `?after=SEQ`) gets every event after it, none twice. Without either it gets only new
//! events. `?staging=NAME` keeps one staging's.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use capsa::staging::Event;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;

use crate::problem::{ApiResult, Problem};
use crate::App;

/// Ends the event streams when the server shuts down (so that the graceful shutdown does not
/// wait for clients that never hang up).
#[derive(Clone)]
pub(crate) struct Stop(pub(crate) tokio::sync::watch::Receiver<bool>);

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/events", get(events))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    after: Option<i64>,
    staging: Option<String>,
}

/// How many events one read of the state returns at most.
const BATCH: usize = 256;
/// How long one wait for new events lasts before it is renewed.
const WAIT: Duration = Duration::from_secs(15);

async fn events(
    State(app): State<Arc<App>>,
    stop: Option<Extension<Stop>>,
    headers: HeaderMap,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(p) = q?;
    let last_id = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| Problem::bad_request("Last-Event-ID is not an event id"))?,
        ),
        None => None,
    };
    let after = match last_id.or(p.after) {
        Some(a) => a,
        None => app.stagings.last_event_seq()?,
    };
    let stop = stop.map(|s| s.0 .0);
    let stream = feed(app, after, p.staging, stop);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

struct Feed {
    app: Arc<App>,
    after: i64,
    staging: Option<String>,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    queued: std::collections::VecDeque<Event>,
}

fn feed(
    app: Arc<App>,
    after: i64,
    staging: Option<String>,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let start = Feed {
        app,
        after,
        staging,
        stop,
        queued: Default::default(),
    };
    stream::unfold(start, |mut f| async move {
        loop {
            if let Some(e) = f.queued.pop_front() {
                let data = serde_json::to_string(&e).unwrap_or_default();
                let ev = SseEvent::default()
                    .id(e.seq.to_string())
                    .event(e.kind.as_str())
                    .data(data);
                return Some((Ok(ev), f));
            }
            let wait = f.app.stagings.wait_events_async(f.after, BATCH, WAIT);
            let got = match f.stop.as_mut() {
                Some(stop) => tokio::select! {
                    r = wait => r,
                    _ = stop.wait_for(|s| *s) => return None,
                },
                None => wait.await,
            };
            match got {
                Ok(list) => {
                    for e in list {
                        f.after = f.after.max(e.seq);
                        if f.staging.as_deref().is_none_or(|s| s == e.name) {
                            f.queued.push_back(e);
                        }
                    }
                }
                // The state store is unreachable: end the stream; the client reconnects with
                // its Last-Event-ID and misses nothing.
                Err(e) => {
                    tracing::warn!(code = e.code().as_str(), "event stream ended");
                    return None;
                }
            }
        }
    })
    .boxed()
}
