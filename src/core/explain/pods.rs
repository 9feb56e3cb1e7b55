//! The sandbox-pod links: which pods belong to the harness, what the webhook would still patch
//! into them (`/mutate` on the pod as it is: the injected variables or annotations it lacks) and
//! what `/validate` would refuse. Env values are compared, never shown.

use std::borrow::Cow;
use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Judgement, Link, Observed, State, Unread};
use crate::core::audit::audit_pod;
use crate::core::model::AgentHarness;
use crate::core::mutate::desired_env;
use crate::core::policy::Policy;
use crate::core::sandbox::{is_sandbox_pod, sandbox_names};
use crate::core::view::ClusterView;

/// True for a sandbox pod of `harness`: an OpenShell sandbox pod in a sandbox namespace, named
/// as the harness's sandbox (`<ns>-<name>` or `status.backendRef.id`: agent-sandbox names the pod
/// after its Sandbox) or annotated with the harness by the webhook.
pub fn is_harness_pod(meta: &ObjectMeta, harness: &AgentHarness, policy: &Policy) -> bool {
    let ns = meta.namespace.as_deref().unwrap_or("");
    if !is_sandbox_pod(meta, ns, &policy.sandbox) {
        return false;
    }
    let name = meta.name.as_deref().unwrap_or("");
    let annotated = meta.annotations.as_ref().and_then(|a| a.get(&policy.sandbox.harness_annotation));
    sandbox_names(harness).any(|s| s == name) || annotated.is_some_and(|a| *a == harness.key())
}

/// One link per sandbox pod found, one for the namespaces that could not be listed, or one
/// saying none was found (or none looked for).
pub(super) fn pod_links(
    harness: &AgentHarness,
    record: Option<&str>,
    verdict: &Judgement,
    view: &impl ClusterView,
    policy: &Policy,
    observed: &Observed,
) -> Vec<Link> {
    let pods: Vec<&(ObjectMeta, PodSpec)> =
        observed.pods.iter().flatten().filter(|(meta, _)| is_harness_pod(meta, harness, policy)).collect();
    let mut links: Vec<Link> =
        pods.iter().map(|(meta, spec)| pod_link(meta, spec, harness, record, view, policy)).collect();
    let denied: Vec<_> = observed.unreadable.iter().filter(|u| matches!(u.what, Unread::Pods(_))).collect();
    if !denied.is_empty() {
        let namespaces: Vec<String> = denied
            .iter()
            .filter_map(|u| match &u.what {
                Unread::Pods(ns) => Some(ns.clone()),
                _ => None,
            })
            .collect();
        let link = Link::new("sandbox-pod", None, State::Unreadable).fact("namespaces", namespaces.join(", "));
        links.push(link.fix(denied.iter().map(|u| u.fix()).collect::<Vec<_>>().join("\n")));
    }
    if !links.is_empty() {
        return links;
    }
    let names = sandbox_names(harness).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(" or ");
    let looked = format!("pod {names} in namespace {}", policy.sandbox.namespaces.join(", "));
    let link = Link::new("sandbox-pod", None, State::Broken).fact("looked for", looked);
    if observed.pods.is_none() {
        let link = Link { state: State::Unchecked, ..link };
        return vec![link.fact("found", "not read: no sandbox pod in the input (a live explain lists them)")];
    }
    let fix = match verdict.allowed {
        false => "harness-guard would refuse this harness, and some of its problems (a provider the gateway \
                  refuses, a missing or malformed key) also keep kagent from creating the sandbox: fix the \
                  broken links above first."
            .to_string(),
        true => "No sandbox pod: kagent has not created the sandbox yet or failed to (see the harness's conditions \
                 and kagent's controller log), or OpenShell creates sandboxes in another namespace (set \
                 sandbox.namespaces in the policy file)."
            .to_string(),
    };
    vec![link.fact("found", "none").fix(fix)]
}

