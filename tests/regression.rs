//! Realistic configurations, as users write them, through `harness-guard check` as a CI job runs
//! it. Each file in `examples/configurations/` says in its header what kagent and OpenShell really do
//! with it and the verdict that calls for (`# expect: deny rule; warn rule; note rule`, empty when
//! it works); `# policy:` gives a policy file. A configuration kagent runs must pass, and one that
//! fails at run time must be caught: either way a wrong verdict fails this test.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::fixtures::repo_file;
use serde_json::Value;

/// `(verdict, rule)` as `check -o json` writes them: deny, warn, note.
type Expected = BTreeSet<(String, String)>;

fn header(text: &str, field: &str) -> Option<String> {
    let prefix = format!("# {field}:");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.trim().to_string())
}

fn expected(text: &str) -> Expected {
    let line = header(text, "expect").expect("every regression file has an '# expect:' line");
    line.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (verdict, rule) = p.split_once(' ').expect("'deny|warn|note rule'");
            (verdict.to_string(), rule.trim().to_string())
        })
        .collect()
}

#[test]
fn realistic_configurations_get_the_verdict_kagent_calls_for() {
    let dir = repo_file("examples/configurations");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 25, "the suite is there: {}", files.len());
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness-guard"));
        cmd.args(["check", "-o", "json", "-f"]).arg(&file);
        if let Some(policy) = header(&text, "policy") {
            let path = tmp.path().join(format!("{name}.yaml"));
            std::fs::write(&path, policy).unwrap();
            cmd.arg("--config").arg(path);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Ok(doc) = serde_json::from_str::<Value>(&stdout) else {
            failures.push(format!("{name}: no JSON ({:?}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
            continue;
        };
        let got: Expected = doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["findings"].as_array().unwrap().iter())
            .map(|f| (f["verdict"].as_str().unwrap().to_string(), f["rule"].as_str().unwrap().to_string()))
            .collect();
        // Every harness (and sandbox pod) of the file is judged: none skipped in silence.
        let judged = doc["results"].as_array().unwrap().len();
        let subjects = text.matches("kind: AgentHarness").count() + text.matches("kind: Pod").count();
        if judged != subjects {
            failures.push(format!("{name}: {judged} objects judged, the file holds {subjects}"));
        }
        let want = expected(&text);
        let exit = if want.iter().any(|(v, _)| v == "deny") { 1 } else { 0 };
        if got != want || out.status.code() != Some(exit) {
            failures.push(format!("{name}: got {got:?} (exit {:?}), want {want:?} (exit {exit})", out.status.code()));
        }
        // No value from the input reaches the output.
        assert!(!stdout.contains("not-a-real-key") && !stdout.contains("sk-regression"), "{name} leaks a value");
    }
    assert!(failures.is_empty(), "{} configurations got the wrong verdict:\n{}", failures.len(), failures.join("\n"));
}
