//! Agent Substrate `WorkerPool`s (group `ate.dev`), held as names only: an explicit
//! `spec.substrate.workerPoolRef` must name one in the harness's namespace. Visible only where the
//! cluster serves the kind (found by API discovery at start) or the `check` input holds some;
//! elsewhere the rule says nothing.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::Api;
use kube::api::DynamicObject;
use kube::discovery::Discovery;
use kube::runtime::{WatchStreamExt, watcher, watcher::Event};

use crate::core::index::Key;
use crate::core::view::Lookup;
use crate::telemetry::redact_quoted;

/// The API group of Agent Substrate's WorkerPool.
pub const GROUP: &str = "ate.dev";

/// The WorkerPools known; `None` while the kind is not visible.
#[derive(Clone, Debug, Default)]
pub struct WorkerPools(Arc<RwLock<Option<HashSet<Key>>>>);

impl WorkerPools {
    /// The pool `namespace/name`, as a presence.
    pub fn get(&self, namespace: &str, name: &str) -> Lookup<()> {
        match &*self.0.read().unwrap_or_else(|e| e.into_inner()) {
            None => Lookup::NotWatched,
            Some(pools) if pools.contains(&(namespace.to_string(), name.to_string())) => Lookup::Found(()),
            Some(_) => Lookup::Missing,
        }
    }

    /// Makes the kind visible with exactly `pools`.
    pub fn set(&self, pools: HashSet<Key>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(pools);
    }

    fn update(&self, f: impl FnOnce(&mut HashSet<Key>)) {
        f(self.0.write().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashSet::new));
    }
}

fn key(o: &DynamicObject) -> Key {
    (o.metadata.namespace.clone().unwrap_or_default(), o.metadata.name.clone().unwrap_or_default())
}

/// Finds WorkerPool by API discovery and watches it cluster-wide; without it, returns at once
/// and the kind stays invisible. `changed` is called after each update.
pub async fn watch_worker_pools(
    client: kube::Client,
    pools: WorkerPools,
    namespaces: Vec<String>,
    changed: Arc<dyn Fn() + Send + Sync>,
) {
    let discovery = match Discovery::new(client.clone()).filter(&[GROUP]).run().await {
        Ok(discovery) => discovery,
        Err(error) => {
            tracing::info!(error = %redact_quoted(&error.to_string()), "no WorkerPool API found; the worker-pool rule says nothing");
            return;
        }
    };
    let found = discovery.groups().flat_map(|g| g.recommended_resources()).find(|(ar, _)| ar.kind == "WorkerPool");
    let Some((resource, _)) = found else {
        tracing::info!("no WorkerPool API found; the worker-pool rule says nothing");
        return;
    };
    // In the policy's namespaces, as the rest of the view (a namespaced install lists nothing else).
    let apis: Vec<Api<DynamicObject>> = if namespaces.is_empty() {
        vec![Api::all_with(client, &resource)]
    } else {
        namespaces.iter().map(|ns| Api::namespaced_with(client.clone(), ns, &resource)).collect()
    };
    let streams = apis.into_iter().map(|api| watcher(api, watcher::Config::default()).default_backoff().boxed());
    let mut events = futures::stream::select_all(streams);
    // Several namespaces relist apart: keep what each brought back, keyed by namespace.
    let mut relist: HashSet<Key> = HashSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => continue,
            Ok(Event::InitApply(o)) => {
                relist.insert(key(&o));
                continue;
            }
            Ok(Event::InitDone) => pools.update(|p| p.extend(relist.drain())),
            Ok(Event::Apply(o)) => pools.update(|p| {
                p.insert(key(&o));
            }),
            Ok(Event::Delete(o)) => pools.update(|p| {
                p.remove(&key(&o));
            }),
            Err(error) => {
                tracing::warn!(error = %redact_quoted(&error.to_string()), "WorkerPool watch failed; retrying with backoff");
                continue;
            }
        }
        changed();
    }
}
