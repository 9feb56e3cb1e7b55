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
