//! Guarding the references harnesses depend on: a DELETE of a ModelConfig, Secret or ConfigMap,
//! or an UPDATE that removes or empties a key or changes a ModelConfig, is judged by what it does
//! to the harnesses that depend on it. Each dependent (from the index) is checked against the
//! view as it is and as it would be after the change; new problems mean the change breaks it.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::index::Key;
use super::model::{AgentHarness, ModelConfig};
use super::policy::{Policy, Rule};
use super::validate::check_harness;
use super::verdict::{Finding, Verdict};
use super::view::{ClusterView, ConfigMapValues, Digester, Lookup, SecretValues, Target};

/// The object a request changes, as it would be afterwards (`None`: deleted).
pub enum After {
    /// A Secret.
    Secret(Key, Option<Arc<SecretValues>>),
    /// A ConfigMap.
    ConfigMap(Key, Option<Arc<ConfigMapValues>>),
    /// A ModelConfig.
    ModelConfig(Key, Option<Arc<ModelConfig>>),
}

impl After {
    fn target(&self) -> Target {
        match self {
            After::Secret(k, _) => Target::Secret(k.clone()),
            After::ConfigMap(k, _) => Target::ConfigMap(k.clone()),
            After::ModelConfig(k, _) => Target::ModelConfig(k.clone()),
        }
    }

    fn describe(&self) -> String {
        let (kind, key, gone) = match self {
            After::Secret(k, v) => ("Secret", k, v.is_none()),
            After::ConfigMap(k, v) => ("ConfigMap", k, v.is_none()),
            After::ModelConfig(k, v) => ("ModelConfig", k, v.is_none()),
        };
        let verb = if gone { "Deleting" } else { "This change to" };
        format!("{verb} {kind} {}/{}", key.0, key.1)
    }
}

/// Who is asking, for the rule that cleanup is never blocked.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cleanup {
    /// The requester is the namespace controller or the garbage collector.
    pub by_controller: bool,
    /// The object already has a `deletionTimestamp`.
    pub being_deleted: bool,
}

/// Usernames whose deletes are cleanup: namespace teardown and owner-reference collection.
pub const CLEANUP_USERS: [&str; 2] = [
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
];

/// Names shown in a warning before the list is summarised.
const NAMES_SHOWN: usize = 3;

/// The verdict on a change to a referenced object.
pub fn guard_reference(after: After, cleanup: Cleanup, view: &impl ClusterView, policy: &Policy) -> Verdict {
    let dependents = view.dependents(&after.target());
    if dependents.is_empty() {
        return Verdict::default();
    }
    let overlay = Overlay { base: view, after: &after };
    let mut broken: Vec<String> = dependents.iter().filter(|h| breaks(h, view, &overlay)).map(|h| h.key()).collect();
    if broken.is_empty() {
        return Verdict::default();
    }
    broken.sort();
    let count = broken.len();
    let noun = if count == 1 { "harness" } else { "harnesses" };
    let mut names = broken.iter().take(NAMES_SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if count > NAMES_SHOWN {
        names.push_str(&format!(" and {} more", count - NAMES_SHOWN));
    }
    let finding = Finding::new(Rule::ReferenceInUse, format!("{} breaks {count} {noun}: {names}", after.describe()));
    if cleanup.by_controller || cleanup.being_deleted {
        return Verdict::warn_only(vec![finding], policy);
    }
    Verdict::judge(vec![finding], policy)
}

/// True when the change gives `harness` a problem it did not have: a rule failing at a field
/// that passed before. A harness already broken at that field is not broken again.
fn breaks(harness: &AgentHarness, before: &impl ClusterView, after: &impl ClusterView) -> bool {
    let at = |f: &Finding| (f.rule, f.message.split(" → ").next().unwrap_or_default().to_string());
    let known: BTreeSet<_> = check_harness(harness, before).iter().map(at).collect();
    check_harness(harness, after).iter().any(|f| f.rule != Rule::AllowedDomains && !known.contains(&at(f)))
}

/// The view with one object replaced or removed.
struct Overlay<'a, V> {
    base: &'a V,
    after: &'a After,
}

fn swap<T>(key: &Key, ns: &str, name: &str, replacement: &Option<Arc<T>>) -> Option<Lookup<Arc<T>>> {
    (key.0 == ns && key.1 == name).then(|| replacement.clone().map_or(Lookup::Missing, Lookup::Found))
}

impl<V: ClusterView> ClusterView for Overlay<'_, V> {
    fn model_config(&self, ns: &str, name: &str) -> Lookup<Arc<ModelConfig>> {
        match self.after {
            After::ModelConfig(k, v) => swap(k, ns, name, v),
            _ => None,
        }
        .unwrap_or_else(|| self.base.model_config(ns, name))
    }
    fn secret(&self, ns: &str, name: &str) -> Lookup<Arc<SecretValues>> {
        match self.after {
            After::Secret(k, v) => swap(k, ns, name, v),
            _ => None,
        }
        .unwrap_or_else(|| self.base.secret(ns, name))
    }
    fn config_map(&self, ns: &str, name: &str) -> Lookup<Arc<ConfigMapValues>> {
        match self.after {
            After::ConfigMap(k, v) => swap(k, ns, name, v),
            _ => None,
        }
        .unwrap_or_else(|| self.base.config_map(ns, name))
    }
    fn all_harnesses(&self) -> Vec<Arc<AgentHarness>> {
        self.base.all_harnesses()
    }
    fn all_model_configs(&self) -> Vec<Arc<ModelConfig>> {
        self.base.all_model_configs()
    }
    fn digester(&self) -> &Digester {
        self.base.digester()
    }
}
