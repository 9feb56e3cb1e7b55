//! The index, driven directly with apply/delete as the watchers would.

use std::collections::BTreeMap;

use harness_guard::core::index::{Index, Key, OtherRoutes};
use harness_guard::core::model::{AgentHarness, ModelConfig};
use harness_guard::core::view::{Digester, SecretValues, Target, ValueSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn key(ns: &str, name: &str) -> Key {
    (ns.to_string(), name.to_string())
}

fn harness(yaml: &str) -> AgentHarness {
    serde_saphyr::from_str(yaml).unwrap()
}

fn model(ns: &str, name: &str, secret: &str, field: &str) -> ModelConfig {
    serde_saphyr::from_str(&format!(
        "metadata: {{name: {name}, namespace: {ns}}}\nspec: {{model: m, apiKeySecret: {secret}, apiKeySecretKey: {field}}}"
    ))
    .unwrap()
}

fn secret(d: &Digester, ns: &str, name: &str, values: &[(&str, &str)]) -> SecretValues {
    let meta = ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() };
    ValueSet::new(meta, values.iter().map(|(k, v)| (k.to_string(), d.facts(v.as_bytes()))).collect::<BTreeMap<_, _>>())
}

#[test]
fn harness_references_follow_updates_and_deletes() {
    let mut index = Index::default();
    let a = harness(
        "metadata: {name: bot, namespace: team-a}\nspec:\n  modelConfigRef: gpt\n  channels:\n  - name: main\n    type: slack\n    slack:\n      botToken: {valueFrom: {type: Secret, name: slack, key: bot}}\n      appToken: {valueFrom: {type: ConfigMap, name: cm, key: app}}\n",
    );
    index.apply_harness(&a);
    let bot = key("team-a", "bot");
    assert_eq!(index.harnesses_for_sandbox("team-a-bot"), vec![bot.clone()]);
    assert!(index.dependents(&Target::ModelConfig(key("team-a", "gpt"))).contains(&bot));
    assert!(index.dependents(&Target::Secret(key("team-a", "slack"))).contains(&bot));
    assert!(index.dependents(&Target::ConfigMap(key("team-a", "cm"))).contains(&bot));
    // The update moves the reference; the old one is gone.
    index.apply_harness(&harness("metadata: {name: bot, namespace: team-a}\nspec: {modelConfigRef: shared/gpt}\nstatus: {backendRef: {id: custom}}"));
    assert!(index.dependents(&Target::ModelConfig(key("team-a", "gpt"))).is_empty());
    assert!(index.dependents(&Target::Secret(key("team-a", "slack"))).is_empty());
    assert!(index.dependents(&Target::ModelConfig(key("shared", "gpt"))).contains(&bot));
    assert_eq!(index.harnesses_for_sandbox("custom"), vec![bot.clone()]);
    index.delete_harness(&bot);
    assert!(index.harnesses_for_sandbox("team-a-bot").is_empty());
    assert!(index.dependents(&Target::ModelConfig(key("shared", "gpt"))).is_empty());
}

#[test]
fn model_key_digests_in_any_arrival_order() {
    let d = Digester::random();
    let is_key = |index: &Index, v: &str| index.is_model_key(&d.digest(v.as_bytes()));
    // Secret first, then the ModelConfig.
    let mut index = Index::default();
    let s = secret(&d, "team-a", "creds", &[("K", "sk-1")]);
    index.apply_secret(&key("team-a", "creds"), Some(&s));
    index.apply_model_config(&model("team-a", "gpt", "creds", "K"), Some(&s));
    assert!(is_key(&index, "sk-1"));
    // ModelConfig first, Secret later.
    let mut index = Index::default();
    index.apply_model_config(&model("team-a", "gpt", "creds", "K"), None);
    assert!(!is_key(&index, "sk-1"));
    index.apply_secret(&key("team-a", "creds"), Some(&s));
    assert!(is_key(&index, "sk-1"));
    // Rotation, key removal, deletion.
    index.apply_secret(&key("team-a", "creds"), Some(&secret(&d, "team-a", "creds", &[("K", "sk-2")])));
    assert!(!is_key(&index, "sk-1") && is_key(&index, "sk-2"));
    index.apply_secret(&key("team-a", "creds"), Some(&secret(&d, "team-a", "creds", &[("OTHER", "sk-2")])));
    assert!(!is_key(&index, "sk-2"));
    index.apply_secret(&key("team-a", "creds"), Some(&s));
    index.apply_model_config(&model("team-b", "gpt", "creds", "K"), None);
    assert!(is_key(&index, "sk-1"));
    index.delete_model_config(&key("team-a", "gpt"));
    assert!(!is_key(&index, "sk-1"), "the team-b ModelConfig names a Secret in team-b, not team-a's");
    // Two ModelConfigs sharing one key: the digest stays until both are gone.
    index.apply_model_config(&model("team-a", "a", "creds", "K"), Some(&s));
    index.apply_model_config(&model("team-a", "b", "creds", "K"), Some(&s));
    index.delete_model_config(&key("team-a", "a"));
    assert!(is_key(&index, "sk-1"));
    index.delete_model_config(&key("team-a", "b"));
    assert!(!is_key(&index, "sk-1"));
}

