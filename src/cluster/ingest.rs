//! What enters the cluster view, and in what form: each kind the view holds, read through the
//! reduction in `core::reduce` (metadata stripped, values to digests, a harness's literals to
//! facts). No plaintext value survives ingest.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{NamespaceResourceScope, Resource};
use serde::de::DeserializeOwned;

use crate::core::model::{AgentHarness, ModelConfig};
use crate::core::names::{AGENT_HARNESS_KIND, KAGENT_GROUP, KAGENT_VERSION, MODEL_CONFIG_KIND};
use crate::core::reduce::{config_map_values, secret_values, strip};
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
    fn ingest(self, digester: &Digester) -> SecretValues {
        secret_values(self, digester)
    }
    fn placeholder(metadata: ObjectMeta) -> SecretValues {
        ValueSet::new(metadata, BTreeMap::new())
    }
}

impl Ingest for ConfigMap {
    type Stored = ConfigMapValues;
    fn ingest(self, digester: &Digester) -> ConfigMapValues {
        config_map_values(self, digester)
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
