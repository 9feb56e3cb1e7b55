//! The request's object, read in one pass: its metadata typed (without `managedFields`, skipped
//! unparsed), every other top-level field kept as the raw JSON the apiserver sent. Each route then
//! reads only the parts it needs, typed, from those raw fields: far cheaper than `DynamicObject`,
//! whose flattened fields buffer the whole object twice, and nothing read is ever re-serialized
//! into the answer (a patch is computed against the object as sent).
//!
//! A v1 Pod's `spec` is the exception: the pod routes read nothing else of it, and it is most of a
//! sandbox pod's review, so it is read typed in the same pass instead of kept raw and read again.
//! Should it not read (never so for a pod the apiserver has validated), that pass fails, and the
//! review is read again with the spec kept raw ([`AllRaw`]), so the answer names the field.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::core::{DynamicResourceScope, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::pod::SlimPodSpec;

/// An admission request's `object` or `oldObject`.
#[derive(Clone, Debug)]
pub struct RawObject {
    /// Its metadata, without `managedFields`. Boxed, like the pod spec: the request holds two
    /// objects and is moved whole several times on its way out of the parser.
    pub metadata: Box<ObjectMeta>,
    /// Every other top-level field, as sent; a v1 Pod's `spec` only when read raw.
    fields: Vec<(String, Box<RawValue>)>,
    /// A v1 Pod's `spec`, when read typed in the first pass.
    pod_spec: Option<Box<PodSpec>>,
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

/// Reads an object's top-level fields; a v1 Pod's `spec` typed when `typed_pod_spec`.
struct Fields {
    typed_pod_spec: bool,
}

impl<'de> serde::de::Visitor<'de> for Fields {
    type Value = RawObject;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Kubernetes object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
        let (mut meta, mut fields, mut pod_spec) = (None, Vec::new(), None);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "metadata" {
                meta = Some(map.next_value::<Option<Meta>>()?.unwrap_or_default());
            } else if key == "spec" && self.typed_pod_spec && is_v1_pod(&fields) {
                // `kind` and `apiVersion` come first in what the apiserver sends; otherwise the
                // spec is kept raw and read on demand like any other field.
                pod_spec =
                    Some(Box::new(map.next_value::<Option<SlimPodSpec>>()?.map(PodSpec::from).unwrap_or_default()));
            } else {
                fields.push((key.into_owned(), map.next_value::<Box<RawValue>>()?));
            }
        }
        Ok(RawObject { metadata: Box::new(meta.unwrap_or_default().into()), fields, pod_spec })
    }
}

/// A key, borrowed from the text when it has no escapes (serde's own `Cow<str>` always copies).
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

/// True when the fields read so far say `kind: Pod`, `apiVersion: v1` (as the apiserver writes them).
fn is_v1_pod(fields: &[(String, Box<RawValue>)]) -> bool {
    let raw = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.get());
    raw("kind") == Some("\"Pod\"") && raw("apiVersion") == Some("\"v1\"")
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Fields { typed_pod_spec: true })
    }
}

/// The object with every top-level field kept raw, a Pod's `spec` too: the second reading of a
/// review whose first failed, so that a pod spec that does not read is answered with its field.
#[derive(Clone, Debug)]
pub struct AllRaw(pub RawObject);

impl<'de> Deserialize<'de> for AllRaw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Fields { typed_pod_spec: false }).map(AllRaw)
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

    /// A pod's `spec` as the pod routes read it (default when absent). The error names the field.
    pub fn pod_spec(&self) -> Result<Cow<'_, PodSpec>, FieldError> {
        match &self.pod_spec {
            Some(spec) => Ok(Cow::Borrowed(&**spec)),
            None => Ok(Cow::Owned(self.field::<SlimPodSpec>("spec")?.map(PodSpec::from).unwrap_or_default())),
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

/// Marker implementations: the admission types require `Resource`, and a raw object is of
/// whatever kind the request says.
macro_rules! any_kind {
    ($ty:ty, $($meta:tt)+) => {
        impl Resource for $ty {
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
                &*self.$($meta)+
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut *self.$($meta)+
            }
        }
    };
}

any_kind!(RawObject, metadata);
any_kind!(AllRaw, 0.metadata);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn read(json: &str) -> RawObject {
        serde_json::from_str(json).unwrap()
    }

    const SPEC: &str = r#"{"containers":[{"name":"agent","image":"x","env":[{"name":"A","value":"1"}]}]}"#;

    #[test]
    fn a_v1_pods_spec_is_read_typed_in_the_same_pass() {
        let pod = read(&format!(r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"p"}},"spec":{SPEC}}}"#));
        let typed = pod.pod_spec.as_ref().expect("read typed in the first pass");
        assert!(pod.fields.iter().all(|(k, _)| k != "spec"), "and not kept raw as well");
        assert_eq!(typed.containers[0].name, "agent");
        assert_eq!(typed.containers[0].env.as_ref().unwrap()[0].value.as_deref(), Some("1"));
        assert_eq!(*pod.pod_spec().unwrap(), **typed);
    }

    #[test]
    fn other_objects_and_other_orders_keep_the_spec_raw_and_read_the_same() {
        let late = read(&format!(r#"{{"spec":{SPEC},"kind":"Pod","apiVersion":"v1"}}"#));
        let other = read(&format!(r#"{{"kind":"Pod","apiVersion":"example.com/v1","spec":{SPEC}}}"#));
        let first = read(&format!(r#"{{"kind":"Pod","apiVersion":"v1","spec":{SPEC}}}"#));
        for raw in [&late, &other] {
            assert!(raw.pod_spec.is_none());
            assert!(raw.field::<Value>("spec").unwrap().is_some(), "kept raw");
            assert_eq!(*raw.pod_spec().unwrap(), *first.pod_spec().unwrap());
        }
        let escaped = read(&format!(r#"{{"kind":"Pod","apiVersion":"v1","sp\u0065c":{SPEC}}}"#));
        assert!(escaped.pod_spec.is_some(), "an escaped key reads as the same key");
        let none = read(r#"{"kind":"Pod","apiVersion":"v1","spec":null}"#);
        assert_eq!(*none.pod_spec().unwrap(), PodSpec::default());
    }

    #[test]
    fn all_raw_keeps_a_pods_spec_raw_so_its_error_names_the_field() {
        let json = r#"{"kind":"Pod","apiVersion":"v1","spec":{"containers":[{"name":"a","env":[{"name":5}]}]}}"#;
        assert!(serde_json::from_str::<RawObject>(json).is_err(), "the one-pass read fails");
        let AllRaw(raw) = serde_json::from_str(json).unwrap();
        let error = raw.pod_spec().unwrap_err();
        assert_eq!(error.field, "spec.containers[0].env[0].name", "{error}");
    }
}
