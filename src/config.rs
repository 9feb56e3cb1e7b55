//! Command line (clap, every flag also from a `HARNESS_GUARD_*` variable) and the policy file.
//! With no flags, `serve` runs the built-in default: no cluster needed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::core::policy::Policy;

/// harness-guard: admission webhook for kagent AgentHarness and OpenShell sandbox pods.
#[derive(Debug, Parser)]
#[command(name = "harness-guard", version, about)]
pub struct Cli {
    /// Log format; by default JSON when stdout is not a terminal, readable text when it is.
    #[arg(long, global = true, env = "HARNESS_GUARD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Threads that serve requests and run the watches [default: the CPUs this process may use, at
    /// most 4].
    #[arg(long, global = true, env = "HARNESS_GUARD_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Worker threads by default, at most: a webhook's load needs far less than a large node's cores,
/// and every worker thread keeps allocator caches of its own (steady memory at 30,000 objects:
/// 56.0 MiB with 2 workers, 56.5 with 4, 64.3 with 64 and a 64-core node's jemalloc arenas;
/// docs/performance.md).
pub const DEFAULT_MAX_WORKER_THREADS: usize = 4;

/// The runtime's worker threads: `requested`, else the CPUs available to the process (its cgroup
/// CPU limit counted) up to [`DEFAULT_MAX_WORKER_THREADS`].
pub fn worker_threads(requested: Option<u16>) -> usize {
    match requested {
        Some(n) => usize::from(n).max(1),
        None => std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(DEFAULT_MAX_WORKER_THREADS),
    }
}

/// The multi-threaded runtime every command runs on, with [`worker_threads`]`(requested)` workers.
pub fn runtime(requested: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(worker_threads(requested)).enable_all().build()
}

/// Log formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the admission webhook server.
    Serve(Box<ServeArgs>),
    /// Write a CA and a serving certificate for local and test use.
    Certs(CertsArgs),
    /// Evaluate manifests before they reach a cluster (for CI): exit 0 clean, 1 denied, 2 unusable input.
    Check(CheckArgs),
    /// Evaluate every AgentHarness of a live cluster: exit codes as `check`.
    Audit(AuditArgs),
    /// Prove the installed webhook judges: send a server dry-run AgentHarness with a missing
    /// ModelConfig and expect harness-guard's refusal (`helm test` runs it). Exit 0 refused as
    /// expected, 1 not judged, 2 could not ask.
    Selftest(SelftestArgs),
    /// Walk one AgentHarness's credential chain link by link (harness, ModelConfig, Secret,
    /// inference provider, sandbox pods, verdict, Events), read-only: exit 0 nothing broken,
    /// 1 a link broken, 2 unusable input.
    Explain(ExplainArgs),
}

/// `harness-guard selftest`.
#[derive(Debug, Args)]
pub struct SelftestArgs {
    /// Namespace to send the dry-run AgentHarness to: one the harness webhook judges.
    #[arg(short = 'n', long, env = "HARNESS_GUARD_SELFTEST_NAMESPACE")]
    pub namespace: String,
    /// Kubeconfig [default: as kubectl finds it: KUBECONFIG, ~/.kube/config, then the
    /// in-cluster configuration].
    #[arg(long, env = "HARNESS_GUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// Output formats of `check` and `audit`.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum OutputFormat {
    /// A readable table.
    #[default]
    Table,
    /// JSON.
    Json,
    /// The input's pods as the webhook would admit them (patched), as YAML on standard output,
    /// like `istioctl kube-inject`; the table goes to standard error.
    Yaml,
    /// JUnit XML (CI test reports): one test case per object, denials as failures.
    Junit,
    /// SARIF 2.1.0 (code scanning): one result per finding, with the file and line.
    Sarif,
}

