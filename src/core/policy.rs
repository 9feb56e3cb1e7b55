//! The policy: what each rule does and how sandbox pods are patched. Read from `--config FILE`
//! (YAML, camelCase keys); every field has a default, so an empty file is a valid policy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What happens when a rule finds a problem.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Refuse the request.
    #[default]
    Deny,
    /// Allow it, with an admission warning.
    Warn,
    /// Do not check.
    Off,
}

/// Every rule harness-guard applies, by its name in the policy file and in metrics.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// 1: `spec.modelConfigRef` is `name` or `namespace/name`.
    ModelConfigRef,
    /// 2: the ModelConfig exists.
    ModelConfigExists,
    /// 3: the ModelConfig names a Secret and key, and its settings work on the harness's runtime.
    ModelSecretNamed,
    /// 4: the Secret exists in the ModelConfig's namespace, has the key, and the value is not empty.
    ModelSecretResolves,
    /// 5: channel tokens given by `valueFrom` resolve.
    ChannelTokens,
    /// 6: the real key does not ride in `spec.env`.
    KeyInEnv,
    /// 9: a reference outside what harness-guard watches (always a warning at most).
    NotWatched,
    /// 10: the ModelConfig's base URL host is in `spec.network.allowedDomains`.
    AllowedDomains,
    /// Sandbox pods take no Secret through `secretKeyRef` or `envFrom`.
    PodSecretRef,
    /// Sandbox pods carry no literal model key.
    PodLiteralKey,
    /// A sandbox container already sets a proxy variable to another value (warning at most).
    ProxyEnvConflict,
    /// A sandbox pod matches no AgentHarness, or several (warning at most).
    SandboxOwner,
    /// A DELETE or UPDATE of a ModelConfig, Secret or ConfigMap would break live harnesses.
    ReferenceInUse,
    /// A Secret that another object (ExternalSecret, SealedSecret) will produce: present, content
    /// unknown (a note at most).
    ProducedSecret,
    /// An object harness-guard could not read: a sandbox pod on `/mutate`, a live object in
    /// `check` and `audit` (warning at most; `/validate` answers an unreadable request with 400).
    Unreadable,
    /// The ModelConfig's provider is one the harness's runtime and backend can serve.
    ProviderServed,
    /// OpenShell: no explicit base URL or endpoint on the ModelConfig.
    ExplicitUpstream,
    /// OpenShell: the key value holds no carriage return or line feed.
    KeyFormat,
    /// OpenShell: live harnesses share the gateway's one inference route (warning).
    SharedGateway,
    /// OpenShell: a change to a ModelConfig or key that running sandboxes never see (warning).
    StaleSandbox,
    /// A ModelConfig setting kagent's harness path ignores (warning).
    IgnoredSetting,
    /// A channel token in a ConfigMap's `binaryData`, which kagent does not read.
    ChannelBinaryData,
    /// Substrate (kagent v0.9.x): the gateway token Secret exists with a `token` key.
    GatewayToken,
    /// The backend exists on the harness's runtime.
    BackendRuntime,
    /// Substrate: no channel token from a ConfigMap (only Secret references reach the workload).
    SubstrateChannelConfigmap,
    /// Substrate: the `allowedUserIDsFrom` source exists in the harness's namespace.
    AllowedUsersFrom,
    /// Substrate: `spec.substrate.workloadImage` is pinned by digest.
    WorkloadImageDigest,
    /// The ModelConfig names a model.
    ModelName,
    /// Substrate: an explicit `workerPoolRef` names a WorkerPool in the harness's namespace.
    WorkerPool,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 29] = [
        Rule::ModelConfigRef,
        Rule::ModelConfigExists,
        Rule::ModelSecretNamed,
        Rule::ModelSecretResolves,
        Rule::ChannelTokens,
        Rule::KeyInEnv,
        Rule::NotWatched,
        Rule::AllowedDomains,
        Rule::PodSecretRef,
        Rule::PodLiteralKey,
        Rule::ProxyEnvConflict,
        Rule::SandboxOwner,
        Rule::ReferenceInUse,
        Rule::ProducedSecret,
        Rule::Unreadable,
        Rule::ProviderServed,
        Rule::ExplicitUpstream,
        Rule::KeyFormat,
        Rule::SharedGateway,
        Rule::StaleSandbox,
        Rule::IgnoredSetting,
        Rule::ChannelBinaryData,
        Rule::GatewayToken,
        Rule::BackendRuntime,
        Rule::SubstrateChannelConfigmap,
        Rule::AllowedUsersFrom,
        Rule::WorkloadImageDigest,
        Rule::ModelName,
        Rule::WorkerPool,
    ];

    /// The rule's name as written in the policy file and used as a metric label.
    pub fn name(self) -> &'static str {
        match self {
            Rule::ModelConfigRef => "model-config-ref",
            Rule::ModelConfigExists => "model-config-exists",
            Rule::ModelSecretNamed => "model-secret-named",
            Rule::ModelSecretResolves => "model-secret-resolves",
            Rule::ChannelTokens => "channel-tokens",
            Rule::KeyInEnv => "key-in-env",
            Rule::NotWatched => "not-watched",
            Rule::AllowedDomains => "allowed-domains",
            Rule::PodSecretRef => "pod-secret-ref",
            Rule::PodLiteralKey => "pod-literal-key",
            Rule::ProxyEnvConflict => "proxy-env-conflict",
            Rule::SandboxOwner => "sandbox-owner",
            Rule::ReferenceInUse => "reference-in-use",
            Rule::ProducedSecret => "produced-secret",
            Rule::Unreadable => "unreadable",
            Rule::ProviderServed => "provider-served",
            Rule::ExplicitUpstream => "explicit-upstream",
            Rule::KeyFormat => "key-format",
            Rule::SharedGateway => "shared-gateway",
            Rule::StaleSandbox => "stale-sandbox",
            Rule::IgnoredSetting => "ignored-setting",
            Rule::ChannelBinaryData => "channel-binary-data",
            Rule::GatewayToken => "gateway-token",
            Rule::BackendRuntime => "backend-runtime",
            Rule::SubstrateChannelConfigmap => "substrate-channel-configmap",
            Rule::AllowedUsersFrom => "allowed-users-from",
            Rule::WorkloadImageDigest => "workload-image-digest",
            Rule::ModelName => "model-name",
            Rule::WorkerPool => "worker-pool",
        }
    }

    /// True when a finding of this rule means the harness cannot work as it stands, or breaks the
    /// security model; false for advisories (a host probably blocked, an object not watched or not
    /// produced yet) and for rules that judge something other than a harness.
    pub fn breaks_harness(self) -> bool {
        matches!(
            self,
            Rule::ModelConfigRef
                | Rule::ModelConfigExists
                | Rule::ModelSecretNamed
                | Rule::ModelSecretResolves
                | Rule::ChannelTokens
                | Rule::KeyInEnv
                | Rule::ProviderServed
                | Rule::ExplicitUpstream
                | Rule::KeyFormat
                | Rule::ChannelBinaryData
                | Rule::GatewayToken
                | Rule::BackendRuntime
                | Rule::SubstrateChannelConfigmap
                | Rule::AllowedUsersFrom
                | Rule::WorkloadImageDigest
                | Rule::ModelName
                | Rule::WorkerPool
        )
    }

    /// Rules that can be turned off but never made to deny: what they find proves nothing missing
    /// (not watched, not produced yet, not readable) or must never block a pod.
    fn warns_at_most(self) -> bool {
        matches!(
            self,
            Rule::NotWatched | Rule::ProxyEnvConflict | Rule::SandboxOwner | Rule::ProducedSecret | Rule::Unreadable
        )
    }

    fn default_action(self) -> Action {
        match self {
            Rule::AllowedDomains
            | Rule::NotWatched
            | Rule::ProxyEnvConflict
            | Rule::SandboxOwner
            | Rule::ReferenceInUse
            | Rule::ProducedSecret
            | Rule::Unreadable
            | Rule::SharedGateway
            | Rule::StaleSandbox
            | Rule::IgnoredSetting => Action::Warn,
            _ => Action::Deny,
        }
    }
}

