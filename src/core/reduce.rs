//! Reduction: what harness-guard keeps of an object, the same wherever it is read (watch, list,
//! manifest, admission request). Metadata keeps only what the rules read ([`Meta`]: name,
//! namespace, a harness's uid; never labels or annotations, where the last-applied copy of an
//! object repeats its values); a Secret's or ConfigMap's values become key names, emptiness and
//! keyed digests; a harness's literals become facts ([`super::model::AgentHarness::reduce`]). No
//! plaintext value survives reduction.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::model::Meta;
use super::view::{ConfigMapValues, Digester, SecretValues, ValueFacts, ValueSet};

/// A Secret as the view keeps it.
pub fn secret_values(secret: Secret, digester: &Digester) -> SecretValues {
    let mut keys = BTreeMap::new();
    for (k, v) in secret.data.into_iter().flatten() {
        keys.insert(k, digester.facts(&v.0));
    }
    // stringData is write-only and folded into data by the apiserver; manifests may use it.
    for (k, v) in secret.string_data.into_iter().flatten() {
        keys.insert(k, digester.facts(v.as_bytes()));
    }
    ValueSet::new(Meta::of(&secret.metadata), keys)
}

/// A ConfigMap as the view keeps it.
pub fn config_map_values(config_map: ConfigMap, digester: &Digester) -> ConfigMapValues {
    let mut keys = BTreeMap::new();
    for (k, v) in config_map.data.into_iter().flatten() {
        keys.insert(k, digester.facts(v.as_bytes()));
    }
    for (k, v) in config_map.binary_data.into_iter().flatten() {
        keys.insert(k, ValueFacts { binary: true, ..digester.facts(&v.0) });
    }
    ValueSet::new(Meta::of(&config_map.metadata), keys)
}
