//! TLS for the webhook listener: a rustls server config (TLS 1.2 and 1.3, ALPN `h2` then
//! `http/1.1`) serving the certificate source, and the reloader that swaps in a pair whose files
//! changed on disk, including Kubernetes Secret volumes, which replace a `..data` symlink instead
//! of writing the files.

use std::ffi::{OsStr, OsString};
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
    let names: Vec<OsString> = files.iter().filter_map(|p| p.file_name()).map(OsStr::to_os_string).collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| wakes_reload(&e, &names)) {
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

/// Whether a file event in a watched directory can change the pair named `names`.
///
/// Only what can change content counts: reading the pair raises open/access/close events in the
/// same directory (and may touch atime), and waking on those made every reload trigger the next,
/// a busy loop on one core. And only the pair's own files count, or the names a Kubernetes Secret
/// volume swaps (`..data`, `..data_tmp`, the timestamped `..2026_…` directories): anything else in
/// the directory (a log file written every few milliseconds) would wake a reload each time. An
/// event without paths (the watcher lost track and asks for a rescan) counts.
fn wakes_reload(event: &notify::Event, names: &[OsString]) -> bool {
    if matches!(event.kind, EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))) {
        return false;
    }
    let ours = |path: &PathBuf| {
        path.file_name()
            .is_none_or(|name| names.iter().any(|n| n == name) || name.as_encoded_bytes().starts_with(b".."))
    };
    event.paths.is_empty() || event.paths.iter().any(ours)
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind, RenameMode};

    use super::*;

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_changes_to_the_pair_or_a_secret_volume_swap_wake_the_reload() {
        let names = [OsString::from("tls.crt"), OsString::from("tls.key")];
        let data = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let wakes = |e: notify::Event| wakes_reload(&e, &names);
        assert!(wakes(event(data, "/certs/tls.crt")));
        assert!(wakes(event(EventKind::Create(CreateKind::File), "/certs/tls.key")));
        // A Secret volume update: a new timestamped directory, then `..data_tmp` renamed to `..data`.
        assert!(wakes(event(EventKind::Create(CreateKind::Folder), "/certs/..2026_11_30_15_00_00.123")));
        assert!(wakes(event(EventKind::Modify(ModifyKind::Name(RenameMode::To)), "/certs/..data")));
        assert!(wakes(notify::Event::new(EventKind::Other)), "a rescan without paths");
        // Reading the pair, touching its metadata, or writing another file in the directory.
        assert!(!wakes(event(EventKind::Access(AccessKind::Read), "/certs/tls.crt")));
        assert!(!wakes(event(EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)), "/certs/tls.key")));
        assert!(!wakes(event(data, "/certs/harness-guard.log")));
        assert!(!wakes(event(EventKind::Create(CreateKind::File), "/certs/ca.crt")));
    }
}
