//! The cluster view: the objects of the four kinds harness-guard reads, fed by kube-rs watchers
//! in cluster mode and by the manifest loader in the built-in default, and the [`Index`] over
//! them, so decisions look things up instead of scanning. Every applied event also bumps a
//! generation counter that the continuous audit waits on.
//!
//! The objects are held in plain maps (namespace → name → object) rather than kube-rs reflector
//! stores: a reflector store keys each object by an `ObjectRef` (two to four more strings per
//! object), clones every object it applies, and holds two full copies during a re-list. Here a
//! re-list replaces objects in place and then sweeps out those it did not see, so the peak stays
//! near one copy (`docs/performance.md`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use kube::runtime::watcher::Event;
use tokio::sync::watch;

use crate::core::index::{Index, Key, OtherRoutes, key_of};
use crate::core::model::{AgentHarness, Meta, ModelConfig};
use crate::core::policy::WatchPolicy;
use crate::core::view::{ClusterView, ConfigMapValues, Digester, Lookup, SecretValues, Target, ValueDigest};

/// A stored kind: an object with metadata that knows how it feeds the index.
pub trait Stored: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The object's name and namespace.
    fn meta(&self) -> &Meta;
    /// Records this object (new or changed) in `index`.
    fn index(&self, index: &mut Index, shared: &Shared);
    /// Removes the object `key` from `index`.
    fn unindex(key: &Key, index: &mut Index);
}

/// One object held, with the list (or watch) generation of its feed that last wrote it.
struct Held<S> {
    object: Arc<S>,
    list: u64,
}

type Table<S> = HashMap<Box<str>, HashMap<Box<str>, Held<S>>>;

/// The objects of one kind, namespace → name → object.
pub struct KindStore<S: Stored> {
    table: Arc<RwLock<Table<S>>>,
    /// The watched namespaces; `None` for all.
    namespaces: Option<Arc<[String]>>,
    /// A label selector limits the watch: absence of an object then proves nothing.
    selective: bool,
}

impl<S: Stored> Clone for KindStore<S> {
    fn clone(&self) -> Self {
        Self { table: self.table.clone(), namespaces: self.namespaces.clone(), selective: self.selective }
    }
}

/// What the feeds of all kinds share: the index, the Secret store (ModelConfig entries need it),
/// and the change counter.
pub struct Shared {
    index: RwLock<Index>,
    secrets: KindStore<SecretValues>,
    generation: watch::Sender<u64>,
    /// Feeds that have not completed their first list yet.
    unsynced: AtomicUsize,
    /// True once every feed has completed its first list.
    synced: watch::Sender<bool>,
}

impl Shared {
    /// The Secret `key`, as stored now.
    pub fn secret(&self, key: &Key) -> Option<Arc<SecretValues>> {
        self.secrets.find(&key.0, &key.1)
    }

