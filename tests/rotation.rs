//! #14 fault 2 on a real kube-apiserver: serving-certificate renewals and a CA rotation, with
//! two replicas of the installed chart behind the Service, under a steady admission load. No call
//! may fail: the next CA joins the caBundles before it signs anything served, and the old one
//! leaves only after every replica serves a leaf of the new one. Lifetimes are seconds here
//! (CA 40 s, leaf 12 s, renewal 6 s before the end, a check every second).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::balancer::Balancer;
use common::deployment::{Load, NS, install};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

/// The certificates in a PEM bundle.
fn count(pem: &[u8]) -> usize {
    String::from_utf8_lossy(pem).matches("BEGIN CERTIFICATE").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_renewals_and_a_ca_rotation_under_load_fail_no_call() {
    let Some(plane) = common::envtest::shared() else { return };
    let admin = plane.client().await;
    let release = install(plane, &admin, &serde_json::json!({})).await;
    let balancer = Balancer::start(release.service).await;
    let fast = [
        "--ca-validity-seconds=40",
        "--leaf-validity-seconds=12",
        "--renew-before-seconds=6",
        "--cert-check-seconds=1",
    ];
    let a = release.replica(&balancer, "replica-a", &fast);
    a.ready(Duration::from_secs(30)).await;
    let b = release.replica(&balancer, "replica-b", &fast);
    b.ready(Duration::from_secs(30)).await;
    // The apiserver has loaded the configuration and its caBundle once a call is judged.
    common::deployment::wait_judged(&admin, Duration::from_secs(30)).await;

    let secrets: Api<Secret> = Api::namespaced(admin.clone(), NS);
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    let load = Load::start(&admin, 4);
    let (mut cas, mut leaves, mut most_trusted) = (BTreeSet::new(), BTreeSet::new(), 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(40) {
        if let Ok(secret) = secrets.get("harness-guard-tls").await {
            let data = secret.data.unwrap_or_default();
            cas.insert(data["ca.crt"].0.clone());
            leaves.insert(data["tls.crt"].0.clone());
        }
        if let Ok(config) = configs.get("harness-guard").await {
            let bundle = config.webhooks.unwrap()[0].client_config.ca_bundle.clone().unwrap_or_default();
            most_trusted = most_trusted.max(count(&bundle.0));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let outcome = load.stop().await;
    eprintln!(
        "rotation under load: {} calls, {} failed, {} CAs and {} serving certificates seen, at most {} CAs trusted at once",
        outcome.calls,
        outcome.failed.len(),
        cas.len(),
        leaves.len(),
        most_trusted
    );
    let first: Vec<String> = outcome.failed.iter().take(3).map(|(_, m)| m.chars().take(300).collect()).collect();
    assert!(outcome.failed.is_empty(), "{} failed calls, first: {first:#?}", outcome.failed.len());
    assert!(outcome.calls > 100, "a steady load: {}", outcome.calls);
    assert!(cas.len() >= 2, "a CA rotation happened");
    assert!(leaves.len() >= 4, "serving certificates were renewed: {}", leaves.len());
    assert_eq!(most_trusted, 2, "old and new CA trusted together during the rotation");
    // The old CA has left every caBundle: the one left is the Secret's signing CA.
    let ca = secrets.get("harness-guard-tls").await.unwrap().data.unwrap()["ca.crt"].0.clone();
    let config = configs.get("harness-guard").await.unwrap();
    for webhook in config.webhooks.unwrap() {
        let bundle = webhook.client_config.ca_bundle.unwrap().0;
        assert_eq!(count(&bundle), 1, "{}: settled to one CA", webhook.name);
        assert_eq!(bundle, ca, "{}", webhook.name);
    }

    // #14 fault 6 under load: the TLS Secret deleted. The leader recreates it under a new CA,
    // trusted beside the old one until both replicas serve the new pair: still no failed call.
    let load = Load::start(&admin, 4);
    secrets.delete("harness-guard-tls", &Default::default()).await.unwrap();
    common::server::eventually(Duration::from_secs(20), "the Secret recreated under a new CA", async || {
        secrets.get("harness-guard-tls").await.is_ok_and(|s| s.data.unwrap_or_default()["ca.crt"].0 != ca)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await; // both replicas reload; the old CA leaves
    let outcome = load.stop().await;
    let first: Vec<String> = outcome.failed.iter().take(3).map(|(_, m)| m.chars().take(300).collect()).collect();
    eprintln!("TLS Secret deleted under load: {} calls, {} failed", outcome.calls, outcome.failed.len());
    assert!(outcome.failed.is_empty(), "{} failed calls, first: {first:#?}", outcome.failed.len());
    let config = configs.get("harness-guard").await.unwrap();
    let bundle = config.webhooks.unwrap()[0].client_config.ca_bundle.clone().unwrap().0;
    assert_eq!(count(&bundle), 1, "the lost CA has left the caBundle");
    assert_ne!(bundle, ca);
}
