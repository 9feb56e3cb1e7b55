//! The continuous audit's results as OpenReports (`openreports.io/v1alpha1` `Report`, the
//! successor of the Policy WG's PolicyReport, read by Policy Reporter): one Report per namespace
//! that holds AgentHarnesses, one result per finding (`fail` for a denial, `warn` for a warning,
//! `skip` for what cannot be checked yet) and a `pass` for each check of the model chain a harness
//! passes. Pure: what the Reports should say, given the verdicts; whether one needs writing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::finding::Finding;
use super::message::render;
use super::model::AgentHarness;
use super::names::KAGENT_API_VERSION;
use super::policy::{Action, Policy, Rule};
use super::verdict::Verdict;

/// `apiVersion` of the Report kind.
pub const API_VERSION: &str = "openreports.io/v1alpha1";
/// The `source` of every result, and the field manager of the writes.
pub const SOURCE: &str = "harness-guard";
/// The name of the one Report per namespace.
pub const REPORT_NAME: &str = "harness-guard";
/// The label that marks the Reports harness-guard owns (as Kyverno marks its own).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "harness-guard");
/// Past this size a Report drops its `pass` results (an object must stay under etcd's 1.5 MiB).
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// The checks every harness gets, whatever its runtime: the chain from the harness to its model
/// key. A harness without a finding of one of these passed it.
const CHAIN: [Rule; 8] = [
    Rule::ModelConfigRef,
    Rule::ModelConfigExists,
    Rule::ModelSecretNamed,
    Rule::ModelSecretResolves,
    Rule::ModelName,
    Rule::ProviderServed,
    Rule::BackendRuntime,
    Rule::KeyInEnv,
];

/// A result's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Checked, nothing found.
    Pass,
    /// Would be refused by the webhook.
    Fail,
    /// Allowed, with a warning.
    Warn,
    /// The check could not run.
    Error,
    /// Not checkable yet (a Secret another object will produce).
    Skip,
}

/// Seconds and nanoseconds since the epoch, as the Report schema writes time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Seconds.
    pub seconds: i64,
    /// Nanoseconds.
    pub nanos: i32,
}

/// The object a result is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// `kagent.dev/v1alpha2`.
    #[serde(default)]
    pub api_version: String,
    /// `AgentHarness`.
    #[serde(default)]
    pub kind: String,
    /// Its namespace.
    #[serde(default)]
    pub namespace: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its uid (a recreated harness is another subject).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// One result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    /// The rule's name.
    pub policy: String,
    /// The outcome.
    pub result: Outcome,
    /// Always [`SOURCE`].
    #[serde(default)]
    pub source: String,
    /// The text the webhook would send (empty for a pass).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// `high` for what breaks the harness, `medium` for other findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The harness.
    #[serde(default)]
    pub resources: Vec<Subject>,
    /// Where the finding is (`object`, `field`) and what was found (`cause`): its identity.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// When this result was first seen as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Stamp>,
}

/// Result counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// `pass` results.
    #[serde(default)]
    pub pass: u32,
    /// `fail` results.
    #[serde(default)]
    pub fail: u32,
    /// `warn` results.
    #[serde(default)]
    pub warn: u32,
    /// `error` results.
    #[serde(default)]
    pub error: u32,
    /// `skip` results.
    #[serde(default)]
    pub skip: u32,
}

/// What one namespace's Report says: its results and their summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// Results, ordered by harness, then outcome, then rule.
    #[serde(default)]
    pub results: Vec<ReportResult>,
    /// Their counts.
    #[serde(default)]
    pub summary: Summary,
}

impl Content {
    fn new(results: Vec<ReportResult>) -> Self {
        let mut summary = Summary::default();
        for r in &results {
            let n = match r.result {
                Outcome::Pass => &mut summary.pass,
                Outcome::Fail => &mut summary.fail,
                Outcome::Warn => &mut summary.warn,
                Outcome::Error => &mut summary.error,
                Outcome::Skip => &mut summary.skip,
            };
            *n += 1;
        }
        Self { results, summary }
    }

    /// The whole Report object, for a server-side apply.
    pub fn to_object(&self, namespace: &str) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": "Report",
            "metadata": {
                "name": REPORT_NAME,
                "namespace": namespace,
                "labels": {MANAGED_BY.0: MANAGED_BY.1},
            },
            "source": SOURCE,
            "results": self.results,
            "summary": self.summary,
        })
    }

    /// Equal but for timestamps: a pass that finds nothing new writes nothing.
    pub fn same_as(&self, other: &Content) -> bool {
        let strip =
            |c: &Content| c.results.iter().map(|r| ReportResult { timestamp: None, ..r.clone() }).collect::<Vec<_>>();
        self.summary == other.summary && strip(self) == strip(other)
    }

    /// Keeps the timestamp of every result `before` already held (equal in all else), so a result
    /// shows when it first appeared as it is, and an unchanged Report is equal to what is stored.
    pub fn keep_timestamps(&mut self, before: &Content) {
        for result in &mut self.results {
            let seen = before.results.iter().find(|old| {
                ReportResult { timestamp: None, ..(*old).clone() } == ReportResult { timestamp: None, ..result.clone() }
            });
            if let Some(stamp) = seen.and_then(|old| old.timestamp) {
                result.timestamp = Some(stamp);
            }
        }
    }
}

