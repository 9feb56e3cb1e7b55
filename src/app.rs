//! `serve`: wires policy, certificates, the cluster view, the two servers and signals together.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::certs::{Bundle, CA_CERT, CA_KEY, CertError, Plan, TLS_CERT, TLS_KEY, generate, plan};
use crate::cluster::audit::{Auditor, Events};
use crate::cluster::lease::Elector;
use crate::cluster::openreports::Reports;
use crate::cluster::selfsigned::{Lifetimes, SelfSigned};
use crate::cluster::view::View;
use crate::cluster::{manifests, watch as watchers};
use crate::config::{ServeArgs, Source, load_policy};
use crate::core::policy::Policy;
use crate::core::view::{ClusterView, Digester};
use crate::server::router::{AppState, health_router, webhook_router};
use crate::server::serve::{Limits, serve_tls};
use crate::server::tls::{server_config, watch_files};
use crate::serving::certificate::{CertSource, load_pair};
use crate::serving::readiness::Readiness;
use crate::telemetry::Metrics;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad policy file.
    #[error(transparent)]
    Policy(#[from] crate::config::PolicyError),
    /// Self-signed lifetimes that would reissue on every check.
    #[error(transparent)]
    Lifetimes(#[from] crate::cluster::selfsigned::LifetimeError),
    /// Certificates could not be made.
    #[error(transparent)]
    Certs(#[from] crate::certs::CertError),
    /// The serving pair could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::serving::certificate::TlsError),
    /// The manifest directory could not be read.
    #[error(transparent)]
    Manifests(#[from] manifests::ManifestError),
    /// No Kubernetes client could be built.
    #[error(transparent)]
    Kube(#[from] crate::cluster::client::ClientError),
    /// A setting that needs a cluster was given without one.
    #[error("{0} needs cluster mode (--kubeconfig, --cluster, or running in a pod)")]
    NeedsCluster(&'static str),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A started server: its addresses, and a future that runs it to the end.
pub struct Running {
    /// Where the webhooks listen.
    pub webhook_addr: std::net::SocketAddr,
    /// Where health and metrics listen.
    pub health_addr: std::net::SocketAddr,
    /// The CA to trust, on the built-in default.
    pub ca_file: Option<PathBuf>,
    /// Shared state, for tests and the banner.
    pub state: Arc<AppState<View>>,
    /// Resolves when the server has shut down.
    pub done: tokio::task::JoinHandle<()>,
}

/// Starts everything and returns once both ports are bound. `shutdown` starts the drain.
pub async fn start(
    args: ServeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let mut policy = match &args.config {
        Some(path) => load_policy(path)?,
        None => Policy::default(),
    };
    // Sandbox pods run in this cluster: its API server is what their supervisor talks to.
    policy.sandbox.api_server_host = std::env::var("KUBERNETES_SERVICE_HOST").ok().filter(|h| !h.is_empty());
    let policy = Arc::new(policy);
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    let digester = Digester::random();
    let (view, feeds) = View::new(&policy.watch, digester.clone());
    let view = Arc::new(view);

    let client = match args.source() {
        Source::Cluster(kubeconfig) => Ok(crate::cluster::client::client(kubeconfig).await?),
        Source::Manifests(dir) => Err(dir),
    };
    // What this process creates in the release namespace goes when its Deployment goes.
    let owner = match (client.as_ref().ok(), &args.self_signed.owner_deployment) {
        (Some(client), Some(name)) => {
            crate::cluster::client::deployment_owner(client, &args.self_signed.namespace, name).await
        }
        _ => None,
    };
    // One Lease elects the single writer of certificates and audit Events.
    let elector = client.as_ref().ok().map(|client| {
        let s = &args.self_signed;
        let api = kube::Api::namespaced(client.clone(), &s.namespace);
        let duration = Duration::from_secs((s.check_seconds * 3).max(15));
        Arc::new(Elector::new(api, s.lease.clone(), s.identity(), duration).owned_by(owner.clone()))
    });
    let certs = CertSource::new();
    let (cert_task, ca_file) =
        start_certs(&args, client.as_ref().ok(), elector.clone(), owner, &certs, &readiness, &metrics)?;
    let events = client.as_ref().ok().zip(elector).map(|(client, elector)| Events {
        client: client.clone(),
        elector,
        namespaces: policy.watch.namespaces.clone(),
    });
    let watch_tasks = match client {
        Ok(client) => {
            // Secret-producing kinds are optional: probed and watched beside the four, never
            // holding up readiness.
            let (producers, scope, touched) = (view.producers.clone(), policy.watch.clone(), view.clone());
            let probe_client = client.clone();
            let (pools, pool_client, pool_view) = (view.worker_pools.clone(), client.clone(), view.clone());
            let pool_scope = policy.watch.namespaces.clone();
            let mut tasks = watchers::spawn_watchers(client, feeds, &policy.watch, digester, metrics.clone());
            tasks.spawn(async move {
                let changed: Arc<dyn Fn() + Send + Sync> = Arc::new(move || touched.touch());
                let set = crate::cluster::producers::spawn_producer_watchers(probe_client, producers, &scope, changed);
                set.await.join_all().await;
            });
            tasks.spawn(async move {
                let changed: Arc<dyn Fn() + Send + Sync> = Arc::new(move || pool_view.touch());
                crate::cluster::worker_pools::watch_worker_pools(pool_client, pools, pool_scope, changed).await;
            });
            Some(tasks)
        }
        Err(dir) => {
            let objects = manifests::load_dir(&dir, &digester)?;
            tracing::info!(dir = %dir.display(), objects = objects.len(), skipped = objects.skipped, "cluster view read from manifests");
            objects.feed(feeds);
            None
        }
    };
    let resync = Duration::from_secs(args.audit_resync_seconds);
    let reports = match (&events, args.openreports) {
        (Some(events), true) => {
            Some(Reports::new(events.client.clone(), metrics.clone(), events.namespaces.clone(), resync))
        }
        _ => None,
    };
    let mut auditor = Auditor::new(view.clone(), policy.clone(), metrics.clone(), events);
    if let Some(reports) = reports {
        auditor = auditor.with_reports(reports);
    }
    let audit_task = tokio::spawn(auditor.run(Duration::from_millis(500), resync));
    {
        let (view, readiness) = (view.clone(), readiness.clone());
        tokio::spawn(async move {
            view.wait_until_ready().await;
            readiness.view_synced.store(true, Ordering::Release);
            tracing::info!(objects = ?view.sizes(), "cluster view synced");
        });
    }

    let bind = |addr| async move { TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source }) };
    let listener = bind(args.listen()).await?;
    let health = bind(args.health_listen()).await?;
    let webhook_addr = listener.local_addr().map_err(|source| StartError::Bind { addr: args.listen(), source })?;
    let health_addr = health.local_addr().map_err(|source| StartError::Bind { addr: args.health_listen(), source })?;

    let state = Arc::new(AppState { view, policy, metrics, readiness: readiness.clone() });
    let (stop_tx, stop_rx) = watch::channel(false);
    let drain_delay = args.drain_delay();
    tokio::spawn(async move {
        shutdown.await;
        readiness.shutting_down.store(true, Ordering::Release);
        tracing::info!(?drain_delay, "shutdown requested: readiness is false; draining");
        tokio::time::sleep(drain_delay).await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let limits = Limits {
        grace: Duration::from_secs(args.grace_period_seconds),
        handshake: Duration::from_secs(args.handshake_timeout_seconds.max(1)),
        header_read: Duration::from_secs(args.handshake_timeout_seconds.max(1)),
        ..Limits::default()
    };
    let health_server =
        axum::serve(health, health_router(state.clone())).with_graceful_shutdown(stopped(stop_rx.clone()));
    let webhook_server =
        serve_tls(listener, server_config(&certs), webhook_router(state.clone()), limits, stopped(stop_rx));
    let done = tokio::spawn(async move {
        let (_, health) = tokio::join!(webhook_server, health_server);
        if let Err(error) = health {
            tracing::warn!(%error, "health server stopped with an error");
        }
        cert_task.abort();
        audit_task.abort();
        drop(watch_tasks);
        tracing::info!("shut down");
    });
    Ok(Running { webhook_addr, health_addr, ca_file, state, done })
}

/// Loads or manages the serving certificate and starts the task that keeps it current.
fn start_certs(
    args: &ServeArgs,
    client: Option<&kube::Client>,
    elector: Option<Arc<Elector>>,
    owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
    certs: &Arc<CertSource>,
    readiness: &Arc<Readiness>,
    metrics: &Arc<Metrics>,
) -> Result<(tokio::task::JoinHandle<()>, Option<PathBuf>), StartError> {
    if let Some(secret) = &args.self_signed.secret {
        let (Some(client), Some(elector)) = (client, elector) else {
            return Err(StartError::NeedsCluster("--self-signed-secret"));
        };
        let s = &args.self_signed;
        let ns = s.namespace.as_str();
        let lifetimes = Lifetimes {
            ca: Duration::from_secs(s.ca_validity_seconds),
            leaf: Duration::from_secs(s.leaf_validity_seconds),
            renew_before: Duration::from_secs(s.renew_before_seconds),
            check_every: Duration::from_secs(s.check_seconds.max(1)),
        };
        lifetimes.validate()?;
        let manager = SelfSigned {
            secrets: kube::Api::namespaced(client.clone(), ns),
            secret_name: secret.clone(),
            validating: s.validating_webhook.clone().map(|n| (kube::Api::all(client.clone()), n)),
            mutating: s.mutating_webhook.clone().map(|n| (kube::Api::all(client.clone()), n)),
            dns_names: s.dns_names(),
            elector,
            lifetimes,
            owner,
        };
        let task = tokio::spawn(manager.run(certs.clone(), readiness.clone(), metrics.clone()));
        return Ok((task, None));
    }
    let (cert, key, ca_file) = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), None),
        _ => {
            let (cert, key) = ensure_dev_certs(&args.dev_cert_dir)?;
            (cert, key, Some(args.dev_cert_dir.join(crate::certs::CA_CERT)))
        }
    };
    let loaded = load_pair(&cert, &key)?;
    certs.set(&loaded, metrics);
    readiness.cert_loaded.store(true, Ordering::Release);
    let poll = Duration::from_secs(args.cert_poll_seconds.max(1));
    let task = tokio::spawn(watch_files(certs.clone(), (cert, key), loaded, poll, metrics.clone()));
    Ok((task, ca_file))
}

/// The built-in default's certificates (checked with the serving loader, made with `certs`): reused from `dir` when a valid pair is there, made and
/// written otherwise. Returns the paths of the serving certificate and key.
fn ensure_dev_certs(dir: &Path) -> Result<(PathBuf, PathBuf), CertError> {
    let (cert, key) = (dir.join(TLS_CERT), dir.join(TLS_KEY));
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
    let read = |name| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let found = Bundle { ca_cert: read(CA_CERT), ca_key: read(CA_KEY), cert: read(TLS_CERT), key: read(TLS_KEY) };
    let (day, year) = (Duration::from_secs(86_400), Duration::from_secs(365 * 86_400));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let loads = load_pair(&cert, &key).is_ok();
    if !loads || plan(Some(&found), &names, now, day, day) != Plan::Keep {
        generate(&names, year)?.write(dir)?;
    }
    Ok((cert, key))
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// The lines printed at start on the built-in default: where to reach it and how to try it.
pub fn banner(running: &Running) -> String {
    let addr = running.webhook_addr;
    let mut lines = vec![
        format!("harness-guard: webhooks on https://{addr} (POST /validate, POST /mutate)"),
        format!("harness-guard: health and metrics on http://{} (/healthz, /readyz, /metrics)", running.health_addr),
    ];
    if let Some(ca) = &running.ca_file {
        lines.push(format!("harness-guard: trust the CA in {}", ca.display()));
        lines.push(format!(
            "harness-guard: try  curl -s --cacert {} -H 'Content-Type: application/json' --data @examples/reviews/harness-good.json https://{addr}/validate",
            ca.display()
        ));
    }
    lines.join("\n")
}
