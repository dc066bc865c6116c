//! Notifications of status changes: hook commands and HTTP webhooks configured per
//! installation ([`NotifyConfig`], a TOML file), plus the backend's own (Octopod's
//! `notifications` script).
//!
//! Every hook has its own bounded queue and one delivery task, so hooks are delivered in the
//! order the changes happened and a slow or dead hook delays no command and no other hook: a
//! command only puts the event in each queue (`try_send`); a full queue drops the event with a
//! warning (counted in [`HookStats::dropped`]). A failed delivery is retried with exponential
//! backoff ([`NotifyConfig::retries`], [`NotifyConfig::backoff`]), then logged and counted.
//!
//! ```toml
//! queue = 1024      # events waiting per hook, at most
//! retries = 5       # retries after a failed delivery
//! backoff = "1s"    # the first retry's delay, doubled each time (at most 1 min)
//! timeout = "10s"   # one delivery attempt, at most
//! grace = "5s"      # how long a CLI command waits at exit for queued deliveries
//!
//! [[webhook]]
//! url = "https://hooks.example.com/capsa"
//! secret_file = "/etc/capsa/webhook.secret"   # or secret_env = "NAME"; optional
//!
//! [[command]]
//! path = "/opt/pipeline/bin/on-staging-change"
//! ```
//!
//! A webhook receives `POST` with the [`Event`] as JSON (`{"seq":…,"at":…,"name":…,
//! "event":"StatusChanged","from":…,"to":…,"reason":…}`) and the headers `X-Capsa-Event`,
//! `X-Capsa-Delivery` (the event's `seq`, the same on every retry) and, with a secret,
//! `X-Capsa-Signature-256: sha256=HEX`, the HMAC-SHA256 of the body under the secret. A 2xx
//! answer is delivered; 408, 429, 5xx and transport errors are retried; other answers
//! (redirects included: they are not followed) fail at once. A command hook is run as
//! `PATH --name N --old-status S --new-status S [--reason R]` (`none` for a missing status)
//! with the JSON on stdin; exit 0 is delivered, anything else is retried.

mod command;
#[cfg(feature = "webhooks")]
mod webhook;
#[cfg(feature = "webhooks")]
pub use webhook::{signature, SIGNATURE_HEADER};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc;

use super::{parse_duration, DeployRequest, Deployer, Event, EventKind};
use crate::error::{Error, Result};
use crate::runtime;
use crate::safe_file::{read_small, read_small_text, Links};

/// The environment variable naming the notifications file an installation uses when the
/// caller names none (`StagingManager::open_with`, the CLI's `--notifications`).
pub const NOTIFICATIONS_ENV: &str = "CAPSA_NOTIFICATIONS";

/// A hook's secret (the HMAC key of a webhook). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct HookSecret(Vec<u8>);

impl HookSecret {
    /// A secret of these bytes (`InvalidArgument` when empty).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<HookSecret> {
        let b = bytes.into();
        if b.is_empty() {
            return Err(bad("the webhook secret is empty".into()));
        }
        Ok(HookSecret(b))
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookSecret(<private>)")
    }
}

/// One notification hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// An HTTP(S) webhook (feature `webhooks`), signed when it has a secret.
    Webhook {
        /// The URL that receives the `POST`.
        url: String,
        /// The HMAC-SHA256 key of `X-Capsa-Signature-256`.
        secret: Option<HookSecret>,
    },
    /// A command run for every change.
    Command {
        /// The executable.
        path: PathBuf,
    },
}

impl Hook {
    /// How logs and [`HookStats`] name the hook: a webhook by scheme and host only (its path
    /// and user info may hold a token), a command by its path.
    pub fn label(&self) -> String {
        match self {
            Hook::Webhook { url, .. } => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                let host = host.rsplit('@').next().unwrap_or(host);
                format!("webhook {scheme}://{host}")
            }
            Hook::Command { path } => format!("command {}", path.display()),
        }
    }
}

