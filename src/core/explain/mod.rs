//! `explain`: the credential chain of one AgentHarness, link by link, for the engineer whose
//! harness "looks healthy but every LLM call fails": the harness, its ModelConfig, the key Secret,
//! the OpenShell inference provider record, the sandbox pod(s), the webhook's verdict today and
//! the Events about it. Each link gets a state, facts (never a value) and a fix.
//!
//! Nothing here judges anew: the findings are the webhook's own (`validate_harness` through
//! [`audit_harness`], `audit_pod`), attached to the link whose object they are `at`, and their
//! messages (which say what to do) are the fixes. What the caller could not read is unknown, never
//! missing ([`partial`]).

mod links;
mod partial;
mod pods;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

pub use partial::wanted;
pub use pods::is_harness_pod;

use super::audit::{Line, Outcome, audit_harness};
use super::finding::{Cause, Kind, ObjectRef};
use super::model::AgentHarness;
use super::mutate::provider_record;
use super::policy::Policy;
use super::view::{ClusterView, Lookup};
use links::{events_link, harness_link, model_link, provider_link, report_link, secret_link, verdict_link};
use partial::{Partial, key_secret, model_config};

/// How a link of the chain stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Read, and nothing wrong with it.
    Ok,
    /// Read, and broken: the fix says what to do.
    Broken,
    /// Not checked: out of reach (OpenShell's database), not in the input, or not reached.
    Unchecked,
    /// The caller's credentials could not read it: the fix names the permission.
    Unreadable,
}

/// One fact about a link: a name and what was found (never a value of a Secret or env variable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fact {
    /// What the fact is about.
    pub name: String,
    /// What was found.
    pub value: String,
}

fn fact(name: impl Into<String>, value: impl Into<String>) -> Fact {
    Fact { name: name.into(), value: value.into() }
}

/// One link of the chain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    /// `harness`, `model-config`, `secret`, `inference-provider`, `sandbox-pod`, `verdict`, `events`.
    pub name: &'static str,
    /// The object, when the link is one Kubernetes object and it is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// How it stands.
    pub state: State,
    /// What was found.
    pub facts: Vec<Fact>,
    /// The webhook's findings at this link's object.
    pub findings: Vec<Line>,
    /// What to do, one line each; for findings, their message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Link {
    fn new(name: &'static str, object: Option<ObjectRef>, state: State) -> Self {
        Self { name, object, state, facts: Vec::new(), findings: Vec::new(), fix: None }
    }

    fn fact(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.facts.push(fact(name, value));
        self
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// The webhook's verdict on the harness, were it created now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Judgement {
    /// False when `/validate` would refuse it.
    pub allowed: bool,
    /// How many findings would deny it.
    pub denials: usize,
    /// How many would be warnings.
    pub warnings: usize,
}

/// The explanation of one harness.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// `namespace/name`.
    pub harness: String,
    /// The webhook's verdict today.
    pub verdict: Judgement,
    /// The chain, in order.
    pub links: Vec<Link>,
}

impl Explanation {
    /// True when some link is broken.
    pub fn broken(&self) -> bool {
        self.links.iter().any(|l| l.state == State::Broken)
    }
}

/// A condition of the harness's status, as kagent wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    /// `Accepted`, `Ready`.
    pub type_: String,
    /// `True`, `False`, `Unknown`.
    pub status: String,
    /// kagent's reason.
    pub reason: String,
    /// kagent's message.
    pub message: String,
}

/// An Event about the harness.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventNote {
    /// `Normal` or `Warning`.
    pub type_: String,
    /// The reason (`HarnessGuardViolation`, kagent's own).
    pub reason: String,
    /// The note.
    pub note: String,
    /// Who reported it.
    pub reporter: String,
    /// When, as the API wrote it.
    pub time: String,
}

/// What could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unread {
    /// One object of the chain.
    Object(ObjectRef),
    /// The pods of a sandbox namespace.
    Pods(String),
    /// The Events of a namespace.
    Events(String),
    /// The continuous audit's OpenReports Report of a namespace.
    Report(String),
}

/// The continuous audit's Report (`openreports.io`) of the harness's namespace, as read live.
#[derive(Clone, Debug, PartialEq)]
pub enum ReportSeen {
    /// The OpenReports CRDs are not installed: harness-guard writes none.
    NotInstalled,
    /// Installed, but no Report `harness-guard` in the namespace (harness-guard off, not leading
    /// yet, or `--openreports=false`).
    Missing,
    /// This harness's results in it.
    Results(Vec<crate::core::openreports::ReportResult>),
}

/// Something that could not be read, why, and the permission that would show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// What.
    pub what: Unread,
    /// Why, free of values (`forbidden`, the API's error).
    pub why: String,
    /// The permission that would show it (`get secrets in team-a`); `None` when a permission
    /// is not what is missing.
    pub needs: Option<String>,
}

