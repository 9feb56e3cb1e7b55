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
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 15] = [
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
            | Rule::Unreadable => Action::Warn,
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
}

impl Policy {
    /// The action for `rule`. The warning-only rules can be turned off but never made to deny:
    /// an object harness-guard does not watch is not known to be missing, and the mutating
    /// webhook never refuses a pod (an unreadable one is let through unpatched, with a warning).
    pub fn action(&self, rule: Rule) -> Action {
        let action = self.rules.get(&rule).copied().unwrap_or(rule.default_action());
        match (rule.default_action(), action) {
            (Action::Warn, Action::Deny) if !matches!(rule, Rule::AllowedDomains | Rule::ReferenceInUse) => {
                Action::Warn
            }
            _ => action,
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
    /// Hosts that bypass the proxy, before the gateway host and `noProxyExtra`.
    pub no_proxy: Vec<String>,
    /// Further hosts that bypass the proxy.
    pub no_proxy_extra: Vec<String>,
    /// Variables set to the no-proxy list.
    pub no_proxy_vars: Vec<String>,
    /// Further fixed variables.
    pub extra_env: BTreeMap<String, String>,
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
            no_proxy: strings(&["127.0.0.1", "localhost", "::1"]),
            no_proxy_extra: Vec::new(),
            no_proxy_vars: strings(&["NO_PROXY", "no_proxy"]),
            extra_env: BTreeMap::from([("NODE_USE_ENV_PROXY".to_string(), "1".to_string())]),
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
