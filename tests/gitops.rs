//! #14 fault 3 and the GitOps scenarios on a real kube-apiserver, under a steady admission load
//! through the installed chart's Service: the rendered manifests re-applied the ways the tools
//! really apply them (server-side apply as Helm 4 and Argo CD's server-side mode do, client-side
//! apply with the last-applied annotation as kubectl and Argo CD do by default, a rollback to the
//! first render) change nothing harness-guard wrote, and fail no call; a replace (`helm upgrade
//! --force`, Argo CD's Replace=true) blanks the caBundles, which the leader writes back as soon
//! as its watch sees it; a pruned configuration that comes back is filled the same way.

mod common;

use std::time::{Duration, Instant};

use common::balancer::Balancer;
use common::chart::{find, render};
use common::deployment::{Load, NS, install, wait_judged};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn configs(objects: &[Value]) -> (Value, Value) {
    let v = find(objects, "ValidatingWebhookConfiguration", "harness-guard").unwrap().clone();
    let m = find(objects, "MutatingWebhookConfiguration", "harness-guard").unwrap().clone();
    (v, m)
}

async fn bundles_filled(admin: &kube::Client) -> bool {
    let v: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    let m: Api<MutatingWebhookConfiguration> = Api::all(admin.clone());
    let (Ok(Some(v)), Ok(Some(m))) = (v.get_opt("harness-guard").await, m.get_opt("harness-guard").await) else {
        return false;
    };
    let filled = |b: Option<&k8s_openapi::ByteString>| b.is_some_and(|b| !b.0.is_empty());
    v.webhooks.iter().flatten().all(|w| filled(w.client_config.ca_bundle.as_ref()))
        && m.webhooks.iter().flatten().all(|w| filled(w.client_config.ca_bundle.as_ref()))
}

#[tokio::test(flavor = "multi_thread")]
async fn re_applied_renders_change_nothing_written_and_a_replace_is_repaired_at_once() {
    let Some(plane) = common::envtest::shared() else { return };
    let admin = plane.client().await;
    let release = install(plane, &admin, &json!({})).await;
    let balancer = Balancer::start(release.service).await;
    // The chart's own check interval (60 s): what repairs a replaced configuration is the watch.
    let replica = release.replica(&balancer, "harness-guard-0", &[]);
    replica.ready(Duration::from_secs(30)).await;
    wait_judged(&admin, Duration::from_secs(30)).await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), NS);
    let secret_version = secrets.get("harness-guard-tls").await.unwrap().metadata.resource_version;
    let vapi: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    let mapi: Api<MutatingWebhookConfiguration> = Api::all(admin.clone());
    let (v1, m1) = configs(&release.objects);

    let load = Load::start(&admin, 4);
    // Server-side apply under another field manager (Helm 4, Argo CD with ServerSideApply=true).
    let ssa = PatchParams::apply("argocd-controller").force();
    vapi.patch("harness-guard", &ssa, &Patch::Apply(&v1)).await.unwrap();
    mapi.patch("harness-guard", &ssa, &Patch::Apply(&m1)).await.unwrap();
    assert!(bundles_filled(&admin).await, "server-side apply leaves the caBundles it does not own");
    // Client-side apply (kubectl apply, Argo CD's default): a strategic merge patch carrying the
    // last-applied annotation; webhooks merge by name, so each keeps its caBundle.
    let last_applied = |o: &Value| {
        let mut o = o.clone();
        o["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/last-applied-configuration": o.to_string()});
        o
    };
    let csa = PatchParams::default();
    vapi.patch("harness-guard", &csa, &Patch::Strategic(last_applied(&v1))).await.unwrap();
    mapi.patch("harness-guard", &csa, &Patch::Strategic(last_applied(&m1))).await.unwrap();
    assert!(bundles_filled(&admin).await, "client-side apply leaves the caBundles");
    // An upgrade to a second render, then the rollback to the first.
    let second = render(&json!({"webhooks": {"timeoutSeconds": 10}}));
    let (v2, m2) = configs(&second);
    vapi.patch("harness-guard", &ssa, &Patch::Apply(&v2)).await.unwrap();
    mapi.patch("harness-guard", &ssa, &Patch::Apply(&m2)).await.unwrap();
    assert_eq!(vapi.get("harness-guard").await.unwrap().webhooks.unwrap()[0].timeout_seconds, Some(10));
    vapi.patch("harness-guard", &ssa, &Patch::Apply(&v1)).await.unwrap();
    mapi.patch("harness-guard", &ssa, &Patch::Apply(&m1)).await.unwrap();
    assert_eq!(vapi.get("harness-guard").await.unwrap().webhooks.unwrap()[0].timeout_seconds, Some(5));
    assert!(bundles_filled(&admin).await, "the rollback leaves the caBundles");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let applied = load.stop().await;
    eprintln!("re-applied renders: {} calls, {} failed", applied.calls, applied.failed.len());
    assert!(applied.failed.is_empty(), "{:?}", applied.failed.first());
    let after = secrets.get("harness-guard-tls").await.unwrap().metadata.resource_version;
    assert_eq!(after, secret_version, "no render touches the TLS Secret");

    // A replace (PUT) of the rendered configuration drops its caBundle; the leader's watch sees
    // it and writes it back. The calls in between fail: they are counted, and the gap measured.
    let load = Load::start(&admin, 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut replaced: ValidatingWebhookConfiguration = serde_json::from_value(v1.clone()).unwrap();
    replaced.metadata.resource_version = vapi.get("harness-guard").await.unwrap().metadata.resource_version;
    let at = Instant::now();
    vapi.replace("harness-guard", &PostParams::default(), &replaced).await.unwrap();
    common::server::eventually(Duration::from_secs(5), "the caBundle written back", async || {
        bundles_filled(&admin).await
    })
    .await;
    let repaired = at.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcome = load.stop().await;
    eprintln!(
        "replaced configuration: caBundle back after {repaired:?}; {} calls, {} failed",
        outcome.calls,
        outcome.failed.len()
    );
    assert!(repaired < Duration::from_secs(2), "repaired by the watch, not the 60 s check: {repaired:?}");

    // A GitOps prune of a configuration a render dropped, and its return: filled again at once.
    mapi.delete("harness-guard", &DeleteParams::default()).await.unwrap();
    mapi.patch("harness-guard", &ssa, &Patch::Apply(&m1)).await.unwrap();
    common::server::eventually(Duration::from_secs(5), "the returning configuration filled", async || {
        bundles_filled(&admin).await
    })
    .await;
    assert_eq!(common::server::health_get(replica.endpoint.health, "/readyz").await.map(|(s, _)| s), Some(200));
}
