//! What the pod routes read of a pod's `spec`: each container's name and environment. The rest
//! (volumes, security contexts, resources, ...) is skipped unparsed; container order is kept, so
//! patch paths still index the pod as sent.

use k8s_openapi::api::core::v1::{Container, EnvFromSource, EnvVar, EnvVarSource, EphemeralContainer, PodSpec};
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
    env: Option<Vec<SlimEnvVar>>,
    #[serde(default)]
    env_from: Option<Vec<EnvFromSource>>,
}

/// An env entry as read: `valueFrom` boxed, so the vector grows by moving 56 bytes per entry
/// instead of k8s-openapi's 280 (a sandbox pod carries dozens of entries, nearly all without it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimEnvVar {
    name: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    value_from: Option<Box<EnvVarSource>>,
}

impl From<SlimEnvVar> for EnvVar {
    fn from(e: SlimEnvVar) -> Self {
        Self { name: e.name, value: e.value, value_from: e.value_from.map(|v| *v) }
    }
}

/// The env as the typed pod carries it, built at its final size.
fn env(slim: Option<Vec<SlimEnvVar>>) -> Option<Vec<EnvVar>> {
    slim.map(|env| env.into_iter().map(EnvVar::from).collect())
}

impl From<SlimContainer> for Container {
    fn from(c: SlimContainer) -> Self {
        Self { name: c.name, env: env(c.env), env_from: c.env_from, ..Default::default() }
    }
}

impl From<SlimContainer> for EphemeralContainer {
    fn from(c: SlimContainer) -> Self {
        Self { name: c.name, env: env(c.env), env_from: c.env_from, ..Default::default() }
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
