//! The live reads of `explain`: targeted GETs and lists with the caller's own credentials, never
//! a watch of the cluster. The harness first; then, round by round, whatever the webhook's rules
//! look up for it ([`wanted`]); then the sandbox pods and the Events. A read the caller is not
//! allowed becomes an unreadable link naming the permission, never a failure; Secrets are reduced
//! to digests and flags as they arrive, as the webhook's view keeps them.

use std::collections::BTreeSet;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodSpec, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::DeserializeGuard;

use crate::cluster::client;
use crate::cluster::ingest::{AgentHarnessResource, Ingest, ModelConfigResource};
use crate::cluster::manifests::Objects;
use crate::cluster::view::View;
use crate::core::explain::{
    Condition, EventNote, Explanation, Observed, ReportSeen, Unread, Unreadable, explain, is_harness_pod, wanted,
};
use crate::core::finding::{Kind, ObjectRef};
use crate::core::model::AgentHarness;
use crate::core::policy::Policy;
use crate::core::view::Digester;
use crate::telemetry::redact_quoted;

/// Rounds of reads: harness → ModelConfig → key Secret is three; channels add none.
const MAX_ROUNDS: usize = 6;
/// Events shown per harness, newest first.
const EVENTS_SHOWN: usize = 10;

/// Explains the live harness `ns/name`; `Err` is unusable input (no cluster, no such harness).
pub(super) async fn explain_live(
    kubeconfig: Option<PathBuf>,
    ns: &str,
    name: &str,
    policy: &Policy,
) -> Result<Vec<Explanation>, String> {
    let config = client::config(kubeconfig).await.map_err(|e| e.to_string())?;
    let url = config.cluster_url.to_string();
    let client = client::client_for(config).map_err(|e| e.to_string())?;
    let digester = Digester::random();
    let (harness, conditions) = read_harness(&client, ns, name, &url, &digester).await?;
    let mut objects = Objects::default();
    objects.add(vec![harness.clone()], Vec::new(), Vec::new(), Vec::new());
    let (mut read, mut unreadable) = (BTreeSet::new(), Vec::new());
    for _ in 0..MAX_ROUNDS {
        let more = wanted(&harness, &view_of(&objects, policy, &digester), policy, &read);
        if more.is_empty() {
            break;
        }
        for object in more {
            if let Err(u) = read_object(&client, &object, &digester, &mut objects).await {
                unreadable.push(u);
            }
            read.insert(object);
        }
    }
    let pods = read_pods(&client, &harness, policy, &mut unreadable).await;
    let events = read_events(&client, &harness, &mut unreadable).await;
    let report = read_report(&client, &harness, &mut unreadable).await;
    let observed =
        Observed { read: Some(read), unreadable, conditions: Some(conditions), pods: Some(pods), events, report };
    Ok(vec![explain(&harness, &view_of(&objects, policy, &digester), policy, &observed)])
}

/// The webhook's view over what was read, in the policy's watch scope.
fn view_of(objects: &Objects, policy: &Policy, digester: &Digester) -> View {
    let (view, feeds) = View::new(&policy.watch, digester.clone());
    objects.clone().feed(feeds);
    view
}

/// `resource.group` as RBAC names it (`secrets`, `agentharnesses.kagent.dev`).
fn resource<K: Resource<DynamicType = ()>>() -> String {
    match K::group(&()).as_ref() {
        "" => K::plural(&()).to_string(),
        group => format!("{}.{group}", K::plural(&())),
    }
}

/// What a failed read means for the link: forbidden names the permission that would show it.
fn unreadable(what: Unread, verb: &str, resource: &str, ns: &str, error: kube::Error) -> Unreadable {
    match error {
        kube::Error::Api(status) if status.is_forbidden() => {
            Unreadable { what, why: "forbidden".into(), needs: Some(format!("{verb} on {resource} in {ns}")) }
        }
        error => Unreadable { what, why: redact_quoted(&error.to_string()), needs: None },
    }
}

