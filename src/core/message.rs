//! The user text of a finding, rendered from its data at the edge (admission responses, `check`
//! and `audit` output, Events). Every message names the object, the field and the fix, never a
//! value. `tests/messages.rs` pins the wording.

use super::finding::{Cause, Detail, Finding, Hop, Kind, Refusal, data_key};
use super::names::PLACEHOLDER_PREFIX;
use super::policy::Rule;
use super::verdict::Verdict;

/// The rules whose findings are about a key of a Secret or ConfigMap.
macro_rules! KEY_RULES {
    () => {
        Rule::ModelSecretResolves | Rule::ChannelTokens | Rule::GatewayToken | Rule::AllowedUsersFrom
    };
}

/// The message for `finding`.
pub fn render(f: &Finding) -> String {
    let subject = &f.subject;
    let chain = chain(f);
    let key = data_key(&f.at.field).unwrap_or_default();
    let target = &f.at.object;
    let field = &f.at.field;
    match (f.rule, f.cause, &f.detail) {
        (_, Cause::NotWatched, _) => {
            format!("{chain} is outside the namespaces or selector harness-guard watches; it was not checked.")
        }
        (_, Cause::Pending, Detail::Producer(producer)) => {
            format!("{chain} will be produced by {producer}; key {key:?} cannot be checked until it exists.")
        }
        (_, Cause::Unreadable, detail) => {
            let why = match detail {
                Detail::Error(e) => format!(": {e}"),
                _ => String::new(),
            };
            let crd = match subject.kind {
                Kind::AgentHarness | Kind::ModelConfig => {
                    ", or check that the kagent CRD version is one harness-guard supports"
                }
                _ => "",
            };
            format!("harness-guard cannot read {subject}{why}. Fix the object{crd}.")
        }
        (Rule::ModelConfigRef, _, Detail::BadRef { reference, why }) => format!(
            "{subject}: {field} {reference:?} is not a ModelConfig reference ({why}). \
             Write \"name\" for a ModelConfig in namespace {}, or \"namespace/name\".",
            subject.namespace
        ),
        (Rule::ModelConfigExists, _, _) => {
            format!("{chain} does not exist. Create the ModelConfig, or fix spec.modelConfigRef.")
        }
        (Rule::ModelSecretNamed, Cause::Unset, Detail::NoKeySecret { provider, openshell, both }) => {
            let unset = match (both, field.as_str()) {
                (true, _) => "spec.apiKeySecret and spec.apiKeySecretKey are unset".to_string(),
                (false, field) => format!("{field} is unset"),
            };
            let runtime = if *openshell {
                format!("on OpenShell kagent needs an API key for every provider, {provider} included")
            } else {
                "kagent hands the key to the agent from that Secret".to_string()
            };
            format!(
                "{chain} names no API key Secret ({unset}); {runtime}. \
                 Set spec.apiKeySecret and spec.apiKeySecretKey on the ModelConfig."
            )
        }
        (Rule::ModelSecretNamed, _, Detail::Provider(provider)) => format!(
            "{chain} uses provider {provider}, which kagent's OpenShell runtime does not support. \
             Use another provider for this harness."
        ),
        (Rule::ModelSecretNamed, _, _) => format!(
            "{chain} sets {field}, which kagent's harness path rejects on every runtime. \
             Set spec.apiKeySecret and spec.apiKeySecretKey on the ModelConfig instead."
        ),
        (KEY_RULES!(), Cause::Missing, Detail::Absent) => {
            let fix = match f.rule {
                Rule::ModelSecretResolves => "fix spec.apiKeySecret on the ModelConfig",
                Rule::GatewayToken => "fix spec.substrate.gatewayTokenSecretRef",
                _ => "fix the reference",
            };
            // Substrate reads the key in the harness's namespace, whatever the ModelConfig's.
            let elsewhere = f.via.first().is_some_and(|h| h.to.namespace != target.namespace && f.via.len() > 1);
            let note = if elsewhere {
                " (on Agent Substrate the key is read in the harness's namespace, not the ModelConfig's)"
            } else {
                ""
            };
            format!(
                "{chain} does not exist{note}. Create it in namespace {} with the key {key:?}, or {fix}.",
                target.namespace
            )
        }
        (KEY_RULES!(), Cause::Missing, detail) => {
            let present = match detail {
                Detail::Keys(Some(keys)) if keys.is_empty() => " (keys present: none)".to_string(),
                Detail::Keys(Some(keys)) => format!(" (keys present: {})", keys.join(", ")),
                _ => String::new(),
            };
            let fix = match f.rule {
                Rule::ModelSecretResolves => {
                    "Add the key to the Secret or set spec.apiKeySecretKey on the ModelConfig.".to_string()
                }
                _ => format!("Add the key to the {}, or fix the reference.", target.kind.name()),
            };
            format!("{chain} has no key {key:?}{present}. {fix}")
        }
        (KEY_RULES!(), Cause::Empty, _) => {
            format!("{chain} has key {key:?}, but its value is empty. Put the value in the key.")
        }
        (Rule::ChannelTokens | Rule::AllowedUsersFrom, Cause::Invalid, detail) => {
            let value = match detail {
                Detail::Value(v) => format!(" is {v:?}"),
                _ => " is not a kind kagent reads".to_string(),
            };
            format!("{subject}: {field}{value}; it must be Secret or ConfigMap.")
        }
        (Rule::KeyInEnv, Cause::LiteralKey, Detail::Env { name, secret }) => format!(
            "{subject}: {field} ({name}) holds the model API key from Secret {} as a literal; \
             kagent copies spec.env into the agent's environment verbatim. Remove it: kagent gives the agent the \
             key itself.",
            secret.as_deref().unwrap_or("of its ModelConfig")
        ),
        (Rule::KeyInEnv, _, Detail::Env { name, .. }) => format!(
            "{subject}: {field} ({name}) sets the provider key variable to a literal that is \
             not an OpenShell placeholder; kagent copies spec.env into the sandbox pod verbatim. \
             Remove it, or set it to \"{PLACEHOLDER_PREFIX}{name}\"."
        ),
        (Rule::AllowedDomains, _, Detail::Host(host)) => {
            let model = f.via.last().map(|h| format!(" ({})", h.to)).unwrap_or_default();
            format!(
                "{subject}: LLM host {host}{model} is not in spec.network.allowedDomains; \
                 the sandbox will likely block its calls. Add it there."
            )
        }
        (Rule::PodSecretRef, _, Detail::SecretRef { container, source, key, secret }) => {
            let takes = match key {
                Some(key) => format!("takes key {key:?} of Secret {secret} (secretKeyRef)"),
                None => format!("takes every key of Secret {secret}"),
            };
            format!(
                "{subject}: container {container} {source} {takes}; sandbox pods get credentials only \
                 through OpenShell provider placeholders. Remove the reference, or list the Secret in \
                 sandbox.allowedSecretRefs in the policy."
            )
        }
        (Rule::PodLiteralKey, _, Detail::ContainerEnv { container, var }) => format!(
            "{subject}: container {container} env {var} holds a ModelConfig's API key as a literal value; \
             the real key must never land in a sandbox pod. Remove it: the agent gets a placeholder \
             and the OpenShell proxy resolves it."
        ),
        (Rule::ProxyEnvConflict, _, Detail::ContainerEnv { container, var }) => format!(
            "{subject}: container {container} already sets {var} to another value; left as is \
             (set sandbox.overwrite: true in the policy to replace it)."
        ),
        (Rule::SandboxOwner, Cause::NoOwner, _) => format!(
            "{subject}: no AgentHarness has the sandbox name {:?} (<namespace>-<name> or \
             status.backendRef.id); proxy environment injected, no provider annotation added.",
            subject.name
        ),
        (Rule::SandboxOwner, Cause::SeveralOwners, Detail::Owners(owners)) => format!(
            "{subject}: the sandbox name matches {} AgentHarnesses ({}); proxy environment \
             injected, no provider annotation added.",
            owners.len(),
            owners.join(", ")
        ),
        (Rule::SandboxOwner, _, detail) => {
            let harness = match detail {
                Detail::Harness(h) => h.as_str(),
                _ => "of this sandbox",
            };
            format!(
                "{subject}: AgentHarness {harness} has no ModelConfig harness-guard can read; \
                 no provider annotation added."
            )
        }
        (Rule::SharedGateway, _, Detail::Sharing { same_namespace, more_here, elsewhere }) => {
            let mut who = Vec::new();
            if !same_namespace.is_empty() {
                let more = if *more_here > 0 { format!(" and {more_here} more") } else { String::new() };
                who.push(format!("{}{more}", same_namespace.join(", ")));
            }
            if *elsewhere > 0 {
                let noun = if *elsewhere == 1 { "harness" } else { "harnesses" };
                who.push(format!("{elsewhere} {noun} in other namespaces"));
            }
            format!(
                "{subject}: the OpenShell gateway has one inference route, and live OpenShell harnesses use a \
                 different provider, model or key ({}): kagent sets the route whenever it creates a sandbox, so \
                 the last one created wins and the others run on its key and model. Give them one ModelConfig, \
                 or run them on separate gateways or the substrate runtime.",
                who.join("; ")
            )
        }
        (Rule::StaleSandbox, _, Detail::Dependents { count, .. }) => {
            let (noun, verb) = if *count == 1 { ("harness", "keeps") } else { ("harnesses", "keep") };
            format!(
                "This change to {subject} never reaches running sandboxes (kagent gives the OpenShell gateway the \
                 key and model only when it creates one): {count} live {noun} {verb} the old value until recreated."
            )
        }
        (Rule::ReferenceInUse, _, Detail::Dependents { deleted, count, shown }) => {
            let verb = if *deleted { "Deleting" } else { "This change to" };
            let noun = if *count == 1 { "harness" } else { "harnesses" };
            let mut names = shown.join(", ");
            if *count > shown.len() {
                names.push_str(&format!(" and {} more", count - shown.len()));
            }
            format!("{verb} {subject} breaks {count} {noun}: {names}")
        }
        (Rule::ProviderServed, _, Detail::Unserved { provider, backend, refusal, served }) => {
            let kind = provider.to_ascii_lowercase();
            match refusal {
                Refusal::Gateway => {
                    let fix = if backend == "hermes" {
                        "Use an OpenAI ModelConfig for a hermes harness"
                    } else {
                        "Use an OpenAI or Anthropic ModelConfig for this harness, or run it on the substrate runtime"
                    };
                    format!(
                        "{chain} uses provider {provider}. On OpenShell kagent registers it with the gateway as \
                         inference provider type {kind:?}, which the gateway's cluster inference does not accept (it \
                         accepts {}), so the harness never gets a sandbox. {fix}.",
                        served.join(", ")
                    )
                }
                Refusal::Protocol => format!(
                    "{chain} uses provider {provider}, but {backend} calls inference.local with OpenAI chat \
                     completions, and the gateway's {kind} route serves Anthropic messages only: every call is \
                     answered 400 \"no compatible inference route available\". Use an {} ModelConfig for a {backend} \
                     harness, or the openclaw backend.",
                    served.join(" or ")
                ),
                Refusal::OpenclawMapping => format!(
                    "{chain} uses provider {provider}, which kagent's {backend} bootstrap has no mapping for \
                     (providerAPI), on every runtime. Use another provider for this harness."
                ),
                Refusal::HermesSubstrate => format!(
                    "{chain} uses provider {provider}; on Agent Substrate kagent gives {backend} a provider for {} \
                     only, and with any other its prompts silently produce no output. Use one of those providers.",
                    served.join(", ")
                ),
            }
        }
        (Rule::ExplicitUpstream, _, Detail::Upstream { host, backend, provider }) if backend == "hermes" => format!(
            "{chain} sets {field} (host {host}): {backend} ignores it and calls inference.local, whose gateway \
             provider gets no base URL, so the key goes to {provider}'s public endpoint instead of {host} and every \
             call fails there. Remove {field} and use {provider}'s own key: hermes cannot use a gateway such as \
             LiteLLM on OpenShell."
        ),
        (Rule::ExplicitUpstream, _, Detail::Upstream { host, backend, .. }) => format!(
            "{chain} sets {field} (host {host}): {backend} then calls that host directly with the OpenShell \
             placeholder key, which only a provider attached to the sandbox can resolve, and released kagent \
             attaches none (kagent #1964, #1965): every LLM call fails. Remove {field} and \
             use the provider's own key (a gateway such as LiteLLM cannot work on OpenShell with released kagent), \
             or run the harness on the substrate runtime, or use a kagent that carries #1964 and set \
             kagent.carriesPR1964 in the policy."
        ),
        (Rule::KeyFormat, _, _) if f.via.first().is_some_and(|h| h.field.starts_with("spec.channels")) => format!(
            "{chain} has key {key:?}, whose value holds a line break (a file's trailing newline, most often): \
             kagent hands the token to the agent in the sandbox's exec environment, which OpenShell refuses, so \
             bootstrap never completes. Recreate the {} with --from-literal, or write the file with printf '%s' \
             before --from-file.",
            target.kind.name()
        ),
        (Rule::KeyFormat, _, detail) => {
            let effect = match detail {
                Detail::Backend(b) if b == "openclaw" || b == "nemoclaw" => format!(
                    "kagent hands it to {b} in the sandbox's exec environment, which OpenShell refuses, so \
                     bootstrap never completes"
                ),
                _ => "kagent stores it as is in the gateway's provider record, and every LLM call fails when \
                      the key is sent"
                    .to_string(),
            };
            format!(
                "{chain} has key {key:?}, whose value holds a line break (a file's trailing newline, most often): \
                 {effect}. Recreate the Secret with --from-literal, or write the file with printf '%s' before \
                 --from-file."
            )
        }
        (Rule::IgnoredSetting, _, _) => format!(
            "{chain} sets {field}, which kagent's harness path never reads: it has no effect on this harness. \
             Remove it, or do not rely on it."
        ),
        (Rule::ChannelBinaryData, _, _) => format!(
            "{chain} has key {key:?} in binaryData; kagent reads a ConfigMap's data only, so the token is missing \
             to it and the harness fails. Move the key to data."
        ),
        (Rule::BackendRuntime, _, _) => format!(
            "{subject}: backend hermes has no substrate runtime in kagent v0.9.x (it registers openclaw and \
             nemoclaw only), so the harness stays BackendUnavailable. Run hermes with runtime openshell, use the \
             openclaw backend, or upgrade kagent."
        ),
        (Rule::SubstrateChannelConfigmap, _, _) => format!(
            "{subject}: {field} is ConfigMap; on Agent Substrate only Secret references reach the workload, so the \
             token is dropped while the agent's configuration still expects it, and it fails to start. Put the \
             token in a Secret and reference it with type: Secret."
        ),
        (Rule::WorkloadImageDigest, _, _) => format!(
            "{subject}: {field} is not pinned by digest; kagent refuses an image without a digest (pinImageRef). \
             Write it as repository@sha256:<digest>."
        ),
        (Rule::WorkerPool, _, detail) => {
            let pool = match detail {
                Detail::Value(name) => name.as_str(),
                _ => "",
            };
            format!(
                "{subject}: {field} names WorkerPool {pool:?}, which kagent looks up in the harness's namespace \
                 {ns}, where there is none (kagent's chart creates its default pool in the kagent namespace). \
                 Create the WorkerPool in {ns}, or remove spec.substrate.workerPoolRef to use kagent's default.",
                ns = subject.namespace
            )
        }
        (Rule::ModelName, _, _) => format!(
            "{chain} names no model ({field} is empty); the CRD lets it through, but kagent cannot start the \
             harness without one (the gateway's route and the bootstrap both require a model ID). Set {field} on \
             the ModelConfig."
        ),
        // Every finding the core makes is matched above; this keeps a new one readable.
        (rule, cause, _) => format!("{subject}: {} is {} ({}).", f.at, cause.name(), rule.name()),
    }
}

