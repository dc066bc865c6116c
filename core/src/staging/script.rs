//! Staging control scripts, in the two dialects teams run: DM's ([`Dialect::Dm`], the default)
//! and its public successor Octopod's ([`Dialect::Octopod`]).
//!
//! Each call runs one executable (no shell: every argument is passed as is, spaces and `=`
//! included) with exactly the arguments its dialect defines, so scripts whose argument parser
//! rejects unknown flags (DM's and Octopod's do) run unchanged. `P`, `D`, `NS` and `N` are
//! `--project-name`, `--base-domain`, `--namespace` and `--name`:
//!
//! | capsa call | DM script and arguments | Octopod script and arguments |
//! | --- | --- | --- |
//! | create | `create P D NS N --tag T [--app-env-override K=V]… [--staging-override K=V]…` | `create P D NS N [--application-config K=V]… [--deployment-config K=V]…` |
//! | update | `update`, as create | `update`, as create |
//! | delete | `delete P D NS N` | `archive P D NS N` + config |
//! | restore | `create`, as create | `unarchive P D NS N` + config (`create` without one) |
//! | check | `check P D NS N` | `check P D NS N` + config |
//! | cleanup | `cleanup P D NS N` | `cleanup P D NS N` + config |
//! | archive_check | `archive_check P D NS N` | `archive_check P D NS N` + config |
//! | tag_check (before create, update) | `tag_check P D NS N --tag T` (optional) | `config_check P D NS N` + config (optional) |
//! | info | — | `info P D NS N` + config (optional) |
//! | status change | — | `notifications P D NS N --old-status S --new-status S` (optional) |
//!
//! Octopod has no tag argument: capsa passes the tag as the deployment configuration
//! `image.tag=T` ([`OCTOPOD_TAG_KEY`], the key of Octopod's own examples) unless a staging
//! override sets that key. App-scope overrides are Octopod's application configuration,
//! staging-scope ones its deployment configuration.
//!
//! Where each script is: `DIR/<script name>`, unless the dialect's environment variable for
//! it names another path ([`ScriptDeployer::with_env_locations`]; DM's `CREATION_COMMAND`,
//! `UPDATE_COMMAND`, `DELETION_COMMAND`, `CHECKING_COMMAND`, `CLEANUP_COMMAND`,
//! `ARCHIVE_CHECKING_COMMAND`, `TAG_CHECKING_COMMAND`; Octopod's `CREATION_COMMAND`,
//! `UPDATE_COMMAND`, `ARCHIVE_COMMAND`, `UNARCHIVE_COMMAND`, `CHECKING_COMMAND`,
//! `CLEANUP_COMMAND`, `ARCHIVE_CHECKING_COMMAND`, `CONFIG_CHECKING_COMMAND`, `INFO_COMMAND`,
//! `NOTIFICATION_COMMAND`).
//!
//! `--namespace` is the installation's one namespace ([`ScriptNamespace`], default
//! [`DEFAULT_SCRIPT_NAMESPACE`]), or a pattern with `{name}` for one per staging.
//!
//! Statuses settle as in DM by default ([`Settle::Check`]): a create, update or restore whose
//! script exits 0 leaves the staging pending until `check` passes, a delete until
//! `archive_check` passes (polled by `reconcile`, failed after the pending timeout);
//! [`Settle::Exit`] settles on the script's exit instead.
//!
//! Exit status 0 is success, any other a failure whose reason is the exit code and the tail
//! of stderr. Octopod's `check` exit codes 1, 2 and 3 are read as generic failure, partial
//! availability and tag mismatch, kept at the head of the failure reason. capsa's own
//! extension, which no script of either dialect needs: exit status 75 (`EX_TEMPFAIL`) means
//! "could not find out" (a transient error: a `check` answering 75 changes nothing).
//!
//! stdout and stderr are read as they come, keeping only a bounded head and tail of each, so
//! a script printing gigabytes costs no memory. A script running past the timeout is killed
//! with its whole process group.
//!
//! Note that override values, private ones too, are visible to the scripts' own process
//! listing (`ps`) as both contracts pass them as arguments.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{
    redact, redact_cut, BackendOutcome, BackendReply, DeployRequest, Deployer, NamedUrl, Override,
    Scope, Status,
};
use crate::error::{Error, Result};

