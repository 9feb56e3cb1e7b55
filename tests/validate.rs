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
metadata: {name: openai-key, namespace: team-a}
stringData: {OPENAI_API_KEY: "sk-test-value-1"}
---
apiVersion: v1
kind: Secret
metadata: {name: file-key, namespace: team-a}
stringData: {OPENAI_API_KEY: "sk-test-value-2\n"}
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
metadata: {name: gw-token, namespace: team-a}
stringData: {token: gateway-test-token}
---
apiVersion: v1
kind: Secret
metadata: {name: gw-wrong, namespace: team-a}
stringData: {gateway: gateway-test-token}
---
apiVersion: v1
kind: Secret
metadata: {name: other-key, namespace: team-b}
stringData: {SECRET_KEY_NAME_B: "sk-b"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: tg, namespace: team-a}
data: {token: "123:abc", blank: "", users: "1,2"}
binaryData: {binary-token: MTIzOmFiYw==}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: plain, namespace: team-a}
spec: {model: gpt-4.1, apiKeySecret: openai-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: anthropic, namespace: team-a}
spec: {provider: Anthropic, model: claude-sonnet-4, apiKeySecret: openai-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: litellm-gpt, namespace: team-a}
spec:
  model: gpt-4.1-mini
  apiKeySecret: openai-key
  apiKeySecretKey: OPENAI_API_KEY
  openAI: {baseUrl: "https://litellm.example.internal/v1"}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: anthropic-proxy, namespace: team-a}
spec:
  provider: Anthropic
  model: claude-sonnet-4
  apiKeySecret: openai-key
  apiKeySecretKey: OPENAI_API_KEY
  anthropic: {baseUrl: "https://llm-gw.example.internal:8443"}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: openai-own, namespace: team-a}
spec:
  model: gpt-4.1
  apiKeySecret: openai-key
  apiKeySecretKey: OPENAI_API_KEY
  openAI: {baseUrl: "https://api.openai.com/v1"}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: inference-local, namespace: team-a}
spec:
  model: gpt-4.1
  apiKeySecret: openai-key
  apiKeySecretKey: OPENAI_API_KEY
  openAI: {baseUrl: "https://inference.local/v1/"}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: file-gpt, namespace: team-a}
spec: {model: gpt-4.1, apiKeySecret: file-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: ollama-nokey, namespace: team-a}
spec: {provider: Ollama, model: llama3}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: ollama-dummy, namespace: team-a}
spec: {provider: Ollama, model: llama3, apiKeySecret: openai-key, apiKeySecretKey: OPENAI_API_KEY, ollama: {host: "http://ollama:11434"}}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: azure, namespace: team-a}
spec: {provider: AzureOpenAI, model: gpt-4o, apiKeySecret: openai-key, apiKeySecretKey: OPENAI_API_KEY, azureOpenAI: {azureEndpoint: "https://x.openai.azure.com", azureAdToken: "ey-not-a-token"}}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: gemini, namespace: team-a}
spec: {provider: Gemini, model: gemini-2.5, apiKeySecret: openai-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: bedrock, namespace: team-a}
spec: {provider: Bedrock, model: claude, apiKeySecret: openai-key, apiKeySecretKey: OPENAI_API_KEY, bedrock: {region: us-east-1}}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: foundry, namespace: team-a}
spec: {provider: Foundry, model: m, apiKeySecret: openai-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: half, namespace: team-a}
spec: {model: gpt-4.1, apiKeySecret: openai-key}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: passthrough, namespace: team-a}
spec: {model: gpt-4.1, apiKeyPassthrough: true}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: sap, namespace: team-a}
spec: {provider: SAPAICore, model: m, apiKeySecret: openai-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: nomodel, namespace: team-a}
spec: {model: "", apiKeySecret: openai-key, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: tuned, namespace: team-a}
spec:
  model: gpt-4.1
  apiKeySecret: openai-key
  apiKeySecretKey: OPENAI_API_KEY
  tls: {caCertSecretRef: private-ca, caCertSecretKey: ca.crt}
  defaultHeaders: {X-Team: a}
  openAI: {tokenExchange: {audience: llm}}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: gpt-missing-secret, namespace: team-a}