fn subject(harness: &AgentHarness) -> Subject {
    Subject {
        api_version: KAGENT_API_VERSION.into(),
        kind: "AgentHarness".into(),
        namespace: harness.namespace().into(),
        name: harness.metadata.name.clone().unwrap_or_default(),
        uid: harness.metadata.uid.clone().unwrap_or_default(),
    }
}

fn of_finding(finding: &Finding, outcome: Outcome, subject: &Subject, now: Stamp) -> ReportResult {
    let severity = match outcome {
        Outcome::Fail if finding.rule.breaks_harness() => "high",
        _ => "medium",
    };
    let at = &finding.at;
    let properties =
        [("object", at.object.to_string()), ("field", at.field.clone()), ("cause", finding.cause.name().to_string())];
    ReportResult {
        policy: finding.rule.name().into(),
        result: outcome,
        source: SOURCE.into(),
        message: render(finding),
        severity: Some(severity.into()),
        resources: vec![subject.clone()],
        properties: properties.into_iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v)).collect(),
        timestamp: Some(now),
    }
}

/// The results of one harness: its findings, then a pass for each chain check (enabled by the
/// policy) that found nothing.
pub fn harness_results(harness: &AgentHarness, verdict: &Verdict, policy: &Policy, now: Stamp) -> Vec<ReportResult> {
    let subject = subject(harness);
    let mut results: Vec<ReportResult> = verdict
        .denials
        .iter()
        .map(|f| of_finding(f, Outcome::Fail, &subject, now))
        .chain(verdict.warnings.iter().map(|f| {
            let outcome = if f.rule == Rule::ProducedSecret { Outcome::Skip } else { Outcome::Warn };
            of_finding(f, outcome, &subject, now)
        }))
        .collect();
    let found = |rule: Rule| verdict.denials.iter().chain(&verdict.warnings).any(|f| f.rule == rule);
    for rule in CHAIN.into_iter().filter(|r| policy.action(*r) != Action::Off && !found(*r)) {
        results.push(ReportResult {
            policy: rule.name().into(),
            result: Outcome::Pass,
            source: SOURCE.into(),
            message: String::new(),
            severity: None,
            resources: vec![subject.clone()],
            properties: BTreeMap::new(),
            timestamp: Some(now),
        });
    }
    results
}

