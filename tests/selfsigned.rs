//! Self-signed certificate mode against the test's own API server: one writer fills the TLS
//! Secret once and patches the caBundle of both webhook configurations, a second replica reuses
//! the Secret, and renewal swaps the serving certificate with no failed request.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::fake_apiserver::FakeApi;
use common::fixtures::repo_file;
use common::server::{TestServer, eventually, metric, serve_args};
use common::tls::{Conn, Proto, client_config};
use serde_json::{Value, json};

const SERVICE_DNS: &str = "harness-guard.harness-guard.svc";

fn webhook(name: &str, path: &str) -> Value {
    json!({"name": name, "clientConfig": {"service": {"name": "harness-guard", "namespace": "harness-guard", "path": path}},
           "sideEffects": "None", "admissionReviewVersions": ["v1"]})
}

async fn cluster() -> FakeApi {
    let api = FakeApi::start(&std::fs::read_to_string(repo_file("examples/cluster/00-good.yaml")).unwrap(), true).await;
    api.apply(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "harness-guard-tls", "namespace": "harness-guard"}, "data": {"tls.crt": "", "tls.key": ""}}));
    api.apply(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "harness-guard"}, "webhooks": [webhook("harnesses.harness-guard.dev", "/validate"), webhook("pods.harness-guard.dev", "/validate")]}));
    api.apply(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "harness-guard"}, "webhooks": [webhook("pods.mutate.harness-guard.dev", "/mutate")]}));
    api
}

async fn replica(
    api: &FakeApi,
    dir: &std::path::Path,
    identity: &str,
    leaf_seconds: &str,
    renew_seconds: &str,
) -> TestServer {
    let kubeconfig = api.kubeconfig(dir);
    let args = serve_args(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--self-signed-secret",
        "harness-guard-tls",
        "--namespace",
        "harness-guard",
        "--service",
        "harness-guard",
        "--validating-webhook",
        "harness-guard",
        "--mutating-webhook",
        "harness-guard",
        "--identity",
        identity,
        "--cert-check-seconds",
        "1",
        "--leaf-validity-seconds",
        leaf_seconds,
        "--renew-before-seconds",
        renew_seconds,
    ]);
    let server = TestServer::start(args).await;
    server.wait_ready(Duration::from_secs(15)).await;
    server
}

/// The caBundle of every webhook in both configurations, decoded.
fn ca_bundles(api: &FakeApi) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
        let config = api.get(kind, "", "harness-guard").unwrap();
        for w in config["webhooks"].as_array().unwrap() {
            let bundle: k8s_openapi::ByteString =
                serde_json::from_value(w["clientConfig"]["caBundle"].clone()).unwrap_or_default();
            out.push(bundle.0);
        }
    }
    out
}

fn secret_rv(api: &FakeApi) -> String {
    api.get("Secret", "harness-guard", "harness-guard-tls").unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn one_writer_shared_secret_and_ca_bundles() {
    let api = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let a = replica(&api, dir.path(), "replica-a", "31536000", "2592000").await;
    let bundles = ca_bundles(&api);
    assert_eq!(bundles.len(), 3);
    assert!(
        bundles.iter().all(|b| b.starts_with(b"-----BEGIN CERTIFICATE-----") && *b == bundles[0]),
        "caBundle on every webhook"
    );
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &bundles[0]).unwrap();
    let config = client_config(&[&ca], Proto::H2);
    let served_a = Conn::open_as(a.addr(), config.clone(), Proto::H2, SERVICE_DNS).await.unwrap().peer_cert;
    let written = secret_rv(&api);

    let b = replica(&api, dir.path(), "replica-b", "31536000", "2592000").await;
    let served_b = Conn::open_as(b.addr(), config.clone(), Proto::H2, SERVICE_DNS).await.unwrap().peer_cert;
    assert_eq!(served_a, served_b, "both replicas serve the pair from the one Secret");
    // Two more passes of replica b (checks every second), each a chance to write if it would.
    let checks = "harness_guard_certificate_checks_total";
    let before = metric(b.running.health_addr, checks).await;
    eventually(Duration::from_secs(10), "two more certificate checks by replica b", async || {
        metric(b.running.health_addr, checks).await >= before + 2.0
    })
    .await;
    assert_eq!(secret_rv(&api), written, "the Secret is written once, not by every replica");
    let lease = api.get("Lease", "harness-guard", "harness-guard").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");
    assert_eq!(ca_bundles(&api), bundles, "caBundles are stable");
}

#[tokio::test]
async fn renewal_swaps_the_serving_certificate_without_a_failed_request() {
    let api = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    // A 9 s certificate renewed 5 s before it ends: a new serving certificate every ~4 s.
    let a = replica(&api, dir.path(), "replica-a", "9", "5").await;
    let b = replica(&api, dir.path(), "replica-b", "9", "5").await;
    let bundles = ca_bundles(&api);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &bundles[0]).unwrap();
    let body = std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap();
    let (mut sent, mut failed, mut served) = (0, Vec::new(), BTreeSet::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for (server, proto) in [(&a, Proto::H1), (&b, Proto::H2), (&a, Proto::H2), (&b, Proto::H1)] {
            sent += 1;
            let result = async {
                let mut conn = Conn::open_as(server.addr(), client_config(&[&ca], proto), proto, SERVICE_DNS).await?;
                served.insert(conn.peer_cert.to_vec());
                let (res, _) = conn.post("/validate?timeout=5s", body.clone()).await?;
                if res.status() == 200 { Ok(()) } else { Err(format!("status {}", res.status())) }
            }
            .await;
            if let Err(e) = result {
                failed.push(e);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed.is_empty(), "{} of {sent} requests failed: {failed:?}", failed.len());
    assert!(
        served.len() >= 2,
        "the serving certificate was renewed ({} distinct seen in {sent} requests)",
        served.len()
    );
    assert_eq!(ca_bundles(&api), bundles, "renewal keeps the CA, so the caBundle never changes");
}
