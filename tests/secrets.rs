//! Secrets stay secret: values carrying a unique marker go through every path (manifests and
//! cluster mode, last-applied annotations, denials, unreadable objects, malformed bodies), and the
//! marker must never appear in a response, a log line or `/metrics`, nor in the stored view.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::fake_apiserver::FakeApi;
use common::fixtures::fixture;
use common::server::{TestServer, health_get, serve_args};
use common::tls::{Conn, Proto, client_config};
use harness_guard::cluster::ingest::{AgentHarnessResource, Ingest};
use harness_guard::core::view::Digester;
use serde_json::{Value, json};

const MARKER: &str = "sk-MARKER-5e1f0c2d9b";

/// Every log line of this test binary, captured by a global subscriber at debug level.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        tracing_subscriber::fmt().json().with_env_filter("debug").with_writer(move || LogWriter(writer.clone())).init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);
impl Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn cluster_yaml() -> String {
    let last_applied =
        json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"OPENAI_API_KEY": MARKER}}).to_string();
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata:
  name: litellm-key
  namespace: team-a
  annotations: {{kubectl.kubernetes.io/last-applied-configuration: '{last_applied}'}}
stringData: {{OPENAI_API_KEY: "{MARKER}\n"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: tg, namespace: team-a}}
data: {{token: "{MARKER}"}}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {{name: litellm-gpt, namespace: team-a}}
spec: {{model: gpt, apiKeySecret: litellm-key, apiKeySecretKey: OPENAI_API_KEY}}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata:
  name: applied
  namespace: team-a
  annotations: {{kubectl.kubernetes.io/last-applied-configuration: '{{"spec":{{"env":[{{"value":"{MARKER}"}}]}}}}'}}
spec: {{backend: openclaw, modelConfigRef: litellm-gpt}}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {{name: literals, namespace: team-a}}
spec:
  backend: openclaw
  runtime: substrate
  substrate: {{gatewayToken: "{MARKER}"}}
  env: [{{name: LLM, value: "{MARKER}"}}]
  channels:
  - name: main
    type: slack
    slack: {{botToken: {{value: "{MARKER}"}}, appToken: {{value: "{MARKER}"}}}}
  - name: tg
    type: telegram
    telegram: {{botToken: {{value: "{MARKER}"}}}}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {{name: unreadable, namespace: team-a}}
spec: {{backend: openclaw, env: "{MARKER}"}}
"#
    )
}

/// Request bodies that carry the marker.
fn requests() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut harness = fixture("kagent/agentharness-create.validating.json");
    harness["request"]["object"]["spec"]["env"] =
        json!([{"name": "LLM", "value": MARKER}, {"name": "OPENAI_API_KEY", "value": format!("{MARKER}-other")}]);
    out.push(("/validate", serde_json::to_vec(&harness).unwrap()));
    let mut unreadable = fixture("kagent/agentharness-create.validating.json");
    unreadable["request"]["object"]["spec"]["env"] = json!(MARKER);
    out.push(("/validate", serde_json::to_vec(&unreadable).unwrap()));
    let mut pod = fixture("kagent/pod-sandbox-create.validating.json");
    pod["request"]["object"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "K", "value": MARKER}));
    out.push(("/validate", serde_json::to_vec(&pod).unwrap()));
    let mut pod = fixture("kagent/pod-sandbox-create.mutating.json");
    pod["request"]["object"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "HTTPS_PROXY", "value": MARKER}));
    out.push(("/mutate", serde_json::to_vec(&pod).unwrap()));
    let mut secret = fixture("kagent/secret-delete.validating.json");
    secret["request"]["oldObject"]["stringData"] = json!({"x": MARKER});
    out.push(("/validate", serde_json::to_vec(&secret).unwrap()));
    let mut bad_op = fixture("kagent/agentharness-create.validating.json");
    bad_op["request"]["operation"] = json!(MARKER);
    out.push(("/validate", serde_json::to_vec(&bad_op).unwrap()));
    let mut bad_type = fixture("kagent/agentharness-create.validating.json");
    bad_type["request"]["dryRun"] = json!(MARKER);
    out.push(("/validate", serde_json::to_vec(&bad_type).unwrap()));
    out.push(("/validate", format!("{{\"apiVersion\": \"{MARKER}\"").into_bytes()));
    out
}

async fn drive(server: &TestServer) -> String {
    let mut seen = String::new();
    for proto in [Proto::H1, Proto::H2] {
        for (path, body) in requests() {
            let mut conn = Conn::open(server.addr(), client_config(&[&server.ca], proto), proto).await.unwrap();
            let (res, bytes) = conn.post(path, body).await.unwrap();
            seen.push_str(&format!("{:?}\n", res.headers()));
            seen.push_str(&String::from_utf8_lossy(&bytes));
            // A decoded patch would show a value in plain text: check that form too.
            let answer = serde_json::from_slice::<Value>(&bytes).unwrap_or_default();
            if let Some(patch) = common::patch_of(&answer["response"]) {
                seen.push_str(&serde_json::to_string(&patch).unwrap());
            }
        }
    }
    seen.push_str(&health_get(server.running.health_addr, "/metrics").await.unwrap().1);
    seen
}

