//! The cluster view over kube-rs reflector stores: the one [`ClusterView`] the server uses, fed
//! by watchers in cluster mode and by the manifest loader in the built-in default. Every event a
//! feed applies also updates the view's [`Index`], so decisions look things up instead of
//! scanning, and bumps a generation counter that the continuous audit waits on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher::Event;
use tokio::sync::watch;

use crate::core::index::{Index, Key, key_of};
use crate::core::model::{AgentHarness, ModelConfig};
use crate::core::policy::WatchPolicy;
use crate::core::view::{ClusterView, ConfigMapValues, Digester, Lookup, SecretValues, Target, ValueDigest};

/// A stored kind: a reflector-storable resource that knows how it feeds the index.
pub trait Stored: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// Updates `index` for `event`, which `store` has just applied.
    fn index(event: &Event<Self>, index: &mut Index, store: &Store<Self>, scope: Option<&str>, shared: &Shared);
}

/// The stores of one kind: one for all namespaces, or one per watched namespace (a reflector
/// store belongs to exactly one watch).
pub struct KindStore<S: Stored> {
    stores: Vec<(Option<String>, Store<S>)>,
    /// A label selector limits the watch: absence of an object then proves nothing.
    selective: bool,
}

impl<S: Stored> Clone for KindStore<S> {
    fn clone(&self) -> Self {
        Self { stores: self.stores.clone(), selective: self.selective }
    }
}

/// What the feeds of all kinds share: the index, the Secret stores (ModelConfig entries need
/// them), and the change counter.
pub struct Shared {
    index: RwLock<Index>,
    secrets: KindStore<SecretValues>,
    generation: watch::Sender<u64>,
    /// Feeds that have not completed their first list yet.
    unsynced: AtomicUsize,
    /// True once every feed has completed its first list. (Kept here rather than awaiting each
    /// reflector store: their readiness future wakes only the last of several waiters.)
    synced: watch::Sender<bool>,
}

impl Shared {
    /// The Secret `key`, as stored now.
    pub fn secret(&self, key: &Key) -> Option<Arc<SecretValues>> {
        match self.secrets.get(&key.0, &key.1) {
            Lookup::Found(s) => Some(s),
            _ => None,
        }
    }
}

/// The writing end of one store: what a watcher or the manifest loader feeds.
pub struct Feed<S: Stored> {
    /// The namespace this feed watches; `None` for all.
    pub namespace: Option<String>,
    writer: Writer<S>,
    shared: Arc<Shared>,
    listed: bool,
}

impl<S: Stored> Feed<S> {
    /// Applies one watch event to the store and the index.
    pub fn apply(&mut self, event: Event<S>) {
        self.writer.apply_watcher_event(&event);
        let store = self.writer.as_reader();
        {
            let mut index = self.shared.index.write().unwrap_or_else(|e| e.into_inner());
            S::index(&event, &mut index, &store, self.namespace.as_deref(), &self.shared);
        }
        if matches!(event, Event::InitDone) && !self.listed {
            self.listed = true;
            if self.shared.unsynced.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.shared.synced.send_replace(true);
            }
        }
        // Partial lists are not a state worth auditing; everything else is a change.
        if !matches!(event, Event::Init | Event::InitApply(_)) {
            self.shared.generation.send_modify(|g| *g += 1);
        }
    }

    /// Objects in this feed's store.
    pub fn len(&self) -> usize {
        self.writer.as_reader().len()
    }

    /// True when the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn in_store<S: Stored>(store: &Store<S>, key: &Key) -> bool {
    store.get(&ObjectRef::new(&key.1).within(&key.0)).is_some()
}

impl Stored for AgentHarness {
    fn index(event: &Event<Self>, index: &mut Index, store: &Store<Self>, scope: Option<&str>, _: &Shared) {
        match event {
            Event::Apply(h) | Event::InitApply(h) => index.apply_harness(h),
            Event::Delete(h) => index.delete_harness(&key_of(&h.metadata)),
            Event::Init => {}
            // A relist may have dropped objects deleted while the watch was down.
            Event::InitDone => {
                for key in index.harness_keys(scope).into_iter().filter(|k| !in_store(store, k)) {
                    index.delete_harness(&key);
                }
            }
        }
    }
}

