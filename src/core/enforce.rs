//! Keep the real key out of sandbox pods: no Secret references and no literal model key.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::policy::{Policy, Rule};
use super::sandbox::is_sandbox_pod;
use super::verdict::{Finding, Verdict};
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
    let pod = format!("Pod {namespace}/{}", meta.name.as_deref().unwrap_or(""));
    let containers = spec.init_containers.iter().flatten().chain(&spec.containers);
    let findings = containers.flat_map(|c| check_container(c, &pod, view, policy)).collect();
    Verdict::judge(findings, policy)
}

fn check_container(c: &Container, pod: &str, view: &impl ClusterView, policy: &Policy) -> Vec<Finding> {
    let allowed = |secret: &str| policy.sandbox.allowed_secret_refs.iter().any(|s| s == secret);
    let fix = "sandbox pods get credentials only through OpenShell provider placeholders. \
               Remove the reference, or list the Secret in sandbox.allowedSecretRefs in the policy.";
    let mut findings = Vec::new();
    for var in c.env.iter().flatten() {
        let secret_ref = var.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref());
        if let Some(r) = secret_ref.filter(|r| !allowed(&r.name)) {
            findings.push(Finding::new(
                Rule::PodSecretRef,
                format!(
                    "{pod}: container {} env {} takes key {:?} of Secret {} (secretKeyRef); {fix}",
                    c.name, var.name, r.key, r.name
                ),
            ));
        }
        let literal = var.value.as_deref().filter(|v| !v.trim().is_empty());
        if literal.is_some_and(|v| view.is_model_key(&view.digester().digest(v.as_bytes()))) {
            findings.push(Finding::new(
                Rule::PodLiteralKey,
                format!(
                    "{pod}: container {} env {} holds a ModelConfig's API key as a literal value; the real \
                     key must never land in a sandbox pod. Remove it: the agent gets a placeholder and \
                     the OpenShell proxy resolves it.",
                    c.name, var.name
                ),
            ));
        }
    }
    for (i, from) in c.env_from.iter().flatten().enumerate() {
        if let Some(r) = from.secret_ref.as_ref().filter(|r| !allowed(&r.name)) {
            findings.push(Finding::new(
                Rule::PodSecretRef,
                format!("{pod}: container {} envFrom[{i}] takes every key of Secret {}; {fix}", c.name, r.name),
            ));
        }
    }
    findings
}
