//! Audit: the same rules, over objects that already exist (or are about to be applied), with
//! the same messages and enforcement settings as the webhook.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::enforce::enforce_pod;
use super::finding::{At, Cause, Detail, Finding, ObjectRef};
use super::message::render;
use super::model::AgentHarness;
use super::mutate::mutate_pod;
use super::policy::{Policy, Rule};
use super::validate::{Change, validate_harness};
use super::verdict::Verdict;
use super::view::ClusterView;

/// How a finding counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The webhook would refuse the object.
    Deny,
    /// The webhook would allow it with a warning.
    Warn,
    /// Information: present but not checkable (a Secret another object will produce).
    Note,
}

/// One finding in a report: the finding's data, what it means for the object, and its message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    /// Rule name.
    pub rule: &'static str,
    /// What it means for the object.
    pub verdict: Outcome,
    /// Where: the object (`kind`, `namespace`, `name`) and the `field` (empty: the object).
    pub at: At,
    /// What was found there.
    pub cause: Cause,
    /// The user text, as the webhook would send it.
    pub message: String,
}

impl Line {
    /// The finding's identity, as [`super::finding::Finding::id`].
    pub fn id(&self) -> (&'static str, &At, Cause) {
        (self.rule, &self.at, self.cause)
    }
}

/// The audit of one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// `AgentHarness` or `Pod`.
    pub kind: &'static str,
    /// `namespace/name`.
    pub object: String,
    /// False when the webhook would refuse it.
    pub allowed: bool,
    /// Its findings, denials first.
    pub findings: Vec<Line>,
    /// What the mutating webhook would patch into it (sandbox pods).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patch: Vec<json_patch::PatchOperation>,
}

impl Report {
    fn from_verdict(kind: &'static str, object: String, mut verdict: Verdict) -> Self {
        let outcome = |rule: Rule, deny: bool| match (deny, rule) {
            (true, _) => Outcome::Deny,
            (false, Rule::ProducedSecret) => Outcome::Note,
            (false, _) => Outcome::Warn,
        };
        let allowed = verdict.allowed();
        let findings = verdict
            .denials
            .drain(..)
            .map(|f| (f, true))
            .chain(std::mem::take(&mut verdict.warnings).into_iter().map(|f| (f, false)))
            .map(|(f, deny)| Line {
                rule: f.rule.name(),
                verdict: outcome(f.rule, deny),
                message: render(&f),
                at: f.at,
                cause: f.cause,
            })
            .collect();
        Self { kind, object, allowed, findings, patch: verdict.patch }
    }
}

/// Audits a harness as if it were being created now.
pub fn audit_harness(harness: &AgentHarness, view: &impl ClusterView, policy: &Policy) -> Report {
    Report::from_verdict("AgentHarness", harness.key(), validate_harness(harness, Change::Create, view, policy))
}

/// Audits a pod as if it were being created now (only sandbox pods have findings): what
/// `/validate` would say of it, and what `/mutate` would patch and warn.
pub fn audit_pod(meta: &ObjectMeta, spec: &PodSpec, view: &impl ClusterView, policy: &Policy) -> Report {
    let ns = meta.namespace.as_deref().unwrap_or("");
    let object = format!("{ns}/{}", meta.name.as_deref().unwrap_or(""));
    let mut verdict = enforce_pod(meta, spec, ns, view, policy);
    let mutation = mutate_pod(meta, spec, ns, view, policy);
    verdict.warnings.extend(mutation.warnings);
    verdict.patch = mutation.patch;
    Report::from_verdict("Pod", object, verdict)
}

/// Reports an object that could not be read as its kind: named, with why, and warned about
/// (rule `unreadable`), so one stray object never goes unseen nor fails a whole audit.
pub fn audit_unreadable(object: &ObjectRef, error: &str, policy: &Policy) -> Report {
    let finding = Finding::on(Rule::Unreadable, object, "", Cause::Unreadable).with(Detail::Error(error.to_string()));
    let key = format!("{}/{}", object.namespace, object.name);
    Report::from_verdict(object.kind.name(), key, Verdict::warn_only(vec![finding], policy))
}
