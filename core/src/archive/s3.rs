//! Archives in S3-compatible buckets (AWS S3, MinIO, …) through the `object_store` crate.
//!
//! Configuration comes from the usual environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`,
//! `AWS_ENDPOINT_URL`), or from the URL's query (`s3://bucket/x.zip?endpoint=…&region=…`).
//! An `http://` endpoint is allowed (MinIO on loopback); requests are retried with
//! exponential backoff on transient errors (`CAPSA_S3_MAX_RETRIES`, default 5, within
//! `CAPSA_S3_RETRY_TIMEOUT` seconds, default 60).
//!
//! * Writing: one multipart upload to the final key, parts sent while the zip is written
//!   (bounded memory, no local copy); it is completed only after the last byte, so the object
//!   never appears half-written, and aborted on any failure or cancellation.
//! * Reading: ranged GETs of aligned blocks with a small read-ahead cache.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, MultipartUpload, ObjectStore, PutPayload, RetryConfig,
};
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use super::target::split_s3_url;
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// Bytes fetched per ranged GET.
const BLOCK: u64 = 4 << 20;
/// Blocks kept in the read cache (with read-ahead): at most 96 MiB.
const CACHE_BLOCKS: usize = 24;
/// Upload parts in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// Smallest upload part (S3 needs at least 5 MiB for all parts but the last).
const MIN_PART: u64 = 16 << 20;
/// S3 allows 10,000 parts; keep a margin.
const MAX_PARTS: u64 = 9_000;

/// One object in a bucket, with the client that reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub store: Arc<AmazonS3>,
    pub key: ObjectPath,
    pub bucket: String,
    pub url: String,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Bucket {
    /// Connect to the object named by `url` (no request is made yet).
    pub fn connect(url: &str) -> Result<Bucket> {
        let (bucket, key, query) = split_s3_url(url)?;
        // Client options first: `with_client_options` replaces them all (allow_http included).
        let mut builder = AmazonS3Builder::from_env()
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(300)),
            )
            .with_bucket_name(bucket);
        let mut endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .ok();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "endpoint" => endpoint = Some(v.to_string()),
                "region" => builder = builder.with_region(v),
                _ => {
                    return Err(Error::InvalidArgument {
                        what: "archive URL",
                        reason: format!("{url:?}: unknown option {k:?} (known: endpoint, region)"),
                    })
                }
            }
        }
        if let Some(ep) = &endpoint {
            builder = builder.with_endpoint(ep.as_str());
            if ep.starts_with("http://") {
                builder = builder.with_allow_http(true);
            }
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(10),
                base: 2.0,
            },
            max_retries: env_u64("CAPSA_S3_MAX_RETRIES", 5) as usize,
            retry_timeout: Duration::from_secs(env_u64("CAPSA_S3_RETRY_TIMEOUT", 60)),
        };
        let store = builder
            .with_retry(retry)
            .build()
            .map_err(|e| Error::InvalidArgument {
                what: "object storage configuration",
                reason: format!("{url}: {e}"),
            })?;
        let key = ObjectPath::parse(key).map_err(|e| Error::InvalidArgument {
            what: "archive URL",
            reason: format!("{url:?}: {e}"),
        })?;
        Ok(Bucket {
            store: Arc::new(store),
            key,
            bucket: bucket.to_string(),
            url: url.split('?').next().unwrap_or(url).to_string(),
        })
    }

    /// The object's size, or `None` if it does not exist (the bucket does).
    pub fn size(&self) -> Result<Option<u64>> {
        match block_on(self.store.head(&self.key)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => {
                // A HEAD has no body to say whether the bucket or the object is missing.
                self.check_bucket()?;
                Ok(None)
            }
            Err(
                e @ (object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }),
            ) => {
                // Nor whether the credentials are wrong or only this object is forbidden: a
                // listing's error body says which.
                self.check_bucket()?;
                Err(self.error("stat", e))
            }
            Err(e) => Err(self.error("stat", e)),
        }
    }

    /// Fails with `NotFound` (what: bucket) when the bucket does not exist.
    pub fn check_bucket(&self) -> Result<()> {
        let prefix = ObjectPath::from("capsa-bucket-probe");
        block_on(self.store.list_with_delimiter(Some(&prefix)))
            .map(|_| ())
            .map_err(|e| self.error("list", e))
    }

    /// Delete the object (best effort callers ignore the result).
    pub fn delete(&self) -> Result<()> {
        block_on(self.store.delete(&self.key)).map_err(|e| self.error("delete", e))
    }

    /// A capsa error for a failed request: missing bucket, bad credentials and access
    /// denied get their own clear wording.
    pub fn error(&self, op: &'static str, e: object_store::Error) -> Error {
        let mut text = format!("{e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let more = s.to_string();
            if !text.contains(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            source = s.source();
        }
        let text = one_line(&text);
        let io = |kind: io::ErrorKind, msg: String| Error::Io {
            op,
            path: self.url.clone().into(),
            cause: io::Error::new(kind, msg),
        };
        if text.contains("NoSuchBucket") {
            return Error::NotFound {
                what: "bucket",
                name: format!("{} (for {})", self.bucket, self.url),
            };
        }
        if text.contains("InvalidAccessKeyId") || text.contains("SignatureDoesNotMatch") {
            return io(
                io::ErrorKind::PermissionDenied,
                "bad credentials: the server does not accept the access key or secret \
                 (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
                    .into(),
            );
        }
        if ["InvalidTokenId", "InvalidToken", "ExpiredToken"]
            .iter()
            .any(|c| text.contains(c))
        {
            return io(
                io::ErrorKind::PermissionDenied,
                "bad credentials: the server does not accept the session token, or it has \
                 expired (check AWS_SESSION_TOKEN)"
                    .into(),
            );
        }
        match e {
            object_store::Error::NotFound { .. } => Error::NotFound {
                what: "archive",
                name: self.url.clone(),
            },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => io(
                io::ErrorKind::PermissionDenied,
                format!("access denied by the object store: {text}"),
            ),
            _ => io(
                io::ErrorKind::Other,
                format!("object store request failed (after retries): {text}"),
            ),
        }
    }
}

