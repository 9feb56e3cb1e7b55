//! The response as it goes on the wire. kube-core's `AdmissionResponse` serializes the patch as a
//! JSON array of byte numbers; the apiserver accepts that, but the documented form is a base64
//! string, about a third of the size and cheaper to write and to parse (`docs/performance.md`).
//! Every other field is the kube-core response's own.

use std::collections::HashMap;

use base64::Engine;
use kube::core::Status;
use kube::core::admission::AdmissionResponse;
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: Response<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    audit_annotations: &'a HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: &'a Option<Vec<String>>,
}

/// The AdmissionReview body for `response`, with a base64 `patch`.
pub fn encode(response: AdmissionResponse) -> Vec<u8> {
    let patch = response.patch.as_deref().map(base64_string);
    let wire = Wire {
        api_version: super::ADMISSION_API_VERSION,
        kind: "AdmissionReview",
        response: Response {
            uid: &response.uid,
            allowed: response.allowed,
            status: &response.result,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
            audit_annotations: &response.audit_annotations,
            warnings: &response.warnings,
        },
    };
    // Sized for the whole answer up front: growing from serde_json's default 128 bytes copied a
    // patched answer several times.
    let warnings: usize = response.warnings.iter().flatten().map(|w| w.len() + 8).sum();
    let size = 256
        + wire.response.uid.len()
        + response.result.message.len() * 2
        + warnings
        + wire.response.patch.as_ref().map_or(0, |p| p.get().len());
    let mut out = Vec::with_capacity(size);
    serde_json::to_writer(&mut out, &wire).expect("an AdmissionReview always serializes");
    out
}

/// `bytes` in base64, as a JSON string written as it is: base64 has nothing to escape, and the
/// patch is the largest string of an answer (serde_json's string writer looks at every byte).
fn base64_string(bytes: &[u8]) -> Box<RawValue> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut text = String::with_capacity(base64::encoded_len(bytes.len(), true).unwrap_or(0) + 2);
    text.push('"');
    engine.encode_string(bytes, &mut text);
    text.push('"');
    RawValue::from_string(text).expect("base64 in quotes is a JSON string")
}
