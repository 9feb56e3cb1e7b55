//! Typed views of kagent's `AgentHarness` and `ModelConfig` (`kagent.dev/v1alpha2`).
//!
//! They accept objects valid under each kagent era's CRD (v0.9.5, v0.9.12, main): every field is
//! optional, unknown fields are ignored, and values that grow between releases (provider, backend,
//! runtime) are plain strings rather than closed enums.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A kagent `AgentHarness`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct AgentHarness {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The desired harness.
    #[serde(default)]
    pub spec: AgentHarnessSpec,
    /// What the kagent controller last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AgentHarnessStatus>,
}

/// `AgentHarness.spec`, the fields harness-guard reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentHarnessSpec {
    /// `openclaw`, `nemoclaw`, `hermes`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// `openshell` (default) or `substrate`; absent before kagent v0.9.6 and after v0.10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Agent Substrate settings; only its presence matters here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substrate: Option<serde_json::Value>,
    /// `name` or `namespace/name` of a ModelConfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_config_ref: Option<String>,
    /// Environment copied (literal values only) into the sandbox pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Egress allowed from the sandbox (kagent v0.9.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Messaging channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<Channel>>,
}

/// An entry of `spec.env`: only literal values reach the sandbox (kagent drops `valueFrom`), so
/// that is all that is kept.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `spec.network`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// Hosts the sandbox policy lets the agent reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_domains: Option<Vec<String>>,
}

/// One entry of `spec.channels`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    /// Channel name (required by the CRD).
    #[serde(default)]
    pub name: String,
    /// `slack` or `telegram`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Slack tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackChannel>,
    /// Telegram token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramChannel>,
}

/// `spec.channels[].slack`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlackChannel {
    /// The bot token (`xoxb-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<Credential>,
    /// The app token (`xapp-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token: Option<Credential>,
}

/// `spec.channels[].telegram`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TelegramChannel {
    /// The bot token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<Credential>,
}

/// A token given inline or by reference.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// An inline value (allowed by the CRD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A reference to a Secret or ConfigMap key in the harness's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueSource>,
}

/// kagent's `ValueSource`: `{type: Secret|ConfigMap, name, key}`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ValueSource {
    /// `Secret` or `ConfigMap`.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// Object name.
    #[serde(default)]
    pub name: String,
    /// Key inside the object.
    #[serde(default)]
    pub key: String,
}

/// `AgentHarness.status`, the part that links a harness to its sandbox.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentHarnessStatus {
    /// The backend's handle; for OpenShell `id` is the sandbox name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<BackendRef>,
}

/// `status.backendRef`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct BackendRef {
    /// Backend name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Backend-side id (the OpenShell sandbox name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl AgentHarness {
    /// `namespace/name`, as users write it.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.metadata.name.as_deref().unwrap_or(""))
    }

    /// The harness as the object findings name.
    pub fn object_ref(&self) -> super::finding::ObjectRef {
        let name = self.metadata.name.as_deref().unwrap_or("");
        super::finding::ObjectRef::new(super::finding::Kind::AgentHarness, self.namespace(), name)
    }

    /// The harness's namespace (empty if unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("")
    }

    /// True when the harness runs on OpenShell: `runtime` absent or `openshell`, and no `substrate`.
    pub fn runs_on_openshell(&self) -> bool {
        let runtime_openshell = matches!(self.spec.runtime.as_deref(), None | Some("openshell"));
        runtime_openshell && self.spec.substrate.is_none()
    }
}

/// A kagent `ModelConfig`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ModelConfig {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The model settings.
    #[serde(default)]
    pub spec: ModelConfigSpec,
}

/// `ModelConfig.spec`, the fields harness-guard reads. The provider blocks are boxed: at most one
/// is set, and five inline would triple the size of every stored ModelConfig.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModelConfigSpec {
    /// Model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Provider; the CRD defaults it to `OpenAI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Secret in the ModelConfig's namespace that holds the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret: Option<String>,
    /// Key inside that Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_key: Option<String>,
    /// Forward the caller's bearer token instead of a stored key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_passthrough: Option<bool>,
    /// OpenAI settings.
    #[serde(default, rename = "openAI", skip_serializing_if = "Option::is_none")]
    pub open_ai: Option<Box<Endpoint>>,
    /// Anthropic settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic: Option<Box<Endpoint>>,
    /// Azure OpenAI settings.
    #[serde(default, rename = "azureOpenAI", skip_serializing_if = "Option::is_none")]
    pub azure_open_ai: Option<Box<Endpoint>>,
    /// Ollama settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ollama: Option<Box<Endpoint>>,
    /// SAP AI Core settings.
    #[serde(default, rename = "sapAICore", skip_serializing_if = "Option::is_none")]
    pub sap_ai_core: Option<Box<Endpoint>>,
}

/// The endpoint fields of the provider-specific blocks (each provider names it differently).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// `openAI`, `anthropic`, `sapAICore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// `azureOpenAI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_endpoint: Option<String>,
    /// `ollama`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl ModelConfig {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.metadata.namespace.as_deref().unwrap_or(""), self.metadata.name.as_deref().unwrap_or(""))
    }

    /// The provider, with the CRD default applied.
    pub fn provider(&self) -> &str {
        self.spec.provider.as_deref().filter(|p| !p.is_empty()).unwrap_or("OpenAI")
    }

    /// The explicit base URL, if the provider block sets one.
    pub fn base_url(&self) -> Option<&str> {
        let s = &self.spec;
        [&s.open_ai, &s.anthropic, &s.azure_open_ai, &s.ollama, &s.sap_ai_core]
            .into_iter()
            .flatten()
            .find_map(|e| e.base_url.as_deref().or(e.azure_endpoint.as_deref()).or(e.host.as_deref()))
            .filter(|u| !u.trim().is_empty())
    }
}
