//! The sandbox pod patch: proxy environment on the agent container, provider and harness
//! annotations on the pod. Explicit RFC 6902 operations against the request object as sent, so
//! fields the typed Pod does not know are never dropped; idempotent by construction.

use std::borrow::Cow;
use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, ReplaceOperation};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::finding::{Cause, Detail, Finding, Kind, ObjectRef};
use super::model::AgentHarness;
use super::names::{OPENSHELL_ENDPOINT_ENV, inference_provider_name, inference_upstream, sandbox_name};
use super::policy::{Policy, Rule};
use super::sandbox::{Owner, is_sandbox_pod, owner_of};
use super::validate::{parse_model_config_ref, url_host};
use super::verdict::Verdict;
use super::view::{ClusterView, Lookup};

/// The mutating verdict for a pod CREATE: a patch for sandbox pods, nothing for any other pod.
pub fn mutate_pod(
    meta: &ObjectMeta,
    spec: &PodSpec,
    namespace: &str,
    view: &impl ClusterView,
    policy: &Policy,
) -> Verdict {
    let sandbox = &policy.sandbox;
    if !is_sandbox_pod(meta, namespace, sandbox) {
        return Verdict::default();
    }
    let name = meta.name.as_deref().unwrap_or("");
    let pod = ObjectRef::new(Kind::Pod, namespace, name);
    let mut patch = Vec::new();
    let mut findings = Vec::new();
    for (i, container) in spec.containers.iter().enumerate() {
        if sandbox.inject_proxy_env && sandbox.containers.contains(&container.name) {
            env_ops(i, container, policy, &pod, &mut patch, &mut findings);
        }
    }
    let wanted = wanted_annotations(name, &pod, view, policy, &mut findings);
    annotation_ops(meta.annotations.as_ref(), wanted, &mut patch);
    let mut verdict = Verdict::warn_only(findings, policy);
    verdict.patch = patch;
    verdict
}

/// The variables a sandbox container should carry, in order.
///
/// The container's PID 1 is the OpenShell supervisor: it resets these variables on the agent it
/// starts (OpenShell always runs kagent's sandboxes in proxy mode), so what is injected here
/// reaches the supervisor itself and processes started beside it (`kubectl exec`). The
/// supervisor's inference router reads `HTTPS_PROXY`/`NO_PROXY` from the environment: `NO_PROXY`
/// therefore covers every upstream a cluster inference route can use (the gateway's route may
/// change after the pod exists), the gateway, the Kubernetes API and in-cluster names, so that the
/// supervisor's own calls never go into the sandbox's proxy.
pub fn desired_env<'p>(container: &Container, policy: &'p Policy) -> Vec<(&'p str, Cow<'p, str>)> {
    let sandbox = &policy.sandbox;
    // Borrowed from the policy, the one host read from the container aside: this runs for every
    // sandbox container, and the policy's strings outlive the patch.
    let endpoint = env_value(container, OPENSHELL_ENDPOINT_ENV).and_then(url_host);
    let types = policy.openshell.inference_provider_types.iter();
    let upstreams = types.filter_map(|t| inference_upstream(t));
    let mut hosts: Vec<&str> = sandbox.no_proxy.iter().map(String::as_str).collect();
    let later = upstreams
        .chain(endpoint.as_deref())
        .chain(sandbox.api_server_host.as_deref())
        .chain(sandbox.no_proxy_extra.iter().map(String::as_str));
    for host in later {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let no_proxy = hosts.join(",");
    let proxies = sandbox.proxy_vars.iter().map(|v| (v.as_str(), Cow::Borrowed(sandbox.proxy_url.as_str())));
    let bypass = sandbox.no_proxy_vars.iter().map(|v| (v.as_str(), Cow::Owned(no_proxy.clone())));
    let extra = sandbox.extra_env.iter().map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str())));
    proxies.chain(bypass).chain(extra).collect()
}

fn env_value<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container.env.iter().flatten().find(|e| e.name == name).and_then(|e| e.value.as_deref())
}

fn env_ops(
    index: usize,
    container: &Container,
    policy: &Policy,
    pod: &ObjectRef,
    patch: &mut Vec<PatchOperation>,
    findings: &mut Vec<Finding>,
) {
    let sandbox = &policy.sandbox;
    let desired = desired_env(container, policy);
    let Some(existing) = container.env.as_ref() else {
        let all: Vec<Value> = desired.into_iter().map(|(n, v)| env_entry(n, v)).collect();
        patch.push(PatchOperation::Add(AddOperation { path: env_path(index, None), value: Value::Array(all) }));
        return;
    };
    for (name, value) in desired {
        match existing.iter().position(|e| e.name == name) {
            None => {
                let path = env_path(index, Some(format_args!("-")));
                patch.push(PatchOperation::Add(AddOperation { path, value: env_entry(name, value) }));
            }
            Some(j) if is_literal(&existing[j], &value) => {}
            Some(j) if sandbox.overwrite => {
                let path = env_path(index, Some(format_args!("{j}")));
                patch.push(PatchOperation::Replace(ReplaceOperation { path, value: env_entry(name, value) }));
            }
            Some(j) => {
                let detail = Detail::ContainerEnv { container: container.name.clone(), var: name.to_string() };
                let field = format!("spec.containers[{index}].env[{j}]");
                findings.push(Finding::on(Rule::ProxyEnvConflict, pod, field, Cause::Conflict).with(detail));
            }
        }
    }
}

