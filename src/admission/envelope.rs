//! The AdmissionReview envelope as read: kube-core's `AdmissionRequest`, filled with the fields a
//! route reads. Its own derive also reads `requestKind`, `requestResource`, the user's groups and
//! extras and `options` (into a `serde_json::Value`): about a sixth of a harness review's cost,
//! for fields no rule reads. Here they are skipped unparsed and left empty in the request.

use std::marker::PhantomData;

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::core::admission::{AdmissionRequest, Operation};
use kube::core::{GroupVersionKind, GroupVersionResource, Resource, TypeMeta};
use serde::de::value::MapAccessDeserializer;
use serde::{Deserialize, Deserializer};

/// An AdmissionReview body, read with [`Object`]; `response` and anything else is skipped.
#[derive(Deserialize)]
#[serde(rename = "AdmissionReview", rename_all = "camelCase")]
pub(super) struct Review<O> {
    api_version: String,
    kind: String,
    request: Option<Object<Request<O>>>,
}

/// `T` read from a JSON object only. serde's derive also reads a struct from an array of its
/// fields in order; kube-core's `AdmissionReview` (flattened, so read as a map) refused that, and
/// so does this.
pub(super) struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(Visit(PhantomData)).map(Object)
    }
}

/// What is read of `request`. Missing required fields and repeated fields fail as they do with
/// kube-core's derive (a repeated `userInfo.username` too, which k8s-openapi let the last win).
#[derive(Deserialize)]
#[serde(rename = "AdmissionRequest", rename_all = "camelCase")]
struct Request<O> {
    uid: String,
    kind: GroupVersionKind,
    resource: GroupVersionResource,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    user_info: Object<User>,
    object: Option<O>,
    old_object: Option<O>,
    #[serde(default)]
    dry_run: bool,
}

/// `userInfo`: the username (the reference rules tell the cleanup controllers by it).
#[derive(Deserialize)]
#[serde(rename = "UserInfo")]
struct User {
    #[serde(default)]
    username: Option<String>,
}

impl<'de, O: Deserialize<'de>> Review<O> {
    /// Reads a review from `text`, which must be a JSON object.
    pub(super) fn read(text: &'de str) -> serde_json::Result<Self> {
        serde_json::from_str::<Object<Self>>(text).map(|Object(review)| review)
    }
}

impl<O> Review<O> {
    /// Its `apiVersion` and `kind`.
    pub(super) fn types(&self) -> (&str, &str) {
        (&self.api_version, &self.kind)
    }

    /// The request, its objects mapped by `object`; `None` when the review has none.
    pub(super) fn into_request<T: Resource>(self, object: impl Fn(O) -> T) -> Option<AdmissionRequest<T>> {
        let Self { api_version, kind, request } = self;
        let Object(r) = request?;
        Some(AdmissionRequest {
            types: TypeMeta { api_version, kind },
            uid: r.uid,
            kind: r.kind,
            resource: r.resource,
            sub_resource: r.sub_resource,
            request_kind: None,
            request_resource: None,
            request_sub_resource: None,
            name: r.name,
            namespace: r.namespace,
            operation: r.operation,
            user_info: UserInfo { username: r.user_info.0.username, ..UserInfo::default() },
            object: r.object.map(&object),
            old_object: r.old_object.map(&object),
            dry_run: r.dry_run,
            options: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::RawObject;

    fn read(text: &str) -> Result<AdmissionRequest<RawObject>, String> {
        let review: Review<RawObject> = Review::read(text).map_err(|e| e.to_string())?;
        review.into_request(|o| o).ok_or_else(|| "no request".to_string())
    }

    const REQUEST: &str = r#""uid":"u1","kind":{"group":"","version":"v1","kind":"Secret"},
        "resource":{"group":"","version":"v1","resource":"secrets"},"operation":"DELETE",
        "userInfo":{"username":"system:serviceaccount:kagent:kagent-controller","groups":["a","b"],"extra":{"x":["y"]}},
        "requestKind":{"group":"","version":"v1","kind":"Secret"},"options":{"kind":"DeleteOptions","apiVersion":"meta.k8s.io/v1"}"#;

    #[test]
    fn the_fields_routes_read_are_kept_and_the_rest_left_empty() {
        let text = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{{REQUEST},"namespace":"ns","name":"s","dryRun":true}}}}"#
        );
        let req = read(&text).unwrap();
        assert_eq!(
            (req.types.api_version.as_str(), req.types.kind.as_str()),
            ("admission.k8s.io/v1", "AdmissionReview")
        );
        assert_eq!(
            (req.uid.as_str(), req.kind.kind.as_str(), req.resource.resource.as_str()),
            ("u1", "Secret", "secrets")
        );
        assert_eq!((req.namespace.as_deref(), req.name.as_str(), req.dry_run), (Some("ns"), "s", true));
        assert_eq!(req.operation, Operation::Delete);
        assert_eq!(req.user_info.username.as_deref(), Some("system:serviceaccount:kagent:kagent-controller"));
        assert!(req.user_info.groups.is_none() && req.request_kind.is_none() && req.options.is_none());
        assert!(req.object.is_none() && req.old_object.is_none());
    }

    #[test]
    fn a_missing_or_repeated_field_fails_as_with_kube_cores_derive() {
        let missing = REQUEST.replace(r#""uid":"u1","#, "");
        let err = read(&format!(r#"{{"apiVersion":"v","kind":"k","request":{{{missing}}}}}"#)).unwrap_err();
        assert!(err.contains("missing field `uid`"), "{err}");
        let twice = format!(r#"{{"apiVersion":"v","kind":"k","request":{{{REQUEST},"uid":"u2"}}}}"#);
        assert!(read(&twice).unwrap_err().contains("duplicate field `uid`"));
        let no_version = format!(r#"{{"kind":"k","request":{{{REQUEST}}}}}"#);
        assert!(read(&no_version).unwrap_err().contains("missing field `apiVersion`"));
        assert_eq!(
            read(r#"{"apiVersion":"v","kind":"k","response":{"uid":"u","allowed":true}}"#).unwrap_err(),
            "no request"
        );
    }
}
