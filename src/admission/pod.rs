//! What the pod routes read of a pod's `spec`: each container's name and environment. The rest
//! (volumes, security contexts, resources, ...) is skipped unparsed; container order is kept, so
//! patch paths still index the pod as sent.

use k8s_openapi::api::core::v1::{Container, EnvFromSource, EnvVar, EphemeralContainer, PodSpec};
use serde::Deserialize;

/// A pod's `spec`, as far as the pod rules read it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SlimPodSpec {
    #[serde(default)]
    containers: Vec<SlimContainer>,
    #[serde(default)]
    init_containers: Option<Vec<SlimContainer>>,
    #[serde(default)]
    ephemeral_containers: Option<Vec<SlimContainer>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimContainer {
    #[serde(default)]
    name: String,
    #[serde(default)]
    env: Option<Vec<EnvVar>>,
    #[serde(default)]
    env_from: Option<Vec<EnvFromSource>>,
}

impl From<SlimContainer> for Container {
    fn from(c: SlimContainer) -> Self {
        Self { name: c.name, env: c.env, env_from: c.env_from, ..Default::default() }
    }
}

impl From<SlimContainer> for EphemeralContainer {
    fn from(c: SlimContainer) -> Self {
        Self { name: c.name, env: c.env, env_from: c.env_from, ..Default::default() }
    }
}

impl From<SlimPodSpec> for PodSpec {
    fn from(s: SlimPodSpec) -> Self {
        PodSpec {
            containers: s.containers.into_iter().map(Into::into).collect(),
            init_containers: s.init_containers.map(|c| c.into_iter().map(Into::into).collect()),
            ephemeral_containers: s.ephemeral_containers.map(|c| c.into_iter().map(Into::into).collect()),
            ..Default::default()
        }
    }
}