/// A server's answer as one line: an S3 XML error body becomes its `Code: Message`, and any
/// other control character is a space (an error line can never be split or forged).
fn one_line(text: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&format!("</{name}>"))?;
        Some(text[start..start + len].to_string())
    };
    let mut out = match (
        text.find("<?xml").or_else(|| text.find("<Error>")),
        tag("Code"),
    ) {
        (Some(at), Some(code)) => {
            let message = tag("Message").unwrap_or_default();
            format!("{}{code}: {message}", &text[..at])
        }
        _ => text.to_string(),
    };
    out = out
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    out
}

type Block = Arc<OnceCell<bytes::Bytes>>;

/// Reads an object by ranged GETs of [`BLOCK`]-aligned blocks; a miss also starts fetching
/// the next block, so sequential reading overlaps network and work.
pub(crate) struct BucketSource {
    bucket: Bucket,
    len: u64,
    cache: Mutex<VecDeque<(u64, Block)>>,
}

impl BucketSource {
    /// Open `url` for reading: `NotFound` for a missing bucket or object.
    pub fn open(url: &str) -> Result<BucketSource> {
        let bucket = Bucket::connect(url)?;
        let len = bucket.size()?.ok_or_else(|| Error::NotFound {
            what: "archive",
            name: bucket.url.clone(),
        })?;
        Ok(BucketSource {
            bucket,
            len,
            cache: Mutex::new(VecDeque::new()),
        })
    }

    fn slot(&self, block: u64) -> (Block, bool) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, b)) = cache.iter().find(|(k, _)| *k == block) {
            return (b.clone(), false);
        }
        let cell: Block = Arc::new(OnceCell::new());
        cache.push_back((block, cell.clone()));
        while cache.len() > CACHE_BLOCKS {
            cache.pop_front();
        }
        (cell, true)
    }

    fn fetch(
        bucket: &Bucket,
        len: u64,
        block: u64,
    ) -> impl std::future::Future<Output = object_store::Result<bytes::Bytes>> + Send + 'static
    {
        let store = bucket.store.clone();
        let key = bucket.key.clone();
        let start = block * BLOCK;
        let end = (start + BLOCK).min(len);
        async move { store.get_range(&key, start..end).await }
    }

    fn block(&self, block: u64) -> io::Result<bytes::Bytes> {
        let (cell, _) = self.slot(block);
        let next = block + 1;
        if next * BLOCK < self.len {
            let (ahead, fresh) = self.slot(next);
            if fresh {
                let fut = Self::fetch(&self.bucket, self.len, next);
                crate::runtime::runtime().spawn(async move {
                    let _ = ahead.get_or_try_init(|| fut).await;
                });
            }
        }
        let fut = Self::fetch(&self.bucket, self.len, block);
        block_on(cell.get_or_try_init(|| fut))
            .cloned()
            .map_err(|e| match self.bucket.error("read", e) {
                Error::Io { cause, .. } => cause,
                other => io::Error::other(other.to_string()),
            })
    }
}

