//! The chart installed on a real kube-apiserver (envtest assets), and harness-guard serving it as
//! a deployment would: the rendered objects applied unchanged, one replica process started with
//! the Deployment's own arguments and policy, authenticated as the chart's ServiceAccount (a
//! TokenRequest token, so the chart's RBAC is all it has), behind a readiness-aware balancer on
//! the ClusterIP the chart's Service got (the apiserver's service range is loopback) and the
//! Service's port (`tests/common/deployment.rs`). The apiserver then calls the webhook exactly as
//! in a cluster: Service name, port, path and certificate SANs.
//! `helm test` is then what the test hook's Pod would run, as the test's own account.

mod common;

use std::time::Duration;

use common::balancer::Balancer;
use common::chart::find;
use common::deployment::{NS, install, is_hook};
use common::server::eventually;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// `harness-guard ARGS` as a process: (exit code, stdout, stderr).
async fn run(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness-guard")).args(&args).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_installed_chart_judges_through_its_service_and_passes_helm_test() {
    let Some(plane) = common::envtest::shared() else { return };
    let admin = plane.client().await;
    // `helm install`: every object but the test hooks, applied as rendered.
    let release = install(plane, &admin, &json!({})).await;
    let objects = &release.objects;
    // The Service got a loopback ClusterIP: the test's balancer is its endpoints and kube-proxy.
    assert!(release.service.ip().to_string().starts_with("127.0.100."), "{}", release.service);
    let balancer = Balancer::start(release.service).await;
    let mut replica = release.replica(&balancer, "harness-guard-0", &[]);
    replica.ready(Duration::from_secs(30)).await;
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    eventually(Duration::from_secs(20), "the caBundle written by the replica", async || {
        let config = configs.get("harness-guard").await.unwrap();
        config.webhooks.unwrap().iter().all(|w| w.client_config.ca_bundle.is_some())
    })
    .await;

    // A real create of a broken harness is refused by harness-guard, through the Service.
    let gvk = GroupVersionKind::gvk("kagent.dev", "v1alpha2", "AgentHarness");
    let harnesses: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), "default", &ApiResource::from_gvk_with_plural(&gvk, "agentharnesses"));
    let broken: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kagent.dev/v1alpha2", "kind": "AgentHarness", "metadata": {"name": "broken"},
        "spec": {"backend": "openclaw", "modelConfigRef": "nope"}}))
    .unwrap();
    // Server dry runs until the apiserver has loaded the configuration (admitted unjudged before)
    // and its caBundle (a failed call before); then a real create.
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    eventually(Duration::from_secs(30), "the apiserver calls harness-guard", async || {
        match harnesses.create(&dry_run, &broken).await {
            Err(kube::Error::Api(e)) if e.message.contains("denied the request") => true,
            Err(kube::Error::Api(e)) if e.message.contains("failed calling webhook") => false,
            Ok(_) => false,
            Err(other) => panic!("unexpected answer: {other:?}"),
        }
    })
    .await;
    let refusal = match harnesses.create(&PostParams::default(), &broken).await {
        Err(kube::Error::Api(e)) => e.message,
        other => panic!("a real create of a broken harness: {other:?}"),
    };
    assert!(refusal.contains("admission webhook \"harnesses.harness-guard.dev\" denied"), "{refusal}");
    assert!(refusal.contains("ModelConfig default/nope"), "{refusal}");

    // `helm test`: the hook's account and Role, then the Pod's command under that account.
    let hooks: Vec<Value> = objects.iter().filter(|o| is_hook(o) && o["kind"] != "Pod").cloned().collect();
    assert_eq!(hooks.len(), 3, "ServiceAccount, Role, RoleBinding");
    assert_eq!(common::envtest::apply(&admin, &hooks, NS, false).await, Vec::<String>::new());
    let test_kubeconfig = plane.service_account_kubeconfig(&admin, NS, "harness-guard-test", release.dir.path()).await;
    let pod = find(objects, "Pod", "harness-guard-test").unwrap();
    let mut test_args: Vec<String> = serde_json::from_value(pod["spec"]["containers"][0]["args"].clone()).unwrap();
    test_args.push(format!("--kubeconfig={}", test_kubeconfig.display()));
    let (code, out, err) = run(test_args.clone()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("ok: harness-guard judged a server dry-run AgentHarness default/harness-guard-selftest"),
        "{out}"
    );
    assert!(harnesses.get_opt("harness-guard-selftest").await.unwrap().is_none(), "a dry run stores nothing");

    // harness-guard gone: the same test fails and says why.
    replica.binary.sigterm();
    replica.binary.exit(Duration::from_secs(30)).await;
    let (code, out, err) = run(test_args).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("the apiserver could not call harness-guard"), "{err}");
}
