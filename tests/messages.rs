//! The wording users read, pinned apart from the rules: each finding the core makes, rendered.
//! The rule tests assert on (rule, place, cause); this file is the one to change with the text.

use harness_guard::core::finding::{Cause, Detail, Finding, Hop, Kind, ObjectRef, Refusal, data_field};
use harness_guard::core::message::render;
use harness_guard::core::policy::Rule;

fn harness() -> ObjectRef {
    ObjectRef::new(Kind::AgentHarness, "team-a", "coder")
}

fn pod() -> ObjectRef {
    ObjectRef::new(Kind::Pod, "openshell", "team-a-coder")
}

/// `spec.modelConfigRef "gpt" → ModelConfig team-a/gpt`, then `→ Secret team-a/openai` with `secret`.
fn model_chain(secret: bool) -> Vec<Hop> {
    let mc = ObjectRef::new(Kind::ModelConfig, "team-a", "gpt");
    let mut via = vec![Hop { field: "spec.modelConfigRef".into(), value: Some("gpt".into()), to: mc }];
    if secret {
        let to = ObjectRef::new(Kind::Secret, "team-a", "openai");
        via.push(Hop { field: "spec.apiKeySecret".into(), value: None, to });
    }
    via
}

fn key_at(kind: Kind, name: &str, key: &str) -> harness_guard::core::finding::At {
    ObjectRef::new(kind, "team-a", name).at(data_field(key))
}

