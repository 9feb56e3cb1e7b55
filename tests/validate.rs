//! Table tests of the pure AgentHarness decision: one row per rule and branch, across the three
//! kagent CRD eras (v0.9.5: no runtime; v0.9.12: runtime; main: substrate only).

mod common;

use common::view::MapView;
use harness_guard::core::model::AgentHarness;
use harness_guard::core::policy::{Action, Policy, Rule};
use harness_guard::core::validate::{Change, is_placeholder, parse_model_config_ref, validate_harness};
use harness_guard::core::verdict::Verdict;

const CLUSTER: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: litellm-key, namespace: team-a}
stringData: {OPENAI_API_KEY: "sk-test-value-1\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: slack-tokens, namespace: team-a}
data: {bot: eG94Yi10ZXN0, app: eGFwcC10ZXN0}
---
apiVersion: v1
kind: Secret
metadata: {name: empty-key, namespace: team-a}
stringData: {OPENAI_API_KEY: "   "}
---
apiVersion: v1
kind: Secret
metadata: {name: other-key, namespace: team-b}
stringData: {SECRET_KEY_NAME_B: "sk-b"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: tg, namespace: team-a}
data: {token: "123:abc", blank: ""}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: litellm-gpt, namespace: team-a}
spec:
  model: gpt-4.1-mini
  apiKeySecret: litellm-key
  apiKeySecretKey: OPENAI_API_KEY
  openAI: {baseUrl: "https://litellm.example.internal/v1"}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: plain, namespace: team-a}
spec: {model: gpt-4.1, apiKeySecret: litellm-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: ollama-nokey, namespace: team-a}
spec: {provider: Ollama, model: llama3}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: half, namespace: team-a}
spec: {model: gpt-4.1, apiKeySecret: litellm-key}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: passthrough, namespace: team-a}
spec: {model: gpt-4.1, apiKeyPassthrough: true}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: sap, namespace: team-a}
spec: {provider: SAPAICore, model: m, apiKeySecret: litellm-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: gpt-missing-secret, namespace: team-a}
spec: {model: gpt-4.1, apiKeySecret: openai-creds, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: gpt-wrong-key, namespace: team-a}
spec: {model: gpt-4.1, apiKeySecret: litellm-key, apiKeySecretKey: api-key}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: gpt-empty-key, namespace: team-a}
spec: {model: gpt-4.1, apiKeySecret: empty-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: shared, namespace: team-b}
spec: {model: gpt-4.1, apiKeySecret: other-key, apiKeySecretKey: SECRET_KEY_NAME_B}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: shared-wrong, namespace: team-b}
spec: {model: gpt-4.1, apiKeySecret: other-key, apiKeySecretKey: missing}
"#;

/// A harness in team-a with `spec` given as a YAML flow mapping body.
fn harness(name: &str, spec: &str) -> AgentHarness {
    let yaml = format!("metadata: {{name: {name}, namespace: team-a}}\nspec:\n{spec}");
    serde_saphyr::from_str(&yaml).expect("test harness parses")
}

fn judge(h: &AgentHarness, change: Change, policy: &Policy) -> Verdict {
    validate_harness(h, change, &MapView::from_yaml(CLUSTER), policy)
}

fn rules(findings: &[harness_guard::core::verdict::Finding]) -> Vec<Rule> {
    findings.iter().map(|f| f.rule).collect()
}

const OPENSHELL_095: &str = "  backend: openclaw\n";
const OPENSHELL_0912: &str = "  backend: openclaw\n  runtime: openshell\n";
const SUBSTRATE_0912: &str = "  backend: openclaw\n  runtime: substrate\n  substrate: {gatewayToken: t}\n";
const SUBSTRATE_MAIN: &str = "  backend: hermes\n  substrate: {gatewayToken: t}\n";
const EGRESS: &str = "  network: {allowedDomains: [litellm.example.internal]}\n";

struct Row {
    name: &'static str,
    era: &'static str,
    spec: &'static str,
    denied: &'static [Rule],
    warned: &'static [Rule],
    /// Fragments the denial (or, if none, the warnings) must contain.
    says: &'static [&'static str],
}