/// The notification settings of an installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// The hooks. Default none.
    pub hooks: Vec<Hook>,
    /// Events waiting per hook, at most. Default 1024.
    pub queue: usize,
    /// Retries after a failed delivery. Default 5.
    pub retries: u32,
    /// The first retry's delay, doubled each retry (at most [`MAX_BACKOFF`]). Default 1 s.
    pub backoff: Duration,
    /// One delivery attempt, at most. Default 10 s.
    pub timeout: Duration,
    /// How long a short-lived process (a CLI command) waits at exit for queued deliveries
    /// ([`super::StagingManager::flush_notifications`]). Default 5 s.
    pub grace: Duration,
}

/// The longest delay between two delivery attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            hooks: Vec::new(),
            queue: 1024,
            retries: 5,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            grace: Duration::from_secs(5),
        }
    }
}

fn bad(reason: String) -> Error {
    Error::InvalidArgument {
        what: "notifications",
        reason,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    queue: Option<usize>,
    retries: Option<u32>,
    backoff: Option<String>,
    timeout: Option<String>,
    grace: Option<String>,
    #[serde(default)]
    webhook: Vec<WebhookForm>,
    #[serde(default)]
    command: Vec<CommandForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookForm {
    url: String,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandForm {
    path: PathBuf,
}

impl NotifyConfig {
    /// Read a notifications file (TOML, see the [module docs](self)); relative secret files and
    /// command paths are taken from the file's directory. `InvalidArgument` names what is wrong.
    pub fn load(path: &Path) -> Result<NotifyConfig> {
        let text = read_small_text(path, Links::Follow, 1 << 20, "notifications file")?;
        let base = path.parent().unwrap_or(Path::new("."));
        NotifyConfig::parse(&text, base)
            .map_err(|e| bad(format!("{}: {}", path.display(), reason_of(e))))
    }

    /// Parse the TOML text of a notifications file; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<NotifyConfig> {
        let f: FileForm = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
        let d = NotifyConfig::default();
        let dur = |what: &'static str, v: Option<String>, def: Duration| match v {
            Some(t) => parse_duration(what, &t),
            None => Ok(def),
        };
        let mut c = NotifyConfig {
            hooks: Vec::new(),
            queue: f.queue.unwrap_or(d.queue),
            retries: f.retries.unwrap_or(d.retries),
            backoff: dur("backoff", f.backoff, d.backoff)?,
            timeout: dur("timeout", f.timeout, d.timeout)?,
            grace: dur("grace", f.grace, d.grace)?,
        };
        if c.queue == 0 {
            return Err(bad("queue must be at least 1".into()));
        }
        if c.timeout.is_zero() {
            return Err(bad("timeout must be more than zero".into()));
        }
        for w in f.webhook {
            let lower = w.url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(bad(format!(
                    "webhook url {:?} is not http:// or https://",
                    Hook::Webhook {
                        url: w.url.clone(),
                        secret: None
                    }
                    .label()
                )));
            }
            let secret = match (w.secret_file, w.secret_env) {
                (Some(_), Some(_)) => {
                    return Err(bad(
                        "a webhook takes secret_file or secret_env, not both".into()
                    ))
                }
                (Some(p), None) => {
                    let p = base.join(p);
                    let raw = read_small(&p, Links::Follow, 64 << 10, "webhook secret file")?;
                    let trimmed = raw.trim_ascii_end().to_vec();
                    Some(HookSecret::new(trimmed)?)
                }
                (None, Some(name)) => {
                    let v = std::env::var_os(&name).ok_or_else(|| {
                        bad(format!(
                            "webhook secret_env {name}: the variable is not set"
                        ))
                    })?;
                    Some(HookSecret::new(v.into_encoded_bytes())?)
                }
                (None, None) => None,
            };
            if cfg!(not(feature = "webhooks")) {
                return Err(Error::Unsupported {
                    what: "webhook notifications: this build of capsa has no `webhooks` feature"
                        .into(),
                });
            }
            c.hooks.push(Hook::Webhook { url: w.url, secret });
        }
        for h in f.command {
            c.hooks.push(Hook::Command {
                path: base.join(h.path),
            });
        }
        Ok(c)
    }
}

