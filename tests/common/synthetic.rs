//! Synthetic clusters of a chosen size, shaped like real kagent objects, for benchmarks and the
//! load tool: per unit one Secret, one ModelConfig and one AgentHarness, spread over 100
//! namespaces. Values are fake and unique per object.

use serde_json::{Value, json};

/// The objects of `units` units, as an API server would return them.
pub fn objects(units: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(units * 3);
    for i in 0..units {
        let ns = format!("team-{}", i % 100);
        let key = format!("sk-synthetic-{i:08}-not-a-real-key");
        let last_applied = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("llm-key-{i}"), "namespace": ns}, "stringData": {"OPENAI_API_KEY": key}}).to_string();
        out.push(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": format!("llm-key-{i}"), "namespace": ns, "uid": format!("00000000-0000-4000-8000-{i:012}"),
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied},
                "labels": {"app.kubernetes.io/part-of": "kagent"}},
            "data": {"OPENAI_API_KEY": base64(&key)},
        }));
        out.push(json!({
            "apiVersion": "kagent.dev/v1alpha2", "kind": "ModelConfig",
            "metadata": {"name": format!("gpt-{i}"), "namespace": ns, "uid": format!("00000000-0000-4000-9000-{i:012}"), "generation": 1},
            "spec": {"provider": "OpenAI", "model": "gpt-4.1-mini", "apiKeySecret": format!("llm-key-{i}"), "apiKeySecretKey": "OPENAI_API_KEY",
                "openAI": {"temperature": "0.2", "maxTokens": 4096}},
        }));
        out.push(json!({
            "apiVersion": "kagent.dev/v1alpha2", "kind": "AgentHarness",
            "metadata": {"name": format!("agent-{i}"), "namespace": ns, "uid": format!("00000000-0000-4000-a000-{i:012}"), "generation": 1,
                "finalizers": ["kagent.dev/agent-harness-backend-cleanup"]},
            "spec": {"backend": "openclaw", "description": format!("Synthetic agent {i}"), "modelConfigRef": format!("gpt-{i}"),
                "network": {"allowedDomains": ["api.github.com"]},
                "env": [{"name": "TZ", "value": "UTC"}, {"name": "LOG_LEVEL", "value": "info"}],
                "channels": [{"name": "main", "type": "slack", "slack": {
                    "botToken": {"valueFrom": {"type": "Secret", "name": format!("llm-key-{i}"), "key": "OPENAI_API_KEY"}},
                    "appToken": {"value": "xapp-inline-not-a-real-token"},
                    "openclaw": {"channelAccess": "allowlist", "allowlistChannels": ["C0123456789"], "interactiveReplies": true}}}]},
            "status": {"observedGeneration": 1, "backendRef": {"backend": "openclaw", "id": format!("{ns}-agent-{i}")},
                "conditions": [{"type": "Ready", "status": "True", "reason": "SandboxReady", "message": "", "lastTransitionTime": "2026-11-25T00:00:00Z"}]},
        }));
    }
    out
}

fn base64(text: &str) -> String {
    // k8s-openapi's ByteString serializes as base64: let it do the encoding.
    serde_json::to_value(k8s_openapi::ByteString(text.as_bytes().to_vec()))
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
