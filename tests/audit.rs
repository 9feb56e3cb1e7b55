//! `audit` and the continuous audit against the test's own API server: delete a Secret there,
//! and the violation shows in `audit` output, in `/metrics`, and as one Event, once.

mod common;

use std::process::Command;
use std::time::Duration;

use common::fake_apiserver::FakeApi;
use common::fixtures::repo_file;
use common::server::{TestServer, eventually, health_get};
use serde_json::json;

/// `harness_guard_audit_passes_total`: passes the continuous audit has completed.
async fn passes(health: std::net::SocketAddr) -> u64 {
    let (_, text) = health_get(health, "/metrics").await.unwrap();
    let line =
        text.lines().find(|l| l.starts_with("harness_guard_audit_passes_total ")).expect("audit passes exported");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

async fn cluster() -> FakeApi {
    FakeApi::start(&std::fs::read_to_string(repo_file("examples/cluster/00-good.yaml")).unwrap(), true).await
}

fn audit(api: &FakeApi, dir: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness-guard"))
        .args(["audit", "--kubeconfig", api.kubeconfig(dir).to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_lists_harnesses_broken_after_admission() {
    let api = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = tokio::task::block_in_place(|| audit(&api, dir.path(), &[]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("AgentHarness team-a/slackbot") && out.contains(" ok"), "{out}");
    api.delete("Secret", "team-a", "litellm-key");
    let (code, out) = tokio::task::block_in_place(|| audit(&api, dir.path(), &["-o", "json"]));
    assert_eq!(code, 1, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["results"][0]["object"], "team-a/slackbot");
    assert_eq!(doc["results"][0]["findings"][0]["rule"], "model-secret-resolves");
    assert!(
        doc["results"][0]["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Secret team-a/litellm-key does not exist")
    );
    // An API server that refuses is unusable input: exit 2.
    *api.inner.fail_with.lock().unwrap() = Some(500);
    let (code, out) = tokio::task::block_in_place(|| audit(&api, dir.path(), &[]));
    assert_eq!(code, 2, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn continuous_audit_counts_and_records_one_event_per_change() {
    let api = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::cluster(&api, dir.path(), &["--identity", "replica-a"]).await;
    server.wait_ready(Duration::from_secs(10)).await;
    let health = server.running.health_addr;
    let metric = |rule: &str| format!("harness_guard_violations{{rule=\"{rule}\"}} ");
    let scrape = || async { health_get(health, "/metrics").await.unwrap().1 };
    eventually(Duration::from_secs(5), "violations exported", async || {
        scrape().await.contains(&format!("{}0", metric("model-secret-resolves")))
    })
    .await;
    assert!(api.list("Event").is_empty());

    api.delete("Secret", "team-a", "litellm-key");
    eventually(Duration::from_secs(10), "violation counted", async || {
        scrape().await.contains(&format!("{}1", metric("model-secret-resolves")))
    })
    .await;
    eventually(Duration::from_secs(10), "one Event recorded", async || api.list("Event").len() == 1).await;
    let event = &api.list("Event")[0];
    assert_eq!(event["reason"], "HarnessGuardViolation");
    assert_eq!(event["type"], "Warning");
    assert_eq!(
        event["regarding"],
        json!({"apiVersion": "kagent.dev/v1alpha2", "kind": "AgentHarness", "name": "slackbot", "namespace": "team-a", "uid": event["regarding"]["uid"]})
    );
    assert!(event["note"].as_str().unwrap().contains("Secret team-a/litellm-key does not exist"));
    assert_eq!(event["metadata"]["namespace"], "team-a");
    assert_eq!(api.get("Lease", "harness-guard", "harness-guard").unwrap()["spec"]["holderIdentity"], "replica-a");

    let label = event["metadata"]["labels"]["harness-guard.dev/audit-fingerprint"].as_str().unwrap();
    assert!(label.len() == 16 && label.bytes().all(|b| b.is_ascii_hexdigit()), "{label}");

    // Changes that leave the violation as it is (a resync, an unrelated object) record nothing new.
    let before = passes(health).await;
    api.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated", "namespace": "team-a"}, "data": {"a": "b"}}));
    api.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated", "namespace": "team-a"}, "data": {"a": "c"}}));
    eventually(Duration::from_secs(10), "an audit pass after the changes", async || passes(health).await > before)
        .await;
    assert_eq!(api.list("Event").len(), 1, "once per change, not once per resync");

    // Restoring the Secret clears the metric; breaking it another way records a new Event.
    api.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "litellm-key", "namespace": "team-a"}, "data": {"OPENAI_API_KEY": ""}}));
    eventually(Duration::from_secs(10), "second Event for the new violation", async || api.list("Event").len() == 2)
        .await;
    api.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "litellm-key", "namespace": "team-a"}, "data": {"OPENAI_API_KEY": "c2stdGVzdA=="}}));
    eventually(Duration::from_secs(10), "violation cleared", async || {
        scrape().await.contains(&format!("{}0", metric("model-secret-resolves")))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_leader_reads_back_what_was_reported() {
    let api = cluster().await;
    api.delete("Secret", "team-a", "litellm-key");
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--identity", "replica-a", "--drain-delay-seconds", "0"];
    let mut first = TestServer::cluster(&api, dir.path(), &flags).await;
    first.wait_ready(Duration::from_secs(10)).await;
    eventually(Duration::from_secs(10), "one Event recorded", async || api.list("Event").len() == 1).await;
    // Stopped for good (its audit with it) before the second process starts, as a restart is.
    first.shutdown();
    tokio::time::timeout(Duration::from_secs(15), &mut first.running.done).await.expect("stops").unwrap();
    drop(first);

    // A new process holds nothing in memory: only the Event it reads back keeps it quiet.
    let second = TestServer::cluster(&api, dir.path(), &["--identity", "replica-a"]).await;
    second.wait_ready(Duration::from_secs(10)).await;
    let health = second.running.health_addr;
    eventually(Duration::from_secs(10), "an audit pass as leader", async || passes(health).await >= 1).await;
    assert_eq!(api.list("Event").len(), 1, "the restart reported the same violation again");
    // The test API server does not replay what a watch missed: wait for the second process's
    // four watches before changing anything.
    eventually(Duration::from_secs(10), "the restarted replica watches", async || api.count("watch") >= 8).await;

    // A violation that changes is reported again, by the same restarted replica.
    api.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "litellm-key", "namespace": "team-a"}, "data": {"OPENAI_API_KEY": ""}}));
    eventually(Duration::from_secs(10), "a second Event for the new violation", async || api.list("Event").len() == 2)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_names_unreadable_objects_and_keeps_to_the_watch_scope() {
    let api = cluster().await;
    // One stray object the CRD would never let in: named and warned about, not fatal.
    api.apply(json!({"apiVersion": "kagent.dev/v1alpha2", "kind": "AgentHarness",
        "metadata": {"name": "stray", "namespace": "team-a"}, "spec": {"env": "sk-not-a-list"}}));
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = tokio::task::block_in_place(|| audit(&api, dir.path(), &["-o", "json"]));
    assert_eq!(code, 0, "a warning does not fail the audit: {out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stray = doc["results"].as_array().unwrap().iter().find(|r| r["object"] == "team-a/stray").expect("named");
    assert_eq!(stray["findings"][0]["rule"], "unreadable");
    assert_eq!(stray["findings"][0]["cause"], "unreadable");
    assert_eq!(stray["findings"][0]["verdict"], "warn");
    let message = stray["findings"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("harness-guard cannot read AgentHarness team-a/stray: "), "{message}");
    assert!(!out.contains("sk-not-a-list"), "the value stays out: {out}");
    assert_eq!(doc["summary"]["warnings"], 1);

    // The policy's scope: its namespaces only, its label selector on Secrets and ConfigMaps.
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "watch:\n  namespaces: [team-b]\n  labelSelector: team=b\n").unwrap();
    api.inner.paths.lock().unwrap().clear();
    api.inner.queries.lock().unwrap().clear();
    let (code, out) = tokio::task::block_in_place(|| audit(&api, dir.path(), &["--config", policy.to_str().unwrap()]));
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("team-a/"), "team-a is outside the scope: {out}");
    let paths = api.inner.paths.lock().unwrap().clone();
    let lists: Vec<&String> = paths.iter().filter(|p| !p.contains("/events")).collect();
    assert_eq!(lists.len(), 4, "{paths:?}");
    assert!(lists.iter().all(|p| p.contains("/namespaces/team-b/")), "{paths:?}");
    let queries = api.inner.queries.lock().unwrap().clone();
    for (plural, query) in &queries {
        let selected = query.contains("labelSelector=team%3Db");
        assert_eq!(selected, ["secrets", "configmaps"].contains(&plural.as_str()), "{plural}: {query}");
    }
}