impl Stored for ModelConfig {
    fn index(event: &Event<Self>, index: &mut Index, store: &Store<Self>, scope: Option<&str>, shared: &Shared) {
        let secret_of = |mc: &ModelConfig| {
            let ns = mc.metadata.namespace.clone().unwrap_or_default();
            mc.spec.api_key_secret.clone().and_then(|s| shared.secret(&(ns, s)))
        };
        match event {
            Event::Apply(mc) | Event::InitApply(mc) => index.apply_model_config(mc, secret_of(mc).as_deref()),
            Event::Delete(mc) => index.delete_model_config(&key_of(&mc.metadata)),
            Event::Init => {}
            Event::InitDone => {
                for key in index.model_config_keys(scope).into_iter().filter(|k| !in_store(store, k)) {
                    index.delete_model_config(&key);
                }
            }
        }
    }
}

impl Stored for SecretValues {
    fn index(event: &Event<Self>, index: &mut Index, store: &Store<Self>, scope: Option<&str>, _: &Shared) {
        match event {
            Event::Apply(s) | Event::InitApply(s) => index.apply_secret(&key_of(&s.metadata), Some(s)),
            Event::Delete(s) => index.apply_secret(&key_of(&s.metadata), None),
            Event::Init => {}
            Event::InitDone => {
                for key in index.model_secrets(scope) {
                    let current = store.get(&ObjectRef::new(&key.1).within(&key.0));
                    index.apply_secret(&key, current.as_deref());
                }
            }
        }
    }
}

impl Stored for ConfigMapValues {
    // Channel references to ConfigMaps are indexed from the harnesses.
    fn index(_: &Event<Self>, _: &mut Index, _: &Store<Self>, _: Option<&str>, _: &Shared) {}
}

impl<S: Stored> KindStore<S> {
    fn new(scope: &WatchPolicy, selective: bool) -> (Self, Vec<Writer<S>>) {
        let mut stores = Vec::new();
        let mut writers = Vec::new();
        for namespace in namespaces(scope) {
            let writer = Writer::default();
            stores.push((namespace, writer.as_reader()));
            writers.push(writer);
        }
        (Self { stores, selective }, writers)
    }

    fn store_for(&self, namespace: &str) -> Option<&Store<S>> {
        self.stores.iter().find(|(ns, _)| ns.as_deref().is_none_or(|n| n == namespace)).map(|(_, s)| s)
    }

    fn get(&self, namespace: &str, name: &str) -> Lookup<Arc<S>> {
        let Some(store) = self.store_for(namespace) else { return Lookup::NotWatched };
        match store.get(&ObjectRef::new(name).within(namespace)) {
            Some(obj) => Lookup::Found(obj),
            None if self.selective => Lookup::NotWatched,
            None => Lookup::Missing,
        }
    }

    fn find(&self, key: &Key) -> Option<Arc<S>> {
        self.store_for(&key.0).and_then(|s| s.get(&ObjectRef::new(&key.1).within(&key.0)))
    }

