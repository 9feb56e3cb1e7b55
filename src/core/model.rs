//! Typed views of kagent's `AgentHarness` and `ModelConfig` (`kagent.dev/v1alpha2`).
//!
//! They accept objects valid under each kagent era's CRD (v0.9.5, v0.9.12, main): every field is
//! optional, unknown fields are ignored, and values that grow between releases (provider, backend,
//! runtime) are plain strings rather than closed enums.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::view::{Digester, ValueDigest};

/// The metadata harness-guard keeps of an object: its name, its namespace, and for a harness its
/// uid (the continuous audit's Events name the harness by it). Nothing else is read by a rule, and
/// at tens of thousands of stored objects a full `ObjectMeta` (360 bytes before its strings, and
/// labels, annotations, the last-applied copy of the object) would be most of the view. Reads
/// from an object's `metadata`, ignoring every other field.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Meta {
    /// `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `metadata.namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl Meta {
    /// An object named `name` in `namespace`.
    pub fn named(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { name: Some(name.into()), namespace: Some(namespace.into()), uid: None }
    }

    /// The name and namespace of `meta`, without its uid.
    pub fn of(meta: &ObjectMeta) -> Self {
        Self { name: meta.name.clone(), namespace: meta.namespace.clone(), uid: None }
    }

    /// The name, namespace and uid of `meta` (what `From<ObjectMeta>` keeps, from a borrow).
    pub fn with_uid(meta: &ObjectMeta) -> Self {
        Self { uid: meta.uid.clone(), ..Self::of(meta) }
    }
}

impl From<ObjectMeta> for Meta {
    /// Name, namespace and uid; everything else is dropped.
    fn from(meta: ObjectMeta) -> Self {
        Self { name: meta.name, namespace: meta.namespace, uid: meta.uid }
    }
}

/// A kagent `AgentHarness`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct AgentHarness {
    /// The metadata kept.
    #[serde(default)]
    pub metadata: Meta,
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
    /// Agent Substrate settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substrate: Option<Substrate>,
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
    pub value: Option<Literal>,
}

/// A literal value of a harness: an env value, an inline token. Read as text; reduced to
/// [`LiteralFacts`] by [`AgentHarness::reduce`] before anything keeps it, and never printed.
#[derive(Clone, PartialEq)]
pub enum Literal {
    /// As read, while one request is judged.
    Text(String),
    /// What the view keeps.
    Reduced(LiteralFacts),
}

/// What harness-guard keeps of a literal: what the rules need, never the text.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LiteralFacts {
    /// Keyed digest of the trimmed value, as Secret values are kept.
    #[serde(skip)]
    pub digest: ValueDigest,
    /// Empty or only white space.
    pub empty: bool,
    /// An OpenShell credential placeholder.
    pub placeholder: bool,
}

impl Literal {
    /// The facts of the literal; `digester` must be the one the view was reduced with.
    pub fn facts(&self, digester: &Digester) -> LiteralFacts {
        match self {
            Literal::Text(text) => LiteralFacts {
                digest: digester.digest(text.as_bytes()),
                empty: text.trim().is_empty(),
                placeholder: super::validate::is_placeholder(text),
            },
            Literal::Reduced(facts) => *facts,
        }
    }

    /// True when the literal, not blank, is the value whose digest is `digest`. Digests only when
    /// asked: this runs on the admission path.
    pub fn is_value_of(&self, digest: ValueDigest, digester: &Digester) -> bool {
        match self {
            Literal::Text(text) => !text.trim().is_empty() && digester.digest(text.as_bytes()) == digest,
            Literal::Reduced(facts) => !facts.empty && facts.digest == digest,
        }
    }

    /// True for an OpenShell credential placeholder.
    pub fn is_placeholder(&self) -> bool {
        match self {
            Literal::Text(text) => super::validate::is_placeholder(text),
            Literal::Reduced(facts) => facts.placeholder,
        }
    }

