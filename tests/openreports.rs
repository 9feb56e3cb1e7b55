//! The continuous audit's OpenReports on a real kube-apiserver (envtest assets): with the CRDs
//! absent nothing breaks; once they are installed a Report appears per namespace holding
//! harnesses, changes with the cluster (and only then), and goes away with the last harness.
//! This binary has a control plane of its own: the test decides when the CRDs exist.

mod common;

use std::path::Path;
use std::time::Duration;

use common::server::{TestServer, eventually, metric, serve_args};
use kube::api::{Api, DeleteParams, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn report_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("openreports.io", "v1alpha1", "Report");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, "reports"))
}

fn chain(ns: &str, harness: &str, with_secret: bool) -> Vec<Value> {
    let mut objects = vec![
        json!({"apiVersion": "kagent.dev/v1alpha2", "kind": "ModelConfig", "metadata": {"name": "gpt", "namespace": ns},
               "spec": {"provider": "OpenAI", "model": "gpt-4.1-mini", "apiKeySecret": "openai", "apiKeySecretKey": "OPENAI_API_KEY"}}),
        json!({"apiVersion": "kagent.dev/v1alpha2", "kind": "AgentHarness", "metadata": {"name": harness, "namespace": ns},
               "spec": {"backend": "openclaw", "modelConfigRef": "gpt"}}),
    ];
    if with_secret {
        objects.push(secret(ns));
    }
    objects
}

fn secret(ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "openai", "namespace": ns},
           "stringData": {"OPENAI_API_KEY": "sk-test-not-a-real-key"}})
}

async fn passes(server: &TestServer) -> f64 {
    metric(server.running.health_addr, "harness_guard_audit_passes_total ").await
}

/// Waits for `n` more audit passes (each pass writes what it will write before it counts).
async fn more_passes(server: &TestServer, n: f64) {
    let start = passes(server).await;
    eventually(Duration::from_secs(20), "audit passes", async || passes(server).await >= start + n).await;
}

fn results(report: &DynamicObject) -> Vec<Value> {
    report.data["results"].as_array().cloned().unwrap_or_default()
}

