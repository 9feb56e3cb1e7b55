//! harness-guard against a real kube-apiserver (envtest assets, `tests/common/envtest.rs`): the
//! self-signed certificate writer as a deployment meets it. Each test works in a namespace of its
//! own on the one control plane of this binary.

mod common;

use std::time::Duration;

use common::server::{TestServer, eventually, serve_args};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

/// A ValidatingWebhookConfiguration named `name` with two webhooks on Service `ns/harness-guard`
/// that match nothing (an object selector no object carries): it is there to be patched, not called.
fn validating(name: &str, ns: &str) -> ValidatingWebhookConfiguration {
    let webhook = |hook: &str| {
        json!({"name": hook, "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Ignore",
               "objectSelector": {"matchLabels": {"harness-guard.dev/never": "true"}},
               "clientConfig": {"service": {"name": "harness-guard", "namespace": ns, "path": "/validate", "port": 443}},
               "rules": [{"apiGroups": ["kagent.dev"], "apiVersions": ["v1alpha2"], "resources": ["agentharnesses"],
                          "operations": ["CREATE"]}]})
    };
    serde_json::from_value(json!({"metadata": {"name": name},
        "webhooks": [webhook("harnesses.harness-guard.dev"), webhook("pods.harness-guard.dev")]}))
    .unwrap()
}

/// #14 fault 1: with `webhooks.podMutation.enabled=false` the chart renders no
/// MutatingWebhookConfiguration, yet the replica is told its name. The leader must still load its
/// certificate, turn ready and fill the validating caBundle; before the fix the 404 aborted each
/// pass before the certificate loaded, and `/readyz` stayed 503: with one replica, a lockout of
/// every request the remaining `Fail` webhook matches.
#[tokio::test]
async fn a_webhook_configuration_that_was_not_rendered_keeps_nobody_unready() {
    let Some(plane) = common::envtest::shared() else { return };
    let client = plane.client().await;
    common::envtest::kagent_crds(&client).await;
    let ns = "hg-one-webhook";
    common::envtest::namespace(&client, ns).await;
    let name = format!("{ns}-config");
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configs.create(&PostParams::default(), &validating(&name, ns)).await.unwrap();
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    assert!(mutating.get_opt(&name).await.unwrap().is_none(), "the values rendered no mutating configuration");

    let argv = common::envtest::replica_args(&plane.kubeconfig, ns, &name);
    let args = serve_args(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    let server = TestServer::start(args).await;
    server.wait_ready(Duration::from_secs(30)).await;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = secrets.get("harness-guard-tls").await.expect("the leader created the TLS Secret");
    let ca = secret.data.unwrap()["ca.crt"].0.clone();
    assert!(String::from_utf8_lossy(&ca).contains("BEGIN CERTIFICATE"));
    eventually(Duration::from_secs(10), "both validating webhooks carry the CA", async || {
        let config = configs.get(&name).await.unwrap();
        config.webhooks.unwrap().iter().all(|w| w.client_config.ca_bundle.as_ref().is_some_and(|b| b.0 == ca))
    })
    .await;
    assert!(mutating.get_opt(&name).await.unwrap().is_none(), "nothing was created in its place");
    drop(server);
}
