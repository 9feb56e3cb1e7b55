//! Cluster mode against a Kubernetes API server served by the test itself: the real kube-rs
//! client and watchers, unchanged. It is here for what the real apiserver cannot be made to do on
//! demand (hold a list back, serve an object its own schema would refuse) and to count requests;
//! the same paths against a real kube-apiserver are in `tests/cluster_view.rs`.

mod common;

use std::time::Duration;

use common::fake_apiserver::FakeApi;
use common::fixtures::repo_file;
use common::server::{TestServer, eventually, health_get};
use common::tls::{Conn, Proto, client_config};
use serde_json::{Value, json};

const CLUSTER: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: litellm-key, namespace: team-a}
type: Opaque
data: {OPENAI_API_KEY: c2stdGVzdC1ub3QtYS1yZWFsLWtleQ==}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: litellm-gpt, namespace: team-a}
spec: {model: gpt-4.1-mini, apiKeySecret: litellm-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: gpt-missing-secret, namespace: team-a}
spec: {model: gpt-4.1-mini, apiKeySecret: openai-creds, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {name: broken-object, namespace: team-a}
spec: {backend: openclaw, env: "this is not a list"}
"#;

async fn verdict(server: &TestServer, review: &str) -> Value {
    let mut conn = Conn::open(server.addr(), client_config(&[&server.ca], Proto::H2), Proto::H2).await.unwrap();
    let body = std::fs::read(repo_file(review)).unwrap();
    let (_, bytes) = conn.post("/validate?timeout=5s", body).await.unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["response"].clone()
}

#[tokio::test]
async fn ready_only_after_sync_and_one_bad_object_does_not_stall_it() {
    let api = FakeApi::start(CLUSTER, false).await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::cluster(&api, dir.path(), &[]).await;
    let health = server.running.health_addr;
    // Lists are held back: once the first is waiting, not ready, and /readyz says why.
    eventually(Duration::from_secs(10), "a list request waiting", async || api.count("list") >= 1).await;
    let (status, body) = health_get(health, "/readyz").await.unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("view synced=false"), "{body}");
    api.open_gate();
    server.wait_ready(Duration::from_secs(10)).await;
    // The undeserializable harness was skipped and counted; the good objects are held.
    let (_, metrics) = health_get(health, "/metrics").await.unwrap();
    assert!(metrics.contains("harness_guard_invalid_objects_total{kind=\"AgentHarness\"} 1"), "{metrics}");
    assert!(metrics.contains("harness_guard_view_objects{kind=\"ModelConfig\"} 2"), "{metrics}");
    assert!(metrics.contains("harness_guard_view_objects{kind=\"AgentHarness\"} 0"), "{metrics}");
    // Secrets are watched without Helm releases and service-account tokens.
    let queries = api.inner.queries.lock().unwrap().clone();
    let secret_query = queries.iter().find(|(p, _)| p == "secrets").map(|(_, q)| q.clone()).unwrap();
    assert!(
        secret_query
            .contains("fieldSelector=type%21%3Dhelm.sh%2Frelease.v1%2Ctype%21%3Dkubernetes.io%2Fservice-account-token"),
        "{secret_query}"
    );
}

#[tokio::test]
async fn a_secret_created_after_the_denial_lets_the_harness_in() {
    let api = FakeApi::start(CLUSTER, true).await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::cluster(&api, dir.path(), &[]).await;
    server.wait_ready(Duration::from_secs(10)).await;
    let requests_after_sync = api.total();

    let first = verdict(&server, "examples/reviews/harness-missing-secret.json").await;
    assert_eq!(first["allowed"], false, "{first}");
    assert!(
        first["status"]["message"].as_str().unwrap().contains("Secret team-a/openai-creds does not exist"),
        "{first}"
    );
    // Every lookup came from the view: the admission made no API request.
    assert_eq!(api.total(), requests_after_sync, "admission must not call the API server");

    api.apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "openai-creds", "namespace": "team-a"},
        "data": {"OPENAI_API_KEY": "c2stdGVzdC1vdGhlcg=="},
    }));
    eventually(Duration::from_secs(10), "harness allowed once the Secret exists", async || {
        verdict(&server, "examples/reviews/harness-missing-secret.json").await["allowed"] == true
    })
    .await;

    // Emptying the key, then deleting the Secret, shows up too.
    api.apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "openai-creds", "namespace": "team-a"},
        "data": {"OPENAI_API_KEY": ""},
    }));
    eventually(Duration::from_secs(10), "emptied key denied", async || {
        let v = verdict(&server, "examples/reviews/harness-missing-secret.json").await;
        v["status"]["message"].as_str().is_some_and(|m| m.contains("its value is empty"))
    })
    .await;
    api.delete("Secret", "team-a", "openai-creds");
    eventually(Duration::from_secs(10), "deleted Secret denied", async || {
        let v = verdict(&server, "examples/reviews/harness-missing-secret.json").await;
        v["status"]["message"].as_str().is_some_and(|m| m.contains("does not exist"))
    })
    .await;
}

