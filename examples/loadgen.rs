//! Load run over real TLS: harness-guard beside the least a webhook can do, in the same run.
//!
//! `cargo run --release --example loadgen -- [--requests N] [--seconds S] [--rounds R] [--units U] [--cluster-only] [--only CELL]`
//!
//! Starts, on loopback and each in its own process, harness-guard on its built-in default and a
//! baseline responder (hyper + rustls: read the body, take the uid, answer allowed), drives both
//! with the same client over HTTP/1.1 and HTTP/2 (1 and 32 connections; 8 streams per h2
//! connection), and prints requests/s, p50, p99, p999, server CPU per request and the ratios: with
//! `--rounds R`, each figure is the median of R rounds, harness-guard and baseline alternating. Then a second run puts
//! harness-guard in cluster mode against a Kubernetes API server served by this tool, loaded with
//! U units (an AgentHarness, a ModelConfig and a Secret each): it reports resident memory, time to
//! ready, the peak during a forced full re-list, validation latency at that size, and how many
//! requests reached the API server during the load (watch reconnects counted apart).
//! `--cluster-only` skips the side-by-side cells; `--only "pod mutation/h2/1"` runs only the cells
//! whose `workload/proto/conns` contains it, and no cluster part (to profile one cell).

#[allow(dead_code)]
#[path = "../tests/common/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "../tests/common/synthetic.rs"]
mod synthetic;
#[allow(dead_code)]
#[path = "../tests/common/tls.rs"]
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::{Value, json};
use tls::{Conn, Proto, Sender, client_config};
use tokio::net::{TcpListener, TcpStream};

const STREAMS_PER_H2: usize = 8;

struct Args {
    requests: usize,
    seconds: u64,
    /// Measured rounds per cell (harness-guard and baseline alternating); figures are medians.
    rounds: usize,
    units: usize,
    /// Skip the side-by-side cells and run only the cluster-mode part.
    cluster_only: bool,
    /// Run only the side-by-side cells whose `workload/proto/conns` contains this (for profiling
    /// one cell: `--only "pod mutation/h2/1"`), and skip the cluster-mode part.
    only: Option<String>,
}

fn args() -> (Option<String>, Vec<String>, Args) {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let mode = argv.first().filter(|a| a.starts_with("serve-")).cloned();
    if mode.is_some() {
        let args = Args { requests: 0, seconds: 0, rounds: 1, units: 0, cluster_only: false, only: None };
        return (mode, argv.split_off(1), args);
    }
    let mut a = Args { requests: 20_000, seconds: 8, rounds: 1, units: 10_000, cluster_only: false, only: None };
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--cluster-only" {
            a.cluster_only = true;
            continue;
        }
        if flag == "--only" {
            a.only = Some(it.next().expect("--only needs workload/proto/conns"));
            continue;
        }
        let value = it.next().and_then(|v| v.parse::<usize>().ok()).unwrap_or_else(|| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--requests" => a.requests = value,
            "--seconds" => a.seconds = value as u64,
            "--rounds" => a.rounds = value.max(1),
            "--units" => a.units = value,
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!(a.cluster_only && a.only.is_some()), "--only selects side-by-side cells; --cluster-only skips them all");
    (None, Vec::new(), a)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (mode, rest, args) = args();
    let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match mode.as_deref() {
        Some("serve-harness-guard") => {
            use clap::Parser;
            let argv = ["harness-guard", "serve"].into_iter().map(String::from).chain(rest);
            let cli = harness_guard::config::Cli::parse_from(argv);
            // Its runtime as `harness-guard` builds it.
            harness_guard::config::runtime(cli.worker_threads).unwrap().block_on(serve_harness_guard(cli))
        }
        Some("serve-baseline") => runtime().block_on(serve_baseline(rest)),
        _ => runtime().block_on(run(args)),
    }
}

/// Child mode: harness-guard itself, exactly as `harness-guard serve ARGS` runs it.
async fn serve_harness_guard(cli: harness_guard::config::Cli) {
    let harness_guard::config::Command::Serve(args) = cli.command else { unreachable!() };
    // Logging as `main` sets it up: JSON (what a container's stdout gets), default level.
    let log = harness_guard::telemetry::init_tracing(Some(true));
    let running = harness_guard::app::start(*args, std::future::pending()).await.expect("harness-guard starts");
    eprintln!("READY {}", running.webhook_addr);
    let _ = running.done.await;
    harness_guard::telemetry::finish_logs(log);
}

