//! HTTP routes. The webhook router (`/validate`, `/mutate`) is served over TLS; the health router
//! (`/healthz`, `/readyz`, `/metrics`) over plain HTTP on its own port, outside request tracing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::Full;
use serde_json::json;

use super::body::BodyError;
use crate::admission::{self, Webhook};
use crate::core::policy::Policy;
use crate::core::view::ClusterView;
use crate::serving::readiness::Readiness;
use crate::telemetry::Metrics;
use kube::core::admission::Operation;

/// Largest accepted request body: objects reach 3 MiB and an UPDATE carries two.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;
/// Deadline assumed when the apiserver's `?timeout=` is absent (its default is 10 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A view the server can hold across tasks.
pub trait SharedView: ClusterView + Send + Sync + 'static {}
impl<V: ClusterView + Send + Sync + 'static> SharedView for V {}

/// What the handlers share, over any cluster view.
pub struct AppState<V> {
    /// The cluster view.
    pub view: Arc<V>,
    /// The policy.
    pub policy: Arc<Policy>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Readiness flags.
    pub readiness: Arc<Readiness>,
}

/// The webhook routes, `POST /validate` and `POST /mutate`, as a service for hyper.
/// Two routes need no router: the path and method are matched directly and the body is read as
/// it comes off the connection, so a request pays for no extractor, header copy or boxed body.
pub fn webhook_router<V: SharedView>(state: Arc<AppState<V>>) -> Webhooks<V> {
    Webhooks { state }
}

/// The webhook service; cloning it clones a handle.
pub struct Webhooks<V> {
    state: Arc<AppState<V>>,
}

impl<V> Clone for Webhooks<V> {
    fn clone(&self) -> Self {
        Self { state: self.state.clone() }
    }
}

/// An answer of the webhook service.
pub type Answer = http::Response<Full<Bytes>>;

impl<V: SharedView, B> hyper::service::Service<http::Request<B>> for Webhooks<V>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    type Response = Answer;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Answer, Self::Error>>;

    fn call(&self, request: http::Request<B>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move { Ok(route(state, request).await) })
    }
}

async fn route<V: SharedView, B>(state: Arc<AppState<V>>, request: http::Request<B>) -> Answer
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let webhook = match request.uri().path() {
        "/validate" => Webhook::Validate,
        "/mutate" => Webhook::Mutate,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "no such path: harness-guard serves POST /validate and POST /mutate".into(),
            );
        }
    };
    if request.method() != http::Method::POST {
        let message = format!("{} {} is not served: send POST", request.method(), request.uri().path());
        let mut answer = error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message);
        answer.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return answer;
    }
    // The apiserver's `?timeout=10s`: the only query parameter it sends.
    let (parts, body) = request.into_parts();
    let timeout = parts.uri.query().and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("timeout=")));
    draining(&state.readiness, admit(&state, webhook, timeout, &parts.headers, body).await)
}

/// The health and metrics routes.
pub fn health_router<V: SharedView>(state: Arc<AppState<V>>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<V>))
        .route("/metrics", get(metrics::<V>))
        .with_state(state)
}

async fn readyz<V: SharedView>(State(state): State<Arc<AppState<V>>>) -> Response {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let r = &state.readiness;
        let why = format!(
            "not ready: certificate loaded={}, view synced={}, shutting down={}\n",
            r.cert_loaded.load(Ordering::Acquire),
            r.view_synced.load(Ordering::Acquire),
            r.shutting_down.load(Ordering::Acquire)
        );
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
}

async fn metrics<V: SharedView>(State(state): State<Arc<AppState<V>>>) -> Response {
    for (kind, count) in state.view.sizes() {
        state.metrics.set_objects(kind, count);
    }
    state.metrics.set_log_lines_dropped(crate::telemetry::log_lines_dropped());
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics.encode()).into_response()
}

/// While draining (SIGTERM received, the listener still open), each HTTP/1.1 answer closes its
/// connection: the apiserver opens a new one (to a ready replica) for its next call, so no
/// keep-alive connection is left idle for the final close to race a request on (a POST the
/// apiserver would not retry). HTTP/2 connections get GOAWAY at the close instead; hyper leaves
/// the header out of HTTP/2 answers.
fn draining(readiness: &Readiness, mut response: Answer) -> Answer {
    if readiness.shutting_down.load(Ordering::Relaxed) {
        response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    }
    response
}

