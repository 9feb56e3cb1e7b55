//! One-shot reads of a live cluster (for `check --cluster` and `audit`): the four kinds, in the
//! policy's watch scope (its namespaces; its label selector on Secrets and ConfigMaps), through
//! the same `DeserializeGuard` and digest-only ingest as the watchers. An object that does not
//! read as its kind is kept by name, never dropped in silence.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::ListParams;
use kube::core::DeserializeGuard;

use super::ingest::{AgentHarnessResource, Ingest, ModelConfigResource};
use super::manifests::Objects;
use super::watch::SECRET_FIELD_SELECTOR;
use crate::core::finding::{Kind, ObjectRef};
use crate::core::policy::WatchPolicy;
use crate::core::view::Digester;
use crate::telemetry::redact_quoted;

/// What a list of the cluster brought back.
#[derive(Default)]
pub struct Listed {
    /// The objects, in stored form.
    pub objects: Objects,
    /// Objects that did not read as their kind, with why (quoted values removed).
    pub unreadable: Vec<(ObjectRef, String)>,
}

async fn list<K: Ingest>(
    client: &kube::Client,
    kind: Kind,
    namespaces: &[Option<String>],
    params: &ListParams,
    digester: &Digester,
    unreadable: &mut Vec<(ObjectRef, String)>,
) -> Result<Vec<K::Stored>, kube::Error> {
    let mut out = Vec::new();
    for namespace in namespaces {
        let api: Api<DeserializeGuard<K>> = match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let mut params = params.clone().limit(500);
        loop {
            let page = api.list(&params).await?;
            for guarded in page.items {
                match guarded.0 {
                    Ok(object) => out.push(object.ingest(digester)),
                    Err(invalid) => {
                        let meta = &invalid.metadata;
                        let ns = meta.namespace.as_deref().unwrap_or_default();
                        let object = ObjectRef::new(kind, ns, meta.name.as_deref().unwrap_or_default());
                        unreadable.push((object, redact_quoted(&invalid.error)));
                    }
                }
            }
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
    }
    Ok(out)
}

/// Every AgentHarness, ModelConfig, Secret (that can hold keys) and ConfigMap in `scope`.
pub async fn list_all(client: &kube::Client, scope: &WatchPolicy, digester: &Digester) -> Result<Listed, kube::Error> {
    let namespaces: Vec<Option<String>> =
        if scope.namespaces.is_empty() { vec![None] } else { scope.namespaces.iter().cloned().map(Some).collect() };
    let all = ListParams::default();
    let mut selected = ListParams::default();
    if !scope.label_selector.trim().is_empty() {
        selected = selected.labels(scope.label_selector.trim());
    }
    let secrets = selected.clone().fields(SECRET_FIELD_SELECTOR);
    let mut listed = Listed::default();
    let bad = &mut listed.unreadable;
    let harnesses = list::<AgentHarnessResource>(client, Kind::AgentHarness, &namespaces, &all, digester, bad).await?;
    let model_configs =
        list::<ModelConfigResource>(client, Kind::ModelConfig, &namespaces, &all, digester, bad).await?;
    let secrets = list::<Secret>(client, Kind::Secret, &namespaces, &secrets, digester, bad).await?;
    let config_maps = list::<ConfigMap>(client, Kind::ConfigMap, &namespaces, &selected, digester, bad).await?;
    listed.objects.add(harnesses, model_configs, secrets, config_maps);
    Ok(listed)
}
