//! Rules for `AgentHarness` CREATE and UPDATE: the model credentials must resolve, channel tokens
//! must resolve, and the real key must not ride in `spec.env`.

use super::finding::{At, Cause, Detail, Finding, Hop, Kind, ObjectRef, data_field, data_key};
use super::model::{AgentHarness, Credential, ModelConfig, ValueSource};
use super::names::{PLACEHOLDER_ALIAS_MARKER, PLACEHOLDER_PREFIX, provider_key_env};
use super::policy::{Policy, Rule};
use super::verdict::Verdict;
use super::view::{ClusterView, Lookup, ValueFacts, ValueSet};

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
        Change::MetadataUpdate => Verdict::warn_only(check_harness(harness, view), policy),
        Change::Create | Change::SpecUpdate => Verdict::judge(check_harness(harness, view), policy),
    }
}

/// Every problem with `harness` against the view, whatever the policy says of it.
pub fn check_harness(harness: &AgentHarness, view: &impl ClusterView) -> Vec<Finding> {
    let mut findings = Vec::new();
    let who = harness.object_ref();
    let openshell = harness.runs_on_openshell();
    let mut model = None;

    if let Some(reference) = harness.spec.model_config_ref.as_deref() {
        model = check_model_chain(harness, &who, reference, openshell, view, &mut findings);
    }
    check_env(harness, &who, openshell, model.as_ref(), view, &mut findings);
    check_channels(harness, &who, view, &mut findings);
    findings
}

/// What the env check needs to know of a resolved model chain.
struct ModelKey {
    provider: String,
    secret: String,
    digest: Option<super::view::ValueDigest>,
}

fn check_model_chain(
    harness: &AgentHarness,
    who: &ObjectRef,
    reference: &str,
    openshell: bool,
    view: &impl ClusterView,
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
    if openshell {
        check_openshell_model(who, &via, &mc, &provider, harness, findings);
    }
    let secret = mc.spec.api_key_secret.as_deref().filter(|s| !s.is_empty());
    let key = mc.spec.api_key_secret_key.as_deref().filter(|s| !s.is_empty());
    let (secret, key) = match (secret, key) {
        (Some(secret), Some(key)) => (secret, key),
        (secret, _) => {
            let field = if secret.is_none() { "spec.apiKeySecret" } else { "spec.apiKeySecretKey" };
            let detail =
                Detail::NoKeySecret { provider: provider.clone(), openshell, both: secret.is_none() && key.is_none() };
            findings
                .push(Finding::reached(Rule::ModelSecretNamed, who, &via, mc_ref.at(field), Cause::Unset).with(detail));
            return Some(ModelKey { provider, secret: String::new(), digest: None });
        }
    };
    let secret_ref = ObjectRef::new(Kind::Secret, mc_ns, secret);
    via.push(Hop { field: "spec.apiKeySecret".to_string(), value: None, to: secret_ref.clone() });
    let at = secret_ref.at(data_field(key));
    let facts = match view.secret(mc_ns, secret) {
        Lookup::Found(set) => resolve_key(&set, who, &via, at, mc_ns == ns, Rule::ModelSecretResolves, findings),
        Lookup::Missing => {
            findings
                .push(Finding::reached(Rule::ModelSecretResolves, who, &via, at, Cause::Missing).with(Detail::Absent));
            None
        }
        Lookup::NotWatched => {
            findings.push(Finding::reached(Rule::NotWatched, who, &via, at, Cause::NotWatched));
            None
        }
    };
    Some(ModelKey {
        provider,
        secret: format!("{mc_ns}/{secret}"),
        digest: facts.filter(|f| !f.empty).map(|f| f.digest),
    })
}

