//! Command hooks: an executable run for every status change.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::Failed;
use crate::staging::{Event, EventKind};

fn spell(s: Option<crate::staging::Status>) -> &'static str {
    s.map_or("none", |s| s.as_str())
}

/// Run `path --name N --old-status S --new-status S [--reason R]` with `body` on stdin, at most
/// `timeout` (then killed); exit 0 is delivered.
pub(super) async fn run(
    path: &Path,
    e: &Event,
    body: &[u8],
    timeout: Duration,
) -> Result<(), Failed> {
    let EventKind::StatusChanged { from, to, reason } = &e.kind else {
        return Ok(());
    };
    let mut cmd = tokio::process::Command::new(path);
    cmd.args([
        "--name",
        &e.name,
        "--old-status",
        spell(*from),
        "--new-status",
        spell(*to),
    ]);
    if let Some(r) = reason {
        cmd.args(["--reason", r]);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let fail = |why: String| Failed { why, retry: true };
    let mut child = cmd
        .spawn()
        .map_err(|err| fail(format!("cannot run {}: {err}", path.display())))?;
    let mut stdin = child.stdin.take();
    let waited = tokio::time::timeout(timeout, async {
        if let Some(s) = stdin.as_mut() {
            // A hook that does not read its stdin is fine.
            let _ = s.write_all(body).await;
        }
        drop(stdin);
        child.wait().await
    })
    .await;
    match waited {
        Err(_) => {
            let _ = child.kill().await;
            Err(fail(format!(
                "{} ran longer than {timeout:?}",
                path.display()
            )))
        }
        Ok(Err(err)) => Err(fail(format!("{}: {err}", path.display()))),
        Ok(Ok(st)) if st.success() => Ok(()),
        Ok(Ok(st)) => Err(fail(format!("{} exited with {st}", path.display()))),
    }
}
