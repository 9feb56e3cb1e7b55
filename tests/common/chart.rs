//! The chart as tests meet it: rendered by the real Helm engine (helm-python-sdk embeds Helm's
//! library; `tests/chart/render.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub const HELM_PYTHON: &str = "helm-python-sdk==0.2.2";

/// A Python that can `import helm_python`: $HARNESS_GUARD_PYTHON, python3, or a venv made under
/// the target directory (as cargo fetches crates, this fetches the one PyPI package it needs).
pub fn python() -> PathBuf {
    let imports =
        |py: &Path| Command::new(py).args(["-c", "import helm_python"]).output().is_ok_and(|o| o.status.success());
    if let Some(py) = std::env::var_os("HARNESS_GUARD_PYTHON").map(PathBuf::from) {
        assert!(imports(&py), "HARNESS_GUARD_PYTHON={} cannot import helm_python", py.display());
        return py;
    }
    if imports(Path::new("python3")) {
        return "python3".into();
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-venv");
    let py = venv.join("bin/python");
    if !imports(&py) {
        let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 runs");
        assert!(made.success(), "python3 -m venv failed");
        let pip = Command::new(&py).args(["-m", "pip", "install", "-q", HELM_PYTHON]).status().unwrap();
        assert!(pip.success(), "pip install {HELM_PYTHON} failed (see .ci/run)");
    }
    py
}

/// The chart's objects for `values` (JSON), release `harness-guard` in namespace `harness-guard`,
/// hooks included (each keeps its `helm.sh/hook` annotation).
pub fn render(values: &Value) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python())
        .arg(root.join("tests/chart/render.py"))
        .arg(root.join("charts/harness-guard"))
        .arg(values.to_string())
        .output()
        .expect("render.py runs");
    assert!(out.status.success(), "render.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let manifests: serde_json::Map<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut objects = Vec::new();
    for (path, text) in manifests {
        if path.ends_with(".yaml") {
            let docs: Vec<Value> = serde_saphyr::from_multiple(text.as_str().unwrap())
                .unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
            objects.extend(docs.into_iter().filter(|d| !d.is_null()));
        }
    }
    objects
}

/// The object of `kind` named `name`.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}