/// Exit status meaning "transient error, no answer" (`EX_TEMPFAIL` from `sysexits.h`): capsa's
/// extension of both contracts, which no script is required to use.
pub const EXIT_TEMPFAIL: i32 = 75;

/// The `--namespace` scripts get by default: one namespace for the installation, as DM's and
/// Octopod's ConfigMap name it.
pub const DEFAULT_SCRIPT_NAMESPACE: &str = "stagings";

/// The deployment configuration key that carries the tag to Octopod's scripts.
pub const OCTOPOD_TAG_KEY: &str = "image.tag";

/// Which contract the control scripts follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// DM's: `create update delete check cleanup archive_check tag_check`, with `--tag` and
    /// `--app-env-override` / `--staging-override`.
    #[default]
    Dm,
    /// Octopod's: `create update archive unarchive check cleanup archive_check config_check
    /// info notifications`, with `--application-config` / `--deployment-config`.
    Octopod,
}

super::spelling::spelled!(Dialect, "dialect", { Dm => "dm", Octopod => "octopod" });

impl Dialect {
    /// The dialect's scripts and the environment variable that may name each one's path, in
    /// the order of its documentation.
    pub fn scripts(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Dialect::Dm => &[
                ("create", "CREATION_COMMAND"),
                ("update", "UPDATE_COMMAND"),
                ("delete", "DELETION_COMMAND"),
                ("check", "CHECKING_COMMAND"),
                ("cleanup", "CLEANUP_COMMAND"),
                ("archive_check", "ARCHIVE_CHECKING_COMMAND"),
                ("tag_check", "TAG_CHECKING_COMMAND"),
            ],
            Dialect::Octopod => &[
                ("create", "CREATION_COMMAND"),
                ("update", "UPDATE_COMMAND"),
                ("archive", "ARCHIVE_COMMAND"),
                ("unarchive", "UNARCHIVE_COMMAND"),
                ("check", "CHECKING_COMMAND"),
                ("cleanup", "CLEANUP_COMMAND"),
                ("archive_check", "ARCHIVE_CHECKING_COMMAND"),
                ("config_check", "CONFIG_CHECKING_COMMAND"),
                ("info", "INFO_COMMAND"),
                ("notifications", "NOTIFICATION_COMMAND"),
            ],
        }
    }
}

/// When a command's status settles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Settle {
    /// As DM: pending until `check` (for a delete, `archive_check`) passes, polled by
    /// `reconcile`, Failure after the pending timeout.
    #[default]
    Check,
    /// On the script's exit: 0 is Running (Archived for a delete) at once.
    Exit,
}

super::spelling::spelled!(Settle, "settle", { Check => "check", Exit => "exit" });

/// The `--namespace` scripts get: one fixed namespace, or a pattern in which `{name}` stands
/// for the staging name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScriptNamespace {
    /// The same namespace for every staging.
    Fixed(String),
    /// A pattern holding `{name}` (`stg-{name}`).
    Pattern(String),
}

impl Default for ScriptNamespace {
    fn default() -> Self {
        ScriptNamespace::Fixed(DEFAULT_SCRIPT_NAMESPACE.into())
    }
}