/// The Report of each namespace holding harnesses, from every harness's results. A Report that
/// would outgrow [`MAX_REPORT_BYTES`] keeps its findings and drops its passes (the second value
/// lists those namespaces).
pub fn reports(
    per_harness: impl IntoIterator<Item = (String, Vec<ReportResult>)>,
) -> (BTreeMap<String, Content>, Vec<String>) {
    let mut grouped: BTreeMap<String, Vec<ReportResult>> = BTreeMap::new();
    for (namespace, results) in per_harness {
        grouped.entry(namespace).or_default().extend(results);
    }
    let mut trimmed = Vec::new();
    let reports = grouped
        .into_iter()
        .map(|(namespace, mut results)| {
            results.sort_by(|a, b| {
                (&a.resources, a.result, &a.policy, &a.properties).cmp(&(
                    &b.resources,
                    b.result,
                    &b.policy,
                    &b.properties,
                ))
            });
            let mut content = Content::new(results);
            let size = serde_json::to_vec(&content).map(|v| v.len()).unwrap_or(0);
            if size > MAX_REPORT_BYTES {
                content.results.retain(|r| r.result != Outcome::Pass);
                content = Content::new(content.results);
                trimmed.push(namespace.clone());
            }
            (namespace, content)
        })
        .collect();
    (reports, trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::finding::{Cause, Kind, ObjectRef};

    fn harness(ns: &str, name: &str) -> AgentHarness {
        serde_json::from_value(serde_json::json!({
            "apiVersion": KAGENT_API_VERSION, "kind": "AgentHarness",
            "metadata": {"namespace": ns, "name": name, "uid": format!("uid-{name}")},
            "spec": {"modelConfigRef": "m"}
        }))
        .unwrap()
    }

    fn missing_secret(ns: &str) -> Finding {
        let secret = ObjectRef::new(Kind::Secret, ns, "openai");
        Finding::on(Rule::ModelSecretResolves, &secret, "", Cause::Missing)
    }

    #[test]
    fn a_clean_harness_passes_each_chain_check_and_a_broken_one_fails_where_it_breaks() {
        let policy = Policy::default();
        let now = Stamp { seconds: 10, nanos: 0 };
        let clean = harness_results(&harness("a", "good"), &Verdict::default(), &policy, now);
        assert_eq!(clean.len(), CHAIN.len());
        assert!(clean.iter().all(|r| r.result == Outcome::Pass && r.resources[0].uid == "uid-good"));

        let verdict = Verdict::judge(vec![missing_secret("a")], &policy);
        let broken = harness_results(&harness("a", "bad"), &verdict, &policy, now);
        let fail = broken.iter().find(|r| r.result == Outcome::Fail).expect("a fail result");
        assert_eq!(fail.policy, "model-secret-resolves");
        assert_eq!(fail.properties["cause"], "missing");
        assert_eq!(fail.properties["object"], "Secret a/openai");
        assert_eq!(fail.severity.as_deref(), Some("high"));
        assert!(fail.message.contains("a/openai"), "{}", fail.message);
        assert!(!broken.iter().any(|r| r.policy == "model-secret-resolves" && r.result == Outcome::Pass));
        assert_eq!(broken.len(), CHAIN.len());
    }

    #[test]
    fn a_rule_turned_off_is_not_reported_as_passed() {
        let policy: Policy = serde_json::from_value(serde_json::json!({"rules": {"key-in-env": "off"}})).unwrap();
        let results = harness_results(&harness("a", "good"), &Verdict::default(), &policy, Stamp::default());
        assert!(!results.iter().any(|r| r.policy == "key-in-env"));
        assert_eq!(results.len(), CHAIN.len() - 1);
    }

    #[test]
    fn reports_group_by_namespace_count_and_ignore_timestamps_when_comparing() {
        let policy = Policy::default();
        let verdict = Verdict::judge(vec![missing_secret("a")], &policy);
        let at = |s| Stamp { seconds: s, nanos: 0 };
        let build = |now| {
            reports([
                ("a".to_string(), harness_results(&harness("a", "bad"), &verdict, &policy, now)),
                ("a".to_string(), harness_results(&harness("a", "good"), &Verdict::default(), &policy, now)),
                ("b".to_string(), harness_results(&harness("b", "good"), &Verdict::default(), &policy, now)),
            ])
            .0
        };
        let first = build(at(1));
        assert_eq!(first.keys().collect::<Vec<_>>(), ["a", "b"]);
        let summary = first["a"].summary;
        assert_eq!((summary.pass, summary.fail, summary.warn), (2 * CHAIN.len() as u32 - 1, 1, 0));

        let mut later = build(at(2));
        assert!(later["a"].same_as(&first["a"]));
        assert_ne!(later["a"], first["a"], "the timestamps differ");
        later.get_mut("a").unwrap().keep_timestamps(&first["a"]);
        assert_eq!(later["a"], first["a"], "an unchanged report equals what is stored");

        // A change keeps the unchanged results' first timestamps and stamps the new one.
        let fixed = reports([
            ("a".to_string(), harness_results(&harness("a", "bad"), &Verdict::default(), &policy, at(3))),
            ("a".to_string(), harness_results(&harness("a", "good"), &Verdict::default(), &policy, at(3))),
        ])
        .0;
        let mut fixed = fixed["a"].clone();
        assert!(!fixed.same_as(&first["a"]));
        fixed.keep_timestamps(&first["a"]);
        let stamp = |name: &str, policy: &str| {
            fixed.results.iter().find(|r| r.resources[0].name == name && r.policy == policy).unwrap().timestamp.unwrap()
        };
        assert_eq!(stamp("good", "key-in-env"), at(1));
        assert_eq!(stamp("bad", "model-secret-resolves"), at(3));
        assert_eq!(fixed.summary.fail, 0);
    }

    #[test]
    fn the_object_matches_the_report_schema_fields() {
        let policy = Policy::default();
        let verdict = Verdict::judge(vec![missing_secret("a")], &policy);
        let (reports, _) =
            reports([("a".to_string(), harness_results(&harness("a", "bad"), &verdict, &policy, Stamp::default()))]);
        let object = reports["a"].to_object("a");
        assert_eq!(object["metadata"]["labels"]["app.kubernetes.io/managed-by"], "harness-guard");
        assert_eq!(object["source"], "harness-guard");
        let fail = object["results"].as_array().unwrap().iter().find(|r| r["result"] == "fail").unwrap();
        assert_eq!(fail["resources"][0]["kind"], "AgentHarness");
        assert_eq!(fail["timestamp"], serde_json::json!({"seconds": 0, "nanos": 0}));
        // Read back from the API, the content is what was written.
        let back: Content = serde_json::from_value(object).unwrap();
        assert_eq!(back, reports["a"]);
    }

    #[test]
    fn an_oversized_report_keeps_its_findings_and_drops_its_passes() {
        let policy = Policy::default();
        let many = (0..4000).map(|i| {
            let name = format!("harness-{i:04}-{}", "x".repeat(40));
            let verdict = if i == 7 { Verdict::judge(vec![missing_secret("a")], &policy) } else { Verdict::default() };
            ("a".to_string(), harness_results(&harness("a", &name), &verdict, &policy, Stamp::default()))
        });
        let (reports, trimmed) = reports(many);
        assert_eq!(trimmed, ["a"]);
        let a = &reports["a"];
        assert_eq!((a.summary.pass, a.summary.fail), (0, 1));
        assert!(serde_json::to_vec(a).unwrap().len() < MAX_REPORT_BYTES);
    }
}