fn replica(kubeconfig: &Path, certs: &Path, identity: &str, extra: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--dev-cert-dir",
        certs.to_str().unwrap(),
        "--namespace",
        "hg-reports-system",
        "--identity",
        identity,
        "--cert-check-seconds",
        "1",
        "--audit-resync-seconds",
        "1",
    ]
    .map(String::from)
    .to_vec();
    argv.extend(extra.iter().map(|s| s.to_string()));
    argv
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_appear_when_the_crds_do_follow_the_cluster_and_go_away() {
    let Some(plane) = common::envtest::shared() else { return };
    let client = plane.client().await;
    common::envtest::kagent_crds(&client).await;
    for ns in ["hg-reports-system", "hg-reports-a", "hg-reports-b"] {
        common::envtest::namespace(&client, ns).await;
    }
    let mut objects = chain("hg-reports-a", "good", true);
    objects.extend(chain("hg-reports-b", "broken", false));
    assert_eq!(common::envtest::apply(&client, &objects, "default", false).await, Vec::<String>::new());

    let dir = tempfile::tempdir().unwrap();
    let argv = replica(&plane.kubeconfig, &dir.path().join("certs"), "replica-0", &[]);
    let server = TestServer::start(serve_args(&argv.iter().map(String::as_str).collect::<Vec<_>>())).await;
    server.wait_ready(Duration::from_secs(30)).await;

    // No CRDs: the audit goes on (the violation is counted), the server stays ready.
    more_passes(&server, 2.0).await;
    let health = server.running.health_addr;
    assert_eq!(metric(health, "harness_guard_violations{rule=\"model-secret-resolves\"}").await, 1.0);
    assert!(report_api(&client, "hg-reports-a").list(&Default::default()).await.is_err(), "no Report kind yet");

    // The CRDs appear: found at the next resync, without a restart.
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/domain/crds/openreports");
    common::envtest::install_crds(&client, &[crds.join("openreports.io_reports.yaml")]).await;
    let (reports_a, reports_b) = (report_api(&client, "hg-reports-a"), report_api(&client, "hg-reports-b"));
    eventually(Duration::from_secs(30), "reports written in both namespaces", async || {
        reports_a.get_opt("harness-guard").await.ok().flatten().is_some()
            && reports_b.get_opt("harness-guard").await.ok().flatten().is_some()
    })
    .await;
    let a = reports_a.get("harness-guard").await.unwrap();
    assert_eq!(a.data["source"], "harness-guard");
    assert_eq!(a.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"], "harness-guard");
    let managers: Vec<_> =
        a.metadata.managed_fields.iter().flatten().map(|m| (m.manager.clone(), m.operation.clone())).collect();
    assert_eq!(managers, [(Some("harness-guard".into()), Some("Apply".into()))], "server-side apply, one manager");
    assert!(results(&a).iter().all(|r| r["result"] == "pass"), "{:#}", a.data);
    assert_eq!(a.data["summary"]["fail"], 0);
    assert!(a.data["summary"]["pass"].as_u64().unwrap() >= 4, "{:#}", a.data);
    assert!(
        results(&a).iter().all(|r| r["resources"][0]["name"] == "good" && r["resources"][0]["kind"] == "AgentHarness")
    );

    let b = reports_b.get("harness-guard").await.unwrap();
    let fail = results(&b).into_iter().find(|r| r["result"] == "fail").unwrap_or_else(|| panic!("{:#}", b.data));
    assert_eq!(fail["policy"], "model-secret-resolves");
    assert_eq!(fail["source"], "harness-guard");
    assert_eq!(fail["properties"]["object"], "Secret hg-reports-b/openai");
    assert!(fail["message"].as_str().unwrap().contains("hg-reports-b/openai"), "{fail}");
    assert_eq!(b.data["summary"]["fail"], 1);
    // `explain` shows what the Report says of the harness.
    let kubeconfig = plane.kubeconfig.to_str().unwrap().to_string();
    let explained = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_harness-guard"))
            .args(["explain", "hg-reports-b/broken", "-o", "json", "--kubeconfig", &kubeconfig])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(explained.status.code(), Some(1), "{}", String::from_utf8_lossy(&explained.stderr));
    let doc: Value = serde_json::from_slice(&explained.stdout).unwrap();
    let report = doc["results"][0]["links"].as_array().unwrap().iter().find(|l| l["name"] == "report").unwrap();
    let facts = report["facts"].as_array().unwrap();
    let fail = facts.iter().find(|f| f["name"] == "fail model-secret-resolves").unwrap_or_else(|| panic!("{report:#}"));
    assert!(fail["value"].as_str().unwrap().contains("hg-reports-b/openai"), "{fail}");
    assert!(facts.iter().any(|f| f["name"] == "passed"), "{report:#}");

    // Unchanged content is not sent again, however many passes run (an identical apply would be
    // a no-op for the apiserver, so count the requests too).
    let version = |r: &DynamicObject| r.metadata.resource_version.clone().unwrap();
    let applies = async || metric(health, "harness_guard_report_writes_total{operation=\"apply\",result=\"ok\"}").await;
    let sent = applies().await;
    assert_eq!(sent, 2.0, "one apply per namespace");
    // A second replica runs its audit too, but only the Lease holder writes.
    let argv = replica(&plane.kubeconfig, &dir.path().join("certs-f"), "replica-f", &[]);
    let mut follower = TestServer::start(serve_args(&argv.iter().map(String::as_str).collect::<Vec<_>>())).await;
    follower.wait_ready(Duration::from_secs(30)).await;
    more_passes(&follower, 3.0).await;
    let writes = |server: &TestServer| {
        let health = server.running.health_addr;
        async move { metric(health, "harness_guard_report_writes_total").await }
    };
    assert_eq!(writes(&follower).await, 0.0, "a follower writes no report");
    more_passes(&server, 3.0).await;
    assert_eq!(applies().await, sent);
    assert_eq!(version(&reports_a.get("harness-guard").await.unwrap()), version(&a));
    assert_eq!(version(&reports_b.get("harness-guard").await.unwrap()), version(&b));

    // The Secret appears: b's report follows; the results that did not change keep their time.
    let stamp_of = |report: &DynamicObject, policy: &str| {
        results(report)
            .into_iter()
            .find(|r| r["policy"] == policy && r["result"] == "pass")
            .map(|r| r["timestamp"].clone())
    };
    let kept = stamp_of(&b, "model-config-exists").expect("a pass before the fix");
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new result gets a later second
    assert!(common::envtest::apply(&client, &[secret("hg-reports-b")], "default", false).await.is_empty());
    eventually(Duration::from_secs(20), "b's report shows the fix", async || {
        reports_b.get("harness-guard").await.is_ok_and(|r| r.data["summary"]["fail"] == 0)
    })
    .await;
    let fixed = reports_b.get("harness-guard").await.unwrap();
    assert_eq!(stamp_of(&fixed, "model-config-exists"), Some(kept.clone()));
    let new = stamp_of(&fixed, "model-secret-resolves").expect("the fixed check passes");
    assert!(new["seconds"].as_i64() > kept["seconds"].as_i64(), "{new} vs {kept}");

    // The last harness of a goes: so does a's report; b's stays.
    let harnesses: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "hg-reports-a",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kagent.dev", "v1alpha2", "AgentHarness"),
            "agentharnesses",
        ),
    );
    harnesses.delete("good", &DeleteParams::default()).await.unwrap();
    eventually(Duration::from_secs(20), "a's report removed", async || {
        reports_a.get_opt("harness-guard").await.is_ok_and(|r| r.is_none())
    })
    .await;
    assert!(reports_b.get_opt("harness-guard").await.unwrap().is_some());
    // Nothing holds a secret value.
    let all = serde_json::to_string(&fixed).unwrap();
    assert!(!all.contains("sk-test-not-a-real-key"));
    let mut server = server;
    server.shutdown();
    (&mut server.running.done).await.unwrap();
    // The follower takes the Lease and reads the Reports back: nothing changed, nothing written.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), "hg-reports-system");
    let holder = async |identity: &str| {
        leases
            .get("harness-guard")
            .await
            .is_ok_and(|l| l.spec.and_then(|s| s.holder_identity).as_deref() == Some(identity))
    };
    eventually(Duration::from_secs(40), "the follower leads", async || holder("replica-f").await).await;
    more_passes(&follower, 3.0).await;
    assert_eq!(writes(&follower).await, 0.0, "a new leader rewrites nothing unchanged");
    follower.shutdown();
    (&mut follower.running.done).await.unwrap();

    // Turned off: a report deleted by hand is not written again.
    reports_b.delete("harness-guard", &DeleteParams::default()).await.unwrap();
    let argv = replica(&plane.kubeconfig, &dir.path().join("certs"), "replica-1", &["--openreports=false"]);
    let off = TestServer::start(serve_args(&argv.iter().map(String::as_str).collect::<Vec<_>>())).await;
    off.wait_ready(Duration::from_secs(30)).await;
    // The Lease of the stopped replica must lapse before replica-1 could write anything at all:
    // wait until replica-1 holds it, then for passes.
    eventually(Duration::from_secs(40), "replica-1 leads", async || holder("replica-1").await).await;
    more_passes(&off, 3.0).await;
    assert!(reports_b.get_opt("harness-guard").await.unwrap().is_none(), "--openreports=false writes no report");
}
