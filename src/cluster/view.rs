//! The cluster view over kube-rs reflector stores: the one [`ClusterView`] the server uses, fed
//! by watchers in cluster mode and by the manifest loader in the built-in default.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};

use super::ingest::Ingest;
use crate::core::model::{AgentHarness, ModelConfig};
use crate::core::policy::WatchPolicy;
use crate::core::view::{ClusterView, ConfigMapValues, Digester, Lookup, SecretValues};

/// The stores of one kind: one for all namespaces, or one per watched namespace (a reflector
/// store belongs to exactly one watch).
pub struct KindStore<S: kube::Resource<DynamicType = ()> + Clone + 'static> {
    stores: Vec<(Option<String>, Store<S>)>,
    /// A label selector limits the watch: absence of an object then proves nothing.
    selective: bool,
}

/// The writing end of one store: what a watcher or the manifest loader feeds.
pub struct Feed<S: kube::Resource<DynamicType = ()> + Clone + 'static> {
    /// The namespace this feed watches; `None` for all.
    pub namespace: Option<String>,
    /// The reflector writer.
    pub writer: Writer<S>,
}

impl<S: kube::Resource<DynamicType = ()> + Clone + 'static> KindStore<S> {
    fn new(scope: &WatchPolicy, selective: bool) -> (Self, Vec<Feed<S>>) {
        let namespaces: Vec<Option<String>> =
            if scope.namespaces.is_empty() { vec![None] } else { scope.namespaces.iter().cloned().map(Some).collect() };
        let mut stores = Vec::new();
        let mut feeds = Vec::new();
        for namespace in namespaces {
            let writer = Writer::default();
            stores.push((namespace.clone(), writer.as_reader()));
            feeds.push(Feed { namespace, writer });
        }
        (Self { stores, selective }, feeds)
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

    async fn wait_until_ready(&self) {
        for (_, store) in &self.stores {
            // The writer is only dropped at shutdown; then readiness no longer matters.
            let _ = store.wait_until_ready().await;
        }
    }
}

/// The four kinds harness-guard reads, held as reflector stores.
pub struct View {
    /// AgentHarnesses.
    pub harnesses: KindStore<AgentHarness>,
    /// ModelConfigs.
    pub model_configs: KindStore<ModelConfig>,
    /// Secrets, reduced.
    pub secrets: KindStore<SecretValues>,
    /// ConfigMaps, reduced.
    pub config_maps: KindStore<ConfigMapValues>,
    digester: Digester,
}

/// The writing ends of a [`View`], one set of feeds per kind.
pub struct Feeds {
    /// AgentHarness feeds.
    pub harnesses: Vec<Feed<AgentHarness>>,
    /// ModelConfig feeds.
    pub model_configs: Vec<Feed<ModelConfig>>,
    /// Secret feeds.
    pub secrets: Vec<Feed<<Secret as Ingest>::Stored>>,
    /// ConfigMap feeds.
    pub config_maps: Vec<Feed<<ConfigMap as Ingest>::Stored>>,
}

impl View {
    /// An empty view over `scope`, and the feeds that fill it.
    pub fn new(scope: &WatchPolicy, digester: Digester) -> (Self, Feeds) {
        let selective = !scope.label_selector.trim().is_empty();
        let (harnesses, h) = KindStore::new(scope, false);
        let (model_configs, m) = KindStore::new(scope, false);
        let (secrets, s) = KindStore::new(scope, selective);
        let (config_maps, c) = KindStore::new(scope, selective);
        let view = Self { harnesses, model_configs, secrets, config_maps, digester };
        (view, Feeds { harnesses: h, model_configs: m, secrets: s, config_maps: c })
    }

    /// Resolves once every store has seen its first complete list.
    pub async fn wait_until_ready(&self) {
        self.harnesses.wait_until_ready().await;
        self.model_configs.wait_until_ready().await;
        self.secrets.wait_until_ready().await;
        self.config_maps.wait_until_ready().await;
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
}
