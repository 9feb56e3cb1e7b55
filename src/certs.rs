//! Certificates for the built-in default and for `harness-guard certs`: a CA and a serving pair
//! made with rcgen, written as PEM files the way a Kubernetes TLS Secret mounts them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// File names inside a certificate directory.
pub const CA_CERT: &str = "ca.crt";
/// The CA's key (kept so the pair can be re-issued under the same CA).
pub const CA_KEY: &str = "ca.key";
/// The serving certificate.
pub const TLS_CERT: &str = "tls.crt";
/// The serving key.
pub const TLS_KEY: &str = "tls.key";

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused.
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The files could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A CA and a serving pair, as PEM.
pub struct Bundle {
    /// CA certificate.
    pub ca_cert: String,
    /// CA key.
    pub ca_key: String,
    /// Serving certificate (leaf only).
    pub cert: String,
    /// Serving key.
    pub key: String,
}

/// Makes a CA valid for `validity` and a serving certificate for `dns_names` (IP literals become
/// IP SANs) signed by it.
pub fn generate(dns_names: &[String], validity: Duration) -> Result<Bundle, CertError> {
    let now = time::OffsetDateTime::now_utc();
    let not_after = now + validity;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "harness-guard CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca_params.not_before = now - Duration::from_secs(300);
    ca_params.not_after = not_after;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(dns_names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, dns_names.first().cloned().unwrap_or_default());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_before = now - Duration::from_secs(300);
    params.not_after = not_after;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Bundle { ca_cert: ca_cert.pem(), ca_key: ca_key_pem, cert: cert.pem(), key: key.serialize_pem() })
}

impl Bundle {
    /// Writes the four files into `dir` (created if needed); keys are readable by the owner only.
    pub fn write(&self, dir: &Path) -> Result<(), CertError> {
        let fail = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CertError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(fail(dir))?;
        for (name, text, private) in [
            (CA_CERT, &self.ca_cert, false),
            (CA_KEY, &self.ca_key, true),
            (TLS_CERT, &self.cert, false),
            (TLS_KEY, &self.key, true),
        ] {
            let path = dir.join(name);
            write_file(&path, text, private).map_err(fail(&path))?;
        }
        Ok(())
    }
}

fn write_file(path: &Path, text: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())
}

/// The built-in default's certificates: reused from `dir` when a valid pair is there, made and
/// written otherwise. Returns the paths of the serving certificate and key.
pub fn ensure_dev_certs(dir: &Path) -> Result<(PathBuf, PathBuf), CertError> {
    let (cert, key) = (dir.join(TLS_CERT), dir.join(TLS_KEY));
    let usable = crate::server::tls::load_pair(&cert, &key)
        .is_ok_and(|loaded| loaded.not_after > time::OffsetDateTime::now_utc().unix_timestamp() + 86_400);
    if !usable || !dir.join(CA_CERT).exists() {
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
        generate(&names, Duration::from_secs(365 * 86_400))?.write(dir)?;
    }
    Ok((cert, key))
}
