//! The pure paths, over real-shaped inputs, each beside a same-run baseline: parsing an
//! AdmissionReview (small pod, 1 MiB pod), validating an AgentHarness against a warm view,
//! building a sandbox pod patch, and the idempotency re-check; the view at 12 objects and at
//! 30,000 (10,000 each of harnesses, ModelConfigs, Secrets) to show decision time does not grow
//! with it; then the same end to end through the HTTP router in process, to show what the handler
//! adds. The baseline is the least a webhook does: read the uid, write `allowed`.
//!
//! `cargo bench --bench decisions`

#[path = "../tests/common/synthetic.rs"]
mod synthetic;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use harness_guard::admission::{Webhook, encode, parse, review};
use harness_guard::cluster::manifests::{Loader, Objects, load_dir};
use harness_guard::cluster::view::View;
use harness_guard::core::model::AgentHarness;
use harness_guard::core::mutate::mutate_pod;
use harness_guard::core::policy::Policy;
use harness_guard::core::validate::{Change, validate_harness};
use harness_guard::core::view::Digester;
use harness_guard::server::router::{AppState, webhook_router};
use harness_guard::telemetry::Metrics;
use hyper::service::Service;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::{Value, json};

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The examples, plus `units` synthetic units.
fn view(units: usize) -> View {
    let digester = Digester::random();
    let (view, feeds) = View::new(&Default::default(), digester.clone());
    let mut objects = load_dir(&repo("examples/cluster"), &digester).unwrap();
    let loader = Loader::new(&digester);
    let mut synthetic_objects = Objects::default();
    for (i, obj) in synthetic::objects(units).into_iter().enumerate() {
        loader.load_object(Path::new("synthetic"), i, obj, &mut synthetic_objects).unwrap();
    }
    objects.extend(synthetic_objects);
    objects.feed(feeds);
    view
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(repo(&format!("tests/fixtures/admission-reviews/{rel}"))).unwrap()
}

/// The baseline: the uid, and an `allowed` answer.
fn baseline(body: &[u8]) -> Vec<u8> {
    #[derive(Deserialize)]
    struct Review<'a> {
        #[serde(borrow)]
        request: Req<'a>,
    }
    #[derive(Deserialize)]
    struct Req<'a> {
        uid: &'a str,
    }
    let r: Review = serde_json::from_slice(body).unwrap();
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": r.request.uid, "allowed": true}})).unwrap()
}

fn big_pod() -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&fixture("kagent/pod-sandbox-create.mutating.json")).unwrap();
    review["request"]["object"]["metadata"]["annotations"]["example.com/blob"] = json!("x".repeat(1 << 20));
    serde_json::to_vec(&review).unwrap()
}

fn pod_parts(body: &[u8]) -> (ObjectMeta, PodSpec, Value) {
    let review: Value = serde_json::from_slice(body).unwrap();
    let obj = review["request"]["object"].clone();
    (
        serde_json::from_value(obj["metadata"].clone()).unwrap(),
        serde_json::from_value(obj["spec"].clone()).unwrap(),
        obj,
    )
}

fn benches(c: &mut Criterion) {
    let policy = Policy::default();
    let small = fixture("kagent/pod-sandbox-create.mutating.json");
    let big = big_pod();

    let mut g = c.benchmark_group("parse");
    g.bench_function("baseline uid small pod", |b| b.iter(|| baseline(black_box(&small))));
    g.bench_function("review small pod", |b| b.iter(|| parse(black_box(&small)).unwrap()));
    g.bench_function("baseline uid 1MiB pod", |b| b.iter(|| baseline(black_box(&big))));
    g.bench_function("review 1MiB pod", |b| b.iter(|| parse(black_box(&big)).unwrap()));
    g.finish();

    let harness_body: Value =
        serde_json::from_slice(&std::fs::read(repo("examples/reviews/harness-good.json")).unwrap()).unwrap();
    let harness: AgentHarness = serde_json::from_value(harness_body["request"]["object"].clone()).unwrap();
    let (meta, spec, raw_pod) = pod_parts(&small);
    for (label, units) in [("12 objects", 0), ("30k objects", 10_000)] {
        let view = view(units);
        let mut g = c.benchmark_group(format!("decide, view of {label}"));
        g.bench_function("validate harness", |b| {
            b.iter(|| validate_harness(black_box(&harness), Change::Create, &view, &policy))
        });
        g.bench_function("sandbox pod patch", |b| {
            b.iter(|| mutate_pod(black_box(&meta), &spec, "openshell", &view, &policy))
        });
        let patch = mutate_pod(&meta, &spec, "openshell", &view, &policy).patch;
        g.bench_function("idempotency check", |b| {
            b.iter(|| {
                let mut pod = raw_pod.clone();
                json_patch::patch(&mut pod, &patch).unwrap();
                let (m, s): (ObjectMeta, PodSpec) = (
                    serde_json::from_value(pod["metadata"].clone()).unwrap(),
                    serde_json::from_value(pod["spec"].clone()).unwrap(),
                );
                assert!(mutate_pod(&m, &s, "openshell", &view, &policy).patch.is_empty());
            })
        });
        g.finish();
    }

    // End to end in process: bytes in, bytes out.
    let view = view(0);
    let harness_bytes = std::fs::read(repo("examples/reviews/harness-good.json")).unwrap();
    let mut g = c.benchmark_group("admit end to end");
    g.bench_function("baseline small pod", |b| b.iter(|| baseline(black_box(&small))));
    g.bench_function("mutate small pod", |b| {
        b.iter(|| encode(review(Webhook::Mutate, &parse(black_box(&small)).unwrap(), &view, &policy).response))
    });
    g.bench_function("baseline harness", |b| b.iter(|| baseline(black_box(&harness_bytes))));
    g.bench_function("validate harness", |b| {
        b.iter(|| {
            encode(review(Webhook::Validate, &parse(black_box(&harness_bytes)).unwrap(), &view, &policy).response)
        })
    });
    g.finish();

    // The same through the HTTP router (no TLS, no socket): what the handler adds around the
    // review (extractors, body collection, deadline, metrics, log line).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let state = Arc::new(AppState {
        view: Arc::new(view),
        policy: Arc::new(policy),
        metrics: Arc::new(Metrics::new()),
        readiness: Arc::default(),
    });
    let router = webhook_router(state);
    let post = |path: &str, body: &[u8]| {
        axum::http::Request::post(format!("{path}?timeout=10s"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_vec()))
            .unwrap()
    };
    let mut g = c.benchmark_group("router in process");
    g.bench_function("mutate small pod", |b| {
        b.iter(|| rt.block_on(router.call(post("/mutate", black_box(&small)))).unwrap())
    });
    g.bench_function("validate harness", |b| {
        b.iter(|| rt.block_on(router.call(post("/validate", black_box(&harness_bytes)))).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = decisions;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = benches
}
criterion_main!(decisions);
