//! The links that are one object each (harness, ModelConfig, key Secret), the inference provider
//! record, the verdict and the Events: their facts and the state those facts alone give them. The
//! webhook's findings are added afterwards ([`super::explain`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Judgement, Link, Observed, ReportSeen, State, Unread, Unreadable};
use crate::core::finding::ObjectRef;
use crate::core::model::{AgentHarness, ModelConfig, Runtime};
use crate::core::policy::Policy;
use crate::core::sandbox::sandbox_names;
use crate::core::validate::{INFERENCE_LOCAL, url_host};
use crate::core::view::{ClusterView, Lookup};

pub(super) fn harness_link(harness: &AgentHarness, observed: &Observed) -> Link {
    let runtime = match harness.runtime() {
        Runtime::OpenShell => "openshell (kagent v0.9.3 to v0.9.12)",
        Runtime::SubstrateV09 => "substrate (spec.runtime, kagent v0.9.x)",
        Runtime::Substrate => "substrate (spec.substrate, kagent v0.10 and later)",
    };
    let or_unset = |s: Option<&str>| s.filter(|s| !s.is_empty()).unwrap_or("unset").to_string();
    let mut link = Link::new("harness", Some(harness.object_ref()), State::Ok)
        .fact("runtime", runtime)
        .fact("backend", or_unset(harness.spec.backend.as_deref()))
        .fact("modelConfigRef", or_unset(harness.model_config_ref()));
    if harness.runs_on_openshell() {
        link = link.fact(
            "sandbox",
            sandbox_names(harness).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", "),
        );
    }
    match &observed.conditions {
        None => link.fact("conditions", "not read (offline input)"),
        Some(c) if c.is_empty() => link.fact("conditions", "none: kagent has not reported on it"),
        Some(conditions) => conditions.iter().fold(link, |link, c| {
            let mut value = format!("{} ({})", c.status, c.reason);
            if !c.message.is_empty() {
                value.push_str(&format!(": {}", c.message));
            }
            link.fact(format!("condition {}", c.type_), value)
        }),
    }
}

pub(super) fn model_link<'a>(
    harness: &AgentHarness,
    mc: Option<&(ObjectRef, Lookup<Arc<ModelConfig>>)>,
    policy: &Policy,
    unreadable: &impl Fn(&ObjectRef) -> Option<&'a Unreadable>,
) -> Link {
    let Some((object, lookup)) = mc else {
        let link = Link::new("model-config", None, State::Unchecked);
        return match harness.model_config_ref() {
            None => link
                .fact("reached", "no: spec.modelConfigRef is unset, so kagent bootstraps no model")
                .fix("Set spec.modelConfigRef on the AgentHarness to the ModelConfig its agent should use."),
            Some(_) => link.fact("reached", "no: spec.modelConfigRef is not a ModelConfig reference (see harness)"),
        };
    };
    let link = Link::new("model-config", Some(object.clone()), State::Ok);
    if let Some(u) = unreadable(object) {
        return Link { state: State::Unreadable, ..link }.fact("exists", "unknown").fix(u.fix());
    }
    let config = match lookup {
        Lookup::Found(config) => config,
        Lookup::Missing => return link.fact("exists", "no"),
        Lookup::NotWatched => return link.fact("exists", "unknown: outside what harness-guard watches"),
    };
    let spec = &config.spec;
    let provider = config.provider();
    let named = match (spec.api_key_secret.as_deref(), spec.api_key_secret_key.as_deref()) {
        (Some(s), Some(k)) if !s.is_empty() && !k.is_empty() => format!("Secret {s}, key {k}"),
        _ => "none".to_string(),
    };
    let base_url = match (config.base_url_field(), harness.runs_on_openshell()) {
        (Some((field, url)), _) => format!("host {} ({field})", url_host(url).unwrap_or_else(|| "?".into())),
        (None, true) => format!("none: the agent calls {INFERENCE_LOCAL}, served by the gateway's route"),
        (None, false) => "none: the provider's default endpoint".to_string(),
    };
    let mut link = link
        .fact("exists", "yes")
        .fact("provider", provider)
        .fact("model", spec.model.as_deref().filter(|m| !m.trim().is_empty()).unwrap_or("unset"))
        .fact("base URL", base_url)
        .fact("API key", named);
    if harness.runs_on_openshell() {
        let served = match policy.openshell.serves(provider) {
            true => format!("yes: the OpenShell gateway accepts type {}", provider.to_ascii_lowercase()),
            false => format!(
                "no: the OpenShell gateway accepts types {} (policy openshell.inferenceProviderTypes)",
                policy.openshell.inference_provider_types.join(", ")
            ),
        };
        link = link.fact("served", served);
    }
    link
}