spec: {model: gpt-4.1, apiKeySecret: openai-creds, apiKeySecretKey: OPENAI_API_KEY}
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: gpt-wrong-key, namespace: team-a}
spec: {model: gpt-4.1, apiKeySecret: openai-key, apiKeySecretKey: api-key}
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
---
apiVersion: kagent.dev/v1alpha2
kind: ModelConfig
metadata: {name: team-a-copy, namespace: team-b}
spec: {model: gpt-4.1, apiKeySecret: openai-key, apiKeySecretKey: OPENAI_API_KEY}
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

// The eras and runtimes (domain README §1): v0.9.5 has no spec.runtime; v0.9.12 adds it
// (default openshell); main runs Agent Substrate only (spec.substrate, no spec.runtime).
const OPENSHELL_095: &str = "  backend: openclaw\n";
const OPENSHELL_0912: &str = "  backend: openclaw\n  runtime: openshell\n";
const HERMES_095: &str = "  backend: hermes\n";
const SUBSTRATE_0912: &str = "  backend: openclaw\n  runtime: substrate\n  substrate: {gatewayToken: t}\n";
const HERMES_SUBSTRATE_0912: &str = "  backend: hermes\n  runtime: substrate\n  substrate: {gatewayToken: t}\n";
const OPENCLAW_MAIN: &str = "  backend: openclaw\n  substrate: {}\n";
const HERMES_MAIN: &str = "  backend: hermes\n  substrate: {}\n";
/// A backend only: the row's spec brings its own runtime fields.
const OPENCLAW: &str = "  backend: openclaw\n";

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
        // A working chain on every runtime and backend.
        row("good-095", OPENSHELL_095, "  modelConfigRef: plain\n  env: [{name: TZ, value: UTC}]\n", &[], &[]),
        row("good-0912", OPENSHELL_0912, "  modelConfigRef: team-a/plain\n", &[], &[]),
        row("good-hermes-openshell", HERMES_095, "  modelConfigRef: plain\n", &[], &[]),
        row("good-substrate-0912", SUBSTRATE_0912, "  modelConfigRef: plain\n", &[], &[]),
        row("good-main-openclaw", OPENCLAW_MAIN, "  modelConfigRef: plain\n", &[], &[]),
        row("good-main-hermes", HERMES_MAIN, "  modelConfigRef: plain\n", &[], &[]),
        row("no-ref", OPENSHELL_095, "  description: no model bootstrap\n", &[], &[]),
        // kagent trims the reference and reads "" as unset (K-095 openshell/translate.go ~L123-126).
        row("ref-empty", OPENSHELL_095, "  modelConfigRef: \"\"\n", &[], &[]),
        row("ref-blank", OPENSHELL_0912, "  modelConfigRef: \"   \"\n", &[], &[]),
        row("ref-padded", OPENSHELL_095, "  modelConfigRef: \" plain \"\n", &[], &[]),
        // OpenShell reads the key in the ModelConfig's namespace (modelconfig.go L28-36)...
        row("cross-namespace-openshell", OPENSHELL_095, "  modelConfigRef: team-b/shared\n", &[], &[]),
        row(
            "cross-namespace-openshell-copy",
            OPENSHELL_095,
            "  modelConfigRef: team-b/team-a-copy\n",
            &[(ModelSecretResolves, "data[OPENAI_API_KEY] of Secret team-b/openai-key", Missing)],
            &[],
        ),
        // ...substrate in the harness's (K-0912 secretKeyRef in the ActorTemplate's namespace,
        // lifecycle_actortemplate.go L19-20; K-main resolvePodEnv, lifecycle_shared.go L284-313).
        row(
            "cross-namespace-substrate",
            SUBSTRATE_0912,
            "  modelConfigRef: team-b/shared\n",
            &[(ModelSecretResolves, "data[SECRET_KEY_NAME_B] of Secret team-a/other-key", Missing)],
            &[],
        ),
        row("cross-namespace-substrate-copy", OPENCLAW_MAIN, "  modelConfigRef: team-b/team-a-copy\n", &[], &[]),
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
            HERMES_MAIN,
            "  modelConfigRef: gpt4\n",
            &[(ModelConfigExists, "ModelConfig team-a/gpt4", Missing)],
            &[],
        ),
        // provider-served, OpenShell: the gateway accepts openai, anthropic, nvidia, google-vertex-ai
        // (OpenShell openshell-core inference.rs L164-174); kagent registers lowercase(provider)
        // (K-095 openshell/translate.go L155-175). The chain stops there: no sandbox is ever made.
        row(
            "ollama-openshell",
            OPENSHELL_095,
            "  modelConfigRef: ollama-nokey\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/ollama-nokey", Unsupported)],
            &[],
        ),
        row(
            "ollama-dummy-key-openshell",
            OPENSHELL_0912,
            "  modelConfigRef: ollama-dummy\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/ollama-dummy", Unsupported)],
            &[],
        ),
        row(
            "azure-openshell",
            OPENSHELL_095,
            "  modelConfigRef: azure\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/azure", Unsupported)],
            &[],
        ),
        row(
            "gemini-openshell",
            HERMES_095,
            "  modelConfigRef: gemini\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/gemini", Unsupported)],
            &[],
        ),
        row(
            "bedrock-openshell",
            OPENSHELL_095,
            "  modelConfigRef: bedrock\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/bedrock", Unsupported)],
            &[],
        ),
        row(
            "sap-openshell",
            OPENSHELL_095,
            "  modelConfigRef: sap\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/sap", Unsupported)],
            &[],
        ),
        row("anthropic-openclaw-openshell", OPENSHELL_095, "  modelConfigRef: anthropic\n", &[], &[]),
        // hermes speaks chat completions; an anthropic route serves /v1/messages only: 400
        // (OpenShell openshell-router lib.rs L114-118, openshell-core inference.rs L61-62).
        row(
            "anthropic-hermes-openshell",
            HERMES_095,
            "  modelConfigRef: anthropic\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/anthropic", Unsupported)],
            &[],
        ),
        // provider-served, substrate: openclaw maps every provider but SAPAICore and Foundry
        // (providerAPI, K-0912/K-main openclaw/provider.go L66-69); hermes only OpenAI,
        // Anthropic, Gemini (K-main lifecycle_acp.go L148-157).
        row("ollama-openclaw-substrate", OPENCLAW_MAIN, "  modelConfigRef: ollama-dummy\n", &[], &[]),
        row("bedrock-openclaw-main", OPENCLAW_MAIN, "  modelConfigRef: bedrock\n", &[], &[]),
        row("gemini-hermes-main", HERMES_MAIN, "  modelConfigRef: gemini\n", &[], &[]),
        row("anthropic-hermes-main", HERMES_MAIN, "  modelConfigRef: anthropic\n", &[], &[]),
        row(
            "ollama-hermes-main",
            HERMES_MAIN,
            "  modelConfigRef: ollama-nokey\n",
            &[
                (ProviderServed, "spec.provider of ModelConfig team-a/ollama-nokey", Unsupported),
                (ModelSecretNamed, "spec.apiKeySecret of ModelConfig team-a/ollama-nokey", Unset),
            ],
            &[],
        ),
        row(
            "sap-substrate-openclaw",
            SUBSTRATE_0912,
            "  modelConfigRef: sap\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/sap", Unsupported)],
            &[],
        ),
        row(
            "sap-hermes-main",
            HERMES_MAIN,
            "  modelConfigRef: sap\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/sap", Unsupported)],
            &[],
        ),
        row(
            "foundry-openclaw-main",
            OPENCLAW_MAIN,
            "  modelConfigRef: foundry\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/foundry", Unsupported)],
            &[],
        ),
        row(
            "foundry-hermes-main",
            HERMES_MAIN,
            "  modelConfigRef: foundry\n",
            &[(ProviderServed, "spec.provider of ModelConfig team-a/foundry", Unsupported)],
            &[],
        ),
        // azureAdToken is never read on the harness path (no reference under sandboxbackend).
        row(
            "azure-substrate",
            SUBSTRATE_0912,
            "  modelConfigRef: azure\n",
            &[],
            &[(IgnoredSetting, "spec.azureOpenAI.azureAdToken of ModelConfig team-a/azure", Ignored)],
        ),
        // explicit-upstream: openclaw calls the base URL itself with a placeholder no attached
        // provider resolves (K-095 openshell/openclaw/provider.go L10-34; kagent #1965).
        row(
            "litellm-openclaw",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n  network: {allowedDomains: [litellm.example.internal]}\n",
            &[(ExplicitUpstream, "spec.openAI.baseUrl of ModelConfig team-a/litellm-gpt", Unsupported)],
            &[],
        ),
        row(
            "litellm-no-egress",
            OPENSHELL_0912,
            "  modelConfigRef: litellm-gpt\n",
            &[(ExplicitUpstream, "spec.openAI.baseUrl of ModelConfig team-a/litellm-gpt", Unsupported)],
            // The upstream is refused: its egress is beside the point (see platform_settings).
            &[],
        ),
        // hermes ignores the base URL (K-095 openshell/hermes/bootstrap.go L86-92); the gateway
        // record has none, so the key goes to the public endpoint. allowedDomains is moot.
        row(
            "litellm-hermes",
            HERMES_095,
            "  modelConfigRef: litellm-gpt\n",
            &[(ExplicitUpstream, "spec.openAI.baseUrl of ModelConfig team-a/litellm-gpt", Unsupported)],
            &[],
        ),
        // allowedDomains as a URL or host:port is its host (K-095 sandboxbackend/network_host.go L11-38).
        row(
            "anthropic-proxy-url-egress",
            OPENSHELL_095,
            "  modelConfigRef: anthropic-proxy\n  network: {allowedDomains: [\"https://llm-gw.example.internal:8443/\"]}\n",
            &[(ExplicitUpstream, "spec.anthropic.baseUrl of ModelConfig team-a/anthropic-proxy", Unsupported)],
            &[],
        ),
        row(
            "anthropic-proxy-hostport-egress",
            OPENSHELL_095,
            "  modelConfigRef: anthropic-proxy\n  network: {allowedDomains: [\"llm-gw.example.internal:8443\"]}\n",
            &[(ExplicitUpstream, "spec.anthropic.baseUrl of ModelConfig team-a/anthropic-proxy", Unsupported)],
            &[],
        ),
        row(
            "egress-wildcard",
            OPENSHELL_095,
            "  modelConfigRef: litellm-gpt\n  network: {allowedDomains: [\"*.example.internal\"]}\n",
            &[(ExplicitUpstream, "spec.openAI.baseUrl of ModelConfig team-a/litellm-gpt", Unsupported)],
            &[],
        ),
        // https://inference.local/v1 is the default openclaw gets anyway.
        row("inference-local-base-url", OPENSHELL_095, "  modelConfigRef: inference-local\n", &[], &[]),
        // Substrate calls the upstream with the real key: a base URL works there.
        row("litellm-substrate", SUBSTRATE_0912, "  modelConfigRef: litellm-gpt\n", &[], &[]),
        // key-format: a line break never works on OpenShell: openclaw's exec env is refused
        // (OpenShell grpc/validation.rs L51-58, L70-83); hermes's key fails when sent
        // (openshell-router backend.rs L203-210).
        row(
            "key-newline-openclaw",
            OPENSHELL_095,
            "  modelConfigRef: file-gpt\n",
            &[(KeyFormat, "data[OPENAI_API_KEY] of Secret team-a/file-key", Invalid)],
            &[],
        ),
        row(
            "key-newline-hermes",
            HERMES_095,
            "  modelConfigRef: file-gpt\n",
            &[(KeyFormat, "data[OPENAI_API_KEY] of Secret team-a/file-key", Invalid)],
            &[],
        ),
        row("key-newline-substrate", SUBSTRATE_0912, "  modelConfigRef: file-gpt\n", &[], &[]),
        row(
            "half-named",
            OPENSHELL_0912,
            "  modelConfigRef: half\n",
            &[(ModelSecretNamed, "spec.apiKeySecretKey of ModelConfig team-a/half", Unset)],
            &[],
        ),
        // Passthrough is refused on the harness path of every runtime (openclaw/modelconfig.go L25-27).
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
            "passthrough-hermes-main",
            HERMES_MAIN,
            "  modelConfigRef: passthrough\n",
            &[
                (ModelSecretNamed, "spec.apiKeyPassthrough of ModelConfig team-a/passthrough", Unsupported),
                (ModelSecretNamed, "spec.apiKeySecret of ModelConfig team-a/passthrough", Unset),
            ],
            &[],
        ),
        // model-name: substrate bootstrap requires it (requiredModelID, K-0912 bootstrap_shared.go L152-158).
        row(
            "model-empty-substrate",
            OPENCLAW_MAIN,
            "  modelConfigRef: nomodel\n",
            &[(ModelName, "spec.model of ModelConfig team-a/nomodel", Empty)],
            &[],
        ),
        row(
            "tuned-settings",
            OPENSHELL_095,
            "  modelConfigRef: tuned\n",
            &[],
            &[
                (IgnoredSetting, "spec.tls of ModelConfig team-a/tuned", Ignored),
                (IgnoredSetting, "spec.defaultHeaders of ModelConfig team-a/tuned", Ignored),
                (IgnoredSetting, "spec.openAI.tokenExchange of ModelConfig team-a/tuned", Ignored),
            ],
        ),
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
            &[(ModelSecretResolves, "data[api-key] of Secret team-a/openai-key", Missing)],
            &[],
        ),
        row(
            "key-missing-substrate",
            SUBSTRATE_0912,
            "  modelConfigRef: gpt-wrong-key\n",
            &[(ModelSecretResolves, "data[api-key] of Secret team-a/openai-key", Missing)],
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
                "  modelConfigRef: plain\n  channels:\n  - name: main\n    type: slack\n    slack:\n",
                "      botToken: {valueFrom: {type: Secret, name: slack-tokens, key: bot-token}}\n",
                "      appToken: {valueFrom: {type: Secret, name: slack-tokens, key: app}}\n",
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
            OPENSHELL_0912,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram: {botToken: {valueFrom: {type: ConfigMap, name: nope, key: token}}}\n",
            &[(ChannelTokens, "data[token] of ConfigMap team-a/nope", Missing)],
            &[],
        ),
        // kagent reads a ConfigMap's .data only (K-095 go/api/utils/utils.go L43-56).
        row(
            "telegram-binary-data",
            OPENSHELL_095,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram: {botToken: {valueFrom: {type: ConfigMap, name: tg, key: binary-token}}}\n",
            &[(ChannelBinaryData, "data[binary-token] of ConfigMap team-a/tg", Unsupported)],
            &[],
        ),
        // Substrate keeps only secretKeyRef env (K-0912 lifecycle_shared.go L177-198).
        row(
            "telegram-configmap-substrate",
            HERMES_MAIN,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram: {botToken: {valueFrom: {type: ConfigMap, name: tg, key: token}}}\n",
            &[(
                SubstrateChannelConfigmap,
                "spec.channels[0].telegram.botToken.valueFrom.type of AgentHarness team-a/telegram-configmap-substrate",
                Unsupported,
            )],
            &[],
        ),
        // allowedUserIDsFrom resolves in the harness's namespace (telegramAllowFrom).
        row(
            "allowed-users-substrate",
            OPENCLAW_MAIN,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram:\n      botToken: {valueFrom: {type: Secret, name: slack-tokens, key: bot}}\n      allowedUserIDsFrom: {type: ConfigMap, name: tg, key: users}\n",
            &[],
            &[],
        ),
        row(
            "allowed-users-missing-openshell",
            OPENSHELL_0912,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram:\n      botToken: {valueFrom: {type: Secret, name: slack-tokens, key: bot}}\n      allowedUserIDsFrom: {type: ConfigMap, name: nope, key: users}\n",
            &[(AllowedUsersFrom, "data[users] of ConfigMap team-a/nope", Missing)],
            &[],
        ),
        row(
            "slack-hermes-allowed-users-missing",
            HERMES_095,
            "  channels:\n  - name: main\n    type: slack\n    slack:\n      botToken: {valueFrom: {type: Secret, name: slack-tokens, key: bot}}\n      hermes: {allowedUserIDsFrom: {type: Secret, name: slack-tokens, key: users}}\n",
            &[(AllowedUsersFrom, "data[users] of Secret team-a/slack-tokens", Missing)],
            &[],
        ),
        // Channel tokens ride in the exec env on OpenShell, which refuses a line break.
        row(
            "channel-token-newline",
            OPENSHELL_095,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram: {botToken: {valueFrom: {type: Secret, name: file-key, key: OPENAI_API_KEY}}}\n",
            &[(KeyFormat, "data[OPENAI_API_KEY] of Secret team-a/file-key", Invalid)],
            &[],
        ),
        row(
            "allowed-users-missing-substrate",
            OPENCLAW_MAIN,
            "  channels:\n  - name: tg\n    type: telegram\n    telegram:\n      botToken: {valueFrom: {type: Secret, name: slack-tokens, key: bot}}\n      allowedUserIDsFrom: {type: ConfigMap, name: nope, key: users}\n",
            &[(AllowedUsersFrom, "data[users] of ConfigMap team-a/nope", Missing)],
            &[],
        ),
        row(
            "env-holds-key",
            OPENSHELL_095,
            "  modelConfigRef: plain\n  env: [{name: LLM_TOKEN, value: sk-test-value-1}]\n",
            &[(KeyInEnv, "spec.env[0] of AgentHarness team-a/env-holds-key", LiteralKey)],
            &[],
        ),
        row(
            "env-holds-key-padded",
            HERMES_MAIN,
            "  modelConfigRef: plain\n  env: [{name: A, value: ok}, {name: B, value: \" sk-test-value-1 \"}]\n",
            &[(KeyInEnv, "spec.env[1] of AgentHarness team-a/env-holds-key-padded", LiteralKey)],
            &[],
        ),
        row(
            "env-key-var-literal",
            OPENSHELL_095,
            "  modelConfigRef: plain\n  env: [{name: OPENAI_API_KEY, value: sk-something-else}]\n",
            &[(KeyInEnv, "spec.env[0] of AgentHarness team-a/env-key-var-literal", NotPlaceholder)],
            &[],
        ),
        row(
            "env-key-var-placeholder",
            OPENSHELL_0912,
            "  modelConfigRef: plain\n  env: [{name: OPENAI_API_KEY, value: \"openshell:resolve:env:OPENAI_API_KEY\"}]\n",
            &[],
            &[],
        ),
        row(
            "env-key-var-revisioned",
            OPENSHELL_095,
            "  modelConfigRef: plain\n  env: [{name: OPENAI_API_KEY, value: \"openshell:resolve:env:v42_OPENAI_API_KEY\"}]\n",
            &[],
            &[],
        ),
        row(
            "env-key-var-substrate",
            HERMES_MAIN,
            "  modelConfigRef: plain\n  env: [{name: OPENAI_API_KEY, value: sk-something-else}]\n",
            &[],
            &[],
        ),
        // gateway-token: K-0912 substrate/gateway_token.go L15, L30-49: key "token", harness namespace.
        row(
            "gateway-token-ok",
            OPENCLAW,
            "  runtime: substrate\n  substrate: {gatewayTokenSecretRef: {name: gw-token}}\n  modelConfigRef: plain\n",
            &[],
            &[],
        ),
        row(
            "gateway-token-wrong-key",
            OPENCLAW,
            "  runtime: substrate\n  substrate: {gatewayTokenSecretRef: {name: gw-wrong}}\n  modelConfigRef: plain\n",
            &[(GatewayToken, "data[token] of Secret team-a/gw-wrong", Missing)],
            &[],
        ),
        row(
            "gateway-token-missing",
            OPENCLAW,
            "  runtime: substrate\n  substrate: {gatewayTokenSecretRef: {name: nope}}\n  modelConfigRef: plain\n",
            &[(GatewayToken, "data[token] of Secret team-a/nope", Missing)],
            &[],
        ),
        // backend-runtime: K-0912 app.go L857-866 builds openclaw and nemoclaw substrate backends only.
        row(
            "hermes-substrate-0912",
            HERMES_SUBSTRATE_0912,
            "  modelConfigRef: plain\n",
            &[(BackendRuntime, "spec.backend of AgentHarness team-a/hermes-substrate-0912", Unsupported)],
            &[],
        ),
        // workload-image-digest: pinImageRef (K-0912 lifecycle_shared.go L143-153).
        row(
            "workload-image-tag",
            OPENCLAW,
            "  substrate: {workloadImage: \"ghcr.io/example/openclaw:1.2\"}\n  modelConfigRef: plain\n",
            &[(WorkloadImageDigest, "spec.substrate.workloadImage of AgentHarness team-a/workload-image-tag", Invalid)],
            &[],
        ),
        row(
            "workload-image-digest",
            OPENCLAW,
            "  substrate: {workloadImage: \"ghcr.io/example/openclaw@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}\n  modelConfigRef: plain\n",
            &[],
            &[],
        ),
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
        &format!("{OPENSHELL_095}  modelConfigRef: plain\n  env: [{{name: X, value: sk-test-value-1}}]\n"),
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
    // With #1964 openclaw reaches the upstream through the egress policy: its host must be allowed.
    let no_egress = harness("no-egress", &format!("{OPENSHELL_095}  modelConfigRef: litellm-gpt\n"));
    policy.rules.insert(Rule::AllowedDomains, Action::Deny);
    policy.kagent.carries_pr1964 = true;
    let denied = rules(&judge(&no_egress, Change::Create, &policy).denials);
    assert_eq!(denied, vec![Rule::AllowedDomains]);
    policy.kagent.carries_pr1964 = false;
    // Warning rules with a real effect may be made to deny.
    let tuned = harness("tuned", &format!("{OPENSHELL_095}  modelConfigRef: tuned\n"));
    policy.rules.insert(Rule::IgnoredSetting, Action::Deny);
    assert_eq!(rules(&judge(&tuned, Change::Create, &policy).denials), vec![Rule::IgnoredSetting; 3]);
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

