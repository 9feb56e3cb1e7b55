//! Table tests of the pure AgentHarness decision: one row per rule and branch, across the three
//! kagent CRD eras (v0.9.5: no runtime; v0.9.12: runtime; main: substrate only).

mod common;

use common::view::MapView;
use harness_guard::core::finding::{Cause, Finding};
use harness_guard::core::message;
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

fn rules(findings: &[Finding]) -> Vec<Rule> {
    findings.iter().map(|f| f.rule).collect()
}

/// A finding's identity with its place written out: `(rule, "field of Kind ns/name", cause)`.
type Id = (Rule, &'static str, Cause);

fn ids(findings: &[Finding]) -> Vec<(Rule, String, Cause)> {
    findings.iter().map(|f| (f.rule, f.at.to_string(), f.cause)).collect()
}

fn expect(ids: &[Id]) -> Vec<(Rule, String, Cause)> {
    ids.iter().map(|(r, at, c)| (*r, at.to_string(), *c)).collect()
}

const OPENSHELL_095: &str = "  backend: openclaw\n";
const OPENSHELL_0912: &str = "  backend: openclaw\n  runtime: openshell\n";
const SUBSTRATE_0912: &str = "  backend: openclaw\n  runtime: substrate\n  substrate: {gatewayToken: t}\n";
const SUBSTRATE_MAIN: &str = "  backend: hermes\n  substrate: {gatewayToken: t}\n";

/// `spec.network` letting the sandbox reach litellm-gpt's host: rows that are not about egress
/// add it, so that their only findings are the ones they are about.
macro_rules! egress {
    () => {
        "  network: {allowedDomains: [litellm.example.internal]}\n"
    };
}

struct Row {
    name: &'static str,
    era: &'static str,
    spec: &'static str,
    denied: &'static [Id],
    warned: &'static [Id],
}

fn rows() -> Vec<Row> {
    use Cause::*;
    use Rule::*;
    let row = |name, era, spec, denied, warned| Row { name, era, spec, denied, warned };
    vec![
        row(
            "good-095",
            OPENSHELL_095,
            concat!("  modelConfigRef: litellm-gpt\n  env: [{name: TZ, value: UTC}]\n", egress!()),
            &[],
            &[],
        ),
        row("good-0912", OPENSHELL_0912, concat!("  modelConfigRef: team-a/litellm-gpt\n", egress!()), &[], &[]),
        row("good-substrate-0912", SUBSTRATE_0912, "  modelConfigRef: litellm-gpt\n", &[], &[]),
        row("good-main", SUBSTRATE_MAIN, "  modelConfigRef: litellm-gpt\n", &[], &[]),
        row("no-ref", OPENSHELL_095, "  description: no model bootstrap\n", &[], &[]),
        row("cross-namespace", OPENSHELL_095, "  modelConfigRef: team-b/shared\n", &[], &[]),
        row(
            "ref-two-slashes",
            OPENSHELL_095,
            "  modelConfigRef: a/b/c\n",
            &[(ModelConfigRef, "spec.modelConfigRef of AgentHarness team-a/ref-two-slashes", Invalid)],
            &[],
        ),
        row(
            "ref-empty-ns",
            OPENSHELL_095,
            "  modelConfigRef: /x\n",
            &[(ModelConfigRef, "spec.modelConfigRef of AgentHarness team-a/ref-empty-ns", Invalid)],
            &[],
        ),
        row(
            "ref-empty-name",
            OPENSHELL_095,
            "  modelConfigRef: team-a/\n",
            &[(ModelConfigRef, "spec.modelConfigRef of AgentHarness team-a/ref-empty-name", Invalid)],
            &[],
        ),
        row(
            "ref-uppercase",
            OPENSHELL_0912,
            "  modelConfigRef: Team-A/x\n",
            &[(ModelConfigRef, "spec.modelConfigRef of AgentHarness team-a/ref-uppercase", Invalid)],
            &[],
        ),
        row(
            "mc-missing",
            OPENSHELL_095,
            "  modelConfigRef: gpt4\n",
            &[(ModelConfigExists, "ModelConfig team-a/gpt4", Missing)],
            &[],
        ),
        row(
            "mc-missing-main",
            SUBSTRATE_MAIN,
            "  modelConfigRef: gpt4\n",
            &[(ModelConfigExists, "ModelConfig team-a/gpt4", Missing)],
            &[],
        ),
        row(
            "ollama-no-key",
            OPENSHELL_095,
            "  modelConfigRef: ollama-nokey\n",
            &[(ModelSecretNamed, "spec.apiKeySecret of ModelConfig team-a/ollama-nokey", Unset)],
            &[],
        ),
        row(
            "ollama-no-key-substrate",
            SUBSTRATE_MAIN,
            "  modelConfigRef: ollama-nokey\n",
            &[(ModelSecretNamed, "spec.apiKeySecret of ModelConfig team-a/ollama-nokey", Unset)],
            &[],
        ),
        row(
            "half-named",
            OPENSHELL_0912,
            "  modelConfigRef: half\n",
            &[(ModelSecretNamed, "spec.apiKeySecretKey of ModelConfig team-a/half", Unset)],
            &[],
        ),
        row(
            "passthrough",
            OPENSHELL_095,
            "  modelConfigRef: passthrough\n",
            &[
                (ModelSecretNamed, "spec.apiKeyPassthrough of ModelConfig team-a/passthrough", Unsupported),
                (ModelSecretNamed, "spec.apiKeySecret of ModelConfig team-a/passthrough", Unset),
            ],
            &[],
        ),
        row(
            "sap-openshell",
            OPENSHELL_095,
            "  modelConfigRef: sap\n",
            &[(ModelSecretNamed, "spec.provider of ModelConfig team-a/sap", Unsupported)],
            &[],
        ),
        row("sap-substrate", SUBSTRATE_MAIN, "  modelConfigRef: sap\n", &[], &[]),
        row(
            "secret-missing",
            OPENSHELL_095,
            "  modelConfigRef: gpt-missing-secret\n",
            &[(ModelSecretResolves, "data[OPENAI_API_KEY] of Secret team-a/openai-creds", Missing)],
            &[],
        ),
        row(
            "key-missing",
            OPENSHELL_0912,
            "  modelConfigRef: gpt-wrong-key\n",
            &[(ModelSecretResolves, "data[api-key] of Secret team-a/litellm-key", Missing)],
            &[],
        ),
        row(
            "key-missing-substrate",
            SUBSTRATE_0912,
            "  modelConfigRef: gpt-wrong-key\n",
            &[(ModelSecretResolves, "data[api-key] of Secret team-a/litellm-key", Missing)],
            &[],
        ),
        row(
            "key-blank",
            OPENSHELL_095,
            "  modelConfigRef: gpt-empty-key\n",
            &[(ModelSecretResolves, "data[OPENAI_API_KEY] of Secret team-a/empty-key", Empty)],
            &[],
        ),
        row(
            "other-tenant-keys-hidden",
            OPENSHELL_095,
            "  modelConfigRef: team-b/shared-wrong\n",
            &[(ModelSecretResolves, "data[missing] of Secret team-b/other-key", Missing)],
            &[],
        ),
        row(
            "slack-key-missing",
            OPENSHELL_095,
            concat!(
                "  modelConfigRef: litellm-gpt\n  channels:\n  - name: main\n    type: slack\n    slack:\n",
                "      botToken: {valueFrom: {type: Secret, name: slack-tokens, key: bot-token}}\n",
                "      appToken: {valueFrom: {type: Secret, name: slack-tokens, key: app}}\n",
                egress!()
            ),
            &[(ChannelTokens, "data[bot-token] of Secret team-a/slack-tokens", Missing)],
            &[],
        ),
        row(
            "slack-secret-missing",
            OPENSHELL_095,
            "  channels:\n  - name: main\n    type: slack\n    slack:\n      botToken: {valueFrom: {type: Secret, name: nope, key: bot}}\n      appToken: {value: xapp-inline}\n",
            &[(ChannelTokens, "data[bot] of Secret team-a/nope", Missing)],
            &[],
        ),
        row(
            "channel-bad-type",
            OPENSHELL_095,
            "  channels:\n  - name: main\n    type: slack\n    slack:\n      botToken: {valueFrom: {type: Vault, name: x, key: bot}}\n",
            &[(
                ChannelTokens,
                "spec.channels[0].slack.botToken.valueFrom.type of AgentHarness team-a/channel-bad-type",
                Invalid,
            )],
            &[],
        ),
        row(
            "telegram-configmap-ok",
            OPENSHELL_095,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram: {botToken: {valueFrom: {type: ConfigMap, name: tg, key: token}}}\n",
            &[],
            &[],
        ),
        row(
            "telegram-configmap-blank",
            OPENSHELL_095,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram: {botToken: {valueFrom: {type: ConfigMap, name: tg, key: blank}}}\n",
            &[(ChannelTokens, "data[blank] of ConfigMap team-a/tg", Empty)],
            &[],
        ),
        row(
            "telegram-configmap-missing",
            SUBSTRATE_MAIN,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram: {botToken: {valueFrom: {type: ConfigMap, name: nope, key: token}}}\n",
            &[(ChannelTokens, "data[token] of ConfigMap team-a/nope", Missing)],
            &[],
        ),
        row(
            "env-holds-key",
            OPENSHELL_095,
            concat!("  modelConfigRef: litellm-gpt\n  env: [{name: LLM_TOKEN, value: sk-test-value-1}]\n", egress!()),
            &[(KeyInEnv, "spec.env[0] of AgentHarness team-a/env-holds-key", LiteralKey)],
            &[],
        ),
        row(
            "env-holds-key-padded",
            SUBSTRATE_MAIN,
            "  modelConfigRef: litellm-gpt\n  env: [{name: A, value: ok}, {name: B, value: \" sk-test-value-1 \"}]\n",
            &[(KeyInEnv, "spec.env[1] of AgentHarness team-a/env-holds-key-padded", LiteralKey)],
            &[],
        ),
        row(
            "env-key-var-literal",
            OPENSHELL_095,
            concat!(
                "  modelConfigRef: litellm-gpt\n  env: [{name: OPENAI_API_KEY, value: sk-something-else}]\n",
                egress!()
            ),
            &[(KeyInEnv, "spec.env[0] of AgentHarness team-a/env-key-var-literal", NotPlaceholder)],
            &[],
        ),
        row(
            "env-key-var-placeholder",
            OPENSHELL_0912,
            concat!(
                "  modelConfigRef: litellm-gpt\n",
                "  env: [{name: OPENAI_API_KEY, value: \"openshell:resolve:env:OPENAI_API_KEY\"}]\n",
                egress!()
            ),
            &[],
            &[],
        ),
        row(
            "env-key-var-revisioned",
            OPENSHELL_095,
            concat!(
                "  modelConfigRef: litellm-gpt\n",
                "  env: [{name: OPENAI_API_KEY, value: \"openshell:resolve:env:v42_OPENAI_API_KEY\"}]\n",
                egress!()
            ),
            &[],
            &[],
        ),
        row(
            "env-key-var-substrate",
            SUBSTRATE_MAIN,
            "  modelConfigRef: litellm-gpt\n  env: [{name: OPENAI_API_KEY, value: sk-something-else}]\n",
            &[],
            &[],
        ),
        row(
            "no-egress-rule",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n",
            &[],
            &[(AllowedDomains, "spec.network.allowedDomains of AgentHarness team-a/no-egress-rule", NotAllowed)],
        ),
        row(
            "egress-wildcard",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n  network: {allowedDomains: [\"*.example.internal\"]}\n",
            &[],
            &[],
        ),
        row("no-egress-substrate", SUBSTRATE_MAIN, "  modelConfigRef: litellm-gpt\n", &[], &[]),
        row(
            "several",
            OPENSHELL_095,
            "  modelConfigRef: gpt4\n  channels:\n  - name: main\n    type: slack\n    slack:\n      botToken: {valueFrom: {type: Secret, name: nope, key: bot}}\n      appToken: {valueFrom: {type: Secret, name: slack-tokens, key: app}}\n",
            &[
                (ModelConfigExists, "ModelConfig team-a/gpt4", Missing),
                (ChannelTokens, "data[bot] of Secret team-a/nope", Missing),
            ],
            &[],
        ),
    ]
}

#[test]
fn every_rule_and_branch() {
    let policy = Policy::default();
    let mut failures = Vec::new();
    for row in rows() {
        let h = harness(row.name, &format!("{}{}", row.era, row.spec));
        let v = judge(&h, Change::Create, &policy);
        if ids(&v.denials) != expect(row.denied) || ids(&v.warnings) != expect(row.warned) {
            failures.push(format!("{}: denied {:?}\n  warned {:?}", row.name, ids(&v.denials), ids(&v.warnings)));
        }
    }
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn denial_names_the_harness_and_never_a_value() {
    let h = harness(
        "leaky",
        &format!(
            "{OPENSHELL_095}  modelConfigRef: litellm-gpt\n  env: [{{name: X, value: sk-test-value-1}}]\n  network: {{allowedDomains: [litellm.example.internal]}}
"
        ),
    );
    let v = judge(&h, Change::Create, &Policy::default());
    let msg = message::denial(&v);
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
    assert_eq!(ids(&v.warnings), vec![(Rule::NotWatched, "ModelConfig team-c/gpt".to_string(), Cause::NotWatched)]);
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

/// With a label selector, a Secret the view does not hold may exist unlabelled: the real view says
/// so (not watched, a warning) instead of "missing" (a denial). Namespaces are covered above.
#[test]
fn a_selective_view_reports_absent_secrets_as_not_watched() {
    use harness_guard::cluster::manifests::Loader;
    use harness_guard::cluster::view::View;
    use harness_guard::core::policy::WatchPolicy;
    use harness_guard::core::view::Digester;

    let digester = Digester::random();
    let mut objects = Default::default();
    Loader::new(&digester).load_text(std::path::Path::new("cluster.yaml"), CLUSTER, &mut objects).unwrap();
    let scope = WatchPolicy { label_selector: "harness-guard.dev/watch=true".into(), ..Default::default() };
    let (selective, feeds) = View::new(&scope, digester.clone());
    objects.feed(feeds);
    let h = harness("selected", &format!("{OPENSHELL_095}  modelConfigRef: gpt-missing-secret\n"));
    let v = validate_harness(&h, Change::Create, &selective, &Policy::default());
    assert!(v.allowed(), "{v:?}");
    let at = "data[OPENAI_API_KEY] of Secret team-a/openai-creds".to_string();
    assert_eq!(ids(&v.warnings), vec![(Rule::NotWatched, at.clone(), Cause::NotWatched)]);
    // The same harness against a view without a selector: the Secret is known to be missing.
    let mut objects = Default::default();
    Loader::new(&digester).load_text(std::path::Path::new("cluster.yaml"), CLUSTER, &mut objects).unwrap();
    let (plain, feeds) = View::new(&WatchPolicy::default(), digester);
    objects.feed(feeds);
    let v = validate_harness(&h, Change::Create, &plain, &Policy::default());
    assert_eq!(ids(&v.denials), vec![(Rule::ModelSecretResolves, at, Cause::Missing)]);
}
