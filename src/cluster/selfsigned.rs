//! Self-signed certificate mode: the Lease holder keeps a CA and a serving pair in one TLS Secret
//! shared by all replicas and writes the CA into the `caBundle` of the two webhook
//! configurations; every replica serves the pair the Secret holds. Renewal issues a new serving
//! certificate under the same CA, so the `caBundle` does not change and no request fails. A CA
//! near its end is rotated with overlap: the next CA joins the `caBundle` (the Secret's
//! `ca-bundle.crt`) first, the serving certificate moves to it only once the caBundles trust it,
//! and the old CA leaves them only after every replica has had time to load the new leaf. The
//! caBundles are always written before the Secret, so no replica can serve a leaf the apiserver
//! does not trust.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::lease::Elector;
use crate::certs::{
    Bundle, CA_CERT, CA_KEY, Plan, TLS_CERT, TLS_KEY, bundle_holds, generate_ca, generate_with, issue_leaf, issued_by,
    plan, trust_bundle,
};
use crate::serving::certificate::{CertSource, load_pem};
use crate::serving::readiness::Readiness;
use crate::telemetry::Metrics;

/// Lifetimes and the check interval.
#[derive(Clone, Debug)]
pub struct Lifetimes {
    /// CA lifetime.
    pub ca: Duration,
    /// Serving certificate lifetime.
    pub leaf: Duration,
    /// Renew the serving certificate this long before it expires.
    pub renew_before: Duration,
    /// How often to check the Secret, the Lease and the caBundles.
    pub check_every: Duration,
}

/// Lifetimes that would make the writer issue on every pass, refused at start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifetimeError {
    /// A fresh serving certificate would already be due for renewal.
    #[error(
        "--renew-before-seconds ({renew_before}) must be less than --leaf-validity-seconds ({leaf}): \
         otherwise every check issues a new serving certificate"
    )]
    RenewBeforeTooLong {
        /// Seconds.
        renew_before: u64,
        /// Seconds.
        leaf: u64,
    },
    /// A fresh CA would already be too short-lived to cover a full serving certificate.
    #[error(
        "--ca-validity-seconds ({ca}) must be more than --leaf-validity-seconds plus --renew-before-seconds \
         ({needed}): otherwise every check makes a new CA, and each new CA fails calls until every replica serves it"
    )]
    CaTooShort {
        /// Seconds.
        ca: u64,
        /// Leaf plus renew-before, seconds.
        needed: u64,
    },
}

impl Lifetimes {
    /// Refuses lifetimes under which [`crate::certs::plan`] never answers `Keep`.
    pub fn validate(&self) -> Result<(), LifetimeError> {
        let (ca, leaf, renew_before) = (self.ca.as_secs(), self.leaf.as_secs(), self.renew_before.as_secs());
        if renew_before >= leaf {
            return Err(LifetimeError::RenewBeforeTooLong { renew_before, leaf });
        }
        let needed = leaf.saturating_add(renew_before);
        if ca <= needed {
            return Err(LifetimeError::CaTooShort { ca, needed });
        }
        Ok(())
    }
}

/// The self-signed certificate manager of one replica.
pub struct SelfSigned {
    /// The TLS Secret, in the release namespace.
    pub secrets: Api<Secret>,
    /// Name of the TLS Secret.
    pub secret_name: String,
    /// The validating webhook configuration to keep the caBundle of.
    pub validating: Option<(Api<ValidatingWebhookConfiguration>, String)>,
    /// The mutating webhook configuration to keep the caBundle of.
    pub mutating: Option<(Api<MutatingWebhookConfiguration>, String)>,
    /// Names the serving certificate must cover.
    pub dns_names: Vec<String>,
    /// The single writer.
    pub elector: Arc<Elector>,
    /// Lifetimes.
    pub lifetimes: Lifetimes,
    /// What owns the TLS Secret (the Deployment), so that deleting it deletes the Secret.
    pub owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
}

/// The Secret's key holding every CA the caBundles must trust (PEM, the signing CA last).
pub const CA_BUNDLE: &str = "ca-bundle.crt";

/// What the TLS Secret holds: the signing CA, the serving pair, and the CAs to trust.
#[derive(Clone, PartialEq)]
struct Stored {
    bundle: Bundle,
    trust: String,
}