/// Child mode: the baseline responder.
async fn serve_baseline(rest: Vec<String>) {
    let (cert, key) = (PathBuf::from(&rest[0]), PathBuf::from(&rest[1]));
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(&cert).unwrap().map(Result::unwrap).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).unwrap();
    let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    eprintln!("READY {}", listener.local_addr().unwrap());
    loop {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                let body = req.into_body().collect().await?.to_bytes();
                #[derive(Deserialize)]
                struct Review<'a> {
                    #[serde(borrow)]
                    request: Uid<'a>,
                }
                #[derive(Deserialize)]
                struct Uid<'a> {
                    uid: &'a str,
                }
                let uid =
                    serde_json::from_slice::<Review>(&body).map(|r| r.request.uid.to_string()).unwrap_or_default();
                let answer = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": uid, "allowed": true}});
                Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(answer.to_string()))))
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        });
    }
}

/// A child server process of this same binary.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns this binary in `mode`; its standard output (harness-guard's log) goes to `stdout`.
fn spawn(mode: &str, args: &[String], stdout: Stdio) -> Server {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg(mode)
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .find_map(|l| l.ok().and_then(|l| l.strip_prefix("READY ").map(|a| a.parse().unwrap())))
        .expect("server printed its address");
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, addr }
}

/// harness-guard as a child, as it ships: TLS from `tls`, health on `health`, the view from
/// `source`, its log at the default level written to `log`, as a container runtime would keep it.
/// The log is kept apart from the certificate's directory, which harness-guard watches, as in a pod
/// (a mounted Secret, where nothing else is written): a log written beside the certificate would wake
/// the watcher's thread at every write.
fn spawn_harness_guard(health: SocketAddr, tls: (&Path, &Path), source: [String; 2], log: &Path) -> Server {
    assert_ne!(log.parent(), tls.0.parent(), "keep the log out of the certificate's directory");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let mut args = vec!["--listen".into(), "127.0.0.1:0".into(), "--health-listen".into(), health.to_string()];
    args.extend(["--tls-cert-file".into(), s(tls.0), "--tls-key-file".into(), s(tls.1)]);
    args.extend(source);
    spawn("serve-harness-guard", &args, Stdio::from(std::fs::File::create(log).unwrap()))
}

/// Where harness-guard's logs go: a directory of their own under `dir`.
fn log_dir(dir: &Path) -> PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    logs
}

/// CPU time (user + system) the process `pid` has used, in microseconds.
fn cpu_us(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the parenthesised command name, utime and stime are fields 12 and 13, in ticks of
    // 1/100 s (USER_HZ on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) * 10_000.0
}

/// Drives `addr` with `load` and reports the server's CPU per answered request, in µs.
async fn drive_measured(
    addr: SocketAddr,
    pid: u32,
    config: Arc<rustls::ClientConfig>,
    load: Load<'_>,
) -> (Figures, f64) {
    let before = cpu_us(pid);
    let figures = drive(addr, config, load).await;
    let per_request = (cpu_us(pid) - before) / figures.done.max(1) as f64;
    (figures, per_request)
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn request(path: &str, body: &Bytes) -> Request<Full<Bytes>> {
    Request::post(format!("https://localhost{path}?timeout=10s"))
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap()
}

async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> bool {
    sender.send(req).await.is_ok_and(|(res, _)| res.status() == 200)
}

/// Each figure's median over rounds (failures summed), with the CPU per request.
fn median(rounds: &[(Figures, f64)]) -> (Figures, f64) {
    let mid = |f: &dyn Fn(&(Figures, f64)) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let figures = Figures {
        done: rounds.iter().map(|r| r.0.done).sum(),
        rps: mid(&|r| r.0.rps),
        p50: mid(&|r| r.0.p50),
        p99: mid(&|r| r.0.p99),
        p999: mid(&|r| r.0.p999),
        failed: rounds.iter().map(|r| r.0.failed).sum(),
    };
    (figures, mid(&|r| r.1))
}

struct Figures {
    /// Requests answered 200.
    done: usize,
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    failed: usize,
}

/// One measured cell: how, and how much.
struct Load<'a> {
    proto: Proto,
    conns: usize,
    path: &'a str,
    body: Bytes,
    total: usize,
    limit: Duration,
}

