//! `harness-guard explain`: the binary offline over manifests (good chain, each way a key breaks,
//! a sandbox pod), the pure core over a map view (what the caller cannot read is unknown, never
//! missing), and live against a real kube-apiserver (envtest) as an admin and as a tenant whose
//! Role cannot read Secrets, pods or Events. A distinctive key value is put in every Secret and
//! must appear in no output.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use harness_guard::core::explain::{Observed, State, Unread, Unreadable, explain, wanted};
use harness_guard::core::finding::{Kind, ObjectRef};
use harness_guard::core::policy::Policy;
use serde_json::{Value, json};

/// The key value of every Secret here: no output may contain it.
const MARKER: &str = "sk-EXPLAIN-MARKER-7f3c";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    fn assert_no_value(&self) {
        assert!(!self.stdout.contains(MARKER) && !self.stderr.contains(MARKER), "a key value leaked:\n{}", self.stdout);
        assert!(!self.stdout.contains("EXPLAIN-MARKER"), "a piece of a key value leaked");
    }
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_harness-guard"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("explain")
        .args(args)
        .env_remove("HARNESS_GUARD_KUBECONFIG")
        .env_remove("HARNESS_GUARD_CONFIG")
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    Run { code: out.status.code().unwrap_or(-1), stdout: text(out.stdout), stderr: text(out.stderr) }
}

/// The link `name` of the first explanation.
fn link<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let links = doc["results"][0]["links"].as_array().expect("links");
    links.iter().find(|l| l["name"] == name).unwrap_or_else(|| panic!("no link {name} in {doc:#}"))
}

fn fact<'a>(link: &'a Value, name: &str) -> &'a str {
    let facts = link["facts"].as_array().unwrap();
    let found = facts.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("no fact {name:?} in {link:#}"));
    found["value"].as_str().unwrap()
}

/// A chain in `ns`: Secret `llm-key` (with `secret_data`, YAML flow mapping), ModelConfig `gpt`
/// naming its key `OPENAI_API_KEY`, AgentHarness `coder` on OpenShell.
fn chain(ns: &str, secret_data: &str) -> String {
    let secret = match secret_data {
        "" => String::new(),
        data => format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: llm-key, namespace: {ns}}}\ntype: Opaque\nstringData: {data}\n---\n"
        ),
    };
    format!(
        "{secret}apiVersion: kagent.dev/v1alpha2\nkind: ModelConfig\nmetadata: {{name: gpt, namespace: {ns}}}\n\
         spec: {{provider: OpenAI, model: gpt-4.1-mini, apiKeySecret: llm-key, apiKeySecretKey: OPENAI_API_KEY}}\n---\n\
         apiVersion: kagent.dev/v1alpha2\nkind: AgentHarness\nmetadata: {{name: coder, namespace: {ns}}}\n\
         spec: {{backend: openclaw, modelConfigRef: gpt}}\n"
    )
}