/// The whole policy file.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// Action per rule; a rule not listed takes its default (README.md lists them).
    #[serde(default)]
    pub rules: BTreeMap<Rule, Action>,
    /// How sandbox pods are recognised and patched.
    #[serde(default)]
    pub sandbox: SandboxPolicy,
    /// What the cluster view watches.
    #[serde(default)]
    pub watch: WatchPolicy,
    /// What the cluster's OpenShell gateway accepts.
    #[serde(default)]
    pub openshell: OpenShellPolicy,
    /// What the cluster's kagent carries beyond its release.
    #[serde(default)]
    pub kagent: KagentPolicy,
}

/// `openshell:` in the policy file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OpenShellPolicy {
    /// Provider types the gateway's cluster inference accepts, lowercase: kagent registers a
    /// ModelConfig as type `lowercase(spec.provider)`. Newer OpenShell versions may accept more.
    pub inference_provider_types: Vec<String>,
}

impl Default for OpenShellPolicy {
    fn default() -> Self {
        // OpenShell `normalize_inference_provider_type`: four types and the Vertex aliases.
        let types =
            ["openai", "anthropic", "nvidia", "google-vertex-ai", "vertex", "vertex-ai", "google-vertex", "gcp-vertex"];
        Self { inference_provider_types: types.iter().map(|t| t.to_string()).collect() }
    }
}

