//! Indexes over the cluster view, so no decision scans every object: which harnesses a sandbox
//! name belongs to, which harnesses depend on a ModelConfig, Secret or ConfigMap, and which value
//! digests are some ModelConfig's API key. A plain struct fed `apply`/`delete` calls; the cluster
//! layer feeds it from the same events that fill the stores, tests feed it directly.

use std::collections::{BTreeSet, HashMap};

use super::model::{AgentHarness, ModelConfig};
use super::sandbox::sandbox_names;
use super::validate::parse_model_config_ref;
use super::view::{SecretValues, ValueDigest};

/// `(namespace, name)`.
pub type Key = (String, String);

/// The key of an object.
pub fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Key {
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

/// What one harness refers to.
#[derive(Clone, Debug, Default, PartialEq)]
struct HarnessRefs {
    model_config: Option<Key>,
    secrets: Vec<Key>,
    config_maps: Vec<Key>,
    sandboxes: Vec<String>,
}

/// What one ModelConfig refers to.
#[derive(Clone, Debug, Default, PartialEq)]
struct ModelRefs {
    secret: Option<(Key, String)>,
    digest: Option<ValueDigest>,
}

/// The indexes. Every `apply` replaces what the object contributed before.
#[derive(Debug, Default)]
pub struct Index {
    harnesses: HashMap<Key, HarnessRefs>,
    // Vec, not BTreeSet: nearly every entry holds one key, and a B-tree node for one key costs
    // ten times the key.
    by_model_config: HashMap<Key, Vec<Key>>,
    by_secret: HashMap<Key, Vec<Key>>,
    by_config_map: HashMap<Key, Vec<Key>>,
    by_sandbox: HashMap<String, Vec<Key>>,
    model_configs: HashMap<Key, ModelRefs>,
    models_by_secret: HashMap<Key, Vec<Key>>,
    model_keys: HashMap<ValueDigest, usize>,
}

fn add<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Vec<Key>>, at: K, who: &Key) {
    let keys = map.entry(at).or_default();
    if let Err(i) = keys.binary_search(who) {
        keys.insert(i, who.clone());
    }
}

fn remove<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Vec<Key>>, at: &K, who: &Key) {
    if let Some(keys) = map.get_mut(at) {
        keys.retain(|k| k != who);
        if keys.is_empty() {
            map.remove(at);
        }
    }
}

fn harness_refs(h: &AgentHarness) -> HarnessRefs {
    let ns = h.namespace();
    let model_config = h
        .spec
        .model_config_ref
        .as_deref()
        .and_then(|r| parse_model_config_ref(r, ns).ok())
        .map(|(n, m)| (n.to_string(), m.to_string()));
    let mut refs = HarnessRefs { model_config, sandboxes: sandbox_names(h).collect(), ..Default::default() };
    for channel in h.spec.channels.iter().flatten() {
        let slack = channel.slack.iter().flat_map(|s| [&s.bot_token, &s.app_token]);
        let telegram = channel.telegram.iter().map(|t| &t.bot_token);
        for source in slack.chain(telegram).flatten().filter_map(|c| c.value_from.as_ref()) {
            let key = (ns.to_string(), source.name.clone());
            match source.type_.as_str() {
                "Secret" => refs.secrets.push(key),
                "ConfigMap" => refs.config_maps.push(key),
                _ => {}
            }
        }
    }
    refs
}

impl Index {
    /// Records (or re-records) a harness.
    pub fn apply_harness(&mut self, h: &AgentHarness) {
        let key = key_of(&h.metadata);
        self.delete_harness(&key);
        let refs = harness_refs(h);
        if let Some(mc) = &refs.model_config {
            add(&mut self.by_model_config, mc.clone(), &key);
        }
        for s in &refs.secrets {
            add(&mut self.by_secret, s.clone(), &key);
        }
        for c in &refs.config_maps {
            add(&mut self.by_config_map, c.clone(), &key);
        }
        for name in &refs.sandboxes {
            add(&mut self.by_sandbox, name.clone(), &key);
        }
        self.harnesses.insert(key, refs);
    }

    /// Forgets a harness.
    pub fn delete_harness(&mut self, key: &Key) {
        let Some(refs) = self.harnesses.remove(key) else { return };
        if let Some(mc) = &refs.model_config {
            remove(&mut self.by_model_config, mc, key);
        }
        for s in &refs.secrets {
            remove(&mut self.by_secret, s, key);
        }
        for c in &refs.config_maps {
            remove(&mut self.by_config_map, c, key);
        }
        for name in &refs.sandboxes {
            remove(&mut self.by_sandbox, name, key);
        }
    }

