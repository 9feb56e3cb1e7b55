//! `harness-guard check` as a CI step runs it: the binary, golden table and JSON output for the
//! examples (one harness per rule, good ones, ExternalSecret/SealedSecret, a sandbox pod), and
//! the exit codes. `UPDATE_GOLDEN=1` rewrites the goldens.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::fixtures::repo_file;

fn check(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness-guard"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("check")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = repo_file(&format!("tests/golden/check/{name}"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(expected == actual, "{name} differs from the golden (UPDATE_GOLDEN=1 to rewrite):\n{actual}");
}

#[test]
fn examples_table_and_json() {
    let table = check(&["-f", "examples/cluster", "-f", "examples/check"], None);
    assert_eq!(table.status.code(), Some(1), "something is denied: {}", String::from_utf8_lossy(&table.stderr));
    golden("examples.txt", &String::from_utf8(table.stdout).unwrap());
    let json = check(&["-f", "examples/cluster", "-f", "examples/check", "-o", "json"], None);
    assert_eq!(json.status.code(), Some(1));
    let text = String::from_utf8(json.stdout).unwrap();
    golden("examples.json", &text);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["summary"], serde_json::json!({"objects": 15, "denied": 12, "warnings": 0, "notes": 3}));
    // Values from the input never reach the output.
    assert!(!text.contains("not-a-real-key") && !text.contains("not-a-real-token"));
}

#[test]
fn exit_codes() {
    let clean = check(&["-f", "examples/cluster/00-good.yaml"], None);
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
    // Context from --state: the harness alone fails, with its state it passes.
    let harness = "apiVersion: kagent.dev/v1alpha2\nkind: AgentHarness\nmetadata: {name: alone, namespace: team-a}\nspec: {backend: openclaw, modelConfigRef: litellm-gpt, network: {allowedDomains: [litellm.example.internal]}}\n";
    assert_eq!(check(&["-f", "-"], Some(harness)).status.code(), Some(1));
    assert_eq!(check(&["-f", "-", "--state", "examples/cluster"], Some(harness)).status.code(), Some(0));
    // Unusable input names the file and the document.
    let bad = check(
        &["-f", "-"],
        Some(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: why}\ndata: {a: \"%%\"}\n",
        ),
    );
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("<stdin>: document 2 (Secret default/why): data.a"), "{stderr}");
    let missing = check(&["-f", "does/not/exist.yaml"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does/not/exist.yaml"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "kind: [\n").unwrap();
    let syntax = check(&["-f", dir.path().to_str().unwrap()], None);
    assert_eq!(syntax.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&syntax.stderr).contains("broken.yaml: not valid YAML"));
}

#[test]
fn same_policy_as_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "rules:\n  model-config-exists: warn\n").unwrap();
    let out = check(
        &[
            "-f",
            "examples/cluster/20-broken-harnesses.yaml",
            "--state",
            "examples/cluster",
            "--config",
            policy.to_str().unwrap(),
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("AgentHarness team-a/no-modelconfig")).unwrap();
    assert!(line.contains("model-config-exists") && line.contains("warning"), "{line}");
}

