//! The model chain: `spec.modelConfigRef` → ModelConfig → key Secret, judged as the harness's
//! runtime and backend will use it (domain README §10.1, §10.3).

use super::{ModelKey, parse_model_config_ref, resolve_key, url_host};
use crate::core::finding::{Cause, Detail, Finding, Hop, Kind, ObjectRef, Refusal, data_field};
use crate::core::index::{OtherRoutes, route_id};
use crate::core::model::{AgentHarness, ModelConfig, Runtime};
use crate::core::names::inference_upstream;
use crate::core::policy::{Policy, Rule};
use crate::core::view::{ClusterView, Lookup};

/// The base URL openclaw is given when the ModelConfig sets none: the one path the gateway serves.
pub const INFERENCE_LOCAL: &str = "https://inference.local/v1";

/// The providers hermes serves on Agent Substrate; kagent notes that others "silently produce no
/// output".
const HERMES_SUBSTRATE_PROVIDERS: [&str; 3] = ["OpenAI", "Anthropic", "Gemini"];

/// Harnesses of the same namespace a shared-gateway warning names before it counts.
const NAMES_SHOWN: usize = 3;

/// Providers kagent's openclaw bootstrap has no mapping for (`providerAPI`), on every runtime.
const OPENCLAW_UNMAPPED: [&str; 2] = ["SAPAICore", "Foundry"];

/// Judges the chain from `reference`; returns what the env check needs of the key.
pub(super) fn check_model_chain(
    harness: &AgentHarness,
    who: &ObjectRef,
    reference: &str,
    view: &impl ClusterView,
    policy: &Policy,
    findings: &mut Vec<Finding>,
) -> Option<ModelKey> {
    let ns = harness.namespace();
    let (mc_ns, mc_name) = match parse_model_config_ref(reference, ns) {
        Ok(parts) => parts,
        Err(why) => {
            findings.push(
                Finding::on(Rule::ModelConfigRef, who, "spec.modelConfigRef", Cause::Invalid)
                    .with(Detail::BadRef { reference: reference.to_string(), why: why.to_string() }),
            );
            return None;
        }
    };
    let mc_ref = ObjectRef::new(Kind::ModelConfig, mc_ns, mc_name);
    let mut via =
        vec![Hop { field: "spec.modelConfigRef".to_string(), value: Some(reference.to_string()), to: mc_ref.clone() }];
    let mc = match view.model_config(mc_ns, mc_name) {
        Lookup::Found(mc) => mc,
        Lookup::Missing => {
            findings.push(Finding::reached(Rule::ModelConfigExists, who, &via, mc_ref.whole(), Cause::Missing));
            return None;
        }
        Lookup::NotWatched => {
            findings.push(Finding::reached(Rule::NotWatched, who, &via, mc_ref.whole(), Cause::NotWatched));
            return None;
        }
    };
    let provider = mc.provider().to_string();
    let runtime = harness.runtime();
    if !check_provider(harness, who, &via, &mc, policy, findings) && runtime == Runtime::OpenShell {
        // No sandbox is ever created: what else the ModelConfig holds does not matter yet, and
        // advice about its key ("add one") would lead into this same failure.
        return None;
    }
    check_settings(harness, who, &via, &mc, policy, findings);
    let secret = mc.spec.api_key_secret.as_deref().filter(|s| !s.is_empty());
    let key = mc.spec.api_key_secret_key.as_deref().filter(|s| !s.is_empty());
    let (secret, key) = match (secret, key) {
        (Some(secret), Some(key)) => (secret, key),
        (secret, _) => {
            let field = if secret.is_none() { "spec.apiKeySecret" } else { "spec.apiKeySecretKey" };
            let openshell = runtime == Runtime::OpenShell;
            let both = secret.is_none() && key.is_none();
            let detail = Detail::NoKeySecret { provider: provider.clone(), openshell, both };
            findings
                .push(Finding::reached(Rule::ModelSecretNamed, who, &via, mc_ref.at(field), Cause::Unset).with(detail));
            return Some(ModelKey { provider, secret: String::new(), digest: None });
        }
    };
    // OpenShell: kagent reads the key in the ModelConfig's namespace and registers it with the
    // gateway. Substrate: the workload takes it by secretKeyRef, which resolves in the harness's
    // (the ActorTemplate's) namespace: the same Secret name and key must exist there.
    let secret_ns = key_secret_namespace(harness, mc_ns);
    let secret_ref = ObjectRef::new(Kind::Secret, secret_ns, secret);
    via.push(Hop { field: "spec.apiKeySecret".to_string(), value: None, to: secret_ref.clone() });
    let at = secret_ref.at(data_field(key));
    let facts = match view.secret(secret_ns, secret) {
        Lookup::Found(set) => {
            resolve_key(&set, who, &via, at.clone(), secret_ns == ns, Rule::ModelSecretResolves, findings)
        }
        Lookup::Missing => {
            findings.push(
                Finding::reached(Rule::ModelSecretResolves, who, &via, at.clone(), Cause::Missing).with(Detail::Absent),
            );
            None
        }
        Lookup::NotWatched => {
            findings.push(Finding::reached(Rule::NotWatched, who, &via, at.clone(), Cause::NotWatched));
            None
        }
    };
    let digest = facts.as_ref().filter(|f| !f.empty).map(|f| f.digest);
    if let (Runtime::OpenShell, Some(digest)) = (runtime, digest) {
        let route = route_id(&provider, mc.spec.model.as_deref(), &digest);
        check_shared_gateway(harness, who, route, view, policy, findings);
    }
    if runtime == Runtime::OpenShell && facts.as_ref().is_some_and(|f| f.line_break && !f.empty) {
        let detail = Detail::Backend(harness.backend().to_string());
        findings.push(Finding::reached(Rule::KeyFormat, who, &via, at, Cause::Invalid).with(detail));
    }
    Some(ModelKey {
        provider,
        secret: format!("{secret_ns}/{secret}"),
        digest: facts.filter(|f| !f.empty).map(|f| f.digest),
    })
}

