//! The read-only cluster view the decisions consult, and the digest-only form of stored values.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use ring::hmac;

use super::model::{AgentHarness, Meta, ModelConfig};

/// The answer to a lookup: found, known to be absent, or outside what harness-guard watches.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup<T> {
    /// The object is in the view.
    Found(T),
    /// The object is in a watched scope and does not exist.
    Missing,
    /// The object lies outside the watched namespaces or selector: absence proves nothing.
    NotWatched,
}

impl<T> Lookup<T> {
    /// Maps a found object, keeping `Missing` and `NotWatched`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Lookup<U> {
        match self {
            Lookup::Found(t) => Lookup::Found(f(t)),
            Lookup::Missing => Lookup::Missing,
            Lookup::NotWatched => Lookup::NotWatched,
        }
    }
}

/// A keyed digest (HMAC-SHA256 under a per-process random key) of a value. The only form in
/// which harness-guard keeps and compares Secret and ConfigMap values.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueDigest([u8; 32]);

impl fmt::Debug for ValueDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Even a digest is kept out of logs: nothing about a value is worth printing.
        f.write_str("ValueDigest(..)")
    }
}

/// Computes [`ValueDigest`]s under one random key, fixed for the life of the process.
#[derive(Clone)]
pub struct Digester {
    key: Arc<hmac::Key>,
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digester(..)")
    }
}

impl Digester {
    /// A digester with a fresh random key.
    pub fn random() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system RNG is available");
        Self { key: Arc::new(key) }
    }

    /// Digest of `value` with surrounding white space removed: Secrets made from files usually
    /// end in a newline, and a value pasted into an env var usually does not.
    pub fn digest(&self, value: &[u8]) -> ValueDigest {
        let tag = hmac::sign(&self.key, value.trim_ascii());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        ValueDigest(out)
    }

    /// The stored facts about one value.
    pub fn facts(&self, value: &[u8]) -> ValueFacts {
        ValueFacts {
            empty: value.trim_ascii().is_empty(),
            line_break: value.iter().any(|b| matches!(b, b'\r' | b'\n')),
            binary: false,
            digest: self.digest(value),
        }
    }
}

/// What harness-guard keeps of one Secret or ConfigMap value.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueFacts {
    /// Empty or only white space.
    pub empty: bool,
    /// Holds a carriage return or line feed anywhere (a file's trailing newline, most often).
    pub line_break: bool,
    /// Came from a ConfigMap's `binaryData`, which kagent does not read.
    pub binary: bool,
    /// Keyed digest of the trimmed value.
    pub digest: ValueDigest,
}

/// Facts per key, sorted by key: a boxed slice, because a map node for the usual one or two keys
/// costs several times the facts themselves, times tens of thousands of Secrets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyFacts(Box<[(String, ValueFacts)]>);

