//! What enters the cluster view, and in what form: each kind the view holds, read through the
//! reduction in `core::reduce` (metadata stripped, values to digests, a harness's literals to
//! facts). No plaintext value survives ingest.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{NamespaceResourceScope, Resource};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::core::model::{AgentHarness, AgentHarnessSpec, AgentHarnessStatus, Meta, ModelConfig, ModelConfigSpec};
use crate::core::names::{AGENT_HARNESS_KIND, KAGENT_GROUP, KAGENT_VERSION, MODEL_CONFIG_KIND};
use crate::core::reduce::{config_map_values, secret_values};
use crate::core::view::{ConfigMapValues, Digester, SecretValues, ValueSet};

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

/// An AgentHarness as the API serves it, with its full metadata: the watcher follows the
/// `resourceVersion` of every object it reads. The view keeps the slim [`AgentHarness`].
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AgentHarnessResource {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: AgentHarnessSpec,
    #[serde(default)]
    status: Option<AgentHarnessStatus>,
}

/// A ModelConfig as the API serves it (see [`AgentHarnessResource`]).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ModelConfigResource {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: ModelConfigSpec,
}

impl Ingest for AgentHarnessResource {
    type Stored = AgentHarness;
    fn ingest(self, digester: &Digester) -> AgentHarness {
        // The uid stays: the continuous audit's Events name the harness by it.
        let mut harness = AgentHarness { metadata: self.metadata.into(), spec: self.spec, status: self.status };
        // Env values and inline tokens are kept as facts only, like Secret values.
        harness.reduce(digester);
        harness
    }
    fn placeholder(metadata: ObjectMeta) -> AgentHarness {
        AgentHarness { metadata: Meta::of(&metadata), ..Default::default() }
    }
}

impl Ingest for ModelConfigResource {
    type Stored = ModelConfig;
    fn ingest(self, _: &Digester) -> ModelConfig {
        ModelConfig { metadata: Meta::of(&self.metadata), spec: self.spec }
    }
    fn placeholder(metadata: ObjectMeta) -> ModelConfig {
        ModelConfig { metadata: Meta::of(&metadata), ..Default::default() }
    }
}

impl Ingest for Secret {
    type Stored = SecretValues;
    fn ingest(self, digester: &Digester) -> SecretValues {
        secret_values(self, digester)
    }
    fn placeholder(metadata: ObjectMeta) -> SecretValues {
        ValueSet::new(Meta::of(&metadata), BTreeMap::new())
    }
}

impl Ingest for ConfigMap {
    type Stored = ConfigMapValues;
    fn ingest(self, digester: &Digester) -> ConfigMapValues {
        config_map_values(self, digester)
    }
    fn placeholder(metadata: ObjectMeta) -> ConfigMapValues {
        ValueSet::new(Meta::of(&metadata), BTreeMap::new())
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

kagent_resource!(AgentHarnessResource, AGENT_HARNESS_KIND, "agentharnesses");
kagent_resource!(ModelConfigResource, MODEL_CONFIG_KIND, "modelconfigs");
