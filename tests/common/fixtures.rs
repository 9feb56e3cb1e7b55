//! The real AdmissionReview bodies in `shared/fixtures/admission-reviews/` (beside the checkout),
//! and the repository's own examples.

use std::path::PathBuf;

use serde_json::Value;

/// The fixture directory: `$HARNESS_GUARD_FIXTURES`, or the verbatim copy under `tests/fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("HARNESS_GUARD_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission-reviews"));
    assert!(dir.is_dir(), "fixture directory {} is missing (set HARNESS_GUARD_FIXTURES)", dir.display());
    dir
}

/// Every file under `root`, by path relative to it, with its bytes, sorted.
pub fn files_under(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Every fixture body, by path relative to the fixture directory, sorted.
pub fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = files_under(&fixtures_dir());
    out.retain(|(rel, _)| rel.ends_with(".json"));
    assert!(out.len() >= 40, "expected the full fixture set, found {}", out.len());
    out
}

/// One fixture body as JSON.
pub fn fixture(rel: &str) -> Value {
    let bytes = std::fs::read(fixtures_dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_slice(&bytes).unwrap()
}

/// A file of the repository, by path from its root.
pub fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The webhook a fixture was sent to, from its file name.
pub fn route_of(rel: &str) -> &'static str {
    if rel.contains(".mutating.") { "/mutate" } else { "/validate" }
}
