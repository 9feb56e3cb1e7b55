//! The AdmissionReview layer without a network: real apiserver bodies reshaped per rule, answered
//! against the built-in default's view (examples/cluster) through `admission::parse` and `review`.

mod common;

use common::fixtures::{fixture, repo_file};
use harness_guard::admission::{Webhook, encode, parse, review};
use harness_guard::cluster::manifests::load_dir;
use harness_guard::cluster::view::View;
use harness_guard::core::finding::Cause;
use harness_guard::core::policy::{Policy, Rule};
use harness_guard::core::view::Digester;
use serde_json::{Value, json};

fn view() -> View {
    let digester = Digester::random();
    let (view, feeds) = View::new(&Default::default(), digester.clone());
    load_dir(&repo_file("examples/cluster"), &digester).unwrap().feed(feeds);
    view
}

fn answer(view: &View, webhook: Webhook, body: &Value) -> Value {
    let req = parse(&serde_json::to_vec(body).unwrap()).unwrap();
    let reviewed = review(webhook, &req, view, &Policy::default());
    serde_json::from_slice::<Value>(&encode(reviewed.response)).unwrap()["response"].clone()
}

#[test]
fn dry_run_gets_the_same_verdict() {
    let view = view();
    let mut real = fixture("kagent/agentharness-create-dryrun.validating.json");
    real["request"]["object"]["spec"]["modelConfigRef"] = json!("gpt4");
    let mut dry = real.clone();
    real["request"]["dryRun"] = json!(false);
    dry["request"]["dryRun"] = json!(true);
    let (a, b) = (answer(&view, Webhook::Validate, &real), answer(&view, Webhook::Validate, &dry));
    assert_eq!(a["allowed"], false);
    assert_eq!(a["status"], b["status"]);
}

fn broken_update() -> Value {
    let mut review = fixture("kagent/agentharness-update.validating.json");
    // The captured UPDATE changes the description; start from a spec both sides share.
    review["request"]["oldObject"]["spec"]["modelConfigRef"] = json!("gpt4");
    review["request"]["object"]["spec"] = review["request"]["oldObject"]["spec"].clone();
    review
}

#[test]
fn updates_that_must_not_be_blocked() {
    let view = view();
    // Spec unchanged (labels, annotations, finalizers, status): allowed, with a warning.
    let mut labels = broken_update();
    labels["request"]["object"]["metadata"]["labels"] = json!({"team": "a"});
    let a = answer(&view, Webhook::Validate, &labels);
    assert_eq!(a["allowed"], true, "{a}");
    assert!(a["warnings"][0].as_str().unwrap().contains("ModelConfig team-a/gpt4 does not exist"), "{a}");
    // Being deleted: finalizer removal always goes through, silently.
    let mut deleting = broken_update();
    deleting["request"]["object"]["metadata"]["deletionTimestamp"] = json!("2026-11-25T22:30:00Z");
    deleting["request"]["object"]["spec"]["description"] = json!("changed");
    let a = answer(&view, Webhook::Validate, &deleting);
    assert_eq!(a["allowed"], true, "{a}");
    assert!(a["warnings"].is_null());
    // A spec change is judged like a create.
    let mut changed = broken_update();
    changed["request"]["object"]["spec"]["description"] = json!("changed");
    assert_eq!(answer(&view, Webhook::Validate, &changed)["allowed"], false);
    // DELETE is always allowed.
    let delete = fixture("kagent/agentharness-delete.validating.json");
    assert_eq!(answer(&view, Webhook::Validate, &delete)["allowed"], true);
}