/// The harness in stored form (literals reduced), and its conditions.
async fn read_harness(
    client: &kube::Client,
    ns: &str,
    name: &str,
    url: &str,
    digester: &Digester,
) -> Result<(AgentHarness, Vec<Condition>), String> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<AgentHarnessResource>(&()));
    let object = match api.get_opt(name).await {
        Ok(Some(object)) => object,
        Ok(None) => {
            return Err(format!(
                "AgentHarness {ns}/{name} not found in the cluster at {url} (or kagent's CRDs are not installed there)"
            ));
        }
        Err(kube::Error::Api(status)) if status.is_forbidden() => {
            let needs = resource::<AgentHarnessResource>();
            return Err(format!("cannot read AgentHarness {ns}/{name}: forbidden; it needs get on {needs} in {ns}"));
        }
        Err(e) => return Err(format!("cannot read AgentHarness {ns}/{name} from {url}: {e}")),
    };
    let text = |c: &serde_json::Value, k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let conditions = object.data.pointer("/status/conditions").and_then(|c| c.as_array()).cloned().unwrap_or_default();
    let conditions = conditions
        .iter()
        .map(|c| Condition {
            type_: text(c, "type"),
            status: text(c, "status"),
            reason: text(c, "reason"),
            message: text(c, "message"),
        })
        .collect();
    let value = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    let harness: AgentHarnessResource = serde_json::from_value(value).map_err(|e| {
        format!("AgentHarness {ns}/{name} does not read as an AgentHarness: {}", redact_quoted(&e.to_string()))
    })?;
    Ok((harness.ingest(digester), conditions))
}

/// Reads one object of the chain into `objects`; absent is no error (the view then holds none).
async fn read_object(
    client: &kube::Client,
    object: &ObjectRef,
    digester: &Digester,
    objects: &mut Objects,
) -> Result<(), Unreadable> {
    match object.kind {
        Kind::ModelConfig => {
            let found = get::<ModelConfigResource>(client, object, digester).await?;
            objects.add(Vec::new(), found.into_iter().collect(), Vec::new(), Vec::new());
        }
        Kind::Secret => {
            let found = get::<Secret>(client, object, digester).await?;
            objects.add(Vec::new(), Vec::new(), found.into_iter().collect(), Vec::new());
        }
        Kind::ConfigMap => {
            let found = get::<ConfigMap>(client, object, digester).await?;
            objects.add(Vec::new(), Vec::new(), Vec::new(), found.into_iter().collect());
        }
        Kind::AgentHarness | Kind::Pod => {}
    }
    Ok(())
}

/// GETs `object` and reduces it at once: a Secret's values never outlive this call.
async fn get<K: Ingest>(
    client: &kube::Client,
    object: &ObjectRef,
    digester: &Digester,
) -> Result<Option<K::Stored>, Unreadable> {
    let what = || Unread::Object(object.clone());
    let api: Api<DeserializeGuard<K>> = Api::namespaced(client.clone(), &object.namespace);
    match api.get_opt(&object.name).await {
        Ok(None) => Ok(None),
        Ok(Some(DeserializeGuard(Ok(found)))) => Ok(Some(found.ingest(digester))),
        Ok(Some(DeserializeGuard(Err(invalid)))) => Err(Unreadable {
            what: what(),
            why: format!("it does not read as a {}: {}", object.kind.name(), redact_quoted(&invalid.error)),
            needs: None,
        }),
        Err(e) => Err(unreadable(what(), "get", &resource::<K>(), &object.namespace, e)),
    }
}

