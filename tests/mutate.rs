//! Golden patches for sandbox pods, each applied with `json-patch` and checked for idempotency,
//! and the enforcement table for the validating pod rules. `UPDATE_GOLDEN=1` rewrites the files
//! under `tests/golden/mutate/`; a golden with no case fails the run.

mod common;

use std::collections::BTreeSet;

use common::fixtures::{fixture, repo_file};
use common::view::MapView;
use harness_guard::core::enforce::enforce_pod;
use harness_guard::core::finding::{Cause, Kind};
use harness_guard::core::message;
use harness_guard::core::mutate::mutate_pod;
use harness_guard::core::policy::{Policy, Rule};
use harness_guard::core::verdict::Verdict;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

const CLUSTER: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: litellm-key, namespace: team-a}
stringData: {OPENAI_API_KEY: sk-test-pod-key}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: litellm-gpt, namespace: team-a}
spec: {provider: Anthropic, model: claude, apiKeySecret: litellm-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {name: slackbot, namespace: team-a}
spec: {backend: openclaw, modelConfigRef: litellm-gpt}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {name: b-c, namespace: team-a}
spec: {backend: openclaw, modelConfigRef: litellm-gpt}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {name: c, namespace: team-a-b}
spec: {backend: openclaw, modelConfigRef: team-a/litellm-gpt}
---
apiVersion: v1
kind: Secret
metadata: {name: dummy, namespace: team-z}
stringData: {OLLAMA_API_KEY: ollama}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: local, namespace: team-z}
spec: {provider: Ollama, model: llama3, apiKeySecret: dummy, apiKeySecretKey: OLLAMA_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {name: renamed, namespace: team-x}
spec: {backend: hermes}
status: {backendRef: {backend: hermes, id: custom-sandbox}}
"#;

/// The sandbox pod of the real fixture (domain README section 7), as the mutating webhook saw it.
fn sandbox_pod() -> Value {
    fixture("kagent/pod-sandbox-create.mutating.json")["request"]["object"].clone()
}

fn agent(pod: &mut Value) -> &mut Value {
    &mut pod["spec"]["containers"][0]
}

fn parts(pod: &Value) -> (ObjectMeta, PodSpec) {
    (serde_json::from_value(pod["metadata"].clone()).unwrap(), serde_json::from_value(pod["spec"].clone()).unwrap())
}

fn mutate(pod: &Value, view: &MapView, policy: &Policy) -> Verdict {
    let (meta, spec) = parts(pod);
    mutate_pod(&meta, &spec, "openshell", view, policy)
}

struct Case {
    name: &'static str,
    pod: Value,
    policy: Policy,
}

fn cases() -> Vec<Case> {
    let base = sandbox_pod();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut pod = base.clone();
        f(&mut pod);
        pod
    };
    let overwrite = Policy {
        sandbox: harness_guard::core::policy::SandboxPolicy { overwrite: true, ..Default::default() },
        ..Default::default()
    };
    let conflict = |pod: &mut Value| {
        agent(pod)["env"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "HTTPS_PROXY", "value": "http://corp-proxy:8080"}));
        agent(pod)["env"].as_array_mut().unwrap().push(json!({"name": "NODE_USE_ENV_PROXY", "value": "1"}));
    };
    let case = |name, pod, policy| Case { name, pod, policy };
    vec![
        case("fixture-pod", base.clone(), Policy::default()),
        case(
            "no-env",
            with(&|p| {
                agent(p).as_object_mut().unwrap().remove("env");
            }),
            Policy::default(),
        ),
        case("empty-env", with(&|p| agent(p)["env"] = json!([])), Policy::default()),
        case("conflicting-value", with(&conflict), Policy::default()),
        case("conflicting-value-overwrite", with(&conflict), overwrite),
        case(
            "annotations-present",
            with(&|p| {
                p["metadata"]["annotations"]["harness-guard.dev/harness"] = json!("team-a/slackbot");
                p["metadata"]["annotations"]["harness-guard.dev/inference-provider"] = json!("stale-value");
            }),
            Policy::default(),
        ),
        case("no-harness", with(&|p| p["metadata"]["name"] = json!("team-z-unknown")), Policy::default()),
        case("two-harnesses", with(&|p| p["metadata"]["name"] = json!("team-a-b-c")), Policy::default()),
        case("backend-ref", with(&|p| p["metadata"]["name"] = json!("custom-sandbox")), Policy::default()),
        case(
            "several-containers",
            with(&|p| {
                let sidecar = json!({"name": "sidecar", "image": "busybox"});
                p["spec"]["containers"].as_array_mut().unwrap().insert(0, sidecar);
            }),
            Policy::default(),
        ),
        case(
            "init-containers",
            with(&|p| {
                p["spec"]["initContainers"] =
                    json!([{"name": "agent", "image": "init"}, {"name": "setup", "image": "init"}]);
            }),
            Policy::default(),
        ),
        case(
            "gateway-no-proxy",
            with(&|p| {
                for e in agent(p)["env"].as_array_mut().unwrap() {
                    if e["name"] == "OPENSHELL_ENDPOINT" {
                        e["value"] = json!("https://[fd00::1]:8080");
                    }
                }
            }),
            Policy::default(),
        ),
    ]
}

