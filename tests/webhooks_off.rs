//! #14: each webhook turned off in turn, on a real kube-apiserver. The chart renders only the
//! configurations its values ask for and tells the replica exactly those; the replica turns ready,
//! fills every caBundle that exists, and the remaining webhooks judge (fault 1 was a replica
//! unready forever when one configuration was missing: a lockout under `Fail`).

mod common;

use std::time::Duration;

use common::balancer::Balancer;
use common::deployment::{Load, install, wait_judged};
use common::server::eventually;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use kube::api::{Api, DeleteParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn with_any_one_webhook_off_the_replica_is_ready_and_the_rest_judge() {
    let Some(plane) = common::envtest::shared() else { return };
    let admin = plane.client().await;
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(admin.clone());
    for (off, values) in [
        ("harnesses", json!({"webhooks": {"harnesses": {"enabled": false}}, "tests": {"enabled": false}})),
        ("pods", json!({"webhooks": {"pods": {"enabled": false}}})),
        ("podMutation", json!({"webhooks": {"podMutation": {"enabled": false}}})),
        (
            "harnesses and pods",
            json!({"webhooks": {"harnesses": {"enabled": false}, "pods": {"enabled": false}}, "tests": {"enabled": false}}),
        ),
    ] {
        let release = install(plane, &admin, &values).await;
        let rendered = |kind: &str| common::chart::find(&release.objects, kind, "harness-guard").is_some();
        let (has_validating, has_mutating) =
            (rendered("ValidatingWebhookConfiguration"), rendered("MutatingWebhookConfiguration"));
        let balancer = Balancer::start(release.service).await;
        let mut replica = release.replica(&balancer, "harness-guard-0", &["--cert-check-seconds=1"]);
        replica.ready(Duration::from_secs(30)).await;
        eventually(Duration::from_secs(20), "every rendered caBundle filled", async || {
            let v = validating.get_opt("harness-guard").await.unwrap();
            let m = mutating.get_opt("harness-guard").await.unwrap();
            let v_ok = v.map(|c| c.webhooks.iter().flatten().all(|w| w.client_config.ca_bundle.is_some()));
            let m_ok = m.map(|c| c.webhooks.iter().flatten().all(|w| w.client_config.ca_bundle.is_some()));
            v_ok == has_validating.then_some(true) && m_ok == has_mutating.then_some(true)
        })
        .await;
        if off.contains("harnesses") {
            // Nothing judges harnesses: a broken one is admitted, not refused for want of a webhook.
            let probe = Load::start(&admin, 1);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let outcome = probe.stop().await;
            let admitted = outcome.failed.iter().filter(|(_, m)| m.contains("admitted")).count();
            assert!(outcome.calls > 0 && admitted == outcome.calls, "{off}: {outcome:?}");
        } else {
            wait_judged(&admin, Duration::from_secs(30)).await;
        }
        eprintln!("{off} off: ready, caBundles filled (validating {has_validating}, mutating {has_mutating})");
        // Uninstall the configurations before the next values.
        replica.binary.sigterm();
        replica.binary.exit(Duration::from_secs(30)).await;
        drop(balancer);
        let _ = validating.delete("harness-guard", &DeleteParams::default()).await;
        let _ = mutating.delete("harness-guard", &DeleteParams::default()).await;
    }
}
