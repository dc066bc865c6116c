//! `capsa --server URL`: the staging commands and queries through a capsa server's API, with
//! the output, `--json` and exit codes of local mode (a problem's `code` is the error's).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use capsa::staging::{AuditEntry, AuditQuery, CommandOptions, CommandRequest, NamedUrl, Staging};
use capsa::ErrorCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How to reach a server: `--server`, `--token`, `--ca`, `--client-cert`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Run the staging commands on this capsa server (`https://capsa.example:8270`) instead of
    /// this machine's state.
    #[arg(long, global = true, env = "CAPSA_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The server token.
    #[arg(
        long,
        global = true,
        env = "CAPSA_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The CA that signed the server's certificate (PEM), when not a system one.
    #[arg(long, global = true, env = "CAPSA_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (one PEM file), for a server with mutual TLS.
    #[arg(long, global = true, env = "CAPSA_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
}

/// A capsa server.
pub struct Remote {
    base: String,
    token: Option<String>,
    client: reqwest::blocking::Client,
}

impl Remote {
    /// The server `args` name, if any.
    pub fn of(args: &ServerArgs) -> anyhow::Result<Option<Remote>> {
        let Some(url) = &args.server else {
            return Ok(None);
        };
        let mut b = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(3600))
            .connect_timeout(Duration::from_secs(10));
        if let Some(ca) = &args.ca {
            let pem = std::fs::read(ca).with_context(|| format!("--ca {}", ca.display()))?;
            b = b.add_root_certificate(
                reqwest::Certificate::from_pem(&pem)
                    .with_context(|| format!("--ca {}", ca.display()))?,
            );
        }
        if let Some(c) = &args.client_cert {
            let pem = std::fs::read(c).with_context(|| format!("--client-cert {}", c.display()))?;
            b = b.identity(
                reqwest::Identity::from_pem(&pem)
                    .with_context(|| format!("--client-cert {}", c.display()))?,
            );
        }
        Ok(Some(Remote {
            base: url.trim_end_matches('/').to_string(),
            token: args.token.clone(),
            client: b.build().context("cannot make an HTTP client")?,
        }))
    }

    /// `rb` with the token, if any.
    fn authed(&self, rb: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    fn send(&self, rb: reqwest::blocking::RequestBuilder) -> anyhow::Result<Value> {
        let r = self
            .authed(rb)
            .send()
            .with_context(|| format!("cannot reach the capsa server {}", self.base))?;
        self.answer(r)
    }

    /// The JSON of a success, or the error of a problem.
    fn answer(&self, r: reqwest::blocking::Response) -> anyhow::Result<Value> {
        let status = r.status();
        let v: Value = r
            .json()
            .with_context(|| format!("{} answered {status} with no JSON", self.base))?;
        if status.is_success() {
            return Ok(v);
        }
        let detail = v["detail"].as_str().unwrap_or("").to_string();
        let code = v["code"].as_str().and_then(ErrorCode::from_str_code);
        match code {
            Some(code) => Err(capsa::Error::Remote {
                code,
                message: detail,
            }
            .into()),
            // The server's own codes (UNAUTHENTICATED, FORBIDDEN).
            None => anyhow::bail!(
                "{} answered {status}: {} [{}]",
                self.base,
                capsa::error::one_line(&detail),
                v["code"].as_str().unwrap_or("?")
            ),
        }
    }

    /// `GET path?query` as `T`.
    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let rb = self.client.get(format!("{}{path}", self.base)).query(query);
        Ok(serde_json::from_value(self.send(rb)?)?)
    }

    /// `POST path` with a JSON body, as `T`.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> anyhow::Result<T> {
        let rb = self.client.post(format!("{}{path}", self.base)).json(body);
        Ok(serde_json::from_value(self.send(rb)?)?)
    }

    /// `GET /v1/stagings`.
    pub fn list(&self) -> anyhow::Result<Vec<Staging>> {
        self.get("/v1/stagings", &[])
    }

    /// `GET /v1/stagings/NAME`.
    pub fn get_staging(&self, name: &str) -> anyhow::Result<Staging> {
        self.get(&format!("/v1/stagings/{}", segment(name)), &[])
    }

    /// `GET /v1/stagings/NAME/info`.
    pub fn info(&self, name: &str) -> anyhow::Result<Vec<NamedUrl>> {
        self.get(&format!("/v1/stagings/{}/info", segment(name)), &[])
    }

    /// `GET /v1/stagings/NAME/audit` (a name is required over the API).
    pub fn audit_log(&self, q: &AuditQuery) -> anyhow::Result<Vec<AuditEntry>> {
        let name = q.name.as_deref().ok_or_else(|| capsa::Error::Unsupported {
            what: "the audit log of every staging over --server (name one)".into(),
        })?;
        let mut query = Vec::new();
        if let Some(l) = q.limit {
            query.push(("limit", l.to_string()));
        }
        self.get(&format!("/v1/stagings/{}/audit", segment(name)), &query)
    }

    /// Run a command; `wait`: its result (`None`: removed), else the pending staging.
    pub fn command(
        &self,
        req: &CommandRequest,
        opts: &CommandOptions,
        wait: bool,
    ) -> anyhow::Result<Option<Staging>> {
        use capsa_server::api::{CreateStaging, OverrideBody, RestoreStaging, UpdateStaging};
        let bodies =
            |list: &[capsa::staging::Override]| list.iter().map(OverrideBody::of).collect();
        let ttl = opts.expiry.spec();
        let (path, body) = match req {
            CommandRequest::Create {
                name,
                tag,
                overrides,
            } => {
                let body = CreateStaging {
                    name: name.clone(),
                    tag: tag.clone(),
                    overrides: bodies(overrides),
                    ttl,
                };
                (
                    "/v1/stagings".to_string(),
                    Some(serde_json::to_value(body)?),
                )
            }
            CommandRequest::Update {
                name,
                tag,
                overrides,
            } => {
                let (set, unset) = UpdateStaging::split_edits(&opts.edits);
                let body = UpdateStaging {
                    tag: tag.clone(),
                    overrides: overrides.as_deref().map(bodies),
                    set,
                    unset,
                    ttl,
                };
                let path = format!("/v1/stagings/{}/update", segment(name));
                (path, Some(serde_json::to_value(body)?))
            }
            CommandRequest::Delete { name } => {
                (format!("/v1/stagings/{}/delete", segment(name)), None)
            }
            CommandRequest::Restore { name } => {
                let body = serde_json::to_value(RestoreStaging { ttl })?;
                (
                    format!("/v1/stagings/{}/restore", segment(name)),
                    Some(body),
                )
            }
            CommandRequest::Cleanup { name } => {
                (format!("/v1/stagings/{}/cleanup", segment(name)), None)
            }
        };
        let mut rb = self
            .client
            .post(format!("{}{path}", self.base))
            .query(&[("wait", wait)]);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let v = self.send(rb)?;
        if v["removed"] == true {
            return Ok(None);
        }
        Ok(Some(serde_json::from_value(v)?))
    }
}

