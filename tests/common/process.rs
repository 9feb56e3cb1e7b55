//! The real binary as a child process, for signal tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

/// `harness-guard serve` as a child process: its addresses read from its start-up banner.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    pub health: SocketAddr,
    pub ca: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Binary {
    /// On its built-in default, with a 1 s drain delay.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts it after `configure` has had its say on the command (environment, standard output).
    pub fn start_with(configure: impl FnOnce(&mut Command)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let mut command = Command::new(env!("CARGO_BIN_EXE_harness-guard"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["serve", "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0", "--drain-delay-seconds", "1"])
            .args(["--grace-period-seconds", "10", "--dev-cert-dir", certs.to_str().unwrap(), "--log-format", "json"])
            .args(["--manifests", "examples/cluster"])
            .stdout(Stdio::null());
        configure(&mut command);
        let mut binary = Self::launch(command);
        binary.ca = certs.join("ca.crt");
        binary._dir = Some(dir);
        binary
    }

    /// `harness-guard ARGS` (a `serve` command line, listening on port 0 or any port).
    pub fn serve(args: &[String]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_harness-guard"));
        command.current_dir(env!("CARGO_MANIFEST_DIR")).args(args).stdout(Stdio::null());
        Self::launch(command)
    }

    fn launch(mut command: Command) -> Self {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut find = |marker: &str| -> SocketAddr {
            for line in lines.by_ref() {
                if let Some(rest) = line.unwrap().split(marker).nth(1) {
                    return rest.split([' ', '/']).next().unwrap().parse().unwrap();
                }
            }
            panic!("the server never printed {marker}");
        };
        let (addr, health) = (find("webhooks on https://"), find("health and metrics on http://"));
        // Keep reading its stderr so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, addr, health, ca: PathBuf::new(), _dir: None }
    }

    /// SIGKILL: no drain, no goodbye.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) {
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within {limit:?} after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Opens a TLS connection and sends the headers and the first half of `body` to /validate: a
/// request the server has accepted and is reading.
pub async fn half_sent(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    body: &[u8],
) -> TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.unwrap();
    let head = format!(
        "POST /validate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body[..body.len() / 2]).await.unwrap();
    tls.flush().await.unwrap();
    tls
}

/// Sends the rest of `body` and reads the whole answer.
pub async fn finish(mut tls: TlsStream<tokio::net::TcpStream>, body: &[u8]) -> String {
    tls.write_all(&body[body.len() / 2..]).await.unwrap();
    tls.flush().await.unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

impl Drop for Binary {
    /// A test that fails leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
