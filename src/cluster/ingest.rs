//! What enters the cluster view, and in what form: every object is stripped of `managedFields`
//! and the last-applied annotation, and Secrets and ConfigMaps are reduced to key names,
//! emptiness and keyed digests before they are stored, and so are an AgentHarness's literals (env
//! values, inline tokens; an inline gateway token is dropped as it is read). No plaintext value
//! survives ingest.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{NamespaceResourceScope, Resource};
use serde::de::DeserializeOwned;

use crate::core::model::{AgentHarness, ModelConfig};
use crate::core::names::{
    AGENT_HARNESS_KIND, KAGENT_GROUP, KAGENT_VERSION, LAST_APPLIED_ANNOTATION, MODEL_CONFIG_KIND,
};
use crate::core::view::{ConfigMapKind, ConfigMapValues, Digester, SecretKind, SecretValues, ValueSet};

/// A kind the view holds: how it is read from the API and what is kept of it.
pub trait Ingest:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + DeserializeOwned
    + Clone
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The stored form.
    type Stored: super::view::Stored;
    /// Reduces a read object to its stored form.
    fn ingest(self, digester: &Digester) -> Self::Stored;
    /// A stored stand-in for an object that could not be read, so it can be removed from the store.
    fn placeholder(metadata: ObjectMeta) -> Self::Stored;
}

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

impl Ingest for AgentHarness {
    type Stored = AgentHarness;
    fn ingest(mut self, digester: &Digester) -> Self {
        // The uid stays: the continuous audit's Events name the harness by it.
        let uid = self.metadata.uid.take();
        strip(&mut self.metadata);
        self.metadata.uid = uid;
        // Env values and inline tokens are kept as facts only, like Secret values.
        self.reduce(digester);
        self
    }
    fn placeholder(metadata: ObjectMeta) -> Self {
        Self { metadata, ..Default::default() }
    }
}

impl Ingest for ModelConfig {
    type Stored = ModelConfig;
    fn ingest(mut self, _: &Digester) -> Self {
        strip(&mut self.metadata);
        self
    }
    fn placeholder(metadata: ObjectMeta) -> Self {
        Self { metadata, ..Default::default() }
    }
}

impl Ingest for Secret {
    type Stored = SecretValues;
    fn ingest(mut self, digester: &Digester) -> SecretValues {
        strip(&mut self.metadata);
        let mut keys = BTreeMap::new();
        for (k, v) in self.data.into_iter().flatten() {
            keys.insert(k, digester.facts(&v.0));
        }
        // stringData is write-only and folded into data by the apiserver; manifests may use it.
        for (k, v) in self.string_data.into_iter().flatten() {
            keys.insert(k, digester.facts(v.as_bytes()));
        }
        ValueSet::new(self.metadata, keys)
    }
    fn placeholder(metadata: ObjectMeta) -> SecretValues {
        ValueSet::new(metadata, BTreeMap::new())
    }
}

impl Ingest for ConfigMap {
    type Stored = ConfigMapValues;
    fn ingest(mut self, digester: &Digester) -> ConfigMapValues {
        strip(&mut self.metadata);
        let mut keys = BTreeMap::new();
        for (k, v) in self.data.into_iter().flatten() {
            keys.insert(k, digester.facts(v.as_bytes()));
        }
        for (k, v) in self.binary_data.into_iter().flatten() {
            keys.insert(k, digester.facts(&v.0));
        }
        ValueSet::new(self.metadata, keys)
    }
    fn placeholder(metadata: ObjectMeta) -> ConfigMapValues {
        ValueSet::new(metadata, BTreeMap::new())
    }
}

macro_rules! kagent_resource {
    ($ty:ty, $kind:expr, $plural:expr) => {
        impl Resource for $ty {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;
            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(KAGENT_GROUP)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(KAGENT_VERSION)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

kagent_resource!(AgentHarness, AGENT_HARNESS_KIND, "agentharnesses");
kagent_resource!(ModelConfig, MODEL_CONFIG_KIND, "modelconfigs");

/// A value set is stored under the identity of the kind it was reduced from.
macro_rules! value_set_resource {
    ($marker:ty, $source:ty) => {
        impl Resource for ValueSet<$marker> {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;
            fn kind(dt: &()) -> Cow<'_, str> {
                <$source as Resource>::kind(dt)
            }
            fn group(dt: &()) -> Cow<'_, str> {
                <$source as Resource>::group(dt)
            }
            fn version(dt: &()) -> Cow<'_, str> {
                <$source as Resource>::version(dt)
            }
            fn plural(dt: &()) -> Cow<'_, str> {
                <$source as Resource>::plural(dt)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

value_set_resource!(SecretKind, Secret);
value_set_resource!(ConfigMapKind, ConfigMap);
