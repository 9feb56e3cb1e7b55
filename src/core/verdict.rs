//! Findings, and the verdict the policy makes of them.

use super::policy::{Action, Policy, Rule};

/// One problem a rule found. The message is user text: it names the object, the field, what was
/// looked for and the fix, and never a value.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The rule that found it.
    pub rule: Rule,
    /// The message shown to the user.
    pub message: String,
}

impl Finding {
    /// A finding of `rule`.
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Self { rule, message: message.into() }
    }
}

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

/// The apiserver drops a warning with any control character and truncates past 256 characters.
pub const MAX_WARNING_CHARS: usize = 256;

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

    /// The denial message: one finding per line.
    pub fn denial_message(&self) -> String {
        self.denials.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("\n")
    }

    /// Warnings as the apiserver will pass them on: one line each, at most 256 characters.
    pub fn warning_lines(&self) -> Vec<String> {
        self.warnings.iter().map(|f| warning_line(&f.message)).collect()
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

/// Makes `text` a valid admission warning: control characters become spaces and the text is cut
/// to [`MAX_WARNING_CHARS`] with an ellipsis.
pub fn warning_line(text: &str) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= MAX_WARNING_CHARS {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_WARNING_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_single_line_and_short() {
        let line = warning_line(&format!("a\nb\tc{}", "x".repeat(400)));
        assert!(!line.chars().any(char::is_control));
        assert_eq!(line.chars().count(), MAX_WARNING_CHARS);
        assert!(line.starts_with("a b c"));
        assert_eq!(warning_line("short"), "short");
    }

    #[test]
    fn policy_actions_sort_findings() {
        let mut policy = Policy::default();
        policy.rules.insert(Rule::ModelConfigExists, Action::Warn);
        policy.rules.insert(Rule::ChannelTokens, Action::Off);
        let v = Verdict::judge(
            vec![
                Finding::new(Rule::ModelConfigExists, "a"),
                Finding::new(Rule::ChannelTokens, "b"),
                Finding::new(Rule::ModelSecretResolves, "c"),
            ],
            &policy,
        );
        assert_eq!(v.denials, vec![Finding::new(Rule::ModelSecretResolves, "c")]);
        assert_eq!(v.warnings, vec![Finding::new(Rule::ModelConfigExists, "a")]);
        assert_eq!(v.verdict_label(), "denied");
    }
}