    /// Every object held.
    pub fn all(&self) -> impl Iterator<Item = Arc<S>> + '_ {
        self.stores.iter().flat_map(|(_, s)| s.state())
    }

    /// How many objects are held.
    pub fn len(&self) -> usize {
        self.stores.iter().map(|(_, s)| s.len()).sum()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn feeds<S: Stored>(writers: Vec<Writer<S>>, scope: &WatchPolicy, shared: &Arc<Shared>) -> Vec<Feed<S>> {
    let namespaces = namespaces(scope).into_iter();
    writers
        .into_iter()
        .zip(namespaces)
        .map(|(writer, namespace)| Feed { namespace, writer, shared: shared.clone(), listed: false })
        .collect()
}

fn namespaces(scope: &WatchPolicy) -> Vec<Option<String>> {
    if scope.namespaces.is_empty() { vec![None] } else { scope.namespaces.iter().cloned().map(Some).collect() }
}

/// The four kinds harness-guard reads, held as reflector stores, and their index.
pub struct View {
    /// AgentHarnesses.
    pub harnesses: KindStore<AgentHarness>,
    /// ModelConfigs.
    pub model_configs: KindStore<ModelConfig>,
    /// Secrets, reduced.
    pub secrets: KindStore<SecretValues>,
    /// ConfigMaps, reduced.
    pub config_maps: KindStore<ConfigMapValues>,
    shared: Arc<Shared>,
    digester: Digester,
}

/// The writing ends of a [`View`], one set of feeds per kind.
pub struct Feeds {
    /// AgentHarness feeds.
    pub harnesses: Vec<Feed<AgentHarness>>,
    /// ModelConfig feeds.
    pub model_configs: Vec<Feed<ModelConfig>>,
    /// Secret feeds.
    pub secrets: Vec<Feed<SecretValues>>,
    /// ConfigMap feeds.
    pub config_maps: Vec<Feed<ConfigMapValues>>,
}

impl View {
    /// An empty view over `scope`, and the feeds that fill it.
    pub fn new(scope: &WatchPolicy, digester: Digester) -> (Self, Feeds) {
        let selective = !scope.label_selector.trim().is_empty();
        let (harnesses, h) = KindStore::new(scope, false);
        let (model_configs, m) = KindStore::new(scope, false);
        let (secrets, s) = KindStore::new(scope, selective);
        let (config_maps, c) = KindStore::new(scope, selective);
        let (generation, _) = watch::channel(0);
        let (synced, _) = watch::channel(false);
        let feeds_total = 4 * namespaces(scope).len();
        let shared = Arc::new(Shared {
            index: RwLock::new(Index::default()),
            secrets: secrets.clone(),
            generation,
            unsynced: AtomicUsize::new(feeds_total),
            synced,
        });
        let feeds = Feeds {
            harnesses: feeds(h, scope, &shared),
            model_configs: feeds(m, scope, &shared),
            secrets: feeds(s, scope, &shared),
            config_maps: feeds(c, scope, &shared),
        };
        let view = Self { harnesses, model_configs, secrets, config_maps, shared, digester };
        (view, feeds)
    }

    /// Resolves once every store has seen its first complete list (any number of waiters).
    pub async fn wait_until_ready(&self) {
        let mut synced = self.shared.synced.subscribe();
        // Err only if the view is dropped, and then nobody waits for it.
        let _ = synced.wait_for(|s| *s).await;
    }

    /// A receiver that sees the view's change counter: it changes with every applied event.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
    }

    /// Objects held, by kind, for metrics.
    pub fn sizes(&self) -> [(&'static str, usize); 4] {
        [
            ("AgentHarness", self.harnesses.len()),
            ("ModelConfig", self.model_configs.len()),
            ("Secret", self.secrets.len()),
            ("ConfigMap", self.config_maps.len()),
        ]
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.shared.index.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClusterView for View {
    fn model_config(&self, namespace: &str, name: &str) -> Lookup<Arc<ModelConfig>> {
        self.model_configs.get(namespace, name)
    }

    fn secret(&self, namespace: &str, name: &str) -> Lookup<Arc<SecretValues>> {
        self.secrets.get(namespace, name)
    }

    fn config_map(&self, namespace: &str, name: &str) -> Lookup<Arc<ConfigMapValues>> {
        self.config_maps.get(namespace, name)
    }

    fn all_harnesses(&self) -> Vec<Arc<AgentHarness>> {
        self.harnesses.all().collect()
    }

    fn all_model_configs(&self) -> Vec<Arc<ModelConfig>> {
        self.model_configs.all().collect()
    }

    fn digester(&self) -> &Digester {
        &self.digester
    }

    fn harnesses_for_sandbox(&self, sandbox: &str) -> Vec<Arc<AgentHarness>> {
        let keys = self.index().harnesses_for_sandbox(sandbox);
        keys.iter().filter_map(|k| self.harnesses.find(k)).collect()
    }

    fn dependents(&self, target: &Target) -> Vec<Arc<AgentHarness>> {
        let keys = self.index().dependents(target);
        keys.iter().filter_map(|k| self.harnesses.find(k)).collect()
    }

    fn is_model_key(&self, digest: &ValueDigest) -> bool {
        self.index().is_model_key(digest)
    }
}
