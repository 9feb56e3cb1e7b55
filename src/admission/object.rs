//! The request's object, read in one pass: its metadata typed (without `managedFields`, skipped
//! unparsed), every other top-level field kept as the raw JSON the apiserver sent. Each route then
//! reads only the parts it needs, typed, from those raw fields: far cheaper than `DynamicObject`,
//! whose flattened fields buffer the whole object twice, and nothing read is ever re-serialized
//! into the answer (a patch is computed against the object as sent).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::core::{DynamicResourceScope, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// An admission request's `object` or `oldObject`.
#[derive(Clone, Debug)]
pub struct RawObject {
    /// Its metadata, without `managedFields`.
    pub metadata: ObjectMeta,
    /// Every other top-level field, as sent.
    fields: Vec<(String, Box<RawValue>)>,
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

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = RawObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Kubernetes object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let (mut meta, mut fields) = (None, Vec::new());
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "metadata" {
                        meta = Some(map.next_value::<Option<Meta>>()?.unwrap_or_default());
                    } else {
                        fields.push((key.into_owned(), map.next_value::<Box<RawValue>>()?));
                    }
                }
                Ok(RawObject { metadata: meta.unwrap_or_default().into(), fields })
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

impl From<Meta> for ObjectMeta {
    fn from(m: Meta) -> Self {
        ObjectMeta {
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
        }
    }
}

impl serde::Serialize for RawObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.fields.len() + 1))?;
        map.serialize_entry("metadata", &self.metadata)?;
        for (k, v) in &self.fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Why (part of) an object does not read as its type: the field, and the reason with any quoted
/// value removed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field path (`spec.env[0].value`), `.` for the object itself.
    pub field: String,
    /// Why, free of values.
    pub reason: String,
}

fn parse<T: DeserializeOwned>(text: &str, prefix: &str) -> Result<T, FieldError> {
    // The fast path; only on failure is the text read again to name the field.
    serde_json::from_str(text).map_err(|first| {
        let mut de = serde_json::Deserializer::from_str(text);
        let (path, reason) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Ok(_) => (".".to_string(), first.to_string()),
            Err(e) => (e.path().to_string(), e.inner().to_string()),
        };
        let field = match (prefix.is_empty(), path.as_str()) {
            (true, _) => path,
            (false, ".") => prefix.to_string(),
            (false, _) => format!("{prefix}.{path}"),
        };
        FieldError { field, reason: crate::telemetry::redact_quoted(&reason) }
    })
}

impl RawObject {
    /// The top-level field `name` (`spec`, `data`, ...) as `T`; `None` when absent or null. The
    /// error names the field.
    pub fn field<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, FieldError> {
        match self.fields.iter().find(|(k, _)| k == name) {
            Some((_, raw)) if raw.get() != "null" => parse(raw.get(), name).map(Some),
            _ => Ok(None),
        }
    }

    /// The whole object as `T` (its metadata left default: use [`RawObject::metadata`]).
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, FieldError> {
        let mut text = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&serde_json::to_string(k).expect("a string serializes"));
            text.push(':');
            text.push_str(v.get());
        }
        text.push('}');
        parse(&text, "")
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
