//! The TLS accept loop: rustls handshakes with a deadline, HTTP/1.1 or HTTP/2 by ALPN (hyper-util
//! auto), bounded header reads and stream counts, and a graceful drain on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::router::{SharedView, Webhooks};

/// Limits that keep one slow or greedy client from holding the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// A TLS handshake must finish within this.
    pub handshake: Duration,
    /// HTTP/1.1 request headers must arrive within this.
    pub header_read: Duration,
    /// Concurrent streams per HTTP/2 connection.
    pub max_streams: u32,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            max_streams: 256,
            grace: Duration::from_secs(25),
        }
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then stops accepting and lets
/// open connections finish their requests, for at most `limits.grace`.
pub async fn serve_tls<V: SharedView>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Webhooks<V>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, builder, app) = (acceptor.clone(), builder.clone(), app.clone());
        let watcher = graceful.watcher();
        let handshake = limits.handshake;
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = builder.serve_connection(TokioIo::new(stream), app);
            if let Err(error) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %error, "connection closed with error");
            }
        });
    }
    drop(listener);
    tracing::info!("stopped accepting; draining open connections");
    if tokio::time::timeout(limits.grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace = ?limits.grace, "grace period over; closing remaining connections");
    }
}
