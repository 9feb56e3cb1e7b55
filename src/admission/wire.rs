//! The response as it goes on the wire. kube-core's `AdmissionResponse` serializes the patch as a
//! JSON array of byte numbers; the apiserver accepts that, but the documented form is a base64
//! string, about a third of the size and cheaper to write and to parse (`docs/performance.md`).
//! Every other field is the kube-core response's own.

use std::collections::HashMap;

use base64::Engine;
use kube::core::Status;
use kube::core::admission::AdmissionResponse;
use serde::Serialize;

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
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    audit_annotations: &'a HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: &'a Option<Vec<String>>,
}

/// The AdmissionReview body for `response`, with a base64 `patch`.
pub fn encode(response: AdmissionResponse) -> Vec<u8> {
    let wire = Wire {
        api_version: super::ADMISSION_API_VERSION,
        kind: "AdmissionReview",
        response: Response {
            uid: &response.uid,
            allowed: response.allowed,
            status: &response.result,
            audit_annotations: &response.audit_annotations,
            warnings: &response.warnings,
        },
    };
    let patch = response.patch.as_deref().map(|p| (p, base64::encoded_len(p.len(), true).unwrap_or(0)));
    // Sized for the whole answer up front: growing from serde_json's default 128 bytes copied a
    // patched answer several times.
    let warnings: usize = response.warnings.iter().flatten().map(|w| w.len() + 8).sum();
    let size = 256 + response.uid.len() + response.result.message.len() * 2 + warnings + patch.map_or(0, |p| p.1);
    let mut out = Vec::with_capacity(size);
    serde_json::to_writer(&mut out, &wire).expect("an AdmissionReview always serializes");
    if let Some((patch, encoded_len)) = patch {
        add_patch(&mut out, patch, encoded_len);
    }
    out
}

/// Puts `patch` into the written answer, base64-encoded straight into its buffer. The answer
/// ends with the `response` object, its last field, and then the review: `}}`; the patch goes in
/// before them. Base64 has nothing to escape, so it is written as it is: serde_json's string
/// writer would look at every byte of the answer's largest string, and a `RawValue` would be
/// checked as JSON once more and copied.
fn add_patch(out: &mut Vec<u8>, patch: &[u8], encoded_len: usize) {
    debug_assert!(out.ends_with(b"}}"), "an AdmissionReview ends with its response object");
    out.truncate(out.len() - 2);
    out.extend_from_slice(br#","patchType":"JSONPatch","patch":""#);
    let start = out.len();
    out.resize(start + encoded_len, 0);
    base64::engine::general_purpose::STANDARD.encode_slice(patch, &mut out[start..]).expect("sized to fit");
    out.extend_from_slice(b"\"}}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_patch_is_a_base64_string_in_a_well_formed_answer() {
        let mut response = AdmissionResponse::invalid("x");
        response.uid = "u-1".into();
        response.allowed = true;
        response.warnings = Some(vec!["a \"quoted\" warning".into()]);
        let unpatched: Value = serde_json::from_slice(&encode(response.clone())).unwrap();
        assert!(unpatched["response"].get("patch").is_none() && unpatched["response"].get("patchType").is_none());
        let patch = br#"[{"op":"add","path":"/metadata/annotations","value":{"a":"b"}}]"#.to_vec();
        response.patch = Some(patch.clone());
        let answer: Value = serde_json::from_slice(&encode(response)).unwrap();
        let r = &answer["response"];
        assert_eq!((answer["kind"].as_str(), r["uid"].as_str()), (Some("AdmissionReview"), Some("u-1")));
        assert_eq!(r["patchType"], "JSONPatch");
        let decoded = base64::engine::general_purpose::STANDARD.decode(r["patch"].as_str().unwrap()).unwrap();
        assert_eq!(decoded, patch);
        assert_eq!(r["warnings"][0], "a \"quoted\" warning");
        assert_eq!(r["status"], unpatched["response"]["status"]);
    }
}