/// `Kind ns/name: field "value" → Kind ns/name → ...`: the subject and the hops to the finding.
fn chain(f: &Finding) -> String {
    let mut out = f.subject.to_string();
    let mut hops = f.via.iter();
    if let Some(Hop { field, value, to }) = hops.next() {
        out.push_str(": ");
        out.push_str(field);
        if let Some(value) = value {
            out.push_str(&format!(" {value:?}"));
        }
        out.push_str(&format!(" → {to}"));
    }
    for hop in hops {
        out.push_str(&format!(" → {}", hop.to));
    }
    out
}

/// The apiserver drops a warning with any control character and truncates past 256 characters.
pub const MAX_WARNING_CHARS: usize = 256;

/// The denial message of a verdict: one finding per line.
pub fn denial(verdict: &Verdict) -> String {
    verdict.denials.iter().map(render).collect::<Vec<_>>().join("\n")
}

/// A verdict's warnings as the apiserver will pass them on: one line each, at most 256 characters.
pub fn warnings(verdict: &Verdict) -> Vec<String> {
    verdict.warnings.iter().map(|f| warning_line(&render(f))).collect()
}

/// Makes `text` a valid admission warning: control characters become spaces and the text is cut
/// to [`MAX_WARNING_CHARS`] with an ellipsis.
pub fn warning_line(text: &str) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= MAX_WARNING_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_WARNING_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_single_line_and_short() {
        let line = warning_line(&format!("a\nb\tc{}", "x".repeat(400)));
        assert!(!line.chars().any(char::is_control));
        assert_eq!(line.chars().count(), MAX_WARNING_CHARS);
        assert!(line.starts_with("a b c"));
        assert_eq!(warning_line("short"), "short");
    }
}
