//! Channel tokens and the Telegram allow-list source: each `valueFrom` must resolve in the
//! harness's namespace to a key kagent reads (domain README §10.1 item 7, §10.3).

use super::resolve_key;
use crate::core::finding::{At, Cause, Detail, Finding, Hop, Kind, ObjectRef, data_field};
use crate::core::model::{AgentHarness, Credential, Runtime, ValueSource};
use crate::core::policy::Rule;
use crate::core::view::{ClusterView, Lookup, ValueFacts};

/// Judges every `valueFrom` of `spec.channels`.
pub(super) fn check_channels(
    harness: &AgentHarness,
    who: &ObjectRef,
    view: &impl ClusterView,
    findings: &mut Vec<Finding>,
) {
    let Some(channels) = harness.spec.channels.as_deref() else { return };
    let substrate = harness.runtime() != Runtime::OpenShell;
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
            if substrate && source.type_ == "ConfigMap" {
                // Substrate keeps only secretKeyRef env on the workload: the token never arrives,
                // while openclaw.json still names it, and the gateway fails to start.
                let finding =
                    Finding::on(Rule::SubstrateChannelConfigmap, who, format!("{field}.type"), Cause::Unsupported);
                findings.push(finding);
                continue;
            }
            let facts =
                check_value_source(source, harness.namespace(), who, field, Rule::ChannelTokens, view, findings);
            // OpenShell: kagent hands channel tokens to the agent in the exec environment, which
            // refuses a line break (OpenShell grpc/validation.rs L51-58), for both backends.
            if let (false, Some((facts, at, via))) = (substrate, facts)
                && facts.line_break
                && !facts.empty
            {
                findings.push(Finding::reached(Rule::KeyFormat, who, &via, at, Cause::Invalid));
            }
        }
        // kagent resolves the allow-list on every runtime and fails without it (telegramAllowFrom;
        // K-0912 openshell/channels/credentials.go L45, L67).
        let allow_lists = [
            ("telegram", channel.telegram.as_ref().and_then(|t| t.allowed_user_ids_from.as_ref())),
            ("slack.hermes", channel.slack.as_ref().and_then(|s| s.hermes.as_ref()?.allowed_user_ids_from.as_ref())),
        ];
        for (path, source) in allow_lists {
            let Some(source) = source else { continue };
            let field = format!("spec.channels[{i}].{path}.allowedUserIDsFrom");
            check_value_source(source, harness.namespace(), who, field, Rule::AllowedUsersFrom, view, findings);
        }
    }
}

/// One `valueFrom` (`{type, name, key}`) in namespace `ns`, judged by `rule`; the facts of the
/// value, where it is and how it was reached, when it resolved.
fn check_value_source(
    source: &ValueSource,
    ns: &str,
    who: &ObjectRef,
    field: String,
    rule: Rule,
    view: &impl ClusterView,
    findings: &mut Vec<Finding>,
) -> Option<(ValueFacts, At, Vec<Hop>)> {
    let ValueSource { type_, name, key } = source;
    let kind = match type_.as_str() {
        "Secret" => Kind::Secret,
        "ConfigMap" => Kind::ConfigMap,
        other => {
            let finding = Finding::on(rule, who, format!("{field}.type"), Cause::Invalid);
            findings.push(finding.with(Detail::Value(other.to_string())));
            return None;
        }
    };
    let target = ObjectRef::new(kind, ns, name.as_str());
    let via = [Hop { field, value: None, to: target.clone() }];
    let at = target.at(data_field(key));
    let lookup = match kind {
        Kind::Secret => view.secret(ns, name).map(|set| resolve_key(&set, who, &via, at.clone(), true, rule, findings)),
        _ => view.config_map(ns, name).map(|set| resolve_key(&set, who, &via, at.clone(), true, rule, findings)),
    };
    match lookup {
        // kagent reads a ConfigMap's `.data` only: a key in `binaryData` is missing to it.
        Lookup::Found(Some(facts)) if facts.binary => {
            findings.push(Finding::reached(Rule::ChannelBinaryData, who, &via, at, Cause::Unsupported));
            None
        }
        Lookup::Found(facts) => facts.map(|f| (f, at, via.to_vec())),
        Lookup::Missing => {
            findings.push(Finding::reached(rule, who, &via, at, Cause::Missing).with(Detail::Absent));
            None
        }
        Lookup::NotWatched => {
            findings.push(Finding::reached(Rule::NotWatched, who, &via, at, Cause::NotWatched));
            None
        }
    }
}