impl ScriptNamespace {
    /// A pattern if `text` holds `{name}`, else a fixed namespace. `InvalidArgument` for an
    /// empty value, whitespace or control characters, or braces other than `{name}`.
    pub fn parse(text: &str) -> Result<ScriptNamespace> {
        let bad = |rule: &str| Error::InvalidArgument {
            what: "namespace",
            reason: format!("{:?}: {rule}", crate::error::shown(text)),
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("no whitespace or control characters"));
        }
        let rest = text.replace("{name}", "");
        if rest.contains(['{', '}']) {
            return Err(bad("the only placeholder is `{name}`"));
        }
        Ok(if rest.len() == text.len() {
            ScriptNamespace::Fixed(text.into())
        } else {
            ScriptNamespace::Pattern(text.into())
        })
    }

    /// The namespace of staging `name`.
    pub fn resolve(&self, name: &str) -> String {
        match self {
            ScriptNamespace::Fixed(ns) => ns.clone(),
            ScriptNamespace::Pattern(p) => p.replace("{name}", name),
        }
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        match self {
            ScriptNamespace::Fixed(s) | ScriptNamespace::Pattern(s) => s,
        }
    }
}

/// Parse what an `info` script printed: a two-column CSV of names and URLs (`app,https://…`),
/// one pair a line; fields may be double-quoted (`"a,b"`, `""` for a quote); empty lines are
/// skipped. `InvalidArgument` naming the first line that is not two columns.
pub fn parse_info_csv(text: &str) -> Result<Vec<NamedUrl>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let fields =
            csv_fields(line)
                .filter(|f| f.len() == 2)
                .ok_or_else(|| Error::InvalidArgument {
                    what: "info output",
                    reason: format!(
                        "line {}: expected two columns (name,url): {:?}",
                        i + 1,
                        crate::error::shown(line)
                    ),
                })?;
        let [name, url]: [String; 2] = fields.try_into().expect("two fields");
        out.push(NamedUrl {
            name: name.trim().to_string(),
            url: url.trim().to_string(),
        });
    }
    Ok(out)
}

/// The fields of one CSV line (`None`: an unterminated quote).
fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            (false, ',') => fields.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(cur);
    Some(fields)
}

/// Octopod's name for a status (`--old-status`, `--new-status`): Failure is `GenericFailure`,
/// `PartialAvailability`, `TagMismatch` or `CleanupFailed` after its reason; DeletePending is
/// `ArchivePending`.
pub fn octopod_status(status: Status, reason: Option<&str>) -> &'static str {
    match status {
        Status::Running => "Running",
        Status::CreatePending => "CreatePending",
        Status::UpdatePending => "UpdatePending",
        Status::DeletePending => "ArchivePending",
        Status::Archived => "Archived",
        Status::Failure => {
            let r = reason.unwrap_or_default();
            if r.contains(OCTOPOD_PARTIAL) {
                "PartialAvailability"
            } else if r.contains(OCTOPOD_TAG_MISMATCH) {
                "TagMismatch"
            } else if r.starts_with("cleanup ") {
                "CleanupFailed"
            } else {
                "GenericFailure"
            }
        }
    }
}

const OCTOPOD_GENERIC: &str = "generic failure";
const OCTOPOD_PARTIAL: &str = "partial availability";
const OCTOPOD_TAG_MISMATCH: &str = "tag mismatch";

/// What Octopod's `check` exit code means.
fn octopod_check_meaning(code: i32) -> &'static str {
    match code {
        2 => OCTOPOD_PARTIAL,
        3 => OCTOPOD_TAG_MISMATCH,
        _ => OCTOPOD_GENERIC,
    }
}

/// The control-script backend ([module documentation](self)).
#[derive(Debug, Clone)]
pub struct ScriptDeployer {
    dir: PathBuf,
    dialect: Dialect,
    /// Script paths named by environment variables, by script name.
    paths: BTreeMap<&'static str, PathBuf>,
    namespace: ScriptNamespace,
    settle: Settle,
    project_name: String,
    base_domain: String,
    timeout: Duration,
    output_limit: usize,
}

/// What one script run gave: the reply, and its stdout alone (scrubbed, bounded).
struct Run {
    reply: BackendReply,
    stdout: String,
}