impl Unreadable {
    fn fix(&self) -> String {
        match &self.needs {
            Some(needs) => format!(
                "Not readable with these credentials ({}): it needs {needs}. Ask for that permission, or \
                 ask someone who has it to run this explain.",
                self.why
            ),
            None => format!("Could not be read: {}.", self.why),
        }
    }
}

/// What the shell observed besides the view: what it read live, what it could not read, and the
/// parts the view does not hold (the harness's conditions, sandbox pods, Events). `None` means
/// not read at all (offline input).
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The objects looked up live (found or not); `None` when the view holds all there is.
    pub read: Option<BTreeSet<ObjectRef>>,
    /// What could not be read.
    pub unreadable: Vec<Unreadable>,
    /// The harness's `status.conditions`.
    pub conditions: Option<Vec<Condition>>,
    /// The sandbox pods found ([`is_harness_pod`]).
    pub pods: Option<Vec<(ObjectMeta, PodSpec)>>,
    /// Events whose `regarding` is the harness.
    pub events: Option<Vec<EventNote>>,
    /// The audit's Report of its namespace; `None` when not read (offline input).
    pub report: Option<ReportSeen>,
}

/// Explains `harness` against `view` under `policy`.
pub fn explain(harness: &AgentHarness, view: &impl ClusterView, policy: &Policy, observed: &Observed) -> Explanation {
    let unread: BTreeSet<ObjectRef> = observed
        .unreadable
        .iter()
        .filter_map(|u| match &u.what {
            Unread::Object(o) => Some(o.clone()),
            _ => None,
        })
        .collect();
    let view = Partial::new(view, observed.read.as_ref(), &unread);
    let report = audit_harness(harness, &view, policy);
    // A "not watched" about an object the caller could not read is the overlay's doing, not the
    // webhook's: the link says it is unreadable instead.
    let lines: Vec<Line> = report
        .findings
        .into_iter()
        .filter(|l| !(l.cause == Cause::NotWatched && unread.contains(&l.at.object)))
        .collect();
    let count = |o: Outcome| lines.iter().filter(|l| l.verdict == o).count();
    let verdict = Judgement { allowed: report.allowed, denials: count(Outcome::Deny), warnings: count(Outcome::Warn) };
    let unreadable = |o: &ObjectRef| observed.unreadable.iter().find(|u| u.what == Unread::Object(o.clone()));

    let mc = model_config(harness, &view);
    let config = match &mc {
        Some((_, Lookup::Found(config))) => Some(config.clone()),
        _ => None,
    };
    let key = mc.as_ref().zip(config.as_deref()).and_then(|((r, _), c)| key_secret(harness, r, c));
    let mut links = vec![
        harness_link(harness, observed),
        model_link(harness, mc.as_ref(), policy, &unreadable),
        secret_link(harness, mc.as_ref(), key.as_ref(), &view, &unreadable),
    ];
    if harness.runs_on_openshell() {
        let record = config.as_ref().map(|c| provider_record(harness, c.provider(), policy));
        links.push(provider_link(harness, config.as_deref(), record.as_deref(), policy));
        links.extend(pods::pod_links(harness, record.as_deref(), &verdict, &view, policy, observed));
    }
    // The webhook's findings, each on the link of the object it is at.
    for line in lines {
        let at = &line.at.object;
        let name = match at.kind {
            Kind::ModelConfig => "model-config",
            Kind::Secret | Kind::ConfigMap if key.as_ref().is_some_and(|(s, _)| s == at) => "secret",
            _ => "harness",
        };
        if let Some(link) = links.iter_mut().find(|l| l.name == name) {
            link.findings.push(line);
        }
    }
    links.iter_mut().for_each(settle);
    links.push(verdict_link(harness, &verdict, &unread, observed));
    links.push(events_link(observed));
    links.push(report_link(observed));
    Explanation { harness: harness.key(), verdict, links }
}

/// The state a link's findings give it: a denial breaks it, an object the webhook cannot judge
/// (not watched, not produced yet) leaves it unchecked.
fn settle(link: &mut Link) {
    if link.state == State::Unreadable {
        return;
    }
    let messages = |f: fn(&Line) -> bool| -> Vec<String> {
        link.findings.iter().filter(|l| f(l)).map(|l| l.message.clone()).collect()
    };
    let denials = messages(|l| l.verdict == Outcome::Deny);
    let unknown = messages(|l| matches!(l.cause, Cause::NotWatched | Cause::Pending));
    let (state, mut fix) = match (denials.is_empty(), unknown.is_empty()) {
        (false, _) => (State::Broken, denials),
        (true, false) if link.state == State::Ok => (State::Unchecked, unknown),
        _ => return,
    };
    fix.extend(link.fix.take());
    link.state = state;
    link.fix = Some(fix.join("\n"));
}
