//! TLS: a rustls server config (TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`) whose certificate is
//! swapped atomically when its files change on disk, including Kubernetes Secret volumes, which
//! replace a `..data` symlink instead of writing the files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::mpsc;

use crate::telemetry::Metrics;

/// Why a certificate pair was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The key does not fit the certificate, or rustls refused the pair.
    #[error("certificate {cert} and key {key} do not form a usable pair: {source}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
}

/// A loaded pair and its certificate's expiry.
pub struct Loaded {
    /// The pair, ready to serve.
    pub key: Arc<CertifiedKey>,
    /// notAfter of the leaf, Unix seconds.
    pub not_after: i64,
    /// The bytes it was read from, to notice real changes.
    fingerprint: (Vec<u8>, Vec<u8>),
}

/// Reads and checks a PEM certificate chain and key from files.
pub fn load_pair(cert: &Path, key: &Path) -> Result<Loaded, TlsError> {
    let read = |path: &Path| std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source });
    load_pem(read(cert)?, read(key)?, cert, key)
}

/// Checks a PEM certificate chain and key; `cert_name` and `key_name` name them in errors.
pub fn load_pem(cert_pem: Vec<u8>, key_pem: Vec<u8>, cert_name: &Path, key_name: &Path) -> Result<Loaded, TlsError> {
    let pem_err = |path: &Path, what: String| TlsError::Pem { path: path.to_path_buf(), what };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert_name, format!("not a PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(pem_err(cert_name, "holds no certificate".to_string()));
    }
    // The key's own error text is never logged beyond its kind: it is parsing secret material.
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| pem_err(key_name, "holds no usable PEM private key".to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, private, &provider).map_err(|source| TlsError::Pair {
        cert: cert_name.to_path_buf(),
        key: key_name.to_path_buf(),
        source,
    })?;
    let not_after = x509_parser::parse_x509_certificate(certified.cert[0].as_ref())
        .map(|(_, c)| c.validity().not_after.timestamp())
        .map_err(|e| pem_err(cert_name, format!("cannot read validity: {e}")))?;
    Ok(Loaded { key: Arc::new(certified), not_after, fingerprint: (cert_pem, key_pem) })
}

impl Loaded {
    /// True when this pair was read from exactly these bytes.
    pub fn is_from(&self, cert_pem: &[u8], key_pem: &[u8]) -> bool {
        self.fingerprint.0 == cert_pem && self.fingerprint.1 == key_pem
    }
}

/// The certificate rustls serves: swapped atomically, read on every handshake. Empty until a
/// first pair is set (handshakes fail then, and readiness is false).
#[derive(Debug, Default)]
pub struct CertSource {
    current: ArcSwapOption<CertifiedKey>,
}

impl ResolvesServerCert for CertSource {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

impl CertSource {
    /// An empty source.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Serves `loaded` from the next handshake on.
    pub fn set(&self, loaded: &Loaded, metrics: &Metrics) {
        self.current.store(Some(loaded.key.clone()));
        metrics.set_cert_expiry(loaded.not_after);
    }

    /// The certificate being served now.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }

    /// A rustls server config serving this source.
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Watches the files' directories (and polls every `poll`, for file systems that send no
    /// events) and swaps in a changed pair once it loads. A pair read mid-swap may not match
    /// yet, so a failure is retried a few times before the old pair is kept and an error logged.
    pub async fn watch_files(
        self: Arc<Self>,
        files: (PathBuf, PathBuf),
        first: Loaded,
        poll: Duration,
        metrics: Arc<Metrics>,
    ) {
        let (cert_path, key_path) = files;
        let (tx, mut rx) = mpsc::channel::<()>(1);
        let _watcher = fs_watcher(&[&cert_path, &key_path], tx);
        let mut last = first;
        let mut refused: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut ticker = tokio::time::interval(poll);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                Some(()) = rx.recv() => {}
            }
            let (Ok(cert), Ok(key)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) else { continue };
            if last.is_from(&cert, &key) || refused.as_ref().is_some_and(|(c, k)| *c == cert && *k == key) {
                metrics.cert_check("unchanged");
                continue;
            }
            match load_with_retry(&cert_path, &key_path).await {
                Ok(loaded) => {
                    metrics.cert_check("loaded");
                    self.set(&loaded, &metrics);
                    tracing::info!(cert = %cert_path.display(), not_after = loaded.not_after, "serving certificate reloaded");
                    last = loaded;
                    refused = None;
                }
                Err(error) => {
                    metrics.cert_check("refused");
                    tracing::error!(%error, "new certificate pair refused; the previous one keeps serving");
                    refused = Some((cert, key));
                }
            }
        }
    }
}

async fn load_with_retry(cert: &Path, key: &Path) -> Result<Loaded, TlsError> {
    let mut attempt = 0;
    loop {
        match load_pair(cert, key) {
            Ok(loaded) => return Ok(loaded),
            Err(e) if attempt >= 4 => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
        }
    }
}

fn fs_watcher(files: &[&Path], tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Only what can change a file's content wakes the reload. Reading the pair raises
        // open/access/close events in the same directory (and may touch atime): waking on those
        // made every reload trigger the next, a busy loop on one core.
        let relevant =
            event.is_ok_and(|e| !matches!(e.kind, EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))));
        if relevant {
            // A full channel already holds a wake-up: coalesce.
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| tracing::warn!(error = %e, "file watching unavailable; polling only"))
    .ok()?;
    let mut dirs: Vec<&Path> = files.iter().filter_map(|p| p.parent()).collect();
    dirs.dedup();
    for dir in dirs {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch certificate directory; polling only");
        }
    }
    Some(watcher)
}
