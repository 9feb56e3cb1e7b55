//! Keep the real key out of sandbox pods: no Secret references and no literal model key.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::finding::{Cause, Detail, Finding, Kind, ObjectRef};
use super::model::AgentHarness;
use super::policy::{Policy, Rule};
use super::sandbox::{Owner, is_sandbox_pod, owner_of};
use super::validate::parse_model_config_ref;
use super::verdict::Verdict;
use super::view::{ClusterView, Lookup, ValueDigest};

/// The validating verdict for a sandbox pod's CREATE, or the UPDATE that adds an ephemeral
/// container: every container, init container and ephemeral container. Other pods are allowed
/// untouched.
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
    let name = meta.name.as_deref().unwrap_or("");
    let pod = ObjectRef::new(Kind::Pod, namespace, name);
    // A literal is compared with the key of the pod's own harness. Without one known owner it is
    // compared with every model key, but only warned about: another team's dummy key ("ollama")
    // must not refuse an innocent pod.
    let keys = match owner_of(name, view) {
        Owner::One(harness) => Keys::Own(model_key_digest(&harness, view)),
        _ => Keys::Any,
    };
    let init = spec.init_containers.iter().flatten().enumerate().map(|(i, c)| (format!("spec.initContainers[{i}]"), c));
    let main = spec.containers.iter().enumerate().map(|(i, c)| (format!("spec.containers[{i}]"), c));
    // `kubectl debug` adds an ephemeral container, which can carry env and envFrom like any other.
    let ephemeral: Vec<(String, Container)> = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            let (name, env, env_from) = (c.name.clone(), c.env.clone(), c.env_from.clone());
            (format!("spec.ephemeralContainers[{i}]"), Container { name, env, env_from, ..Default::default() })
        })
        .collect();
    let findings: Vec<Finding> = init
        .chain(main)
        .chain(ephemeral.iter().map(|(path, c)| (path.clone(), c)))
        .flat_map(|(path, c)| check_container(c, &path, &pod, &keys, view, policy))
        .collect();
    let (guessed, judged): (Vec<_>, Vec<_>) =
        findings.into_iter().partition(|f| f.rule == Rule::PodLiteralKey && matches!(keys, Keys::Any));
    let mut verdict = Verdict::judge(judged, policy);
    verdict.warnings.extend(Verdict::warn_only(guessed, policy).warnings);
    verdict
}

/// Which key digests a literal in the pod is compared with.
enum Keys {
    /// The pod's own harness's model key (none if it has none readable).
    Own(Option<ValueDigest>),
    /// Every ModelConfig's key: the owner is unknown or ambiguous.
    Any,
}

impl Keys {
    fn holds(&self, digest: &ValueDigest, view: &impl ClusterView) -> bool {
        match self {
            Keys::Own(own) => own.as_ref() == Some(digest),
            Keys::Any => view.is_model_key(digest),
        }
    }
}

/// The digest of the model key `harness` runs with on OpenShell, if the view holds it.
fn model_key_digest(harness: &AgentHarness, view: &impl ClusterView) -> Option<ValueDigest> {
    let (ns, name) = parse_model_config_ref(harness.model_config_ref()?, harness.namespace()).ok()?;
    let Lookup::Found(mc) = view.model_config(ns, name) else { return None };
    let (secret, key) = (mc.spec.api_key_secret.as_deref()?, mc.spec.api_key_secret_key.as_deref()?);
    let Lookup::Found(set) = view.secret(ns, secret) else { return None };
    set.keys.get(key).filter(|f| !f.empty).map(|f| f.digest)
}

fn check_container(
    c: &Container,
    path: &str,
    pod: &ObjectRef,
    keys: &Keys,
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
        if literal.is_some_and(|v| keys.holds(&view.digester().digest(v.as_bytes()), view)) {
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