/// `harness-guard check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files or directories of YAML/JSON manifests (multi-document); `-` reads standard input.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub filename: Vec<PathBuf>,
    /// Directories of manifests describing the cluster the input will be applied to.
    #[arg(long)]
    pub state: Vec<PathBuf>,
    /// Also read the live cluster: --kubeconfig, else as kubectl finds it (KUBECONFIG,
    /// ~/.kube/config, then the in-cluster configuration).
    #[arg(long)]
    pub cluster: bool,
    /// Kubeconfig for --cluster [default: as kubectl finds it].
    #[arg(long, env = "HARNESS_GUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of input objects that name none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Policy file (the same as `serve --config`).
    #[arg(long, env = "HARNESS_GUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `harness-guard audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Kubeconfig [default: as kubectl finds it: KUBECONFIG, ~/.kube/config, then the
    /// in-cluster configuration].
    #[arg(long, env = "HARNESS_GUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Policy file (the same as `serve --config`).
    #[arg(long, env = "HARNESS_GUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `harness-guard explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The AgentHarness, as NAMESPACE/NAME; with -f it picks one harness of the input (default:
    /// every one).
    #[arg(value_name = "NAMESPACE/NAME", required_unless_present = "filename")]
    pub harness: Option<String>,
    /// Explain offline: the AgentHarnesses of these manifests (files or directories; `-` reads
    /// standard input) instead of the live cluster.
    #[arg(short = 'f', long = "filename")]
    pub filename: Vec<PathBuf>,
    /// Directories of manifests describing the cluster, for -f.
    #[arg(long, requires = "filename")]
    pub state: Vec<PathBuf>,
    /// Kubeconfig [default: as kubectl finds it: KUBECONFIG, ~/.kube/config, then the
    /// in-cluster configuration].
    #[arg(long, env = "HARNESS_GUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Policy file (the same as `serve --config`).
    #[arg(long, env = "HARNESS_GUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: ExplainFormat,
}

/// Output formats of `explain`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    /// One block per link; broken links in red on a terminal.
    #[default]
    Table,
    /// JSON, for scripts.
    Json,
}

/// `harness-guard serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Webhook address [default: 127.0.0.1:8443 on the built-in default, [::]:8443 in a pod].
    #[arg(long, env = "HARNESS_GUARD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Health and metrics address [default: 127.0.0.1:8080 on the built-in default, [::]:8080 in a pod].
    #[arg(long, env = "HARNESS_GUARD_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// Serving certificate (PEM chain); replaces the self-signed default. Reloaded when it changes.
    #[arg(long, env = "HARNESS_GUARD_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long, env = "HARNESS_GUARD_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Watch the cluster of this kubeconfig instead of reading manifests.
    #[arg(long, env = "HARNESS_GUARD_KUBECONFIG", conflicts_with = "manifests")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch the live cluster found as kubectl finds it (KUBECONFIG, ~/.kube/config, then the
    /// in-cluster configuration) instead of reading manifests; the default in a pod.
    #[arg(long, env = "HARNESS_GUARD_CLUSTER", conflicts_with = "manifests")]
    pub cluster: bool,
    /// Read the cluster state from this directory of manifests [default: examples/cluster, unless in a pod].
    #[arg(long, env = "HARNESS_GUARD_MANIFESTS")]
    pub manifests: Option<PathBuf>,
    /// Policy file (YAML): rule actions, sandbox injection, watch scope.
    #[arg(long, env = "HARNESS_GUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the built-in default keeps its generated CA and serving pair.
    #[arg(long, env = "HARNESS_GUARD_DEV_CERT_DIR", default_value = "certs/dev")]
    pub dev_cert_dir: PathBuf,
    /// Seconds between readiness turning false and the listener closing on SIGTERM.
    #[arg(long, env = "HARNESS_GUARD_DRAIN_DELAY_SECONDS", default_value_t = 5)]
    pub drain_delay_seconds: u64,
    /// Seconds in-flight requests get to finish after the listener closes.
    #[arg(long, env = "HARNESS_GUARD_GRACE_PERIOD_SECONDS", default_value_t = 20)]
    pub grace_period_seconds: u64,
    /// Seconds a client gets to finish its TLS handshake, and to send request headers.
    #[arg(long, env = "HARNESS_GUARD_HANDSHAKE_TIMEOUT_SECONDS", default_value_t = 10)]
    pub handshake_timeout_seconds: u64,
    /// Seconds between checks of the certificate files (file events also trigger a check).
    #[arg(long, env = "HARNESS_GUARD_CERT_POLL_SECONDS", default_value_t = 10)]
    pub cert_poll_seconds: u64,
    /// Write the continuous audit's results as OpenReports `Report` objects (one per namespace
    /// holding AgentHarnesses; Lease holder only) whenever the openreports.io CRDs are installed.
    /// Cluster mode only; `--openreports=false` turns it off.
    #[arg(long, env = "HARNESS_GUARD_OPENREPORTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub openreports: bool,
    /// Seconds between full audit passes when nothing changes; also how soon OpenReports CRDs
    /// installed after start are found.
    #[arg(
        long,
        env = "HARNESS_GUARD_AUDIT_RESYNC_SECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub audit_resync_seconds: u64,
    /// Self-signed mode (cluster only): keep the CA and serving pair in this TLS Secret of the
    /// release namespace, shared by all replicas, and write the CA into the webhook configurations.
    #[command(flatten)]
    pub self_signed: SelfSignedArgs,
}