/// The platform settings of the policy: the provider types the gateway accepts, and a kagent that
/// carries #1964 (openclaw and nemoclaw reach an explicit upstream; hermes never does).
#[test]
fn platform_settings_move_the_verdict() {
    let mut policy = Policy::default();
    let litellm = |backend: &str| {
        harness(
            "litellm",
            &format!(
                "  backend: {backend}\n  modelConfigRef: litellm-gpt\n  network: {{allowedDomains: [litellm.example.internal]}}\n"
            ),
        )
    };
    policy.kagent.carries_pr1964 = true;
    for backend in ["openclaw", "nemoclaw"] {
        assert_eq!(judge(&litellm(backend), Change::Create, &policy), Verdict::default(), "{backend}");
    }
    assert_eq!(rules(&judge(&litellm("hermes"), Change::Create, &policy).denials), vec![Rule::ExplicitUpstream]);
    // A newer OpenShell that accepts more types: listed, they are served.
    let bedrock = harness("bedrock", &format!("{OPENSHELL_095}  modelConfigRef: bedrock\n"));
    assert_eq!(rules(&judge(&bedrock, Change::Create, &Policy::default()).denials), vec![Rule::ProviderServed]);
    policy.openshell.inference_provider_types.push("bedrock".into());
    assert_eq!(judge(&bedrock, Change::Create, &policy), Verdict::default());
}

