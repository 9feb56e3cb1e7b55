//! The real server over real TLS: every fixture body on HTTP/1.1 and HTTP/2, a table of bad
//! inputs with their exact status codes, and the health port.

mod common;

use std::time::Duration;

use common::fixtures::{all_fixtures, repo_file, route_of};
use common::server::{TestServer, health_get};
use common::tls::{Conn, Proto, client_config};
use http_body_util::Full;
use hyper::Request;
use hyper::body::Bytes;
use serde_json::{Value, json};

async fn server() -> TestServer {
    let server = TestServer::builtin(&repo_file("examples/cluster"), &[]).await;
    server.wait_ready(Duration::from_secs(10)).await;
    server
}

#[tokio::test]
async fn every_fixture_gets_a_well_formed_answer_over_h1_and_h2() {
    let server = server().await;
    for proto in [Proto::H1, Proto::H2] {
        let mut conn = Conn::open(server.addr(), client_config(&[&server.ca], proto), proto).await.unwrap();
        let expected_alpn: &[u8] = if proto == Proto::H2 { b"h2" } else { b"http/1.1" };
        assert_eq!(conn.alpn.as_deref(), Some(expected_alpn));
        for (name, body) in all_fixtures() {
            let sent: Value = serde_json::from_slice(&body).unwrap();
            let path = format!("{}?timeout=5s", route_of(&name));
            let (res, bytes) = conn.post(&path, body).await.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(res.status(), 200, "{name} over {proto:?}: {}", String::from_utf8_lossy(&bytes));
            let expected_version = if proto == Proto::H2 { hyper::Version::HTTP_2 } else { hyper::Version::HTTP_11 };
            assert_eq!(res.version(), expected_version);
            let answer: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{name}");
            assert_eq!(answer["kind"], "AdmissionReview", "{name}");
            assert_eq!(answer["response"]["uid"], sent["request"]["uid"], "{name}: uid echo");
            assert!(answer["response"]["allowed"].is_boolean(), "{name}");
            for w in answer["response"]["warnings"].as_array().into_iter().flatten() {
                let w = w.as_str().unwrap();
                assert!(w.chars().count() <= 256 && !w.chars().any(char::is_control), "{name}: bad warning {w:?}");
            }
        }
    }
}

/// What the fixtures must get from the built-in default's view (examples/cluster).
#[tokio::test]
async fn fixture_verdicts() {
    let server = server().await;
    let mut conn = Conn::open(server.addr(), client_config(&[&server.ca], Proto::H2), Proto::H2).await.unwrap();
    let cases: &[(&str, bool, Option<&str>)] = &[
        ("kagent/agentharness-create.validating.json", true, None),
        ("kagent/agentharness-create-dryrun.validating.json", true, None),
        ("kagent/agentharness-apply-serverside-update.validating.json", true, None),
        ("kagent/agentharness-delete.validating.json", true, None),
        // team-b/helper names team-a/litellm-gpt across namespaces: on OpenShell the key is read in
        // the ModelConfig's namespace, which holds it. No base URL, so no egress to warn about.
        ("kagent/agentharness-create-nsref.validating.json", true, None),
        ("widget-create.validating.json", true, Some("does not handle e2e.example.com/v1 Widget")),
        ("kagent/agentharness-create.mutating.json", true, Some("does not handle kagent.dev/v1alpha2 AgentHarness")),
        ("pod-create.validating.json", true, None),
    ];
    for (name, allowed, warning) in cases {
        let body = std::fs::read(common::fixtures::fixtures_dir().join(name)).unwrap();
        let (_, bytes) = conn.post(route_of(name), body).await.unwrap();
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(answer["response"]["allowed"], *allowed, "{name}: {answer}");
        let warnings = answer["response"]["warnings"].to_string();
        match warning {
            Some(w) => assert!(warnings.contains(w), "{name}: {warnings}"),
            None => assert!(answer["response"]["warnings"].is_null(), "{name}: {warnings}"),
        }
    }
    // The real sandbox pod gets a patch, as a JSONPatch.
    let body = std::fs::read(common::fixtures::fixtures_dir().join("kagent/pod-sandbox-create.mutating.json")).unwrap();
    let (_, bytes) = conn.post("/mutate", body.clone()).await.unwrap();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    let ops = common::patch_of(&answer["response"]).expect("a base64 JSONPatch");
    assert_eq!(ops.0.len(), 9, "7 env entries and 2 annotations: {ops:?}");
    let mut pod = serde_json::from_slice::<Value>(&body).unwrap()["request"]["object"].clone();
    json_patch::patch(&mut pod, &ops).unwrap();
    // Released kagent serves the harness from the gateway's record named lowercase(provider).
    assert_eq!(pod["metadata"]["annotations"]["harness-guard.dev/inference-provider"], "openai");
}