/// The harness's sandbox pods, in the policy's sandbox namespaces.
async fn read_pods(
    client: &kube::Client,
    harness: &AgentHarness,
    policy: &Policy,
    unreadable_out: &mut Vec<Unreadable>,
) -> Vec<(ObjectMeta, PodSpec)> {
    let mut found = Vec::new();
    for ns in &policy.sandbox.namespaces {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let mut params = ListParams::default().limit(500);
        loop {
            let page = match api.list(&params).await {
                Ok(page) => page,
                Err(e) => {
                    unreadable_out.push(unreadable(Unread::Pods(ns.clone()), "list", "pods", ns, e));
                    break;
                }
            };
            for pod in page.items {
                if is_harness_pod(&pod.metadata, harness, policy) {
                    found.push((pod.metadata, pod.spec.unwrap_or_default()));
                }
            }
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
    }
    found
}

/// The Events whose `regarding` is the harness, newest first; `None` when they cannot be listed.
async fn read_events(
    client: &kube::Client,
    harness: &AgentHarness,
    unreadable_out: &mut Vec<Unreadable>,
) -> Option<Vec<EventNote>> {
    let ns = harness.namespace();
    let name = harness.name();
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().fields(&format!("regarding.kind=AgentHarness,regarding.name={name}"));
    let list = match api.list(&params).await {
        Ok(list) => list,
        Err(e) => {
            unreadable_out.push(unreadable(Unread::Events(ns.to_string()), "list", &resource::<Event>(), ns, e));
            return None;
        }
    };
    let mut events: Vec<(String, EventNote)> = list
        .items
        .into_iter()
        .filter(|e| {
            let r = e.regarding.as_ref();
            r.and_then(|r| r.kind.as_deref()) == Some("AgentHarness") && r.and_then(|r| r.name.as_deref()) == Some(name)
        })
        .map(|e| {
            let time = (e.event_time.map(|t| t.0.to_string()))
                .or(e.deprecated_last_timestamp.map(|t| t.0.to_string()))
                .or(e.metadata.creation_timestamp.map(|t| t.0.to_string()))
                .unwrap_or_default();
            let reporter = (e.reporting_controller.filter(|r| !r.is_empty()))
                .or(e.deprecated_source.and_then(|s| s.component))
                .unwrap_or_else(|| "unknown".to_string());
            let note = EventNote {
                type_: e.type_.unwrap_or_default(),
                reason: e.reason.unwrap_or_default(),
                note: e.note.unwrap_or_default(),
                reporter,
                time: time.clone(),
            };
            (time, note)
        })
        .collect();
    events.sort_by(|a, b| b.0.cmp(&a.0));
    Some(events.into_iter().take(EVENTS_SHOWN).map(|(_, e)| e).collect())
}

/// The harness's results in the continuous audit's Report of its namespace; `None` when it
/// cannot be read.
async fn read_report(
    client: &kube::Client,
    harness: &AgentHarness,
    unreadable_out: &mut Vec<Unreadable>,
) -> Option<ReportSeen> {
    use crate::core::openreports::{API_VERSION, Content, REPORT_NAME};
    let ns = harness.namespace();
    match client.list_api_group_resources(API_VERSION).await {
        Ok(list) if list.resources.iter().any(|r| r.name == "reports") => {}
        Ok(_) => return Some(ReportSeen::NotInstalled),
        Err(kube::Error::Api(e)) if e.code == 404 => return Some(ReportSeen::NotInstalled),
        Err(e) => {
            unreadable_out.push(unreadable(Unread::Report(ns.to_string()), "get", "reports.openreports.io", ns, e));
            return None;
        }
    }
    let gvk = kube::core::GroupVersionKind::gvk("openreports.io", "v1alpha1", "Report");
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, "reports"));
    match api.get_opt(REPORT_NAME).await {
        Ok(None) => Some(ReportSeen::Missing),
        Ok(Some(report)) => {
            let content: Content = serde_json::from_value(report.data).unwrap_or_default();
            let name = harness.name();
            let mine = content.results.into_iter().filter(|r| {
                r.resources.iter().any(|s| s.kind == "AgentHarness" && s.name == name && s.namespace == ns)
            });
            Some(ReportSeen::Results(mine.collect()))
        }
        Err(e) => {
            unreadable_out.push(unreadable(Unread::Report(ns.to_string()), "get", "reports.openreports.io", ns, e));
            None
        }
    }
}