    fn reduce(&mut self, digester: &Digester) {
        *self = Literal::Reduced(self.facts(digester));
    }
}

impl std::fmt::Debug for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Literal(..)")
    }
}

/// Serialized as read (text) or as kept (facts), so that a test can search every string a stored
/// object holds.
impl Serialize for Literal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Literal::Text(text) => serializer.serialize_str(text),
            Literal::Reduced(facts) => facts.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Literal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Literal::Text)
    }
}

/// `spec.substrate` (kagent v0.9.6+), the fields the rules read. An inline `gatewayToken` is
/// kept only as the fact that it is set.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Substrate {
    /// The WorkerPool the harness runs on, looked up in the harness's namespace.
    #[serde(default)]
    pub worker_pool_ref: Option<LocalRef>,
    /// The sandbox image override.
    #[serde(default)]
    pub workload_image: Option<String>,
    /// A Secret with key `token` holding the gateway token (kagent v0.9.x).
    #[serde(default)]
    pub gateway_token_secret_ref: Option<LocalRef>,
    /// True when the gateway token is given inline.
    #[serde(
        default,
        rename(deserialize = "gatewayToken", serialize = "inlineGatewayToken"),
        deserialize_with = "non_empty_string"
    )]
    pub inline_gateway_token: bool,
}

/// A typed reference to an object in the harness's namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// API group.
    #[serde(default)]
    pub api_group: Option<String>,
    /// Kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: String,
}

/// Reads a string and keeps only whether it is set: the value is dropped as it is read.
fn non_empty_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Option::<String>::deserialize(deserializer).map(|s| s.is_some_and(|s| !s.is_empty()))
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
    /// hermes's Slack settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hermes: Option<SlackHermes>,
}

/// `spec.channels[].slack.hermes`, the field the rules read.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct SlackHermes {
    /// A Secret or ConfigMap key listing the user IDs allowed to talk to the bot.
    #[serde(default, rename = "allowedUserIDsFrom", skip_serializing_if = "Option::is_none")]
    pub allowed_user_ids_from: Option<ValueSource>,
}

/// `spec.channels[].telegram`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TelegramChannel {
    /// The bot token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<Credential>,
    /// A Secret or ConfigMap key listing the user IDs allowed to talk to the bot.
    #[serde(default, rename = "allowedUserIDsFrom", skip_serializing_if = "Option::is_none")]
    pub allowed_user_ids_from: Option<ValueSource>,
}

/// A token given inline or by reference.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// An inline value (allowed by the CRD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Literal>,
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
        format!("{}/{}", self.namespace(), self.name())
    }

    /// `spec.modelConfigRef` as kagent reads it: surrounding white space trimmed, and empty
    /// meaning unset (no model bootstrap), not an error.
    pub fn model_config_ref(&self) -> Option<&str> {
        self.spec.model_config_ref.as_deref().map(str::trim).filter(|r| !r.is_empty())
    }

    /// The harness as the object findings name.
    pub fn object_ref(&self) -> super::finding::ObjectRef {
        super::finding::ObjectRef::new(super::finding::Kind::AgentHarness, self.namespace(), self.name())
    }

    /// The harness's namespace (empty if unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("")
    }

    /// The harness's name (empty if unset).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    /// Replaces every literal (env values, inline channel tokens) by its facts: what the view
    /// keeps, and what the rules read.
    pub fn reduce(&mut self, digester: &Digester) {
        let env = self.spec.env.iter_mut().flatten().filter_map(|e| e.value.as_mut());
        let channels = self.spec.channels.iter_mut().flatten();
        let tokens = channels.flat_map(|c| {
            let slack = c.slack.as_mut().map(|s| [&mut s.bot_token, &mut s.app_token]);
            let telegram = c.telegram.as_mut().map(|t| &mut t.bot_token);
            slack.into_iter().flatten().chain(telegram)
        });
        let tokens = tokens.filter_map(|t| t.as_mut().and_then(|c| c.value.as_mut()));
        for literal in env.chain(tokens) {
            literal.reduce(digester);
        }
    }

    /// True when the harness runs on OpenShell: `runtime` absent or `openshell`, and no `substrate`.
    pub fn runs_on_openshell(&self) -> bool {
        self.runtime() == Runtime::OpenShell
    }

    /// The runtime kagent runs the harness on, told from the fields each kagent era has.
    pub fn runtime(&self) -> Runtime {
        match (self.spec.runtime.as_deref(), self.spec.substrate.is_some()) {
            (Some("substrate"), _) => Runtime::SubstrateV09,
            (None, true) => Runtime::Substrate,
            _ => Runtime::OpenShell,
        }
    }

    /// `spec.backend` (required by the CRD; empty if absent).
    pub fn backend(&self) -> &str {
        self.spec.backend.as_deref().unwrap_or("")
    }

    /// True for the openclaw family (`openclaw`, `nemoclaw`), which share kagent's bootstrap.
    pub fn is_openclaw(&self) -> bool {
        matches!(self.backend(), "openclaw" | "nemoclaw")
    }
}