#[test]
fn a_good_chain_exits_0_with_every_link_it_can_check_ok() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chain.yaml");
    std::fs::write(&file, chain("team-x", &format!("{{OPENAI_API_KEY: {MARKER}}}"))).unwrap();
    let table = run(&["-f", file.to_str().unwrap()]);
    assert_eq!(table.code, 0, "{}{}", table.stdout, table.stderr);
    table.assert_no_value();
    assert!(
        table.stdout.contains("team-x/coder: unchecked: inference-provider, sandbox-pod, events"),
        "{}",
        table.stdout
    );
    assert!(!table.stdout.contains('\x1b'), "no colour when stdout is not a terminal");

    let out = run(&["-f", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.code, 0);
    out.assert_no_value();
    let doc = out.json();
    assert_eq!(doc["summary"], json!({"harnesses": 1, "broken": 0}));
    assert_eq!(doc["results"][0]["harness"], "team-x/coder");
    assert_eq!(doc["results"][0]["verdict"], json!({"allowed": true, "denials": 0, "warnings": 0}));
    let names: Vec<&str> =
        doc["results"][0]["links"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["harness", "model-config", "secret", "inference-provider", "sandbox-pod", "verdict", "events", "report"]
    );
    assert_eq!(link(&doc, "report")["state"], "unchecked", "offline: not read");
    for name in ["harness", "model-config", "secret", "verdict"] {
        assert_eq!(link(&doc, name)["state"], "ok", "{name}");
    }
    // The provider record is kagent's name for it, in a database explain does not read.
    let provider = link(&doc, "inference-provider");
    assert_eq!((provider["state"].as_str(), fact(provider, "record")), (Some("unchecked"), "openai"));
    assert!(provider["fix"].as_str().unwrap().contains("openshell provider get openai"));
    let secret = link(&doc, "secret");
    assert_eq!(secret["object"], json!({"kind": "Secret", "namespace": "team-x", "name": "llm-key"}));
    assert_eq!(fact(secret, "key OPENAI_API_KEY"), "present, not empty, one line");
    assert_eq!(fact(link(&doc, "model-config"), "served"), "yes: the OpenShell gateway accepts type openai");
}

#[test]
fn each_way_the_key_breaks_breaks_the_secret_link_with_a_fix() {
    // (case, Secret data, rule, cause, key fact, a fragment of the fix)
    let cases = [
        ("secret missing", "", "model-secret-resolves", "missing", None, "does not exist"),
        ("key missing", "{OTHER_KEY: x}", "model-secret-resolves", "missing", Some("missing"), "has no key"),
        (
            "trailing newline",
            "{OPENAI_API_KEY: \"MARKER\\n\"}",
            "key-format",
            "invalid",
            Some("present, holds a line break (CR or LF)"),
            "line break",
        ),
    ];
    for (case, data, rule, cause, key_fact, fix) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chain.yaml");
        std::fs::write(&file, chain("team-x", &data.replace("MARKER", MARKER))).unwrap();
        let out = run(&["-f", file.to_str().unwrap(), "-o", "json"]);
        assert_eq!(out.code, 1, "{case}: {}", out.stdout);
        out.assert_no_value();
        let doc = out.json();
        assert_eq!(doc["summary"]["broken"], 1, "{case}");
        let secret = link(&doc, "secret");
        assert_eq!(secret["state"], "broken", "{case}");
        let finding = &secret["findings"][0];
        assert_eq!((finding["rule"].as_str(), finding["verdict"].as_str()), (Some(rule), Some("deny")), "{case}");
        assert_eq!(finding["cause"], cause, "{case}");
        assert_eq!(finding["at"]["kind"], "Secret", "{case}");
        assert!(secret["fix"].as_str().unwrap().contains(fix), "{case}: {secret:#}");
        if let Some(value) = key_fact {
            assert_eq!(fact(secret, "key OPENAI_API_KEY"), value, "{case}");
        }
        // The harness and ModelConfig are fine; the verdict says the webhook would refuse it.
        assert_eq!(link(&doc, "model-config")["state"], "ok", "{case}");
        assert_eq!(link(&doc, "verdict")["state"], "broken", "{case}");
        assert_eq!(doc["results"][0]["verdict"]["allowed"], false, "{case}");
        let table = run(&["-f", file.to_str().unwrap()]);
        assert_eq!(table.code, 1);
        table.assert_no_value();
        assert!(table.stdout.contains(&format!("denied {rule}: ")), "{case}: {}", table.stdout);
    }
}