fn check_openshell_model(
    who: &ObjectRef,
    via: &[Hop],
    mc: &ModelConfig,
    provider: &str,
    harness: &AgentHarness,
    findings: &mut Vec<Finding>,
) {
    let mc_ref = &via[via.len() - 1].to;
    if mc.spec.api_key_passthrough == Some(true) {
        let at = mc_ref.at("spec.apiKeyPassthrough");
        findings.push(Finding::reached(Rule::ModelSecretNamed, who, via, at, Cause::Unsupported));
    }
    if provider == "SAPAICore" {
        let at = mc_ref.at("spec.provider");
        findings.push(
            Finding::reached(Rule::ModelSecretNamed, who, via, at, Cause::Unsupported)
                .with(Detail::Provider(provider.to_string())),
        );
    }
    if let Some(host) = mc.base_url().and_then(url_host) {
        let allowed = harness.spec.network.as_ref().and_then(|n| n.allowed_domains.as_deref()).unwrap_or(&[]);
        if !allowed.iter().any(|d| domain_matches(d, &host)) {
            let at = who.at("spec.network.allowedDomains");
            findings
                .push(Finding::reached(Rule::AllowedDomains, who, via, at, Cause::NotAllowed).with(Detail::Host(host)));
        }
    }
}

/// Looks the key of `at` up in `set`, pushing a finding when it is missing or empty.
fn resolve_key<K>(
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
        Some(facts) if facts.empty => {
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
        let field = format!("spec.env[{i}]");
        let holds_key = |m: &&ModelKey| m.digest.is_some_and(|d| literal.is_value_of(d, view.digester()));
        if let Some(model) = model.filter(holds_key) {
            let detail = Detail::Env { name: name.clone(), secret: Some(model.secret.clone()) };
            findings.push(Finding::on(Rule::KeyInEnv, who, field, Cause::LiteralKey).with(detail));
        } else if openshell && key_var.as_deref() == Some(name.as_str()) && !literal.is_placeholder() {
            let detail = Detail::Env { name: name.clone(), secret: None };
            findings.push(Finding::on(Rule::KeyInEnv, who, field, Cause::NotPlaceholder).with(detail));
        }
    }
}

fn check_channels(harness: &AgentHarness, who: &ObjectRef, view: &impl ClusterView, findings: &mut Vec<Finding>) {
    let Some(channels) = harness.spec.channels.as_deref() else { return };
    let ns = harness.namespace();
    for (i, channel) in channels.iter().enumerate() {
        let mut tokens: Vec<(&str, &Option<Credential>)> = Vec::new();
        if let Some(slack) = &channel.slack {
            tokens.push(("slack.botToken", &slack.bot_token));
            tokens.push(("slack.appToken", &slack.app_token));
        }
        if let Some(telegram) = &channel.telegram {
            tokens.push(("telegram.botToken", &telegram.bot_token));
        }
        for (field, credential) in tokens {
            let Some(source) = credential.as_ref().and_then(|c| c.value_from.as_ref()) else { continue };
            let field = format!("spec.channels[{i}].{field}.valueFrom");
            check_value_source(source, ns, who, field, view, findings);
        }
    }
}

fn check_value_source(
    source: &ValueSource,
    ns: &str,
    who: &ObjectRef,
    field: String,
    view: &impl ClusterView,
    findings: &mut Vec<Finding>,
) {
    let ValueSource { type_, name, key } = source;
    let kind = match type_.as_str() {
        "Secret" => Kind::Secret,
        "ConfigMap" => Kind::ConfigMap,
        other => {
            let finding = Finding::on(Rule::ChannelTokens, who, format!("{field}.type"), Cause::Invalid);
            findings.push(finding.with(Detail::Value(other.to_string())));
            return;
        }
    };
    let target = ObjectRef::new(kind, ns, name.as_str());
    let via = [Hop { field, value: None, to: target.clone() }];
    let at = target.at(data_field(key));
    let rule = Rule::ChannelTokens;
    let lookup = match kind {
        Kind::Secret => view.secret(ns, name).map(|set| resolve_key(&set, who, &via, at.clone(), true, rule, findings)),
        _ => view.config_map(ns, name).map(|set| resolve_key(&set, who, &via, at.clone(), true, rule, findings)),
    };
    match lookup {
        Lookup::Found(_) => {}
        Lookup::Missing => findings.push(Finding::reached(rule, who, &via, at, Cause::Missing).with(Detail::Absent)),
        Lookup::NotWatched => findings.push(Finding::reached(Rule::NotWatched, who, &via, at, Cause::NotWatched)),
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

/// `allowedDomains` entries match a host exactly or, as `*.example.com`, any subdomain.
fn domain_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
        None => pattern == host,
    }
}
