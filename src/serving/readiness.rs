//! Readiness: set by the parts that load a certificate and sync the view, read by `/readyz`.

use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness: a certificate loaded, the cluster view synced, and not shutting down.
#[derive(Debug, Default)]
pub struct Readiness {
    /// A serving certificate is loaded.
    pub cert_loaded: AtomicBool,
    /// The cluster view has completed its first list.
    pub view_synced: AtomicBool,
    /// SIGTERM or SIGINT received.
    pub shutting_down: AtomicBool,
}

impl Readiness {
    /// True when the server should receive traffic.
    pub fn is_ready(&self) -> bool {
        self.cert_loaded.load(Ordering::Acquire)
            && self.view_synced.load(Ordering::Acquire)
            && !self.shutting_down.load(Ordering::Acquire)
    }
}
