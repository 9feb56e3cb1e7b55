//! The AdmissionReview contract: bytes in, a review of the request by the pure core, bytes out.
//! No I/O here; the server calls [`parse`], [`review`] and [`encode`].

mod envelope;
mod object;
mod pod;
mod wire;

use envelope::Review;
use object::AllRaw;
pub use object::{FieldError, RawObject};
pub use wire::encode;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::Status;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::Value;

use crate::core::enforce::enforce_pod;
use crate::core::finding::{Cause, Detail, Finding, Kind, ObjectRef};
use crate::core::message::{self, render, warning_line};
use crate::core::model::{AgentHarness, AgentHarnessSpec, AgentHarnessStatus, Meta, ModelConfig};
use crate::core::mutate::mutate_pod;
use crate::core::names::{AGENT_HARNESS_KIND, KAGENT_GROUP, KAGENT_VERSION, MODEL_CONFIG_KIND};
use crate::core::policy::{Policy, Rule};
use crate::core::reduce::{config_map_values, secret_values};
use crate::core::references::{After, CLEANUP_USERS, Cleanup, guard_reference};
use crate::core::validate::{Change, validate_harness};
use crate::core::verdict::Verdict;
use crate::core::view::ClusterView;

/// The AdmissionReview version harness-guard speaks.
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";

/// Which webhook a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    /// `POST /validate`.
    Validate,
    /// `POST /mutate`.
    Mutate,
}

impl Webhook {
    /// Its name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
        }
    }
}

/// Why a body is not an AdmissionReview harness-guard can answer (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("request body is not a valid admission.k8s.io/v1 AdmissionReview: {0}")]
    Malformed(String),
    /// `apiVersion` other than `admission.k8s.io/v1`.
    #[error(
        "AdmissionReview apiVersion is {0:?}; harness-guard speaks admission.k8s.io/v1 (set admissionReviewVersions: [v1])"
    )]
    WrongApiVersion(String),
    /// `kind` other than `AdmissionReview`.
    #[error("body kind is {0:?}, expected AdmissionReview")]
    WrongKind(String),
    /// No `request` field.
    #[error("AdmissionReview has no request")]
    NoRequest,
}

/// A parsed request: kube-core's type, with the fields no route reads (`requestKind`,
/// `requestResource`, `requestSubResource`, `options`, the user's uid, groups and extras) left
/// empty; see `envelope.rs`.
pub type Request = AdmissionRequest<RawObject>;

/// Parses and checks a request body.
pub fn parse(body: &[u8]) -> Result<Request, ReviewError> {
    // Checked as UTF-8 once, whole: read from a `str`, serde_json then checks no string or raw
    // field again (from bytes it checked each `object` field it kept, and every string it read).
    let text = std::str::from_utf8(body)
        .map_err(|e| ReviewError::Malformed(format!("invalid UTF-8 at byte {} of the body", e.valid_up_to())))?;
    let review: Review<RawObject> = match Review::read(text) {
        Ok(review) => review,
        Err(e) => {
            // On the error path only: a review of another version fails on its fields, but the
            // useful answer is the version.
            if let Ok(types) = serde_json::from_slice::<kube::core::TypeMeta>(body) {
                check_types((&types.api_version, &types.kind))?;
            }
            // A pod spec that does not read fails the one-pass read; read raw, the pod route
            // answers with the field.
            if let Ok(review) = Review::<AllRaw>::read(text) {
                check_types(review.types())?;
                return review.into_request(|o| o.0).ok_or(ReviewError::NoRequest);
            }
            return Err(ReviewError::Malformed(crate::telemetry::redact_quoted(&e.to_string())));
        }
    };
    check_types(review.types())?;
    review.into_request(|o| o).ok_or(ReviewError::NoRequest)
}

fn check_types((api_version, kind): (&str, &str)) -> Result<(), ReviewError> {
    if api_version != ADMISSION_API_VERSION {
        return Err(ReviewError::WrongApiVersion(api_version.to_string()));
    }
    if kind != "AdmissionReview" {
        return Err(ReviewError::WrongKind(kind.to_string()));
    }
    Ok(())
}

/// The answer to one request, with what logs and metrics need to know of it.
#[derive(Debug)]
pub struct Reviewed {
    /// The response to send.
    pub response: AdmissionResponse,
    /// The verdict it was made from.
    pub verdict: Verdict,
    /// True when the route does not handle the request's kind.
    pub unhandled: bool,
}