#[test]
fn pods_are_judged_on_create_only() {
    let view = view();
    let secret_ref = json!({"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "litellm-key", "key": "OPENAI_API_KEY"}}});
    let mut create = fixture("kagent/pod-sandbox-create.validating.json");
    create["request"]["object"]["spec"]["containers"][0]["env"].as_array_mut().unwrap().push(secret_ref);
    let a = answer(&view, Webhook::Validate, &create);
    assert_eq!(a["allowed"], false, "{a}");
    assert!(
        a["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Pod openshell/team-a-slackbot: container agent env OPENAI_API_KEY")
    );
    let mut update = create.clone();
    update["request"]["operation"] = json!("UPDATE");
    update["request"]["oldObject"] = update["request"]["object"].clone();
    assert_eq!(answer(&view, Webhook::Validate, &update)["allowed"], true);
    // The mutating webhook leaves updates alone too.
    let mut mutate_update = fixture("kagent/pod-sandbox-create.mutating.json");
    mutate_update["request"]["operation"] = json!("UPDATE");
    mutate_update["request"]["oldObject"] = mutate_update["request"]["object"].clone();
    let a = answer(&view, Webhook::Mutate, &mutate_update);
    assert!(a["patch"].is_null(), "{a}");
    // Ordinary pods from the fixtures get no patch.
    for name in [
        "pod-create.mutating.json",
        "pod-create-generatename-token-user.mutating.json",
        "pod-create-dryrun.mutating.json",
    ] {
        let a = answer(&view, Webhook::Mutate, &fixture(name));
        assert_eq!(a["allowed"], true, "{name}");
        assert!(a["patch"].is_null() && a["warnings"].is_null(), "{name}: {a}");
    }
}

/// #14 fault 7: `kubectl debug` adds an ephemeral container through an UPDATE of the
/// `pods/ephemeralcontainers` subresource; one that pulls a Secret into its environment is refused
/// like any container of a CREATE, and a harmless debugger passes. The mutating webhook never
/// touches that subresource.
#[test]
fn an_ephemeral_container_cannot_bring_a_secret_into_a_sandbox_pod() {
    let view = view();
    let create = fixture("kagent/pod-sandbox-create.validating.json");
    let debug = |container: Value| {
        let mut update = create.clone();
        update["request"]["operation"] = json!("UPDATE");
        update["request"]["subResource"] = json!("ephemeralcontainers");
        update["request"]["oldObject"] = create["request"]["object"].clone();
        update["request"]["object"]["spec"]["ephemeralContainers"] = json!([container]);
        update
    };
    let stealer = debug(json!({"name": "debugger", "image": "busybox", "targetContainerName": "agent",
                                "envFrom": [{"secretRef": {"name": "litellm-key"}}]}));
    let a = answer(&view, Webhook::Validate, &stealer);
    assert_eq!(a["allowed"], false, "{a}");
    let message = a["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("Pod openshell/team-a-slackbot: container debugger envFrom[0]"), "{message}");
    assert!(message.contains("litellm-key"), "{message}");

    let harmless = debug(json!({"name": "debugger", "image": "busybox", "targetContainerName": "agent"}));
    assert_eq!(answer(&view, Webhook::Validate, &harmless)["allowed"], true);
    let mut mutate = stealer.clone();
    mutate["request"]["uid"] = json!("mutate-ephemeral");
    let a = answer(&view, Webhook::Mutate, &mutate);
    assert!(a["allowed"] == true && a["patch"].is_null(), "{a}");
    // Any other subresource UPDATE (status, resize) is not judged.
    let mut status = stealer.clone();
    status["request"]["subResource"] = json!("status");
    assert_eq!(answer(&view, Webhook::Validate, &status)["allowed"], true);
}

#[test]
fn the_real_sandbox_pod_fixture_is_patched_idempotently_through_the_review() {
    let view = view();
    let mut review = fixture("kagent/pod-sandbox-create.mutating.json");
    let a = answer(&view, Webhook::Mutate, &review);
    let patch = common::patch_of(&a).expect("a patch");
    json_patch::patch(&mut review["request"]["object"], &patch).unwrap();
    let again = answer(&view, Webhook::Mutate, &review);
    assert_eq!(again["allowed"], true);
    assert!(again["patch"].is_null(), "second pass must not patch: {again}");
}

#[test]
fn an_unreadable_sandbox_pod_is_refused_by_validate_and_never_by_mutate() {
    let view = view();
    let policy = Policy::default();
    let mut mutating = fixture("kagent/pod-sandbox-create.mutating.json");
    mutating["request"]["object"]["spec"]["containers"] = json!("not a list");
    let req = parse(&serde_json::to_vec(&mutating).unwrap()).unwrap();
    let reviewed = review(Webhook::Mutate, &req, &view, &policy);
    let findings: Vec<_> =
        harness_guard::admission::findings(&reviewed.verdict).map(|(f, a)| (f.rule, f.cause, a)).collect();
    assert_eq!(findings, [(Rule::Unreadable, Cause::Unreadable, "warn")], "counted for the metric");
    let a = serde_json::from_slice::<Value>(&encode(reviewed.response)).unwrap()["response"].clone();
    assert_eq!(a["allowed"], true, "{a}");
    assert!(a["patch"].is_null(), "{a}");
    let warning = a["warnings"][0].as_str().unwrap();
    assert!(warning.starts_with("harness-guard cannot read Pod openshell/team-a-slackbot: "), "{warning}");
    // The one-pass read of the spec failed; the second, raw, read names the field.
    assert!(warning.contains("spec.containers"), "{warning}");

    // The same pod on /validate: a 400 naming the object, so the apiserver refuses it.
    let mut validating = fixture("kagent/pod-sandbox-create.validating.json");
    validating["request"]["object"]["spec"]["containers"] = json!("not a list");
    let req = parse(&serde_json::to_vec(&validating).unwrap()).unwrap();
    let reviewed = review(Webhook::Validate, &req, &view, &policy);
    // Counted and logged as the refusal the user sees, not as "allowed".
    assert_eq!(reviewed.verdict.verdict_label(), "denied");
    let findings: Vec<_> =
        harness_guard::admission::findings(&reviewed.verdict).map(|(f, a)| (f.rule, f.cause, a)).collect();
    assert_eq!(findings, [(Rule::Unreadable, Cause::Unreadable, "deny")]);
    let a = answer(&view, Webhook::Validate, &validating);
    assert_eq!(a["allowed"], false, "{a}");
    assert_eq!(a["status"]["code"], 400);
    assert!(
        a["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("harness-guard cannot read Pod openshell/team-a-slackbot: ")
    );
}
