//! The built-in default's cluster: a directory of ordinary Kubernetes YAML or JSON manifests,
//! fed into the same stores the watchers fill in cluster mode.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::watcher::Event;
use serde_json::Value;

use super::ingest::{AgentHarnessResource, Ingest, ModelConfigResource};
use super::view::{Feed, Feeds, Stored};
use crate::core::model::{AgentHarness, Meta, ModelConfig};
use crate::core::names::{KAGENT_API_VERSION, KAGENT_GROUP, KAGENT_V1ALPHA3};
use crate::core::view::{Digester, ValueSet};
use crate::telemetry::redact_quoted;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

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

/// The objects read from manifests, already in stored form.
#[derive(Clone, Default)]
pub struct Objects {
    harnesses: Vec<AgentHarness>,
    model_configs: Vec<ModelConfig>,
    secrets: Vec<<Secret as Ingest>::Stored>,
    produced: Vec<<Secret as Ingest>::Stored>,
    config_maps: Vec<<ConfigMap as Ingest>::Stored>,
    /// Pods, as read (for `check`; the view holds no pods).
    pub pods: Vec<(ObjectMeta, k8s_openapi::api::core::v1::PodSpec)>,
    /// Agent Substrate WorkerPools, by namespace and name.
    pub worker_pools: Vec<(String, String)>,
    /// Where each AgentHarness and Pod was read, by kind and `namespace/name`.
    pub origins: std::collections::HashMap<(&'static str, String), Origin>,
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

    /// The harnesses read.
    pub fn harnesses(&self) -> &[AgentHarness] {
        &self.harnesses
    }

    /// Adds everything `other` holds.
    pub fn extend(&mut self, other: Objects) {
        self.harnesses.extend(other.harnesses);
        self.model_configs.extend(other.model_configs);
        self.secrets.extend(other.secrets);
        self.produced.extend(other.produced);
        self.config_maps.extend(other.config_maps);
        self.worker_pools.extend(other.worker_pools);
        self.origins.extend(other.origins);
        self.pods.extend(other.pods);
        self.skipped += other.skipped;
    }

    /// Adds objects read some other way (a live cluster's lists).
    pub fn add(
        &mut self,
        harnesses: Vec<AgentHarness>,
        model_configs: Vec<ModelConfig>,
        secrets: Vec<<Secret as Ingest>::Stored>,
        config_maps: Vec<<ConfigMap as Ingest>::Stored>,
    ) {
        self.harnesses.extend(harnesses);
        self.model_configs.extend(model_configs);
        self.secrets.extend(secrets);
        self.config_maps.extend(config_maps);
    }

    /// Fills the view's stores: one complete list per store, as a watcher's first list would.
    /// A Secret that another object will produce counts only where no real one exists. WorkerPools
    /// become visible only if there are some.
    pub fn feed(mut self, feeds: Feeds) {
        if !self.worker_pools.is_empty() {
            feeds.worker_pools.set(std::mem::take(&mut self.worker_pools).into_iter().collect());
        }
        let real: std::collections::BTreeSet<_> =
            self.secrets.iter().map(|s| (s.metadata.namespace.clone(), s.metadata.name.clone())).collect();
        let produced = std::mem::take(&mut self.produced);
        self.secrets.extend(
            produced.into_iter().filter(|s| !real.contains(&(s.metadata.namespace.clone(), s.metadata.name.clone()))),
        );
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

/// Where an object was read: the file, the document's place in it (1-based) and the line the
/// document starts on, for reports that point at the source (JUnit, SARIF).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    /// The file, as given.
    pub file: String,
    /// The document, counting from 1.
    pub document: usize,
    /// The document's first line with content, counting from 1.
    pub line: usize,
}

/// The first line with content (not blank, not a comment, not `---`) of each YAML document of
/// `text`, counting from 1, in the order the parser returns the documents.
fn document_lines(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut waiting = true;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            waiting = true;
            continue;
        }
        if waiting && !trimmed.is_empty() && !trimmed.starts_with('#') {
            starts.push(i + 1);
            waiting = false;
        }
    }
    starts
}

/// Reads manifests into stored form.
pub struct Loader<'a> {
    digester: &'a Digester,
    default_namespace: Option<String>,
}

impl<'a> Loader<'a> {
    /// A loader that requires every object to name its namespace.
    pub fn new(digester: &'a Digester) -> Self {
        Self { digester, default_namespace: None }
    }

