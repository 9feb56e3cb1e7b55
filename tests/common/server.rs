//! Starts the real server (the same `app::start` as `main`) on loopback ports for a test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use harness_guard::app::{self, Running};
use harness_guard::config::{Cli, Command, ServeArgs};
use tokio::sync::oneshot;

/// A running server and the handle that starts its shutdown.
pub struct TestServer {
    pub running: Running,
    pub ca: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// Parses `serve` flags exactly as the binary would.
pub fn serve_args(extra: &[&str]) -> ServeArgs {
    let mut argv = vec!["harness-guard", "serve", "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"];
    argv.extend_from_slice(extra);
    match Cli::parse_from(argv).command {
        Command::Serve(args) => *args,
        _ => unreachable!("serve arguments parse as serve"),
    }
}

impl TestServer {
    /// The built-in default over `manifests` with certificates generated in a temporary directory.
    pub async fn builtin(manifests: &Path, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let mut flags = vec!["--manifests", manifests.to_str().unwrap(), "--dev-cert-dir", certs.to_str().unwrap()];
        flags.extend_from_slice(extra);
        let mut server = Self::start(serve_args(&flags)).await;
        server.ca = certs.join("ca.crt");
        server._dir = Some(dir);
        server
    }

    /// The built-in default's view, serving the pair in `cert`/`key` and checking it for changes
    /// every `poll_seconds` (file events also trigger a check).
    pub async fn on_files(cert: &Path, key: &Path, poll_seconds: &str) -> Self {
        let manifests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/cluster");
        Self::start(serve_args(&[
            "--manifests",
            manifests.to_str().unwrap(),
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
            "--cert-poll-seconds",
            poll_seconds,
        ]))
        .await
    }

    /// Cluster mode against the test's own API server, with dev certificates under `dir`.
    pub async fn cluster(api: &super::fake_apiserver::FakeApi, dir: &Path, extra: &[&str]) -> Self {
        let kubeconfig = api.kubeconfig(dir);
        let certs = dir.join("certs");
        let mut flags = vec!["--kubeconfig", kubeconfig.to_str().unwrap(), "--dev-cert-dir", certs.to_str().unwrap()];
        flags.extend_from_slice(extra);
        let mut server = Self::start(serve_args(&flags)).await;
        server.ca = certs.join("ca.crt");
        server
    }

    /// Starts with the given arguments.
    pub async fn start(args: ServeArgs) -> Self {
        super::tls::install_crypto();
        // HARNESS_GUARD_LOG=debug shows the server's logs while debugging a test.
        if std::env::var_os("HARNESS_GUARD_LOG").is_some() {
            // The writer lives as long as the test process.
            std::mem::forget(harness_guard::telemetry::init_tracing(Some(false)));
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let running = app::start(args, async move {
            let _ = stopped.await;
        })
        .await
        .expect("server starts");
        let ca = running.ca_file.clone().unwrap_or_default();
        Self { running, ca, stop: Some(stop), _dir: None }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.webhook_addr
    }

    /// Begins shutdown, as SIGTERM does.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits until `/readyz` answers 200, or panics after `limit`.
    pub async fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if health_get(self.running.health_addr, "/readyz").await.map(|(s, _)| s) == Some(200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server not ready within {limit:?}");
    }
}

/// GET on the plain-HTTP health port: (status, body).
pub async fn health_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use http_body_util::{BodyExt, Empty};
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.ok()?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path).header("host", "localhost").body(Empty::<hyper::body::Bytes>::new()).unwrap();
    let res = sender.send_request(req).await.ok()?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Polls `check` every 20 ms until it is true, or panics with `what` after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within {limit:?}");
}

/// The sum of the samples on `/metrics` whose series starts with `series` (a name, or a name and
/// the start of its labels): 0 when there are none. Tests poll counters with it instead of sleeping.
pub async fn metric(health: std::net::SocketAddr, series: &str) -> f64 {
    let (_, text) = health_get(health, "/metrics").await.expect("metrics answer");
    text.lines().filter(|l| l.starts_with(series)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}