fn rows() -> Vec<Row> {
    use Rule::*;
    let row = |name, era, spec, denied, warned, says| Row { name, era, spec, denied, warned, says };
    vec![
        row(
            "good-095",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n  env: [{name: TZ, value: UTC}]\n",
            &[],
            &[],
            &[],
        ),
        row("good-0912", OPENSHELL_0912, "  modelConfigRef: team-a/litellm-gpt\n", &[], &[], &[]),
        row("good-substrate-0912", SUBSTRATE_0912, "  modelConfigRef: litellm-gpt\n", &[], &[], &[]),
        row("good-main", SUBSTRATE_MAIN, "  modelConfigRef: litellm-gpt\n", &[], &[], &[]),
        row("no-ref", OPENSHELL_095, "  description: no model bootstrap\n", &[], &[], &[]),
        row("cross-namespace", OPENSHELL_095, "  modelConfigRef: team-b/shared\n", &[], &[], &[]),
        row(
            "ref-two-slashes",
            OPENSHELL_095,
            "  modelConfigRef: a/b/c\n",
            &[ModelConfigRef],
            &[],
            &["spec.modelConfigRef \"a/b/c\"", "more than one \"/\""],
        ),
        row("ref-empty-ns", OPENSHELL_095, "  modelConfigRef: /x\n", &[ModelConfigRef], &[], &["namespace \"\""]),
        row("ref-empty-name", OPENSHELL_095, "  modelConfigRef: team-a/\n", &[ModelConfigRef], &[], &["name \"\""]),
        row("ref-uppercase", OPENSHELL_0912, "  modelConfigRef: Team-A/x\n", &[ModelConfigRef], &[], &["DNS-1123"]),
        row(
            "mc-missing",
            OPENSHELL_095,
            "  modelConfigRef: gpt4\n",
            &[ModelConfigExists],
            &[],
            &["ModelConfig team-a/gpt4 does not exist", "Create the ModelConfig"],
        ),
        row(
            "mc-missing-main",
            SUBSTRATE_MAIN,
            "  modelConfigRef: gpt4\n",
            &[ModelConfigExists],
            &[],
            &["ModelConfig team-a/gpt4 does not exist"],
        ),
        row(
            "ollama-no-key",
            OPENSHELL_095,
            "  modelConfigRef: ollama-nokey\n",
            &[ModelSecretNamed],
            &[],
            &["names no API key Secret", "Ollama included", "spec.apiKeySecret and spec.apiKeySecretKey are unset"],
        ),
        row(
            "ollama-no-key-substrate",
            SUBSTRATE_MAIN,
            "  modelConfigRef: ollama-nokey\n",
            &[ModelSecretNamed],
            &[],
            &["names no API key Secret"],
        ),
        row(
            "half-named",
            OPENSHELL_0912,
            "  modelConfigRef: half\n",
            &[ModelSecretNamed],
            &[],
            &["spec.apiKeySecretKey is unset"],
        ),
        row(
            "passthrough",
            OPENSHELL_095,
            "  modelConfigRef: passthrough\n",
            &[ModelSecretNamed, ModelSecretNamed],
            &[],
            &["apiKeyPassthrough, which kagent's OpenShell runtime rejects"],
        ),
        row("sap-openshell", OPENSHELL_095, "  modelConfigRef: sap\n", &[ModelSecretNamed], &[], &["SAPAICore"]),
        row("sap-substrate", SUBSTRATE_MAIN, "  modelConfigRef: sap\n", &[], &[], &[]),
        row(
            "secret-missing",
            OPENSHELL_095,
            "  modelConfigRef: gpt-missing-secret\n",
            &[ModelSecretResolves],
            &[],
            &[
                "Secret team-a/openai-creds does not exist",
                "Create it in namespace team-a with the key \"OPENAI_API_KEY\"",
            ],
        ),
        row(
            "key-missing",
            OPENSHELL_0912,
            "  modelConfigRef: gpt-wrong-key\n",
            &[ModelSecretResolves],
            &[],
            &["has no key \"api-key\" (keys present: OPENAI_API_KEY)", "set spec.apiKeySecretKey"],
        ),
        row(
            "key-missing-substrate",
            SUBSTRATE_0912,
            "  modelConfigRef: gpt-wrong-key\n",
            &[ModelSecretResolves],
            &[],
            &["has no key \"api-key\""],
        ),
        row(
            "key-blank",
            OPENSHELL_095,
            "  modelConfigRef: gpt-empty-key\n",
            &[ModelSecretResolves],
            &[],
            &["has key \"OPENAI_API_KEY\", but its value is empty"],
        ),
        row(
            "other-tenant-keys-hidden",
            OPENSHELL_095,
            "  modelConfigRef: team-b/shared-wrong\n",
            &[ModelSecretResolves],
            &[],
            &["Secret team-b/other-key has no key \"missing\". "],
        ),
        row(
            "slack-key-missing",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n  channels:\n  - name: main\n    type: slack\n    slack:\n      botToken: {valueFrom: {type: Secret, name: slack-tokens, key: bot-token}}\n      appToken: {valueFrom: {type: Secret, name: slack-tokens, key: app}}\n",
            &[ChannelTokens],
            &[],
            &[
                "spec.channels[0].slack.botToken.valueFrom → Secret team-a/slack-tokens has no key \"bot-token\" (keys present: app, bot)",
            ],
        ),
        row(
            "slack-secret-missing",
            OPENSHELL_095,
            "  channels:\n  - name: main\n    type: slack\n    slack:\n      botToken: {valueFrom: {type: Secret, name: nope, key: bot}}\n      appToken: {value: xapp-inline}\n",
            &[ChannelTokens],
            &[],
            &["Secret team-a/nope does not exist"],
        ),
        row(
            "telegram-configmap-ok",
            OPENSHELL_095,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram: {botToken: {valueFrom: {type: ConfigMap, name: tg, key: token}}}\n",
            &[],
            &[],
            &[],
        ),
        row(
            "telegram-configmap-blank",
            OPENSHELL_095,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram: {botToken: {valueFrom: {type: ConfigMap, name: tg, key: blank}}}\n",
            &[ChannelTokens],
            &[],
            &["ConfigMap team-a/tg has key \"blank\", but its value is empty"],
        ),
        row(
            "telegram-configmap-missing",
            SUBSTRATE_MAIN,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram: {botToken: {valueFrom: {type: ConfigMap, name: nope, key: token}}}\n",
            &[ChannelTokens],
            &[],
            &["ConfigMap team-a/nope does not exist"],
        ),
        row(
            "env-holds-key",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n  env: [{name: LLM_TOKEN, value: sk-test-value-1}]\n",
            &[KeyInEnv],
            &[],
            &["spec.env[0] (LLM_TOKEN) holds the model API key from Secret team-a/litellm-key"],
        ),
        row(
            "env-holds-key-padded",
            SUBSTRATE_MAIN,
            "  modelConfigRef: litellm-gpt\n  env: [{name: A, value: ok}, {name: B, value: \" sk-test-value-1 \"}]\n",
            &[KeyInEnv],
            &[],
            &["spec.env[1] (B)"],
        ),
        row(
            "env-key-var-literal",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n  env: [{name: OPENAI_API_KEY, value: sk-something-else}]\n",
            &[KeyInEnv],
            &[],
            &["not an OpenShell placeholder", "openshell:resolve:env:OPENAI_API_KEY"],
        ),
        row(
            "env-key-var-placeholder",
            OPENSHELL_0912,
            "  modelConfigRef: litellm-gpt\n  env: [{name: OPENAI_API_KEY, value: \"openshell:resolve:env:OPENAI_API_KEY\"}]\n",
            &[],
            &[],
            &[],
        ),
        row(
            "env-key-var-revisioned",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n  env: [{name: OPENAI_API_KEY, value: \"openshell:resolve:env:v42_OPENAI_API_KEY\"}]\n",
            &[],
            &[],
            &[],
        ),
        row(
            "env-key-var-substrate",
            SUBSTRATE_MAIN,
            "  modelConfigRef: litellm-gpt\n  env: [{name: OPENAI_API_KEY, value: sk-something-else}]\n",
            &[],
            &[],
            &[],
        ),
        row(
            "no-egress-rule",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n",
            &[],
            &[AllowedDomains],
            &[
                "LLM host litellm.example.internal (ModelConfig team-a/litellm-gpt) is not in spec.network.allowedDomains",
            ],
        ),
        row(
            "egress-wildcard",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n  network: {allowedDomains: [\"*.example.internal\"]}\n",
            &[],
            &[],
            &[],
        ),
        row("no-egress-substrate", SUBSTRATE_MAIN, "  modelConfigRef: litellm-gpt\n", &[], &[], &[]),
        row(
            "several",
            OPENSHELL_095,
            "  modelConfigRef: gpt4\n  channels:\n  - name: main\n    type: slack\n    slack:\n      botToken: {valueFrom: {type: Secret, name: nope, key: bot}}\n      appToken: {valueFrom: {type: Secret, name: slack-tokens, key: app}}\n",
            &[ModelConfigExists, ChannelTokens],
            &[],
            &["ModelConfig team-a/gpt4 does not exist", "\nAgentHarness team-a/several: spec.channels[0]"],
        ),
    ]
}

#[test]
fn every_rule_and_branch() {
    let policy = Policy::default();
    let mut failures = Vec::new();
    for row in rows() {
        let spec = if row.spec.contains("network:") || !row.spec.contains("litellm-gpt") {
            row.spec.to_string()
        } else {
            format!("{}{EGRESS}", row.spec)
        };
        let spec = if row.name.starts_with("no-egress") { row.spec.to_string() } else { spec };
        let h = harness(row.name, &format!("{}{}", row.era, spec));
        let v = judge(&h, Change::Create, &policy);
        let text = if v.denials.is_empty() { v.warning_lines().join("\n") } else { v.denial_message() };
        let ok = rules(&v.denials) == row.denied
            && rules(&v.warnings) == row.warned
            && row.says.iter().all(|s| text.contains(s));
        if !ok {
            failures.push(format!(
                "{}: denied {:?} warned {:?}\n  {text}",
                row.name,
                rules(&v.denials),
                rules(&v.warnings)
            ));
        }
    }
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn denial_names_the_harness_and_never_a_value() {
    let h = harness(
        "leaky",
        &format!(
            "{OPENSHELL_095}  modelConfigRef: litellm-gpt\n  env: [{{name: X, value: sk-test-value-1}}]\n{EGRESS}"
        ),
    );
    let v = judge(&h, Change::Create, &Policy::default());
    let msg = v.denial_message();
    assert!(msg.starts_with("AgentHarness team-a/leaky: "), "{msg}");
    assert!(!msg.contains("sk-test-value-1"), "{msg}");
}

#[test]
fn changes_that_are_never_blocked() {
    let broken = harness("broken", &format!("{OPENSHELL_095}  modelConfigRef: gpt4\n"));
    let policy = Policy::default();
    assert!(!judge(&broken, Change::Create, &policy).allowed());
    assert!(!judge(&broken, Change::SpecUpdate, &policy).allowed());
    assert_eq!(judge(&broken, Change::Delete, &policy), Verdict::default());
    assert_eq!(judge(&broken, Change::Deleting, &policy), Verdict::default());
    let meta = judge(&broken, Change::MetadataUpdate, &policy);
    assert!(meta.allowed());
    assert_eq!(rules(&meta.warnings), vec![Rule::ModelConfigExists]);
}

#[test]
fn policy_actions_per_rule() {
    let broken = harness("broken", &format!("{OPENSHELL_095}  modelConfigRef: gpt4\n"));
    let mut policy = Policy::default();
    policy.rules.insert(Rule::ModelConfigExists, Action::Warn);
    let v = judge(&broken, Change::Create, &policy);
    assert!(v.allowed());
    assert_eq!(rules(&v.warnings), vec![Rule::ModelConfigExists]);
    policy.rules.insert(Rule::ModelConfigExists, Action::Off);
    assert_eq!(judge(&broken, Change::Create, &policy), Verdict::default());
    let no_egress = harness("no-egress", &format!("{OPENSHELL_095}  modelConfigRef: litellm-gpt\n"));
    policy.rules.insert(Rule::AllowedDomains, Action::Deny);
    assert_eq!(rules(&judge(&no_egress, Change::Create, &policy).denials), vec![Rule::AllowedDomains]);
    // A reference harness-guard does not watch can never be denied as missing.
    policy.rules.insert(Rule::NotWatched, Action::Deny);
    assert_eq!(policy.action(Rule::NotWatched), Action::Warn);
}

#[test]
fn references_outside_the_watched_scope_warn() {
    let mut view = MapView::from_yaml(CLUSTER);
    view.scope.namespaces = vec!["team-a".into()];
    let h = harness("elsewhere", &format!("{OPENSHELL_095}  modelConfigRef: team-c/gpt\n"));
    let v = validate_harness(&h, Change::Create, &view, &Policy::default());
    assert!(v.allowed(), "{v:?}");
    assert_eq!(rules(&v.warnings), vec![Rule::NotWatched]);
    assert!(v.warning_lines()[0].contains("ModelConfig team-c/gpt is outside"), "{:?}", v.warning_lines());
}

#[test]
fn model_config_refs() {
    assert_eq!(parse_model_config_ref("gpt", "team-a"), Ok(("team-a", "gpt")));
    assert_eq!(parse_model_config_ref("team-b/gpt.v1", "team-a"), Ok(("team-b", "gpt.v1")));
    for bad in
        ["", "/", "a/", "/a", "a/b/c", "A", "a_b", "-a", "a-", &"a".repeat(254), &format!("{}/a", "n".repeat(64))]
    {
        assert!(parse_model_config_ref(bad, "team-a").is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn placeholders() {
    for ok in [
        "openshell:resolve:env:OPENAI_API_KEY",
        "openshell:resolve:env:v1234abcd_OPENAI_API_KEY",
        "xoxb-OPENSHELL-RESOLVE-ENV-SLACK_BOT_TOKEN_MAIN",
        "sk.~_-OPENSHELL-RESOLVE-ENV-KEY",
    ] {
        assert!(is_placeholder(ok), "{ok}");
    }
    for bad in [
        "sk-real",
        "openshell:resolve:env:",
        "openshell:resolve:env:A-B",
        "OPENSHELL-RESOLVE-ENV-KEY",
        "x y-OPENSHELL-RESOLVE-ENV-KEY",
        "",
    ] {
        assert!(!is_placeholder(bad), "{bad}");
    }
}
