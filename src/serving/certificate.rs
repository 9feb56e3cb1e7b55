//! The serving certificate: loading and checking a PEM pair, and the source rustls reads on every
//! handshake, swapped atomically by whoever loads a new pair (the file reloader in `server`, the
//! self-signed reconcile in `cluster`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

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
}
