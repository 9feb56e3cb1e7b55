//! #14 on a real control plane with kube-controller-manager (namespace controller and garbage
//! collector, each as its own ServiceAccount): a namespace holding a harness deleted while
//! harness-guard is down goes through (the namespace controller's deletes and kagent's finalizer
//! removal never wait for the `Fail` webhook), and an uninstall leaves nothing behind: the TLS
//! Secret and the Lease harness-guard created are owned by its Deployment, and the garbage
//! collector deletes them with it.

mod common;

use std::time::Duration;

use common::balancer::Balancer;
use common::deployment::{NS, install, wait_judged};
use common::server::eventually;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn resource_of(object: &Value) -> (ApiResource, bool) {
    let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), object["apiVersion"].as_str().unwrap().to_string()),
    };
    let kind = object["kind"].as_str().unwrap();
    let plural = match kind {
        "NetworkPolicy" => "networkpolicies".to_string(),
        "PodDisruptionBudget" => "poddisruptionbudgets".to_string(),
        k => format!("{}s", k.to_lowercase()),
    };
    let cluster = matches!(
        kind,
        "ClusterRole" | "ClusterRoleBinding" | "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
    );
    (ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(&group, &version, kind), &plural), cluster)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_deleted_while_down_goes_and_an_uninstall_leaves_nothing() {
    let Some(plane) = common::envtest::shared() else { return };
    plane.controller_manager();
    let admin = plane.client().await;
    let release = install(plane, &admin, &json!({})).await;
    let balancer = Balancer::start(release.service).await;
    let mut replica = release.replica(&balancer, "harness-guard-0", &["--cert-check-seconds=1"]);
    replica.ready(Duration::from_secs(30)).await;
    wait_judged(&admin, Duration::from_secs(30)).await;

    // What harness-guard made in its namespace is owned by the chart's Deployment.
    let deployment_uid = {
        let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(admin.clone(), NS);
        api.get("harness-guard").await.unwrap().metadata.uid.unwrap()
    };
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), NS);
    let leases: Api<Lease> = Api::namespaced(admin.clone(), NS);
    let owned_by_deployment = |owners: Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>| {
        owners.unwrap_or_default().iter().any(|o| o.kind == "Deployment" && o.uid == deployment_uid)
    };
    eventually(Duration::from_secs(20), "the TLS Secret and the Lease owned by the Deployment", async || {
        let secret = secrets.get_opt("harness-guard-tls").await.ok().flatten();
        let lease = leases.get_opt("harness-guard").await.ok().flatten();
        secret.is_some_and(|s| owned_by_deployment(s.metadata.owner_references))
            && lease.is_some_and(|l| owned_by_deployment(l.metadata.owner_references))
    })
    .await;

    // A team namespace with a working harness (kagent's finalizer on it), made while up.
    let team = "team-gone";
    common::envtest::namespace(&admin, team).await;
    let chain = [
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "openai", "namespace": team},
               "stringData": {"OPENAI_API_KEY": "sk-test-not-a-real-key"}}),
        json!({"apiVersion": "kagent.dev/v1alpha2", "kind": "ModelConfig", "metadata": {"name": "gpt", "namespace": team},
               "spec": {"provider": "OpenAI", "model": "gpt-4.1-mini", "apiKeySecret": "openai", "apiKeySecretKey": "OPENAI_API_KEY"}}),
        json!({"apiVersion": "kagent.dev/v1alpha2", "kind": "AgentHarness",
               "metadata": {"name": "coder", "namespace": team, "finalizers": ["kagent.dev/finalizer"]},
               "spec": {"backend": "openclaw", "modelConfigRef": "gpt"}}),
    ];
    assert_eq!(common::envtest::apply(&admin, &chain, team, false).await, Vec::<String>::new());

    // harness-guard goes down (no replica at all); the namespace is deleted.
    replica.binary.sigterm();
    replica.binary.exit(Duration::from_secs(30)).await;
    balancer.remove(replica.endpoint);
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces.delete(team, &DeleteParams::default()).await.unwrap();
    let gvk = GroupVersionKind::gvk("kagent.dev", "v1alpha2", "AgentHarness");
    let harnesses: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), team, &ApiResource::from_gvk_with_plural(&gvk, "agentharnesses"));
    // The namespace controller deletes the harness; kagent would then remove its finalizer.
    eventually(Duration::from_secs(60), "the namespace controller deletes the harness", async || {
        harnesses.get_opt("coder").await.ok().flatten().is_some_and(|h| h.metadata.deletion_timestamp.is_some())
    })
    .await;
    let release_finalizer = json!({"metadata": {"finalizers": null}});
    harnesses
        .patch("coder", &PatchParams::default(), &Patch::Merge(&release_finalizer))
        .await
        .expect("kagent's finalizer removal never waits for harness-guard");
    eventually(Duration::from_secs(60), "the namespace is gone", async || {
        namespaces.get_opt(team).await.is_ok_and(|n| n.is_none())
    })
    .await;

    // `helm uninstall`: every rendered object deleted. The garbage collector takes the Secret and
    // the Lease with the Deployment; nothing of harness-guard's is left.
    for object in release.objects.iter().rev() {
        let (resource, cluster) = resource_of(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        let api: Api<DynamicObject> = if cluster {
            Api::all_with(admin.clone(), &resource)
        } else {
            let ns = object["metadata"]["namespace"].as_str().unwrap_or(NS);
            Api::namespaced_with(admin.clone(), ns, &resource)
        };
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => panic!("cannot delete {} {name}: {e}", object["kind"]),
        }
    }
    eventually(Duration::from_secs(60), "the garbage collector deletes the Secret and the Lease", async || {
        secrets.get_opt("harness-guard-tls").await.is_ok_and(|s| s.is_none())
            && leases.get_opt("harness-guard").await.is_ok_and(|l| l.is_none())
    })
    .await;
    let left: Vec<String> = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .chain(leases.list(&ListParams::default()).await.unwrap().items.into_iter().filter_map(|l| l.metadata.name))
        .collect();
    assert!(left.is_empty(), "left behind in {NS}: {left:?}");
}
