//! The view as far as `explain` could read it. A live `explain` reads only the objects the
//! harness's chain needs, with the caller's permissions: what it did not read, or was not allowed
//! to read, must count as unknown (`NotWatched`: absence proves nothing), never as missing, or the
//! rules would call a Secret the caller may not see "deleted". The same overlay records what the
//! rules looked for, which is how the shell learns what to read next.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::core::finding::{Kind, ObjectRef};
use crate::core::model::{AgentHarness, ModelConfig};
use crate::core::policy::Policy;
use crate::core::validate::{check_harness, key_secret_namespace, parse_model_config_ref};
use crate::core::view::{ClusterView, ConfigMapValues, Lookup, SecretValues};

/// A view that answers `NotWatched` for what was not read (when `read` is given) and for what
/// could not be read, and records what was asked for and not read.
pub(super) struct Partial<'a, V> {
    base: &'a V,
    read: Option<&'a BTreeSet<ObjectRef>>,
    unreadable: &'a BTreeSet<ObjectRef>,
    asked: RefCell<BTreeSet<ObjectRef>>,
}

impl<'a, V: ClusterView> Partial<'a, V> {
    /// `read`: the objects looked up so far (`None`: the base view holds all there is).
    pub(super) fn new(base: &'a V, read: Option<&'a BTreeSet<ObjectRef>>, unreadable: &'a BTreeSet<ObjectRef>) -> Self {
        Self { base, read, unreadable, asked: RefCell::default() }
    }

    fn lookup<T>(&self, kind: Kind, ns: &str, name: &str, get: impl FnOnce() -> Lookup<T>) -> Lookup<T> {
        let object = ObjectRef::new(kind, ns, name);
        if self.unreadable.contains(&object) {
            return Lookup::NotWatched;
        }
        if self.read.is_some_and(|read| !read.contains(&object)) {
            self.asked.borrow_mut().insert(object);
            return Lookup::NotWatched;
        }
        get()
    }
}

/// The objects the rules would look up for `harness` that are not in `read` yet, together with
/// the chain's own ModelConfig and key Secret (which the rules may stop short of: a provider the
/// gateway refuses ends the chain for them, not for the engineer reading it). A live `explain`
/// reads these, adds them to `read`, and asks again until nothing new is wanted.
pub fn wanted(
    harness: &AgentHarness,
    view: &impl ClusterView,
    policy: &Policy,
    read: &BTreeSet<ObjectRef>,
) -> Vec<ObjectRef> {
    let none = BTreeSet::new();
    let probe = Partial::new(view, Some(read), &none);
    check_harness(harness, &probe, policy);
    if let Some((mc, Lookup::Found(config))) = model_config(harness, &probe)
        && let Some((secret, _)) = key_secret(harness, &mc, &config)
    {
        probe.secret(&secret.namespace, &secret.name);
    }
    probe.asked.into_inner().into_iter().collect()
}

/// The harness's ModelConfig, by reference and as the view has it; `None` when
/// `spec.modelConfigRef` is unset or not a reference.
pub(super) fn model_config(
    harness: &AgentHarness,
    view: &impl ClusterView,
) -> Option<(ObjectRef, Lookup<Arc<ModelConfig>>)> {
    let (ns, name) = parse_model_config_ref(harness.model_config_ref()?, harness.namespace()).ok()?;
    Some((ObjectRef::new(Kind::ModelConfig, ns, name), view.model_config(ns, name)))
}

/// The Secret holding the model key, and the key, as the harness's runtime reads them; `None`
/// when the ModelConfig does not name both.
pub(super) fn key_secret(harness: &AgentHarness, mc: &ObjectRef, config: &ModelConfig) -> Option<(ObjectRef, String)> {
    let secret = config.spec.api_key_secret.as_deref().filter(|s| !s.is_empty())?;
    let key = config.spec.api_key_secret_key.as_deref().filter(|s| !s.is_empty())?;
    let ns = key_secret_namespace(harness, &mc.namespace);
    Some((ObjectRef::new(Kind::Secret, ns, secret), key.to_string()))
}

impl<V: ClusterView> ClusterView for Partial<'_, V> {
    fn model_config(&self, ns: &str, name: &str) -> Lookup<Arc<ModelConfig>> {
        self.lookup(Kind::ModelConfig, ns, name, || self.base.model_config(ns, name))
    }
    fn secret(&self, ns: &str, name: &str) -> Lookup<Arc<SecretValues>> {
        self.lookup(Kind::Secret, ns, name, || self.base.secret(ns, name))
    }
    fn config_map(&self, ns: &str, name: &str) -> Lookup<Arc<ConfigMapValues>> {
        self.lookup(Kind::ConfigMap, ns, name, || self.base.config_map(ns, name))
    }
    crate::core::view::from_base!();
}
