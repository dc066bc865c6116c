//! `/v1/events`: the staging events of every process sharing the state, as Server-Sent
//! Events, or as WebSocket text messages (one event as JSON each) when the request asks for
//! a WebSocket upgrade. Each event's SSE `id` is its `seq`; a client that reconnects with
//! `Last-Event-ID` (or `?after=SEQ`, the WebSocket form) gets every event after it, none
//! twice. Without either it gets only new events. An SSE stream starts with the comment
//! `: capsa events after SEQ`, so a client knows when it is live. `?staging=NAME` keeps one staging's. On
//! shutdown the streams end and WebSockets get a close frame (1001, going away).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use capsa::staging::Event;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;

use crate::listen::Tracker;
use crate::problem::{ApiResult, Problem};
use crate::App;

/// Ends the event streams when the server shuts down (so that the graceful shutdown does not
/// wait for clients that never hang up), and counts the open WebSockets, which the server
/// no longer tracks once upgraded, so that shutdown can wait for their close frames.
#[derive(Clone)]
pub(crate) struct Stop {
    pub(crate) stopping: tokio::sync::watch::Receiver<bool>,
    pub(crate) sockets: Arc<Tracker>,
}

/// Counts one event subscriber in the metrics while it lives.
struct Subscribed(Arc<App>);

impl Subscribed {
    fn new(app: Arc<App>) -> Subscribed {
        app.metrics.subscribers(1);
        Subscribed(app)
    }
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.metrics.subscribers(-1);
    }
}

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
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
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
    let sockets = stop.as_ref().map(|s| s.0.sockets.clone());
    let subscribed = Subscribed::new(app.clone());
    let stream = feed(app, after, p.staging, stop.map(|s| s.0.stopping));
    match ws {
        Ok(ws) => {
            // A client only sends pings and its close frame: small buffers keep an idle
            // socket cheap (tungstenite allocates 128 KiB for each by default), and each
            // event is written at once.
            let ws = ws
                .read_buffer_size(4 << 10)
                .write_buffer_size(0)
                .max_write_buffer_size(1 << 20)
                .max_message_size(64 << 10)
                .max_frame_size(64 << 10);
            let open = sockets.map(|s| s.enter());
            return Ok(ws.on_upgrade(move |socket| async move {
                pump(socket, stream).await;
                drop((open, subscribed));
            }));
        }
        // Asked for an upgrade, but not a valid WebSocket one.
        Err(e) if headers.contains_key(axum::http::header::UPGRADE) => {
            return Err(Problem::bad_request(e.body_text()))
        }
        Err(_) => {}
    }
    // A first comment tells the client the stream is live, and from where.
    let hello = SseEvent::default().comment(format!("capsa events after {after}"));
    let sse = stream.map(move |e| {
        let _counted = &subscribed;
        let data = serde_json::to_string(&e).unwrap_or_default();
        Ok::<_, Infallible>(
            SseEvent::default()
                .id(e.seq.to_string())
                .event(e.kind.as_str())
                .data(data),
        )
    });
    let sse = stream::once(async move { Ok(hello) }).chain(sse);
    Ok(Sse::new(sse)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Send the feed's events over `socket` until it ends (a close frame) or the client goes.
async fn pump(mut socket: WebSocket, mut events: impl Stream<Item = Event> + Unpin) {
    loop {
        tokio::select! {
            next = events.next() => match next {
                Some(e) => {
                    let text = serde_json::to_string(&e).unwrap_or_default();
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                None => {
                    let frame = CloseFrame { code: 1001, reason: "capsa serve is stopping".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    return;
                }
            },
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

struct Feed {
    app: Arc<App>,
    after: i64,
    staging: Option<String>,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    queued: std::collections::VecDeque<Event>,
}

/// The events after `after` (of `staging` only, if given), as they come.
fn feed(
    app: Arc<App>,
    after: i64,
    staging: Option<String>,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> futures_util::stream::BoxStream<'static, Event> {
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
                return Some((e, f));
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
