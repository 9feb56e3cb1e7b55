//! A Kubernetes API server for tests: list and watch (and get) for Secrets, ConfigMaps,
//! AgentHarnesses and ModelConfigs over plain HTTP on loopback, so the real kube-rs client,
//! watchers and reflectors run unchanged. Objects are changed from the test; every request is
//! counted.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

/// The resources served, by plural: what the view watches, and what the certificate writer and
/// the audit write.
const RESOURCES: [(&str, &str, &str); 9] = [
    ("secrets", "v1", "Secret"),
    ("configmaps", "v1", "ConfigMap"),
    ("agentharnesses", "kagent.dev/v1alpha2", "AgentHarness"),
    ("modelconfigs", "kagent.dev/v1alpha2", "ModelConfig"),
    ("leases", "coordination.k8s.io/v1", "Lease"),
    ("validatingwebhookconfigurations", "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
    ("mutatingwebhookconfigurations", "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    ("events", "events.k8s.io/v1", "Event"),
    // An optional kind: the cluster has the External Secrets CRDs (not the SealedSecret ones).
    ("externalsecrets", "external-secrets.io/v1", "ExternalSecret"),
];

type Objects = BTreeMap<String, BTreeMap<(String, String), Value>>;

pub struct Inner {
    objects: Mutex<Objects>,
    rv: AtomicU64,
    events: broadcast::Sender<(String, Value)>,
    /// Lists wait until the gate opens (to test readiness before sync).
    gate_open: AtomicBool,
    gate: Notify,
    /// Requests by kind: "list", "watch", "get".
    pub requests: Mutex<BTreeMap<String, u64>>,
    /// Query strings seen, by plural.
    pub queries: Mutex<Vec<(String, String)>>,
    /// Every request's path, in order.
    pub paths: Mutex<Vec<String>>,
    /// While set, every request answers this status.
    pub fail_with: Mutex<Option<u16>>,
    /// Bumped to end every open watch; a resource in `gone` answers its next watch with 410 Gone.
    epoch: tokio::sync::watch::Sender<u64>,
    gone: Mutex<std::collections::BTreeSet<String>>,
}

#[derive(Clone)]
pub struct FakeApi {
    pub addr: std::net::SocketAddr,
    pub inner: Arc<Inner>,
}

impl FakeApi {
    /// Starts on 127.0.0.1:0 holding the objects of `yaml` (multi-document).
    pub async fn start(yaml: &str, gate_open: bool) -> Self {
        let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).unwrap();
        Self::start_with(docs, gate_open).await
    }

    /// Starts on 127.0.0.1:0 holding `objects`.
    pub async fn start_with(objects: Vec<Value>, gate_open: bool) -> Self {
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            objects: Mutex::new(BTreeMap::new()),
            rv: AtomicU64::new(1),
            events,
            gate_open: AtomicBool::new(gate_open),
            gate: Notify::new(),
            requests: Mutex::new(BTreeMap::new()),
            queries: Mutex::new(Vec::new()),
            paths: Mutex::new(Vec::new()),
            fail_with: Mutex::new(None),
            epoch: tokio::sync::watch::channel(0).0,
            gone: Mutex::new(Default::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let api = Self { addr, inner };
        for doc in objects.into_iter().filter(|d| !d.is_null()) {
            api.apply(doc);
        }
        api
    }

    /// A kubeconfig file for this server.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"http://{}\"}}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\n\
             current-context: fake\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Ends every open watch and answers the next watch of each resource with 410 Gone, as an
    /// apiserver does when the watch's resourceVersion is too old: clients must list again.
    pub fn expire_watches(&self) {
        *self.inner.gone.lock().unwrap() = RESOURCES.iter().map(|(p, _, _)| p.to_string()).collect();
        self.inner.epoch.send_modify(|e| *e += 1);
    }

    pub fn open_gate(&self) {
        self.inner.gate_open.store(true, Ordering::SeqCst);
        self.inner.gate.notify_waiters();
    }

    fn plural_of(kind: &str) -> &'static str {
        RESOURCES.iter().find(|(_, _, k)| *k == kind).map(|(p, _, _)| *p).unwrap_or_else(|| panic!("kind {kind}"))
    }

    fn next_rv(&self) -> String {
        (self.inner.rv.fetch_add(1, Ordering::SeqCst) + 1).to_string()
    }

    fn store<R>(&self, plural: &str, f: impl FnOnce(&mut BTreeMap<(String, String), Value>) -> R) -> R {
        f(self.inner.objects.lock().unwrap().entry(plural.to_string()).or_default())
    }

    fn notify(&self, plural: &str, kind: &str, obj: Value) {
        let _ = self.inner.events.send((plural.to_string(), json!({"type": kind, "object": obj})));
    }

    /// Creates or replaces an object and tells watchers.
    pub fn apply(&self, mut obj: Value) {
        let plural = Self::plural_of(obj["kind"].as_str().unwrap());
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv);
        if obj["metadata"]["uid"].is_null() {
            obj["metadata"]["uid"] = json!(format!("uid-{rv}"));
        }
        let meta = |k: &str| obj["metadata"][k].as_str().unwrap_or_default().to_string();
        let key = (meta("namespace"), meta("name"));
        let existed = self.store(plural, |objects| objects.insert(key, obj.clone()).is_some());
        self.notify(plural, if existed { "MODIFIED" } else { "ADDED" }, obj);
    }

    /// Deletes an object and tells watchers.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let plural = Self::plural_of(kind);
        if let Some(mut obj) = self.store(plural, |objects| objects.remove(&(namespace.into(), name.into()))) {
            obj["metadata"]["resourceVersion"] = json!(self.next_rv());
            self.notify(plural, "DELETED", obj);
        }
    }

    /// Requests of `kind` ("list" per page, "watch", "get") served so far; "list-done" counts
    /// lists served to their last page.
    pub fn count(&self, kind: &str) -> u64 {
        self.inner.requests.lock().unwrap().get(kind).copied().unwrap_or(0)
    }

    /// The stored object, if any (cluster-scoped objects have namespace "").
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        self.store(Self::plural_of(kind), |objects| objects.get(&(namespace.into(), name.into())).cloned())
    }

    /// Every stored object of `kind`.
    pub fn list(&self, kind: &str) -> Vec<Value> {
        self.store(Self::plural_of(kind), |objects| objects.values().cloned().collect())
    }

    /// All requests served so far.
    pub fn total(&self) -> u64 {
        self.inner.requests.lock().unwrap().values().sum()
    }
}

