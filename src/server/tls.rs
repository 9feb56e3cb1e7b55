//! TLS for the webhook listener: a rustls server config (TLS 1.2 and 1.3, ALPN `h2` then
//! `http/1.1`) serving the certificate source, and the reloader that swaps in a pair whose files
//! changed on disk, including Kubernetes Secret volumes, which replace a `..data` symlink instead
//! of writing the files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::serving::certificate::{CertSource, Loaded, TlsError, load_pair};
use crate::telemetry::Metrics;

/// A rustls server config serving this source.
pub fn server_config(source: &Arc<CertSource>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("ring supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(source.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Watches the files' directories (and polls every `poll`, for file systems that send no
/// events) and swaps in a changed pair once it loads. A pair read mid-swap may not match
/// yet, so a failure is retried a few times before the old pair is kept and an error logged.
pub async fn watch_files(
    source: Arc<CertSource>,
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
                source.set(&loaded, &metrics);
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