pub(super) fn secret_link<'a>(
    harness: &AgentHarness,
    mc: Option<&(ObjectRef, Lookup<Arc<ModelConfig>>)>,
    key: Option<&(ObjectRef, String)>,
    view: &impl ClusterView,
    unreadable: &impl Fn(&ObjectRef) -> Option<&'a Unreadable>,
) -> Link {
    let Some((object, key)) = key else {
        let why = match mc {
            None => "no: no ModelConfig is referenced",
            Some((_, Lookup::Found(_))) => "no: the ModelConfig names no Secret and key (see model-config)",
            Some(_) => "no: the ModelConfig was not read (see model-config)",
        };
        return Link::new("secret", None, State::Unchecked).fact("reached", why);
    };
    let link = Link::new("secret", Some(object.clone()), State::Ok);
    if let Some(u) = unreadable(object) {
        return Link { state: State::Unreadable, ..link }.fact("exists", "unknown").fix(u.fix());
    }
    let mut link = match harness.runs_on_openshell() {
        true => link.fact("read in", format!("namespace {} (the ModelConfig's: kagent reads it)", object.namespace)),
        false => link.fact(
            "read in",
            format!("namespace {} (the harness's: the workload's secretKeyRef resolves there)", object.namespace),
        ),
    };
    let set = match view.secret(&object.namespace, &object.name) {
        Lookup::Found(set) => set,
        Lookup::Missing => return link.fact("exists", "no"),
        Lookup::NotWatched => return link.fact("exists", "unknown: outside what harness-guard watches"),
    };
    if let Some(producer) = &set.produced_by {
        return link.fact("exists", format!("not yet: {producer} will produce it"));
    }
    link = link.fact("exists", "yes");
    // Key names of another tenant's objects are not shown, as in the webhook's messages.
    if object.namespace == harness.namespace() {
        link = link.fact("keys", set.key_list());
    }
    let value = match set.keys.get(key) {
        None => "missing".to_string(),
        Some(f) if f.empty => "present, empty".to_string(),
        Some(f) if f.line_break => "present, holds a line break (CR or LF)".to_string(),
        Some(_) => "present, not empty, one line".to_string(),
    };
    link.fact(format!("key {key}"), value)
}

pub(super) fn provider_link(
    harness: &AgentHarness,
    config: Option<&ModelConfig>,
    record: Option<&str>,
    policy: &Policy,
) -> Link {
    let link = Link::new("inference-provider", None, State::Unchecked);
    let (Some(config), Some(record)) = (config, record) else {
        return link.fact("record", "unknown: the ModelConfig was not read");
    };
    let per_harness = policy.kagent.carries_pr1964 && harness.is_openclaw();
    let model = config.spec.model.as_deref().unwrap_or("");
    let link = link
        .fact("record", record)
        .fact("type", if per_harness { "generic".to_string() } else { config.provider().to_ascii_lowercase() })
        .fact("kept in", "OpenShell's database, which needs gateway credentials: not checked");
    if !per_harness && !policy.openshell.serves(config.provider()) {
        // Nothing to look for: the gateway refuses the type, and model-config says so.
        return link.fact("registered", format!("never: the gateway accepts no type {record} (see model-config)"));
    }
    if per_harness {
        link.fact("attached", "to this harness's sandbox (kagent carrying #1964)").fix(format!(
            "Not checked by harness-guard. With OpenShell gateway credentials: openshell provider get {record}"
        ))
    } else {
        link.fact("route", format!("the gateway's one cluster route: provider {record}, model {model}")).fix(format!(
            "Not checked by harness-guard. With OpenShell gateway credentials: openshell provider get {record}; \
             openshell inference get (the route should name provider {record} and model {model})"
        ))
    }
}

