//! Shared test helpers. Each test binary uses a different subset.
#![allow(dead_code)]

pub mod balancer;
pub mod certs;
pub mod chart;
pub mod deployment;
pub mod envtest;
pub mod fake_apiserver;
pub mod fixtures;
pub mod process;
pub mod server;
pub mod synthetic;
pub mod tls;
pub mod view;

/// The JSON patch of an AdmissionReview `response`, decoded from its base64 wire form.
pub fn patch_of(response: &serde_json::Value) -> Option<json_patch::Patch> {
    use base64::Engine;
    let text = response["patch"].as_str()?;
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).expect("patch is base64");
    Some(serde_json::from_slice(&bytes).expect("patch is a JSON patch"))
}
