//! Rules for `AgentHarness` CREATE and UPDATE: the model credentials must resolve, channel tokens
//! must resolve, and the real key must not ride in `spec.env`.

use super::model::{AgentHarness, Credential, ModelConfig, ValueSource};
use super::names::{PLACEHOLDER_ALIAS_MARKER, PLACEHOLDER_PREFIX, provider_key_env};
use super::policy::{Policy, Rule};
use super::verdict::{Finding, Verdict};
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
    let who = format!("AgentHarness {}", harness.key());
    let openshell = harness.runs_on_openshell();
    let mut model = None;

    if let Some(reference) = harness.spec.model_config_ref.as_deref() {
        model = check_model_chain(harness, reference, &who, openshell, view, &mut findings);
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
    reference: &str,
    who: &str,
    openshell: bool,
    view: &impl ClusterView,
    findings: &mut Vec<Finding>,
) -> Option<ModelKey> {
    let ns = harness.namespace();
    let (mc_ns, mc_name) = match parse_model_config_ref(reference, ns) {
        Ok(parts) => parts,
        Err(why) => {
            findings.push(Finding::new(
                Rule::ModelConfigRef,
                format!(
                    "{who}: spec.modelConfigRef {reference:?} is not a ModelConfig reference ({why}). \
                     Write \"name\" for a ModelConfig in namespace {ns}, or \"namespace/name\"."
                ),
            ));
            return None;
        }
    };
    let chain = format!("{who}: spec.modelConfigRef {reference:?} → ModelConfig {mc_ns}/{mc_name}");
    let mc = match view.model_config(mc_ns, mc_name) {
        Lookup::Found(mc) => mc,
        Lookup::Missing => {
            findings.push(Finding::new(
                Rule::ModelConfigExists,
                format!("{chain} does not exist. Create the ModelConfig, or fix spec.modelConfigRef."),
            ));
            return None;
        }
        Lookup::NotWatched => {
            findings.push(not_watched(&chain));
            return None;
        }
    };
    let provider = mc.provider().to_string();
    if openshell {
        check_openshell_model(&chain, &mc, &provider, harness, findings);
    }
    let secret = mc.spec.api_key_secret.as_deref().filter(|s| !s.is_empty());
    let key = mc.spec.api_key_secret_key.as_deref().filter(|s| !s.is_empty());
    let (secret, key) = match (secret, key) {
        (Some(secret), Some(key)) => (secret, key),
        (secret, key) => {
            let unset = match (secret, key) {
                (None, None) => "spec.apiKeySecret and spec.apiKeySecretKey are unset",
                (None, _) => "spec.apiKeySecret is unset",
                _ => "spec.apiKeySecretKey is unset",
            };
            let runtime = if openshell {
                format!("on OpenShell kagent needs an API key for every provider, {provider} included")
            } else {
                "kagent hands the key to the agent from that Secret".to_string()
            };
            findings.push(Finding::new(
                Rule::ModelSecretNamed,
                format!(
                    "{chain} names no API key Secret ({unset}); {runtime}. \
                     Set spec.apiKeySecret and spec.apiKeySecretKey on the ModelConfig."
                ),
            ));
            return Some(ModelKey { provider, secret: String::new(), digest: None });
        }
    };
    let secret_chain = format!("{chain} → Secret {mc_ns}/{secret}");
    let facts = match view.secret(mc_ns, secret) {
        Lookup::Found(set) => {
            resolve_key(&set, key, &secret_chain, mc_ns == ns, Rule::ModelSecretResolves, findings, || {
                "Add the key to the Secret or set spec.apiKeySecretKey on the ModelConfig.".to_string()
            })
        }
        Lookup::Missing => {
            findings.push(Finding::new(
                Rule::ModelSecretResolves,
                format!(
                    "{secret_chain} does not exist. Create it in namespace {mc_ns} with the key {key:?}, \
                     or fix spec.apiKeySecret on the ModelConfig."
                ),
            ));
            None
        }
        Lookup::NotWatched => {
            findings.push(not_watched(&secret_chain));
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
    chain: &str,
    mc: &ModelConfig,
    provider: &str,
    harness: &AgentHarness,
    findings: &mut Vec<Finding>,
) {
    if mc.spec.api_key_passthrough == Some(true) {
        findings.push(Finding::new(
            Rule::ModelSecretNamed,
            format!(
                "{chain} sets spec.apiKeyPassthrough, which kagent's OpenShell runtime rejects. \
                 Set spec.apiKeySecret and spec.apiKeySecretKey on the ModelConfig instead."
            ),
        ));
    }
    if provider == "SAPAICore" {
        findings.push(Finding::new(
            Rule::ModelSecretNamed,
            format!(
                "{chain} uses provider SAPAICore, which kagent's OpenShell runtime does not support. \
                 Use another provider for this harness."
            ),
        ));
    }
    if let Some(host) = mc.base_url().and_then(url_host) {
        let allowed = harness.spec.network.as_ref().and_then(|n| n.allowed_domains.as_deref()).unwrap_or(&[]);
        if !allowed.iter().any(|d| domain_matches(d, &host)) {
            findings.push(Finding::new(
                Rule::AllowedDomains,
                format!(
                    "AgentHarness {}: LLM host {host} (ModelConfig {}) is not in spec.network.allowedDomains; \
                     the sandbox will likely block its calls. Add it there.",
                    harness.key(),
                    mc.key()
                ),
            ));
        }
    }
}

/// Looks `key` up in `set`, pushing a finding when it is missing or empty.
fn resolve_key<K>(
    set: &ValueSet<K>,
    key: &str,
    chain: &str,
    show_keys: bool,
    rule: Rule,
    findings: &mut Vec<Finding>,
    fix: impl FnOnce() -> String,
) -> Option<ValueFacts> {
    if let Some(producer) = &set.produced_by {
        findings.push(Finding::new(
            Rule::ProducedSecret,
            format!("{chain} will be produced by {producer}; key {key:?} cannot be checked until it exists."),
        ));
        return None;
    }
    match set.keys.get(key) {
        None => {
            // Key names of another tenant's objects are not ours to show.
            let present = if show_keys { format!(" (keys present: {})", set.key_list()) } else { String::new() };
            findings.push(Finding::new(rule, format!("{chain} has no key {key:?}{present}. {}", fix())));
            None
        }
        Some(facts) if facts.empty => {
            findings.push(Finding::new(
                rule,
                format!("{chain} has key {key:?}, but its value is empty. Put the value in the key."),
            ));
            Some(facts.clone())
        }
        Some(facts) => Some(facts.clone()),
    }
}

fn not_watched(chain: &str) -> Finding {
    Finding::new(
        Rule::NotWatched,
        format!("{chain} is outside the namespaces or selector harness-guard watches; it was not checked."),
    )
}

fn check_env(
    harness: &AgentHarness,
    who: &str,
    openshell: bool,
    model: Option<&ModelKey>,
    view: &impl ClusterView,
    findings: &mut Vec<Finding>,
) {
    let Some(env) = harness.spec.env.as_deref() else { return };
    let key_var = model.map(|m| provider_key_env(&m.provider));
    for (i, var) in env.iter().enumerate() {
        let Some(value) = var.value.as_deref() else { continue };
        let name = &var.name;
        // Digest only when there is a key to compare with: this is on the admission path.
        let holds_key = |m: &&ModelKey| {
            m.digest.is_some_and(|d| !value.trim().is_empty() && view.digester().digest(value.as_bytes()) == d)
        };
        if let Some(model) = model.filter(holds_key) {
            findings.push(Finding::new(
                Rule::KeyInEnv,
                format!(
                    "{who}: spec.env[{i}] ({name}) holds the model API key from Secret {} as a literal; \
                     kagent copies spec.env into the sandbox pod verbatim. Remove it: the agent gets the \
                     key through the OpenShell provider placeholder.",
                    model.secret
                ),
            ));
        } else if openshell && key_var.as_deref() == Some(name.as_str()) && !is_placeholder(value) {
            findings.push(Finding::new(
                Rule::KeyInEnv,
                format!(
                    "{who}: spec.env[{i}] ({name}) sets the provider key variable to a literal that is \
                     not an OpenShell placeholder; kagent copies spec.env into the sandbox pod verbatim. \
                     Remove it, or set it to \"{PLACEHOLDER_PREFIX}{name}\"."
                ),
            ));
        }
    }
}

fn check_channels(harness: &AgentHarness, who: &str, view: &impl ClusterView, findings: &mut Vec<Finding>) {
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
            let field = format!("{who}: spec.channels[{i}].{field}.valueFrom");
            check_value_source(source, ns, &field, view, findings);
        }
    }
}

