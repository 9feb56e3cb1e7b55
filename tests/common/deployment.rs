//! harness-guard as a deployment on the test's control plane: the chart rendered by Helm and
//! applied as `helm install` would (hooks aside), replicas started as processes with the
//! Deployment's own arguments and policy and the chart ServiceAccount's token, a readiness-aware
//! balancer on the Service's ClusterIP, and a steady admission load that counts failed calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::balancer::{Balancer, Endpoint};
use super::chart::{find, render};
use super::envtest::ControlPlane;
use super::process::Binary;

/// The release namespace of every render (tests/chart/render.py).
pub const NS: &str = "harness-guard";

/// An installed release.
pub struct Release {
    /// Everything the chart rendered, hooks included.
    pub objects: Vec<Value>,
    /// The Service's ClusterIP and port.
    pub service: SocketAddr,
    /// A kubeconfig of the chart's ServiceAccount.
    pub kubeconfig: PathBuf,
    /// The policy file of the rendered ConfigMap.
    pub policy: PathBuf,
    pub dir: tempfile::TempDir,
}

/// True for an object Helm creates only as a hook (`helm test`), never on install.
pub fn is_hook(object: &Value) -> bool {
    object["metadata"]["annotations"]["helm.sh/hook"].is_string()
}

/// `helm install` of the chart with `values`: every object but the test hooks, applied as
/// rendered, into a control plane that has the kagent CRDs.
pub async fn install(plane: &ControlPlane, admin: &kube::Client, values: &Value) -> Release {
    super::envtest::kagent_crds(admin).await;
    for ns in [NS, "default"] {
        super::envtest::namespace(admin, ns).await;
    }
    let objects = render(values);
    let release: Vec<Value> = objects.iter().filter(|o| !is_hook(o)).cloned().collect();
    assert_eq!(super::envtest::apply(admin, &release, NS, false).await, Vec::<String>::new());
    let service = Api::<Service>::namespaced(admin.clone(), NS).get("harness-guard").await.unwrap();
    let spec = service.spec.unwrap();
    let ip: std::net::IpAddr = spec.cluster_ip.unwrap().parse().unwrap();
    let service = SocketAddr::new(ip, u16::try_from(spec.ports.unwrap()[0].port).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = plane.service_account_kubeconfig(admin, NS, "harness-guard", dir.path()).await;
    let policy = dir.path().join("policy.yaml");
    let config = find(&objects, "ConfigMap", "harness-guard").unwrap();
    std::fs::write(&policy, config["data"]["policy.yaml"].as_str().unwrap()).unwrap();
    Release { objects, service, kubeconfig, policy, dir }
}

impl Release {
    /// The Deployment container's arguments as a replica on this machine runs them: the policy
    /// file, loopback ports chosen by the kernel, the Downward API's namespace and pod name as
    /// flags, the account's kubeconfig; `extra` (`--flag=value`) replaces the chart's own value
    /// of the same flag.
    pub fn replica_args(&self, identity: &str, extra: &[&str]) -> Vec<String> {
        let deploy = find(&self.objects, "Deployment", "harness-guard").unwrap();
        let args: Vec<String> =
            serde_json::from_value(deploy["spec"]["template"]["spec"]["containers"][0]["args"].clone()).unwrap();
        let mut argv: Vec<String> = args
            .into_iter()
            .map(|arg| match arg.split_once('=') {
                Some(("--config", _)) => format!("--config={}", self.policy.display()),
                Some(("--listen", _)) => "--listen=127.0.0.1:0".into(),
                Some(("--health-listen", _)) => "--health-listen=127.0.0.1:0".into(),
                _ => arg,
            })
            .filter(|arg: &String| !extra.iter().any(|e| e.split('=').next() == arg.split('=').next()))
            .collect();
        argv.extend([
            format!("--kubeconfig={}", self.kubeconfig.display()),
            format!("--namespace={NS}"),
            format!("--identity={identity}"),
        ]);
        argv.extend(extra.iter().map(|s| s.to_string()));
        argv
    }

    /// A replica process, added to `balancer` (it gets connections once ready).
    pub fn replica(&self, balancer: &Balancer, identity: &str, extra: &[&str]) -> Replica {
        let binary = Binary::serve(&self.replica_args(identity, extra));
        let endpoint = Endpoint { webhook: binary.addr, health: binary.health };
        balancer.add(endpoint);
        Replica { binary, endpoint, identity: identity.to_string() }
    }
}

/// One replica process and its endpoint.
pub struct Replica {
    pub binary: Binary,
    pub endpoint: Endpoint,
    pub identity: String,
}

impl Replica {
    /// Waits until its `/readyz` answers 200.
    pub async fn ready(&self, limit: Duration) {
        let health = self.endpoint.health;
        super::server::eventually(limit, "replica ready", async || {
            super::server::health_get(health, "/readyz").await.is_some_and(|(s, _)| s == 200)
        })
        .await;
    }
}

/// The Lease holder's identity.
pub async fn leader(admin: &kube::Client) -> Option<String> {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(admin.clone(), NS);
    leases.get_opt("harness-guard").await.ok().flatten().and_then(|l| l.spec?.holder_identity)
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Calls made.
    pub calls: usize,
    /// Calls that did not get harness-guard's answer: when, and the apiserver's message.
    pub failed: Vec<(Instant, String)>,
}

impl Outcome {
    /// From the first failed call to the last (zero when none or one failed).
    pub fn outage(&self) -> Duration {
        match (self.failed.first(), self.failed.last()) {
            (Some((a, _)), Some((b, _))) => b.duration_since(*a),
            _ => Duration::ZERO,
        }
    }
}

/// A steady admission load: `workers` loops, each sending creates of an AgentHarness whose
/// ModelConfig does not exist to namespace `default`, real creates from odd workers and server
/// dry runs from even ones. Each call must come back with harness-guard's refusal; anything else
/// (a failed webhook call, a timeout, an admission without judgement) is a failed call.
pub struct Load {
    stop: tokio::sync::watch::Sender<bool>,
    outcome: Arc<Mutex<Outcome>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(admin: &kube::Client, workers: usize) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let outcome: Arc<Mutex<Outcome>> = Arc::default();
        let gvk = GroupVersionKind::gvk("kagent.dev", "v1alpha2", "AgentHarness");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "agentharnesses");
        let tasks = (0..workers)
            .map(|worker| {
                let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), "default", &resource);
                let (stopped, outcome) = (stopped.clone(), outcome.clone());
                tokio::spawn(async move {
                    let harness: DynamicObject = serde_json::from_value(json!({
                        "apiVersion": "kagent.dev/v1alpha2", "kind": "AgentHarness",
                        "metadata": {"name": format!("load-{worker}")},
                        "spec": {"backend": "openclaw", "modelConfigRef": "load-missing"}}))
                    .unwrap();
                    let params = PostParams { dry_run: worker % 2 == 0, ..PostParams::default() };
                    while !*stopped.borrow() {
                        let answer = api.create(&params, &harness).await;
                        let failure = match answer {
                            Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("load-missing") => None,
                            Err(e) => Some(e.to_string()),
                            Ok(_) => Some("admitted without harness-guard's judgement".to_string()),
                        };
                        let mut o = outcome.lock().unwrap();
                        o.calls += 1;
                        if let Some(message) = failure {
                            o.failed.push((Instant::now(), message));
                        }
                    }
                })
            })
            .collect();
        Self { stop, outcome, tasks }
    }

    /// Calls so far.
    pub fn calls(&self) -> usize {
        self.outcome.lock().unwrap().calls
    }

    /// Stops the load and returns what it saw.
    pub async fn stop(self) -> Outcome {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        std::mem::take(&mut *self.outcome.lock().unwrap())
    }
}

/// Waits until the apiserver calls harness-guard and gets its answer: it has loaded the
/// webhook configurations and their caBundle, and a replica is ready behind the Service.
pub async fn wait_judged(admin: &kube::Client, limit: Duration) {
    super::server::eventually(limit, "a first call judged by harness-guard", async || {
        let probe = Load::start(admin, 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let outcome = probe.stop().await;
        outcome.calls > 0 && outcome.failed.is_empty()
    })
    .await;
}
