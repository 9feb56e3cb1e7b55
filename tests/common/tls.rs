//! A real TLS client (rustls) speaking HTTP/1.1 or HTTP/2 (hyper) by ALPN, as kube-apiserver does.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Once};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Installs the process-wide crypto provider once, as `main` does.
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// HTTP version to negotiate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

/// The sending half of one connection; an HTTP/2 one can be cloned to send streams in parallel.
#[derive(Clone)]
pub enum Sender {
    /// HTTP/1.1: one request at a time (not cloneable in practice: clone only for H2).
    H1(Arc<tokio::sync::Mutex<http1::SendRequest<Full<Bytes>>>>),
    /// HTTP/2.
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    /// Sends a request and reads the whole answer.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<(Response<()>, Bytes), String> {
        let response = match self {
            Sender::H1(s) => {
                let mut s = s.lock().await;
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await
            }
        }
        .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((Response::from_parts(parts, ()), body))
    }
}

/// One TLS connection to the server.
pub struct Conn {
    sender: Sender,
    /// The leaf certificate the server presented.
    pub peer_cert: CertificateDer<'static>,
    /// The ALPN protocol the server chose.
    pub alpn: Option<Vec<u8>>,
    addr: SocketAddr,
}

/// A client config trusting the CA certificates in `ca_files`, offering `proto` by ALPN.
pub fn client_config(ca_files: &[&Path], proto: Proto) -> Arc<rustls::ClientConfig> {
    install_crypto();
    let mut roots = rustls::RootCertStore::empty();
    for ca in ca_files {
        for cert in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    // Every connection does a full handshake: a resumed session reports the certificate of the
    // session it resumes, which would hide a reload.
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = match proto {
        Proto::H1 => vec![b"http/1.1".to_vec()],
        Proto::H2 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Arc::new(config)
}

impl Conn {
    /// Connects and completes the TLS and HTTP handshakes, as `localhost`.
    pub async fn open(addr: SocketAddr, config: Arc<rustls::ClientConfig>, proto: Proto) -> Result<Self, String> {
        Self::open_as(addr, config, proto, "localhost").await
    }

    /// Connects, expecting the server certificate to cover `server_name`.
    pub async fn open_as(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        proto: Proto,
        server_name: &str,
    ) -> Result<Self, String> {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        // As a real client: no Nagle delay between a request's writes.
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let name = ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
        let tls = TlsConnector::from(config).connect(name, tcp).await.map_err(|e| e.to_string())?;
        let (_, session) = tls.get_ref();
        let peer_cert = session.peer_certificates().and_then(|c| c.first()).cloned().ok_or("no peer certificate")?;
        let alpn = session.alpn_protocol().map(|p| p.to_vec());
        let io = TokioIo::new(tls);
        let sender = match proto {
            Proto::H1 => {
                let (sender, conn) = http1::handshake(io).await.map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                Sender::H1(Arc::new(tokio::sync::Mutex::new(sender)))
            }
            Proto::H2 => {
                let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await.map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                Sender::H2(sender)
            }
        };
        Ok(Self { sender, peer_cert, alpn, addr })
    }

    /// The HTTP/2 sender, to share one connection between tasks.
    pub fn h2_sender(&self) -> Option<http2::SendRequest<Full<Bytes>>> {
        match &self.sender {
            Sender::H2(s) => Some(s.clone()),
            Sender::H1(_) => None,
        }
    }

    /// The sender, to send from several tasks (HTTP/2 streams share the connection).
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<(Response<()>, Bytes), String> {
        self.sender.send(req).await
    }

    /// POSTs a JSON body to `path` as kube-apiserver does.
    pub async fn post(&mut self, path: &str, body: impl Into<Bytes>) -> Result<(Response<()>, Bytes), String> {
        let req = Request::post(format!("https://{}{path}", self.addr))
            .header("content-type", "application/json")
            .header("accept", "application/json, */*")
            .header("user-agent", "kube-apiserver-admission")
            .body(Full::new(body.into()))
            .unwrap();
        self.send(req).await
    }
}