/// Reviews one request on `webhook` against the view and the policy.
pub fn review(webhook: Webhook, req: &Request, view: &impl ClusterView, policy: &Policy) -> Reviewed {
    let gvk = &req.kind;
    let route = (webhook, gvk.group.as_str(), gvk.version.as_str(), gvk.kind.as_str());
    let outcome = match route {
        (Webhook::Validate, KAGENT_GROUP, KAGENT_VERSION, AGENT_HARNESS_KIND) => review_harness(req, view, policy),
        (Webhook::Validate, "", "v1", "Pod") => {
            review_pod(req, policy, true, |m, s, ns| enforce_pod(m, s, ns, view, policy))
        }
        (Webhook::Mutate, "", "v1", "Pod") => {
            review_pod(req, policy, false, |m, s, ns| mutate_pod(m, s, ns, view, policy))
        }
        (Webhook::Validate, "", "v1", "Secret" | "ConfigMap")
        | (Webhook::Validate, KAGENT_GROUP, KAGENT_VERSION, MODEL_CONFIG_KIND) => review_reference(req, view, policy),
        _ => {
            let response = respond(req, &Verdict::default()).with_warnings(vec![warning_line(&format!(
                "harness-guard /{} does not handle {}; allowed unchecked. Check the webhook's rules.",
                webhook.name(),
                gvk_name(req)
            ))]);
            return Reviewed { response, verdict: Verdict::default(), unhandled: true };
        }
    };
    match outcome {
        Ok(verdict) => Reviewed { response: respond(req, &verdict), verdict, unhandled: false },
        // The mutating webhook never refuses: the object goes on unpatched, with a warning, and
        // `/validate` decides whether it is refused.
        Err(unreadable) if webhook == Webhook::Mutate => {
            let verdict = Verdict::warn_only(vec![unreadable.finding()], policy);
            Reviewed { response: respond(req, &verdict), verdict, unhandled: false }
        }
        Err(unreadable) => {
            let finding = unreadable.finding();
            let message = render(&finding);
            let mut response = AdmissionResponse::from(req).deny(&message);
            response.result = status(400, "BadRequest", message);
            // Refused: counted and logged as denied by rule `unreadable`, as the user sees it.
            let verdict = Verdict { denials: vec![finding], ..Verdict::default() };
            Reviewed { response, verdict, unhandled: false }
        }
    }
}

/// An object in a request that harness-guard cannot read as its kind.
struct Unreadable {
    object: ObjectRef,
    error: FieldError,
}

impl Unreadable {
    fn new(kind: Kind, namespace: &str, name: &str) -> impl FnOnce(FieldError) -> Self {
        let object = ObjectRef::new(kind, namespace, name);
        move |error| Self { object, error }
    }

    fn finding(self) -> Finding {
        let Self { object, error } = self;
        Finding::on(Rule::Unreadable, &object, error.field.clone(), Cause::Unreadable)
            .with(Detail::Error(error.to_string()))
    }
}

fn gvk_name(req: &Request) -> String {
    let gvk = &req.kind;
    if gvk.group.is_empty() {
        format!("{}/{}", gvk.version, gvk.kind)
    } else {
        format!("{}/{} {}", gvk.group, gvk.version, gvk.kind)
    }
}

fn status(code: u16, reason: &str, message: String) -> Status {
    let mut status = Status::failure(&message, reason);
    status.code = code;
    status
}

/// Builds the response from a verdict: 403 Forbidden with every denial, or allowed with the
/// warnings and the patch.
fn respond(req: &Request, verdict: &Verdict) -> AdmissionResponse {
    let mut response = AdmissionResponse::from(req);
    if !verdict.allowed() {
        let message = message::denial(verdict);
        response = response.deny(&message);
        // kube-core's deny() sets only the message; the apiserver turns a code under 400 into 400.
        response.result = status(403, "Forbidden", message);
    } else if !verdict.patch.is_empty() {
        // Written straight from the verdict's operations (kube-core's `with_patch` takes them by
        // value); `encode` marks it as a JSONPatch.
        let mut patch = Vec::with_capacity(verdict.patch.len() * 192);
        serde_json::to_writer(&mut patch, &verdict.patch).expect("a JSON patch always serializes");
        response.patch = Some(patch);
    }
    response.with_warnings(message::warnings(verdict))
}

trait WithWarnings {
    fn with_warnings(self, warnings: Vec<String>) -> Self;
}

impl WithWarnings for AdmissionResponse {
    fn with_warnings(mut self, mut warnings: Vec<String>) -> Self {
        warnings.dedup();
        if !warnings.is_empty() {
            self.warnings = Some(warnings);
        }
        self
    }
}

fn read_harness(obj: &RawObject) -> Result<AgentHarness, FieldError> {
    let spec = obj.field::<AgentHarnessSpec>("spec")?.unwrap_or_default();
    Ok(AgentHarness {
        metadata: Meta::with_uid(&obj.metadata),
        spec,
        status: obj.field::<AgentHarnessStatus>("status")?,
    })
}

