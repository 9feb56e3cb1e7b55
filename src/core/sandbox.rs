//! Which pods are OpenShell sandbox pods, and which AgentHarness a sandbox pod belongs to.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::model::AgentHarness;
use super::names::{SANDBOX_GROUP, SANDBOX_ID_ANNOTATION, SANDBOX_KIND};
use super::policy::SandboxPolicy;
use super::view::ClusterView;

/// True for an OpenShell sandbox pod: the `openshell.io/sandbox-id` annotation, a controller
/// owner of kind `Sandbox` in `agents.x-k8s.io`, and a configured sandbox namespace. kagent's own
/// SandboxAgent pods have the owner but not the annotation, and are left alone.
pub fn is_sandbox_pod(meta: &ObjectMeta, namespace: &str, policy: &SandboxPolicy) -> bool {
    let annotated = meta.annotations.as_ref().is_some_and(|a| a.contains_key(SANDBOX_ID_ANNOTATION));
    let owned = meta.owner_references.iter().flatten().any(|o| {
        o.controller == Some(true)
            && o.kind == SANDBOX_KIND
            && o.api_version.split_once('/').map(|(g, _)| g) == Some(SANDBOX_GROUP)
    });
    annotated && owned && policy.namespaces.iter().any(|n| n == namespace)
}

/// The harness a sandbox pod belongs to, or why there is none.
#[derive(Debug)]
pub enum Owner {
    /// Exactly one harness matches.
    One(Arc<AgentHarness>),
    /// No harness matches.
    None,
    /// Several harnesses match (`<ns>-<name>` is ambiguous: both parts may hold `-`).
    Several(Vec<String>),
}

/// Finds the owning harness through the view's index; never by splitting the name at a hyphen.
pub fn owner_of(pod_name: &str, view: &impl ClusterView) -> Owner {
    if pod_name.is_empty() {
        return Owner::None;
    }
    let mut found = view.harnesses_for_sandbox(pod_name);
    match found.len() {
        0 => Owner::None,
        1 => Owner::One(found.remove(0)),
        _ => {
            // By (namespace, name), whatever order the index keeps them in.
            found.sort_by(|a, b| (a.namespace(), &a.metadata.name).cmp(&(b.namespace(), &b.metadata.name)));
            Owner::Several(found.iter().map(|h| h.key()).collect())
        }
    }
}

/// The sandbox names a harness is known by: `<namespace>-<name>` and `status.backendRef.id`.
pub fn sandbox_names(harness: &AgentHarness) -> impl Iterator<Item = String> + '_ {
    let computed = super::names::sandbox_name(harness.namespace(), harness.metadata.name.as_deref().unwrap_or(""));
    let reported = harness.status.as_ref().and_then(|s| s.backend_ref.as_ref()).and_then(|b| b.id.clone());
    std::iter::once(computed).chain(reported.filter(|id| !id.is_empty()))
}
