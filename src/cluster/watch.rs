//! Cluster mode: kube-rs watchers feed the view's stores. Each watched type is wrapped
//! in `DeserializeGuard`, so one object that does not deserialize is logged, counted and skipped
//! instead of stalling its watcher (and with it readiness).

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::core::DeserializeGuard;
use kube::runtime::{WatchStreamExt, watcher, watcher::Event};
use kube::{Api, Client};
use tokio::task::JoinSet;

use super::ingest::{AgentHarnessResource, Ingest, ModelConfigResource};
use super::view::{Feed, Feeds};
use crate::core::policy::WatchPolicy;
use crate::core::view::Digester;
use crate::telemetry::{Metrics, redact_quoted};

/// Secret types that cannot hold model keys or tokens, and are numerous: Helm release records
/// and service-account tokens stay out of the view.
pub const SECRET_FIELD_SELECTOR: &str = "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token";

/// Starts one watcher per feed; they run until the returned set is dropped.
pub fn spawn_watchers(
    client: Client,
    feeds: Feeds,
    scope: &WatchPolicy,
    digester: Digester,
    metrics: Arc<Metrics>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let plain = watcher::Config::default();
    let mut selected = watcher::Config::default();
    if !scope.label_selector.trim().is_empty() {
        selected = selected.labels(scope.label_selector.trim());
    }
    let secrets = selected.clone().fields(SECRET_FIELD_SELECTOR);
    let ctx = (client, digester, metrics);
    for feed in feeds.harnesses {
        set.spawn(run_feed::<AgentHarnessResource>(ctx.clone(), feed, plain.clone()));
    }
    for feed in feeds.model_configs {
        set.spawn(run_feed::<ModelConfigResource>(ctx.clone(), feed, plain.clone()));
    }
    for feed in feeds.secrets {
        set.spawn(run_feed::<Secret>(ctx.clone(), feed, secrets.clone()));
    }
    for feed in feeds.config_maps {
        set.spawn(run_feed::<ConfigMap>(ctx.clone(), feed, selected.clone()));
    }
    set
}

async fn run_feed<K: Ingest>(
    (client, digester, metrics): (Client, Digester, Arc<Metrics>),
    mut feed: Feed<K::Stored>,
    config: watcher::Config,
) {
    let kind = K::kind(&()).to_string();
    let api: Api<DeserializeGuard<K>> = match &feed.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                if let Some(event) = reduce_event::<K>(event, &digester, &metrics, &kind) {
                    feed.apply(event);
                }
            }
            Err(error) => {
                metrics.watch_error(&kind);
                tracing::warn!(kind, error = %redact_quoted(&error.to_string()), "watch failed; retrying with backoff");
            }
        }
    }
}

/// Turns a watch event into the stored form. An object that cannot be read is removed from the
/// store (a stale good version would be worse than none) and reported.
pub fn reduce_event<K: Ingest>(
    event: Event<DeserializeGuard<K>>,
    digester: &Digester,
    metrics: &Metrics,
    kind: &str,
) -> Option<Event<K::Stored>> {
    let read = |guard: DeserializeGuard<K>| match guard.0 {
        Ok(obj) => Ok(obj.ingest(digester)),
        Err(invalid) => {
            metrics.invalid_object(kind);
            tracing::warn!(
                kind,
                namespace = invalid.metadata.namespace.as_deref().unwrap_or(""),
                name = invalid.metadata.name.as_deref().unwrap_or(""),
                error = %redact_quoted(&invalid.error),
                "object does not deserialize; left out of the view"
            );
            Err(K::placeholder(invalid.metadata))
        }
    };
    Some(match event {
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
        Event::InitApply(guard) => Event::InitApply(read(guard).ok()?),
        Event::Apply(guard) => match read(guard) {
            Ok(obj) => Event::Apply(obj),
            Err(placeholder) => Event::Delete(placeholder),
        },
        Event::Delete(guard) => Event::Delete(read(guard).unwrap_or_else(|p| p)),
    })
}
