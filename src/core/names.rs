//! Names that come from kagent, OpenShell and agent-sandbox, and our own annotation keys.
//!
//! Kept in one place so that a rename upstream is a one-line change here.

/// API group of AgentHarness and ModelConfig.
pub const KAGENT_GROUP: &str = "kagent.dev";
/// The served and stored version harness-guard judges.
pub const KAGENT_VERSION: &str = "v1alpha2";
/// `apiVersion` of AgentHarness and ModelConfig objects.
pub const KAGENT_API_VERSION: &str = "kagent.dev/v1alpha2";
/// The other version kagent main serves for both kinds (the same schema; v1alpha2 is stored).
pub const KAGENT_V1ALPHA3: &str = "kagent.dev/v1alpha3";
/// Kind of the harness objects.
pub const AGENT_HARNESS_KIND: &str = "AgentHarness";
/// Kind of the model configuration objects.
pub const MODEL_CONFIG_KIND: &str = "ModelConfig";

/// Annotation OpenShell puts on every sandbox pod (note: `openshell.io`, not `openshell.ai`).
pub const SANDBOX_ID_ANNOTATION: &str = "openshell.io/sandbox-id";
/// API group of the agent-sandbox `Sandbox` that owns a sandbox pod.
pub const SANDBOX_GROUP: &str = "agents.x-k8s.io";
/// Kind of the owner of a sandbox pod.
pub const SANDBOX_KIND: &str = "Sandbox";
/// Env var that carries the OpenShell gateway URL in the `agent` container.
pub const OPENSHELL_ENDPOINT_ENV: &str = "OPENSHELL_ENDPOINT";

/// Default annotation recording the inference provider the sandbox is expected to have attached.
pub const PROVIDER_ANNOTATION: &str = "harness-guard.dev/inference-provider";
/// Default annotation recording which AgentHarness a sandbox pod belongs to.
pub const HARNESS_ANNOTATION: &str = "harness-guard.dev/harness";

/// Prefix of the canonical OpenShell credential placeholder.
pub const PLACEHOLDER_PREFIX: &str = "openshell:resolve:env:";
/// Marker of the alias placeholder form (`xoxb-OPENSHELL-RESOLVE-ENV-KEY`).
pub const PLACEHOLDER_ALIAS_MARKER: &str = "OPENSHELL-RESOLVE-ENV-";

/// The env var name under which kagent hands a provider's key to the agent on the harness path:
/// `strings.ToUpper(provider) + "_API_KEY"` (`DefaultAPIKeyEnvVar`), e.g. `AZUREOPENAI_API_KEY`.
pub fn provider_key_env(provider: &str) -> String {
    format!("{}_API_KEY", provider.to_ascii_uppercase())
}

/// The upstream host (or domain suffix) the OpenShell router calls for a cluster inference route
/// of provider `type_` with no base URL (OpenShell `openshell-core` inference defaults); `None` for
/// a type whose default is not known here (add its host to `sandbox.noProxyExtra`).
pub fn inference_upstream(type_: &str) -> Option<&'static str> {
    // Compared without lowercasing into a new string: this runs for every sandbox pod.
    let is = |names: &[&str]| names.iter().any(|n| type_.eq_ignore_ascii_case(n));
    if is(&["openai"]) {
        Some("api.openai.com")
    } else if is(&["anthropic"]) {
        Some("api.anthropic.com")
    } else if is(&["nvidia"]) {
        Some("integrate.api.nvidia.com")
    } else if is(&["google-vertex-ai", "vertex", "vertex-ai", "google-vertex", "gcp-vertex"]) {
        // Vertex builds `aiplatform.googleapis.com`, `{region}-aiplatform.googleapis.com`, ...
        Some(".googleapis.com")
    } else {
        None
    }
}

/// Name of the OpenShell inference provider that kagent's fix (PR #1964) attaches to a sandbox.
pub fn inference_provider_name(sandbox: &str, provider: &str) -> String {
    format!("{sandbox}-inference-{}", provider.to_ascii_lowercase())
}

/// Name of the OpenShell sandbox (and its pod) for a harness: `<namespace>-<name>`.
pub fn sandbox_name(namespace: &str, name: &str) -> String {
    format!("{namespace}-{name}")
}
