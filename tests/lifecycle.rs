//! Certificate reload under a running server (file swap and a Secret volume's `..data` symlink
//! swap; a broken pair is refused), and SIGTERM with a request in flight.

mod common;

use std::time::Duration;

use common::certs::{bundle, leaf_der, secret_version, swap_data, write_ca};
use common::fixtures::repo_file;
use common::process::{Binary, finish, half_sent};
use common::server::{TestServer, eventually, health_get, metric};
use common::tls::{Conn, Proto, client_config};
use rustls::pki_types::CertificateDer;

async fn served_cert(server: &TestServer, config: &std::sync::Arc<rustls::ClientConfig>) -> CertificateDer<'static> {
    Conn::open(server.addr(), config.clone(), Proto::H2).await.unwrap().peer_cert
}

#[tokio::test]
async fn secret_volume_symlink_swap_and_broken_pair() {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("tls");
    std::fs::create_dir_all(&vol).unwrap();
    let (a, b, c) = (bundle(), bundle(), bundle());
    secret_version(&vol, "..2026_11_25_a", &a.cert, &a.key);
    swap_data(&vol, "..2026_11_25_a");
    std::os::unix::fs::symlink("..data/tls.crt", vol.join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", vol.join("tls.key")).unwrap();
    let cas: Vec<_> = [("a", &a), ("b", &b), ("c", &c)].iter().map(|(n, x)| write_ca(dir.path(), n, x)).collect();
    let config = client_config(&cas.iter().map(|p| p.as_path()).collect::<Vec<_>>(), Proto::H2);
    let (cert, key) = (vol.join("tls.crt"), vol.join("tls.key"));
    let server = TestServer::on_files(&cert, &key, "1").await;
    assert_eq!(served_cert(&server, &config).await, leaf_der(&a));

    // An open connection keeps working across the swap; new handshakes see the new pair.
    let mut open = Conn::open(server.addr(), config.clone(), Proto::H2).await.unwrap();
    secret_version(&vol, "..2026_11_25_b", &b.cert, &b.key);
    swap_data(&vol, "..2026_11_25_b");
    let want = leaf_der(&b);
    eventually(Duration::from_secs(10), "new certificate served after ..data swap", async || {
        served_cert(&server, &config).await == want
    })
    .await;
    let body = std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap();
    assert_eq!(open.post("/validate", body.clone()).await.unwrap().0.status(), 200);

    // A pair whose key does not match is refused; the previous pair keeps serving.
    let health = server.running.health_addr;
    let refused = "harness_guard_certificate_checks_total{result=\"refused\"}";
    secret_version(&vol, "..2026_11_25_c", &c.cert, &a.key);
    swap_data(&vol, "..2026_11_25_c");
    eventually(Duration::from_secs(10), "the broken pair refused", async || metric(health, refused).await >= 1.0).await;
    assert_eq!(served_cert(&server, &config).await, leaf_der(&b), "a broken pair must not be served");
    let mut conn = Conn::open(server.addr(), config.clone(), Proto::H1).await.unwrap();
    assert_eq!(conn.post("/validate", body).await.unwrap().0.status(), 200);

    // Fixing the pair is picked up.
    secret_version(&vol, "..2026_11_25_d", &c.cert, &c.key);
    swap_data(&vol, "..2026_11_25_d");
    let want = leaf_der(&c);
    eventually(Duration::from_secs(10), "fixed pair served", async || served_cert(&server, &config).await == want)
        .await;
}

#[tokio::test]
async fn plain_file_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (bundle(), bundle());
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &a.cert).unwrap();
    std::fs::write(&key, &a.key).unwrap();
    let cas = [write_ca(dir.path(), "a.pem", &a), write_ca(dir.path(), "b.pem", &b)];
    let config = client_config(&[&cas[0], &cas[1]], Proto::H1);
    // Long poll: the change must be noticed through file events.
    let server = TestServer::on_files(&cert, &key, "3600").await;
    assert_eq!(served_cert(&server, &config).await, leaf_der(&a));
    // Written in two steps: in between, cert and key do not match (retried, not refused).
    std::fs::write(&cert, &b.cert).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(&key, &b.key).unwrap();
    let want = leaf_der(&b);
    eventually(Duration::from_secs(10), "rewritten pair served", async || served_cert(&server, &config).await == want)
        .await;
}