/// The runtime of a harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// An OpenShell sandbox: kagent v0.9.3–v0.9.12, `spec.runtime` absent or `openshell`.
    OpenShell,
    /// Agent Substrate as kagent v0.9.6–v0.9.12 runs it: `spec.runtime: substrate`.
    SubstrateV09,
    /// Agent Substrate as kagent ≥ v0.10 runs it: no `spec.runtime`, `spec.substrate` set.
    Substrate,
}

/// A kagent `ModelConfig`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ModelConfig {
    /// The metadata kept.
    #[serde(default)]
    pub metadata: Meta,
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
    /// TLS settings for the model endpoint (present or not: the harness path ignores them).
    #[serde(default, deserialize_with = "is_set")]
    pub tls: bool,
    /// Extra request headers (present or not: values may hold credentials and are not kept).
    #[serde(default, deserialize_with = "is_set")]
    pub default_headers: bool,
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
    /// `openAI.tokenExchange` is set (kept only as a fact).
    #[serde(default, deserialize_with = "is_set")]
    pub token_exchange: bool,
    /// `azureOpenAI.azureAdToken` is set (a credential: kept only as a fact).
    #[serde(default, deserialize_with = "is_set")]
    pub azure_ad_token: bool,
}

/// Reads any value and keeps only whether it is there (not null): what it held is dropped as read.
fn is_set<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Option::<serde::de::IgnoredAny>::deserialize(deserializer).map(|v| v.is_some())
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

    /// Settings the harness path of kagent never reads, by field, for a warning.
    pub fn ignored_settings(&self) -> Vec<&'static str> {
        let s = &self.spec;
        let mut out = Vec::new();
        if s.tls {
            out.push("spec.tls");
        }
        if s.default_headers {
            out.push("spec.defaultHeaders");
        }
        if s.open_ai.as_ref().is_some_and(|e| e.token_exchange) {
            out.push("spec.openAI.tokenExchange");
        }
        if s.azure_open_ai.as_ref().is_some_and(|e| e.azure_ad_token) {
            out.push("spec.azureOpenAI.azureAdToken");
        }
        out
    }

    /// The field that sets the explicit base URL, and the URL, if the provider block sets one.
    pub fn base_url_field(&self) -> Option<(&'static str, &str)> {
        let s = &self.spec;
        let blocks = [
            ("spec.openAI.baseUrl", &s.open_ai),
            ("spec.anthropic.baseUrl", &s.anthropic),
            ("spec.azureOpenAI.azureEndpoint", &s.azure_open_ai),
            ("spec.ollama.host", &s.ollama),
            ("spec.sapAICore.baseUrl", &s.sap_ai_core),
        ];
        blocks.into_iter().find_map(|(field, block)| {
            let e = block.as_ref()?;
            let url = e.base_url.as_deref().or(e.azure_endpoint.as_deref()).or(e.host.as_deref())?;
            (!url.trim().is_empty()).then_some((field, url))
        })
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
