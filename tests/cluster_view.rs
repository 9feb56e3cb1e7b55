//! The cluster view against a real kube-apiserver (envtest assets): kube-rs's watchers list in
//! pages and follow continue tokens, see creates, updates and deletes as they happen, keep to the
//! watch scope, and a restarted replica converges on what changed while it was down. Faults the
//! real apiserver cannot be made to produce on demand (500s, 410 Gone on a watch, an object that
//! does not deserialize) stay with the test's own API server (`tests/cluster.rs`, `tests/faults.rs`).

mod common;

use std::time::Duration;

use common::fixtures::repo_file;
use common::server::{TestServer, eventually, metric, serve_args};
use common::tls::{Conn, Proto, client_config};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

async fn verdict(server: &TestServer, review: &str) -> Value {
    let mut conn = Conn::open(server.addr(), client_config(&[&server.ca], Proto::H2), Proto::H2).await.unwrap();
    let body = std::fs::read(repo_file(review)).unwrap();
    let (_, bytes) = conn.post("/validate?timeout=5s", body).await.unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["response"].clone()
}

fn message(v: &Value) -> String {
    v["status"]["message"].as_str().unwrap_or_default().to_string()
}

async fn start(plane: &common::envtest::ControlPlane, dir: &std::path::Path, extra: &[&str]) -> TestServer {
    let certs = dir.join("certs");
    let mut flags = vec!["--kubeconfig", plane.kubeconfig.to_str().unwrap(), "--dev-cert-dir", certs.to_str().unwrap()];
    flags.extend_from_slice(extra);
    let mut server = TestServer::start(serve_args(&flags)).await;
    server.ca = certs.join("ca.crt");
    server.wait_ready(Duration::from_secs(60)).await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn the_view_pages_watches_keeps_to_its_scope_and_converges_after_a_restart() {
    let Some(plane) = common::envtest::shared() else { return };
    let admin = plane.client().await;
    common::envtest::kagent_crds(&admin).await;
    for ns in ["team-a", "bulk", "elsewhere", "harness-guard"] {
        common::envtest::namespace(&admin, ns).await;
    }
    // The good chain of the examples, a ModelConfig whose Secret is missing, and 1,100
    // ConfigMaps: more than two pages of the watchers' 500.
    let good: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(repo_file("examples/cluster/00-good.yaml")).unwrap())
            .unwrap();
    let mut objects = good;
    objects.push(json!({"apiVersion": "kagent.dev/v1alpha2", "kind": "ModelConfig",
        "metadata": {"name": "gpt-missing-secret", "namespace": "team-a"},
        "spec": {"provider": "OpenAI", "model": "gpt-4.1-mini", "apiKeySecret": "openai-creds", "apiKeySecretKey": "OPENAI_API_KEY"}}));
    assert_eq!(common::envtest::apply(&admin, &objects, "team-a", false).await, Vec::<String>::new());
    let bulk: Vec<Value> = (0..1_100)
        .map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:04}"), "namespace": "bulk"},
                        "data": {"k": "v"}}))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in bulk.chunks(100) {
        let (admin, chunk) = (admin.clone(), chunk.to_vec());
        tasks.spawn(async move { common::envtest::apply(&admin, &chunk, "bulk", false).await });
    }
    while let Some(refused) = tasks.join_next().await {
        assert_eq!(refused.unwrap(), Vec::<String>::new());
    }

    let dir = tempfile::tempdir().unwrap();
    let server = start(plane, dir.path(), &[]).await;
    let health = server.running.health_addr;
    // Every page was read: the view holds every ConfigMap the apiserver lists (the bulk ones and
    // the apiserver's own), and the chain's objects.
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::all(admin.clone());
    let listed = config_maps.list(&Default::default()).await.unwrap().items.len();
    assert!(listed >= 1_100, "{listed}");
    assert_eq!(metric(health, "harness_guard_view_objects{kind=\"ConfigMap\"}").await, listed as f64);
    assert_eq!(metric(health, "harness_guard_view_objects{kind=\"ModelConfig\"}").await, 2.0);
    assert_eq!(verdict(&server, "examples/reviews/harness-good.json").await["allowed"], true);

    // Watches: the missing Secret appears, its key is emptied, it is deleted.
    let first = verdict(&server, "examples/reviews/harness-missing-secret.json").await;
    assert!(message(&first).contains("Secret team-a/openai-creds does not exist"), "{first}");
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "team-a");
    let creds = |value: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "openai-creds", "namespace": "team-a"},
               "stringData": {"OPENAI_API_KEY": value}})
    };
    assert!(common::envtest::apply(&admin, &[creds("sk-test-other")], "team-a", false).await.is_empty());
    eventually(Duration::from_secs(10), "allowed once the Secret exists", async || {
        verdict(&server, "examples/reviews/harness-missing-secret.json").await["allowed"] == true
    })
    .await;
    assert!(common::envtest::apply(&admin, &[creds("")], "team-a", false).await.is_empty());
    eventually(Duration::from_secs(10), "an emptied key denied", async || {
        message(&verdict(&server, "examples/reviews/harness-missing-secret.json").await).contains("its value is empty")
    })
    .await;
    secrets.delete("openai-creds", &DeleteParams::default()).await.unwrap();
    eventually(Duration::from_secs(10), "a deleted Secret denied", async || {
        message(&verdict(&server, "examples/reviews/harness-missing-secret.json").await).contains("does not exist")
    })
    .await;

    // Down: the key Secret of the good chain is deleted, the missing one created. Up again: the
    // view holds the cluster as it is now.
    drop(server);
    secrets.delete("litellm-key", &DeleteParams::default()).await.unwrap();
    assert!(common::envtest::apply(&admin, &[creds("sk-test-again")], "team-a", false).await.is_empty());
    let dir2 = tempfile::tempdir().unwrap();
    let server = start(plane, dir2.path(), &[]).await;
    let good = verdict(&server, "examples/reviews/harness-good.json").await;
    assert_eq!(good["allowed"], false, "litellm-key was deleted while down: {good}");
    assert!(message(&good).contains("Secret team-a/litellm-key does not exist"), "{good}");
    assert_eq!(verdict(&server, "examples/reviews/harness-missing-secret.json").await["allowed"], true);
    drop(server);

    // Scope: watching team-a only, the bulk namespace is not in the view.
    let policy = dir2.path().join("policy.yaml");
    std::fs::write(&policy, "watch:\n  namespaces: [team-a]\n").unwrap();
    let dir3 = tempfile::tempdir().unwrap();
    let scoped = start(plane, dir3.path(), &["--config", policy.to_str().unwrap()]).await;
    let health = scoped.running.health_addr;
    assert_eq!(metric(health, "harness_guard_view_objects{kind=\"ConfigMap\"}").await, 0.0);
    assert_eq!(metric(health, "harness_guard_view_objects{kind=\"ModelConfig\"}").await, 2.0);
}