/// A `meta/v1 Status` error body, the shape Kubernetes clients expect.
fn error(code: StatusCode, reason: &str, message: String) -> Answer {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    let mut answer = json_answer(body.to_string().into_bytes());
    *answer.status_mut() = code;
    answer
}

/// A 200 with a JSON body.
fn json_answer(body: Vec<u8>) -> Answer {
    let mut answer = http::Response::new(Full::new(Bytes::from(body)));
    answer.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    answer
}

/// Parses the apiserver's `?timeout=5s` (Go duration, whole seconds in practice).
pub fn parse_timeout(value: Option<&str>) -> Duration {
    let parsed = value.and_then(|v| {
        let (number, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(v.len()));
        let n: f64 = number.parse().ok()?;
        let secs = match unit {
            "s" | "" => n,
            "ms" => n / 1000.0,
            "m" => n * 60.0,
            _ => return None,
        };
        (secs > 0.0 && secs <= 60.0).then(|| Duration::from_secs_f64(secs))
    });
    parsed.unwrap_or(DEFAULT_TIMEOUT)
}

/// The body, or the error response for it.
async fn read_body<B>(headers: &HeaderMap, body: B, budget: Duration) -> Result<Bytes, Answer>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    match super::body::read(headers, body, MAX_BODY_BYTES, budget).await {
        Ok(bytes) => Ok(bytes),
        Err(BodyError::TooLarge) => {
            let message = format!("request body exceeds {MAX_BODY_BYTES} bytes");
            Err(error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", message))
        }
        Err(BodyError::Timeout) => {
            Err(error(StatusCode::REQUEST_TIMEOUT, "Timeout", format!("request body not received within {budget:?}")))
        }
        Err(BodyError::Read(e)) => {
            Err(error(StatusCode::BAD_REQUEST, "BadRequest", format!("cannot read request body: {e}")))
        }
    }
}

async fn admit<V: SharedView, B>(
    state: &AppState<V>,
    webhook: Webhook,
    timeout: Option<&str>,
    headers: &HeaderMap,
    body: B,
) -> Answer
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let deadline = parse_timeout(timeout);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        state.metrics.bad_request();
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "Content-Type must be application/json".into(),
        );
    }
    // Leave a tenth of the apiserver's timeout to answer in.
    let body = match read_body(headers, body, deadline.mul_f32(0.9)).await {
        Ok(body) => body,
        Err(response) => {
            state.metrics.bad_request();
            return response;
        }
    };
    let started = Instant::now();
    let request = match admission::parse(&body) {
        Ok(request) => request,
        Err(e) => {
            state.metrics.bad_request();
            return error(StatusCode::BAD_REQUEST, "BadRequest", e.to_string());
        }
    };
    let reviewed = admission::review(webhook, &request, state.view.as_ref(), &state.policy);
    let verdict = if reviewed.unhandled { "unhandled" } else { reviewed.verdict.verdict_label() };
    let kind = request.kind.kind.as_str();
    let operation = match request.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    };
    let elapsed = started.elapsed();
    state.metrics.request(webhook.name(), kind, operation, verdict, elapsed.as_secs_f64());
    for (finding, action) in admission::findings(&reviewed.verdict) {
        state.metrics.finding(finding.rule.name(), finding.cause.name(), action);
    }
    if reviewed.unhandled {
        state.metrics.unhandled(kind);
    }
    let name = request.object.as_ref().or(request.old_object.as_ref()).and_then(|o| o.metadata.name.as_deref());
    // Field values inside the macro are built only when the line is enabled: this runs on every request.
    tracing::info!(
        webhook = webhook.name(),
        uid = request.uid.as_str(),
        kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = name.unwrap_or(&request.name),
        operation,
        dry_run = request.dry_run,
        verdict,
        rules = rules(&reviewed.verdict).as_ref(),
        duration_us = elapsed.as_micros() as u64,
        "admission"
    );
    json_answer(admission::encode(reviewed.response))
}

/// The rules of a verdict's findings, comma-separated (`model-secret-resolves,explicit-upstream`),
/// for the log line: a string field is written as it is, where a formatted list would be formatted
/// and then escaped again. No allocation for none or one.
fn rules(verdict: &crate::core::verdict::Verdict) -> std::borrow::Cow<'static, str> {
    let mut names = admission::findings(verdict).map(|(finding, _)| finding.rule.name());
    let Some(first) = names.next() else { return "".into() };
    names.fold(first.into(), |mut all, name| {
        let all_names = all.to_mut();
        all_names.push(',');
        all_names.push_str(name);
        all
    })
}
