//! Continuous audit: whenever the cluster view changes, every AgentHarness is judged again with
//! the webhook's rules. The counts go to `harness_guard_violations{rule}`; a harness whose
//! violations changed gets one Kubernetes Event (reason `HarnessGuardViolation`), written only by
//! the Lease holder, and not again on a resync that changes nothing.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use super::lease::Elector;
use super::view::View;
use crate::core::audit::{Outcome, Report, audit_harness, violations};
use crate::core::index::{Key, key_of};
use crate::core::model::AgentHarness;
use crate::core::names::KAGENT_API_VERSION;
use crate::core::policy::Policy;
use crate::core::view::ClusterView;
use crate::telemetry::Metrics;

/// The Event reason.
pub const REASON: &str = "HarnessGuardViolation";
/// Longest Event note the API accepts.
const MAX_NOTE: usize = 1024;

/// Where Events go, and who may write them.
pub struct Events {
    /// The client.
    pub client: kube::Client,
    /// Only the Lease holder writes.
    pub elector: Arc<Elector>,
}

/// The audit loop's state.
pub struct Auditor {
    view: Arc<View>,
    policy: Arc<Policy>,
    metrics: Arc<Metrics>,
    events: Option<Events>,
    /// What each harness's violations looked like when last reported.
    reported: HashMap<Key, u64>,
}

fn fingerprint(report: &Report) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for line in report.findings.iter().filter(|l| l.verdict == Outcome::Deny) {
        line.message.hash(&mut h);
    }
    h.finish()
}

impl Auditor {
    /// An auditor; without `events` it only keeps the metric.
    pub fn new(view: Arc<View>, policy: Arc<Policy>, metrics: Arc<Metrics>, events: Option<Events>) -> Self {
        Self { view, policy, metrics, events, reported: HashMap::new() }
    }

    /// Audits once the view is synced, then after every change (bursts coalesced by `debounce`).
    pub async fn run(mut self, debounce: Duration) {
        let mut changes = self.view.changes();
        self.view.wait_until_ready().await;
        loop {
            changes.borrow_and_update();
            self.audit_once().await;
            if changes.changed().await.is_err() {
                return;
            }
            tokio::time::sleep(debounce).await;
        }
    }

    /// One pass: judge every harness, update the metric, report what changed.
    pub async fn audit_once(&mut self) -> Vec<Report> {
        let harnesses = self.view.all_harnesses();
        let reports: Vec<(Arc<AgentHarness>, Report)> = harnesses
            .into_iter()
            .map(|h| {
                let r = audit_harness(&h, self.view.as_ref(), &self.policy);
                (h, r)
            })
            .collect();
        let only: Vec<Report> = reports.iter().map(|(_, r)| r.clone()).collect();
        self.metrics.set_violations(&violations(&only));
        tracing::debug!(harnesses = only.len(), broken = only.iter().filter(|r| !r.allowed).count(), "audit pass");
        let broken: HashMap<Key, (Arc<AgentHarness>, &Report, u64)> = reports
            .iter()
            .filter(|(_, r)| !r.allowed)
            .map(|(h, r)| (key_of(&h.metadata), (h.clone(), r, fingerprint(r))))
            .collect();
        let changed: Vec<&(Arc<AgentHarness>, &Report, u64)> =
            broken.iter().filter(|(k, (_, _, fp))| self.reported.get(*k) != Some(fp)).map(|(_, v)| v).collect();
        let mut next: HashMap<Key, u64> = broken.iter().map(|(k, (_, _, fp))| (k.clone(), *fp)).collect();
        if let (Some(events), false) = (&self.events, changed.is_empty()) {
            let leader = events.elector.try_lead().await.unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read the Lease; not writing audit Events this round");
                false
            });
            for (harness, report, _) in changed.iter().filter(|_| leader) {
                if let Err(error) = emit(&events.client, events.elector.identity(), harness, report).await {
                    tracing::warn!(%error, harness = %harness.key(), "cannot record the audit Event; retrying on the next change");
                    // Not recorded: try again next time.
                    next.remove(&key_of(&harness.metadata));
                }
            }
        }
        self.reported = next;
        only
    }
}

async fn emit(
    client: &kube::Client,
    identity: &str,
    harness: &AgentHarness,
    report: &Report,
) -> Result<(), kube::Error> {
    let ns = harness.namespace().to_string();
    let name = harness.metadata.name.clone().unwrap_or_default();
    let mut note = report
        .findings
        .iter()
        .filter(|l| l.verdict == Outcome::Deny)
        .map(|l| l.message.as_str())
        .collect::<Vec<_>>()
        .join(" | ");
    if note.len() > MAX_NOTE {
        let mut cut = MAX_NOTE - 3;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}.")),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        event_time: Some(MicroTime(Timestamp::now())),
        action: Some("Audit".into()),
        reason: Some(REASON.into()),
        note: Some(note),
        type_: Some("Warning".into()),
        regarding: Some(ObjectReference {
            api_version: Some(KAGENT_API_VERSION.into()),
            kind: Some("AgentHarness".into()),
            name: Some(name),
            namespace: Some(ns.clone()),
            uid: harness.metadata.uid.clone(),
            ..Default::default()
        }),
        reporting_controller: Some("harness-guard.dev/audit".into()),
        reporting_instance: Some(identity.to_string()),
        ..Default::default()
    };
    Api::<Event>::namespaced(client.clone(), &ns).create(&PostParams::default(), &event).await?;
    Ok(())
}