fn stored_from(secret: &Secret) -> Option<Stored> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| data.get(k).and_then(|v| String::from_utf8(v.0.clone()).ok()).filter(|s| !s.is_empty());
    let bundle = Bundle { ca_cert: text(CA_CERT)?, ca_key: text(CA_KEY)?, cert: text(TLS_CERT)?, key: text(TLS_KEY)? };
    // Written before the bundle key existed: the signing CA alone.
    let trust = text(CA_BUNDLE).unwrap_or_else(|| bundle.ca_cert.clone());
    Some(Stored { bundle, trust })
}

fn secret_data(stored: &Stored) -> BTreeMap<String, ByteString> {
    let b = &stored.bundle;
    [(CA_CERT, &b.ca_cert), (CA_KEY, &b.ca_key), (TLS_CERT, &b.cert), (TLS_KEY, &b.key), (CA_BUNDLE, &stored.trust)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.clone().into_bytes())))
        .collect()
}

impl SelfSigned {
    /// Runs until the process ends: reconcile, then wait `check_every`, or less when a webhook
    /// configuration changes: one re-applied with a replace (`helm upgrade --force`, a GitOps
    /// tool's replace) has lost its caBundle, and the leader writes it back at once.
    pub async fn run(self, certs: Arc<CertSource>, readiness: Arc<Readiness>, metrics: Arc<Metrics>) {
        let changed = Arc::new(tokio::sync::Notify::new());
        let mut watches = tokio::task::JoinSet::new();
        if let Some((api, name)) = &self.validating {
            watches.spawn(watch_config(api.clone(), name.clone(), changed.clone()));
        }
        if let Some((api, name)) = &self.mutating {
            watches.spawn(watch_config(api.clone(), name.clone(), changed.clone()));
        }
        loop {
            if let Err(error) = self.reconcile(&certs, &metrics).await {
                metrics.cert_check("failed");
                metrics.watch_error("SelfSignedCertificate");
                tracing::warn!(%error, "self-signed certificate check failed; retrying");
            }
            if certs.current().is_some() {
                readiness.cert_loaded.store(true, Ordering::Release);
            }
            tokio::select! {
                () = tokio::time::sleep(self.lifetimes.check_every) => {}
                () = changed.notified() => {}
            }
        }
    }

    /// One pass: lead if possible; as leader bring the Secret and the caBundles to what they
    /// should hold (caBundles first); then serve what the Secret holds. A caBundle that cannot be
    /// written (a configuration the chart did not render, an API error) never keeps the
    /// certificate from loading.
    pub async fn reconcile(&self, certs: &CertSource, metrics: &Metrics) -> Result<(), kube::Error> {
        let leader = self.elector.try_lead().await?;
        let mut secret = self.secrets.get_opt(&self.secret_name).await?;
        let mut stored = secret.as_ref().and_then(stored_from);
        // The leader reads its configurations once a pass; what it patches is updated in place.
        let mut webhooks = if leader { Some(self.read_webhooks().await?) } else { None };
        if let Some(webhooks) = &mut webhooks
            && let Some(written) = self.lead(secret.take(), stored.as_ref(), webhooks).await?
        {
            stored = Some(written);
        }
        let Some(stored) = stored else {
            metrics.cert_check("waiting");
            tracing::info!(secret = %self.secret_name, leader, "waiting for the certificate writer to fill the TLS Secret");
            return Ok(());
        };
        let serving = certs.current();
        let (cert, key) = (stored.bundle.cert.into_bytes(), stored.bundle.key.into_bytes());
        let name = Path::new(&self.secret_name);
        match load_pem(cert, key, name, name) {
            Ok(loaded) if serving.as_ref().is_none_or(|s| s.cert != loaded.key.cert) => {
                metrics.cert_check("loaded");
                certs.set(&loaded, metrics);
                tracing::info!(not_after = loaded.not_after, "serving certificate loaded from the TLS Secret");
            }
            Ok(_) => metrics.cert_check("unchanged"),
            Err(error) => {
                metrics.cert_check("refused");
                tracing::error!(%error, "TLS Secret holds an unusable pair; the previous one keeps serving");
                return Ok(());
            }
        }
        if let Some(webhooks) = &mut webhooks {
            // Usually nothing to do: repairs a caBundle edited or recreated since.
            self.ensure_ca_bundles(webhooks, stored.trust.as_bytes()).await?;
        }
        Ok(())
    }