async fn raw(conn: &mut Conn, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = Request::builder().method(method).uri(format!("https://localhost{path}"));
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let (res, bytes) = conn.send(req.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
    (res.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// (name, method, path, content type, body, expected status, message fragment)
type BadInput = (&'static str, &'static str, &'static str, Option<&'static str>, Vec<u8>, u16, &'static str);

#[tokio::test]
async fn bad_inputs_get_precise_answers() {
    let server = server().await;
    let good = std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap();
    let review = |v: Value| serde_json::to_vec(&v).unwrap();
    let json = Some("application/json");
    let oversize = {
        let mut body = b"{\"pad\":\"".to_vec();
        body.resize(7 * 1024 * 1024 + 1 - 2, b'a');
        body.extend_from_slice(b"\"}");
        body
    };
    assert_eq!(oversize.len(), 7 * 1024 * 1024 + 1);
    let rows: Vec<BadInput> = vec![
        ("unknown path", "POST", "/admit", json, good.clone(), 404, "no such path"),
        ("wrong method", "GET", "/validate", json, vec![], 405, ""),
        (
            "wrong media type",
            "POST",
            "/validate",
            Some("text/plain"),
            good.clone(),
            415,
            "Content-Type must be application/json",
        ),
        ("no media type", "POST", "/mutate", None, good.clone(), 415, "Content-Type must be application/json"),
        (
            "not json",
            "POST",
            "/validate",
            json,
            b"kind: AdmissionReview".to_vec(),
            400,
            "not a valid admission.k8s.io/v1 AdmissionReview",
        ),
        ("truncated", "POST", "/validate", json, good[..good.len() / 2].to_vec(), 400, "EOF while parsing"),
        ("invalid utf-8", "POST", "/validate", json, b"{\"kind\":\"\xff\xfe\"}".to_vec(), 400, "not a valid"),
        (
            "no request",
            "POST",
            "/validate",
            json,
            review(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})),
            400,
            "AdmissionReview has no request",
        ),
        (
            "wrong apiVersion",
            "POST",
            "/validate",
            json,
            review(json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}})),
            400,
            "apiVersion is \"admission.k8s.io/v1beta1\"",
        ),
        (
            "missing field",
            "POST",
            "/mutate",
            json,
            review(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u"}})),
            400,
            "missing field",
        ),
        ("oversize", "POST", "/validate", json, oversize, 413, "exceeds 7340032 bytes"),
    ];
    for proto in [Proto::H1, Proto::H2] {
        let config = client_config(&[&server.ca], proto);
        for (name, method, path, ct, body, status, says) in &rows {
            // A fresh connection per row: an error answer may close an HTTP/1.1 connection.
            let mut conn = Conn::open(server.addr(), config.clone(), proto).await.unwrap();
            let (got, answer) = raw(&mut conn, method, path, *ct, body.clone()).await;
            assert_eq!(got, *status, "{name} over {proto:?}: {answer}");
            if !says.is_empty() {
                assert_eq!(answer["kind"], "Status", "{name}: {answer}");
                assert_eq!(answer["code"], *status, "{name}");
                assert!(answer["message"].as_str().unwrap_or("").contains(says), "{name}: {answer}");
            }
        }
    }
    // After all that, the server still answers.
    let mut conn = Conn::open(server.addr(), client_config(&[&server.ca], Proto::H1), Proto::H1).await.unwrap();
    let (res, _) = conn.post("/validate", good).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let server = server().await;
    let health = server.running.health_addr;
    assert_eq!(health_get(health, "/healthz").await.unwrap().0, 200);
    assert_eq!(health_get(health, "/readyz").await.unwrap().0, 200);
    let mut conn = Conn::open(server.addr(), client_config(&[&server.ca], Proto::H1), Proto::H1).await.unwrap();
    let body = std::fs::read(repo_file("examples/reviews/harness-wrong-key.json")).unwrap();
    let (_, bytes) = conn.post("/validate?timeout=5s", body).await.unwrap();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["response"]["status"]["code"], 403);
    assert_eq!(answer["response"]["status"]["reason"], "Forbidden");
    let (status, text) = health_get(health, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    for expected in [
        "harness_guard_admission_requests_total{webhook=\"validate\",kind=\"AgentHarness\",operation=\"CREATE\",verdict=\"denied\"} 1",
        "harness_guard_findings_total{rule=\"model-secret-resolves\",cause=\"missing\",action=\"deny\"} 1",
        "harness_guard_view_objects{kind=\"ModelConfig\"} 8",
        "harness_guard_admission_duration_seconds_count{webhook=\"validate\"} 1",
        "harness_guard_certificate_expiry_timestamp_seconds ",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

/// The answers README.md promises for each example.
#[tokio::test]
async fn every_example_review_gets_its_documented_answer_over_tls() {
    let server = server().await;
    let mut conn = Conn::open(server.addr(), client_config(&[&server.ca], Proto::H2), Proto::H2).await.unwrap();
    let rows: &[(&str, bool, &str)] = &[
        ("good", true, ""),
        ("bad-ref", false, "is not a ModelConfig reference (more than one \"/\")"),
        ("no-modelconfig", false, "ModelConfig team-a/gpt4 does not exist"),
        ("no-secret-named", false, "for every provider, OpenAI included"),
        ("passthrough", false, "spec.apiKeyPassthrough, which kagent's harness path rejects on every runtime"),
        ("missing-secret", false, "Secret team-a/openai-creds does not exist"),
        ("wrong-key", false, "has no key \"api-key\" (keys present: OPENAI_API_KEY)"),
        ("empty-key", false, "has key \"OPENAI_API_KEY\", but its value is empty"),
        ("bad-channel", false, "has no key \"bot-token\" (keys present: app, bot)"),
        ("key-in-env", false, "spec.env[0] (LLM_TOKEN) holds the model API key"),
        ("litellm-upstream", false, "sets spec.openAI.baseUrl (host litellm.example.internal): openclaw then calls"),
        ("ollama", false, "inference provider type \"ollama\", which the gateway's cluster inference does not accept"),
    ];
    let dir = std::fs::read_dir(repo_file("examples/reviews")).unwrap().count();
    assert_eq!(dir, rows.len() + 1, "every example review (and the sandbox pod) has a row");
    for (name, allowed, says) in rows {
        let body = std::fs::read(repo_file(&format!("examples/reviews/harness-{name}.json"))).unwrap();
        let (_, bytes) = conn.post("/validate?timeout=5s", body).await.unwrap();
        let a = serde_json::from_slice::<Value>(&bytes).unwrap()["response"].clone();
        assert_eq!(a["allowed"], *allowed, "{name}: {a}");
        let text = if *allowed { a["warnings"].to_string() } else { a["status"]["message"].to_string() };
        assert!(text.contains(&says.replace('"', "\\\"")), "{name}: {text}");
        if !allowed {
            assert_eq!(a["status"]["code"], 403, "{name}");
            assert_eq!(a["status"]["reason"], "Forbidden", "{name}");
            let message = a["status"]["message"].as_str().unwrap();
            assert!(message.starts_with(&format!("AgentHarness team-a/{name}: ")), "{name}: {message}");
        }
    }
}