/// Flags of the self-signed certificate mode.
#[derive(Debug, Args)]
pub struct SelfSignedArgs {
    /// Name of the TLS Secret; setting it turns self-signed mode on.
    #[arg(long = "self-signed-secret", env = "HARNESS_GUARD_SELF_SIGNED_SECRET", conflicts_with = "tls_cert_file")]
    pub secret: Option<String>,
    /// The release namespace (TLS Secret, Lease, Service).
    #[arg(long, env = "HARNESS_GUARD_NAMESPACE", default_value = "harness-guard")]
    pub namespace: String,
    /// The Service in front of the webhook; the certificate covers its DNS names.
    #[arg(long, env = "HARNESS_GUARD_SERVICE", default_value = "harness-guard")]
    pub service: String,
    /// ValidatingWebhookConfiguration whose caBundle to keep.
    #[arg(long, env = "HARNESS_GUARD_VALIDATING_WEBHOOK")]
    pub validating_webhook: Option<String>,
    /// MutatingWebhookConfiguration whose caBundle to keep.
    #[arg(long, env = "HARNESS_GUARD_MUTATING_WEBHOOK")]
    pub mutating_webhook: Option<String>,
    /// Lease that elects the single writer.
    #[arg(long, env = "HARNESS_GUARD_LEASE", default_value = "harness-guard")]
    pub lease: String,
    /// The Deployment (in the release namespace) that owns what this process creates there (the
    /// Lease, the TLS Secret): deleting it (`helm uninstall`, a GitOps prune) deletes them too.
    #[arg(long, env = "HARNESS_GUARD_OWNER_DEPLOYMENT")]
    pub owner_deployment: Option<String>,
    /// This replica's identity in the Lease [default: $POD_NAME, then $HOSTNAME].
    #[arg(long, env = "HARNESS_GUARD_IDENTITY")]
    pub identity: Option<String>,
    /// Lifetime of the serving certificate, in seconds (at most 100 years).
    #[arg(long, env = "HARNESS_GUARD_LEAF_VALIDITY_SECONDS", default_value_t = 365 * 86_400, value_parser = seconds())]
    pub leaf_validity_seconds: u64,
    /// Renew the serving certificate this many seconds before it expires.
    #[arg(long, env = "HARNESS_GUARD_RENEW_BEFORE_SECONDS", default_value_t = 30 * 86_400, value_parser = seconds())]
    pub renew_before_seconds: u64,
    /// Lifetime of the CA, in seconds (at most 100 years).
    #[arg(long, env = "HARNESS_GUARD_CA_VALIDITY_SECONDS", default_value_t = 10 * 365 * 86_400, value_parser = seconds())]
    pub ca_validity_seconds: u64,
    /// Seconds between checks of the Secret, the Lease and the caBundles (at most a day; the Lease
    /// lasts three checks).
    #[arg(
        long = "cert-check-seconds",
        env = "HARNESS_GUARD_CERT_CHECK_SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub check_seconds: u64,
}

/// The longest certificate lifetime accepted, in days: far from any overflow of the time types.
pub const MAX_DAYS: u64 = 36_500;

/// Seconds from 1 to [`MAX_DAYS`] days.
fn seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..=MAX_DAYS * 86_400)
}

impl SelfSignedArgs {
    /// The Service's DNS names, as the apiserver addresses it.
    pub fn dns_names(&self) -> Vec<String> {
        let (svc, ns) = (&self.service, &self.namespace);
        vec![svc.clone(), format!("{svc}.{ns}"), format!("{svc}.{ns}.svc"), format!("{svc}.{ns}.svc.cluster.local")]
    }

    /// The Lease identity.
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| format!("harness-guard-{}", std::process::id()))
    }
}

/// `harness-guard certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// DNS names (or IP addresses) of the serving certificate.
    #[arg(long = "dns", required = true, num_args = 1..)]
    pub dns: Vec<String>,
    /// Output directory for ca.crt, ca.key, tls.crt, tls.key.
    #[arg(long, default_value = "certs/dev")]
    pub out: PathBuf,
    /// Validity in days (at most 100 years).
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=MAX_DAYS))]
    pub days: u64,
}

/// Where the cluster view comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The built-in default: a manifest directory.
    Manifests(PathBuf),
    /// A live cluster: this kubeconfig, or the configuration found as kubectl finds it when `None`.
    Cluster(Option<PathBuf>),
}

/// True when running in a pod (the in-cluster service variables are set).
pub fn in_pod() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