    /// Records a ModelConfig; `secret` is its key Secret as the view holds it now, if any.
    pub fn apply_model_config(&mut self, mc: &ModelConfig, secret: Option<&SecretValues>) {
        let key = key_of(&mc.metadata);
        self.delete_model_config(&key);
        let ns = key.0.clone();
        let target = match (&mc.spec.api_key_secret, &mc.spec.api_key_secret_key) {
            (Some(s), Some(k)) if !s.is_empty() && !k.is_empty() => Some(((ns, s.clone()), k.clone())),
            _ => None,
        };
        let digest = target
            .as_ref()
            .zip(secret)
            .and_then(|((_, k), set)| set.keys.get(k))
            .filter(|f| !f.empty)
            .map(|f| f.digest);
        if let Some((secret_key, _)) = &target {
            add(&mut self.models_by_secret, secret_key.clone(), &key);
        }
        if let Some(d) = digest {
            *self.model_keys.entry(d).or_default() += 1;
        }
        self.model_configs.insert(key, ModelRefs { secret: target, digest });
    }

    /// Forgets a ModelConfig.
    pub fn delete_model_config(&mut self, key: &Key) {
        let Some(refs) = self.model_configs.remove(key) else { return };
        if let Some((secret_key, _)) = &refs.secret {
            remove(&mut self.models_by_secret, secret_key, key);
        }
        if let Some(d) = refs.digest {
            self.forget_digest(d);
        }
    }

    fn forget_digest(&mut self, d: ValueDigest) {
        if let Some(n) = self.model_keys.get_mut(&d) {
            *n -= 1;
            if *n == 0 {
                self.model_keys.remove(&d);
            }
        }
    }

    /// A Secret changed (`Some`) or went away (`None`): refresh the key digests of the
    /// ModelConfigs that name it.
    pub fn apply_secret(&mut self, key: &Key, secret: Option<&SecretValues>) {
        let users: Vec<Key> = self.models_by_secret.get(key).cloned().unwrap_or_default();
        for mc in users {
            let Some(refs) = self.model_configs.get(&mc).cloned() else { continue };
            if let Some(d) = refs.digest {
                self.forget_digest(d);
            }
            let field = refs.secret.as_ref().map(|(_, k)| k.as_str()).unwrap_or("");
            let digest = secret.and_then(|s| s.keys.get(field)).filter(|f| !f.empty).map(|f| f.digest);
            if let Some(d) = digest {
                *self.model_keys.entry(d).or_default() += 1;
            }
            self.model_configs.insert(mc, ModelRefs { digest, ..refs });
        }
    }

    /// Harnesses whose sandbox is named `sandbox`.
    pub fn harnesses_for_sandbox(&self, sandbox: &str) -> Vec<Key> {
        self.by_sandbox.get(sandbox).cloned().unwrap_or_default()
    }

    /// Harnesses that reference the ModelConfig `key`.
    pub fn dependents_of_model_config(&self, key: &Key) -> BTreeSet<Key> {
        self.by_model_config.get(key).into_iter().flatten().cloned().collect()
    }

    /// Harnesses that depend on the Secret `key`: through a channel token, or through a
    /// ModelConfig that names it.
    pub fn dependents_of_secret(&self, key: &Key) -> BTreeSet<Key> {
        let mut out: BTreeSet<Key> = self.by_secret.get(key).into_iter().flatten().cloned().collect();
        for mc in self.models_by_secret.get(key).into_iter().flatten() {
            out.extend(self.dependents_of_model_config(mc));
        }
        out
    }

    /// Harnesses that depend on `target`.
    pub fn dependents(&self, target: &super::view::Target) -> BTreeSet<Key> {
        match target {
            super::view::Target::ModelConfig(k) => self.dependents_of_model_config(k),
            super::view::Target::Secret(k) => self.dependents_of_secret(k),
            super::view::Target::ConfigMap(k) => self.dependents_of_config_map(k),
        }
    }

    /// Harnesses that take a channel token from the ConfigMap `key`.
    pub fn dependents_of_config_map(&self, key: &Key) -> BTreeSet<Key> {
        self.by_config_map.get(key).into_iter().flatten().cloned().collect()
    }

    /// Harnesses indexed in `namespace` (all when `None`).
    pub fn harness_keys(&self, namespace: Option<&str>) -> Vec<Key> {
        self.harnesses.keys().filter(|k| namespace.is_none_or(|n| k.0 == n)).cloned().collect()
    }

    /// ModelConfigs indexed in `namespace` (all when `None`).
    pub fn model_config_keys(&self, namespace: Option<&str>) -> Vec<Key> {
        self.model_configs.keys().filter(|k| namespace.is_none_or(|n| k.0 == n)).cloned().collect()
    }

    /// Secrets some ModelConfig names, in `namespace` (all when `None`).
    pub fn model_secrets(&self, namespace: Option<&str>) -> Vec<Key> {
        self.models_by_secret.keys().filter(|k| namespace.is_none_or(|n| k.0 == n)).cloned().collect()
    }

    /// True if `digest` is some ModelConfig's API key.
    pub fn is_model_key(&self, digest: &ValueDigest) -> bool {
        self.model_keys.contains_key(digest)
    }
}