/// The namespace the key Secret of a harness's ModelConfig (in `mc_ns`) is read in: the
/// ModelConfig's on OpenShell (kagent reads it and registers it with the gateway), the harness's on
/// Agent Substrate (the workload's `secretKeyRef` resolves in the ActorTemplate's namespace).
pub fn key_secret_namespace<'a>(harness: &'a AgentHarness, mc_ns: &'a str) -> &'a str {
    if harness.runtime() == Runtime::OpenShell { mc_ns } else { harness.namespace() }
}

/// `provider-served`: the provider is one the runtime and backend can serve. False if not.
fn check_provider(
    harness: &AgentHarness,
    who: &ObjectRef,
    via: &[Hop],
    mc: &ModelConfig,
    policy: &Policy,
    findings: &mut Vec<Finding>,
) -> bool {
    let provider = mc.provider();
    let backend = harness.backend();
    let strings = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let refused = match harness.runtime() {
        Runtime::OpenShell if !policy.openshell.serves(provider) => {
            Some((Refusal::Gateway, policy.openshell.inference_provider_types.clone()))
        }
        // hermes speaks OpenAI chat completions to inference.local; an anthropic route serves
        // Anthropic messages only, and the router answers 400 (OpenShell l7/inference.rs).
        Runtime::OpenShell if backend == "hermes" && provider.eq_ignore_ascii_case("anthropic") => {
            Some((Refusal::Protocol, strings(&["OpenAI"])))
        }
        _ if harness.is_openclaw() && OPENCLAW_UNMAPPED.contains(&provider) => {
            Some((Refusal::OpenclawMapping, Vec::new()))
        }
        // kagent v0.9.x has no hermes substrate backend at all: backend-runtime says so.
        Runtime::Substrate if backend == "hermes" && !HERMES_SUBSTRATE_PROVIDERS.contains(&provider) => {
            Some((Refusal::HermesSubstrate, strings(&HERMES_SUBSTRATE_PROVIDERS)))
        }
        _ => None,
    };
    let Some((refusal, served)) = refused else { return true };
    let mc_ref = &via[via.len() - 1].to;
    let detail = Detail::Unserved { provider: provider.to_string(), backend: backend.to_string(), refusal, served };
    let at = mc_ref.at("spec.provider");
    findings.push(Finding::reached(Rule::ProviderServed, who, via, at, Cause::Unsupported).with(detail));
    false
}

