//! A real control plane for tests: etcd and kube-apiserver from `KUBEBUILDER_ASSETS` (the layout
//! controller-runtime's envtest uses; `.ci/run` lays it out with `../shared/envtest/setup`), on
//! free loopback ports, with certificates made here. Started once per test binary; tests isolate
//! themselves by namespace.
//!
//! The processes never outlive the test binary: each runs under a small shell that holds a pipe
//! from the test process and kills its child (and removes its files) when that pipe closes,
//! however the test ends.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose};

/// Why a test that needs the control plane could not get one.
const HOW: &str = "set KUBEBUILDER_ASSETS to a directory holding kube-apiserver and etcd: \
     `export KUBEBUILDER_ASSETS=$(../shared/envtest/setup target/envtest | tail -1)`, \
     or elsewhere `setup-envtest use 1.36.x -p path`";

/// A running etcd and kube-apiserver, and an admin kubeconfig for them.
pub struct ControlPlane {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// An admin (system:masters) kubeconfig file.
    pub kubeconfig: PathBuf,
    /// The CA the apiserver's serving certificate chains to.
    pub ca_pem: String,
    dir: PathBuf,
    _processes: Vec<Child>,
}

/// The control plane of this test binary, started on first use. `None` (with a loud notice)
/// when the assets are absent and the run does not require them; CI sets
/// `HARNESS_GUARD_REQUIRE_ENVTEST=1`, so there a missing asset fails the test instead.
pub fn shared() -> Option<&'static ControlPlane> {
    static PLANE: OnceLock<Option<ControlPlane>> = OnceLock::new();
    PLANE
        .get_or_init(|| match std::env::var_os("KUBEBUILDER_ASSETS") {
            Some(dir) => Some(ControlPlane::start(Path::new(&dir))),
            None if std::env::var_os("HARNESS_GUARD_REQUIRE_ENVTEST").is_some() => {
                panic!("no control plane: {HOW}")
            }
            None => {
                eprintln!("SKIPPED: this test needs a real kube-apiserver; {HOW}");
                None
            }
        })
        .as_ref()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `program` under a shell that kills it when the test process's end of its stdin closes.
