//! The output of `explain`: one block per link (state, facts, the webhook's findings, the fix),
//! broken and unreadable links in red on a terminal; or JSON for scripts.

use std::io::IsTerminal;

use serde::Serialize;

use crate::core::audit::Outcome;
use crate::core::explain::{Explanation, Link, State};

/// True when the table may use colour: standard output is a terminal and `NO_COLOR` is unset or
/// empty (no-color.org).
pub(super) fn colour() -> bool {
    colour_for(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR"))
}

fn colour_for(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[derive(Serialize)]
struct Summary {
    harnesses: usize,
    broken: usize,
}

#[derive(Serialize)]
struct Document<'a> {
    results: &'a [Explanation],
    summary: Summary,
}

/// Pretty JSON: `results` (one explanation per harness) and a `summary`.
pub(super) fn json(explanations: &[Explanation]) -> String {
    let summary = Summary { harnesses: explanations.len(), broken: explanations.iter().filter(|e| e.broken()).count() };
    serde_json::to_string_pretty(&Document { results: explanations, summary }).expect("explanations serialize")
}

fn state(state: State, colour: bool) -> String {
    let (word, code) = match state {
        State::Ok => ("ok", "32"),
        State::Broken => ("BROKEN", "1;31"),
        State::Unchecked => ("unchecked", "33"),
        State::Unreadable => ("UNREADABLE", "1;31"),
    };
    match colour {
        true => format!("\x1b[{code}m{word}\x1b[0m"),
        false => word.to_string(),
    }
}

/// The readable form: a block per harness, a line per link, its facts, findings and fix indented
/// under it, and a closing line naming the links that are not ok.
pub(super) fn table(explanations: &[Explanation], colour: bool) -> String {
    let mut out = String::new();
    for e in explanations {
        out.push_str(&format!("AgentHarness {}\n\n", e.harness));
        let object = |l: &Link| l.object.as_ref().map_or("-".to_string(), ToString::to_string);
        let width = e.links.iter().map(|l| object(l).chars().count()).max().unwrap_or(0);
        for link in &e.links {
            out.push_str(&format!("{:<18}  {:<width$}  {}\n", link.name, object(link), state(link.state, colour)));
            for fact in &link.facts {
                out.push_str(&format!("    {}: {}\n", fact.name, fact.value));
            }
            for finding in &link.findings {
                let verdict = match finding.verdict {
                    Outcome::Deny => "denied",
                    Outcome::Warn => "warning",
                    Outcome::Note => "note",
                };
                out.push_str(&format!("    {verdict} {}: {}\n", finding.rule, finding.message));
            }
            // A finding's message already says what to do; the rest of the fix is printed here.
            let said = |line: &str| link.findings.iter().any(|f| f.message == line);
            for line in link.fix.iter().flat_map(|f| f.lines()).filter(|l| !said(l)) {
                out.push_str(&format!("    fix: {line}\n"));
            }
        }
        let named = |s: State| -> Vec<&str> { e.links.iter().filter(|l| l.state == s).map(|l| l.name).collect() };
        let mut parts = Vec::new();
        for (word, s) in [("broken", State::Broken), ("unreadable", State::Unreadable), ("unchecked", State::Unchecked)]
        {
            let names = named(s);
            if !names.is_empty() {
                parts.push(format!("{word}: {}", names.join(", ")));
            }
        }
        let summary = if parts.is_empty() { "every link ok".to_string() } else { parts.join("; ") };
        out.push_str(&format!("\n{}: {summary}\n\n", e.harness));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::audit::Line;
    use crate::core::explain::{Fact, Judgement};
    use crate::core::finding::{Cause, Kind, ObjectRef};

    fn explanation() -> Explanation {
        let secret = ObjectRef::new(Kind::Secret, "team-a", "openai");
        let message = "AgentHarness team-a/coder: ... Recreate the Secret.".to_string();
        let line = Line {
            rule: "key-format",
            verdict: Outcome::Deny,
            at: secret.at("data[OPENAI_API_KEY]"),
            cause: Cause::Invalid,
            message: message.clone(),
        };
        let broken = Link {
            name: "secret",
            object: Some(secret),
            state: State::Broken,
            facts: vec![Fact { name: "exists".into(), value: "yes".into() }],
            findings: vec![line],
            fix: Some(format!("{message}\nAnd then this.")),
        };
        let fine = Link { name: "events", object: None, state: State::Ok, facts: vec![], findings: vec![], fix: None };
        Explanation {
            harness: "team-a/coder".into(),
            verdict: Judgement { allowed: false, denials: 1, warnings: 0 },
            links: vec![broken, fine],
        }
    }

    #[test]
    fn broken_links_are_red_only_with_colour_and_each_fix_is_said_once() {
        let plain = table(&[explanation()], false);
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(plain.contains("secret              Secret team-a/openai  BROKEN\n"), "{plain}");
        assert_eq!(plain.matches("Recreate the Secret.").count(), 1, "the finding's message is its fix: {plain}");
        assert!(plain.contains("    fix: And then this.\n"), "{plain}");
        assert!(plain.ends_with("team-a/coder: broken: secret\n\n"), "{plain}");
        let coloured = table(&[explanation()], true);
        assert!(coloured.contains("\x1b[1;31mBROKEN\x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[32mok\x1b[0m"), "{coloured}");
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        assert!(colour_for(true, None));
        assert!(colour_for(true, Some("".into())), "an empty NO_COLOR is unset (no-color.org)");
        assert!(!colour_for(true, Some("1".into())));
        assert!(!colour_for(false, None));
    }
}