impl ScriptDeployer {
    /// DM's scripts in `dir`; project name `capsa`, base domain `localhost`, namespace
    /// [`DEFAULT_SCRIPT_NAMESPACE`], statuses settled by check, a 600 s timeout per call,
    /// 16 KiB kept of the head and of the tail of each output stream.
    pub fn new(dir: impl Into<PathBuf>) -> ScriptDeployer {
        ScriptDeployer {
            dir: dir.into(),
            dialect: Dialect::Dm,
            paths: BTreeMap::new(),
            namespace: ScriptNamespace::default(),
            settle: Settle::default(),
            project_name: super::DEFAULT_PROJECT_NAME.into(),
            base_domain: super::DEFAULT_BASE_DOMAIN.into(),
            timeout: super::DEFAULT_SCRIPT_TIMEOUT,
            output_limit: 16 * 1024,
        }
    }

    /// Set the dialect (which scripts, which arguments). Paths set from the environment for
    /// the previous dialect are dropped.
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        if dialect != self.dialect {
            self.paths.clear();
        }
        self.dialect = dialect;
        self
    }

    /// Take each script's path from the dialect's environment variable for it when `lookup`
    /// gives a non-empty value (DM's `CREATION_COMMAND` and siblings, [`Dialect::scripts`]);
    /// the others stay `DIR/<script name>`. [`super::BackendSpec::deployer`] passes the
    /// process environment.
    pub fn with_env_locations(mut self, lookup: impl Fn(&str) -> Option<OsString>) -> Self {
        for (script, var) in self.dialect.scripts() {
            if let Some(v) = lookup(var).filter(|v| !v.is_empty()) {
                self.paths.insert(script, PathBuf::from(v));
            }
        }
        self
    }

    /// Set `--namespace`.
    pub fn with_namespace(mut self, namespace: ScriptNamespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Set when statuses settle.
    pub fn with_settle(mut self, settle: Settle) -> Self {
        self.settle = settle;
        self
    }

    /// Set `--project-name`.
    pub fn with_project_name(mut self, name: impl Into<String>) -> Self {
        self.project_name = name.into();
        self
    }

    /// Set `--base-domain`.
    pub fn with_base_domain(mut self, domain: impl Into<String>) -> Self {
        self.base_domain = domain.into();
        self
    }

    /// Set the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Set how many bytes of the head and of the tail of each stream are kept.
    pub fn with_output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = bytes.max(16);
        self
    }

    /// The scripts directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The path run for `script` (a script name of the dialect): the one its environment
    /// variable named, else `DIR/<script>`.
    pub fn script_path(&self, script: &str) -> PathBuf {
        self.paths
            .get(script)
            .cloned()
            .unwrap_or_else(|| self.dir.join(script))
    }

    fn has(&self, script: &str) -> bool {
        self.script_path(script).is_file()
    }

    /// `--project-name P --base-domain D --namespace NS --name N`.
    fn base_args(&self, req: &DeployRequest) -> Vec<String> {
        vec![
            "--project-name".to_string(),
            self.project_name.clone(),
            "--base-domain".into(),
            self.base_domain.clone(),
            "--namespace".into(),
            self.namespace.resolve(&req.name),
            "--name".into(),
            req.name.clone(),
        ]
    }

    /// DM: the base arguments, then `--tag` if `tag`, then the overrides if `overrides`.
    fn dm_args(&self, req: &DeployRequest, tag: bool, overrides: bool) -> Vec<String> {
        let mut a = self.base_args(req);
        if tag {
            if let Some(t) = &req.tag {
                a.push("--tag".into());
                a.push(t.clone());
            }
        }
        if overrides {
            for (scope, flag) in [
                (Scope::App, "--app-env-override"),
                (Scope::Staging, "--staging-override"),
            ] {
                for o in req.overrides.iter().filter(|o| o.scope == scope) {
                    a.push(flag.into());
                    a.push(o.to_arg());
                }
            }
        }
        a
    }

    /// Octopod: the base arguments and the whole configuration (application, then
    /// deployment, the tag first among the latter).
    fn octopod_args(&self, req: &DeployRequest) -> Vec<String> {
        let mut a = self.base_args(req);
        for o in req.overrides.iter().filter(|o| o.scope == Scope::App) {
            a.push("--application-config".into());
            a.push(o.to_arg());
        }
        let staging: Vec<&Override> = req
            .overrides
            .iter()
            .filter(|o| o.scope == Scope::Staging)
            .collect();
        if let Some(t) = &req.tag {
            if !staging.iter().any(|o| o.key == OCTOPOD_TAG_KEY) {
                a.push("--deployment-config".into());
                a.push(format!("{OCTOPOD_TAG_KEY}={t}"));
            }
        }
        for o in staging {
            a.push("--deployment-config".into());
            a.push(o.to_arg());
        }
        a
    }

    /// The arguments of the lifecycle script `script` in this dialect.
    fn lifecycle_args(&self, script: &str, req: &DeployRequest) -> Vec<String> {
        match self.dialect {
            Dialect::Octopod => self.octopod_args(req),
            Dialect::Dm => match script {
                "create" | "update" => self.dm_args(req, true, true),
                "tag_check" => self.dm_args(req, true, false),
                _ => self.dm_args(req, false, false),
            },
        }
    }

    /// The arguments every script of the dialect gets for `req`, by script name, in
    /// [`Dialect::scripts`] order (`notifications` with a change from CreatePending to
    /// Running): what the contract tests compare with what strict scripts accept.
    pub fn arguments(&self, req: &DeployRequest) -> Vec<(&'static str, Vec<String>)> {
        self.dialect
            .scripts()
            .iter()
            .map(|(script, _)| {
                let args = if *script == "notifications" {
                    self.notification_args(req, Some(Status::CreatePending), Status::Running, None)
                } else {
                    self.lifecycle_args(script, req)
                };
                (*script, args)
            })
            .collect()
    }

    fn notification_args(
        &self,
        req: &DeployRequest,
        from: Option<Status>,
        to: Status,
        reason: Option<&str>,
    ) -> Vec<String> {
        let mut a = self.base_args(req);
        a.push("--old-status".into());
        // The failure reason of the old status is not at hand: a failure is generic.
        a.push(from.map_or("", |s| octopod_status(s, None)).into());
        a.push("--new-status".into());
        a.push(octopod_status(to, reason).into());
        a
    }

    async fn lifecycle(&self, script: &str, req: &DeployRequest) -> BackendReply {
        self.run(script, req, self.lifecycle_args(script, req))
            .await
            .reply
    }

    /// Run `script`. The private values of `req` are masked in what the script printed before
    /// anything of it is cut, so no fragment of one shows at a cut edge.
    async fn run(&self, script: &str, req: &DeployRequest, args: Vec<String>) -> Run {
        let exe = self.script_path(script);
        if !exe.is_file() {
            return Run {
                reply: BackendReply::unavailable(format!(
                    "no {script} script at {}",
                    exe.display()
                )),
                stdout: String::new(),
            };
        }
        let call = script;
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Run {
                    reply: BackendReply::unavailable(format!("cannot run {}: {e}", exe.display())),
                    stdout: String::new(),
                }
            }
        };
        let pid = child.id();
        let out = Arc::new(Mutex::new(Capture::new(self.output_limit)));
        let err = Arc::new(Mutex::new(Capture::new(self.output_limit)));
        let readers = [
            tokio::spawn(drain(child.stdout.take(), out.clone())),
            tokio::spawn(drain(child.stderr.take(), err.clone())),
        ];
        let status = tokio::time::timeout(self.timeout, child.wait()).await;
        if status.is_err() {
            kill_group(pid, &mut child).await;
        }
        // A background process of the script may hold the pipes open: read what comes for a
        // short while after the script itself has ended, then stop.
        for mut r in readers {
            if tokio::time::timeout(Duration::from_secs(2), &mut r)
                .await
                .is_err()
            {
                r.abort();
            }
        }
        let take = |c: &Arc<Mutex<Capture>>| {
            c.lock()
                .unwrap_or_else(|p| p.into_inner())
                .render(&req.overrides)
        };
        let (out_s, err_s) = (take(&out), take(&err));
        let output = match (out_s.is_empty(), err_s.is_empty()) {
            (true, true) => String::new(),
            (false, true) => out_s.clone(),
            (true, false) => format!("[stderr]\n{err_s}"),
            (false, false) => format!("{out_s}\n[stderr]\n{err_s}"),
        };
        let tail = stderr_tail(&err_s);
        let (outcome, exit_code) = match status {
            Err(_) => (
                BackendOutcome::Unavailable {
                    reason: format!("{call} timed out after {} s", self.timeout.as_secs()),
                },
                None,
            ),
            Ok(Err(e)) => (
                BackendOutcome::Unavailable {
                    reason: format!("{call}: waiting for the script failed: {e}"),
                },
                None,
            ),
            Ok(Ok(st)) => match st.code() {
                Some(0) => (BackendOutcome::Success, Some(0)),
                Some(EXIT_TEMPFAIL) => (
                    BackendOutcome::Unavailable {
                        reason: format!(
                            "{call} exited with {EXIT_TEMPFAIL} (temporary failure){tail}"
                        ),
                    },
                    Some(EXIT_TEMPFAIL),
                ),
                Some(code) => (
                    BackendOutcome::Failed {
                        reason: format!("{call} exited with code {code}{tail}"),
                    },
                    Some(code),
                ),
                None => (
                    BackendOutcome::Failed {
                        reason: format!("{call} was killed by a signal{tail}"),
                    },
                    None,
                ),
            },
        };
        tracing::debug!(call, ?exit_code, "script finished");
        Run {
            reply: BackendReply {
                outcome,
                exit_code,
                output,
            },
            stdout: out_s,
        }
    }
}