#[test]
fn secret_dependents_come_through_model_configs() {
    let mut index = Index::default();
    index.apply_model_config(&model("team-a", "gpt", "creds", "K"), None);
    for name in ["a", "b"] {
        index.apply_harness(&harness(&format!(
            "metadata: {{name: {name}, namespace: team-b}}\nspec: {{modelConfigRef: team-a/gpt}}"
        )));
    }
    let deps = index.dependents(&Target::Secret(key("team-a", "creds")));
    assert_eq!(deps.into_iter().collect::<Vec<_>>(), vec![key("team-b", "a"), key("team-b", "b")]);
}

#[test]
fn keys_come_back_exactly_and_shared_targets_outlive_one_referrer() {
    let mut index = Index::default();
    // A referenced name may hold a `/` (nothing validates it); the namespace never does.
    let odd = "metadata: {name: a, namespace: team-a}\nspec:\n  channels:\n  - name: main\n    type: slack\n    slack:\n      botToken: {valueFrom: {type: Secret, name: x/y, key: bot}}\n";
    index.apply_harness(&harness(odd));
    index.apply_harness(&harness(&odd.replace("name: a,", "name: b,")));
    let deps = index.dependents(&Target::Secret(key("team-a", "x/y")));
    assert_eq!(deps.into_iter().collect::<Vec<_>>(), vec![key("team-a", "a"), key("team-a", "b")]);
    assert!(index.dependents(&Target::Secret(key("team-a", "x"))).is_empty());
    // One referrer leaves: the target stays indexed for the other.
    index.delete_harness(&key("team-a", "a"));
    let deps = index.dependents(&Target::Secret(key("team-a", "x/y")));
    assert_eq!(deps.into_iter().collect::<Vec<_>>(), vec![key("team-a", "b")]);
}

/// A substrate harness reads its model key in its own namespace, under the name its ModelConfig
/// (in another namespace) gives: that Secret, not the ModelConfig's, is what it depends on. An
/// OpenShell harness depends on the ModelConfig's.
#[test]
fn key_secrets_depend_on_the_runtime() {
    let mut index = Index::default();
    index.apply_model_config(&model("platform", "gpt", "openai", "OPENAI_API_KEY"), None);
    index.apply_harness(&harness(
        "metadata: {name: sub, namespace: team-a}\nspec: {backend: openclaw, substrate: {}, modelConfigRef: platform/gpt}\n",
    ));
    index.apply_harness(&harness(
        "metadata: {name: shell, namespace: team-b}\nspec: {backend: openclaw, modelConfigRef: platform/gpt}\n",
    ));
    let deps = |ns: &str| index.dependents(&Target::Secret(key(ns, "openai"))).into_iter().collect::<Vec<_>>();
    assert_eq!(deps("team-a"), vec![key("team-a", "sub")]);
    assert_eq!(deps("platform"), vec![key("team-b", "shell")]);
    assert!(deps("team-b").is_empty());
}

/// Route counts follow the ModelConfigs and Secrets they come from, so the shared-gateway check
/// costs a lookup, not a scan.
#[test]
fn gateway_routes_follow_model_configs_and_keys() {
    use harness_guard::core::index::route_id;
    let d = Digester::random();
    let mut index = Index::default();
    let served = |_: &str| true;
    let (k1, k2) = (secret(&d, "team-a", "one", &[("K", "sk-1")]), secret(&d, "team-a", "two", &[("K", "sk-2")]));
    index.apply_model_config(&model("team-a", "a", "one", "K"), Some(&k1));
    index.apply_model_config(&model("team-a", "b", "two", "K"), Some(&k2));
    index.apply_harness(&harness(
        "metadata: {name: x, namespace: team-a}\nspec: {backend: openclaw, modelConfigRef: a}\n",
    ));
    index.apply_harness(&harness(
        "metadata: {name: y, namespace: team-b}\nspec: {backend: openclaw, modelConfigRef: team-a/b}\n",
    ));
    let mine = route_id("openai", Some("m"), &d.digest(b"sk-1"));
    let me = key("team-a", "new");
    assert_eq!(
        index.other_routes(mine, &me, &served, 3),
        OtherRoutes { elsewhere: 1, ..Default::default() },
        "y runs on another key"
    );
    // b's Secret now holds the same key: one route.
    index.apply_secret(&key("team-a", "two"), Some(&secret(&d, "team-a", "two", &[("K", "sk-1")])));
    assert_eq!(index.other_routes(mine, &me, &served, 3), OtherRoutes::default());
    // x (team-a) moves to another model: named, being in the same namespace.
    let mut other = model("team-a", "a", "one", "K");
    other.spec.model = Some("other".into());
    index.apply_model_config(&other, Some(&k1));
    assert_eq!(
        index.other_routes(mine, &me, &served, 3),
        OtherRoutes { here: vec![key("team-a", "x")], ..Default::default() }
    );
    // A type the gateway does not serve sets no route.
    assert_eq!(index.other_routes(mine, &me, &|p: &str| p != "openai", 3), OtherRoutes::default());
    index.delete_harness(&key("team-a", "x"));
    assert_eq!(index.other_routes(mine, &me, &served, 3), OtherRoutes::default());
}
