//! The verdict the policy makes of findings.

use super::finding::Finding;
use super::policy::{Action, Policy};

/// The answer to one admission request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// Reasons to refuse; empty means allowed.
    pub denials: Vec<Finding>,
    /// Allowed findings reported as admission warnings.
    pub warnings: Vec<Finding>,
    /// Operations that mutate the object (mutating webhook only).
    pub patch: Vec<json_patch::PatchOperation>,
}

impl Verdict {
    /// Sorts findings by the action the policy gives their rule.
    pub fn judge(findings: Vec<Finding>, policy: &Policy) -> Self {
        let mut verdict = Verdict::default();
        for finding in findings {
            match policy.action(finding.rule) {
                Action::Deny => verdict.denials.push(finding),
                Action::Warn => verdict.warnings.push(finding),
                Action::Off => {}
            }
        }
        verdict
    }

    /// Like [`Verdict::judge`], but nothing denies: used where a request must never be blocked.
    pub fn warn_only(findings: Vec<Finding>, policy: &Policy) -> Self {
        let mut verdict = Self::judge(findings, policy);
        verdict.warnings.append(&mut verdict.denials);
        verdict
    }

    /// True when the request is allowed.
    pub fn allowed(&self) -> bool {
        self.denials.is_empty()
    }

    /// The rules that decided, for metrics.
    pub fn verdict_label(&self) -> &'static str {
        match (self.allowed(), self.warnings.is_empty(), self.patch.is_empty()) {
            (false, _, _) => "denied",
            (true, _, false) => "patched",
            (true, false, true) => "warned",
            (true, true, true) => "allowed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::finding::{Cause, Kind, ObjectRef};
    use crate::core::policy::Rule;

    #[test]
    fn policy_actions_sort_findings() {
        let mut policy = Policy::default();
        policy.rules.insert(Rule::ModelConfigExists, Action::Warn);
        policy.rules.insert(Rule::ChannelTokens, Action::Off);
        let h = ObjectRef::new(Kind::AgentHarness, "team-a", "h");
        let finding = |rule| Finding::on(rule, &h, "spec", Cause::Missing);
        let v = Verdict::judge(
            vec![finding(Rule::ModelConfigExists), finding(Rule::ChannelTokens), finding(Rule::ModelSecretResolves)],
            &policy,
        );
        assert_eq!(v.denials, vec![finding(Rule::ModelSecretResolves)]);
        assert_eq!(v.warnings, vec![finding(Rule::ModelConfigExists)]);
        assert_eq!(v.verdict_label(), "denied");
    }
}
