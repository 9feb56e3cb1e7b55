//! The built-in default's cluster: a directory of ordinary Kubernetes YAML or JSON manifests,
//! fed into the same reflector stores the watchers fill in cluster mode.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::watcher::Event;
use serde_json::Value;

use super::ingest::Ingest;
use super::view::{Feed, Feeds, Stored};
use crate::core::model::{AgentHarness, ModelConfig};
use crate::core::names::KAGENT_API_VERSION;
use crate::core::view::Digester;
use crate::telemetry::redact_quoted;

/// Why a manifest directory could not be loaded. Each names the file and the document.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid YAML or JSON.
    #[error("{path}: not valid YAML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column).
        message: String,
    },
    /// A document of a kind harness-guard reads does not fit that kind.
    #[error("{path}: document {index} ({kind} {name}): {message}")]
    Object {
        /// The file.
        path: PathBuf,
        /// Position of the document in the file, from 1.
        index: usize,
        /// Its kind.
        kind: String,
        /// Its namespace/name.
        name: String,
        /// What does not fit.
        message: String,
    },
}

/// The objects read from a directory, already in stored form.
#[derive(Default)]
pub struct Objects {
    harnesses: Vec<AgentHarness>,
    model_configs: Vec<ModelConfig>,
    secrets: Vec<<Secret as Ingest>::Stored>,
    config_maps: Vec<<ConfigMap as Ingest>::Stored>,
    /// Documents of other kinds, skipped.
    pub skipped: usize,
}

impl Objects {
    /// How many objects of the four kinds were read.
    pub fn len(&self) -> usize {
        self.harnesses.len() + self.model_configs.len() + self.secrets.len() + self.config_maps.len()
    }

    /// True when none were read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills the view's stores: one complete list per store, as a watcher's first list would.
    pub fn feed(self, feeds: Feeds) {
        feed_all(feeds.harnesses, &self.harnesses);
        feed_all(feeds.model_configs, &self.model_configs);
        feed_all(feeds.secrets, &self.secrets);
        feed_all(feeds.config_maps, &self.config_maps);
    }
}

fn feed_all<S: Stored>(feeds: Vec<Feed<S>>, objects: &[S]) {
    for mut feed in feeds {
        feed.apply(Event::Init);
        for obj in objects {
            let ns = obj.meta().namespace.as_deref();
            if feed.namespace.is_none() || feed.namespace.as_deref() == ns {
                feed.apply(Event::InitApply(obj.clone()));
            }
        }
        feed.apply(Event::InitDone);
    }
}

/// Reads every `.yaml`, `.yml` and `.json` file under `dir` (sorted, recursively).
pub fn load_dir(dir: &Path, digester: &Digester) -> Result<Objects, ManifestError> {
    let mut objects = Objects::default();
    for path in manifest_files(dir)? {
        let text =
            std::fs::read_to_string(&path).map_err(|source| ManifestError::Read { path: path.clone(), source })?;
        load_text(&path, &text, digester, &mut objects)?;
    }
    Ok(objects)
}

fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let read_err = |source| ManifestError::Read { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_dir() {
            files.extend(manifest_files(&path)?);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the documents of one file (multi-document YAML, JSON, or a `List`).
pub fn load_text(path: &Path, text: &str, digester: &Digester, objects: &mut Objects) -> Result<(), ManifestError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| ManifestError::Syntax { path: path.to_path_buf(), message: e.to_string() })?;
    for (i, doc) in docs.into_iter().enumerate() {
        let items = match doc.get("items").and_then(Value::as_array) {
            Some(items) if doc.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) => {
                items.clone()
            }
            _ => vec![doc],
        };
        for item in items.into_iter().filter(|d| !d.is_null()) {
            load_object(path, i + 1, item, digester, objects)?;
        }
    }
    Ok(())
}

fn load_object(
    path: &Path,
    index: usize,
    doc: Value,
    digester: &Digester,
    objects: &mut Objects,
) -> Result<(), ManifestError> {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
    let meta = doc.get("metadata");
    let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or("").to_string();
    let name = format!("{}/{}", field("namespace"), field("name"));
    let fail = |message: String| ManifestError::Object {
        path: path.to_path_buf(),
        index,
        kind: kind.clone(),
        name: name.clone(),
        message,
    };
    let read_kind = matches!(kind.as_str(), "Secret" | "ConfigMap" | "AgentHarness" | "ModelConfig");
    if read_kind && (field("name").is_empty() || field("namespace").is_empty()) {
        return Err(fail("metadata.name and metadata.namespace are required".to_string()));
    }
    fn read<K: Ingest>(doc: Value, digester: &Digester) -> Result<K::Stored, String> {
        let obj: K = serde_path_to_error::deserialize(doc)
            .map_err(|e| format!("{}: {}", e.path(), redact_quoted(&e.inner().to_string())))?;
        Ok(obj.ingest(digester))
    }
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => objects.secrets.push(read::<Secret>(doc, digester).map_err(fail)?),
        ("v1", "ConfigMap") => objects.config_maps.push(read::<ConfigMap>(doc, digester).map_err(fail)?),
        (KAGENT_API_VERSION, "AgentHarness") => {
            objects.harnesses.push(read::<AgentHarness>(doc, digester).map_err(fail)?)
        }
        (KAGENT_API_VERSION, "ModelConfig") => {
            objects.model_configs.push(read::<ModelConfig>(doc, digester).map_err(fail)?)
        }
        _ => objects.skipped += 1,
    }
    Ok(())
}
