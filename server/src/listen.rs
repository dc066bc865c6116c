//! The accept loop: plain HTTP/1.1 or TLS (rustls), with a limit on how long a client may take
//! to send its request head, and a graceful shutdown that lets requests in flight finish.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

use crate::auth::{Caller, Role};

/// A server certificate (PEM chain) and its key (PEM), and optionally the CA whose client
/// certificates identify callers (mutual TLS, as DM's command-line client).
#[derive(Debug, Clone)]
pub struct Tls {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
    /// With a CA (PEM), every client must present a certificate it signed; a request
    /// without a token is then the certificate's subject common name, with `client_role`.
    pub client_ca: Option<PathBuf>,
    /// The role of a caller identified by its certificate.
    pub client_role: Role,
}

/// The caller a verified client certificate names (its subject's common name).
#[derive(Debug, Clone)]
pub(crate) struct ClientCert(pub(crate) Caller);

fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    capsa::safe_file::read_small(path, capsa::safe_file::Links::Follow, 1 << 20, "TLS file")
        .map_err(|e| format!("{what}: {e}"))
}

impl Tls {
    /// The rustls configuration; a clear one-line error for a file that is missing or holds
    /// no certificate or key.
    pub fn config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let pem = read_pem("--tls-cert", &self.cert)?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--tls-cert {}: {e}", self.cert.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--tls-cert {}: no certificate in it",
                self.cert.display()
            ));
        }
        let pem = read_pem("--tls-key", &self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| format!("--tls-key {}: {e}", self.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let pem = read_pem("--client-ca", ca)?;
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(&pem) {
                    let c = c.map_err(|e| format!("--client-ca {}: {e}", ca.display()))?;
                    roots
                        .add(c)
                        .map_err(|e| format!("--client-ca {}: {e}", ca.display()))?;
                }
                if roots.is_empty() {
                    return Err(format!(
                        "--client-ca {}: no certificate in it",
                        ca.display()
                    ));
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| format!("--client-ca {}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut cfg = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// Counts what is open (connections, WebSockets) so that a shutdown can wait for it.
#[derive(Default)]
pub(crate) struct Tracker {
    open: std::sync::atomic::AtomicUsize,
    closed: tokio::sync::Notify,
}

/// One open thing, counted while it lives.
pub(crate) struct Entered(Arc<Tracker>);

impl Tracker {
    pub(crate) fn enter(self: &Arc<Self>) -> Entered {
        self.open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Entered(self.clone())
    }

    /// Wait until nothing is open, at most `grace`.
    pub(crate) async fn drained(&self, grace: Duration) {
        use std::sync::atomic::Ordering;
        let _ = tokio::time::timeout(grace, async {
            loop {
                let closed = self.closed.notified();
                if self.open.load(Ordering::SeqCst) == 0 {
                    return;
                }
                closed.await;
            }
        })
        .await;
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.closed.notify_waiters();
    }
}

/// Serve `router` on `listener` until `shutdown`, then wait at most `grace` for the
/// connections in flight.
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<(Arc<rustls::ServerConfig>, Role)>,
    header_timeout: Duration,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let connections = Arc::new(Tracker::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let client_role = tls.as_ref().map_or(Role::Read, |t| t.1);
    let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.0));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                // Out of descriptors and the like: back off, keep serving.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let open = connections.enter();
        let stop = stop.clone();
        match &acceptor {
            None => {
                tokio::spawn(async move {
                    connection(TokioIo::new(tcp), router, None, header_timeout, stop).await;
                    drop(open);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A handshake that never finishes is dropped like a slow request head.
                    match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let cert = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .and_then(|c| common_name(c.as_ref()))
                                .map(|name| {
                                    ClientCert(Caller {
                                        name,
                                        role: client_role,
                                    })
                                });
                            let io = TokioIo::new(stream);
                            connection(io, router, cert, header_timeout, stop).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                    drop(open);
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    connections.drained(grace).await;
    Ok(())
}

/// One connection: HTTP/1.1 with upgrades (WebSockets); on shutdown, the request in flight
/// finishes and the connection closes.
async fn connection<I>(
    io: TokioIo<I>,
    router: Router,
    cert: Option<ClientCert>,
    header_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt;
    let service = TowerToHyperService::new(router.map_request(
        move |mut req: axum::http::Request<hyper::body::Incoming>| {
            if let Some(c) = &cert {
                req.extensions_mut().insert(c.clone());
            }
            req
        },
    ));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = stop.wait_for(|s| *s) => None,
    };
    let result = match ended {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// The subject common name of a certificate (DER), if it has a usable one.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    let ok = !cn.is_empty()
        && cn.len() <= 64
        && cn
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    ok.then(|| cn.to_string())
}
