//! Keep the real key out of sandbox pods: no Secret references and no literal model key.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::finding::{Cause, Detail, Finding, Kind, ObjectRef};
use super::policy::{Policy, Rule};
use super::sandbox::is_sandbox_pod;
use super::verdict::Verdict;
use super::view::ClusterView;

/// The validating verdict for a pod CREATE. Other pods, and sandbox pods on any other
/// operation (env is immutable after creation), are allowed untouched.
pub fn enforce_pod(
    meta: &ObjectMeta,
    spec: &PodSpec,
    namespace: &str,
    view: &impl ClusterView,
    policy: &Policy,
) -> Verdict {
    if !is_sandbox_pod(meta, namespace, &policy.sandbox) {
        return Verdict::default();
    }
    let pod = ObjectRef::new(Kind::Pod, namespace, meta.name.as_deref().unwrap_or(""));
    let init = spec.init_containers.iter().flatten().enumerate().map(|(i, c)| (format!("spec.initContainers[{i}]"), c));
    let main = spec.containers.iter().enumerate().map(|(i, c)| (format!("spec.containers[{i}]"), c));
    let findings = init.chain(main).flat_map(|(path, c)| check_container(c, &path, &pod, view, policy)).collect();
    Verdict::judge(findings, policy)
}

fn check_container(
    c: &Container,
    path: &str,
    pod: &ObjectRef,
    view: &impl ClusterView,
    policy: &Policy,
) -> Vec<Finding> {
    let allowed = |secret: &str| policy.sandbox.allowed_secret_refs.iter().any(|s| s == secret);
    let mut findings = Vec::new();
    for (i, var) in c.env.iter().flatten().enumerate() {
        let secret_ref = var.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref());
        if let Some(r) = secret_ref.filter(|r| !allowed(&r.name)) {
            let detail = Detail::SecretRef {
                container: c.name.clone(),
                source: format!("env {}", var.name),
                key: Some(r.key.clone()),
                secret: r.name.clone(),
            };
            let field = format!("{path}.env[{i}].valueFrom.secretKeyRef");
            findings.push(Finding::on(Rule::PodSecretRef, pod, field, Cause::NotAllowed).with(detail));
        }
        let literal = var.value.as_deref().filter(|v| !v.trim().is_empty());
        if literal.is_some_and(|v| view.is_model_key(&view.digester().digest(v.as_bytes()))) {
            let detail = Detail::ContainerEnv { container: c.name.clone(), var: var.name.clone() };
            let field = format!("{path}.env[{i}].value");
            findings.push(Finding::on(Rule::PodLiteralKey, pod, field, Cause::LiteralKey).with(detail));
        }
    }
    for (i, from) in c.env_from.iter().flatten().enumerate() {
        if let Some(r) = from.secret_ref.as_ref().filter(|r| !allowed(&r.name)) {
            let detail = Detail::SecretRef {
                container: c.name.clone(),
                source: format!("envFrom[{i}]"),
                key: None,
                secret: r.name.clone(),
            };
            let field = format!("{path}.envFrom[{i}].secretRef");
            findings.push(Finding::on(Rule::PodSecretRef, pod, field, Cause::NotAllowed).with(detail));
        }
    }
    findings
}