/// The ModelConfig's other settings, as the runtime uses them.
fn check_settings(
    harness: &AgentHarness,
    who: &ObjectRef,
    via: &[Hop],
    mc: &ModelConfig,
    policy: &Policy,
    findings: &mut Vec<Finding>,
) {
    let mc_ref = &via[via.len() - 1].to;
    let openshell = harness.runs_on_openshell();
    if mc.spec.api_key_passthrough == Some(true) {
        // Refused on the harness path of every runtime (ModelConfigAPIKeyEnvVar).
        let at = mc_ref.at("spec.apiKeyPassthrough");
        findings.push(Finding::reached(Rule::ModelSecretNamed, who, via, at, Cause::Unsupported));
    }
    if mc.spec.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
        // The CRD lets "" through; the gateway route ("model_id is required") and the bootstrap
        // (requiredModelID) do not.
        findings.push(Finding::reached(Rule::ModelName, who, via, mc_ref.at("spec.model"), Cause::Empty));
    }
    for field in mc.ignored_settings() {
        findings.push(Finding::reached(Rule::IgnoredSetting, who, via, mc_ref.at(field), Cause::Ignored));
    }
    let own_endpoint = |url: &str| {
        // hermes ignores the URL: the provider's own public endpoint is what the route uses anyway.
        harness.backend() == "hermes" && url_host(url).as_deref() == inference_upstream(mc.provider())
    };
    let upstream = mc
        .base_url_field()
        .filter(|(_, url)| url.trim().trim_end_matches('/') != INFERENCE_LOCAL && !own_endpoint(url));
    if let (true, Some((field, url))) = (openshell, upstream) {
        // kagent carrying #1964 attaches a provider for openclaw/nemoclaw; hermes ignores the URL
        // either way and sends the key to the provider's public endpoint.
        let fixed = policy.kagent.carries_pr1964 && harness.is_openclaw();
        if !fixed {
            let detail = Detail::Upstream {
                host: url_host(url).unwrap_or_else(|| "?".to_string()),
                backend: harness.backend().to_string(),
                provider: mc.provider().to_string(),
            };
            let at = mc_ref.at(field);
            findings.push(Finding::reached(Rule::ExplicitUpstream, who, via, at, Cause::Unsupported).with(detail));
        }
    }
    // Where openclaw reaches an explicit upstream (kagent carrying #1964), it does so through the
    // sandbox's egress policy; elsewhere the upstream is refused above and egress is moot.
    let reached = policy.kagent.carries_pr1964 && harness.is_openclaw();
    if let (true, Some(host)) = (openshell && reached, upstream.and_then(|(_, url)| url_host(url))) {
        let allowed = harness.spec.network.as_ref().and_then(|n| n.allowed_domains.as_deref()).unwrap_or(&[]);
        if !allowed.iter().any(|d| super::domain_matches(d, &host)) {
            let at = who.at("spec.network.allowedDomains");
            findings
                .push(Finding::reached(Rule::AllowedDomains, who, via, at, Cause::NotAllowed).with(Detail::Host(host)));
        }
    }
}

/// `shared-gateway`: one provider record per type and one cluster route per gateway (kagent
/// `SetClusterInference` at each sandbox creation): live OpenShell harnesses whose ModelConfigs
/// differ in provider, model or key overwrite each other, the last created wins. Looked up in the
/// index: the cost does not grow with the cluster.
fn check_shared_gateway(
    harness: &AgentHarness,
    who: &ObjectRef,
    route: u64,
    view: &impl ClusterView,
    policy: &Policy,
    findings: &mut Vec<Finding>,
) {
    let me = (harness.namespace().to_string(), harness.metadata.name.clone().unwrap_or_default());
    let served = |provider: &str| policy.openshell.serves(provider);
    let OtherRoutes { here, more_here, elsewhere } = view.gateway_routes(route, &me, &served, NAMES_SHOWN);
    if here.is_empty() && elsewhere == 0 {
        return;
    }
    let mut same_namespace: Vec<String> = here.into_iter().map(|(ns, name)| format!("{ns}/{name}")).collect();
    same_namespace.sort();
    let detail = Detail::Sharing { same_namespace, more_here, elsewhere };
    findings.push(Finding::on(Rule::SharedGateway, who, "spec.modelConfigRef", Cause::Shared).with(detail));
}