    fn index(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writing end of one kind's store, for one watched namespace (or all): what a watcher or
/// the manifest loader feeds.
pub struct Feed<S: Stored> {
    /// The namespace this feed watches; `None` for all.
    pub namespace: Option<String>,
    store: KindStore<S>,
    shared: Arc<Shared>,
    /// Generation of the current (or last) list; objects written since carry it.
    list: u64,
    listed: bool,
}

impl<S: Stored> Feed<S> {
    /// Applies one watch event to the store and the index.
    pub fn apply(&mut self, event: Event<S>) {
        // Partial lists are not a state worth auditing; everything else is a change.
        let partial = matches!(event, Event::Init | Event::InitApply(_));
        match event {
            Event::Init => self.list += 1,
            Event::InitApply(obj) | Event::Apply(obj) => {
                let obj = Arc::new(obj);
                self.store.insert(obj.clone(), self.list);
                obj.index(&mut self.shared.index(), &self.shared);
            }
            Event::Delete(obj) => {
                let key = key_of(obj.meta());
                self.store.remove(&key);
                S::unindex(&key, &mut self.shared.index());
            }
            Event::InitDone => {
                // Whatever the list did not bring back was deleted while the watch was down.
                let gone = self.store.sweep(self.namespace.as_deref(), self.list);
                let mut index = self.shared.index();
                for key in &gone {
                    S::unindex(key, &mut index);
                }
                drop(index);
                if !self.listed {
                    self.listed = true;
                    if self.shared.unsynced.fetch_sub(1, Ordering::AcqRel) == 1 {
                        self.shared.synced.send_replace(true);
                    }
                }
            }
        }
        if !partial {
            self.shared.generation.send_modify(|g| *g += 1);
        }
    }
}

impl Stored for AgentHarness {
    fn meta(&self) -> &Meta {
        &self.metadata
    }
    fn index(&self, index: &mut Index, _: &Shared) {
        index.apply_harness(self);
    }
    fn unindex(key: &Key, index: &mut Index) {
        index.delete_harness(key);
    }
}

impl Stored for ModelConfig {
    fn meta(&self) -> &Meta {
        &self.metadata
    }
    fn index(&self, index: &mut Index, shared: &Shared) {
        let ns = self.metadata.namespace.clone().unwrap_or_default();
        let secret = self.spec.api_key_secret.clone().and_then(|s| shared.secret(&(ns, s)));
        index.apply_model_config(self, secret.as_deref());
    }
    fn unindex(key: &Key, index: &mut Index) {
        index.delete_model_config(key);
    }
}

impl Stored for SecretValues {
    fn meta(&self) -> &Meta {
        &self.metadata
    }
    fn index(&self, index: &mut Index, _: &Shared) {
        index.apply_secret(&key_of(&self.metadata), Some(self));
    }
    fn unindex(key: &Key, index: &mut Index) {
        index.apply_secret(key, None);
    }
}

impl Stored for ConfigMapValues {
    fn meta(&self) -> &Meta {
        &self.metadata
    }
    // Channel references to ConfigMaps are indexed from the harnesses.
    fn index(&self, _: &mut Index, _: &Shared) {}
    fn unindex(_: &Key, _: &mut Index) {}
}

impl<S: Stored> KindStore<S> {
    fn new(scope: &WatchPolicy, selective: bool) -> Self {
        let namespaces = (!scope.namespaces.is_empty()).then(|| scope.namespaces.clone().into());
        Self { table: Arc::default(), namespaces, selective }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table<S>> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table<S>> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    fn watched(&self, namespace: &str) -> bool {
        self.namespaces.as_ref().is_none_or(|ns| ns.iter().any(|n| n == namespace))
    }

    fn get(&self, namespace: &str, name: &str) -> Lookup<Arc<S>> {
        if !self.watched(namespace) {
            return Lookup::NotWatched;
        }
        match self.find(namespace, name) {
            Some(object) => Lookup::Found(object),
            None if self.selective => Lookup::NotWatched,
            None => Lookup::Missing,
        }
    }

    fn find(&self, namespace: &str, name: &str) -> Option<Arc<S>> {
        self.read().get(namespace).and_then(|names| names.get(name)).map(|h| h.object.clone())
    }

    fn insert(&self, object: Arc<S>, list: u64) {
        let meta = object.meta();
        let namespace = meta.namespace.as_deref().unwrap_or("");
        let name = Box::from(meta.name.as_deref().unwrap_or(""));
        let mut table = self.write();
        let names = match table.get_mut(namespace) {
            Some(names) => names,
            None => table.entry(Box::from(namespace)).or_default(),
        };
        names.insert(name, Held { object, list });
    }

    fn remove(&self, key: &Key) {
        let mut table = self.write();
        if let Some(names) = table.get_mut(key.0.as_str()) {
            names.remove(key.1.as_str());
            if names.is_empty() {
                table.remove(key.0.as_str());
            }
        }
    }

    /// Removes the objects in `namespace` (all when `None`) last written before list `list`;
    /// returns their keys.
    fn sweep(&self, namespace: Option<&str>, list: u64) -> Vec<Key> {
        let mut gone = Vec::new();
        let mut table = self.write();
        for (ns, names) in table.iter_mut().filter(|(ns, _)| namespace.is_none_or(|n| n == &***ns)) {
            names.retain(|name, held| {
                let keep = held.list >= list;
                if !keep {
                    gone.push((ns.to_string(), name.to_string()));
                }
                keep
            });
        }
        table.retain(|_, names| !names.is_empty());
        gone
    }

    /// Every object held.
    pub fn all(&self) -> Vec<Arc<S>> {
        self.read().values().flat_map(|names| names.values().map(|h| h.object.clone())).collect()
    }

    /// How many objects are held.
    pub fn len(&self) -> usize {
        self.read().values().map(HashMap::len).sum()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn feeds(&self, scope: &WatchPolicy, shared: &Arc<Shared>) -> Vec<Feed<S>> {
        namespaces(scope)
            .into_iter()
            .map(|namespace| Feed { namespace, store: self.clone(), shared: shared.clone(), list: 0, listed: false })
            .collect()
    }
}

fn namespaces(scope: &WatchPolicy) -> Vec<Option<String>> {
    if scope.namespaces.is_empty() { vec![None] } else { scope.namespaces.iter().cloned().map(Some).collect() }
}

/// The four kinds harness-guard reads, held in plain maps per kind, and their index.
pub struct View {
    /// AgentHarnesses.
    pub harnesses: KindStore<AgentHarness>,
    /// ModelConfigs.
    pub model_configs: KindStore<ModelConfig>,
    /// Secrets, reduced.
    pub secrets: KindStore<SecretValues>,
    /// ConfigMaps, reduced.
    pub config_maps: KindStore<ConfigMapValues>,
    /// Objects that will produce Secrets (cluster mode, where their CRDs exist).
    pub producers: super::producers::Producers,
    /// Agent Substrate WorkerPools, where visible.
    pub worker_pools: super::worker_pools::WorkerPools,
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
    /// The view's WorkerPool names (manifests set them; cluster mode watches them).
    pub worker_pools: super::worker_pools::WorkerPools,
}

impl View {
    /// An empty view over `scope`, and the feeds that fill it.
    pub fn new(scope: &WatchPolicy, digester: Digester) -> (Self, Feeds) {
        let selective = !scope.label_selector.trim().is_empty();
        let harnesses = KindStore::new(scope, false);
        let model_configs = KindStore::new(scope, false);
        let secrets = KindStore::new(scope, selective);
        let config_maps = KindStore::new(scope, selective);
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
        let worker_pools = super::worker_pools::WorkerPools::default();
        let feeds = Feeds {
            worker_pools: worker_pools.clone(),
            harnesses: harnesses.feeds(scope, &shared),
            model_configs: model_configs.feeds(scope, &shared),
            secrets: secrets.feeds(scope, &shared),
            config_maps: config_maps.feeds(scope, &shared),
        };
        let producers = Default::default();
        let view = Self { harnesses, model_configs, secrets, config_maps, producers, worker_pools, shared, digester };
        (view, feeds)
    }

    /// Resolves once every store has seen its first complete list (any number of waiters).
    pub async fn wait_until_ready(&self) {
        let mut synced = self.shared.synced.subscribe();
        // Err only if the view is dropped, and then nobody waits for it.
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Bumps the change counter, for feeds outside the four kinds (the audit runs again).
    pub fn touch(&self) {
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// A receiver that sees the view's change counter: it changes with every applied event.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
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
        match self.secrets.get(namespace, name) {
            // Not synced yet: present, keys unknown (a note, not a denial).
            Lookup::Missing => match self.producers.of(&(namespace.to_string(), name.to_string())) {
                Some(by) => {
                    let meta = Meta::named(namespace, name);
                    let mut produced = SecretValues::new(meta, Default::default());
                    produced.produced_by = Some(by);
                    Lookup::Found(Arc::new(produced))
                }
                None => Lookup::Missing,
            },
            other => other,
        }
    }

    fn config_map(&self, namespace: &str, name: &str) -> Lookup<Arc<ConfigMapValues>> {
        self.config_maps.get(namespace, name)
    }

    fn all_harnesses(&self) -> Vec<Arc<AgentHarness>> {
        self.harnesses.all()
    }

    fn all_model_configs(&self) -> Vec<Arc<ModelConfig>> {
        self.model_configs.all()
    }

    fn digester(&self) -> &Digester {
        &self.digester
    }

    fn harnesses_for_sandbox(&self, sandbox: &str) -> Vec<Arc<AgentHarness>> {
        let keys = self.index().harnesses_for_sandbox(sandbox);
        keys.iter().filter_map(|k| self.harnesses.find(&k.0, &k.1)).collect()
    }

    fn dependents(&self, target: &Target) -> Vec<Arc<AgentHarness>> {
        let keys = self.index().dependents(target);
        keys.iter().filter_map(|k| self.harnesses.find(&k.0, &k.1)).collect()
    }

    fn is_model_key(&self, digest: &ValueDigest) -> bool {
        self.index().is_model_key(digest)
    }

    fn gateway_routes(&self, mine: u64, me: &Key, served: &dyn Fn(&str) -> bool, names: usize) -> OtherRoutes {
        self.index().other_routes(mine, me, served, names)
    }

    fn worker_pool(&self, namespace: &str, name: &str) -> Lookup<()> {
        self.worker_pools.get(namespace, name)
    }

    fn sizes(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("AgentHarness", self.harnesses.len()),
            ("ModelConfig", self.model_configs.len()),
            ("Secret", self.secrets.len()),
            ("ConfigMap", self.config_maps.len()),
        ]
    }
}