impl super::source::Source for BucketSource {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len)
    }

    fn read_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        if offset.saturating_add(buf.len() as u64) > self.len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        while !buf.is_empty() {
            let b = self.block(offset / BLOCK)?;
            let at = (offset % BLOCK) as usize;
            if at >= b.len() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = buf.len().min(b.len() - at);
            buf[..n].copy_from_slice(&b[at..at + n]);
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// A multipart upload fed while the zip is written: parts of `part` bytes are sent as soon as
/// they fill, at most [`PARTS_IN_FLIGHT`] at a time (bounded memory). Completed by
/// [`BucketSink::finish`]; aborted by [`BucketSink::abort`], by any failure, and on drop.
pub(crate) struct BucketSink {
    pub bucket: Bucket,
    upload: Option<Box<dyn MultipartUpload>>,
    buf: Vec<u8>,
    part: usize,
    parts: usize,
    tasks: JoinSet<object_store::Result<()>>,
}

impl BucketSink {
    /// Start the upload; parts are sized so that `expected_bytes` fits in S3's part limit.
    pub fn start(bucket: Bucket, expected_bytes: u64) -> Result<BucketSink> {
        let part = (expected_bytes.saturating_add(64 << 20) / MAX_PARTS)
            .max(MIN_PART)
            .next_multiple_of(1 << 20) as usize;
        let upload = block_on(bucket.store.put_multipart(&bucket.key))
            .map_err(|e| bucket.error("start upload", e))?;
        Ok(BucketSink {
            bucket,
            upload: Some(upload),
            buf: Vec::with_capacity(part),
            part,
            parts: 0,
            tasks: JoinSet::new(),
        })
    }

    /// Wait until fewer than `limit` parts are in flight; the first failed part fails all.
    async fn drain(
        tasks: &mut JoinSet<object_store::Result<()>>,
        limit: usize,
    ) -> object_store::Result<()> {
        while !tasks.is_empty() && tasks.len() >= limit {
            match tasks.join_next().await {
                Some(Ok(r)) => r?,
                Some(Err(e)) => {
                    return Err(object_store::Error::Generic {
                        store: "S3",
                        source: Box::new(e),
                    })
                }
                None => break,
            }
        }
        Ok(())
    }

    fn send(&mut self, data: Vec<u8>) -> Result<()> {
        let Some(up) = self.upload.as_mut() else {
            return Err(Error::Cancelled);
        };
        if let Err(e) = block_on(Self::drain(&mut self.tasks, PARTS_IN_FLIGHT)) {
            let err = self.bucket.error("upload", e);
            self.abort();
            return Err(err);
        }
        let fut = up.put_part(PutPayload::from(data));
        self.tasks.spawn_on(fut, crate::runtime::runtime().handle());
        self.parts += 1;
        Ok(())
    }

    /// Queue bytes; full parts go out as they fill.
    pub fn write(&mut self, mut b: &[u8]) -> Result<()> {
        while !b.is_empty() {
            let n = (self.part - self.buf.len()).min(b.len());
            self.buf.extend_from_slice(&b[..n]);
            b = &b[n..];
            if self.buf.len() == self.part {
                let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part));
                self.send(full)?;
            }
        }
        Ok(())
    }

    /// Send the last part, wait for every part and complete the upload: only now does the
    /// object appear. Any failure aborts the upload.
    pub fn finish(&mut self) -> Result<()> {
        if !self.buf.is_empty() || self.parts == 0 {
            let last = std::mem::take(&mut self.buf);
            self.send(last)?;
        }
        let Some(mut up) = self.upload.take() else {
            return Err(Error::Cancelled);
        };
        let done = block_on(async {
            Self::drain(&mut self.tasks, 0).await?;
            up.complete().await.map(|_| ())
        });
        if let Err(e) = done {
            let err = self.bucket.error("complete upload", e);
            self.upload = Some(up);
            self.abort();
            return Err(err);
        }
        Ok(())
    }

    /// Abort the upload (its parts are deleted); nothing appears at the key.
    pub fn abort(&mut self) {
        if let Some(mut up) = self.upload.take() {
            let tasks = &mut self.tasks;
            if let Err(e) = block_on(async {
                tasks.shutdown().await;
                up.abort().await
            }) {
                tracing::warn!(url = %self.bucket.url, error = %e, "could not abort the multipart upload");
            }
        }
    }
}

impl Drop for BucketSink {
    fn drop(&mut self) {
        self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_server_error_body_becomes_one_line() {
        let text = "Error performing POST http://h/b/k in 1ms - 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied.</Message><Key>k</Key></Error>\n";
        assert_eq!(
            one_line(text),
            "Error performing POST http://h/b/k in 1ms - 403 Forbidden: AccessDenied: Access Denied."
        );
        assert_eq!(one_line("a\nb\r\x1b[31m"), "a b  [31m");
    }

    proptest::proptest! {
        /// Whatever a server answers, the error text is one line and never panics.
        #[test]
        fn any_server_answer_is_one_line(body in ".{0,200}", code in "[A-Za-z<>/]{0,20}") {
            let text = format!("x: <?xml?>\n<Error><Code>{code}</Code>{body}</Error>");
            for t in [text.as_str(), body.as_str()] {
                let line = one_line(t);
                proptest::prop_assert!(!line.chars().any(char::is_control), "{line:?}");
            }
        }
    }
}
