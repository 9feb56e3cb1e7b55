//! Reduction: what harness-guard keeps of an object, the same wherever it is read (watch, list,
//! manifest, admission request). Metadata keeps only what the rules read; a Secret's or
//! ConfigMap's values become key names, emptiness and keyed digests; a harness's literals become
//! facts ([`super::model::AgentHarness::reduce`]). No plaintext value survives reduction.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::names::LAST_APPLIED_ANNOTATION;
use super::view::{ConfigMapValues, Digester, SecretValues, ValueFacts, ValueSet};

/// Keeps only the metadata the view uses: name, namespace and deletionTimestamp. Everything else
/// goes: `managedFields` and the last-applied annotation above all (it repeats every value of the
/// object), and labels, other annotations, finalizers, owners, uid and resourceVersion, which no
/// rule reads and which would only cost memory at scale (the watcher keeps its own
/// resourceVersion from its events).
pub fn strip(meta: &mut ObjectMeta) {
    if let Some(annotations) = meta.annotations.as_mut() {
        // Said twice on purpose: even if the line below is ever relaxed, this one must stay.
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        ..Default::default()
    };
}

/// A Secret as the view keeps it.
pub fn secret_values(mut secret: Secret, digester: &Digester) -> SecretValues {
    strip(&mut secret.metadata);
    let mut keys = BTreeMap::new();
    for (k, v) in secret.data.into_iter().flatten() {
        keys.insert(k, digester.facts(&v.0));
    }
    // stringData is write-only and folded into data by the apiserver; manifests may use it.
    for (k, v) in secret.string_data.into_iter().flatten() {
        keys.insert(k, digester.facts(v.as_bytes()));
    }
    ValueSet::new(secret.metadata, keys)
}

/// A ConfigMap as the view keeps it.
pub fn config_map_values(mut config_map: ConfigMap, digester: &Digester) -> ConfigMapValues {
    strip(&mut config_map.metadata);
    let mut keys = BTreeMap::new();
    for (k, v) in config_map.data.into_iter().flatten() {
        keys.insert(k, digester.facts(v.as_bytes()));
    }
    for (k, v) in config_map.binary_data.into_iter().flatten() {
        keys.insert(k, ValueFacts { binary: true, ..digester.facts(&v.0) });
    }
    ValueSet::new(config_map.metadata, keys)
}