/// One gateway, one route: live OpenShell harnesses whose ModelConfigs differ in provider, model
/// or key overwrite each other's route. Names stay in the harness's namespace; others are counted.
#[test]
fn two_tenants_on_one_gateway() {
    let mut view = MapView::from_yaml(CLUSTER);
    view.add_yaml(
        r#"
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {name: same-route, namespace: team-a}
spec: {backend: openclaw, modelConfigRef: inference-local}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {name: claude, namespace: team-a}
spec: {backend: openclaw, modelConfigRef: anthropic}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {name: tenant-b, namespace: team-b}
spec: {backend: openclaw, modelConfigRef: shared}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {name: on-substrate, namespace: team-a}
spec: {backend: openclaw, substrate: {}, modelConfigRef: gemini}
---
apiVersion: kagent.dev/v1alpha2
kind: AgentHarness
metadata: {name: never-started, namespace: team-a}
spec: {backend: openclaw, modelConfigRef: gpt-missing-secret}
"#,
    );
    let h = harness("new", &format!("{OPENSHELL_095}  modelConfigRef: plain\n"));
    let v = validate_harness(&h, Change::Create, &view, &Policy::default());
    assert!(v.allowed(), "{v:?}");
    let shared = "spec.modelConfigRef of AgentHarness team-a/new".to_string();
    assert_eq!(ids(&v.warnings), vec![(Rule::SharedGateway, shared, Cause::Shared)]);
}