fn cases() -> Vec<(Finding, &'static str)> {
    let h = harness();
    let mc = ObjectRef::new(Kind::ModelConfig, "team-a", "gpt");
    let chain = model_chain(false);
    let secret_chain = model_chain(true);
    let channel = vec![Hop {
        field: "spec.channels[0].slack.botToken.valueFrom".into(),
        value: None,
        to: ObjectRef::new(Kind::Secret, "team-a", "slack"),
    }];
    vec![
        (
            Finding::on(Rule::ModelConfigRef, &h, "spec.modelConfigRef", Cause::Invalid)
                .with(Detail::BadRef { reference: "a/b/c".into(), why: "more than one \"/\"".into() }),
            "AgentHarness team-a/coder: spec.modelConfigRef \"a/b/c\" is not a ModelConfig reference (more than one \"/\"). Write \"name\" for a ModelConfig in namespace team-a, or \"namespace/name\".",
        ),
        (
            Finding::reached(Rule::ModelConfigExists, &h, &chain, mc.whole(), Cause::Missing),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt does not exist. Create the ModelConfig, or fix spec.modelConfigRef.",
        ),
        (
            Finding::reached(Rule::NotWatched, &h, &chain, mc.whole(), Cause::NotWatched),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt is outside the namespaces or selector harness-guard watches; it was not checked.",
        ),
        (
            Finding::reached(Rule::ModelSecretNamed, &h, &chain, mc.at("spec.apiKeySecret"), Cause::Unset)
                .with(Detail::NoKeySecret { provider: "Ollama".into(), openshell: true, both: true }),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt names no API key Secret (spec.apiKeySecret and spec.apiKeySecretKey are unset); on OpenShell kagent needs an API key for every provider, Ollama included. Set spec.apiKeySecret and spec.apiKeySecretKey on the ModelConfig.",
        ),
        (
            Finding::reached(Rule::ModelSecretNamed, &h, &chain, mc.at("spec.apiKeySecretKey"), Cause::Unset)
                .with(Detail::NoKeySecret { provider: "OpenAI".into(), openshell: false, both: false }),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt names no API key Secret (spec.apiKeySecretKey is unset); kagent hands the key to the agent from that Secret. Set spec.apiKeySecret and spec.apiKeySecretKey on the ModelConfig.",
        ),
        (
            Finding::reached(Rule::ModelSecretNamed, &h, &chain, mc.at("spec.apiKeyPassthrough"), Cause::Unsupported),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt sets spec.apiKeyPassthrough, which kagent's harness path rejects on every runtime. Set spec.apiKeySecret and spec.apiKeySecretKey on the ModelConfig instead.",
        ),
        (
            Finding::reached(Rule::ModelSecretNamed, &h, &chain, mc.at("spec.provider"), Cause::Unsupported)
                .with(Detail::Provider("SAPAICore".into())),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt uses provider SAPAICore, which kagent's OpenShell runtime does not support. Use another provider for this harness.",
        ),
        (
            Finding::reached(
                Rule::ModelSecretResolves,
                &h,
                &secret_chain,
                key_at(Kind::Secret, "openai", "api-key"),
                Cause::Missing,
            )
            .with(Detail::Absent),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt → Secret team-a/openai does not exist. Create it in namespace team-a with the key \"api-key\", or fix spec.apiKeySecret on the ModelConfig.",
        ),
        (
            Finding::reached(
                Rule::ModelSecretResolves,
                &h,
                &secret_chain,
                key_at(Kind::Secret, "openai", "api-key"),
                Cause::Missing,
            )
            .with(Detail::Keys(Some(vec!["OPENAI_API_KEY".into(), "other".into()]))),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt → Secret team-a/openai has no key \"api-key\" (keys present: OPENAI_API_KEY, other). Add the key to the Secret or set spec.apiKeySecretKey on the ModelConfig.",
        ),
        (
            Finding::reached(
                Rule::ModelSecretResolves,
                &h,
                &secret_chain,
                key_at(Kind::Secret, "openai", "api-key"),
                Cause::Missing,
            )
            .with(Detail::Keys(None)),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt → Secret team-a/openai has no key \"api-key\". Add the key to the Secret or set spec.apiKeySecretKey on the ModelConfig.",
        ),
        (
            Finding::reached(
                Rule::ModelSecretResolves,
                &h,
                &secret_chain,
                key_at(Kind::Secret, "openai", "api-key"),
                Cause::Empty,
            ),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt → Secret team-a/openai has key \"api-key\", but its value is empty. Put the value in the key.",
        ),
        (
            Finding::reached(
                Rule::ProducedSecret,
                &h,
                &secret_chain,
                key_at(Kind::Secret, "openai", "api-key"),
                Cause::Pending,
            )
            .with(Detail::Producer("ExternalSecret team-a/openai".into())),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt → Secret team-a/openai will be produced by ExternalSecret team-a/openai; key \"api-key\" cannot be checked until it exists.",
        ),
        (
            Finding::reached(Rule::ChannelTokens, &h, &channel, key_at(Kind::Secret, "slack", "bot"), Cause::Missing)
                .with(Detail::Keys(Some(vec!["app".into()]))),
            "AgentHarness team-a/coder: spec.channels[0].slack.botToken.valueFrom → Secret team-a/slack has no key \"bot\" (keys present: app). Add the key to the Secret, or fix the reference.",
        ),
        (
            Finding::reached(Rule::ChannelTokens, &h, &channel, key_at(Kind::Secret, "slack", "bot"), Cause::Missing)
                .with(Detail::Absent),
            "AgentHarness team-a/coder: spec.channels[0].slack.botToken.valueFrom → Secret team-a/slack does not exist. Create it in namespace team-a with the key \"bot\", or fix the reference.",
        ),
        (
            Finding::on(Rule::ChannelTokens, &h, "spec.channels[0].slack.botToken.valueFrom.type", Cause::Invalid)
                .with(Detail::Value("Vault".into())),
            "AgentHarness team-a/coder: spec.channels[0].slack.botToken.valueFrom.type is \"Vault\"; it must be Secret or ConfigMap.",
        ),
        (
            Finding::on(Rule::KeyInEnv, &h, "spec.env[0]", Cause::LiteralKey)
                .with(Detail::Env { name: "LLM_TOKEN".into(), secret: Some("team-a/openai".into()) }),
            "AgentHarness team-a/coder: spec.env[0] (LLM_TOKEN) holds the model API key from Secret team-a/openai as a literal; kagent copies spec.env into the agent's environment verbatim. Remove it: kagent gives the agent the key itself.",
        ),
        (
            Finding::on(Rule::KeyInEnv, &h, "spec.env[1]", Cause::NotPlaceholder)
                .with(Detail::Env { name: "OPENAI_API_KEY".into(), secret: None }),
            "AgentHarness team-a/coder: spec.env[1] (OPENAI_API_KEY) sets the provider key variable to a literal that is not an OpenShell placeholder; kagent copies spec.env into the sandbox pod verbatim. Remove it, or set it to \"openshell:resolve:env:OPENAI_API_KEY\".",
        ),
        (
            Finding::reached(Rule::AllowedDomains, &h, &chain, h.at("spec.network.allowedDomains"), Cause::NotAllowed)
                .with(Detail::Host("litellm.example".into())),
            "AgentHarness team-a/coder: LLM host litellm.example (ModelConfig team-a/gpt) is not in spec.network.allowedDomains; the sandbox will likely block its calls. Add it there.",
        ),
        (
            Finding::on(
                Rule::PodSecretRef,
                &pod(),
                "spec.containers[0].env[3].valueFrom.secretKeyRef",
                Cause::NotAllowed,
            )
            .with(Detail::SecretRef {
                container: "agent".into(),
                source: "env OPENAI_API_KEY".into(),
                key: Some("key".into()),
                secret: "openai".into(),
            }),
            "Pod openshell/team-a-coder: container agent env OPENAI_API_KEY takes key \"key\" of Secret openai (secretKeyRef); sandbox pods get credentials only through OpenShell provider placeholders. Remove the reference, or list the Secret in sandbox.allowedSecretRefs in the policy.",
        ),
        (
            Finding::on(Rule::PodSecretRef, &pod(), "spec.containers[0].envFrom[0].secretRef", Cause::NotAllowed).with(
                Detail::SecretRef {
                    container: "agent".into(),
                    source: "envFrom[0]".into(),
                    key: None,
                    secret: "openai".into(),
                },
            ),
            "Pod openshell/team-a-coder: container agent envFrom[0] takes every key of Secret openai; sandbox pods get credentials only through OpenShell provider placeholders. Remove the reference, or list the Secret in sandbox.allowedSecretRefs in the policy.",
        ),
        (
            Finding::on(Rule::PodLiteralKey, &pod(), "spec.containers[0].env[2].value", Cause::LiteralKey)
                .with(Detail::ContainerEnv { container: "agent".into(), var: "LLM".into() }),
            "Pod openshell/team-a-coder: container agent env LLM holds a ModelConfig's API key as a literal value; the real key must never land in a sandbox pod. Remove it: the agent gets a placeholder and the OpenShell proxy resolves it.",
        ),
        (
            Finding::on(Rule::ProxyEnvConflict, &pod(), "spec.containers[0].env[0]", Cause::Conflict)
                .with(Detail::ContainerEnv { container: "agent".into(), var: "HTTPS_PROXY".into() }),
            "Pod openshell/team-a-coder: container agent already sets HTTPS_PROXY to another value; left as is (set sandbox.overwrite: true in the policy to replace it).",
        ),
        (
            Finding::on(Rule::SandboxOwner, &pod(), "metadata.name", Cause::NoOwner),
            "Pod openshell/team-a-coder: no AgentHarness has the sandbox name \"team-a-coder\" (<namespace>-<name> or status.backendRef.id); proxy environment injected, no provider annotation added.",
        ),
        (
            Finding::on(Rule::SandboxOwner, &pod(), "metadata.name", Cause::SeveralOwners)
                .with(Detail::Owners(vec!["team-a/coder".into(), "team-a/other".into()])),
            "Pod openshell/team-a-coder: the sandbox name matches 2 AgentHarnesses (team-a/coder, team-a/other); proxy environment injected, no provider annotation added.",
        ),
        (
            Finding::reached(Rule::SandboxOwner, &pod(), &[], h.at("spec.modelConfigRef"), Cause::Missing)
                .with(Detail::Harness("team-a/coder".into())),
            "Pod openshell/team-a-coder: AgentHarness team-a/coder has no ModelConfig harness-guard can read; no provider annotation added.",
        ),
        (
            Finding::on(Rule::ReferenceInUse, &ObjectRef::new(Kind::Secret, "team-a", "openai"), "", Cause::InUse)
                .with(Detail::Dependents {
                    deleted: true,
                    count: 5,
                    shown: vec!["team-a/a".into(), "team-a/b".into(), "team-a/c".into()],
                }),
            "Deleting Secret team-a/openai breaks 5 harnesses: team-a/a, team-a/b, team-a/c and 2 more",
        ),
        (
            Finding::on(Rule::ReferenceInUse, &mc, "", Cause::InUse).with(Detail::Dependents {
                deleted: false,
                count: 1,
                shown: vec!["team-a/coder".into()],
            }),
            "This change to ModelConfig team-a/gpt breaks 1 harness: team-a/coder",
        ),
        (
            Finding::on(Rule::Unreadable, &pod(), "", Cause::Unreadable)
                .with(Detail::Error("spec.containers: invalid type: string \"x\", expected a sequence".into())),
            "harness-guard cannot read Pod openshell/team-a-coder: spec.containers: invalid type: string \"x\", expected a sequence. Fix the object.",
        ),
        (
            Finding::on(Rule::Unreadable, &h, "", Cause::Unreadable).with(Detail::Error("spec: bad".into())),
            "harness-guard cannot read AgentHarness team-a/coder: spec: bad. Fix the object, or check that the kagent CRD version is one harness-guard supports.",
        ),
    ]
}