/// The largest event a server may send `watch` (the server's own are a few hundred bytes).
const MAX_EVENT: usize = 1 << 20;

impl Remote {
    /// Follow `/v1/events` (Server-Sent Events) from after `after` (`None`: from now): call
    /// `live` with the starting point once the stream is live, then `each` for every event
    /// until it answers `false`. A dropped stream is resumed with `Last-Event-ID`, so nothing
    /// is missed or seen twice; a server gone for a minute is an error.
    pub fn follow_events(
        &self,
        after: Option<i64>,
        live: impl FnOnce(i64),
        mut each: impl FnMut(&capsa::staging::Event) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        use std::io::BufRead;
        let mut last = after;
        let mut live = Some(live);
        let mut lost: Option<std::time::Instant> = None;
        loop {
            let mut rb = self.client.get(format!("{}/v1/events", self.base));
            if let Some(a) = last {
                rb = rb.header("last-event-id", a.to_string());
            }
            let r = match self.authed(rb).send() {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => return self.answer(r).map(|_| ()),
                Err(e) => {
                    let since = *lost.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() > Duration::from_secs(60) {
                        return Err(e)
                            .with_context(|| format!("lost the capsa server {}", self.base));
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            lost = None;
            let mut data = String::new();
            for line in std::io::BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if let Some(from) = line.strip_prefix(": capsa events after ") {
                    let from = from.trim().parse().unwrap_or(0);
                    last.get_or_insert(from);
                    if let Some(f) = live.take() {
                        f(from);
                    }
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    if data.len() > MAX_EVENT {
                        anyhow::bail!("{} sent an event of more than {MAX_EVENT} bytes", self.base);
                    }
                } else if line.is_empty() && !data.is_empty() {
                    let e: capsa::staging::Event =
                        serde_json::from_str(&data).with_context(|| {
                            format!("{} sent an event capsa cannot read", self.base)
                        })?;
                    data.clear();
                    last = Some(e.seq);
                    if !each(&e)? {
                        return Ok(());
                    }
                }
            }
            // The stream ended (the server stopped, a proxy cut it): resume where it was.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Whether `e` is the server's "no such crate" for a capsule that exists (what local mode's
/// `latest --json` prints as `null`).
pub fn is_no_crate(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<capsa::Error>(),
        Some(capsa::Error::Remote { code: ErrorCode::NotFound, message })
            if message.starts_with("crate not found") || message.starts_with("published crate not found")
    )
}

/// A name as one URL path segment (percent-encoded: the server refuses bad names itself).
pub fn segment(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