impl OpenShellPolicy {
    /// True when the gateway serves a ModelConfig of `provider`.
    pub fn serves(&self, provider: &str) -> bool {
        self.inference_provider_types.iter().any(|t| t.eq_ignore_ascii_case(provider))
    }
}

/// `kagent:` in the policy file.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KagentPolicy {
    /// The cluster's kagent carries PR #1964 (a per-harness inference provider attached to the
    /// sandbox, openclaw and nemoclaw only): an explicit base URL then works for those backends,
    /// and the provider annotation names the per-harness record.
    #[serde(rename = "carriesPR1964")]
    pub carries_pr1964: bool,
}

impl Policy {
    /// The action for `rule`. The warning-only rules can be turned off but never made to deny:
    /// an object harness-guard does not watch is not known to be missing, and the mutating
    /// webhook never refuses a pod (an unreadable one is let through unpatched, with a warning).
    pub fn action(&self, rule: Rule) -> Action {
        match self.rules.get(&rule).copied().unwrap_or(rule.default_action()) {
            Action::Deny if rule.warns_at_most() => Action::Warn,
            action => action,
        }
    }
}

/// `sandbox:` in the policy file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SandboxPolicy {
    /// Namespaces where OpenShell creates sandbox pods.
    pub namespaces: Vec<String>,
    /// Containers that get the proxy environment.
    pub containers: Vec<String>,
    /// The sandbox proxy URL.
    pub proxy_url: String,
    /// Variables set to `proxyUrl`.
    pub proxy_vars: Vec<String>,
    /// Hosts that bypass the proxy, before the inference upstreams, the gateway host, the API
    /// server and `noProxyExtra`.
    pub no_proxy: Vec<String>,
    /// Further hosts that bypass the proxy.
    pub no_proxy_extra: Vec<String>,
    /// Variables set to the no-proxy list.
    pub no_proxy_vars: Vec<String>,
    /// Further fixed variables.
    pub extra_env: BTreeMap<String, String>,
    /// Inject the proxy variables at all (the annotations are added either way).
    pub inject_proxy_env: bool,
    /// The Kubernetes API host the supervisor talks to, kept out of the proxy. Not read from the
    /// file: taken from the server's own `KUBERNETES_SERVICE_HOST` (same cluster) at start.
    #[serde(skip)]
    pub api_server_host: Option<String>,
    /// Replace a variable the container already sets to another value (default: keep it, warn).
    pub overwrite: bool,
    /// Annotation that records the expected inference provider.
    pub provider_annotation: String,
    /// Annotation that records the owning harness.
    pub harness_annotation: String,
    /// Secrets a sandbox pod may reference through `secretKeyRef`/`envFrom`.
    pub allowed_secret_refs: Vec<String>,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Self {
            namespaces: strings(&["openshell"]),
            containers: strings(&["agent"]),
            proxy_url: "http://10.200.0.1:3128".to_string(),
            proxy_vars: strings(&["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"]),
            no_proxy: strings(&["127.0.0.1", "localhost", "::1", ".svc", ".cluster.local"]),
            no_proxy_extra: Vec::new(),
            no_proxy_vars: strings(&["NO_PROXY", "no_proxy"]),
            extra_env: BTreeMap::from([("NODE_USE_ENV_PROXY".to_string(), "1".to_string())]),
            inject_proxy_env: true,
            api_server_host: None,
            overwrite: false,
            provider_annotation: super::names::PROVIDER_ANNOTATION.to_string(),
            harness_annotation: super::names::HARNESS_ANNOTATION.to_string(),
            allowed_secret_refs: Vec::new(),
        }
    }
}

/// `watch:` in the policy file: the scope of the cluster view.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WatchPolicy {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// Label selector applied to Secrets and ConfigMaps; empty means all.
    pub label_selector: String,
}

impl WatchPolicy {
    /// True when objects in `namespace` are in scope (a selector still leaves absence unproven).
    pub fn covers(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
    }
}