#[test]
fn golden_patches_apply_and_are_idempotent() {
    let view = MapView::from_yaml(CLUSTER);
    let dir = repo_file("tests/golden/mutate");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for case in cases() {
        seen.insert(format!("{}.json", case.name));
        let verdict = mutate(&case.pod, &view, &case.policy);
        assert!(verdict.allowed(), "{}: the mutating webhook never denies", case.name);
        let actual = json!({"patch": verdict.patch, "warnings": message::warnings(&verdict)});
        let path = dir.join(format!("{}.json", case.name));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
        }
        let expected: Value =
            std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
        if expected != actual {
            failures.push(format!("{}: golden differs (UPDATE_GOLDEN=1 to rewrite)\n  got {actual}", case.name));
            continue;
        }
        // Apply, check the result is still a Pod, and that a second pass asks for nothing.
        let mut patched = case.pod.clone();
        json_patch::patch(&mut patched, &verdict.patch)
            .unwrap_or_else(|e| panic!("{}: patch does not apply: {e}", case.name));
        let again = mutate(&patched, &view, &case.policy);
        if !again.patch.is_empty() {
            failures.push(format!("{}: not idempotent, second patch {:?}", case.name, again.patch));
        }
        let untouched = |v: &Value| {
            (
                v["spec"]["initContainers"].clone(),
                v["spec"]["securityContext"].clone(),
                v["metadata"]["annotations"]["openshell.io/sandbox-id"].clone(),
            )
        };
        assert_eq!(untouched(&patched), untouched(&case.pod), "{}: touched what must never change", case.name);
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    let stale: Vec<_> = on_disk.difference(&seen).collect();
    assert!(stale.is_empty(), "stale golden files with no case: {stale:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fixture_pod_gets_the_documented_environment() {
    let view = MapView::from_yaml(CLUSTER);
    let mut pod = sandbox_pod();
    let verdict = mutate(&pod, &view, &Policy::default());
    json_patch::patch(&mut pod, &verdict.patch).unwrap();
    let env: Vec<(String, String)> = agent(&mut pod)["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].as_str().unwrap_or("").to_string()))
        .collect();
    let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    for var in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        assert_eq!(get(var), Some("http://10.200.0.1:3128"), "{var}");
    }
    // The supervisor (PID 1) reads these too: every upstream a cluster inference route can use
    // (OpenShell's defaults for openai, anthropic, nvidia, Vertex), in-cluster names and the
    // gateway (OPENSHELL_ENDPOINT) stay out of the sandbox's proxy.
    let no_proxy = "127.0.0.1,localhost,::1,.svc,.cluster.local,api.openai.com,api.anthropic.com,\
                    integrate.api.nvidia.com,.googleapis.com,openshell.openshell.svc.cluster.local";
    assert_eq!(get("NO_PROXY"), Some(no_proxy));
    assert_eq!(get("no_proxy"), Some(no_proxy));
    assert_eq!(get("NODE_USE_ENV_PROXY"), Some("1"));
    let annotations = &pod["metadata"]["annotations"];
    // Released kagent: the gateway's one record, lowercase(provider), serves the harness.
    assert_eq!(annotations["harness-guard.dev/inference-provider"], "anthropic");
    assert_eq!(annotations["harness-guard.dev/harness"], "team-a/slackbot");
    // The patch escapes "/" in annotation keys.
    let text = serde_json::to_string(&verdict.patch).unwrap();
    assert!(text.contains("/metadata/annotations/harness-guard.dev~1harness"), "{text}");
}

/// The policy's switches: the API server host joins NO_PROXY, #1964 names the per-harness
/// provider record (openclaw family only), and injection can be turned off (annotations stay).
#[test]
fn platform_settings_shape_the_patch() {
    let view = MapView::from_yaml(CLUSTER);
    let mut policy = Policy::default();
    policy.sandbox.api_server_host = Some("10.96.0.1".into());
    policy.sandbox.no_proxy_extra = vec!["llm.internal.example".into()];
    policy.kagent.carries_pr1964 = true;
    let mut pod = sandbox_pod();
    let verdict = mutate(&pod, &view, &policy);
    json_patch::patch(&mut pod, &verdict.patch).unwrap();
    let env = agent(&mut pod)["env"].clone();
    let no_proxy = env.as_array().unwrap().iter().find(|e| e["name"] == "NO_PROXY").unwrap()["value"].clone();
    let no_proxy = no_proxy.as_str().unwrap();
    assert!(no_proxy.ends_with(",openshell.openshell.svc.cluster.local,10.96.0.1,llm.internal.example"), "{no_proxy}");
    // The fixture's harness is openclaw: #1964 attaches `<ns>-<name>-inference-<provider>`.
    assert_eq!(
        pod["metadata"]["annotations"]["harness-guard.dev/inference-provider"],
        "team-a-slackbot-inference-anthropic"
    );
    policy.sandbox.inject_proxy_env = false;
    let verdict = mutate(&sandbox_pod(), &view, &policy);
    let paths: Vec<String> = verdict.patch.iter().map(|op| op.path().to_string()).collect();
    assert!(paths.iter().all(|p| p.starts_with("/metadata/annotations")), "{paths:?}");
    assert_eq!(paths.len(), 2, "{paths:?}");
}

#[test]
fn pods_that_are_not_sandbox_pods_get_nothing() {
    let view = MapView::from_yaml(CLUSTER);
    let mut sandbox_agent = sandbox_pod();
    sandbox_agent["metadata"]["annotations"].as_object_mut().unwrap().remove("openshell.io/sandbox-id");
    let mut not_controller = sandbox_pod();
    not_controller["metadata"]["ownerReferences"][0]["controller"] = json!(false);
    let mut other_owner = sandbox_pod();
    other_owner["metadata"]["ownerReferences"][0]["apiVersion"] = json!("apps/v1");
    for (name, pod) in
        [("sandbox-agent", sandbox_agent), ("not-controller", not_controller), ("other-owner", other_owner)]
    {
        assert_eq!(mutate(&pod, &view, &Policy::default()), Verdict::default(), "{name}");
    }
    let (meta, spec) = parts(&sandbox_pod());
    assert_eq!(mutate_pod(&meta, &spec, "default", &view, &Policy::default()), Verdict::default(), "other namespace");
}

fn enforce(pod: &Value, view: &MapView, policy: &Policy) -> Verdict {
    let (meta, spec) = parts(pod);
    enforce_pod(&meta, &spec, "openshell", view, policy)
}

#[test]
fn enforcement_table() {
    let view = MapView::from_yaml(CLUSTER);
    let secret_ref = json!({"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "litellm-key", "key": "OPENAI_API_KEY"}}});
    let env_from = json!({"secretRef": {"name": "litellm-key"}});
    let literal = json!({"name": "LLM", "value": "sk-test-pod-key\n"});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut pod = sandbox_pod();
        f(&mut pod);
        pod
    };
    let allow_list = Policy {
        sandbox: harness_guard::core::policy::SandboxPolicy {
            allowed_secret_refs: vec!["litellm-key".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    // (name, pod, policy, denials as (rule, cause, field prefix))
    type Denial = (Rule, Cause, &'static str);
    let rows: Vec<(&str, Value, Policy, Vec<Denial>)> = vec![
        ("clean", sandbox_pod(), Policy::default(), vec![]),
        (
            "secret-key-ref",
            with(&|p| agent(p)["env"].as_array_mut().unwrap().push(secret_ref.clone())),
            Policy::default(),
            vec![(Rule::PodSecretRef, Cause::NotAllowed, "spec.containers[0].env[")],
        ),
        (
            "env-from",
            with(&|p| agent(p)["envFrom"] = json!([env_from.clone()])),
            Policy::default(),
            vec![(Rule::PodSecretRef, Cause::NotAllowed, "spec.containers[0].envFrom[0].secretRef")],
        ),
        (
            "init-container-ref",
            with(&|p| p["spec"]["initContainers"][0]["env"] = json!([secret_ref.clone()])),
            Policy::default(),
            vec![(Rule::PodSecretRef, Cause::NotAllowed, "spec.initContainers[0].env[0].valueFrom.secretKeyRef")],
        ),
        (
            "literal-key",
            with(&|p| agent(p)["env"].as_array_mut().unwrap().push(literal.clone())),
            Policy::default(),
            vec![(Rule::PodLiteralKey, Cause::LiteralKey, "spec.containers[0].env[")],
        ),
        (
            "allow-listed",
            with(&|p| {
                agent(p)["env"].as_array_mut().unwrap().push(secret_ref.clone());
                agent(p)["envFrom"] = json!([env_from.clone()]);
            }),
            allow_list,
            vec![],
        ),
    ];
    for (name, pod, policy, denied) in rows {
        let v = enforce(&pod, &view, &policy);
        let got: Vec<(Rule, Cause)> = v.denials.iter().map(|f| (f.rule, f.cause)).collect();
        assert_eq!(got, denied.iter().map(|(r, c, _)| (*r, *c)).collect::<Vec<_>>(), "{name}: {v:?}");
        for (finding, (_, _, field)) in v.denials.iter().zip(&denied) {
            assert!(finding.at.field.starts_with(field), "{name}: at {}", finding.at);
            assert_eq!(finding.at.object.kind, Kind::Pod, "{name}");
        }
        assert!(!message::denial(&v).contains("sk-test-pod-key"), "{name} leaks the value");
    }
    // kagent's SandboxAgent pods carry a secretKeyRef by design: not sandbox pods, not judged.
    let mut sandbox_agent = with(&|p| agent(p)["env"].as_array_mut().unwrap().push(secret_ref.clone()));
    sandbox_agent["metadata"]["annotations"].as_object_mut().unwrap().remove("openshell.io/sandbox-id");
    assert!(enforce(&sandbox_agent, &view, &Policy::default()).allowed());
}

/// `pod-literal-key` compares a literal with the key of the pod's own harness: another team's
/// dummy key ("ollama") does not refuse an innocent pod. Without one known owner every key counts,
/// but only as a warning.
#[test]
fn literal_keys_are_judged_against_the_pods_own_harness() {
    let view = MapView::from_yaml(CLUSTER);
    let with_literal = |pod: &mut Value, value: &str| {
        agent(pod)["env"].as_array_mut().unwrap().push(json!({"name": "OLLAMA_HOST_TOKEN", "value": value}));
    };
    let mut innocent = sandbox_pod();
    with_literal(&mut innocent, "ollama");
    assert_eq!(enforce(&innocent, &view, &Policy::default()), Verdict::default(), "another tenant's dummy key");
    let mut own = sandbox_pod();
    with_literal(&mut own, "sk-test-pod-key");
    let v = enforce(&own, &view, &Policy::default());
    assert_eq!(v.denials.iter().map(|f| f.rule).collect::<Vec<_>>(), [Rule::PodLiteralKey], "its own key");
    // A pod no harness owns: any model key is suspicious, but not proof.
    let mut orphan = sandbox_pod();
    orphan["metadata"]["name"] = json!("team-q-nobody");
    with_literal(&mut orphan, "ollama");
    let v = enforce(&orphan, &view, &Policy::default());
    assert!(v.allowed(), "{v:?}");
    assert_eq!(
        v.warnings.iter().map(|f| (f.rule, f.cause)).collect::<Vec<_>>(),
        [(Rule::PodLiteralKey, Cause::LiteralKey)]
    );
}
