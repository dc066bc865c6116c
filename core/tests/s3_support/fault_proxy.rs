//! A fault-injecting HTTP/1.1 proxy in front of the test MinIO server, for the S3 promises
//! that a healthy server cannot show: a retry after a transient server error, and an object that
//! does not read back as it was written.
//!
//! Each request is read whole (headers and a `Content-Length` body), sent upstream on a fresh
//! connection with `Connection: close`, and the whole response is read back and returned, also
//! with `Connection: close`. The signed request is forwarded byte for byte (only the
//! unsigned `Connection` header is added), so MinIO checks the client's signature as usual.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the proxy does wrong.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Answer the first `n` requests `503 Service Unavailable` (a transient server error).
    UnavailableFirst(usize),
    /// Flip one byte in the body of every `206 Partial Content` response (ranged GETs).
    CorruptRangedReads,
}

/// A running proxy; it stops accepting when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    refused: Arc<AtomicUsize>,
    corrupted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Start a proxy to `upstream` (`http://host:port`) with `fault`.
    pub fn start(upstream: &str, fault: Fault) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let refused = Arc::new(AtomicUsize::new(0));
        let corrupted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, c, r, s) = (
            refused.clone(),
            corrupted.clone(),
            requests.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (up, c, d, r) = (upstream.clone(), c.clone(), d.clone(), r.clone());
                        std::thread::spawn(move || {
                            let _ = serve(
                                client,
                                &up,
                                fault,
                                &Counters {
                                    corrupted: &c,
                                    refused: &d,
                                    requests: &r,
                                },
                            );
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy {
            endpoint,
            refused,
            corrupted,
            requests,
            stop,
        }
    }

    /// Requests answered 503 so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Responses corrupted so far.
    pub fn corrupted(&self) -> usize {
        self.corrupted.load(Ordering::SeqCst)
    }

    /// Requests forwarded so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Read a message head (up to and including the blank line) and return (head, rest read).
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((buf, rest)));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// `head` with any `Connection` header replaced by `Connection: close`.
fn closing(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

struct Counters<'a> {
    corrupted: &'a AtomicUsize,
    refused: &'a AtomicUsize,
    requests: &'a AtomicUsize,
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    fault: Fault,
    counters: &Counters,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let Some((head, mut body)) = read_head(&mut client)? else {
        return Ok(());
    };
    let want = content_length(&head);
    while body.len() < want {
        let mut chunk = vec![0u8; (want - body.len()).min(1 << 20)];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let seen = counters.requests.fetch_add(1, Ordering::SeqCst);
    if let Fault::UnavailableFirst(n) = fault {
        if seen < n {
            counters.refused.fetch_add(1, Ordering::SeqCst);
            client.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&closing(&head))?;
    up.write_all(&body)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    let Some(end) = find(&response, b"\r\n\r\n") else {
        client.write_all(&response)?;
        return Ok(());
    };
    let (rhead, rbody) = response.split_at_mut(end + 4);
    let partial = rhead.starts_with(b"HTTP/1.1 206");
    if partial && matches!(fault, Fault::CorruptRangedReads) && !rbody.is_empty() {
        let mid = rbody.len() / 2;
        rbody[mid] ^= 0x55;
        counters.corrupted.fetch_add(1, Ordering::SeqCst);
    }
    client.write_all(&closing(rhead))?;
    client.write_all(rbody)?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
