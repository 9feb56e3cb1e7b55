//! Writes the continuous audit's OpenReports (`core::openreports` decides what they say): one
//! `Report` per namespace holding AgentHarnesses, applied server-side (field manager
//! `harness-guard`) by the Lease holder only, and only when the content changed (timestamps
//! aside); deleted when the namespace holds no harness any more. The CRDs are optional: found by
//! discovery at the first pass and looked for again at each resync while absent; when they are
//! missing (or removed later) nothing is written and that is logged once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::core::openreports::{API_VERSION, Content, MANAGED_BY, REPORT_NAME, SOURCE};
use crate::telemetry::Metrics;

/// Whether the Report kind is served.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Presence {
    /// Not looked for yet, or the last look failed.
    Unknown,
    /// Not served when last looked for.
    Absent(Instant),
    /// Served.
    Present,
}

/// The Reports this replica keeps.
pub struct Reports {
    client: kube::Client,
    metrics: Arc<Metrics>,
    resource: ApiResource,
    /// Where earlier Reports are read back from: these namespaces, or all when empty.
    namespaces: Vec<String>,
    /// How long an absent kind stays unasked.
    recheck: Duration,
    presence: Presence,
    /// What each Report holds, as last written or read; `None` until read back as leader.
    stored: Option<BTreeMap<String, Content>>,
}

fn not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(e) if e.code == 404)
}

impl Reports {
    /// A writer in `namespaces` (all when empty) that looks for absent CRDs every `recheck`.
    pub fn new(client: kube::Client, metrics: Arc<Metrics>, namespaces: Vec<String>, recheck: Duration) -> Self {
        let gvk = GroupVersionKind::gvk("openreports.io", "v1alpha1", "Report");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "reports");
        Self { client, metrics, resource, namespaces, recheck, presence: Presence::Unknown, stored: None }
    }

    /// True when this pass should build the Reports: this replica `leading`, and the Report kind
    /// served. A follower forgets what it knew: on taking the Lease it reads the Reports back.
    pub async fn ready(&mut self, leading: bool) -> bool {
        if !leading {
            self.stored = None;
            return false;
        }
        self.served().await
    }

    /// Brings the Reports in line with `desired` (by namespace); only after [`Reports::ready`]
    /// said yes this pass.
    pub async fn sync(&mut self, mut desired: BTreeMap<String, Content>) {
        let mut stored = match self.stored.take() {
            Some(stored) => stored,
            None => match self.read_back().await {
                Ok(stored) => stored,
                Err(error) => return self.failed("read back", &error),
            },
        };
        for (namespace, content) in &mut desired {
            if let Some(before) = stored.get(namespace) {
                content.keep_timestamps(before);
                if before == content {
                    continue;
                }
            }
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &self.resource);
            let params = PatchParams::apply(SOURCE).force();
            let written = api.patch(REPORT_NAME, &params, &Patch::Apply(content.to_object(namespace))).await;
            self.metrics.report_write("apply", written.is_ok());
            match written {
                Ok(_) => {
                    tracing::debug!(%namespace, summary = ?content.summary, "report written");
                    stored.insert(namespace.clone(), content.clone());
                }
                Err(error) if not_found(&error) => return self.failed("write", &error),
                // Not written: tried again at the next pass, which compares with what is stored.
                Err(error) => tracing::warn!(%error, %namespace, "cannot write the report"),
            }
        }
        let gone: Vec<String> = stored.keys().filter(|ns| !desired.contains_key(*ns)).cloned().collect();
        for namespace in gone {
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &namespace, &self.resource);
            let deleted = api.delete(REPORT_NAME, &DeleteParams::default()).await;
            self.metrics.report_write("delete", deleted.is_ok() || deleted.as_ref().is_err_and(not_found));
            match deleted {
                Ok(_) => {
                    tracing::debug!(%namespace, "report removed: the namespace holds no harness");
                    stored.remove(&namespace);
                }
                Err(error) if not_found(&error) => {
                    stored.remove(&namespace);
                }
                Err(error) => tracing::warn!(%error, %namespace, "cannot remove the report"),
            }
        }
        self.stored = Some(stored);
    }

    /// True when the Report kind is served: asked at the first pass, then again once `recheck`
    /// has passed while absent. Logs each change of answer once.
    async fn served(&mut self) -> bool {
        match self.presence {
            Presence::Present => return true,
            Presence::Absent(at) if at.elapsed() < self.recheck => return false,
            _ => {}
        }
        let before = self.presence;
        match self.client.list_api_group_resources(API_VERSION).await {
            Ok(list) if list.resources.iter().any(|r| r.name == self.resource.plural) => {
                tracing::info!("OpenReports CRDs found: writing the audit's results as Report objects");
                self.presence = Presence::Present;
                true
            }
            Ok(_) => self.absent(before),
            Err(error) if not_found(&error) => self.absent(before),
            Err(error) => {
                tracing::warn!(%error, "cannot tell whether the OpenReports CRDs are installed; asking again next pass");
                self.presence = Presence::Unknown;
                false
            }
        }
    }

    fn absent(&mut self, before: Presence) -> bool {
        if !matches!(before, Presence::Absent(_)) {
            tracing::info!(
                api = API_VERSION,
                "OpenReports CRDs not installed: audit results go to Events and metrics only (looked for again at each resync)"
            );
        }
        self.presence = Presence::Absent(Instant::now());
        false
    }

    /// A 404 means the kind went away; anything else is retried next pass.
    fn failed(&mut self, what: &str, error: &kube::Error) {
        self.stored = None;
        if not_found(error) {
            self.absent(Presence::Present);
        } else {
            tracing::warn!(%error, "cannot {what} the reports; retrying at the next pass");
        }
    }

    /// The Reports earlier leaders wrote, by namespace.
    async fn read_back(&self) -> Result<BTreeMap<String, Content>, kube::Error> {
        let params = ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
        let apis: Vec<Api<DynamicObject>> = if self.namespaces.is_empty() {
            vec![Api::all_with(self.client.clone(), &self.resource)]
        } else {
            self.namespaces.iter().map(|ns| Api::namespaced_with(self.client.clone(), ns, &self.resource)).collect()
        };
        let mut stored = BTreeMap::new();
        for api in apis {
            for report in api.list(&params).await?.items {
                if report.metadata.name.as_deref() != Some(REPORT_NAME) {
                    continue;
                }
                let namespace = report.metadata.namespace.clone().unwrap_or_default();
                // A Report that does not read as ours is rewritten at once.
                let content = serde_json::from_value(report.data).unwrap_or_default();
                stored.insert(namespace, content);
            }
        }
        Ok(stored)
    }
}