/// Drives `addr` with `conns` connections (× 8 streams on h2) until `total` requests are done or
/// `limit` has passed.
async fn drive(addr: SocketAddr, config: Arc<rustls::ClientConfig>, load: Load<'_>) -> Figures {
    let Load { proto, conns, path, body, total, limit } = load;
    let workers = if proto == Proto::H2 { conns * STREAMS_PER_H2 } else { conns };
    let per_worker = total.div_ceil(workers);
    let start = Instant::now();
    let deadline = start + limit;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let sender = Conn::open(addr, config.clone(), proto).await.unwrap().sender();
        let streams = if proto == Proto::H2 { STREAMS_PER_H2 } else { 1 };
        for mut sender in std::iter::repeat_n(sender, streams) {
            let (path, body) = (path.to_string(), body.clone());
            tasks.push(tokio::spawn(async move {
                let (mut latencies, mut failed) = (Vec::with_capacity(per_worker), 0usize);
                for _ in 0..per_worker {
                    if Instant::now() > deadline {
                        break;
                    }
                    let t = Instant::now();
                    if send(&mut sender, request(&path, &body)).await {
                        latencies.push(t.elapsed().as_micros() as u32);
                    } else {
                        failed += 1;
                    }
                }
                (latencies, failed)
            }));
        }
    }
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (l, f) = t.await.unwrap();
        all.extend(l);
        failed += f;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0) as f64
            / 1000.0
    };
    Figures {
        done: all.len(),
        rps: all.len() as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        p999: pct(0.999),
        failed,
    }
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

