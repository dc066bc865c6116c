//! `/metrics`: Prometheus text exposition (prometheus-client) of requests per route (count and
//! latency), staging commands this server finished per command and outcome, stagings per
//! status, open event subscribers, and the reconcile lag (how long ago the least recently
//! checked staging was checked). Needs a `read` token like `/v1`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::problem::ApiResult;
use crate::App;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    commands: Family<CommandLabels, Counter>,
    stagings: Family<StatusLabels, Gauge>,
    subscribers: Gauge,
    lag: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("capsa");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let commands = Family::<CommandLabels, Counter>::default();
        let stagings = Family::<StatusLabels, Gauge>::default();
        let subscribers = Gauge::default();
        let lag = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            latency.clone(),
        );
        registry.register(
            "staging_commands",
            "Staging commands this server finished (reconcile rounds included), by command and outcome",
            commands.clone(),
        );
        registry.register("stagings", "Stagings by status", stagings.clone());
        registry.register(
            "event_subscribers",
            "Open event streams and WebSockets",
            subscribers.clone(),
        );
        registry.register(
            "reconcile_lag_seconds",
            "Seconds since the least recently checked staging was checked",
            lag.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            commands,
            stagings,
            subscribers,
            lag,
        }
    }
}

impl Metrics {
    /// Count the commands finished by `stagings` (this process's own: each replica counts
    /// its own) for as long as the returned subscription lives.
    pub(crate) fn count_commands(
        &self,
        stagings: &capsa::staging::StagingManager,
    ) -> capsa::staging::Subscription {
        let commands = self.commands.clone();
        stagings.subscribe(move |e| {
            if let capsa::staging::EventKind::CommandFinished {
                action, outcome, ..
            } = &e.kind
            {
                commands
                    .get_or_create(&CommandLabels {
                        command: action.clone(),
                        outcome: outcome.as_str(),
                    })
                    .inc();
            }
        })
    }

    /// One more, or one fewer, event subscriber.
    pub(crate) fn subscribers(&self, delta: i64) {
        self.subscribers.inc_by(delta);
    }
}

/// The middleware counting every request by its route template (never its raw path, which
/// could hold a name).
pub(crate) async fn record(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let t = Instant::now();
    let resp = next.run(req).await;
    let labels = RouteLabels {
        method,
        route,
        status: resp.status().as_u16(),
    };
    tracing::info!(
        method = %labels.method,
        route = %labels.route,
        status = labels.status,
        ms = t.elapsed().as_millis() as u64,
        "request"
    );
    app.metrics.requests.get_or_create(&labels).inc();
    app.metrics
        .latency
        .get_or_create(&labels)
        .observe(t.elapsed().as_secs_f64());
    resp
}

pub(crate) async fn metrics(State(app): State<Arc<App>>) -> ApiResult<Response> {
    let list = app.stagings.list_async().await?;
    let m = &app.metrics;
    m.stagings.clear();
    for s in &list {
        m.stagings
            .get_or_create(&StatusLabels {
                status: s.status.to_string(),
            })
            .inc();
    }
    let now = chrono::Utc::now();
    let oldest = list
        .iter()
        .filter(|s| !s.status.is_pending())
        .map(|s| s.checked_at.unwrap_or(s.status_since))
        .min();
    m.lag
        .set(oldest.map_or(0, |t| (now - t).num_seconds().max(0)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &m.registry)
        .map_err(|e| crate::problem::Problem::bad_request(e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