#[test]
fn the_shared_route_message_names_only_the_harness_namespace() {
    let mut view = MapView::from_yaml(CLUSTER);
    view.add_yaml(
        "apiVersion: kagent.dev/v1alpha2\nkind: AgentHarness\nmetadata: {name: claude, namespace: team-a}\nspec: {backend: openclaw, modelConfigRef: anthropic}\n---\napiVersion: kagent.dev/v1alpha2\nkind: AgentHarness\nmetadata: {name: tenant-b, namespace: team-b}\nspec: {backend: openclaw, modelConfigRef: shared}\n",
    );
    let h = harness("new", &format!("{OPENSHELL_095}  modelConfigRef: plain\n"));
    let text = message::warnings(&validate_harness(&h, Change::Create, &view, &Policy::default())).join("\n");
    assert!(text.contains("(team-a/claude; 1 harness in other namespaces)"), "{text}");
    assert!(!text.contains("tenant-b"), "another tenant's name leaked: {text}");
    // The same route under another ModelConfig shares nothing.
    let same = harness("same", &format!("{OPENSHELL_095}  modelConfigRef: inference-local\n"));
    let mut quiet = MapView::from_yaml(CLUSTER);
    quiet.add_yaml("apiVersion: kagent.dev/v1alpha2\nkind: AgentHarness\nmetadata: {name: one, namespace: team-a}\nspec: {backend: openclaw, modelConfigRef: plain}\n");
    assert_eq!(validate_harness(&same, Change::Create, &quiet, &Policy::default()), Verdict::default());
}