async fn wait_ready(health: SocketAddr, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(mut tcp) = TcpStream::connect(health).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tcp.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
            let mut buf = Vec::new();
            let _ = tcp.read_to_end(&mut buf).await;
            if buf.starts_with(b"HTTP/1.1 200") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not ready within {limit:?}");
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

async fn run(args: Args) {
    let dir = std::env::temp_dir().join(format!("harness-guard-loadgen-{}", std::process::id()));
    let bundle =
        harness_guard::certs::generate(&["localhost".into(), "127.0.0.1".into()], Duration::from_secs(86_400)).unwrap();
    bundle.write(&dir).unwrap();
    let good = Bytes::from(std::fs::read(repo("examples/reviews/harness-good.json")).unwrap());
    if !args.cluster_only {
        side_by_side(&args, &dir, &good).await;
    }
    if args.only.is_none() {
        cluster_mode(&args, &dir, &good).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// harness-guard on its built-in default beside the baseline, cell by cell.
async fn side_by_side(args: &Args, dir: &Path, good: &Bytes) {
    let (cert, key, ca) = (dir.join("tls.crt"), dir.join("tls.key"), dir.join("ca.crt"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let health = free_port();
    let log = log_dir(dir).join("harness-guard.log");
    let hg = spawn_harness_guard(health, (&cert, &key), ["--manifests".into(), s(&repo("examples/cluster"))], &log);
    wait_ready(health, Duration::from_secs(10)).await;
    let base = spawn("serve-baseline", &[s(&cert), s(&key)], Stdio::null());
    let (hg_pid, base_pid) = (hg.child.id(), base.child.id());

    let pod = Bytes::from(
        std::fs::read(repo("tests/fixtures/admission-reviews/kagent/pod-sandbox-create.mutating.json")).unwrap(),
    );
    let denied = Bytes::from(std::fs::read(repo("examples/reviews/harness-wrong-key.json")).unwrap());
    let workloads = [
        ("pod mutation", "/mutate", pod),
        ("validation, allowed", "/validate", good.clone()),
        ("validation, denied", "/validate", denied),
    ];
    let limit = Duration::from_secs(args.seconds);
    println!(
        "# harness-guard vs baseline, same run, {} requests or {} s per cell and round, median of {} round(s), loopback TLS",
        args.requests, args.seconds, args.rounds
    );
    println!("harness-guard logs at its default level, JSON, to {}", log.display());
    println!(
        "| workload | proto | conns | hg req/s | base req/s | thru ratio | hg CPU µs/req | base CPU µs/req | CPU ratio | hg p50/p99/p999 ms | base p50/p99/p999 ms | p99 ratio | failed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut matched = false;
    for (name, path, body) in &workloads {
        for proto in [Proto::H1, Proto::H2] {
            for conns in [1, 32] {
                let proto_name = if proto == Proto::H2 { "h2" } else { "http/1.1" };
                let cell = format!("{name}/{proto_name}/{conns}");
                if args.only.as_ref().is_some_and(|only| !cell.contains(only.as_str())) {
                    continue;
                }
                matched = true;
                let config = client_config(&[&ca], proto);
                // Warm both, then measure both, alternating so drift on this shared machine hits both.
                let load = |total| Load { proto, conns, path, body: body.clone(), total, limit };
                drive(hg.addr, config.clone(), load(500)).await;
                drive(base.addr, config.clone(), load(500)).await;
                let (mut hs, mut bs) = (Vec::new(), Vec::new());
                for _ in 0..args.rounds {
                    hs.push(drive_measured(hg.addr, hg_pid, config.clone(), load(args.requests)).await);
                    bs.push(drive_measured(base.addr, base_pid, config.clone(), load(args.requests)).await);
                }
                let ((h, h_cpu), (b, b_cpu)) = (median(&hs), median(&bs));
                println!(
                    "| {name} | {proto_name} | {conns} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.2} | {:.2}/{:.2}/{:.2} | {:.2}/{:.2}/{:.2} | {:.2} | {} |",
                    h.rps,
                    b.rps,
                    h.rps / b.rps,
                    h_cpu,
                    b_cpu,
                    h_cpu / b_cpu,
                    h.p50,
                    h.p99,
                    h.p999,
                    b.p50,
                    b.p99,
                    b.p999,
                    h.p99 / b.p99,
                    h.failed + b.failed
                );
            }
        }
    }
    assert!(matched, "no cell matches --only {:?}: cells are named like \"pod mutation/h2/1\"", args.only);
}

/// harness-guard in cluster mode against this tool's API server, at scale.
async fn cluster_mode(args: &Args, dir: &Path, good: &Bytes) {
    let (cert, key, ca) = (dir.join("tls.crt"), dir.join("tls.key"), dir.join("ca.crt"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let limit = Duration::from_secs(args.seconds);
    let mut objects = synthetic::objects(args.units);
    let good_docs: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(repo("examples/cluster/00-good.yaml")).unwrap()).unwrap();
    objects.extend(good_docs);
    let api = fake_apiserver::FakeApi::start_with(objects, true).await;
    let kubeconfig = api.kubeconfig(dir);
    let health = free_port();
    let started = Instant::now();
    let log = log_dir(dir).join("cluster.log");
    let hg = spawn_harness_guard(health, (&cert, &key), ["--kubeconfig".into(), s(&kubeconfig)], &log);
    wait_ready(health, Duration::from_secs(120)).await;
    let ready = started.elapsed();
    let pid = hg.child.id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let steady = rss_kib(pid, "VmRSS:");
    let (steady_anon, steady_file) = (rss_kib(pid, "RssAnon:"), rss_kib(pid, "RssFile:"));
    let startup_peak = rss_kib(pid, "VmHWM:");
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let lists_before = api.count("list-done");
    api.expire_watches();
    let relist_start = Instant::now();
    while api.count("list-done") < lists_before + 4 && relist_start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let relist_peak = rss_kib(pid, "VmHWM:");
    let after_relist = rss_kib(pid, "VmRSS:");

    let config = client_config(&[&ca], Proto::H2);
    let (get0, list0, watch0) = (api.count("get"), api.count("list"), api.count("watch"));
    let load = Load { proto: Proto::H2, conns: 32, path: "/validate", body: good.clone(), total: args.requests, limit };
    let h = drive(hg.addr, config.clone(), load).await;
    let (get1, list1, watch1) = (api.count("get"), api.count("list"), api.count("watch"));
    println!();
    println!(
        "# cluster mode, {} AgentHarnesses + {} ModelConfigs + {} Secrets",
        args.units + 1,
        args.units + 1,
        args.units + 2
    );
    println!("| figure | value |");
    println!("|---|---|");
    println!("| time from process start to /readyz 200 | {:.2} s |", ready.as_secs_f64());
    println!("| resident memory, steady | {:.1} MiB |", steady as f64 / 1024.0);
    println!(
        "| of it anonymous (heap, stacks) / file-backed (the program's own mapped pages) | {:.1} / {:.1} MiB |",
        steady_anon as f64 / 1024.0,
        steady_file as f64 / 1024.0
    );
    println!("| resident memory, peak during start-up list | {:.1} MiB |", startup_peak as f64 / 1024.0);
    println!(
        "| resident memory, peak during forced full re-list (410 Gone) | {:.1} MiB |",
        relist_peak as f64 / 1024.0
    );
    println!("| resident memory, after re-list | {:.1} MiB |", after_relist as f64 / 1024.0);
    println!("| validation h2 x32: req/s, p50/p99/p999 ms | {:.0}, {:.2}/{:.2}/{:.2} |", h.rps, h.p50, h.p99, h.p999);
    println!("| API requests during the load: get + list | {} |", (get1 - get0) + (list1 - list0));
    println!("| watch (re)connects during the load, apart | {} |", watch1 - watch0);
    println!("| failed requests | {} |", h.failed);
}