fn reason_of(e: Error) -> String {
    match e {
        Error::InvalidArgument { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// Delivery counts of one hook ([`super::StagingManager::notification_stats`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HookStats {
    /// The hook ([`Hook::label`], or `backend NAME`).
    pub hook: String,
    /// Events delivered.
    pub delivered: u64,
    /// Events given up after the last retry.
    pub failed: u64,
    /// Events dropped because the hook's queue was full.
    pub dropped: u64,
}

/// Why one delivery attempt failed, and whether another attempt may succeed.
pub(crate) struct Failed {
    pub(crate) why: String,
    pub(crate) retry: bool,
}

enum Sink {
    /// A hook that cannot be delivered to (its client could not be built): every event fails.
    Broken(String),
    Backend(Arc<dyn Deployer>, String),
    Command(PathBuf),
    #[cfg(feature = "webhooks")]
    Webhook(webhook::Webhook),
}

impl Sink {
    async fn deliver(
        &self,
        e: &Event,
        body: &[u8],
        timeout: Duration,
    ) -> std::result::Result<(), Failed> {
        match self {
            Sink::Broken(why) => Err(Failed {
                why: why.clone(),
                retry: false,
            }),
            Sink::Backend(d, prefix) => {
                let EventKind::StatusChanged { from, to, reason } = &e.kind else {
                    return Ok(());
                };
                let req = DeployRequest {
                    name: e.name.clone(),
                    namespace: format!("{prefix}{}", e.name),
                    tag: None,
                    overrides: Vec::new(),
                };
                match d.notify(&req, *from, *to, reason.as_deref()).await.reason() {
                    None => Ok(()),
                    Some(why) => Err(Failed {
                        why: why.to_string(),
                        retry: false,
                    }),
                }
            }
            Sink::Command(path) => command::run(path, e, body, timeout).await,
            #[cfg(feature = "webhooks")]
            Sink::Webhook(w) => w.post(e, body).await,
        }
    }
}

struct Counters {
    label: String,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// The queues and delivery tasks of a manager's hooks.
pub(crate) struct Notifier {
    queues: Vec<(mpsc::Sender<Event>, Arc<Counters>)>,
    pending: Arc<(AtomicUsize, tokio::sync::Notify)>,
}

impl Notifier {
    /// The notifier of `config`'s hooks plus the backend's own (when it
    /// [`Deployer::notifies`]); `None` when there is no hook at all.
    pub(crate) fn start(
        config: &NotifyConfig,
        deployer: &Arc<dyn Deployer>,
        namespace_prefix: &str,
    ) -> Option<Notifier> {
        let mut sinks: Vec<(String, Sink, u32)> = Vec::new();
        if deployer.notifies() {
            // The backend's own notifications are one attempt, as its scripts expect.
            let label = format!("backend {}", deployer.name());
            sinks.push((
                label,
                Sink::Backend(deployer.clone(), namespace_prefix.into()),
                0,
            ));
        }
        for h in &config.hooks {
            let sink = match h {
                Hook::Command { path } => Sink::Command(path.clone()),
                #[cfg(feature = "webhooks")]
                Hook::Webhook { url, secret } => {
                    match webhook::Webhook::new(url, secret.clone(), config.timeout) {
                        Ok(w) => Sink::Webhook(w),
                        Err(e) => Sink::Broken(e.to_string()),
                    }
                }
                #[cfg(not(feature = "webhooks"))]
                Hook::Webhook { .. } => {
                    Sink::Broken("this build of capsa has no `webhooks` feature".into())
                }
            };
            sinks.push((h.label(), sink, config.retries));
        }
        if sinks.is_empty() {
            return None;
        }
        let pending = Arc::new((AtomicUsize::new(0), tokio::sync::Notify::new()));
        let mut queues = Vec::new();
        for (label, sink, retries) in sinks {
            let (tx, mut rx) = mpsc::channel::<Event>(config.queue);
            let counters = Arc::new(Counters {
                label,
                delivered: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            });
            let (c, p) = (counters.clone(), pending.clone());
            let (backoff, timeout) = (config.backoff, config.timeout);
            runtime::runtime().spawn(async move {
                while let Some(e) = rx.recv().await {
                    let body = serde_json::to_vec(&e).unwrap_or_default();
                    let mut delay = backoff;
                    let mut attempt = 0;
                    loop {
                        match sink.deliver(&e, &body, timeout).await {
                            Ok(()) => {
                                c.delivered.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Err(f) if f.retry && attempt < retries => {
                                tracing::info!(hook = %c.label, seq = e.seq, "notification failed, retrying in {delay:?}: {}", f.why);
                                tokio::time::sleep(delay).await;
                                delay = (delay * 2).min(MAX_BACKOFF);
                                attempt += 1;
                            }
                            Err(f) => {
                                c.failed.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(hook = %c.label, seq = e.seq, name = %e.name, "notification failed: {}", f.why);
                                break;
                            }
                        }
                    }
                    p.0.fetch_sub(1, Ordering::SeqCst);
                    p.1.notify_waiters();
                }
            });
            queues.push((tx, counters));
        }
        Some(Notifier { queues, pending })
    }

    /// Queue a status change for every hook; never waits.
    pub(crate) fn send(&self, e: &Event) {
        if !matches!(e.kind, EventKind::StatusChanged { .. }) {
            return;
        }
        for (tx, c) in &self.queues {
            self.pending.0.fetch_add(1, Ordering::SeqCst);
            if tx.try_send(e.clone()).is_err() {
                self.pending.0.fetch_sub(1, Ordering::SeqCst);
                c.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(hook = %c.label, seq = e.seq, name = %e.name, "notification dropped: the hook's queue is full");
            }
        }
    }

    /// Wait until every queued delivery is done or `grace` has passed; the number of
    /// deliveries still pending.
    pub(crate) async fn flush(&self, grace: Duration) -> usize {
        let deadline = Instant::now() + grace;
        loop {
            let notified = self.pending.1.notified();
            let left = self.pending.0.load(Ordering::SeqCst);
            let now = Instant::now();
            if left == 0 || now >= deadline {
                return left;
            }
            let _ = tokio::time::timeout(deadline - now, notified).await;
        }
    }

    /// The delivery counts, one per hook.
    pub(crate) fn stats(&self) -> Vec<HookStats> {
        self.queues
            .iter()
            .map(|(_, c)| HookStats {
                hook: c.label.clone(),
                delivered: c.delivered.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
                dropped: c.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_form() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s"), "k3y\n").unwrap();
        let c = NotifyConfig::parse(
            "retries = 2\nbackoff = \"50ms\"\n[[webhook]]\nurl = \"https://u:p@h.example/x/TOKEN\"\nsecret_file = \"s\"\n[[command]]\npath = \"hook.sh\"\n",
            dir.path(),
        )
        .unwrap();
        assert_eq!(c.retries, 2);
        assert_eq!(c.backoff, Duration::from_millis(50));
        assert_eq!(c.hooks[0].label(), "webhook https://h.example");
        let Hook::Webhook {
            secret: Some(s), ..
        } = &c.hooks[0]
        else {
            panic!()
        };
        assert_eq!(s.expose(), b"k3y");
        assert!(!format!("{c:?}").contains("k3y"));
        assert_eq!(
            c.hooks[1],
            Hook::Command {
                path: dir.path().join("hook.sh")
            }
        );
        for (text, needle) in [
            ("bogus = 1", "unknown field"),
            ("queue = 0", "queue"),
            ("[[webhook]]\nurl = \"ftp://x\"", "not http"),
            (
                "[[webhook]]\nurl = \"http://x\"\nsecret_env = \"CAPSA_NO_SUCH_VAR_42\"",
                "not set",
            ),
            ("backoff = \"soon\"", "duration"),
        ] {
            let e = NotifyConfig::parse(text, dir.path())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