fn review_harness(req: &Request, view: &impl ClusterView, policy: &Policy) -> Result<Verdict, Unreadable> {
    let (Some(object), Operation::Create | Operation::Update) = (&req.object, &req.operation) else {
        return Ok(Verdict::default());
    };
    let change = match (&req.operation, &req.old_object) {
        _ if object.metadata.deletion_timestamp.is_some() => Change::Deleting,
        (Operation::Update, Some(old)) if old.field::<Value>("spec").ok() == object.field::<Value>("spec").ok() => {
            Change::MetadataUpdate
        }
        (Operation::Update, _) => Change::SpecUpdate,
        _ => Change::Create,
    };
    let namespace = req.namespace.as_deref().unwrap_or("");
    let name = object.metadata.name.as_deref().unwrap_or(&req.name);
    let harness = read_harness(object).map_err(Unreadable::new(Kind::AgentHarness, namespace, name))?;
    Ok(validate_harness(&harness, change, view, policy))
}

/// A sandbox pod's CREATE, decided by `decide`; with `ephemeral`, also an UPDATE of its
/// `ephemeralcontainers` subresource.
fn review_pod(
    req: &Request,
    policy: &Policy,
    ephemeral: bool,
    decide: impl FnOnce(&ObjectMeta, &PodSpec, &str) -> Verdict,
) -> Result<Verdict, Unreadable> {
    // Container env is immutable after creation: a CREATE of the pod is judged, and the one way
    // to add a container later, an UPDATE of `pods/ephemeralcontainers` (`kubectl debug`), whose
    // object is the whole pod with its ephemeral containers.
    let Some(object) = &req.object else { return Ok(Verdict::default()) };
    match (&req.operation, req.sub_resource.as_deref()) {
        (Operation::Create, None) => {}
        (Operation::Update, Some("ephemeralcontainers")) if ephemeral => {}
        _ => return Ok(Verdict::default()),
    }
    let namespace = req.namespace.as_deref().or(object.metadata.namespace.as_deref()).unwrap_or("");
    // Most pods the apiserver sends are not sandbox pods: they are decided on metadata alone.
    if !crate::core::sandbox::is_sandbox_pod(&object.metadata, namespace, &policy.sandbox) {
        return Ok(Verdict::default());
    }
    let name = object.metadata.name.as_deref().unwrap_or(&req.name);
    let spec = object.pod_spec().map_err(Unreadable::new(Kind::Pod, namespace, name))?;
    Ok(decide(&object.metadata, &spec, namespace))
}

/// DELETE, or UPDATE, of an object harnesses depend on.
fn review_reference(req: &Request, view: &impl ClusterView, policy: &Policy) -> Result<Verdict, Unreadable> {
    let old = req.old_object.as_ref();
    let new = match (&req.operation, &req.object) {
        (Operation::Delete, _) => None,
        (Operation::Update, Some(object)) => Some(object),
        _ => return Ok(Verdict::default()),
    };
    let meta = new.or(old).map(|o| &o.metadata);
    let name = meta.and_then(|m| m.name.clone()).unwrap_or_else(|| req.name.clone());
    let namespace = req.namespace.clone().or_else(|| meta.and_then(|m| m.namespace.clone())).unwrap_or_default();
    let key = (namespace, name);
    let kind = match req.kind.kind.as_str() {
        "Secret" => Kind::Secret,
        "ConfigMap" => Kind::ConfigMap,
        _ => Kind::ModelConfig,
    };
    let unreadable = Unreadable::new(kind, &key.0, &key.1);
    let digester = view.digester();
    let after = match kind {
        Kind::Secret => {
            // Read whole and reduced at once: the plaintext lives only inside this closure.
            let reduced = new.map(|o| -> Result<_, FieldError> {
                let mut reduced = secret_values(o.read::<Secret>()?, digester);
                reduced.metadata = Meta::of(&o.metadata);
                Ok(Arc::new(reduced))
            });
            After::Secret(key.clone(), reduced.transpose().map_err(unreadable)?)
        }
        Kind::ConfigMap => {
            let reduced = new.map(|o| -> Result<_, FieldError> {
                let mut reduced = config_map_values(o.read::<ConfigMap>()?, digester);
                reduced.metadata = Meta::of(&o.metadata);
                Ok(Arc::new(reduced))
            });
            After::ConfigMap(key.clone(), reduced.transpose().map_err(unreadable)?)
        }
        _ => {
            let typed = new.map(|o| -> Result<_, FieldError> {
                Ok(Arc::new(ModelConfig { metadata: Meta::of(&o.metadata), ..o.read::<ModelConfig>()? }))
            });
            After::ModelConfig(key.clone(), typed.transpose().map_err(unreadable)?)
        }
    };
    let cleanup = Cleanup {
        by_controller: CLEANUP_USERS.contains(&req.user_info.username.as_deref().unwrap_or_default()),
        being_deleted: old.is_some_and(|o| o.metadata.deletion_timestamp.is_some()),
    };
    Ok(guard_reference(after, cleanup, view, policy))
}

/// The findings a verdict holds, with the action taken, for metrics.
pub fn findings(verdict: &Verdict) -> impl Iterator<Item = (&Finding, &'static str)> {
    verdict.denials.iter().map(|f| (f, "deny")).chain(verdict.warnings.iter().map(|f| (f, "warn")))
}