fn assert_denied_without_value(seen: &str) {
    // The decisions did fire on the marker (so the test exercised the paths)...
    assert!(seen.contains("holds the model API key"), "key-in-env denial expected:\n{seen}");
    assert!(seen.contains("holds a ModelConfig's API key"), "pod literal denial expected");
    assert!(seen.contains("cannot read AgentHarness"), "unreadable object answer expected");
    // ...and never showed it.
    assert!(!seen.contains(MARKER), "marker leaked into a response or /metrics");
}

#[tokio::test]
async fn no_value_leaks_on_the_builtin_default() {
    let logs = logs();
    let dir = tempfile::tempdir().unwrap();
    // The manifest loader refuses an unreadable object outright (cluster mode skips it), and
    // its error must not show the value either.
    let (readable, unreadable) =
        cluster_yaml().rsplit_once("---").map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), format!("{readable}---{unreadable}")).unwrap();
    let refused = harness_guard::app::start(
        serve_args(&[
            "--manifests",
            dir.path().to_str().unwrap(),
            "--dev-cert-dir",
            dir.path().join("c").to_str().unwrap(),
        ]),
        std::future::pending(),
    )
    .await;
    let error = refused.err().expect("an unreadable manifest stops the server").to_string();
    assert!(
        error.contains("cluster.yaml: document 6 (AgentHarness team-a/unreadable): spec.env: invalid type"),
        "{error}"
    );
    assert!(!error.contains(MARKER), "{error}");
    std::fs::write(dir.path().join("cluster.yaml"), readable).unwrap();
    let server = TestServer::builtin(dir.path(), &[]).await;
    server.wait_ready(Duration::from_secs(10)).await;
    assert_denied_without_value(&drive(&server).await);
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("\"message\":\"admission\""), "logs were captured");
    assert!(!logs.contains(MARKER), "marker leaked into logs");
}

#[tokio::test]
async fn no_value_leaks_in_cluster_mode() {
    let logs = logs();
    let api = FakeApi::start(&cluster_yaml(), true).await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::cluster(&api, dir.path(), &[]).await;
    server.wait_ready(Duration::from_secs(10)).await;
    let view = &server.running.state.view;
    // Harnesses and ModelConfigs serialize every string they hold (literals as they are kept);
    // Secrets and ConfigMaps hold no text type for a value at all.
    let stored = format!(
        "{:?}{:?}{}{}",
        view.secrets.all(),
        view.config_maps.all(),
        serde_json::to_string(&view.harnesses.all().iter().map(|h| &**h).collect::<Vec<_>>()).unwrap(),
        serde_json::to_string(&view.model_configs.all().iter().map(|m| &**m).collect::<Vec<_>>()).unwrap()
    );
    assert!(stored.contains("litellm-key") && stored.contains("applied"), "the view holds the objects");
    assert!(stored.contains("\"literals\"") && stored.contains("\"inlineGatewayToken\":true"), "{stored}");
    assert!(!stored.contains(MARKER), "plaintext value held in the view: {stored}");
    assert!(!stored.contains("last-applied-configuration"), "last-applied annotation kept");
    assert_denied_without_value(&drive(&server).await);
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("does not deserialize"), "the unreadable harness was logged");
    assert!(!logs.contains(MARKER), "marker leaked into logs");
}

#[test]
fn stored_forms_hold_no_value() {
    let digester = Digester::random();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&cluster_yaml()).unwrap();
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(docs[0].clone()).unwrap();
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(docs[1].clone()).unwrap();
    let harness: harness_guard::core::model::AgentHarness = serde_json::from_value(docs[4].clone()).unwrap();
    let read = serde_json::to_string(&harness).unwrap();
    // Env values and the four inline tokens are read as text; the gateway token is dropped as read.
    assert_eq!(read.matches(MARKER).count(), 4, "inputs carry the marker: {read}");
    let served: AgentHarnessResource = serde_json::from_value(docs[4].clone()).unwrap();
    let harness = served.ingest(&digester);
    let kept = serde_json::to_string(&harness).unwrap();
    assert!(!kept.contains(MARKER), "{kept}");
    assert!(kept.contains("\"placeholder\":false") && kept.contains("\"inlineGatewayToken\":true"), "{kept}");
    let stored = format!("{:?}{:?}{kept}", secret.ingest(&digester), cm.ingest(&digester));
    assert!(!stored.contains(MARKER), "{stored}");
    assert!(stored.contains("OPENAI_API_KEY") && stored.contains("token"), "key names are kept: {stored}");
}