/// The binary itself: SIGTERM turns readiness off, lets the request in flight finish, refuses
/// new connections after the drain delay, and exits 0.
#[tokio::test]
async fn sigterm_finishes_the_request_in_flight() {
    let mut server = Binary::start();
    let body = std::fs::read(repo_file("examples/reviews/harness-wrong-key.json")).unwrap();
    let config = client_config(&[&server.ca], Proto::H1);
    let in_flight = half_sent(server.addr, config.clone(), &body).await;
    server.sigterm();
    let health = server.health;
    eventually(Duration::from_secs(2), "readiness false after SIGTERM", async || {
        health_get(health, "/readyz").await.map(|(s, _)| s) == Some(503)
    })
    .await;
    // After the drain delay (1 s) the listener is closed: new connections are refused.
    let addr = server.addr;
    eventually(Duration::from_secs(5), "listener closed after the drain delay", async || {
        Conn::open(addr, config.clone(), Proto::H1).await.is_err()
    })
    .await;
    let answer = finish(in_flight, &body).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"code\":403"), "{answer}");
    let exit = server.exit(Duration::from_secs(15)).await;
    assert!(exit.success(), "exit status {exit:?}");
}

/// While draining, an HTTP/1.1 answer closes its connection (the client's next call opens a new
/// one, to a ready replica), so no idle keep-alive connection is left for the final close to race
/// a request on; HTTP/2 answers go on as usual (GOAWAY comes at the close).
#[tokio::test]
async fn answers_during_the_drain_close_http1_connections() {
    let mut server = Binary::start();
    let body = std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap();
    let mut h1 = Conn::open(server.addr, client_config(&[&server.ca], Proto::H1), Proto::H1).await.unwrap();
    let mut h2 = Conn::open(server.addr, client_config(&[&server.ca], Proto::H2), Proto::H2).await.unwrap();
    let (before, _) = h1.post("/validate", body.clone()).await.unwrap();
    assert!(before.headers().get("connection").is_none(), "keep-alive while serving");
    server.sigterm();
    let health = server.health;
    eventually(Duration::from_secs(2), "readiness false after SIGTERM", async || {
        health_get(health, "/readyz").await.map(|(s, _)| s) == Some(503)
    })
    .await;
    let (during, _) = h1.post("/validate", body.clone()).await.unwrap();
    assert_eq!(during.status(), 200);
    assert_eq!(during.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"));
    assert!(h1.post("/validate", body.clone()).await.is_err(), "the connection was closed after the answer");
    let (answer, _) = h2.post("/validate", body).await.unwrap();
    assert_eq!(answer.status(), 200, "HTTP/2 answers carry no connection header and still work");
    assert!(answer.headers().get("connection").is_none());
    server.exit(Duration::from_secs(15)).await;
}

/// CPU time (user + system) the process `pid` has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test]
async fn an_idle_server_stays_idle() {
    // Regression: reading the certificate pair raised inotify access events in its directory,
    // which woke the reload, which read the pair again: one core busy forever.
    let mut server = Binary::start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cpu_ticks(server.child.id());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(server.child.id()) - before;
    server.sigterm();
    server.exit(Duration::from_secs(15)).await;
    // 2 s idle: well under a tenth of a core (ticks are 1/100 s).
    assert!(used < 20, "an idle server used {used} ticks of CPU in 2 s");
}

#[tokio::test]
async fn the_runtime_runs_the_worker_threads_it_is_given() {
    // As many as it is told (flag or environment); by default the CPUs it may use, at most four, so
    // that a large node's core count does not set the allocator caches it keeps. The `serving` log
    // line says how many the runtime has.
    for (workers, expected) in [(Some("3"), 3), (None, harness_guard::config::worker_threads(None))] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let stdout = std::fs::File::create(&log).unwrap();
        let mut server = Binary::start_with(|command| {
            command.env_remove("HARNESS_GUARD_WORKER_THREADS").stdout(stdout);
            if let Some(n) = workers {
                command.env("HARNESS_GUARD_WORKER_THREADS", n);
            }
        });
        let mut serving = None;
        for _ in 0..100 {
            let text = std::fs::read_to_string(&log).unwrap();
            // Read while the log thread writes: a last line may be half written yet.
            serving = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|l| l["message"] == "serving");
            if serving.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let serving = serving.expect("a `serving` log line");
        assert_eq!(serving["worker_threads"], expected, "HARNESS_GUARD_WORKER_THREADS={workers:?}: {serving}");
        server.sigterm();
        server.exit(Duration::from_secs(15)).await;
    }
}