#[test]
fn a_sandbox_pod_in_the_input_shows_what_mutate_would_still_patch() {
    let out =
        run(&["-f", "examples/check/sandbox-pod.yaml", "--state", "examples/cluster", "team-a/slackbot", "-o", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["summary"]["harnesses"], 1, "the positional picks one harness of the input and --state");
    let pod = link(&doc, "sandbox-pod");
    assert_eq!(pod["object"], json!({"kind": "Pod", "namespace": "openshell", "name": "team-a-slackbot"}));
    assert_eq!(pod["state"], "broken");
    assert!(fact(pod, "proxy env (agent)").starts_with("missing: HTTPS_PROXY"), "{pod:#}");
    assert_eq!(fact(pod, "annotation harness-guard.dev/inference-provider"), "missing (expected openai)");
    assert!(fact(pod, "/mutate would patch").contains("add /spec/containers/0/env/- (7 times)"), "{pod:#}");
    assert_eq!(pod["findings"][0]["rule"], "pod-secret-ref");
    assert!(pod["fix"].as_str().unwrap().contains("delete the pod"));
    assert_eq!(link(&doc, "secret")["state"], "ok");
}

#[test]
fn unusable_input_exits_2() {
    for (args, says) in [
        (vec!["-f", "examples/cluster/00-good.yaml", "team-a/nobody"], "no AgentHarness team-a/nobody"),
        (vec!["-f", "examples/check/sandbox-pod.yaml"], "holds no AgentHarness"),
        (vec!["-f", "does/not/exist.yaml"], "does/not/exist.yaml"),
        (vec!["not-a-namespaced-name"], "is not NAMESPACE/NAME"),
    ] {
        let out = run(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stdout);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}

/// The core, over a map view: a Secret the caller may not read makes the link unreadable and the
/// verdict partial; without that knowledge the same view calls it missing. `wanted` walks the
/// chain one read at a time.
#[test]
fn what_cannot_be_read_is_unknown_never_missing() {
    let yaml = chain("team-x", "");
    let view = common::view::MapView::from_yaml(&yaml);
    let policy = Policy::default();
    let harness = view.harnesses.values().next().unwrap().clone();
    let mc = ObjectRef::new(Kind::ModelConfig, "team-x", "gpt");
    let secret = ObjectRef::new(Kind::Secret, "team-x", "llm-key");

    let mut read = BTreeSet::new();
    assert_eq!(wanted(&harness, &view, &policy, &read), vec![mc.clone()]);
    read.insert(mc.clone());
    assert_eq!(wanted(&harness, &view, &policy, &read), vec![secret.clone()]);
    read.insert(secret.clone());
    assert!(wanted(&harness, &view, &policy, &read).is_empty());

    let forbidden = Unreadable {
        what: Unread::Object(secret.clone()),
        why: "forbidden".into(),
        needs: Some("get on secrets in team-x".into()),
    };
    let observed = Observed { read: Some(read.clone()), unreadable: vec![forbidden], ..Default::default() };
    let e = explain(&harness, &view, &policy, &observed);
    let by_name =
        |e: &harness_guard::core::explain::Explanation, n: &str| e.links.iter().find(|l| l.name == n).unwrap().clone();
    let link = by_name(&e, "secret");
    assert_eq!(link.state, State::Unreadable);
    assert!(link.fix.as_deref().unwrap().contains("it needs get on secrets in team-x"), "{link:?}");
    assert!(e.verdict.allowed, "a Secret the caller cannot see is not a missing one");
    assert_eq!(e.verdict.warnings, 0, "nor one outside what the webhook watches");
    assert!(e.links.iter().all(|l| l.findings.is_empty()), "no finding is the overlay's doing");
    assert_eq!(by_name(&e, "verdict").state, State::Unchecked);
    assert!(!e.broken());

    let observed = Observed { read: Some(read), ..Default::default() };
    let e = explain(&harness, &view, &policy, &observed);
    let link = by_name(&e, "secret");
    assert_eq!(link.state, State::Broken);
    assert_eq!(link.findings[0].rule, "model-secret-resolves");
    assert!(e.broken());
}

// ---- live, against a real kube-apiserver ----

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text).unwrap().into_iter().filter(|d| !d.is_null()).collect()
}

