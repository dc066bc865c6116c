//! `capsa serve`: capsa's HTTP API, a thin layer over its core like the bindings.
//!
//! The caller (the CLI's `capsa serve`) opens the [`capsa::Store`] and the
//! [`capsa::staging::StagingManager`] as it would for a local command and hands them over in
//! an [`App`]; this crate only converts HTTP to core calls and core results to JSON:
//!
//! - `/v1/stagings…`: list, show, create, update, delete, restore, cleanup, audit log, info; a
//!   command answers `202 Accepted` with the pending staging, or waits with `?wait=true`;
//! - `/v1/capsules…`, `/v1/fsck`: show storage;
//! - `/v1/events`: the staging events as Server-Sent Events or WebSocket messages, resumable
//!   by `Last-Event-ID` (or `?after=SEQ`);
//! - `/healthz`, `/readyz`, `/metrics` (Prometheus), `/v1/openapi.json` ([`openapi`]).
//!
//! Errors are `application/problem+json` (RFC 9457) carrying capsa's stable `code`
//! ([`problem::status_of`] is the one mapping of codes to HTTP statuses). Every `/v1` route
//! needs a bearer token (or HTTP Basic with the token as password) of a role that allows it
//! ([`auth`]); the token's name is the audit log's actor.

pub mod api;
pub mod auth;
mod events;
mod health;
mod listen;
mod metrics;
pub mod openapi;
pub mod problem;
mod stagings;
mod storage;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use capsa::staging::StagingManager;
use capsa::Store;

pub use auth::{Role, TokenInfo, Tokens, TOKENS_ENV};
pub use listen::Tls;

/// What the server serves.
pub struct App {
    store: Option<Store>,
    stagings: StagingManager,
    tokens: Tokens,
    metrics: metrics::Metrics,
    /// Feeds `metrics` while the app lives.
    _counting: capsa::staging::Subscription,
    cors: Vec<axum::http::HeaderValue>,
}

impl App {
    /// Serve `store` (`None`: the storage routes answer `INVALID_STORE`) and `stagings` to the
    /// callers `tokens` knows.
    pub fn new(store: Option<Store>, stagings: StagingManager, tokens: Tokens) -> App {
        let metrics = metrics::Metrics::default();
        App {
            store,
            _counting: metrics.count_commands(&stagings),
            stagings,
            tokens,
            metrics,
            cors: Vec::new(),
        }
    }

    /// Let web pages of `origins` call the API from a browser (CORS); without any, only
    /// pages the server serves itself can.
    pub fn allow_origins(mut self, origins: Origins) -> App {
        self.cors = origins.0;
        self
    }
}

/// Origins allowed to call the API from a browser.
#[derive(Debug, Clone, Default)]
pub struct Origins(Vec<axum::http::HeaderValue>);

impl Origins {
    /// Parse origins such as `https://tools.example:8443`. `*` and anything with a path are
    /// refused: the API carries credentials.
    pub fn parse(origins: &[String]) -> Result<Origins, String> {
        let mut list = Vec::new();
        for o in origins {
            let origin = o.strip_suffix('/').unwrap_or(o);
            let parsed = origin.parse::<axum::http::Uri>().ok().filter(|u| {
                matches!(u.scheme_str(), Some("http" | "https"))
                    && u.host().is_some()
                    && u.path_and_query()
                        .is_none_or(|p| p.as_str().is_empty() || p == "/")
            });
            match (parsed, axum::http::HeaderValue::from_str(origin)) {
                (Some(_), Ok(v)) => list.push(v),
                _ => {
                    return Err(format!(
                        "--cors-origin {o:?} is not an origin (scheme://host[:port], such as https://tools.example:8443)"
                    ))
                }
            }
        }
        Ok(Origins(list))
    }
}

/// Limits of a server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request body (default 1 MiB).
    pub body: usize,
    /// How long a request may take, a waited command included (default 10 min); an event
    /// stream is not limited.
    pub request: Duration,
    /// How long a client may take to send a request head, or to finish a TLS handshake
    /// (default 10 s); a slower one is disconnected.
    pub header: Duration,
    /// How long a shutdown waits for the requests in flight (default 10 s).
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body: 1 << 20,
            request: Duration::from_secs(600),
            header: Duration::from_secs(10),
            grace: Duration::from_secs(10),
        }
    }
}

/// The address `capsa serve` listens on by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8270";

/// Refuse to listen on a non-loopback address in plain HTTP unless told `insecure`: tokens
/// and private values would cross the network in the clear.
pub fn check_listen(addr: SocketAddr, tls: bool, insecure: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || tls || insecure {
        Ok(())
    } else {
        Err(format!(
            "refusing to serve plain HTTP on {addr}, which is not a loopback address: \
             tokens would cross the network in the clear (give --tls-cert and --tls-key, or \
             pass --insecure to accept that)"
        ))
    }
}

/// The routes of `app`, with the request limits.
pub fn router(app: Arc<App>, limits: &Limits) -> Router {
    use tower_http::timeout::TimeoutLayer;
    let v1 = Router::new()
        .merge(stagings::routes())
        .merge(storage::routes())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            limits.request,
        ))
        .merge(events::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require,
        ));
    let metrics = Router::new()
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require,
        ));
    Router::new()
        .nest("/v1", v1)
        .route(
            "/v1/openapi.json",
            axum::routing::get(|| async { axum::Json(openapi::document()) }),
        )
        .merge(metrics)
        .merge(health::routes())
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::record,
        ))
        .fallback(|| async { problem::Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            problem::Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "the route does not take this method",
            )
        })
        // Bodies are read by the Json extractor, which turns a larger one into a problem.
        .layer(axum::extract::DefaultBodyLimit::max(limits.body))
        // gzip when asked, for the larger answers (lists, audit logs, fsck, OpenAPI); never
        // for event streams, which tower-http's default predicate leaves alone.
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(cors(&app.cors))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

/// CORS for the allowed origins: the methods and headers of the API, preflight answered.
/// No origin allowed: no CORS headers at all, so browsers keep pages of other origins out.
fn cors(origins: &[axum::http::HeaderValue]) -> tower_http::cors::CorsLayer {
    use axum::http::{header, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("last-event-id"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Serve `app` on `listener` (over TLS with `tls`) until `shutdown` resolves, then let the
/// requests in flight finish within [`Limits::grace`] (event streams end at once, WebSockets
/// with a close frame).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    limits: &Limits,
    tls: Option<&Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = match tls {
        Some(t) => Some((t.config().map_err(std::io::Error::other)?, t.client_role)),
        None => None,
    };
    let (stop_tx, stopping) = tokio::sync::watch::channel(false);
    let sockets = Arc::new(listen::Tracker::default());
    let stop = events::Stop {
        stopping,
        sockets: sockets.clone(),
    };
    let router = router(app, limits).layer(axum::Extension(stop));
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    listen::run(listener, router, tls, limits.header, limits.grace, shutdown).await?;
    sockets.drained(Duration::from_secs(5)).await;
    Ok(())
}
