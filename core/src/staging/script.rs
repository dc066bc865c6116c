//! DM's staging control scripts contract.
//!
//! A directory holds one executable per call: `create`, `update`, `delete`, `check`,
//! `cleanup`, `archive_check`, `tag_check`. Each is run (no shell: every argument is passed as
//! is, spaces and `=` included) as
//!
//! ```text
//! <dir>/<call> --project-name P --base-domain D --namespace NS --name N [--tag T]
//!              [--app-env-override K=V]... [--staging-override K=V]...
//! ```
//!
//! `--tag` is passed to `create`, `update`, `check` and `tag_check`; overrides to `create`
//! and `update` (restore runs `create` with the last settings). Exit status 0 is success,
//! 75 (`EX_TEMPFAIL`) means "could not find out" (a transient error: a `check` answering 75
//! changes nothing), any other status is a failure whose reason is the exit code and the tail
//! of stderr. stdout and stderr are read as they come, keeping only a bounded head and tail of
//! each, so a script printing gigabytes costs no memory. A script running past the timeout is
//! killed with its whole process group.
//!
//! Note that override values, private ones too, are visible to the scripts' own process
//! listing (`ps`) as DM's contract passes them as arguments.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{
    redact, redact_cut, BackendOutcome, BackendReply, DeployRequest, Deployer, Override, Scope,
};

/// Exit status meaning "transient error, no answer" (`EX_TEMPFAIL` from `sysexits.h`).
pub const EXIT_TEMPFAIL: i32 = 75;

/// The script backend.
#[derive(Debug, Clone)]
pub struct ScriptDeployer {
    dir: PathBuf,
    project_name: String,
    base_domain: String,
    timeout: Duration,
    output_limit: usize,
}

impl ScriptDeployer {
    /// Scripts in `dir`; project name `capsa`, base domain `localhost`, a 600 s timeout per
    /// call, 16 KiB kept of the head and of the tail of each output stream.
    pub fn new(dir: impl Into<PathBuf>) -> ScriptDeployer {
        ScriptDeployer {
            dir: dir.into(),
            project_name: super::DEFAULT_PROJECT_NAME.into(),
            base_domain: super::DEFAULT_BASE_DOMAIN.into(),
            timeout: super::DEFAULT_SCRIPT_TIMEOUT,
            output_limit: 16 * 1024,
        }
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

    fn args(&self, req: &DeployRequest, tag: bool, overrides: bool) -> Vec<String> {
        let mut a = vec![
            "--project-name".to_string(),
            self.project_name.clone(),
            "--base-domain".into(),
            self.base_domain.clone(),
            "--namespace".into(),
            req.namespace.clone(),
            "--name".into(),
            req.name.clone(),
        ];
        if tag {
            if let Some(t) = &req.tag {
                a.push("--tag".into());
                a.push(t.clone());
            }
        }
        if overrides {
            for scope in [Scope::App, Scope::Staging] {
                for o in req.overrides.iter().filter(|o| o.scope == scope) {
                    a.push(
                        match scope {
                            Scope::App => "--app-env-override",
                            Scope::Staging => "--staging-override",
                        }
                        .into(),
                    );
                    a.push(o.to_arg());
                }
            }
        }
        a
    }

    /// Run `call`. The private values of `req` are masked in what the script printed before
    /// anything of it is cut, so no fragment of one shows at a cut edge.
    async fn run(&self, call: &str, req: &DeployRequest, args: Vec<String>) -> BackendReply {
        let exe = self.dir.join(call);
        if !exe.is_file() {
            return BackendReply::unavailable(format!(
                "no {call} script in {}",
                self.dir.display()
            ));
        }
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
                return BackendReply::unavailable(format!("cannot run {}: {e}", exe.display()))
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
        BackendReply {
            outcome,
            exit_code,
            output,
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
        "script"
    }
    async fn create(&self, req: &DeployRequest) -> BackendReply {
        self.run("create", req, self.args(req, true, true)).await
    }
    async fn update(&self, req: &DeployRequest) -> BackendReply {
        self.run("update", req, self.args(req, true, true)).await
    }
    async fn delete(&self, req: &DeployRequest) -> BackendReply {
        self.run("delete", req, self.args(req, false, false)).await
    }
    async fn check(&self, req: &DeployRequest) -> BackendReply {
        self.run("check", req, self.args(req, true, false)).await
    }
    async fn cleanup(&self, req: &DeployRequest) -> BackendReply {
        self.run("cleanup", req, self.args(req, false, false)).await
    }
    async fn archive_check(&self, req: &DeployRequest) -> BackendReply {
        self.run("archive_check", req, self.args(req, false, false))
            .await
    }
    /// Without a `tag_check` script every tag is accepted.
    async fn tag_check(&self, req: &DeployRequest) -> BackendReply {
        if !self.dir.join("tag_check").is_file() {
            return BackendReply::success();
        }
        self.run("tag_check", req, self.args(req, true, false))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::Capture;

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