/// `-o yaml` prints the input's pods as the webhook would admit them, as `istioctl kube-inject`
/// does: the sandbox pod patched, ready to pipe into kubectl; the verdicts go to standard error.
#[test]
fn yaml_output_is_the_patched_pod() {
    let out = check(&["-f", "examples/cluster", "-f", "examples/check/sandbox-pod.yaml", "-o", "yaml"], None);
    assert_eq!(out.status.code(), Some(1), "the exit code still says what is denied");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(docs.len(), 1, "the one pod of the input");
    let pod = &docs[0];
    assert_eq!(pod["metadata"]["annotations"]["harness-guard.dev/inference-provider"], "openai");
    let env = pod["spec"]["containers"][0]["env"].as_array().unwrap();
    let no_proxy = env.iter().find(|e| e["name"] == "NO_PROXY").expect("NO_PROXY injected");
    assert!(no_proxy["value"].as_str().unwrap().contains("api.openai.com"), "{no_proxy}");
    assert!(env.iter().any(|e| e["name"] == "HTTPS_PROXY"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("Pod openshell/team-a-slackbot: /mutate would patch"), "{stderr}");
}

/// `-o junit`: read back by a real XML parser, one test case per object with the file and line
/// it came from, denials as failures.
#[test]
fn junit_output_reads_as_a_test_report() {
    use quick_xml::events::{BytesStart, Event};
    let out = check(&["-f", "examples/cluster", "-f", "examples/check", "-o", "junit"], None);
    assert_eq!(out.status.code(), Some(1));
    let xml = String::from_utf8(out.stdout).unwrap();
    let attr =
        |e: &BytesStart, k: &str| e.attributes().flatten().find(|a| a.key.as_ref() == k).map(|a| a.value.to_string());
    /// (name, file, line, failure type if any): one testcase.
    type Case = (String, Option<String>, Option<String>, Option<String>);
    let mut cases: Vec<Case> = Vec::new();
    let mut reader = quick_xml::Reader::from_str(&xml);
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "testcase" => {
                cases.push((attr(&e, "name").unwrap(), attr(&e, "file"), attr(&e, "line"), None));
            }
            Event::Start(e) if e.name().as_ref() == "failure" => {
                cases.last_mut().expect("a failure sits in a testcase").3 = attr(&e, "type");
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let case = |name: &str| cases.iter().find(|c| c.0 == name).unwrap_or_else(|| panic!("{name} in {xml}"));
    let bad = case("AgentHarness team-a/bad-ref");
    assert_eq!(bad.1.as_deref(), Some("examples/cluster/20-broken-harnesses.yaml"));
    assert_eq!(bad.2.as_deref(), Some("4"), "the document's first line, after its comments");
    assert_eq!(bad.3.as_deref(), Some("model-config-ref"));
    let good = case("AgentHarness default/helper");
    assert_eq!(
        (good.1.as_deref(), good.2.as_deref(), &good.3),
        (Some("examples/check/no-namespace.yaml"), Some("2"), &None)
    );
    assert!(cases.iter().all(|c| c.1.is_some() && c.2.is_some()), "{cases:?}");
    let failed = cases.iter().filter(|c| c.3.is_some()).count();
    assert!(xml.contains(&format!("tests=\"{}\" failures=\"{failed}\"", cases.len())), "{xml}");
    assert!(!xml.contains("sk-"), "no value in the report");
}

/// `-o sarif`: read back into the types generated from the SARIF 2.1.0 schema, one result per
/// finding with its rule, level, file and line.
#[test]
fn sarif_output_reads_as_sarif() {
    let sarif = |file: &str| {
        let out = check(&["-f", file, "-o", "sarif"], None);
        let text = String::from_utf8(out.stdout).unwrap();
        let typed: serde_sarif::sarif::Sarif = serde_json::from_str(&text).expect("valid SARIF 2.1.0");
        assert_eq!(typed.runs.len(), 1);
        assert!(!text.contains("sk-"), "no value in the report");
        (out.status.code(), serde_json::from_str::<serde_json::Value>(&text).unwrap())
    };
    let result = |doc: &serde_json::Value, rule: &str| {
        let r = doc["runs"][0]["results"].as_array().unwrap().iter().find(|r| r["ruleId"] == rule).cloned();
        r.unwrap_or_else(|| panic!("{rule} in {doc}"))
    };

    let (code, doc) = sarif("examples/cluster");
    assert_eq!(code, Some(1));
    let bad_ref = result(&doc, "model-config-ref");
    assert_eq!(bad_ref["level"], "error");
    let location = &bad_ref["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "examples/cluster/20-broken-harnesses.yaml");
    assert_eq!(location["region"]["startLine"], 4);
    assert!(bad_ref["message"]["text"].as_str().unwrap().contains("team-a/bad-ref"));
    let ids: Vec<&str> = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"model-config-ref") && ids.contains(&"key-in-env"), "{ids:?}");

    let (code, doc) = sarif("examples/configurations/private-ca.yaml");
    assert_eq!(code, Some(0), "a warning alone does not fail the step");
    let ignored = result(&doc, "ignored-setting");
    assert_eq!(ignored["level"], "warning");
    assert_eq!(ignored["locations"][0]["physicalLocation"]["region"]["startLine"], 20);
}