/// `(plural, namespace, name)` from an API path.
fn parse_path(path: &str) -> Option<(String, Option<String>, Option<String>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", "v1", rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return None,
    };
    match rest {
        [plural] => Some((plural.to_string(), None, None)),
        [plural, name] => Some((plural.to_string(), None, Some(name.to_string()))),
        ["namespaces", ns, plural] => Some((plural.to_string(), Some(ns.to_string()), None)),
        ["namespaces", ns, plural, name] => Some((plural.to_string(), Some(ns.to_string()), Some(name.to_string()))),
        _ => None,
    }
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").to_string();
    let Some((plural, ns, name)) = parse_path(req.uri().path()) else {
        return status(404, "NotFound", "unknown path");
    };
    let Some((_, api_version, kind)) = RESOURCES.iter().find(|(p, _, _)| *p == plural) else {
        return status(404, "NotFound", "unknown resource");
    };
    let param = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
    let watch = matches!(param("watch"), Some("true" | "1"));
    let method = req.method().clone();
    let verb = match method.as_str() {
        "GET" if watch => "watch",
        "GET" if name.is_some() => "get",
        "GET" => "list",
        "POST" => "create",
        "PUT" => "replace",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "other",
    };
    *inner.requests.lock().unwrap().entry(verb.to_string()).or_default() += 1;
    inner.queries.lock().unwrap().push((plural.clone(), query.clone()));
    inner.paths.lock().unwrap().push(req.uri().path().to_string());
    if let Some(code) = *inner.fail_with.lock().unwrap() {
        return status(code, "InternalError", "injected failure");
    }
    if !matches!(verb, "watch" | "get" | "list") {
        let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = axum::body::to_bytes(req.into_body(), 16 << 20).await.unwrap();
        let api = FakeApi { addr: "127.0.0.1:0".parse().unwrap(), inner: inner.clone() };
        return write(&api, verb, &plural, ns.unwrap_or_default(), name, &content_type, &body);
    }
    let in_scope = |key: &(String, String)| ns.as_deref().is_none_or(|n| n == key.0);
    if !watch {
        while !inner.gate_open.load(Ordering::SeqCst) {
            let notified = inner.gate.notified();
            if inner.gate_open.load(Ordering::SeqCst) {
                break;
            }
            notified.await;
        }
    }
    let rv = inner.rv.load(Ordering::SeqCst).to_string();
    if let Some(name) = name {
        let found =
            inner.objects.lock().unwrap().get(&plural).and_then(|o| o.get(&(ns.unwrap_or_default(), name)).cloned());
        return match found {
            Some(obj) => axum::Json(obj).into_response(),
            None => status(404, "NotFound", "not found"),
        };
    }
    if !watch {
        // Pages of `limit` objects, as the apiserver serves them (kube-rs asks for 500); the
        // continue token is the offset of the next page. Only the page is copied.
        let limit = param("limit").and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(usize::MAX);
        let offset = param("continue").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        let (items, total) = {
            let all = inner.objects.lock().unwrap();
            let in_ns = all.get(&plural).into_iter().flatten().filter(|(k, _)| in_scope(k));
            let items: Vec<Value> = in_ns.clone().skip(offset).take(limit).map(|(_, v)| v.clone()).collect();
            (items, in_ns.count())
        };
        let next = offset.saturating_add(items.len());
        let mut metadata = json!({"resourceVersion": rv});
        if next < total {
            metadata["continue"] = json!(next.to_string());
        } else {
            *inner.requests.lock().unwrap().entry("list-done".to_string()).or_default() += 1;
        }
        let list =
            json!({"apiVersion": api_version, "kind": format!("{kind}List"), "metadata": metadata, "items": items});
        return axum::Json(list).into_response();
    }
    if inner.gone.lock().unwrap().remove(&plural) {
        // As the apiserver does for a resourceVersion older than its history: 200, then an ERROR
        // event carrying 410 Gone, which makes clients list again.
        let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version", "reason": "Expired", "code": 410}});
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(format!("{gone}\n")))
            .unwrap();
    }
    let rx = inner.events.subscribe();
    let mut epoch = inner.epoch.subscribe();
    epoch.borrow_and_update();
    let stream = futures::stream::unfold((rx, plural, ns, epoch), |(mut rx, plural, ns, mut epoch)| async move {
        loop {
            let next = tokio::select! {
                next = rx.recv() => next,
                _ = epoch.changed() => return None,
            };
            match next {
                Ok((p, event))
                    if p == plural && ns.as_deref().is_none_or(|n| event["object"]["metadata"]["namespace"] == n) =>
                {
                    let line = Bytes::from(format!("{event}\n"));
                    return Some((Ok::<_, Infallible>(line), (rx, plural, ns, epoch)));
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    });
    Response::builder().header("content-type", "application/json").body(Body::from_stream(stream)).unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": code, "reason": reason, "message": message});
    (StatusCode::from_u16(code).unwrap(), [("content-type", "application/json")], body.to_string()).into_response()
}

/// create, replace (compare-and-swap on resourceVersion), patch (JSON or merge) and delete.
fn write(
    api: &FakeApi,
    verb: &str,
    plural: &str,
    ns: String,
    name: Option<String>,
    content_type: &str,
    body: &Bytes,
) -> Response {
    let (_, api_version, kind) = RESOURCES.iter().find(|(p, _, _)| *p == plural).unwrap();
    let stored = |name: &str| api.store(plural, |objects| objects.get(&(ns.clone(), name.to_string())).cloned());
    let stamp = |mut obj: Value, name: &str| {
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
        obj["metadata"]["name"] = json!(name);
        if ns.is_empty() {
            obj["metadata"].as_object_mut().unwrap().remove("namespace");
        } else {
            obj["metadata"]["namespace"] = json!(ns);
        }
        obj
    };
    match (verb, name) {
        ("create", None) => {
            let obj: Value = serde_json::from_slice(body).unwrap();
            let mut name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
            if name.is_empty() {
                let prefix = obj["metadata"]["generateName"].as_str().unwrap_or_default();
                name = format!("{prefix}{}", api.inner.rv.load(Ordering::SeqCst));
            }
            if stored(&name).is_some() {
                return status(409, "AlreadyExists", "already exists");
            }
            let obj = stamp(obj, &name);
            api.apply(obj);
            (StatusCode::CREATED, axum::Json(stored(&name).unwrap())).into_response()
        }
        ("replace", Some(name)) => {
            let Some(current) = stored(&name) else { return status(404, "NotFound", "not found") };
            let obj: Value = serde_json::from_slice(body).unwrap();
            if obj["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                return status(409, "Conflict", "the object has been modified");
            }
            api.apply(stamp(obj, &name));
            axum::Json(stored(&name).unwrap()).into_response()
        }
        ("patch", Some(name)) => {
            let Some(mut obj) = stored(&name) else { return status(404, "NotFound", "not found") };
            let patch: Value = serde_json::from_slice(body).unwrap();
            if content_type.starts_with("application/json-patch+json") {
                let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
                if let Err(e) = json_patch::patch(&mut obj, &patch) {
                    return status(422, "Invalid", &e.to_string());
                }
            } else {
                json_patch::merge(&mut obj, &patch);
            }
            api.apply(stamp(obj, &name));
            axum::Json(stored(&name).unwrap()).into_response()
        }
        ("delete", Some(name)) => match stored(&name) {
            Some(obj) => {
                api.delete(kind, &ns, &name);
                axum::Json(obj).into_response()
            }
            None => status(404, "NotFound", "not found"),
        },
        _ => status(405, "MethodNotAllowed", "unsupported"),
    }
}
