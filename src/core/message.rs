//! The user text of a finding, rendered from its data at the edge (admission responses, `check`
//! and `audit` output, Events). Every message names the object, the field and the fix, never a
//! value. `tests/messages.rs` pins the wording.

use super::finding::{Cause, Detail, Finding, Hop, Kind, data_key};
use super::names::PLACEHOLDER_PREFIX;
use super::policy::Rule;
use super::verdict::Verdict;

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
            "{chain} sets {field}, which kagent's OpenShell runtime rejects. \
             Set spec.apiKeySecret and spec.apiKeySecretKey on the ModelConfig instead."
        ),
        (Rule::ModelSecretResolves | Rule::ChannelTokens, Cause::Missing, Detail::Absent) => {
            let fix = match f.rule {
                Rule::ModelSecretResolves => "fix spec.apiKeySecret on the ModelConfig",
                _ => "fix the reference",
            };
            format!(
                "{chain} does not exist. Create it in namespace {} with the key {key:?}, or {fix}.",
                target.namespace
            )
        }
        (Rule::ModelSecretResolves | Rule::ChannelTokens, Cause::Missing, detail) => {
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
        (Rule::ModelSecretResolves | Rule::ChannelTokens, Cause::Empty, _) => {
            format!("{chain} has key {key:?}, but its value is empty. Put the value in the key.")
        }
        (Rule::ChannelTokens, _, detail) => {
            let value = match detail {
                Detail::Value(v) => format!(" is {v:?}"),
                _ => " is not a kind kagent reads".to_string(),
            };
            format!("{subject}: {field}{value}; it must be Secret or ConfigMap.")
        }
        (Rule::KeyInEnv, Cause::LiteralKey, Detail::Env { name, secret }) => format!(
            "{subject}: {field} ({name}) holds the model API key from Secret {} as a literal; \
             kagent copies spec.env into the sandbox pod verbatim. Remove it: the agent gets the \
             key through the OpenShell provider placeholder.",
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
        (Rule::ReferenceInUse, _, Detail::Dependents { deleted, count, shown }) => {
            let verb = if *deleted { "Deleting" } else { "This change to" };
            let noun = if *count == 1 { "harness" } else { "harnesses" };
            let mut names = shown.join(", ");
            if *count > shown.len() {
                names.push_str(&format!(" and {} more", count - shown.len()));
            }
            format!("{verb} {subject} breaks {count} {noun}: {names}")
        }
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
