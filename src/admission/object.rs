//! The request's object, kept as the raw JSON the apiserver sent, with its metadata read
//! eagerly. Each route then reads only the parts it needs, typed, straight from the raw text:
//! far cheaper than `DynamicObject`, whose flattened fields buffer the whole object twice, and it
//! never re-serializes what it read (a patch is computed against the object as sent).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::core::{DynamicResourceScope, Resource};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// An admission request's `object` or `oldObject`.
#[derive(Clone, Debug)]
pub struct RawObject {
    /// Its metadata, without `managedFields`.
    pub metadata: ObjectMeta,
    raw: Box<RawValue>,
}

/// The metadata fields harness-guard reads. `managedFields` is skipped unparsed: it is large, and
/// nothing here needs it.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
    generate_name: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    finalizers: Option<Vec<String>>,
    deletion_timestamp: Option<Time>,
    creation_timestamp: Option<Time>,
}

#[derive(Deserialize)]
struct MetaOnly {
    #[serde(default)]
    metadata: Meta,
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let MetaOnly { metadata: m } = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
        let metadata = ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            generate_name: m.generate_name,
            uid: m.uid,
            resource_version: m.resource_version,
            generation: m.generation,
            labels: m.labels,
            annotations: m.annotations,
            owner_references: m.owner_references,
            finalizers: m.finalizers,
            deletion_timestamp: m.deletion_timestamp,
            creation_timestamp: m.creation_timestamp,
            ..Default::default()
        };
        Ok(Self { metadata, raw })
    }
}

impl serde::Serialize for RawObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl RawObject {
    /// Reads the object (or the parts of it `T` names) as `T`; the error names the field.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, String> {
        let mut de = serde_json::Deserializer::from_str(self.raw.get());
        serde_path_to_error::deserialize(&mut de)
            .map_err(|e| format!("{}: {}", e.path(), crate::telemetry::redact_quoted(&e.inner().to_string())))
    }

    /// The raw JSON text as the apiserver sent it.
    pub fn raw(&self) -> &str {
        self.raw.get()
    }
}

/// A marker implementation: the admission types require `Resource`, and a raw object is of
/// whatever kind the request says.
impl Resource for RawObject {
    type DynamicType = ();
    type Scope = DynamicResourceScope;
    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
