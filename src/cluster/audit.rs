//! Continuous audit: whenever the cluster view changes, every AgentHarness is judged again with
//! the webhook's rules. The counts go to `harness_guard_violations{rule}`; a harness whose
//! violations changed gets one Kubernetes Event (reason `HarnessGuardViolation`), written only by
//! the Lease holder, and not again on a resync that changes nothing. "Changed" compares a
//! fingerprint of the violations' identities (rule, place, cause; never their wording), which
//! each Event carries as a label: a replica that takes the Lease (after a restart or a leader
//! change) reads back what was already reported instead of reporting every harness again.
//! With OpenReports on, each pass also hands every harness's results to [`Reports`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};

use super::lease::Elector;
use super::openreports::Reports;
use super::view::View;
use crate::core::finding::Finding;
use crate::core::index::{Key, key_of};
use crate::core::message::render;
use crate::core::model::AgentHarness;
use crate::core::names::KAGENT_API_VERSION;
use crate::core::openreports::{Stamp, harness_results, reports};
use crate::core::policy::Policy;
use crate::core::validate::{Change, validate_harness};
use crate::core::view::ClusterView;
use crate::telemetry::Metrics;

/// The Event reason.
pub const REASON: &str = "HarnessGuardViolation";
/// The label on each audit Event holding the fingerprint of the violations it reports.
pub const FINGERPRINT_LABEL: &str = "harness-guard.dev/audit-fingerprint";
/// Longest Event note the API accepts.
const MAX_NOTE: usize = 1024;

/// Where Events go, and who may write them.
pub struct Events {
    /// The client.
    pub client: kube::Client,
    /// Only the Lease holder writes.
    pub elector: Arc<Elector>,
    /// Where earlier Events are read back from: these namespaces, or all when empty.
    pub namespaces: Vec<String>,
}

/// The audit loop's state.
pub struct Auditor {
    view: Arc<View>,
    policy: Arc<Policy>,
    metrics: Arc<Metrics>,
    events: Option<Events>,
    /// The OpenReports writer, when turned on (it writes only while `events`' elector leads).
    reports: Option<Reports>,
    /// What each harness's violations looked like when last reported.
    reported: HashMap<Key, String>,
    /// True while this replica held the Lease at the last pass.
    leading: bool,
}