fn stderr_tail(err: &str) -> String {
    const TAIL: usize = 500;
    let t = err.trim_end();
    if t.is_empty() {
        return String::new();
    }
    let mut start = t.len().saturating_sub(TAIL);
    while !t.is_char_boundary(start) {
        start += 1;
    }
    format!(": {}", &t[start..])
}

async fn kill_group(pid: Option<u32>, child: &mut tokio::process::Child) {
    if let Some(pid) = pid {
        // The script leads a process group of its own (we created it).
        crate::sys::kill_process_group(pid);
    }
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

async fn drain<R: AsyncRead + Unpin>(stream: Option<R>, cap: Arc<Mutex<Capture>>) {
    let Some(mut s) = stream else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => cap
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(&buf[..n]),
        }
    }
}

/// Keeps the first `limit` and the last `limit` bytes of a stream, counting the rest.
struct Capture {
    limit: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
    /// Write position in `tail` once it is full (a ring).
    pos: usize,
    total: u64,
}

impl Capture {
    fn new(limit: usize) -> Capture {
        Capture {
            limit,
            head: Vec::new(),
            tail: Vec::new(),
            pos: 0,
            total: 0,
        }
    }

    fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.head.len() < self.limit {
            let n = (self.limit - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if data.len() >= self.limit {
            self.tail.clear();
            self.tail
                .extend_from_slice(&data[data.len() - self.limit..]);
            self.pos = 0;
            return;
        }
        if self.tail.len() < self.limit {
            let n = (self.limit - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        while !data.is_empty() {
            let n = (self.limit - self.pos).min(data.len());
            self.tail[self.pos..self.pos + n].copy_from_slice(&data[..n]);
            self.pos = (self.pos + n) % self.limit;
            data = &data[n..];
        }
    }

    /// What was kept, private values of `overrides` masked (fragments at the cut edges too).
    fn render(&self, overrides: &[Override]) -> String {
        let mut tail = Vec::with_capacity(self.tail.len());
        tail.extend_from_slice(&self.tail[self.pos..]);
        tail.extend_from_slice(&self.tail[..self.pos]);
        let kept = (self.head.len() + self.tail.len()) as u64;
        if self.total <= kept {
            let mut all = self.head.clone();
            all.extend_from_slice(&tail);
            return redact(&String::from_utf8_lossy(&all), overrides);
        }
        let mut s = redact_cut(&String::from_utf8_lossy(&self.head), overrides, false, true);
        s.push_str(&format!("\n[… {} bytes not kept …]\n", self.total - kept));
        s.push_str(&redact_cut(
            &String::from_utf8_lossy(&tail),
            overrides,
            true,
            false,
        ));
        s
    }
}

#[async_trait::async_trait]
impl Deployer for ScriptDeployer {
    fn name(&self) -> &str {
        match self.dialect {
            Dialect::Dm => "script",
            Dialect::Octopod => "octopod",
        }
    }
    async fn create(&self, req: &DeployRequest) -> BackendReply {
        self.lifecycle("create", req).await
    }
    async fn update(&self, req: &DeployRequest) -> BackendReply {
        self.lifecycle("update", req).await
    }
    async fn delete(&self, req: &DeployRequest) -> BackendReply {
        match self.dialect {
            Dialect::Dm => self.lifecycle("delete", req).await,
            Dialect::Octopod => self.lifecycle("archive", req).await,
        }
    }
    async fn check(&self, req: &DeployRequest) -> BackendReply {
        let mut reply = self.lifecycle("check", req).await;
        if self.dialect == Dialect::Octopod {
            if let (BackendOutcome::Failed { reason }, Some(code)) =
                (&mut reply.outcome, reply.exit_code)
            {
                *reason = format!("{}: {reason}", octopod_check_meaning(code));
            }
        }
        reply
    }
    async fn cleanup(&self, req: &DeployRequest) -> BackendReply {
        self.lifecycle("cleanup", req).await
    }
    async fn archive_check(&self, req: &DeployRequest) -> BackendReply {
        self.lifecycle("archive_check", req).await
    }
    /// DM: `tag_check`, Octopod: `config_check` (its stdout is the refusal's reason); without
    /// the script every tag and configuration is accepted.
    async fn tag_check(&self, req: &DeployRequest) -> BackendReply {
        let script = match self.dialect {
            Dialect::Dm => "tag_check",
            Dialect::Octopod => "config_check",
        };
        if !self.has(script) {
            return BackendReply::success();
        }
        let Run { mut reply, stdout } = self
            .run(script, req, self.lifecycle_args(script, req))
            .await;
        if self.dialect == Dialect::Octopod {
            if let BackendOutcome::Failed { reason } = &mut reply.outcome {
                let said: Vec<&str> = stdout
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                if !said.is_empty() {
                    *reason = format!("config_check refused: {}", said.join("; "));
                }
            }
        }
        reply
    }
    /// DM: `create`; Octopod: `unarchive` where there is one, else `create`.
    async fn restore(&self, req: &DeployRequest) -> BackendReply {
        if self.dialect == Dialect::Octopod && self.has("unarchive") {
            return self.lifecycle("unarchive", req).await;
        }
        self.lifecycle("create", req).await
    }
    fn settles_by_check(&self) -> bool {
        self.settle == Settle::Check
    }
    fn validates_config(&self) -> bool {
        self.dialect == Dialect::Octopod
    }
    fn notifies(&self) -> bool {
        self.dialect == Dialect::Octopod && self.has("notifications")
    }
    /// Octopod's `notifications`, for every change but a creation or a removal.
    async fn notify(
        &self,
        req: &DeployRequest,
        from: Option<Status>,
        to: Option<Status>,
        reason: Option<&str>,
    ) -> BackendReply {
        let (Some(from), Some(to)) = (from, to) else {
            return BackendReply::success();
        };
        if !self.notifies() {
            return BackendReply::success();
        }
        let args = self.notification_args(req, Some(from), to, reason);
        self.run("notifications", req, args).await.reply
    }
    /// Octopod's `info` (no script: no URLs); `Unsupported` in the DM dialect, which has none.
    async fn info(&self, req: &DeployRequest) -> Result<Vec<NamedUrl>> {
        if self.dialect != Dialect::Octopod {
            return Err(Error::Unsupported {
                what: "staging info with DM's scripts (Octopod's `info` script has no DM \
                       counterpart)"
                    .into(),
            });
        }
        if !self.has("info") {
            return Ok(Vec::new());
        }
        let Run { reply, stdout } = self
            .run("info", req, self.lifecycle_args("info", req))
            .await;
        match reply.reason() {
            None => parse_info_csv(&stdout),
            Some(why) => Err(Error::Backend {
                backend: self.name().into(),
                message: format!("info: {}", crate::error::one_line(why)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{octopod_status, parse_info_csv, Capture, Dialect, Settle};
    use crate::staging::Status;

    #[test]
    fn info_csv_is_two_columns_of_names_and_urls() {
        let urls = parse_info_csv(
            "app,https://a.example\n\n\"logs, all\",\"https://l.example/?q=\"\"x\"\"\"\r\n",
        )
        .unwrap();
        let pairs: Vec<(&str, &str)> = urls
            .iter()
            .map(|u| (u.name.as_str(), u.url.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("app", "https://a.example"),
                ("logs, all", "https://l.example/?q=\"x\"")
            ]
        );
        assert!(parse_info_csv("").unwrap().is_empty());
        for bad in ["app", "a,b,c", "a,\"b"] {
            let e = parse_info_csv(&format!("ok,https://x\n{bad}\n")).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidArgument, "{bad}");
            assert!(e.to_string().contains("line 2"), "{e}");
        }
    }

    #[test]
    fn octopod_status_names() {
        assert_eq!(
            octopod_status(Status::DeletePending, None),
            "ArchivePending"
        );
        assert_eq!(octopod_status(Status::Failure, None), "GenericFailure");
        assert_eq!(
            octopod_status(
                Status::Failure,
                Some("check: tag mismatch: check exited with code 3")
            ),
            "TagMismatch"
        );
        assert_eq!(
            octopod_status(Status::Failure, Some("check: partial availability: x")),
            "PartialAvailability"
        );
        assert_eq!(
            octopod_status(Status::Failure, Some("cleanup exited with code 1")),
            "CleanupFailed"
        );
    }

    #[test]
    fn dialect_and_settle_spellings() {
        for d in [Dialect::Dm, Dialect::Octopod] {
            assert_eq!(Dialect::parse(d.as_str()).unwrap(), d);
        }
        for s in [Settle::Check, Settle::Exit] {
            assert_eq!(Settle::parse(s.as_str()).unwrap(), s);
        }
        assert_eq!(
            Dialect::parse("DM").unwrap_err().code(),
            crate::ErrorCode::InvalidArgument
        );
        assert_eq!(
            Settle::parse("now").unwrap_err().code(),
            crate::ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn capture_keeps_head_and_tail() {
        let mut c = Capture::new(4);
        for chunk in [b"abc".as_slice(), b"defgh", b"ijklmn"] {
            c.push(chunk);
        }
        let s = c.render(&[]);
        assert!(s.starts_with("abcd"), "{s}");
        assert!(s.ends_with("klmn"), "{s}");
        assert!(s.contains("6 bytes not kept"), "{s}");
        let mut small = Capture::new(10);
        small.push(b"hello");
        assert_eq!(small.render(&[]), "hello");
    }
}
