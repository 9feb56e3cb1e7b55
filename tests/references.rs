//! The reference guard on the real Secret and ModelConfig bodies: a DELETE, or an UPDATE that
//! removes a key, that would break live harnesses is warned about (or denied by policy) naming
//! them; unrelated and harmless changes pass untouched; cleanup is never blocked.

mod common;

use common::fixtures::{fixture, repo_file};
use harness_guard::admission::{Webhook, encode, parse, review};
use harness_guard::cluster::manifests::load_dir;
use harness_guard::cluster::view::View;
use harness_guard::core::policy::{Action, Policy, Rule};
use harness_guard::core::view::Digester;
use serde_json::{Value, json};

fn view() -> View {
    let digester = Digester::random();
    let (view, feeds) = View::new(&Default::default(), digester.clone());
    load_dir(&repo_file("examples/cluster"), &digester).unwrap().feed(feeds);
    view
}

fn answer(view: &View, body: &Value, policy: &Policy) -> Value {
    let req = parse(&serde_json::to_vec(body).unwrap()).unwrap();
    let response = review(Webhook::Validate, &req, view, policy).response;
    serde_json::from_slice::<Value>(&encode(response)).unwrap()["response"].clone()
}

const FOUR: &str = "breaks 4 harnesses: team-a/bad-channel, team-a/key-in-env, team-a/litellm-upstream and 1 more";

#[test]
fn breaking_changes_warn_naming_the_dependents() {
    let view = view();
    let policy = Policy::default();
    let rows = [
        ("kagent/secret-delete.validating.json", Some(format!("Deleting Secret team-a/litellm-key {FOUR}"))),
        (
            "kagent/secret-update-key-removed.validating.json",
            Some(format!("This change to Secret team-a/litellm-key {FOUR}")),
        ),
        (
            "kagent/modelconfig-delete.validating.json",
            Some("Deleting ModelConfig team-a/litellm-gpt breaks 3 harnesses: team-a/bad-channel, team-a/key-in-env, team-a/slackbot".to_string()),
        ),
        // A channel token's value changes, every key stays: nothing breaks, and no model key moves
        // (kagent refreshes channel tokens on the harness's next reconcile).
        ("kagent/secret-update-value.validating.json", None),
        // The captured update changes the model and carries an explicit base URL (a LiteLLM
        // gateway), which the examples' ModelConfig does not: that breaks its OpenShell harnesses.
        (
            "kagent/modelconfig-update.validating.json",
            Some("This change to ModelConfig team-a/litellm-gpt breaks 3 harnesses: team-a/bad-channel, team-a/key-in-env, team-a/slackbot".to_string()),
        ),
        ("kagent/modelconfig-create.validating.json", None),
    ];
    // The model name alone changes: nothing breaks.
    let mut model_only = fixture("kagent/modelconfig-update.validating.json");
    for side in ["object", "oldObject"] {
        model_only["request"][side]["spec"].as_object_mut().unwrap().remove("openAI");
    }
    let stale = "This change to ModelConfig team-a/litellm-gpt never reaches running sandboxes (kagent gives the \
                 OpenShell gateway the key and model only when it creates one): 3 live harnesses keep the old value \
                 until recreated.";
    assert_eq!(answer(&view, &model_only, &policy)["warnings"], json!([stale]));
    for (name, warning) in rows {
        let a = answer(&view, &fixture(name), &policy);
        assert_eq!(a["allowed"], true, "{name}: {a}");
        match warning {
            Some(w) => assert_eq!(a["warnings"], json!([w]), "{name}"),
            None => assert!(a["warnings"].is_null(), "{name}: {a}"),
        }
    }
}

#[test]
fn unrelated_and_already_broken_dependents_pass_untouched() {
    let view = view();
    let mut unrelated = fixture("kagent/secret-delete.validating.json");
    unrelated["request"]["name"] = json!("unrelated");
    unrelated["request"]["oldObject"]["metadata"]["name"] = json!("unrelated");
    assert!(answer(&view, &unrelated, &Policy::default())["warnings"].is_null());
    // Only team-a/empty-key uses Secret empty-key, and it is broken already: no new breakage.
    let mut empty = fixture("kagent/secret-delete.validating.json");
    empty["request"]["name"] = json!("empty-key");
    empty["request"]["oldObject"]["metadata"]["name"] = json!("empty-key");
    assert!(answer(&view, &empty, &Policy::default())["warnings"].is_null());
    // Removing a key nobody uses: slack-tokens keeps bot and app.
    // (values as the examples' view holds them: no value changes either)
    let mut extra = fixture("kagent/secret-update-value.validating.json");
    let same = json!({"bot": "eG94Yi10ZXN0LW5vdC1hLXJlYWwtdG9rZW4=", "app": "eGFwcC10ZXN0LW5vdC1hLXJlYWwtdG9rZW4="});
    extra["request"]["object"]["data"] = same.clone();
    extra["request"]["oldObject"]["data"] = same;
    extra["request"]["oldObject"]["data"]["unused"] = json!("eA==");
    assert!(answer(&view, &extra, &Policy::default())["warnings"].is_null());
    // Removing the bot token breaks the harnesses that read it.
    let mut bot = fixture("kagent/secret-update-value.validating.json");
    bot["request"]["object"]["data"].as_object_mut().unwrap().remove("bot");
    let a = answer(&view, &bot, &Policy::default());
    assert_eq!(a["warnings"][0], "This change to Secret team-a/slack-tokens breaks 1 harness: team-a/slackbot", "{a}");
}

#[test]
fn deny_by_policy_but_never_block_cleanup() {
    let view = view();
    let mut policy = Policy::default();
    policy.rules.insert(Rule::ReferenceInUse, Action::Deny);
    let delete = fixture("kagent/secret-delete.validating.json");
    let a = answer(&view, &delete, &policy);
    assert_eq!(a["allowed"], false, "{a}");
    assert_eq!(a["status"]["code"], 403);
    assert!(a["status"]["message"].as_str().unwrap().contains(FOUR));
    for user in [
        "system:serviceaccount:kube-system:namespace-controller",
        "system:serviceaccount:kube-system:generic-garbage-collector",
    ] {
        let mut cleanup = delete.clone();
        cleanup["request"]["userInfo"]["username"] = json!(user);
        let a = answer(&view, &cleanup, &policy);
        assert_eq!(a["allowed"], true, "{user}: {a}");
        assert!(a["warnings"][0].as_str().unwrap().contains(FOUR));
    }
    let mut finalizing = delete.clone();
    finalizing["request"]["oldObject"]["metadata"]["deletionTimestamp"] = json!("2026-11-25T22:00:00Z");
    assert_eq!(answer(&view, &finalizing, &policy)["allowed"], true);
}