    /// The leader's step: renews or rotates what is due, works out the CAs to trust, writes
    /// them into the caBundles, then the Secret. Returns what it wrote, if anything.
    async fn lead(
        &self,
        secret: Option<Secret>,
        found: Option<&Stored>,
        webhooks: &mut Webhooks,
    ) -> Result<Option<Stored>, kube::Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let l = &self.lifetimes;
        // Every replica reloads the Secret each check; two Lease durations cover a slow one.
        let settle = l.check_every.saturating_mul(6);
        let seen = webhooks.bundles();
        let issued: Result<Stored, crate::certs::CertError> = match (
            plan(found.map(|f| &f.bundle), &self.dns_names, now, l.renew_before, l.leaf),
            found,
        ) {
            (Plan::Keep, Some(found)) => Ok(found.clone()),
            (Plan::RenewLeaf, Some(found)) => {
                let b = &found.bundle;
                // After a rotation, the leaf moves to the new CA only once the apiserver trusts it.
                if !issued_by(&b.cert, &b.ca_cert) && !seen.iter().all(|bundle| bundle_holds(bundle, &b.ca_cert)) {
                    tracing::info!(
                        "the next CA is not in every caBundle yet; the serving certificate moves to it at a later check"
                    );
                    Ok(found.clone())
                } else {
                    issue_leaf(&b.ca_cert, &b.ca_key, &self.dns_names, l.leaf).map(|(cert, key)| Stored {
                        bundle: Bundle { cert, key, ..b.clone() },
                        trust: found.trust.clone(),
                    })
                }
            }
            (Plan::RotateCa, Some(found)) => generate_ca(l.ca).map(|(ca_cert, ca_key)| {
                tracing::info!(
                    "the CA is near its end: the next CA joins the caBundles before it signs anything served"
                );
                let trust = format!("{}\n{ca_cert}", found.trust);
                Stored { bundle: Bundle { ca_cert, ca_key, ..found.bundle.clone() }, trust }
            }),
            _ => generate_with(&self.dns_names, l.ca, l.leaf).map(|bundle| {
                // Nothing usable (lost, never made): trust what the caBundles trusted too, so
                // replicas still serving an older leaf keep working until they reload.
                let before: Vec<String> = seen.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
                Stored { trust: format!("{}\n{}", before.join("\n"), bundle.ca_cert), bundle }
            }),
        };
        let next = match issued {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, "cannot issue certificates");
                return Ok(None);
            }
        };
        let trust = trust_bundle(&next.trust, &next.bundle.ca_cert, &next.bundle.cert, now, settle);
        let next = Stored { trust, ..next };
        let unowned = |s: &Secret| {
            self.owner.as_ref().is_some_and(|o| !s.metadata.owner_references.iter().flatten().any(|r| r.uid == o.uid))
        };
        if Some(&next) == found && !secret.as_ref().is_some_and(unowned) {
            return Ok(None);
        }
        // The caBundles first: any replica may load the Secret's leaf the moment it is written.
        if let Err(error) = self.ensure_ca_bundles(webhooks, next.trust.as_bytes()).await {
            tracing::warn!(%error, "cannot write the caBundles before the TLS Secret; writing the Secret anyway");
        }
        let result = match secret {
            Some(mut secret) => {
                // The resourceVersion read makes this a compare-and-swap between writers.
                secret.data = Some(secret_data(&next));
                secret.type_ = Some("kubernetes.io/tls".to_string());
                if let Some(owner) = &self.owner {
                    super::lease::owned(&mut secret.metadata, owner);
                }
                self.secrets.replace(&self.secret_name, &PostParams::default(), &secret).await
            }
            None => {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(self.secret_name.clone()),
                        owner_references: self.owner.clone().map(|o| vec![o]),
                        ..Default::default()
                    },
                    type_: Some("kubernetes.io/tls".to_string()),
                    data: Some(secret_data(&next)),
                    ..Default::default()
                };
                self.secrets.create(&PostParams::default(), &secret).await
            }
        };
        match result {
            Ok(_) => {
                tracing::info!(secret = %self.secret_name, "TLS Secret written");
                Ok(Some(next))
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The webhooks (name, caBundle) of the configurations this replica keeps, as they are now;
    /// `None` for one that does not exist (the values did not render it: nothing to patch).
    async fn read_webhooks(&self) -> Result<Webhooks, kube::Error> {
        Ok(Webhooks { validating: read_config(&self.validating).await?, mutating: read_config(&self.mutating).await? })
    }

    /// Writes `ca` into every webhook of both configurations that does not hold it yet, and
    /// records what it wrote in `webhooks`.
    async fn ensure_ca_bundles(&self, webhooks: &mut Webhooks, ca: &[u8]) -> Result<(), kube::Error> {
        if let (Some((api, name)), Some(current)) = (&self.validating, &mut webhooks.validating) {
            patch_ca_bundles(api, name, current, ca).await?;
        }
        if let (Some((api, name)), Some(current)) = (&self.mutating, &mut webhooks.mutating) {
            patch_ca_bundles(api, name, current, ca).await?;
        }
        Ok(())
    }
}

/// A configuration's webhooks as (name, caBundle), in order.
type Bundles = Vec<(String, Option<ByteString>)>;

/// A webhook configuration, read as its [`Bundles`].
trait WebhookBundles {
    fn bundles(self) -> Bundles;
}

impl WebhookBundles for ValidatingWebhookConfiguration {
    fn bundles(self) -> Bundles {
        self.webhooks.into_iter().flatten().map(|w| (w.name, w.client_config.ca_bundle)).collect()
    }
}

impl WebhookBundles for MutatingWebhookConfiguration {
    fn bundles(self) -> Bundles {
        self.webhooks.into_iter().flatten().map(|w| (w.name, w.client_config.ca_bundle)).collect()
    }
}

/// The webhooks of the configuration in `slot`, if one is named and exists.
async fn read_config<K>(slot: &Option<(Api<K>, String)>) -> Result<Option<Bundles>, kube::Error>
where
    K: WebhookBundles + kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let Some((api, name)) = slot else { return Ok(None) };
    Ok(api.get_opt(name).await?.map(WebhookBundles::bundles))
}

