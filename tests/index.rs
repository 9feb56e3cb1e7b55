//! The index, driven directly with apply/delete as the watchers would.

use std::collections::BTreeMap;

use harness_guard::core::index::{Index, Key, OtherRoutes};
use harness_guard::core::model::{AgentHarness, Meta, ModelConfig};
use harness_guard::core::view::{Digester, SecretValues, Target, ValueSet};

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
    ValueSet::new(
        Meta::named(ns, name),
        values.iter().map(|(k, v)| (k.to_string(), d.facts(v.as_bytes()))).collect::<BTreeMap<_, _>>(),
    )
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

/// The shared-gateway counts, after any sequence of harness, ModelConfig and Secret changes,
/// equal a count made from scratch over the objects (the index keeps them per namespace and
/// route so that a check reads routes, not harnesses).
mod other_routes_match_a_scan {
    use super::*;
    use harness_guard::core::index::route_id;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        Harness { ns: usize, name: usize, mc: usize, openshell: bool },
        DeleteHarness { ns: usize, name: usize },
        Model { mc: usize, secret: usize, model: usize },
        DeleteModel { mc: usize },
        Secret { secret: usize, value: usize },
        DeleteSecret { secret: usize },
    }

    const NS: [&str; 2] = ["a", "b"];
    const VALUES: [&str; 3] = ["sk-1", "sk-2", ""];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..2usize, 0..4usize, 0..3usize, any::<bool>()).prop_map(|(ns, name, mc, openshell)| Op::Harness { ns, name, mc, openshell }),
            1 => (0..2usize, 0..4usize).prop_map(|(ns, name)| Op::DeleteHarness { ns, name }),
            2 => (0..3usize, 0..3usize, 0..2usize).prop_map(|(mc, secret, model)| Op::Model { mc, secret, model }),
            1 => (0..3usize).prop_map(|mc| Op::DeleteModel { mc }),
            2 => (0..3usize, 0..3usize).prop_map(|(secret, value)| Op::Secret { secret, value }),
            1 => (0..3usize).prop_map(|secret| Op::DeleteSecret { secret }),
        ]
    }

    #[derive(Default)]
    struct World {
        harnesses: BTreeMap<(usize, usize), (usize, bool)>,
        models: BTreeMap<usize, (usize, usize)>,
        secrets: BTreeMap<usize, usize>,
    }

    impl World {
        fn secret_values(&self, d: &Digester, s: usize) -> Option<SecretValues> {
            self.secrets.get(&s).map(|v| secret(d, "a", &format!("s{s}"), &[("K", VALUES[*v])]))
        }

        fn route(&self, d: &Digester, h: &(usize, usize)) -> Option<u64> {
            let (mc, openshell) = self.harnesses.get(h)?;
            let (s, model) = self.models.get(mc).filter(|_| *openshell)?;
            let value = VALUES[*self.secrets.get(s)?];
            (!value.is_empty()).then(|| route_id("openai", Some(&format!("m{model}")), &d.digest(value.as_bytes())))
        }
    }

    fn model_config(mc: usize, secret: usize, model: usize) -> ModelConfig {
        serde_saphyr::from_str(&format!(
            "metadata: {{name: mc{mc}, namespace: a}}\nspec: {{provider: OpenAI, model: m{model}, apiKeySecret: s{secret}, apiKeySecretKey: K}}"
        ))
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
        #[test]
        fn after_any_changes(ops in prop::collection::vec(op(), 1..40)) {
            let d = Digester::random();
            let mut index = Index::default();
            let mut world = World::default();
            for op in ops {
                match op {
                    Op::Harness { ns, name, mc, openshell } => {
                        let runtime = if openshell { "" } else { ", substrate: {}" };
                        index.apply_harness(&harness(&format!(
                            "metadata: {{name: h{name}, namespace: {}}}\nspec: {{backend: openclaw, modelConfigRef: a/mc{mc}{runtime}}}\n",
                            NS[ns]
                        )));
                        world.harnesses.insert((ns, name), (mc, openshell));
                    }
                    Op::DeleteHarness { ns, name } => {
                        index.delete_harness(&key(NS[ns], &format!("h{name}")));
                        world.harnesses.remove(&(ns, name));
                    }
                    Op::Model { mc, secret, model } => {
                        index.apply_model_config(&model_config(mc, secret, model), world.secret_values(&d, secret).as_ref());
                        world.models.insert(mc, (secret, model));
                    }
                    Op::DeleteModel { mc } => {
                        index.delete_model_config(&key("a", &format!("mc{mc}")));
                        world.models.remove(&mc);
                    }
                    Op::Secret { secret, value } => {
                        world.secrets.insert(secret, value);
                        index.apply_secret(&key("a", &format!("s{secret}")), world.secret_values(&d, secret).as_ref());
                    }
                    Op::DeleteSecret { secret } => {
                        world.secrets.remove(&secret);
                        index.apply_secret(&key("a", &format!("s{secret}")), None);
                    }
                }
            }
            let routes: BTreeMap<(usize, usize), u64> =
                world.harnesses.keys().filter_map(|h| Some((*h, world.route(&d, h)?))).collect();
            let candidates = [
                route_id("openai", Some("m0"), &d.digest(b"sk-1")),
                route_id("OpenAI", Some("m1"), &d.digest(b"sk-2")),
                0,
            ];
            for mine in candidates {
                for me in [(0, 0), (0, 1), (1, 0), (1, 3)] {
                    let live = routes.len();
                    let same = routes.values().filter(|r| **r == mine).count();
                    let me_elsewhere = usize::from(routes.get(&me).is_some_and(|r| *r != mine));
                    let here: Vec<Key> = routes
                        .iter()
                        .filter(|(h, r)| h.0 == me.0 && **h != me && **r != mine)
                        .map(|(h, _)| key(NS[h.0], &format!("h{}", h.1)))
                        .collect();
                    let expected = OtherRoutes {
                        here: here.iter().take(2).cloned().collect(),
                        more_here: here.len().saturating_sub(2),
                        elsewhere: (live - same - me_elsewhere) - here.len(),
                    };
                    let me_key = key(NS[me.0], &format!("h{}", me.1));
                    prop_assert_eq!(index.other_routes(mine, &me_key, &|_: &str| true, 2), expected, "mine {} me {:?}", mine, me);
                    prop_assert_eq!(index.other_routes(mine, &me_key, &|_: &str| false, 2), OtherRoutes::default());
                }
            }
        }
    }
}
