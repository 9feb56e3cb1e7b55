//! Property tests: whatever the bytes, parsing an AdmissionReview and both decisions end in a
//! well-formed answer or a clean error, never a panic. Inputs: arbitrary bytes, arbitrary JSON,
//! and the real apiserver bodies with a field removed, retyped, nulled, duplicated or made huge.

mod common;

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use common::fixtures::{all_fixtures, repo_file};
use harness_guard::admission::{Webhook, encode, parse, review};
use harness_guard::cluster::manifests::load_dir;
use harness_guard::cluster::view::View;
use harness_guard::core::policy::Policy;
use harness_guard::core::view::Digester;
use harness_guard::server::router::{AppState, Webhooks, webhook_router};
use harness_guard::serving::readiness::Readiness;
use harness_guard::telemetry::Metrics;
use proptest::prelude::*;
use serde_json::Value;

fn view() -> &'static View {
    static VIEW: OnceLock<View> = OnceLock::new();
    VIEW.get_or_init(|| {
        let digester = Digester::random();
        let (view, feeds) = View::new(&Default::default(), digester.clone());
        load_dir(&repo_file("examples/cluster"), &digester).unwrap().feed(feeds);
        view
    })
}

fn fixtures() -> &'static Vec<Value> {
    static F: OnceLock<Vec<Value>> = OnceLock::new();
    F.get_or_init(|| all_fixtures().into_iter().map(|(_, b)| serde_json::from_slice(&b).unwrap()).collect())
}

/// Parse and review on both webhooks; an answer must echo the uid and be valid JSON.
fn answer_or_error(bytes: &[u8]) {
    let Ok(req) = parse(bytes) else { return };
    for webhook in [Webhook::Validate, Webhook::Mutate] {
        let reviewed = review(webhook, &req, view(), &Policy::default());
        let body: Value = serde_json::from_slice(&encode(reviewed.response)).unwrap();
        assert_eq!(body["response"]["uid"], req.uid.as_str());
        assert!(body["response"]["allowed"].is_boolean());
    }
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            "CREATE",
            "UPDATE",
            "DELETE",
            "Pod",
            "AgentHarness",
            "admission.k8s.io/v1",
            "AdmissionReview",
            "kagent.dev",
            "v1"
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,8}",
                    Just("request".to_string()),
                    Just("object".to_string()),
                    Just("kind".to_string()),
                    Just("spec".to_string()),
                    Just("metadata".to_string())
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    Remove,
    Null,
    Number,
    Text,
    Wrap,
    Huge,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Remove),
        Just(Mutation::Null),
        Just(Mutation::Number),
        Just(Mutation::Text),
        Just(Mutation::Wrap),
        Just(Mutation::Huge)
    ]
}

/// Applies `m` at the node reached by following `choices` down from the root.
fn mutate(doc: &mut Value, choices: &[usize], m: &Mutation) {
    let mut node = doc;
    for (depth, c) in choices.iter().enumerate() {
        let len = match node {
            Value::Object(o) => o.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        if len == 0 || (depth > 0 && c % 5 == 0) {
            break;
        }
        let i = c % len;
        let is_last = depth + 1 == choices.len();
        match node {
            Value::Object(o) if is_last && matches!(m, Mutation::Remove) => {
                let key = o.keys().nth(i).unwrap().clone();
                o.remove(&key);
                return;
            }
            Value::Object(o) => node = o.values_mut().nth(i).unwrap(),
            Value::Array(a) if is_last && matches!(m, Mutation::Remove) => {
                a.remove(i);
                return;
            }
            Value::Array(a) => node = &mut a[i],
            _ => unreachable!(),
        }
    }
    *node = match m {
        Mutation::Remove | Mutation::Null => Value::Null,
        Mutation::Number => Value::from(-1),
        Mutation::Text => Value::from("x"),
        Mutation::Wrap => Value::Array(vec![node.clone(), node.clone()]),
        Mutation::Huge => Value::from("h".repeat(200_000)),
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn any_bytes_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        answer_or_error(&bytes);
    }

    #[test]
    fn any_json_parses_or_fails_cleanly(doc in json()) {
        answer_or_error(&serde_json::to_vec(&doc).unwrap());
    }

    #[test]
    fn damaged_real_reviews_answer_or_fail_cleanly(
        which in any::<prop::sample::Index>(),
        choices in prop::collection::vec(any::<usize>(), 1..8),
        m in mutation(),
    ) {
        let mut doc = which.get(fixtures()).clone();
        mutate(&mut doc, &choices, &m);
        answer_or_error(&serde_json::to_vec(&doc).unwrap());
    }
}

fn app() -> Webhooks<View> {
    let digester = Digester::random();
    let (view, feeds) = View::new(&Default::default(), digester.clone());
    load_dir(&repo_file("examples/cluster"), &digester).unwrap().feed(feeds);
    let state = Arc::new(AppState {
        view: Arc::new(view),
        policy: Arc::new(Policy::default()),
        metrics: Arc::new(Metrics::new()),
        readiness: Arc::new(Readiness::default()),
    });
    webhook_router(state)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Through the router: a well-formed 200 answer or a clean 4xx with a Status body.
    #[test]
    fn router_answers_200_or_a_clean_4xx(
        which in any::<prop::sample::Index>(),
        choices in prop::collection::vec(any::<usize>(), 1..8),
        m in mutation(),
        path in prop_oneof![Just("/validate"), Just("/mutate")],
    ) {
        let mut doc = which.get(fixtures()).clone();
        mutate(&mut doc, &choices, &m);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (status, body) = runtime.block_on(async {
            let req = axum::http::Request::post(path).header("content-type", "application/json").body(Body::from(serde_json::to_vec(&doc).unwrap())).unwrap();
            let res = hyper::service::Service::call(&app(), req).await.unwrap();
            let status = res.status().as_u16();
            let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
            (status, body)
        });
        let answer: Value = serde_json::from_slice(&body).expect("every answer is JSON");
        if status == 200 {
            prop_assert_eq!(&answer["kind"], "AdmissionReview");
            prop_assert!(answer["response"]["allowed"].is_boolean());
        } else {
            prop_assert!((400..500).contains(&status), "status {}", status);
            prop_assert_eq!(&answer["kind"], "Status");
            prop_assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
}