/// Other files beside the pair (a log file, written every few milliseconds) never wake the
/// certificate reload; a write to the pair does. Regression: `loadgen` wrote its server's log next
/// to the pair (it keeps it apart now), and every batch of log lines made the server read and compare
/// the pair again.
#[tokio::test]
async fn only_the_pair_wakes_the_certificate_reload() {
    let dir = tempfile::tempdir().unwrap();
    let pair = bundle();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &pair.cert).unwrap();
    std::fs::write(&key, &pair.key).unwrap();
    // An hour between polls: every check counted below was woken by a file event.
    let server = TestServer::on_files(&cert, &key, "3600").await;
    let health = server.running.health_addr;
    let checks = "harness_guard_certificate_checks_total";
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = metric(health, checks).await;
    let log = dir.path().join("harness-guard.log");
    for i in 0..40 {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut file, format!("line {i}\n").as_bytes()).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(metric(health, checks).await, before, "writes to another file woke the reload");
    // The same bytes written again: a wake-up, read, found unchanged.
    std::fs::write(&cert, &pair.cert).unwrap();
    let unchanged = "harness_guard_certificate_checks_total{result=\"unchanged\"}";
    eventually(Duration::from_secs(10), "a write to the pair wakes the reload", async || {
        metric(health, unchanged).await >= 1.0
    })
    .await;
}

/// One JSON line per admission reaches the log output (a file here, as a container runtime's),
/// written in batches by the log thread and flushed when the process exits.
#[tokio::test]
async fn every_admission_is_logged_and_flushed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stdout.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut server = Binary::start_with(|cmd| {
        cmd.stdout(file);
    });
    let config = client_config(&[&server.ca], Proto::H1);
    let body = std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap();
    let mut conn = Conn::open(server.addr, config, Proto::H1).await.unwrap();
    for _ in 0..49 {
        assert_eq!(conn.post("/validate", body.clone()).await.unwrap().0.status(), 200);
    }
    let denied = std::fs::read(repo_file("examples/reviews/harness-missing-secret.json")).unwrap();
    let uid = serde_json::from_slice::<serde_json::Value>(&denied).unwrap()["request"]["uid"].clone();
    assert_eq!(conn.post("/validate", denied).await.unwrap().0.status(), 200);
    server.sigterm();
    assert!(server.exit(Duration::from_secs(15)).await.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let admissions: Vec<&serde_json::Value> = lines.iter().filter(|l| l["message"] == "admission").collect();
    assert_eq!(admissions.len(), 50, "{text}");
    // One record per admission, with what an operator searches by.
    let last = admissions.last().unwrap();
    assert_eq!(last["uid"], uid, "{last}");
    assert_eq!(
        (&last["webhook"], &last["kind"], &last["operation"]),
        (&"validate".into(), &"AgentHarness".into(), &"CREATE".into())
    );
    assert_eq!((&last["verdict"], &last["rules"]), (&"denied".into(), &"model-secret-resolves".into()), "{last}");
    assert_eq!(
        (&admissions[0]["verdict"], &admissions[0]["rules"]),
        (&"allowed".into(), &"".into()),
        "{}",
        admissions[0]
    );
    assert!(lines.iter().any(|l| l["message"] == "shut down"), "the last line, flushed at exit");
}

/// A log output that stops reading (a stuck collector, a full pipe) never stalls admission: the
/// log line is handed to a writer thread with a bounded buffer, and what does not fit is dropped
/// and counted. With the writer on the request path, the requests below hang once the pipe fills.
#[tokio::test]
async fn a_stalled_log_output_never_stalls_admission() {
    let mut server = Binary::start_with(|cmd| {
        // Standard output is a pipe nobody reads: 64 KiB in the kernel, then every write blocks.
        cmd.stdout(std::process::Stdio::piped())
            .env("HARNESS_GUARD_LOG", "debug")
            .env("HARNESS_GUARD_LOG_BUFFER_LINES", "64");
    });
    let config = client_config(&[&server.ca], Proto::H1);
    let body = std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap();
    let mut conn = Conn::open(server.addr, config, Proto::H1).await.unwrap();
    for i in 0..600 {
        let answer = tokio::time::timeout(Duration::from_secs(5), conn.post("/validate", body.clone())).await;
        let status = answer.unwrap_or_else(|_| panic!("request {i} stalled on the log output")).unwrap().0.status();
        assert_eq!(status, 200, "request {i}");
    }
    let dropped = metric(server.health, "harness_guard_log_lines_dropped ").await;
    assert!(dropped > 0.0, "lines past the buffer are dropped and counted");
    server.sigterm();
    server.exit(Duration::from_secs(15)).await;
}