/// A stable fingerprint of a harness's violations: the harness's uid (a recreated harness is a
/// new one) and the sorted identities of its denials. 16 hex digits, a valid label value.
pub fn fingerprint(uid: Option<&str>, denials: &[Finding]) -> String {
    let mut ids: Vec<String> = denials
        .iter()
        .map(|f| {
            let (rule, at, cause) = f.id();
            let o = &at.object;
            format!("{}\t{}\t{}\t{}\t{}\t{}", rule.name(), o.kind.name(), o.namespace, o.name, at.field, cause.name())
        })
        .collect();
    ids.sort();
    ids.dedup();
    let text = format!("{}\n{}", uid.unwrap_or(""), ids.join("\n"));
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl Auditor {
    /// An auditor; without `events` it only keeps the metric.
    pub fn new(view: Arc<View>, policy: Arc<Policy>, metrics: Arc<Metrics>, events: Option<Events>) -> Self {
        Self { view, policy, metrics, events, reports: None, reported: HashMap::new(), leading: false }
    }

    /// Also keeps OpenReports (written only when there is an elector to lead, in `events`).
    pub fn with_reports(mut self, reports: Reports) -> Self {
        self.reports = Some(reports);
        self
    }

    /// Audits once the view is synced, then after every change (bursts coalesced by `debounce`)
    /// and every `resync` when nothing changes.
    pub async fn run(mut self, debounce: Duration, resync: Duration) {
        let mut changes = self.view.changes();
        self.view.wait_until_ready().await;
        loop {
            changes.borrow_and_update();
            self.audit_once().await;
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    tokio::time::sleep(debounce).await;
                }
                () = tokio::time::sleep(resync) => {}
            }
        }
    }

    /// One pass: judge every harness, update the metric, report what changed. Findings stay
    /// data: only the denials of harnesses whose violations changed are rendered, for their Event.
    pub async fn audit_once(&mut self) -> usize {
        if let Some(events) = &self.events {
            let leader = events.elector.try_lead().await.unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read the Lease; not writing audit Events this round");
                false
            });
            if leader && !self.leading {
                // Newly leading: what earlier leaders reported is in the Events they wrote.
                match read_back(events).await {
                    Ok(reported) => self.reported = reported,
                    Err(error) => {
                        tracing::warn!(%error, "cannot read back earlier audit Events; reporting from memory")
                    }
                }
            }
            self.leading = leader;
        }
        // The Reports' results are built only when they will be written: as leader, with the
        // OpenReports CRDs installed (a follower, or a cluster without them, pays nothing).
        let write_reports = match &mut self.reports {
            Some(writer) => writer.ready(self.leading).await,
            None => false,
        };
        let harnesses = self.view.all_harnesses();
        let total = harnesses.len();
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut broken: HashMap<Key, (Arc<AgentHarness>, Vec<Finding>, String)> = HashMap::new();
        let mut results = Vec::new();
        let now = Timestamp::now();
        let now = Stamp { seconds: now.as_second(), nanos: now.subsec_nanosecond() };
        for h in harnesses {
            let verdict = validate_harness(&h, Change::Create, self.view.as_ref(), &self.policy);
            if write_reports {
                results.push((h.namespace().to_string(), harness_results(&h, &verdict, &self.policy, now)));
            }
            if verdict.allowed() {
                continue;
            }
            let mut rules: Vec<&'static str> = verdict.denials.iter().map(|f| f.rule.name()).collect();
            rules.sort_unstable();
            rules.dedup();
            for rule in rules {
                *counts.entry(rule).or_default() += 1;
            }
            let fp = fingerprint(h.metadata.uid.as_deref(), &verdict.denials);
            broken.insert(key_of(&h.metadata), (h, verdict.denials, fp));
        }
        self.metrics.set_violations(&counts);
        tracing::debug!(harnesses = total, broken = broken.len(), "audit pass");
        let changed: Vec<&(Arc<AgentHarness>, Vec<Finding>, String)> =
            broken.iter().filter(|(k, (_, _, fp))| self.reported.get(*k) != Some(fp)).map(|(_, v)| v).collect();
        let mut next: HashMap<Key, String> = broken.iter().map(|(k, (_, _, fp))| (k.clone(), fp.clone())).collect();
        if let (Some(events), true) = (&self.events, self.leading) {
            for (harness, denials, fp) in changed {
                if let Err(error) = emit(&events.client, events.elector.identity(), harness, denials, fp).await {
                    tracing::warn!(%error, harness = %harness.key(), "cannot record the audit Event; retrying on the next change");
                    // Not recorded: try again next time.
                    next.remove(&key_of(&harness.metadata));
                }
            }
        }
        self.reported = next;
        if let (Some(writer), true) = (&mut self.reports, write_reports) {
            let (desired, trimmed) = reports(results);
            if !trimmed.is_empty() {
                tracing::warn!(namespaces = ?trimmed, "reports too large for one object: passing results left out");
            }
            writer.sync(desired).await;
        }
        self.metrics.audit_pass();
        broken.len()
    }
}

/// The fingerprint of the newest audit Event per harness, from the API.
async fn read_back(events: &Events) -> Result<HashMap<Key, String>, kube::Error> {
    let params = ListParams::default().labels(FINGERPRINT_LABEL);
    let apis: Vec<Api<Event>> = if events.namespaces.is_empty() {
        vec![Api::all(events.client.clone())]
    } else {
        events.namespaces.iter().map(|ns| Api::namespaced(events.client.clone(), ns)).collect()
    };
    let mut newest: HashMap<Key, (Option<Timestamp>, String)> = HashMap::new();
    for api in apis {
        for event in api.list(&params).await?.items {
            let Some(fp) = event.metadata.labels.as_ref().and_then(|l| l.get(FINGERPRINT_LABEL)).cloned() else {
                continue;
            };
            let Some(regarding) = event.regarding.filter(|r| r.kind.as_deref() == Some("AgentHarness")) else {
                continue;
            };
            let key: Key = (regarding.namespace.unwrap_or_default(), regarding.name.unwrap_or_default());
            let when = event.event_time.map(|t| t.0).or(event.metadata.creation_timestamp.map(|t| t.0));
            match newest.get(&key) {
                Some((seen, _)) if *seen >= when => {}
                _ => {
                    newest.insert(key, (when, fp));
                }
            }
        }
    }
    Ok(newest.into_iter().map(|(k, (_, fp))| (k, fp)).collect())
}

async fn emit(
    client: &kube::Client,
    identity: &str,
    harness: &AgentHarness,
    denials: &[Finding],
    fingerprint: &str,
) -> Result<(), kube::Error> {
    let ns = harness.namespace().to_string();
    let name = harness.metadata.name.clone().unwrap_or_default();
    let mut note = denials.iter().map(render).collect::<Vec<_>>().join(" | ");
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
            labels: Some([(FINGERPRINT_LABEL.to_string(), fingerprint.to_string())].into()),
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
