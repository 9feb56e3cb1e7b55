//! Guarding the references harnesses depend on: a DELETE of a ModelConfig, Secret or ConfigMap,
//! or an UPDATE that removes or empties a key or changes a ModelConfig, is judged by what it does
//! to the harnesses that depend on it. Each dependent (from the index) is checked against the
//! view as it is and as it would be after the change; new problems mean the change breaks it.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::finding::{Cause, Detail, Finding, Kind, ObjectRef};
use super::index::Key;
use super::model::{AgentHarness, ModelConfig};
use super::policy::{Policy, Rule};
use super::validate::{check_harness, parse_model_config_ref};
use super::verdict::Verdict;
use super::view::{ClusterView, ConfigMapValues, Lookup, SecretValues, Target};

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

    /// The changed object, and whether it is deleted.
    fn object(&self) -> (ObjectRef, bool) {
        let (kind, key, gone) = match self {
            After::Secret(k, v) => (Kind::Secret, k, v.is_none()),
            After::ConfigMap(k, v) => (Kind::ConfigMap, k, v.is_none()),
            After::ModelConfig(k, v) => (Kind::ModelConfig, k, v.is_none()),
        };
        (ObjectRef::new(kind, &*key.0, &*key.1), gone)
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
    let (broken, intact): (Vec<_>, Vec<_>) = dependents.iter().partition(|h| breaks(h, view, &overlay, policy));
    let (object, deleted) = after.object();
    let mut findings = Vec::new();
    if !broken.is_empty() {
        let mut names: Vec<String> = broken.iter().map(|h| h.key()).collect();
        names.sort();
        let count = names.len();
        names.truncate(NAMES_SHOWN);
        let detail = Detail::Dependents { deleted, count, shown: names };
        findings.push(Finding::on(Rule::ReferenceInUse, &object, "", Cause::InUse).with(detail));
    }
    // kagent sends the key and model to the OpenShell gateway only when it creates a sandbox: a
    // change that breaks nothing still never reaches the harnesses already running.
    let stale = intact.iter().filter(|h| h.runs_on_openshell() && changes_what_it_uses(h, &after, view)).count();
    if stale > 0 && !deleted {
        let detail = Detail::Dependents { deleted, count: stale, shown: Vec::new() };
        findings.push(Finding::on(Rule::StaleSandbox, &object, "", Cause::Stale).with(detail));
    }
    if cleanup.by_controller || cleanup.being_deleted {
        return Verdict::warn_only(findings, policy);
    }
    Verdict::judge(findings, policy)
}

/// True when the change alters what kagent gave the OpenShell gateway for `harness` when its
/// sandbox was created: its ModelConfig's provider, model or key reference, or its key's value.
fn changes_what_it_uses(harness: &AgentHarness, after: &After, view: &impl ClusterView) -> bool {
    let model_config = harness.model_config_ref().and_then(|r| parse_model_config_ref(r, harness.namespace()).ok());
    match after {
        After::ModelConfig(key, Some(new)) => {
            let Lookup::Found(old) = view.model_config(&key.0, &key.1) else { return false };
            let s = (&old.spec, &new.spec);
            old.provider() != new.provider()
                || s.0.model != s.1.model
                || s.0.api_key_secret != s.1.api_key_secret
                || s.0.api_key_secret_key != s.1.api_key_secret_key
        }
        After::Secret(key, Some(new)) => {
            let Lookup::Found(old) = view.secret(&key.0, &key.1) else { return false };
            let Some((ns, name)) = model_config.filter(|(ns, _)| *ns == key.0) else { return false };
            let Lookup::Found(mc) = view.model_config(ns, name) else { return false };
            let field =
                mc.spec.api_key_secret_key.as_deref().filter(|_| mc.spec.api_key_secret.as_deref() == Some(&key.1));
            field.is_some_and(|k| match (old.keys.get(k), new.keys.get(k)) {
                (Some(a), Some(b)) => a.digest != b.digest,
                _ => false,
            })
        }
        _ => false,
    }
}

/// True when the change gives `harness` a problem it did not have: a rule whose findings mean
/// breakage ([`Rule::breaks_harness`]) failing at a place that passed before. A harness already
/// broken there is not broken again, even when the cause changes (an empty key now missing).
fn breaks(harness: &AgentHarness, before: &impl ClusterView, after: &impl ClusterView, policy: &Policy) -> bool {
    let known: BTreeSet<_> = check_harness(harness, before, policy).into_iter().map(|f| (f.rule, f.at)).collect();
    check_harness(harness, after, policy)
        .into_iter()
        .any(|f| f.rule.breaks_harness() && !known.contains(&(f.rule, f.at)))
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
    // The overlay only re-checks harnesses, which read the lookups above and the digester; the
    // indexes are the base view's, before the change.
    crate::core::view::from_base!();
}