/// The rules of what really breaks a harness (domain README §10).
fn platform_cases() -> Vec<(Finding, &'static str)> {
    let h = harness();
    let mc = ObjectRef::new(Kind::ModelConfig, "team-a", "gpt");
    let chain = model_chain(false);
    let secret_chain = model_chain(true);
    let unserved = |refusal, backend: &str, provider: &str, served: &[&str]| {
        Finding::reached(Rule::ProviderServed, &h, &chain, mc.at("spec.provider"), Cause::Unsupported).with(
            Detail::Unserved {
                provider: provider.into(),
                backend: backend.into(),
                refusal,
                served: served.iter().map(|s| s.to_string()).collect(),
            },
        )
    };
    let upstream = |backend: &str| {
        Finding::reached(Rule::ExplicitUpstream, &h, &chain, mc.at("spec.openAI.baseUrl"), Cause::Unsupported).with(
            Detail::Upstream { host: "litellm.example".into(), backend: backend.into(), provider: "OpenAI".into() },
        )
    };
    let key = key_at(Kind::Secret, "openai", "OPENAI_API_KEY");
    let line_break = |backend: &str| {
        Finding::reached(Rule::KeyFormat, &h, &secret_chain, key.clone(), Cause::Invalid)
            .with(Detail::Backend(backend.into()))
    };
    let substrate_secret = vec![
        Hop {
            field: "spec.modelConfigRef".into(),
            value: Some("team-b/gpt".into()),
            to: ObjectRef::new(Kind::ModelConfig, "team-b", "gpt"),
        },
        Hop { field: "spec.apiKeySecret".into(), value: None, to: ObjectRef::new(Kind::Secret, "team-a", "openai") },
    ];
    vec![
        (
            unserved(Refusal::Gateway, "openclaw", "Ollama", &["openai", "anthropic"]),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt uses provider Ollama. On OpenShell kagent registers it with the gateway as inference provider type \"ollama\", which the gateway's cluster inference does not accept (it accepts openai, anthropic), so the harness never gets a sandbox. Use an OpenAI or Anthropic ModelConfig for this harness, or run it on the substrate runtime.",
        ),
        (
            unserved(Refusal::Protocol, "hermes", "Anthropic", &["OpenAI"]),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt uses provider Anthropic, but hermes calls inference.local with OpenAI chat completions, and the gateway's anthropic route serves Anthropic messages only: every call is answered 400 \"no compatible inference route available\". Use an OpenAI ModelConfig for a hermes harness, or the openclaw backend.",
        ),
        (
            unserved(Refusal::OpenclawMapping, "openclaw", "SAPAICore", &[]),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt uses provider SAPAICore, which kagent's openclaw bootstrap has no mapping for (providerAPI), on every runtime. Use another provider for this harness.",
        ),
        (
            unserved(Refusal::HermesSubstrate, "hermes", "Ollama", &["OpenAI", "Anthropic", "Gemini"]),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt uses provider Ollama; on Agent Substrate kagent gives hermes a provider for OpenAI, Anthropic, Gemini only, and with any other its prompts silently produce no output. Use one of those providers.",
        ),
        (
            upstream("openclaw"),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt sets spec.openAI.baseUrl (host litellm.example): openclaw then calls that host directly with the OpenShell placeholder key, which only a provider attached to the sandbox can resolve, and released kagent attaches none (kagent #1964, #1965): every LLM call fails. Remove spec.openAI.baseUrl and use the provider's own key (a gateway such as LiteLLM cannot work on OpenShell with released kagent), or run the harness on the substrate runtime, or use a kagent that carries #1964 and set kagent.carriesPR1964 in the policy.",
        ),
        (
            upstream("hermes"),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt sets spec.openAI.baseUrl (host litellm.example): hermes ignores it and calls inference.local, whose gateway provider gets no base URL, so the key goes to OpenAI's public endpoint instead of litellm.example and every call fails there. Remove spec.openAI.baseUrl and use OpenAI's own key: hermes cannot use a gateway such as LiteLLM on OpenShell.",
        ),
        (
            line_break("openclaw"),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt → Secret team-a/openai has key \"OPENAI_API_KEY\", whose value holds a line break (a file's trailing newline, most often): kagent hands it to openclaw in the sandbox's exec environment, which OpenShell refuses, so bootstrap never completes. Recreate the Secret with --from-literal, or write the file with printf '%s' before --from-file.",
        ),
        (
            line_break("hermes"),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt → Secret team-a/openai has key \"OPENAI_API_KEY\", whose value holds a line break (a file's trailing newline, most often): kagent stores it as is in the gateway's provider record, and every LLM call fails when the key is sent. Recreate the Secret with --from-literal, or write the file with printf '%s' before --from-file.",
        ),
        (
            Finding::reached(Rule::ModelSecretResolves, &h, &substrate_secret, key.clone(), Cause::Missing)
                .with(Detail::Absent),
            "AgentHarness team-a/coder: spec.modelConfigRef \"team-b/gpt\" → ModelConfig team-b/gpt → Secret team-a/openai does not exist (on Agent Substrate the key is read in the harness's namespace, not the ModelConfig's). Create it in namespace team-a with the key \"OPENAI_API_KEY\", or fix spec.apiKeySecret on the ModelConfig.",
        ),
        (
            Finding::reached(Rule::IgnoredSetting, &h, &chain, mc.at("spec.tls"), Cause::Ignored),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt sets spec.tls, which kagent's harness path never reads: it has no effect on this harness. Remove it, or do not rely on it.",
        ),
        (
            Finding::reached(Rule::ModelName, &h, &chain, mc.at("spec.model"), Cause::Empty),
            "AgentHarness team-a/coder: spec.modelConfigRef \"gpt\" → ModelConfig team-a/gpt names no model (spec.model is empty); the CRD lets it through, but kagent cannot start the harness without one (the gateway's route and the bootstrap both require a model ID). Set spec.model on the ModelConfig.",
        ),
        (
            Finding::reached(
                Rule::ChannelBinaryData,
                &h,
                &[Hop {
                    field: "spec.channels[0].telegram.botToken.valueFrom".into(),
                    value: None,
                    to: ObjectRef::new(Kind::ConfigMap, "team-a", "tg"),
                }],
                key_at(Kind::ConfigMap, "tg", "token"),
                Cause::Unsupported,
            ),
            "AgentHarness team-a/coder: spec.channels[0].telegram.botToken.valueFrom → ConfigMap team-a/tg has key \"token\" in binaryData; kagent reads a ConfigMap's data only, so the token is missing to it and the harness fails. Move the key to data.",
        ),
        (
            Finding::on(Rule::BackendRuntime, &h, "spec.backend", Cause::Unsupported)
                .with(Detail::Backend("hermes".into())),
            "AgentHarness team-a/coder: backend hermes has no substrate runtime in kagent v0.9.x (it registers openclaw and nemoclaw only), so the harness stays BackendUnavailable. Run hermes with runtime openshell, use the openclaw backend, or upgrade kagent.",
        ),
        (
            Finding::on(
                Rule::SubstrateChannelConfigmap,
                &h,
                "spec.channels[0].telegram.botToken.valueFrom.type",
                Cause::Unsupported,
            ),
            "AgentHarness team-a/coder: spec.channels[0].telegram.botToken.valueFrom.type is ConfigMap; on Agent Substrate only Secret references reach the workload, so the token is dropped while the agent's configuration still expects it, and it fails to start. Put the token in a Secret and reference it with type: Secret.",
        ),
        (
            Finding::on(Rule::WorkloadImageDigest, &h, "spec.substrate.workloadImage", Cause::Invalid),
            "AgentHarness team-a/coder: spec.substrate.workloadImage is not pinned by digest; kagent refuses an image without a digest (pinImageRef). Write it as repository@sha256:<digest>.",
        ),
        (
            Finding::on(Rule::WorkerPool, &h, "spec.substrate.workerPoolRef.name", Cause::Missing)
                .with(Detail::Value("kagent-default".into())),
            "AgentHarness team-a/coder: spec.substrate.workerPoolRef.name names WorkerPool \"kagent-default\", which kagent looks up in the harness's namespace team-a, where there is none (kagent's chart creates its default pool in the kagent namespace). Create the WorkerPool in team-a, or remove spec.substrate.workerPoolRef to use kagent's default.",
        ),
        (
            Finding::on(Rule::SharedGateway, &h, "spec.modelConfigRef", Cause::Shared).with(Detail::Sharing {
                same_namespace: vec!["team-a/claude".into()],
                more_here: 0,
                elsewhere: 2,
            }),
            "AgentHarness team-a/coder: the OpenShell gateway has one inference route, and live OpenShell harnesses use a different provider, model or key (team-a/claude; 2 harnesses in other namespaces): kagent sets the route whenever it creates a sandbox, so the last one created wins and the others run on its key and model. Give them one ModelConfig, or run them on separate gateways or the substrate runtime.",
        ),
        (
            Finding::on(Rule::StaleSandbox, &ObjectRef::new(Kind::Secret, "team-a", "openai"), "", Cause::Stale)
                .with(Detail::Dependents { deleted: false, count: 2, shown: Vec::new() }),
            "This change to Secret team-a/openai never reaches running sandboxes (kagent gives the OpenShell gateway the key and model only when it creates one): 2 live harnesses keep the old value until recreated.",
        ),
    ]
}

#[test]
fn every_message_as_users_read_it() {
    let mut failures = Vec::new();
    for (finding, expected) in cases().into_iter().chain(platform_cases()) {
        let got = render(&finding);
        if got != expected {
            failures.push(format!("{:?}\n  got  {got}\n  want {expected}", finding.id()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn places_read_as_field_of_object() {
    let secret = ObjectRef::new(Kind::Secret, "team-a", "openai");
    assert_eq!(secret.at(data_field("api-key")).to_string(), "data[api-key] of Secret team-a/openai");
    assert_eq!(secret.whole().to_string(), "Secret team-a/openai");
    assert_eq!(harness_guard::core::finding::data_key("data[a.b]"), Some("a.b"));
    assert_eq!(harness_guard::core::finding::data_key("spec.env[0]"), None);
}