impl ServeArgs {
    /// The cluster view's source.
    pub fn source(&self) -> Source {
        self.source_in(in_pod())
    }

    /// The cluster view's source, in a pod or not: explicit flags first, then the live cluster
    /// in a pod and the built-in default elsewhere.
    pub fn source_in(&self, pod: bool) -> Source {
        match (&self.kubeconfig, &self.manifests) {
            (Some(kubeconfig), _) => Source::Cluster(Some(kubeconfig.clone())),
            (None, Some(dir)) => Source::Manifests(dir.clone()),
            (None, None) if self.cluster || pod => Source::Cluster(None),
            (None, None) => Source::Manifests(PathBuf::from("examples/cluster")),
        }
    }

    /// The webhook address.
    pub fn listen(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| default_addr(8443))
    }

    /// The health address.
    pub fn health_listen(&self) -> SocketAddr {
        self.health_listen.unwrap_or_else(|| default_addr(8080))
    }

    /// Drain delay.
    pub fn drain_delay(&self) -> Duration {
        Duration::from_secs(self.drain_delay_seconds)
    }
}

fn default_addr(port: u16) -> SocketAddr {
    let ip = if in_pod() { "::" } else { "127.0.0.1" };
    SocketAddr::new(ip.parse().expect("literal address"), port)
}

/// Why a policy file was refused. The message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML does not fit the policy schema.
    #[error("policy file {path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the field and position.
        problem: PolicyProblem,
    },
}

/// What is wrong with a policy document.
#[derive(Debug, thiserror::Error)]
pub enum PolicyProblem {
    /// Not YAML, or YAML of the wrong shape: the parser's message names the field and position.
    #[error("{0}")]
    Schema(String),
    /// A field whose value cannot work.
    #[error("{field}: {why}")]
    Value {
        /// The field, as written in the file.
        field: &'static str,
        /// Why, and what would work.
        why: String,
    },
}

/// Reads and checks a policy file.
pub fn load_policy(path: &Path) -> Result<Policy, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.into(), source })?;
    parse_policy(&text).map_err(|problem| PolicyError::Invalid { path: path.into(), problem })
}

/// Parses policy YAML; an empty document is the default policy.
pub fn parse_policy(text: &str) -> Result<Policy, PolicyProblem> {
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Ok(Policy::default());
    }
    let policy: Policy = serde_saphyr::from_str(text).map_err(|e| PolicyProblem::Schema(e.to_string()))?;
    check_policy(&policy)?;
    Ok(policy)
}

fn check_policy(policy: &Policy) -> Result<(), PolicyProblem> {
    let bad = |field, why: String| Err(PolicyProblem::Value { field, why });
    let s = &policy.sandbox;
    let uri: Result<http::Uri, _> = s.proxy_url.parse();
    if !uri.as_ref().is_ok_and(|u| u.scheme_str().is_some() && u.host().is_some()) {
        let why = format!("{:?} is not an absolute URL such as http://10.200.0.1:3128", s.proxy_url);
        return bad("sandbox.proxyUrl", why);
    }
    if s.namespaces.is_empty() {
        return bad("sandbox.namespaces", "must name at least one namespace".into());
    }
    if s.containers.is_empty() {
        return bad("sandbox.containers", "must name at least one container".into());
    }
    for (field, key) in
        [("sandbox.providerAnnotation", &s.provider_annotation), ("sandbox.harnessAnnotation", &s.harness_annotation)]
    {
        if key.is_empty() || key.chars().any(|c| c.is_whitespace()) {
            return bad(field, format!("{key:?} is not an annotation key"));
        }
    }
    let env_names = s.proxy_vars.iter().chain(&s.no_proxy_vars).chain(s.extra_env.keys());
    if let Some(name) = env_names.into_iter().find(|n| n.is_empty() || n.contains('=')) {
        return bad("sandbox", format!("{name:?} is not an environment variable name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_are_the_flag_else_the_cpus_at_most_four() {
        let cli = Cli::try_parse_from(["harness-guard", "--worker-threads", "7", "serve"]).unwrap();
        assert_eq!(worker_threads(cli.worker_threads), 7);
        let cli = Cli::try_parse_from(["harness-guard", "serve", "--worker-threads", "1"]).unwrap();
        assert_eq!(worker_threads(cli.worker_threads), 1, "a global flag, after the subcommand too");
        let error = Cli::try_parse_from(["harness-guard", "--worker-threads", "0", "serve"]).unwrap_err();
        assert!(error.to_string().contains("--worker-threads"), "{error}");
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert_eq!(worker_threads(None), cpus.min(DEFAULT_MAX_WORKER_THREADS));
    }
}