/// An env entry, `{"name": .., "value": ..}`, the value moved in rather than copied.
fn env_entry(name: &str, value: Cow<'_, str>) -> Value {
    let mut entry = serde_json::Map::new();
    entry.insert("name".to_string(), Value::String(name.to_string()));
    entry.insert("value".to_string(), Value::String(value.into_owned()));
    Value::Object(entry)
}

/// `/spec/containers/{index}/env`, then `tail`: numbers and `-`, nothing to escape. One string,
/// sized once; jsonptr's `from_tokens` grows its string token by token, on every sandbox pod.
fn env_path(index: usize, tail: Option<std::fmt::Arguments<'_>>) -> PointerBuf {
    let text = match tail {
        Some(tail) => format!("/spec/containers/{index}/env/{tail}"),
        None => format!("/spec/containers/{index}/env"),
    };
    PointerBuf::parse(text).expect("a pointer of numbers and plain names")
}

fn is_literal(var: &EnvVar, value: &str) -> bool {
    var.value_from.is_none() && var.value.as_deref().unwrap_or("") == value
}

fn wanted_annotations(
    pod_name: &str,
    pod: &ObjectRef,
    view: &impl ClusterView,
    policy: &Policy,
    findings: &mut Vec<Finding>,
) -> BTreeMap<String, String> {
    let sandbox = &policy.sandbox;
    let mut wanted = BTreeMap::new();
    let harness = match owner_of(pod_name, view) {
        Owner::One(harness) => harness,
        Owner::None => {
            findings.push(Finding::on(Rule::SandboxOwner, pod, "metadata.name", Cause::NoOwner));
            return wanted;
        }
        Owner::Several(keys) => {
            let finding = Finding::on(Rule::SandboxOwner, pod, "metadata.name", Cause::SeveralOwners);
            findings.push(finding.with(Detail::Owners(keys)));
            return wanted;
        }
    };
    wanted.insert(sandbox.harness_annotation.clone(), harness.key());
    let provider = harness
        .model_config_ref()
        .and_then(|r| parse_model_config_ref(r, harness.namespace()).ok())
        .and_then(|(ns, name)| match view.model_config(ns, name) {
            Lookup::Found(mc) => Some(mc.provider().to_string()),
            _ => None,
        });
    match provider {
        Some(provider) => {
            wanted.insert(sandbox.provider_annotation.clone(), provider_record(&harness, &provider, policy));
        }
        None => {
            let at = harness.object_ref().at("spec.modelConfigRef");
            let finding = Finding::reached(Rule::SandboxOwner, pod, &[], at, Cause::Missing);
            findings.push(finding.with(Detail::Harness(harness.key())));
        }
    }
    wanted
}

/// The OpenShell inference provider record that serves `harness`, whose ModelConfig names
/// `provider`. Released kagent serves every OpenShell harness from the gateway's one record, named
/// `lowercase(provider)` (kagent v0.9.12 `openclaw/modelconfig.go` `GatewayProviderRecordName`,
/// used by `openshell/translate.go`); only kagent carrying #1964 attaches a per-harness record,
/// and only for openclaw and nemoclaw.
pub fn provider_record(harness: &AgentHarness, provider: &str, policy: &Policy) -> String {
    if policy.kagent.carries_pr1964 && harness.is_openclaw() {
        inference_provider_name(&sandbox_name(harness.namespace(), harness_name(harness)), provider)
    } else {
        provider.to_ascii_lowercase()
    }
}

fn harness_name(harness: &AgentHarness) -> &str {
    harness.metadata.name.as_deref().unwrap_or("")
}

fn annotation_ops(
    existing: Option<&BTreeMap<String, String>>,
    wanted: BTreeMap<String, String>,
    patch: &mut Vec<PatchOperation>,
) {
    if wanted.is_empty() {
        return;
    }
    let Some(existing) = existing else {
        let path = PointerBuf::from_tokens(["metadata", "annotations"]);
        patch.push(PatchOperation::Add(AddOperation { path, value: json!(wanted) }));
        return;
    };
    for (key, value) in wanted {
        let path = PointerBuf::from_tokens(["metadata", "annotations", key.as_str()]);
        match existing.get(&key) {
            Some(current) if *current == value => {}
            Some(_) => patch.push(PatchOperation::Replace(ReplaceOperation { path, value: json!(value) })),
            None => patch.push(PatchOperation::Add(AddOperation { path, value: json!(value) })),
        }
    }
}