fn event(ns: &str, name: &str, harness: &str, note: &str) -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
           "eventTime": "2026-12-01T10:00:00.000000Z", "reportingController": "harness-guard.dev/audit",
           "reportingInstance": "test", "action": "Audit", "reason": "HarnessGuardViolation", "type": "Warning",
           "note": note,
           "regarding": {"apiVersion": "kagent.dev/v1alpha2", "kind": "AgentHarness", "name": harness, "namespace": ns}})
}

#[tokio::test]
async fn live_it_walks_the_chain_and_names_what_a_tenant_cannot_read() {
    use harness_guard::cluster::ingest::AgentHarnessResource;
    use kube::api::{Api, Patch, PatchParams};
    let Some(plane) = common::envtest::shared() else { return };
    let client = plane.client().await;
    common::envtest::kagent_crds(&client).await;
    let ns = "hg-explain";
    common::envtest::namespace(&client, ns).await;
    common::envtest::namespace(&client, "openshell").await;
    let dir = tempfile::tempdir().unwrap();

    // The chain, a harness whose ModelConfig does not exist, and kagent's view of the good one.
    let text = chain(ns, &format!("{{OPENAI_API_KEY: {MARKER}}}")).replace("name: coder", "name: good");
    let lost = format!(
        "apiVersion: kagent.dev/v1alpha2\nkind: AgentHarness\nmetadata: {{name: lost, namespace: {ns}}}\nspec: {{backend: openclaw, modelConfigRef: nowhere}}\n"
    );
    let mut objects = yaml_docs(&text);
    objects.extend(yaml_docs(&lost));
    assert_eq!(common::envtest::apply(&client, &objects, ns, false).await, Vec::<String>::new());
    let harnesses: Api<AgentHarnessResource> = Api::namespaced(client.clone(), ns);
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "SandboxReady",
        "message": "sandbox is ready", "lastTransitionTime": "2026-12-01T10:00:00Z"}]}});
    harnesses.patch_status("good", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();

    // Its sandbox pod, as the webhook would have admitted it (`check -o yaml` patches it).
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("chain.yaml"), &text).unwrap();
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {ns}-good\n  namespace: openshell\n  \
             annotations: {{openshell.io/sandbox-id: 5b0e4a2c-8c1d-4a51-9a57-0c6f2d3e9b11}}\n  ownerReferences:\n  \
             - {{apiVersion: agents.x-k8s.io/v1alpha1, kind: Sandbox, name: {ns}-good, uid: 0d6c8f0e-1111-4222-8333-944455556666, controller: true}}\n\
             spec:\n  containers:\n  - name: agent\n    image: ghcr.io/kagent-dev/nemoclaw/sandbox-base:2026.5.4\n    \
             env:\n    - {{name: OPENSHELL_ENDPOINT, value: 'https://openshell.openshell.svc.cluster.local:8080'}}\n"
        ),
    )
    .unwrap();
    let patched = Command::new(env!("CARGO_BIN_EXE_harness-guard"))
        .args(["check", "-f", pod.to_str().unwrap(), "--state", state.to_str().unwrap(), "-o", "yaml"])
        .output()
        .unwrap();
    assert!(patched.status.success(), "{}", String::from_utf8_lossy(&patched.stderr));
    let mut cluster = yaml_docs(&String::from_utf8(patched.stdout).unwrap());
    // The ServiceAccount admission plugin needs the namespace's default account (no controller
    // manager makes it here).
    cluster.push(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "openshell"}}));
    cluster.rotate_right(1);
    cluster.push(event(ns, "good.audit", "good", "an earlier violation of good"));
    cluster.push(event(ns, "lost.audit", "lost", "about another harness"));
    assert_eq!(common::envtest::apply(&client, &cluster, ns, false).await, Vec::<String>::new());

    let admin = plane.kubeconfig.to_str().unwrap();
    let out = run(&["--kubeconfig", admin, &format!("{ns}/good"), "-o", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.assert_no_value();
    let doc = out.json();
    for name in ["harness", "model-config", "secret", "sandbox-pod", "verdict", "events"] {
        assert_eq!(link(&doc, name)["state"], "ok", "{name}: {:#}", link(&doc, name));
    }
    assert_eq!(fact(link(&doc, "harness"), "condition Ready"), "True (SandboxReady): sandbox is ready");
    assert_eq!(fact(link(&doc, "secret"), "key OPENAI_API_KEY"), "present, not empty, one line");
    let pod = link(&doc, "sandbox-pod");
    assert_eq!(pod["object"], json!({"kind": "Pod", "namespace": "openshell", "name": format!("{ns}-good")}));
    assert!(fact(pod, "proxy env (agent)").starts_with("as injected"), "{pod:#}");
    assert!(fact(pod, "NO_PROXY coverage (agent)").starts_with("covers the"), "{pod:#}");
    let events = link(&doc, "events");
    assert_eq!(events["facts"].as_array().unwrap().len(), 1, "only the Events about this harness: {events:#}");
    assert!(fact(events, "Warning HarnessGuardViolation").ends_with("an earlier violation of good"));
    assert!(fact(link(&doc, "verdict"), "not judged").starts_with("shared-gateway"));
    // No OpenReports CRDs in this control plane (tests/openreports.rs has them).
    assert_eq!(fact(link(&doc, "report"), "report"), "OpenReports CRDs not installed: none written");
    let table = run(&["--kubeconfig", admin, &format!("{ns}/good")]);
    assert_eq!(table.code, 0);
    table.assert_no_value();

    // A tenant whose Role reads harnesses and ModelConfigs, and nothing else.
    let rbac = json!([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tenant", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "tenant", "namespace": ns},
         "rules": [{"apiGroups": ["kagent.dev"], "resources": ["agentharnesses", "modelconfigs"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "tenant", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
         "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": ns}]}
    ]);
    let rbac = rbac.as_array().unwrap().clone();
    assert_eq!(common::envtest::apply(&client, &rbac, ns, false).await, Vec::<String>::new());
    let tenant = plane.service_account_kubeconfig(&client, ns, "tenant", dir.path()).await;
    let tenant = tenant.to_str().unwrap();

    let out = run(&["--kubeconfig", tenant, &format!("{ns}/good"), "-o", "json"]);
    assert_eq!(out.code, 0, "nothing is known to be broken: {}{}", out.stdout, out.stderr);
    out.assert_no_value();
    let doc = out.json();
    assert_eq!(link(&doc, "model-config")["state"], "ok");
    assert_eq!(doc["results"][0]["verdict"], json!({"allowed": true, "denials": 0, "warnings": 0}));
    for (name, needs) in [
        ("secret", format!("get on secrets in {ns}")),
        ("sandbox-pod", "list on pods in openshell".to_string()),
        ("events", format!("list on events.events.k8s.io in {ns}")),
    ] {
        let l = link(&doc, name);
        assert_eq!(l["state"], "unreadable", "{name}: {l:#}");
        assert!(l["fix"].as_str().unwrap().contains(&format!("it needs {needs}")), "{name}: {l:#}");
    }
    assert!(link(&doc, "secret")["findings"].as_array().unwrap().is_empty(), "unknown, not missing");
    assert_eq!(link(&doc, "verdict")["state"], "unchecked");
    let table = run(&["--kubeconfig", tenant, &format!("{ns}/good")]);
    assert!(table.stdout.contains("UNREADABLE"), "{}", table.stdout);

    // What the tenant can read still breaks: a missing ModelConfig exits 1.
    let out = run(&["--kubeconfig", tenant, &format!("{ns}/lost"), "-o", "json"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(link(&doc, "model-config")["state"], "broken");
    assert_eq!(link(&doc, "model-config")["findings"][0]["rule"], "model-config-exists");

    // No such harness: unusable input.
    let out = run(&["--kubeconfig", tenant, &format!("{ns}/absent")]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains(&format!("AgentHarness {ns}/absent not found")), "{}", out.stderr);
}