fn pod_link(
    meta: &ObjectMeta,
    spec: &PodSpec,
    harness: &AgentHarness,
    record: Option<&str>,
    view: &impl ClusterView,
    policy: &Policy,
) -> Link {
    let ns = meta.namespace.as_deref().unwrap_or("");
    let name = meta.name.as_deref().unwrap_or("");
    let object = crate::core::finding::ObjectRef::new(crate::core::finding::Kind::Pod, ns, name);
    let report = audit_pod(meta, spec, view, policy);
    let mut link = Link::new("sandbox-pod", Some(object), State::Ok);
    let owner = meta.owner_references.iter().flatten().find(|o| o.controller == Some(true));
    if let Some(owner) = owner {
        link = link.fact("owner", format!("{} {}", owner.kind, owner.name));
    }
    let sandbox = &policy.sandbox;
    for container in spec.containers.iter().filter(|c| sandbox.containers.contains(&c.name)) {
        if !sandbox.inject_proxy_env {
            link = link.fact(format!("proxy env ({})", container.name), "not injected (sandbox.injectProxyEnv: false)");
            continue;
        }
        let desired = desired_env(container, policy);
        link = link.fact(format!("proxy env ({})", container.name), env_summary(container, &desired));
        for (var, value) in desired.iter().filter(|(v, _)| sandbox.no_proxy_vars.iter().any(|n| n == v)) {
            link = link.fact(format!("{var} coverage ({})", container.name), coverage(container, var, value));
        }
    }
    let annotations = meta.annotations.as_ref();
    let shown = |key: &str, wanted: Option<&str>| {
        let have = annotations.and_then(|a| a.get(key)).map(String::as_str);
        match (have, wanted) {
            (None, Some(w)) => format!("missing (expected {w})"),
            (None, None) => "missing".to_string(),
            (Some(h), Some(w)) if h == w => format!("{h} (as expected)"),
            (Some(h), Some(w)) => format!("{h} (expected {w})"),
            (Some(h), None) => h.to_string(),
        }
    };
    let key = harness.key();
    link = link
        .fact(format!("annotation {}", sandbox.harness_annotation), shown(&sandbox.harness_annotation, Some(&key)))
        .fact(format!("annotation {}", sandbox.provider_annotation), shown(&sandbox.provider_annotation, record));
    let mut fix = Vec::new();
    if !report.patch.is_empty() {
        // Operation and path only (the values are the webhook's own), repeats counted.
        let mut ops: Vec<(String, usize)> = Vec::new();
        for op in &report.patch {
            let op = serde_json::to_value(op).expect("a patch operation serializes");
            let op = format!("{} {}", op["op"].as_str().unwrap_or(""), op["path"].as_str().unwrap_or(""));
            match ops.last_mut() {
                Some((last, n)) if *last == op => *n += 1,
                _ => ops.push((op, 1)),
            }
        }
        let ops: Vec<String> =
            ops.into_iter().map(|(op, n)| if n == 1 { op } else { format!("{op} ({n} times)") }).collect();
        link = Link { state: State::Broken, ..link }.fact("/mutate would patch", ops.join(", "));
        fix.push(
            "The pod was admitted without harness-guard's /mutate (not installed then, or failurePolicy Ignore let \
             it through): delete the pod; the agent-sandbox controller recreates it from its Sandbox, through the \
             webhook."
                .to_string(),
        );
    }
    link.findings = report.findings;
    link.fix = (!fix.is_empty()).then(|| fix.join("\n"));
    link
}

/// How the container's variables compare with what the webhook injects: names only.
fn env_summary(container: &Container, desired: &[(&str, Cow<'_, str>)]) -> String {
    let (mut missing, mut other, mut from) = (Vec::new(), Vec::new(), Vec::new());
    for (name, value) in desired {
        match container.env.iter().flatten().find(|e| e.name == *name) {
            None => missing.push(*name),
            Some(e) if e.value_from.is_some() => from.push(*name),
            Some(e) if e.value.as_deref().unwrap_or("") != value => other.push(*name),
            Some(_) => {}
        }
    }
    if missing.is_empty() && other.is_empty() && from.is_empty() {
        return format!("as injected ({} variables)", desired.len());
    }
    let parts = [("missing", missing), ("another value", other), ("from valueFrom", from)];
    let parts: Vec<String> =
        parts.iter().filter(|(_, v)| !v.is_empty()).map(|(what, v)| format!("{what}: {}", v.join(", "))).collect();
    parts.join("; ")
}

/// Which of the hosts the webhook keeps out of the proxy the container's `var` leaves out. The
/// hosts are the webhook's own list, never the container's value.
fn coverage(container: &Container, var: &str, desired: &str) -> String {
    let Some(have) = container.env.iter().flatten().find(|e| e.name == var).and_then(|e| e.value.as_deref()) else {
        return "unset".to_string();
    };
    let have: BTreeSet<&str> = have.split(',').map(str::trim).collect();
    let wanted: Vec<&str> = desired.split(',').filter(|h| !h.is_empty()).collect();
    let left_out: Vec<&str> = wanted.iter().copied().filter(|h| !have.contains(h)).collect();
    match left_out.is_empty() {
        true => format!("covers the {} hosts harness-guard keeps out of the proxy", wanted.len()),
        false => format!("leaves out {}", left_out.join(", ")),
    }
}