impl KeyFacts {
    /// The facts of `key`.
    pub fn get(&self, key: &str) -> Option<&ValueFacts> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok().map(|i| &self.0[i].1)
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

impl From<BTreeMap<String, ValueFacts>> for KeyFacts {
    fn from(map: BTreeMap<String, ValueFacts>) -> Self {
        Self(map.into_iter().collect())
    }
}

/// A Secret or ConfigMap reduced to key names, emptiness and digests. `K` marks which kind.
#[derive(Debug, PartialEq)]
pub struct ValueSet<K> {
    /// Name and namespace.
    pub metadata: Meta,
    /// Facts per key.
    pub keys: KeyFacts,
    /// Set when another object (an ExternalSecret, a SealedSecret) will produce this one: it
    /// counts as present, with keys unknown.
    pub produced_by: Option<String>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for ValueSet<K> {
    fn clone(&self) -> Self {
        Self {
            metadata: self.metadata.clone(),
            keys: self.keys.clone(),
            produced_by: self.produced_by.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> ValueSet<K> {
    /// A value set from its parts.
    pub fn new(metadata: Meta, keys: BTreeMap<String, ValueFacts>) -> Self {
        Self { metadata, keys: keys.into(), produced_by: None, kind: PhantomData }
    }

    /// Key names, comma separated, for messages about objects the requester may see.
    pub fn key_list(&self) -> String {
        if self.keys.is_empty() {
            return "none".to_string();
        }
        self.keys.names().collect::<Vec<_>>().join(", ")
    }
}

/// Marker for Secret-backed value sets.
#[derive(Debug)]
pub enum SecretKind {}
/// Marker for ConfigMap-backed value sets.
#[derive(Debug)]
pub enum ConfigMapKind {}

/// A reduced Secret.
pub type SecretValues = ValueSet<SecretKind>;
/// A reduced ConfigMap.
pub type ConfigMapValues = ValueSet<ConfigMapKind>;

/// An object others depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A ModelConfig `(namespace, name)`.
    ModelConfig(super::index::Key),
    /// A Secret.
    Secret(super::index::Key),
    /// A ConfigMap.
    ConfigMap(super::index::Key),
}

/// Inside `impl ClusterView for` a view that overlays `self.base`: the methods it does not
/// change, answered by the base (the indexes and listings: an overlay changes lookups only).
macro_rules! from_base {
    () => {
        fn all_harnesses(&self) -> Vec<std::sync::Arc<$crate::core::model::AgentHarness>> {
            self.base.all_harnesses()
        }
        fn all_model_configs(&self) -> Vec<std::sync::Arc<$crate::core::model::ModelConfig>> {
            self.base.all_model_configs()
        }
        fn digester(&self) -> &$crate::core::view::Digester {
            self.base.digester()
        }
        fn harnesses_for_sandbox(&self, sandbox: &str) -> Vec<std::sync::Arc<$crate::core::model::AgentHarness>> {
            self.base.harnesses_for_sandbox(sandbox)
        }
        fn dependents(
            &self,
            target: &$crate::core::view::Target,
        ) -> Vec<std::sync::Arc<$crate::core::model::AgentHarness>> {
            self.base.dependents(target)
        }
        fn is_model_key(&self, digest: &$crate::core::view::ValueDigest) -> bool {
            self.base.is_model_key(digest)
        }
        fn sizes(&self) -> Vec<(&'static str, usize)> {
            self.base.sizes()
        }
        fn worker_pool(&self, namespace: &str, name: &str) -> $crate::core::view::Lookup<()> {
            self.base.worker_pool(namespace, name)
        }
        fn gateway_routes(
            &self,
            mine: u64,
            me: &$crate::core::index::Key,
            served: &dyn Fn(&str) -> bool,
            names: usize,
        ) -> $crate::core::index::OtherRoutes {
            self.base.gateway_routes(mine, me, served, names)
        }
    };
}
pub(crate) use from_base;

/// The read-only view of the cluster that every decision consults.
pub trait ClusterView {
    /// The ModelConfig `namespace/name`.
    fn model_config(&self, namespace: &str, name: &str) -> Lookup<Arc<ModelConfig>>;
    /// The Secret `namespace/name`, reduced.
    fn secret(&self, namespace: &str, name: &str) -> Lookup<Arc<SecretValues>>;
    /// The ConfigMap `namespace/name`, reduced.
    fn config_map(&self, namespace: &str, name: &str) -> Lookup<Arc<ConfigMapValues>>;
    /// Every AgentHarness held.
    fn all_harnesses(&self) -> Vec<Arc<AgentHarness>>;
    /// Every ModelConfig held.
    fn all_model_configs(&self) -> Vec<Arc<ModelConfig>>;
    /// The digester the view's values were reduced with.
    fn digester(&self) -> &Digester;

    /// Every AgentHarness whose sandbox is named `sandbox` (`<ns>-<name>` or `status.backendRef.id`).
    fn harnesses_for_sandbox(&self, sandbox: &str) -> Vec<Arc<AgentHarness>>;
    /// Every AgentHarness that depends on `target`.
    fn dependents(&self, target: &Target) -> Vec<Arc<AgentHarness>>;
    /// True if `digest` is the digest of some ModelConfig's API key.
    fn is_model_key(&self, digest: &ValueDigest) -> bool;
    /// How many objects of each kind the view holds (for metrics).
    fn sizes(&self) -> Vec<(&'static str, usize)>;
    /// The WorkerPool `namespace/name`, as a presence: `NotWatched` where WorkerPools are not
    /// visible (no CRD in the cluster, none in the `check` input).
    fn worker_pool(&self, namespace: &str, name: &str) -> Lookup<()>;
    /// The live OpenShell harnesses on another gateway route than `mine` (of provider types
    /// `served` accepts), `me` left out, with up to `names` in `me`'s namespace shown.
    fn gateway_routes(
        &self,
        mine: u64,
        me: &super::index::Key,
        served: &dyn Fn(&str) -> bool,
        names: usize,
    ) -> super::index::OtherRoutes;
}