/// `clean` is removed once it has stopped (its data: nothing of a test run outlives it).
fn spawn_tethered(program: &Path, args: &[String], log: &Path, clean: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new("bash")
        .env("TETHER_CLEAN", clean)
        .arg("-c")
        .arg(r#""$@" </dev/null & child=$!; read -r _; kill -KILL "$child" 2>/dev/null; rm -rf "$TETHER_CLEAN""#)
        .arg("tethered")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

impl ControlPlane {
    fn start(assets: &Path) -> Self {
        for bin in ["etcd", "kube-apiserver"] {
            assert!(assets.join(bin).exists(), "{} has no {bin}: {HOW}", assets.display());
        }
        let dir = std::env::temp_dir().join(format!("harness-guard-envtest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();

        // The apiserver's serving pair, and an admin client certificate under the same CA.
        let sans = ["127.0.0.1", "localhost", "kubernetes.default.svc"].map(String::from);
        let bundle = harness_guard::certs::generate(&sans, Duration::from_secs(86_400)).unwrap();
        let issuer = Issuer::from_ca_cert_pem(&bundle.ca_cert, KeyPair::from_pem(&bundle.ca_key).unwrap()).unwrap();
        let mut admin = CertificateParams::new(Vec::<String>::new()).unwrap();
        admin.distinguished_name.push(DnType::CommonName, "admin");
        admin.distinguished_name.push(DnType::OrganizationName, "system:masters");
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        admin.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let admin_key = KeyPair::generate().unwrap();
        let admin_cert = admin.signed_by(&admin_key, &issuer).unwrap().pem();
        let sa_key = KeyPair::generate().unwrap();

        let ca = write(&dir, "ca.crt", &bundle.ca_cert);
        let cert = write(&dir, "apiserver.crt", &bundle.cert);
        let key = write(&dir, "apiserver.key", &bundle.key);
        let sa_pub = write(&dir, "sa.pub", &sa_key.public_key_pem());
        let sa_priv = write(&dir, "sa.key", &sa_key.serialize_pem());

        let (client, peer, secure) = (free_port(), free_port(), free_port());
        let etcd_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let etcd = spawn_tethered(
            &assets.join("etcd"),
            &[
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--name=default".into(),
            ],
            &dir.join("etcd.log"),
            &dir.join("etcd"),
        );
        let url = format!("https://127.0.0.1:{secure}");
        let apiserver = spawn_tethered(
            &assets.join("kube-apiserver"),
            &[
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={secure}"),
                "--advertise-address=127.0.0.1".into(),
                "--endpoint-reconciler-type=none".into(),
                format!("--etcd-servers={etcd_url}"),
                format!("--tls-cert-file={cert}"),
                format!("--tls-private-key-file={key}"),
                format!("--client-ca-file={ca}"),
                format!("--service-account-issuer={url}"),
                format!("--service-account-key-file={sa_pub}"),
                format!("--service-account-signing-key-file={sa_priv}"),
                "--service-cluster-ip-range=127.0.100.0/24".into(),
                "--authorization-mode=RBAC".into(),
                "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook"
                    .into(),
            ],
            &dir.join("kube-apiserver.log"),
            &dir,
        );

        let b64 = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(s)
        };
        let kubeconfig = dir.join("admin.kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: {url}\n    \
                 certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    \
                 client-key-data: {}\ncontexts:\n- name: envtest\n  context: {{cluster: envtest, user: admin}}\n\
                 current-context: envtest\n",
                b64(&bundle.ca_cert),
                b64(&admin_cert),
                b64(&admin_key.serialize_pem()),
            ),
        )
        .unwrap();
        let plane =
            Self { url, kubeconfig, ca_pem: bundle.ca_cert, dir: dir.clone(), _processes: vec![etcd, apiserver] };
        plane.wait_ready();
        plane
    }

    /// Waits for `GET /readyz` to answer 200 (3–6 s here), at most a minute. On a thread of its
    /// own: the first caller may be inside a test's runtime.
    fn wait_ready(&self) {
        std::thread::scope(|s| s.spawn(|| self.poll_ready()).join().unwrap());
    }

    fn poll_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        loop {
            let ready = runtime.block_on(async {
                let client = self.client().await;
                let request = http::Request::get("/readyz").body(Vec::new()).unwrap();
                client.request_text(request).await.is_ok_and(|t| t.trim() == "ok")
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready within a minute; its log:\n{}",
                self.log("kube-apiserver")
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Starts kube-controller-manager (once per binary) with the namespace controller, the
    /// garbage collector and the ServiceAccount controllers, each under its own ServiceAccount in
    /// `kube-system`, as in a real cluster: their deletes reach webhooks as those users. Flags
    /// from `../shared/envtest/README.md`.
    pub fn controller_manager(&self) {
        static KCM: OnceLock<std::sync::Mutex<Child>> = OnceLock::new();
        KCM.get_or_init(|| {
            let assets = PathBuf::from(std::env::var_os("KUBEBUILDER_ASSETS").expect("assets: the plane runs"));
            let program = assets.join("kube-controller-manager");
            assert!(program.exists(), "{} has no kube-controller-manager: {HOW}", assets.display());
            let path = |name: &str| self.dir.join(name).display().to_string();
            let child = spawn_tethered(
                &program,
                &[
                    format!("--kubeconfig={}", path("admin.kubeconfig")),
                    "--controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token".into(),
                    "--use-service-account-credentials".into(),
                    format!("--service-account-private-key-file={}", path("sa.key")),
                    format!("--root-ca-file={}", path("ca.crt")),
                    "--leader-elect=false".into(),
                    "--bind-address=127.0.0.1".into(),
                    "--secure-port=0".into(),
                ],
                &self.dir.join("kube-controller-manager.log"),
                &self.dir.join("kube-controller-manager.d"),
            );
            std::sync::Mutex::new(child)
        });
    }

    /// The last lines of a component's log (`etcd`, `kube-apiserver`, `kube-controller-manager`).
    pub fn log(&self, component: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("{component}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A kubeconfig (written under `dir`) that authenticates as ServiceAccount `ns/account` with a
    /// token from the TokenRequest API: the RBAC the process gets is the account's, as in a pod.
    pub async fn service_account_kubeconfig(
        &self,
        admin: &kube::Client,
        ns: &str,
        account: &str,
        dir: &Path,
    ) -> PathBuf {
        use base64::Engine;
        use k8s_openapi::api::authentication::v1::TokenRequest;
        use k8s_openapi::api::core::v1::ServiceAccount;
        use kube::api::{Api, PostParams};
        let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
        let request: TokenRequest = serde_json::from_value(serde_json::json!({"spec": {"audiences": []}})).unwrap();
        let token = accounts.create_token_request(account, &PostParams::default(), &request).await.unwrap();
        let token = token.status.unwrap().token;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let path = dir.join(format!("{ns}-{account}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{}', certificate-authority-data: {ca}}}}}]\n\
                 users: [{{name: sa, user: {{token: '{token}'}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: sa}}}}]\n\
                 current-context: c\n",
                self.url
            ),
        )
        .unwrap();
        path
    }

    /// An admin kube-rs client, on the calling runtime.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

/// Creates the CustomResourceDefinitions in `files` (YAML, one or more documents each) and waits
/// until each is Established. Already present ones are left as they are.
pub async fn install_crds(client: &kube::Client, files: &[PathBuf]) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, PostParams};
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let crds: Vec<CustomResourceDefinition> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{} is not a CRD: {e}", file.display()));
        for crd in crds {
            names.push(crd.metadata.name.clone().unwrap());
            match api.create(&PostParams::default(), &crd).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("cannot create CRD from {}: {e}", file.display()),
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in names {
        loop {
            let crd = api.get(&name).await.unwrap();
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            assert!(Instant::now() < deadline, "CRD {name} not Established within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Creates namespace `name` unless it exists.
pub async fn namespace(client: &kube::Client, name: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("cannot create namespace {name}: {e}"),
    }
}

/// The kagent CRDs the cluster view watches (AgentHarness, ModelConfig), Established.
pub async fn kagent_crds(client: &kube::Client) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/domain/crds");
    let files = ["agentharnesses.kagent.dev.yaml", "modelconfigs.kagent.dev.yaml"].map(|f| dir.join(f));
    install_crds(client, &files).await;
}

/// Server-side applies each object (JSON, as rendered) under its own kind, found by discovery;
/// namespaced ones without a namespace go to `namespace`. With `dry_run` nothing is stored.
/// Returns the refusals, one line each (`Kind name: error`).
pub async fn apply(
    client: &kube::Client,
    objects: &[serde_json::Value],
    namespace: &str,
    dry_run: bool,
) -> Vec<String> {
    use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
    use kube::discovery::{Discovery, Scope};
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let params = PatchParams { dry_run, force: true, ..PatchParams::apply("harness-guard-test") };
    let mut refused = Vec::new();
    for obj in objects {
        let object: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
        let types = object.types.clone().unwrap();
        let gvk = GroupVersionKind::try_from(&types).unwrap();
        let Some((resource, caps)) = discovery.resolve_gvk(&gvk) else {
            refused.push(format!("{} {:?}: the apiserver does not serve it", types.kind, object.metadata.name));
            continue;
        };
        let name = object.metadata.name.clone().unwrap();
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => {
                let ns = object.metadata.namespace.clone().unwrap_or_else(|| namespace.to_string());
                Api::namespaced_with(client.clone(), &ns, &resource)
            }
        };
        if let Err(e) = api.patch(&name, &params, &Patch::Apply(&object)).await {
            refused.push(format!("{} {name}: {e}", types.kind));
        }
    }
    refused
}

/// `harness-guard serve` arguments of a self-signed replica in `namespace`, whose webhook
/// configurations are both named `configs`, checking every second.
pub fn replica_args(kubeconfig: &Path, namespace: &str, configs: &str) -> Vec<String> {
    let kubeconfig = kubeconfig.to_str().unwrap();
    [
        "--kubeconfig",
        kubeconfig,
        "--self-signed-secret",
        "harness-guard-tls",
        "--namespace",
        namespace,
        "--validating-webhook",
        configs,
        "--mutating-webhook",
        configs,
        "--lease",
        "harness-guard",
        "--identity",
        "replica-0",
        "--cert-check-seconds",
        "1",
    ]
    .map(String::from)
    .to_vec()
}