/// The webhooks (name, caBundle) of each configuration, as read this pass.
struct Webhooks {
    validating: Option<Bundles>,
    mutating: Option<Bundles>,
}

impl Webhooks {
    /// Every webhook's caBundle (empty where unset).
    fn bundles(&self) -> Vec<Vec<u8>> {
        let all = self.validating.iter().chain(&self.mutating).flatten();
        all.map(|(_, b)| b.as_ref().map(|b| b.0.clone()).unwrap_or_default()).collect()
    }
}

/// Wakes `changed` whenever the configuration `name` is written or deleted (its own caBundle
/// patches included: the pass that follows finds nothing to do).
async fn watch_config<K>(api: Api<K>, name: String, changed: Arc<tokio::sync::Notify>)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => changed.notify_one(),
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, config = %name, "webhook configuration watch failed; retrying"),
        }
    }
}

/// Sets each webhook's `caBundle` that differs from `ca`, with a JSON patch that first tests each
/// webhook's name at its index (a concurrent edit of the list makes the patch fail, not misapply);
/// once written, `current` holds `ca` too.
async fn patch_ca_bundles<K>(
    api: &Api<K>,
    name: &str,
    current: &mut [(String, Option<ByteString>)],
    ca: &[u8],
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let encoded = ByteString(ca.to_vec());
    let mut ops: Vec<serde_json::Value> = Vec::new();
    for (i, (webhook, bundle)) in current.iter().enumerate() {
        if bundle.as_ref().map(|b| b.0.as_slice()) != Some(ca) {
            ops.push(json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": webhook}));
            ops.push(json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": encoded}));
        }
    }
    if ops.is_empty() {
        return Ok(());
    }
    let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops)).expect("well-formed patch");
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch)).await?;
    tracing::info!(config = name, "caBundle written");
    for (_, bundle) in current.iter_mut() {
        *bundle = Some(encoded.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{LifetimeError, Lifetimes};
    use crate::certs::{Plan, generate_with, plan};

    fn lifetimes(ca: u64, leaf: u64, renew_before: u64) -> Lifetimes {
        let s = Duration::from_secs;
        Lifetimes { ca: s(ca), leaf: s(leaf), renew_before: s(renew_before), check_every: s(1) }
    }

    #[test]
    fn lifetimes_that_would_reissue_every_pass_are_refused() {
        assert_eq!(lifetimes(3650, 365, 30).validate(), Ok(()));
        assert_eq!(
            lifetimes(3650, 30, 30).validate(),
            Err(LifetimeError::RenewBeforeTooLong { renew_before: 30, leaf: 30 })
        );
        assert_eq!(lifetimes(395, 365, 30).validate(), Err(LifetimeError::CaTooShort { ca: 395, needed: 395 }));
        assert_eq!(lifetimes(396, 365, 30).validate(), Ok(()));
    }

    /// A CA near its end rotates with overlap: the next CA is trusted beside the old one while
    /// the old leaf is served, the leaf then moves, and the old CA leaves only once settled.
    #[test]
    fn a_ca_rotation_overlaps_until_the_new_leaf_has_settled() {
        use crate::certs::{bundle_holds, generate_ca, issue_leaf, issued_by, trust_bundle};
        let names = vec!["harness-guard.harness-guard.svc".to_string()];
        let s = Duration::from_secs;
        let (renew_before, leaf_life, settle) = (s(100), s(300), s(60));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // CA A with 350 s left: less than renew-before plus a leaf's life.
        let a = generate_with(&names, s(350), leaf_life).unwrap();
        assert_eq!(plan(Some(&a), &names, now, renew_before, leaf_life), Plan::RotateCa);
        let (b_cert, b_key) = generate_ca(s(10_000)).unwrap();
        assert!(issued_by(&a.cert, &a.ca_cert) && !issued_by(&a.cert, &b_cert), "each CA names itself");
        // Step 1: B signs nothing served yet; both are trusted, the leaf stays A's.
        let staged = crate::certs::Bundle { ca_cert: b_cert.clone(), ca_key: b_key.clone(), ..a.clone() };
        let trust = trust_bundle(&format!("{}\n{b_cert}", a.ca_cert), &b_cert, &a.cert, now, settle);
        assert!(bundle_holds(trust.as_bytes(), &a.ca_cert) && bundle_holds(trust.as_bytes(), &b_cert));
        assert_eq!(plan(Some(&staged), &names, now, renew_before, leaf_life), Plan::RenewLeaf, "the leaf follows");
        // Step 2: the leaf moves to B; A stays until every replica has had time to load it.
        let (cert, key) = issue_leaf(&b_cert, &b_key, &names, leaf_life).unwrap();
        let moved = crate::certs::Bundle { cert, key, ..staged };
        let trust = trust_bundle(&trust, &b_cert, &moved.cert, now, settle);
        assert!(bundle_holds(trust.as_bytes(), &a.ca_cert), "replicas may still serve A's leaf");
        assert_eq!(plan(Some(&moved), &names, now, renew_before, leaf_life), Plan::Keep);
        // Step 3: settled, A goes; B alone, and written as B's own PEM.
        let settled = trust_bundle(&trust, &b_cert, &moved.cert, now + 61, settle);
        assert!(!bundle_holds(settled.as_bytes(), &a.ca_cert));
        assert_eq!(settled, b_cert, "one CA: the bundle is its PEM");
        // An expired CA never stays, even unsettled.
        let expired = trust_bundle(&trust, &b_cert, &moved.cert, now + 400, s(10_000));
        assert!(!bundle_holds(expired.as_bytes(), &a.ca_cert));
    }

    /// What `validate` accepts, `plan` keeps: a freshly issued pair is not reissued at once.
    #[test]
    fn accepted_lifetimes_keep_a_fresh_pair() {
        let names = vec!["harness-guard.harness-guard.svc".to_string()];
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        for (ca, leaf, renew) in [(3650 * 86_400, 365 * 86_400, 30 * 86_400), (400, 100, 50)] {
            let l = lifetimes(ca, leaf, renew);
            l.validate().unwrap();
            let bundle = generate_with(&names, l.ca, l.leaf).unwrap();
            assert_eq!(plan(Some(&bundle), &names, now, l.renew_before, l.leaf), Plan::Keep, "{ca} {leaf} {renew}");
        }
        // And what it refuses would not be kept.
        let l = lifetimes(120, 100, 50);
        assert!(l.validate().is_err());
        let bundle = generate_with(&names, l.ca, l.leaf).unwrap();
        assert_eq!(plan(Some(&bundle), &names, now, l.renew_before, l.leaf), Plan::RotateCa);
    }
}