fn check_value_source(
    source: &ValueSource,
    ns: &str,
    field: &str,
    view: &impl ClusterView,
    findings: &mut Vec<Finding>,
) {
    let ValueSource { type_, name, key } = source;
    let chain = format!("{field} → {type_} {ns}/{name}");
    let fix = || format!("Add the key to the {type_}, or fix the reference.");
    let missing = || {
        Finding::new(
            Rule::ChannelTokens,
            format!("{chain} does not exist. Create it in namespace {ns} with the key {key:?}, or fix the reference."),
        )
    };
    match type_.as_str() {
        "Secret" => match view.secret(ns, name) {
            Lookup::Found(set) => {
                resolve_key(&set, key, &chain, true, Rule::ChannelTokens, findings, fix);
            }
            Lookup::Missing => findings.push(missing()),
            Lookup::NotWatched => findings.push(not_watched(&chain)),
        },
        "ConfigMap" => match view.config_map(ns, name) {
            Lookup::Found(set) => {
                resolve_key(&set, key, &chain, true, Rule::ChannelTokens, findings, fix);
            }
            Lookup::Missing => findings.push(missing()),
            Lookup::NotWatched => findings.push(not_watched(&chain)),
        },
        other => findings.push(Finding::new(
            Rule::ChannelTokens,
            format!("{field}.type is {other:?}; it must be Secret or ConfigMap."),
        )),
    }
}

/// Splits `name` or `namespace/name`, checking both parts are DNS-1123 names.
pub fn parse_model_config_ref<'a>(reference: &'a str, default_ns: &'a str) -> Result<(&'a str, &'a str), String> {
    let (ns, name) = match reference.split_once('/') {
        None => (default_ns, reference),
        Some((_, rest)) if rest.contains('/') => return Err("more than one \"/\"".to_string()),
        Some((ns, name)) => {
            if !is_dns1123_label(ns) {
                return Err(format!("namespace {ns:?} is not a DNS-1123 label"));
            }
            (ns, name)
        }
    };
    if !is_dns1123_subdomain(name) {
        return Err(format!("name {name:?} is not a DNS-1123 name"));
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
