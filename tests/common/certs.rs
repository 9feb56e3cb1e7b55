//! Certificates for tests, and a Kubernetes Secret volume's layout for reload tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness_guard::certs::{Bundle, generate};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub fn bundle() -> Bundle {
    generate(&["localhost".to_string()], Duration::from_secs(86_400)).unwrap()
}

pub fn leaf_der(b: &Bundle) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(b.cert.as_bytes()).unwrap()
}

pub fn write_ca(dir: &Path, name: &str, b: &Bundle) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, &b.ca_cert).unwrap();
    path
}

/// Lays out a Kubernetes Secret volume version: `..<version>/{tls.crt,tls.key}`.
pub fn secret_version(dir: &Path, version: &str, cert: &str, key: &str) {
    let v = dir.join(version);
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("tls.crt"), cert).unwrap();
    std::fs::write(v.join("tls.key"), key).unwrap();
}

/// Points `..data` at `version` atomically, as the kubelet does (symlink, then rename over).
pub fn swap_data(dir: &Path, version: &str) {
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}
