//! A `ClusterView` over plain `BTreeMap`s, filled from YAML: the decisions' test double. Its
//! lookups are maps; its indexed queries (sandbox owners, dependents, model keys) go through the
//! real `core::Index`, fed as the cluster view feeds it, so tests prove what production runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use harness_guard::cluster::ingest::{AgentHarnessResource, Ingest, ModelConfigResource};
use harness_guard::core::index::{Index, OtherRoutes};
use harness_guard::core::model::{AgentHarness, ModelConfig};
use harness_guard::core::policy::WatchPolicy;
use harness_guard::core::view::{ClusterView, ConfigMapValues, Digester, Lookup, SecretValues, Target, ValueDigest};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::Value;

type Key = (String, String);

#[derive(Default)]
pub struct MapView {
    pub harnesses: BTreeMap<Key, Arc<AgentHarness>>,
    pub model_configs: BTreeMap<Key, Arc<ModelConfig>>,
    pub secrets: BTreeMap<Key, Arc<SecretValues>>,
    pub config_maps: BTreeMap<Key, Arc<ConfigMapValues>>,
    pub scope: WatchPolicy,
    pub digester: Option<Digester>,
    /// WorkerPools, when the test makes them visible.
    pub worker_pools: Option<std::collections::BTreeSet<Key>>,
    index: Index,
}

fn key_of(doc: &Value) -> Key {
    let field = |k: &str| doc["metadata"][k].as_str().unwrap_or_default().to_string();
    (field("namespace"), field("name"))
}

impl MapView {
    /// A view holding every object of the multi-document YAML `text`.
    pub fn from_yaml(text: &str) -> Self {
        let mut view = MapView { digester: Some(Digester::random()), ..Default::default() };
        view.add_yaml(text);
        view
    }

    pub fn add_yaml(&mut self, text: &str) {
        let digester = self.digester.clone().expect("digester");
        let docs: Vec<Value> = serde_saphyr::from_multiple(text).expect("test YAML parses");
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let key = key_of(&doc);
            match doc["kind"].as_str().unwrap_or_default() {
                "AgentHarness" => {
                    let h: AgentHarnessResource = serde_json::from_value(doc).unwrap();
                    let h = Arc::new(h.ingest(&digester));
                    self.index.apply_harness(&h);
                    self.harnesses.insert(key, h);
                }
                "ModelConfig" => {
                    let m: ModelConfigResource = serde_json::from_value(doc).unwrap();
                    let m = Arc::new(m.ingest(&digester));
                    let secret =
                        m.spec.api_key_secret.as_ref().and_then(|s| self.secrets.get(&(key.0.clone(), s.clone())));
                    self.index.apply_model_config(&m, secret.map(|s| &**s));
                    self.model_configs.insert(key, m);
                }
                "Secret" => {
                    let s: Secret = serde_json::from_value(doc).unwrap();
                    let s = Arc::new(s.ingest(&digester));
                    self.index.apply_secret(&key, Some(&s));
                    self.secrets.insert(key, s);
                }
                "ConfigMap" => {
                    let c: ConfigMap = serde_json::from_value(doc).unwrap();
                    self.config_maps.insert(key, Arc::new(c.ingest(&digester)));
                }
                other => panic!("test YAML has unexpected kind {other}"),
            }
        }
    }

    fn lookup<T: Clone>(&self, map: &BTreeMap<Key, T>, ns: &str, name: &str) -> Lookup<T> {
        if !self.scope.covers(ns) {
            return Lookup::NotWatched;
        }
        map.get(&(ns.to_string(), name.to_string())).cloned().map_or(Lookup::Missing, Lookup::Found)
    }
}

impl ClusterView for MapView {
    fn model_config(&self, namespace: &str, name: &str) -> Lookup<Arc<ModelConfig>> {
        self.lookup(&self.model_configs, namespace, name)
    }
    fn secret(&self, namespace: &str, name: &str) -> Lookup<Arc<SecretValues>> {
        self.lookup(&self.secrets, namespace, name)
    }
    fn config_map(&self, namespace: &str, name: &str) -> Lookup<Arc<ConfigMapValues>> {
        self.lookup(&self.config_maps, namespace, name)
    }
    fn all_harnesses(&self) -> Vec<Arc<AgentHarness>> {
        self.harnesses.values().cloned().collect()
    }
    fn all_model_configs(&self) -> Vec<Arc<ModelConfig>> {
        self.model_configs.values().cloned().collect()
    }
    fn digester(&self) -> &Digester {
        self.digester.as_ref().expect("digester")
    }
    fn harnesses_for_sandbox(&self, sandbox: &str) -> Vec<Arc<AgentHarness>> {
        self.index.harnesses_for_sandbox(sandbox).iter().filter_map(|k| self.harnesses.get(k).cloned()).collect()
    }
    fn dependents(&self, target: &Target) -> Vec<Arc<AgentHarness>> {
        self.index.dependents(target).iter().filter_map(|k| self.harnesses.get(k).cloned()).collect()
    }
    fn is_model_key(&self, digest: &ValueDigest) -> bool {
        self.index.is_model_key(digest)
    }
    fn worker_pool(&self, namespace: &str, name: &str) -> Lookup<()> {
        match &self.worker_pools {
            None => Lookup::NotWatched,
            Some(pools) if pools.contains(&(namespace.to_string(), name.to_string())) => Lookup::Found(()),
            Some(_) => Lookup::Missing,
        }
    }
    fn gateway_routes(&self, mine: u64, me: &Key, served: &dyn Fn(&str) -> bool, names: usize) -> OtherRoutes {
        self.index.other_routes(mine, me, served, names)
    }
    fn sizes(&self) -> Vec<(&'static str, usize)> {
        let (h, m, s, c) = (self.harnesses.len(), self.model_configs.len(), self.secrets.len(), self.config_maps.len());
        vec![("AgentHarness", h), ("ModelConfig", m), ("Secret", s), ("ConfigMap", c)]
    }
}
