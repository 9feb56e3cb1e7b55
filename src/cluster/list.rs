//! One-shot reads of a live cluster (for `check --cluster` and `audit`): the four kinds, through
//! the same `DeserializeGuard` and digest-only ingest as the watchers.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::ListParams;
use kube::core::DeserializeGuard;

use super::ingest::Ingest;
use super::manifests::Objects;
use super::watch::SECRET_FIELD_SELECTOR;
use crate::core::model::{AgentHarness, ModelConfig};
use crate::core::view::Digester;

async fn list<K: Ingest>(
    client: &kube::Client,
    params: &ListParams,
    digester: &Digester,
) -> Result<Vec<K::Stored>, kube::Error> {
    let api: Api<DeserializeGuard<K>> = Api::all(client.clone());
    let mut out = Vec::new();
    let mut params = params.clone().limit(500);
    loop {
        let page = api.list(&params).await?;
        out.extend(page.items.into_iter().filter_map(|g| g.0.ok()).map(|o| o.ingest(digester)));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(out),
        }
    }
}

/// Every AgentHarness, ModelConfig, Secret (that can hold keys) and ConfigMap of the cluster.
pub async fn list_all(client: &kube::Client, digester: &Digester) -> Result<Objects, kube::Error> {
    let all = ListParams::default();
    let secrets = ListParams::default().fields(SECRET_FIELD_SELECTOR);
    let mut objects = Objects::default();
    objects.add(
        list::<AgentHarness>(client, &all, digester).await?,
        list::<ModelConfig>(client, &all, digester).await?,
        list::<Secret>(client, &secrets, digester).await?,
        list::<ConfigMap>(client, &all, digester).await?,
    );
    Ok(objects)
}