pub(super) fn verdict_link(
    harness: &AgentHarness,
    verdict: &Judgement,
    unread: &BTreeSet<ObjectRef>,
    observed: &Observed,
) -> Link {
    let today = match verdict.allowed {
        true => "would admit it".to_string(),
        false => format!("would refuse it ({} denial{})", verdict.denials, if verdict.denials == 1 { "" } else { "s" }),
    };
    let mut link = Link::new("verdict", Some(harness.object_ref()), State::Ok)
        .fact("webhook today", today)
        .fact("warnings", verdict.warnings.to_string());
    if !unread.is_empty() {
        let names: Vec<String> = unread.iter().map(ToString::to_string).collect();
        link = link.fact("judged without", format!("{} (not readable)", names.join(", ")));
    }
    if observed.read.is_some() && harness.runs_on_openshell() {
        link = link.fact("not judged", "shared-gateway: it needs every harness of the cluster (harness-guard audit)");
    }
    match (verdict.allowed, unread.is_empty()) {
        (false, _) => Link { state: State::Broken, ..link }.fix(
            "harness-guard would refuse this harness if it were created now: fix the broken links above, then explain it again.",
        ),
        (true, false) => Link { state: State::Unchecked, ..link }
            .fix("Judged without the links that could not be read: explain it with permissions that read them."),
        (true, true) => link,
    }
}

pub(super) fn events_link(observed: &Observed) -> Link {
    let link = Link::new("events", None, State::Ok);
    if let Some(u) = observed.unreadable.iter().find(|u| matches!(u.what, Unread::Events(_))) {
        return Link { state: State::Unreadable, ..link }.fix(u.fix());
    }
    match &observed.events {
        None => Link { state: State::Unchecked, ..link }.fact("events", "not read (offline input)"),
        Some(events) if events.is_empty() => link.fact("events", "none about this harness"),
        Some(events) => events.iter().fold(link, |link, e| {
            link.fact(format!("{} {}", e.type_, e.reason), format!("{} by {}: {}", e.time, e.reporter, e.note))
        }),
    }
}

/// The continuous audit's OpenReports results for the harness: what Policy Reporter shows of it.
/// Information only: the verdict link already judges the harness as it is now.
pub(super) fn report_link(observed: &Observed) -> Link {
    use crate::core::openreports::{Outcome, REPORT_NAME};
    let link = Link::new("report", None, State::Ok);
    if let Some(u) = observed.unreadable.iter().find(|u| matches!(u.what, Unread::Report(_))) {
        return Link { state: State::Unreadable, ..link }.fix(u.fix());
    }
    match &observed.report {
        None => Link { state: State::Unchecked, ..link }.fact("report", "not read (offline input)"),
        Some(ReportSeen::NotInstalled) => link.fact("report", "OpenReports CRDs not installed: none written"),
        Some(ReportSeen::Missing) => Link { state: State::Unchecked, ..link }
            .fact("report", format!("no Report {REPORT_NAME} in the namespace"))
            .fix("harness-guard writes it from its Lease holder when the CRDs exist and openreports.enabled is true; check its logs for `cannot write the report`."),
        Some(ReportSeen::Results(results)) => {
            let passed = results.iter().filter(|r| r.result == Outcome::Pass).count();
            let link = link.fact("passed", format!("{passed} checks of the model chain"));
            results.iter().filter(|r| r.result != Outcome::Pass).fold(link, |link, r| {
                let since = r.timestamp.map(|t| format!(" (since {})", stamp(t.seconds))).unwrap_or_default();
                let outcome = serde_json::to_value(r.result).ok().and_then(|v| v.as_str().map(String::from));
                link.fact(format!("{} {}", outcome.unwrap_or_default(), r.policy), format!("{}{since}", r.message))
            })
        }
    }
}

/// Seconds since the epoch as RFC 3339.
fn stamp(seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(seconds).map(|t| t.to_string()).unwrap_or_else(|_| seconds.to_string())
}
