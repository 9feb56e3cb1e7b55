//! What Agent Substrate needs of a harness beyond its model chain (domain README §10.3): the
//! gateway token Secret, a backend the runtime has, and a workload image pinned by digest.

use super::resolve_key;
use crate::core::finding::{Cause, Detail, Finding, Hop, Kind, ObjectRef, data_field};
use crate::core::model::{AgentHarness, Runtime};
use crate::core::policy::Rule;
use crate::core::view::{ClusterView, Lookup};

/// The key kagent reads from the gateway token Secret.
const GATEWAY_TOKEN_KEY: &str = "token";

/// Judges `spec.substrate` and the backend on the substrate runtimes.
pub(super) fn check_substrate(
    harness: &AgentHarness,
    who: &ObjectRef,
    view: &impl ClusterView,
    findings: &mut Vec<Finding>,
) {
    let runtime = harness.runtime();
    if runtime == Runtime::OpenShell {
        return;
    }
    if runtime == Runtime::SubstrateV09 && harness.backend() == "hermes" {
        // kagent v0.9.x registers substrate backends for openclaw and nemoclaw only.
        let finding = Finding::on(Rule::BackendRuntime, who, "spec.backend", Cause::Unsupported);
        findings.push(finding.with(Detail::Backend("hermes".to_string())));
    }
    let Some(substrate) = harness.spec.substrate.as_ref() else { return };
    let image = substrate.workload_image.as_deref().filter(|i| !i.trim().is_empty());
    if image.is_some_and(|i| !i.contains('@')) {
        findings.push(Finding::on(Rule::WorkloadImageDigest, who, "spec.substrate.workloadImage", Cause::Invalid));
    }
    // An explicit pool is looked up in the harness's namespace (lifecycle_shared.go ~L92-118),
    // while kagent's chart creates its pool in the kagent namespace. Judged only where WorkerPools
    // are visible.
    if let Some(pool) = substrate.worker_pool_ref.as_ref().filter(|p| !p.name.is_empty())
        && view.worker_pool(harness.namespace(), &pool.name) == Lookup::Missing
    {
        let finding = Finding::on(Rule::WorkerPool, who, "spec.substrate.workerPoolRef.name", Cause::Missing);
        findings.push(finding.with(Detail::Value(pool.name.clone())));
    }
    if let Some(token) = substrate.gateway_token_secret_ref.as_ref() {
        let ns = harness.namespace();
        let target = ObjectRef::new(Kind::Secret, ns, token.name.as_str());
        let via = [Hop { field: "spec.substrate.gatewayTokenSecretRef".to_string(), value: None, to: target.clone() }];
        let at = target.at(data_field(GATEWAY_TOKEN_KEY));
        let rule = Rule::GatewayToken;
        match view.secret(ns, &token.name) {
            Lookup::Found(set) => {
                resolve_key(&set, who, &via, at, true, rule, findings);
            }
            Lookup::Missing => {
                findings.push(Finding::reached(rule, who, &via, at, Cause::Missing).with(Detail::Absent))
            }
            Lookup::NotWatched => findings.push(Finding::reached(Rule::NotWatched, who, &via, at, Cause::NotWatched)),
        }
    }
}
