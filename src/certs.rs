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
#[derive(Clone, PartialEq)]
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
/// IP SANs) signed by it, valid as long.
pub fn generate(dns_names: &[String], validity: Duration) -> Result<Bundle, CertError> {
    generate_with(dns_names, validity, validity)
}

/// Like [`generate`], with separate lifetimes for the CA and the serving certificate.
pub fn generate_with(
    dns_names: &[String],
    ca_validity: Duration,
    leaf_validity: Duration,
) -> Result<Bundle, CertError> {
    let (ca_cert, ca_key) = generate_ca(ca_validity)?;
    let (cert, key) = issue_leaf(&ca_cert, &ca_key, dns_names, leaf_validity)?;
    Ok(Bundle { ca_cert, ca_key, cert, key })
}

/// Makes a CA valid for `validity`: (certificate, key) as PEM. Each CA's subject is its own
/// (a random suffix), so a leaf's issuer tells which CA signed it across a rotation.
pub fn generate_ca(validity: Duration) -> Result<(String, String), CertError> {
    use ring::rand::SecureRandom;
    let now = time::OffsetDateTime::now_utc();
    let mut id = [0u8; 6];
    ring::rand::SystemRandom::new().fill(&mut id).map_err(|_| rcgen::Error::RingUnspecified)?;
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, format!("harness-guard CA {id}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = now - Duration::from_secs(300);
    params.not_after = now + validity;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?.pem();
    Ok((cert, key.serialize_pem()))
}

/// Issues a serving certificate for `dns_names` under an existing CA (PEM).
pub fn issue_leaf(
    ca_cert: &str,
    ca_key: &str,
    dns_names: &[String],
    validity: Duration,
) -> Result<(String, String), CertError> {
    let now = time::OffsetDateTime::now_utc();
    let issuer = Issuer::from_ca_cert_pem(ca_cert, KeyPair::from_pem(ca_key)?)?;
    let mut params = CertificateParams::new(dns_names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, dns_names.first().cloned().unwrap_or_default());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_before = now - Duration::from_secs(300);
    params.not_after = now + validity;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// What the certificate writer should do with the pair it found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// It is good: keep it.
    Keep,
    /// Issue a new serving certificate under the CA (the same one, so the caBundle does not
    /// change; or, after [`Plan::RotateCa`], the new one, once the caBundles trust it).
    RenewLeaf,
    /// The CA is near its end: make the next CA and trust it beside the old one, keeping the
    /// serving certificate; the leaf follows at a later check ([`Plan::RenewLeaf`]).
    RotateCa,
    /// Nothing usable (missing, unreadable, or expired): a new CA and serving certificate.
    NewCa,
}

/// Decides what to do with `found` at `now` (Unix seconds): renew the serving certificate
/// `renew_before` ahead of its expiry or when its names no longer fit, and the CA when it would
/// expire before a renewed serving certificate would.
pub fn plan(
    found: Option<&Bundle>,
    dns_names: &[String],
    now: i64,
    renew_before: Duration,
    leaf_validity: Duration,
) -> Plan {
    let Some(found) = found else { return Plan::NewCa };
    let (Some(ca), Some(leaf)) = (cert_facts(&found.ca_cert), cert_facts(&found.cert)) else { return Plan::NewCa };
    if ca.not_after <= now || leaf.not_after <= now {
        return Plan::NewCa;
    }
    if ca.not_after - now < i64::try_from(renew_before.saturating_add(leaf_validity).as_secs()).unwrap_or(i64::MAX) {
        return Plan::RotateCa;
    }
    let names_fit = dns_names.iter().all(|n| leaf.names.contains(n));
    if leaf.not_after - now < renew_before.as_secs() as i64 || !names_fit || leaf.issuer != ca.subject {
        return Plan::RenewLeaf;
    }
    Plan::Keep
}

/// True when `leaf` (PEM) was issued by `ca` (PEM), by name: each CA's subject is its own.
pub fn issued_by(leaf: &str, ca: &str) -> bool {
    cert_facts(leaf).zip(cert_facts(ca)).is_some_and(|(leaf, ca)| leaf.issuer == ca.subject)
}

/// The CAs (PEM, concatenated) the webhook configurations' `caBundle` must hold: `ca`, and each
/// other CA of `trusted` that has not expired and whose leaves a replica may still serve: the
/// `leaf` in the Secret is one, or was issued less than `settle` ago (every replica reloads the
/// Secret within that). So a rotation overlaps: the old CA stays until the new leaf is served
/// everywhere, then goes. Unreadable entries are dropped.
pub fn trust_bundle(trusted: &str, ca: &str, leaf: &str, now: i64, settle: Duration) -> String {
    let leaf_facts = cert_facts(leaf);
    // Certificates are backdated five minutes (clock skew): that is when it was issued.
    let leaf_issued = leaf_facts.as_ref().map_or(i64::MIN, |l| l.not_before + 300);
    let settled = now.saturating_sub(leaf_issued) >= i64::try_from(settle.as_secs()).unwrap_or(i64::MAX);
    let current = cert_facts(ca).map(|c| c.subject);
    let mut keep: Vec<pem::Pem> = Vec::new();
    for block in pem::parse_many(trusted).unwrap_or_default() {
        let Some(facts) = cert_facts(&pem::encode(&block)) else { continue };
        let serving = leaf_facts.as_ref().is_some_and(|l| l.issuer == facts.subject);
        let is_current = current.as_ref() == Some(&facts.subject);
        if !is_current && facts.not_after > now && (serving || !settled) && !keep.contains(&block) {
            keep.push(block);
        }
    }
    keep.extend(pem::parse_many(ca).unwrap_or_default().into_iter().take(1));
    pem::encode_many_config(&keep, pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

/// True when every block of `needed` (PEM) is among the blocks of `bundle` (PEM).
pub fn bundle_holds(bundle: &[u8], needed: &str) -> bool {
    let have = pem::parse_many(bundle).unwrap_or_default();
    pem::parse_many(needed).unwrap_or_default().iter().all(|n| have.contains(n))
}

struct CertFacts {
    not_before: i64,
    not_after: i64,
    names: Vec<String>,
    subject: String,
    issuer: String,
}

fn cert_facts(pem: &str) -> Option<CertFacts> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => ip_string(ip),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CertFacts {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        names,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
    })
}

fn ip_string(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
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