    /// Objects with no namespace get `namespace` (as `kubectl apply -n` would give them).
    pub fn default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.default_namespace = Some(namespace.into());
        self
    }

    /// Reads every `.yaml`, `.yml` and `.json` file under `path` (sorted, recursively), or the
    /// file `path` itself.
    pub fn load_path(&self, path: &Path, objects: &mut Objects) -> Result<(), ManifestError> {
        let files = if path.is_dir() { manifest_files(path)? } else { vec![path.to_path_buf()] };
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|source| ManifestError::Read { path: file.clone(), source })?;
            self.load_text(&file, &text, objects)?;
        }
        Ok(())
    }

    /// Reads the documents of one file (multi-document YAML, JSON, or a `List`).
    pub fn load_text(&self, path: &Path, text: &str, objects: &mut Objects) -> Result<(), ManifestError> {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text)
            .map_err(|e| ManifestError::Syntax { path: path.to_path_buf(), message: e.to_string() })?;
        let lines = document_lines(text);
        for (i, doc) in docs.into_iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(1);
            let origin = || Origin { file: path.display().to_string(), document: i + 1, line };
            let items = match doc.get("items").and_then(Value::as_array) {
                Some(items) if doc.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) => {
                    items.clone()
                }
                _ => vec![doc],
            };
            for item in items.into_iter().filter(|d| !d.is_null()) {
                let field =
                    |k: &str| item.pointer(&format!("/metadata/{k}")).and_then(Value::as_str).map(str::to_string);
                let namespace = field("namespace").or_else(|| self.default_namespace.clone()).unwrap_or_default();
                let name = format!("{namespace}/{}", field("name").unwrap_or_default());
                let kind = match item.get("kind").and_then(Value::as_str) {
                    Some("AgentHarness") => Some("AgentHarness"),
                    Some("Pod") => Some("Pod"),
                    _ => None,
                };
                self.load_object(path, i + 1, item, objects)?;
                if let Some(kind) = kind {
                    objects.origins.insert((kind, name), origin());
                }
            }
        }
        Ok(())
    }

    /// Reads one already-parsed document; `path` and `index` only name it in errors.
    pub fn load_object(
        &self,
        path: &Path,
        index: usize,
        mut doc: Value,
        objects: &mut Objects,
    ) -> Result<(), ManifestError> {
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        if let (Some(ns), Some(meta)) =
            (&self.default_namespace, doc.get_mut("metadata").and_then(Value::as_object_mut))
        {
            meta.entry("namespace").or_insert_with(|| Value::String(ns.clone()));
        }
        let meta = doc.get("metadata");
        let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or("").to_string();
        let (namespace, name) = (field("namespace"), field("name"));
        let fail = |message: String| ManifestError::Object {
            path: path.to_path_buf(),
            index,
            kind: kind.clone(),
            name: format!("{namespace}/{name}"),
            message,
        };
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        let read_kind = matches!(
            kind.as_str(),
            "Secret"
                | "ConfigMap"
                | "AgentHarness"
                | "ModelConfig"
                | "Pod"
                | "ExternalSecret"
                | "SealedSecret"
                | "WorkerPool"
        );
        if read_kind && (name.is_empty() || namespace.is_empty()) {
            return Err(fail("metadata.name and metadata.namespace are required".to_string()));
        }
        let digester = self.digester;
        fn read<K: Ingest>(doc: Value, digester: &Digester) -> Result<K::Stored, String> {
            let obj: K = serde_path_to_error::deserialize(doc)
                .map_err(|e| format!("{}: {}", e.path(), redact_quoted(&e.inner().to_string())))?;
            Ok(obj.ingest(digester))
        }
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "Secret") => objects.secrets.push(read::<Secret>(doc, digester).map_err(fail)?),
            ("v1", "ConfigMap") => objects.config_maps.push(read::<ConfigMap>(doc, digester).map_err(fail)?),
            ("v1", "Pod") => {
                let meta = serde_json::from_value(doc["metadata"].clone())
                    .map_err(|e| fail(format!("metadata: {}", redact_quoted(&e.to_string()))))?;
                let spec = serde_path_to_error::deserialize(doc["spec"].clone())
                    .map_err(|e| fail(format!("spec.{}: {}", e.path(), redact_quoted(&e.inner().to_string()))))?;
                objects.pods.push((meta, spec));
            }
            // kagent main serves v1alpha3 too, the same type as v1alpha2 (which it stores).
            (KAGENT_API_VERSION | KAGENT_V1ALPHA3, "AgentHarness") => {
                objects.harnesses.push(read::<AgentHarnessResource>(doc, digester).map_err(fail)?)
            }
            (KAGENT_API_VERSION | KAGENT_V1ALPHA3, "ModelConfig") => {
                objects.model_configs.push(read::<ModelConfigResource>(doc, digester).map_err(fail)?)
            }
            (_, "AgentHarness" | "ModelConfig") if group == KAGENT_GROUP => {
                return Err(fail(format!(
                    "apiVersion {api_version} is not one harness-guard reads; write {KAGENT_API_VERSION} \
                     (or {KAGENT_V1ALPHA3}), as kagent stores it"
                )));
            }
            (_, "WorkerPool") if group == super::worker_pools::GROUP => {
                objects.worker_pools.push((namespace.clone(), name.clone()))
            }
            // An ExternalSecret with creationPolicy Merge or None creates no Secret.
            _ if group == "external-secrets.io"
                && kind == "ExternalSecret"
                && matches!(
                    doc.pointer("/spec/target/creationPolicy").and_then(Value::as_str),
                    Some("Merge" | "None")
                ) =>
            {
                objects.skipped += 1
            }
            _ if (group == "external-secrets.io" && kind == "ExternalSecret")
                || (group == "bitnami.com" && kind == "SealedSecret") =>
            {
                // The Secret it will produce: ExternalSecret spec.target.name, SealedSecret
                // spec.template.metadata.name, else the object's own name.
                let target = doc.pointer("/spec/target/name").or_else(|| doc.pointer("/spec/template/metadata/name"));
                let secret = target.and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or(&name).to_string();
                let meta = Meta::named(namespace.as_str(), secret);
                let mut produced = ValueSet::new(meta, Default::default());
                produced.produced_by = Some(format!("{kind} {namespace}/{name}"));
                objects.produced.push(produced);
            }
            _ => objects.skipped += 1,
        }
        Ok(())
    }
}

/// Reads every manifest under `dir`; every object must name its namespace.
pub fn load_dir(dir: &Path, digester: &Digester) -> Result<Objects, ManifestError> {
    let mut objects = Objects::default();
    Loader::new(digester).load_path(dir, &mut objects)?;
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
