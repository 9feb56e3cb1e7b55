//! Objects that will produce Secrets: External Secrets Operator `ExternalSecret`s and Bitnami
//! `SealedSecret`s. Watched only where their CRDs are installed (probed at start; absent, they are
//! skipped with one log line, never an error), and kept as "Secret ns/name will be produced by
//! Kind ns/name", so that a harness whose key Secret is not synced yet is warned about
//! (`produced-secret`), not refused as missing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::{WatchStreamExt, watcher, watcher::Event};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::core::index::Key;
use crate::core::policy::WatchPolicy;
use crate::telemetry::redact_quoted;

/// The producing kinds, in the versions probed (first served wins per kind).
const KINDS: [(&str, &str, &str, &str); 3] = [
    ("external-secrets.io", "v1", "ExternalSecret", "externalsecrets"),
    ("external-secrets.io", "v1beta1", "ExternalSecret", "externalsecrets"),
    ("bitnami.com", "v1alpha1", "SealedSecret", "sealedsecrets"),
];

/// Secret (namespace, name) → the object that will produce it, as `Kind ns/name`.
#[derive(Clone, Debug, Default)]
pub struct Producers(Arc<RwLock<HashMap<Key, String>>>);

impl Producers {
    /// What will produce the Secret `key`, if anything known does.
    pub fn of(&self, key: &Key) -> Option<String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Key, String>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The Secret `object` (of `kind`) will produce: `None` for an ExternalSecret that creates none
/// (`creationPolicy` Merge or None).
pub fn produced_secret(kind: &str, object: &Value) -> Option<Key> {
    let ns = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    let own = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let policy = object.pointer("/spec/target/creationPolicy").and_then(Value::as_str);
    if kind == "ExternalSecret" && matches!(policy, Some("Merge" | "None")) {
        return None;
    }
    let target = object.pointer("/spec/target/name").or_else(|| object.pointer("/spec/template/metadata/name"));
    let name = target.and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or(own);
    Some((ns.to_string(), name.to_string()))
}

/// Probes each producing kind and watches those the cluster serves, in `scope`'s namespaces;
/// `changed` is called after each update (the audit re-runs).
pub async fn spawn_producer_watchers(
    client: kube::Client,
    producers: Producers,
    scope: &WatchPolicy,
    changed: Arc<dyn Fn() + Send + Sync>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let namespaces: Vec<Option<String>> =
        if scope.namespaces.is_empty() { vec![None] } else { scope.namespaces.iter().cloned().map(Some).collect() };
    let mut served: Vec<&str> = Vec::new();
    for (group, version, kind, plural) in KINDS {
        if served.contains(&kind) {
            continue;
        }
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        // Probed where it would be watched: a namespaced install may not list cluster-wide.
        let probe: Api<DynamicObject> = match &namespaces[0] {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        match probe.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => served.push(kind),
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            // Forbidden and the rest: not fatal, just not watched.
            Err(error) => {
                tracing::warn!(kind, error = %redact_quoted(&error.to_string()), "cannot list a Secret-producing kind; not watched");
                continue;
            }
        }
        tracing::info!(kind, version, "watching objects that produce Secrets");
        for ns in &namespaces {
            let api: Api<DynamicObject> = match ns {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
                None => Api::all_with(client.clone(), &ar),
            };
            set.spawn(run(api, kind, ns.clone(), producers.clone(), changed.clone()));
        }
    }
    if served.is_empty() {
        tracing::info!("no ExternalSecret or SealedSecret CRDs found; produced Secrets count as missing");
    }
    set
}

async fn run(
    api: Api<DynamicObject>,
    kind: &'static str,
    namespace: Option<String>,
    producers: Producers,
    changed: Arc<dyn Fn() + Send + Sync>,
) {
    let label = |o: &DynamicObject| {
        format!("{kind} {}/{}", o.metadata.namespace.as_deref().unwrap_or(""), o.metadata.name.as_deref().unwrap_or(""))
    };
    let target = |o: &DynamicObject| produced_secret(kind, &serde_json::to_value(o).unwrap_or_default());
    let mut relist: HashMap<Key, String> = HashMap::new();
    let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => {
                relist.clear();
                continue;
            }
            Ok(Event::InitApply(o)) => {
                if let Some(key) = target(&o) {
                    relist.insert(key, label(&o));
                }
                continue;
            }
            Ok(Event::InitDone) => {
                // Replaces what this watch (its kind, its namespace) said before, and nothing else.
                let mine = |by: &str| {
                    let ns = by.split_once(' ').and_then(|(_, o)| o.split_once('/')).map_or("", |(n, _)| n);
                    by.starts_with(kind) && namespace.as_deref().is_none_or(|n| n == ns)
                };
                let mut map = producers.write();
                map.retain(|_, by| !mine(by));
                map.extend(relist.drain());
            }
            Ok(Event::Apply(o)) => {
                let mut map = producers.write();
                let by = label(&o);
                map.retain(|_, b| *b != by);
                if let Some(key) = target(&o) {
                    map.insert(key, by);
                }
            }
            Ok(Event::Delete(o)) => {
                let by = label(&o);
                producers.write().retain(|_, b| *b != by);
            }
            Err(error) => {
                tracing::warn!(kind, error = %redact_quoted(&error.to_string()), "watch failed; retrying with backoff");
                continue;
            }
        }
        changed();
    }
}
