//! Rules for `AgentHarness` CREATE and UPDATE: the model credentials must resolve, channel tokens
//! must resolve, and the real key must not ride in `spec.env`.

mod channels;
mod model;
mod substrate;

pub use model::{INFERENCE_LOCAL, key_secret_namespace};

use crate::core::finding::{At, Cause, Detail, Finding, Hop, ObjectRef, data_key};
use crate::core::model::AgentHarness;
use crate::core::names::{PLACEHOLDER_ALIAS_MARKER, PLACEHOLDER_PREFIX, provider_key_env};
use crate::core::policy::{Policy, Rule};
use crate::core::verdict::Verdict;
use crate::core::view::{ClusterView, ValueFacts, ValueSet};

/// What the request does to the harness, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new harness.
    Create,
    /// An update that changes `spec`: judged like a create.
    SpecUpdate,
    /// An update of labels, annotations, finalizers or status: never blocked, only warned.
    MetadataUpdate,
    /// An update of an object that is being deleted (finalizer removal): always allowed.
    Deleting,
    /// A delete: always allowed.
    Delete,
}

/// The verdict on a harness request.
pub fn validate_harness(harness: &AgentHarness, change: Change, view: &impl ClusterView, policy: &Policy) -> Verdict {
    match change {
        Change::Delete | Change::Deleting => Verdict::default(),
        Change::MetadataUpdate => Verdict::warn_only(check_harness(harness, view, policy), policy),
        Change::Create | Change::SpecUpdate => Verdict::judge(check_harness(harness, view, policy), policy),
    }
}

/// Every problem with `harness` against the view, whatever actions the policy gives the rules
/// (its platform settings still count: which providers the gateway accepts, and so on).
pub fn check_harness(harness: &AgentHarness, view: &impl ClusterView, policy: &Policy) -> Vec<Finding> {
    let mut findings = Vec::new();
    let who = harness.object_ref();
    let openshell = harness.runs_on_openshell();
    let mut model = None;

    if let Some(reference) = harness.model_config_ref() {
        model = model::check_model_chain(harness, &who, reference, view, policy, &mut findings);
    }
    check_env(harness, &who, openshell, model.as_ref(), view, &mut findings);
    channels::check_channels(harness, &who, view, &mut findings);
    substrate::check_substrate(harness, &who, view, &mut findings);
    findings
}

/// What the env check needs to know of a resolved model chain.
pub(super) struct ModelKey {
    provider: String,
    secret: String,
    digest: Option<crate::core::view::ValueDigest>,
}

/// Looks the key of `at` up in `set`, pushing a finding when it is missing or empty.
pub(super) fn resolve_key<K>(
    set: &ValueSet<K>,
    who: &ObjectRef,
    via: &[Hop],
    at: At,
    show_keys: bool,
    rule: Rule,
    findings: &mut Vec<Finding>,
) -> Option<ValueFacts> {
    if let Some(producer) = &set.produced_by {
        findings.push(
            Finding::reached(Rule::ProducedSecret, who, via, at, Cause::Pending)
                .with(Detail::Producer(producer.clone())),
        );
        return None;
    }
    let key = data_key(&at.field).unwrap_or_default();
    match set.keys.get(key) {
        None => {
            // Key names of another tenant's objects are not ours to show.
            let present = show_keys.then(|| set.keys.names().map(str::to_string).collect());
            findings.push(Finding::reached(rule, who, via, at, Cause::Missing).with(Detail::Keys(present)));
            None
        }
        // A binaryData key is reported by its caller (kagent does not read it at all).
        Some(facts) if facts.empty && !facts.binary => {
            let facts = facts.clone();
            findings.push(Finding::reached(rule, who, via, at, Cause::Empty));
            Some(facts)
        }
        Some(facts) => Some(facts.clone()),
    }
}

fn check_env(
    harness: &AgentHarness,
    who: &ObjectRef,
    openshell: bool,
    model: Option<&ModelKey>,
    view: &impl ClusterView,
    findings: &mut Vec<Finding>,
) {
    let Some(env) = harness.spec.env.as_deref() else { return };
    let key_var = model.map(|m| provider_key_env(&m.provider));
    for (i, var) in env.iter().enumerate() {
        let Some(literal) = var.value.as_ref() else { continue };
        let name = &var.name;
        let field = || format!("spec.env[{i}]");
        let holds_key = |m: &&ModelKey| m.digest.is_some_and(|d| literal.is_value_of(d, view.digester()));
        if let Some(model) = model.filter(holds_key) {
            let detail = Detail::Env { name: name.clone(), secret: Some(model.secret.clone()) };
            findings.push(Finding::on(Rule::KeyInEnv, who, field(), Cause::LiteralKey).with(detail));
        } else if openshell && key_var.as_deref() == Some(name.as_str()) && !literal.is_placeholder() {
            let detail = Detail::Env { name: name.clone(), secret: None };
            findings.push(Finding::on(Rule::KeyInEnv, who, field(), Cause::NotPlaceholder).with(detail));
        }
    }
}

/// Why `spec.modelConfigRef` is not a ModelConfig reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// `a/b/c`.
    #[error("more than one \"/\"")]
    TooManySlashes,
    /// The namespace part is not a DNS-1123 label.
    #[error("namespace {0:?} is not a DNS-1123 label")]
    Namespace(String),
    /// The name part is not a DNS-1123 subdomain.
    #[error("name {0:?} is not a DNS-1123 name")]
    Name(String),
}

/// Splits `name` or `namespace/name`, checking both parts are DNS-1123 names.
pub fn parse_model_config_ref<'a>(reference: &'a str, default_ns: &'a str) -> Result<(&'a str, &'a str), RefError> {
    let (ns, name) = match reference.split_once('/') {
        None => (default_ns, reference),
        Some((_, rest)) if rest.contains('/') => return Err(RefError::TooManySlashes),
        Some((ns, name)) => {
            if !is_dns1123_label(ns) {
                return Err(RefError::Namespace(ns.to_string()));
            }
            (ns, name)
        }
    };
    if !is_dns1123_subdomain(name) {
        return Err(RefError::Name(name.to_string()));
    }
    Ok((ns, name))
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// True for the three OpenShell placeholder forms (domain README §4.5).
pub fn is_placeholder(value: &str) -> bool {
    let key_ok = |k: &str| !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if let Some(rest) = value.strip_prefix(PLACEHOLDER_PREFIX) {
        // Covers both KEY and v<rev>_KEY: the revisioned form is itself [A-Za-z0-9_]+.
        return key_ok(rest);
    }
    if let Some((prefix, key)) = value.split_once(PLACEHOLDER_ALIAS_MARKER) {
        let prefix_ok = !prefix.is_empty() && prefix.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.~-".contains(&c));
        return prefix_ok && key_ok(key);
    }
    false
}

/// The host of a base URL (`https://host:port/path`, or `host:port` as Ollama allows).
pub fn url_host(url: &str) -> Option<String> {
    let url = url.trim();
    let with_scheme = if url.contains("://") { url.to_string() } else { format!("http://{url}") };
    let uri: http::Uri = with_scheme.parse().ok()?;
    uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
}

/// `allowedDomains` entries match a host exactly or, as `*.example.com`, any subdomain. An entry
/// written as a URL or `host:port` counts as its host, as kagent normalizes it.
fn domain_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    let (wildcard, rest) = match pattern.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, pattern.as_str()),
    };
    let Some(pattern_host) = url_host(rest) else { return false };
    match wildcard {
        true => host.len() > pattern_host.len() && host.ends_with(&format!(".{pattern_host}")),
        false => pattern_host == host,
    }
}