#[tokio::test]
async fn namespaces_outside_the_watch_are_not_watched() {
    let api = FakeApi::start(CLUSTER, true).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "watch:\n  namespaces: [team-b]\n").unwrap();
    let server = TestServer::cluster(&api, dir.path(), &["--config", policy.to_str().unwrap()]).await;
    server.wait_ready(Duration::from_secs(10)).await;
    // Only team-b was listed and watched, for each of the four kinds.
    let paths = api.inner.paths.lock().unwrap().clone();
    let view_kinds = ["agentharnesses", "modelconfigs", "secrets", "configmaps"];
    let reads: Vec<&String> = paths.iter().filter(|p| view_kinds.iter().any(|k| p.ends_with(k))).collect();
    assert!(reads.len() >= 4, "{paths:?}");
    assert!(reads.iter().all(|p| p.contains("/namespaces/team-b/")), "a read outside team-b: {paths:?}");
    let v = verdict(&server, "examples/reviews/harness-missing-secret.json").await;
    assert_eq!(v["allowed"], true, "{v}");
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("ModelConfig team-a/gpt-missing-secret is outside the namespaces"), "{warnings}");
}

#[tokio::test]
async fn lists_longer_than_a_page_are_read_whole() {
    // 1,200 objects per kind: kube-rs lists in pages of 500, following continue tokens.
    let mut objects = common::synthetic::objects(1_200);
    objects.extend(serde_saphyr::from_multiple::<Value>(CLUSTER).unwrap());
    let api = FakeApi::start_with(objects, true).await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::cluster(&api, dir.path(), &[]).await;
    server.wait_ready(Duration::from_secs(20)).await;
    let (_, metrics) = health_get(server.running.health_addr, "/metrics").await.unwrap();
    for (kind, n) in [("AgentHarness", 1_200), ("ModelConfig", 1_202), ("Secret", 1_201)] {
        let line = format!("harness_guard_view_objects{{kind=\"{kind}\"}} {n}\n");
        assert!(metrics.contains(&line), "{kind}: {metrics}");
    }
    // Three pages for each of the three large kinds, one for ConfigMaps (the audit's read-back of
    // its Events is a list too, made when this replica takes the Lease: not counted here).
    let view_kinds = ["agentharnesses", "modelconfigs", "secrets", "configmaps"];
    let queries = api.inner.queries.lock().unwrap().clone();
    let lists = queries.iter().filter(|(p, q)| view_kinds.contains(&p.as_str()) && !q.contains("watch=")).count();
    assert_eq!(lists, 10, "{queries:?}");
}

/// A key Secret an ExternalSecret will produce is "not synced yet" (a note), not missing; with
/// creationPolicy Merge it produces nothing. SealedSecrets are not served here: skipped quietly.
#[tokio::test]
async fn secrets_an_external_secret_will_produce_are_not_missing() {
    let api = FakeApi::start(CLUSTER, true).await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::cluster(&api, dir.path(), &[]).await;
    server.wait_ready(Duration::from_secs(10)).await;
    let review = "examples/reviews/harness-missing-secret.json";
    assert_eq!(verdict(&server, review).await["allowed"], false);
    let external = |policy: &str| {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "openai", "namespace": "team-a"},
            "spec": {"target": {"name": "openai-creds", "creationPolicy": policy},
                     "data": [{"secretKey": "OPENAI_API_KEY", "remoteRef": {"key": "llm/openai"}}]}})
    };
    api.apply(external("Merge"));
    api.apply(external("Owner"));
    eventually(Duration::from_secs(10), "the produced Secret counts as present", async || {
        let v = verdict(&server, review).await;
        v["allowed"] == true && v["warnings"].to_string().contains("will be produced by ExternalSecret team-a/openai")
    })
    .await;
    // Switched to Merge, it produces nothing: missing again.
    api.apply(external("Merge"));
    eventually(Duration::from_secs(10), "missing again", async || verdict(&server, review).await["allowed"] == false)
        .await;
}