/// An explicit WorkerPool is looked up in the harness's namespace; judged only where WorkerPools
/// are visible (K-0912 lifecycle_shared.go ~L92-118).
#[test]
fn worker_pools_are_judged_where_visible() {
    let h = harness(
        "pooled",
        &format!("{OPENCLAW}  substrate: {{workerPoolRef: {{name: gpu}}}}\n  modelConfigRef: plain\n"),
    );
    let mut view = MapView::from_yaml(CLUSTER);
    assert_eq!(validate_harness(&h, Change::Create, &view, &Policy::default()), Verdict::default(), "not visible");
    view.worker_pools = Some([("kagent".to_string(), "gpu".to_string())].into());
    let v = validate_harness(&h, Change::Create, &view, &Policy::default());
    let at = "spec.substrate.workerPoolRef.name of AgentHarness team-a/pooled".to_string();
    assert_eq!(ids(&v.denials), vec![(Rule::WorkerPool, at, Cause::Missing)]);
    view.worker_pools = Some([("team-a".to_string(), "gpu".to_string())].into());
    assert_eq!(validate_harness(&h, Change::Create, &view, &Policy::default()), Verdict::default(), "in its namespace");
}

/// The placeholder rule follows kagent's variable name: `UPPER(provider)_API_KEY`
/// (`DefaultAPIKeyEnvVar`), so AzureOpenAI's is `AZUREOPENAI_API_KEY` (on substrate, where Azure
/// is served; OpenShell refuses the provider first).
#[test]
fn key_variables_follow_kagents_names() {
    assert_eq!(harness_guard::core::names::provider_key_env("AzureOpenAI"), "AZUREOPENAI_API_KEY");
    assert_eq!(harness_guard::core::names::provider_key_env("GeminiVertexAI"), "GEMINIVERTEXAI_API_KEY");
    let h = harness(
        "azure-env",
        &format!("{OPENSHELL_095}  modelConfigRef: anthropic\n  env: [{{name: ANTHROPIC_API_KEY, value: sk-other}}]\n"),
    );
    let v = judge(&h, Change::Create, &Policy::default());
    assert_eq!(
        ids(&v.denials),
        vec![(Rule::KeyInEnv, "spec.env[0] of AgentHarness team-a/azure-env".to_string(), Cause::NotPlaceholder)]
    );
}
