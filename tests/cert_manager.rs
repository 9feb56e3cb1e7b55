//! #14 fault 4 on a real kube-apiserver: cert-manager mode with the chart's CA chain. No
//! cert-manager runs here (its CRDs are installed, so the chart's Issuers and Certificates are
//! stored as cert-manager would find them): the test plays cert-manager, writing the Secrets it
//! writes on issue and renewal, cainjector, writing the CA Certificate's `ca.crt` into both
//! caBundles, and kubelet, projecting the serving Secret into the replicas' volume with its
//! `..data` symlink swap. Two replicas serve behind the Service under a steady admission load
//! through a serving renewal and a CA renewal (its key kept, as the chart asks): no call fails.

mod common;

use std::path::Path;
use std::time::Duration;

use common::balancer::Balancer;
use common::deployment::{Load, NS, install};
use common::server::{eventually, metric};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

const NAMES: [&str; 4] = [
    "harness-guard",
    "harness-guard.harness-guard",
    "harness-guard.harness-guard.svc",
    "harness-guard.harness-guard.svc.cluster.local",
];

/// The chart's CA as cert-manager issues it from the selfSigned Issuer: `key` signs itself.
fn ca(key: &KeyPair, valid: Duration) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "harness-guard CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(60);
    params.not_after = now + valid;
    params.self_signed(key).unwrap().pem()
}

/// Writes a Secret as cert-manager does (`tls.crt`, `tls.key`, `ca.crt`).
async fn write_secret(secrets: &Api<Secret>, name: &str, cert: &str, key: &str, ca: &str) {
    let data = [("tls.crt", cert), ("tls.key", key), ("ca.crt", ca)]
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())));
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data.into_iter().collect()),
        ..Default::default()
    };
    let params = PatchParams::apply("cert-manager-certificates-issuing").force();
    secrets.patch(name, &params, &Patch::Apply(&secret)).await.unwrap();
}

/// cainjector: the CA Certificate's Secret's `ca.crt` into every webhook of both configurations.
async fn inject(admin: &kube::Client, ca: &str) {
    let bundle = serde_json::json!(ByteString(ca.as_bytes().to_vec()));
    let v: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    let m: Api<MutatingWebhookConfiguration> = Api::all(admin.clone());
    let ops = |n: usize| {
        let ops: Vec<serde_json::Value> = (0..n)
            .map(|i| serde_json::json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": bundle}))
            .collect();
        serde_json::from_value::<json_patch::Patch>(serde_json::Value::Array(ops)).unwrap()
    };
    let n = v.get("harness-guard").await.unwrap().webhooks.map_or(0, |w| w.len());
    v.patch("harness-guard", &PatchParams::default(), &Patch::<()>::Json(ops(n))).await.unwrap();
    let n = m.get("harness-guard").await.unwrap().webhooks.map_or(0, |w| w.len());
    m.patch("harness-guard", &PatchParams::default(), &Patch::<()>::Json(ops(n))).await.unwrap();
}

/// kubelet's projection of a Secret volume: a new timestamped directory, `..data` swapped to it
/// atomically, the file names symlinks through `..data`.
fn project(dir: &Path, generation: usize, files: &[(&str, &str)]) {
    let target = dir.join(format!("..gen_{generation}"));
    std::fs::create_dir_all(&target).unwrap();
    for (name, text) in files {
        std::fs::write(target.join(name), text).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
}

async fn loaded(health: std::net::SocketAddr) -> f64 {
    metric(health, "harness_guard_certificate_checks_total{result=\"loaded\"}").await
}

#[tokio::test(flavor = "multi_thread")]
async fn serving_and_ca_renewals_through_the_charts_chain_fail_no_call() {
    let Some(plane) = common::envtest::shared() else { return };
    let admin = plane.client().await;
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/domain/crds/cert-manager");
    let files: Vec<_> = std::fs::read_dir(&crds).unwrap().map(|e| e.unwrap().path()).collect();
    common::envtest::install_crds(&admin, &files).await;
    let release = install(plane, &admin, &serde_json::json!({"certs": {"mode": "cert-manager"}})).await;
    let names: Vec<String> = NAMES.map(String::from).to_vec();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), NS);

    // Issue: the CA (selfSigned Issuer), then the serving certificate (CA Issuer).
    let ca_key = KeyPair::generate().unwrap();
    let (ca_key_pem, ca1) = (ca_key.serialize_pem(), ca(&ca_key, Duration::from_secs(3600)));
    write_secret(&secrets, "harness-guard-ca", &ca1, &ca_key_pem, &ca1).await;
    let (leaf, key) = harness_guard::certs::issue_leaf(&ca1, &ca_key_pem, &names, Duration::from_secs(600)).unwrap();
    write_secret(&secrets, "harness-guard-tls", &leaf, &key, &ca1).await;
    inject(&admin, &ca1).await;
    let volume = release.dir.path().join("tls");
    std::fs::create_dir_all(&volume).unwrap();
    project(&volume, 1, &[("tls.crt", &leaf), ("tls.key", &key), ("ca.crt", &ca1)]);

    let balancer = Balancer::start(release.service).await;
    let (cert_arg, key_arg) = (
        format!("--tls-cert-file={}", volume.join("tls.crt").display()),
        format!("--tls-key-file={}", volume.join("tls.key").display()),
    );
    let extra = [cert_arg.as_str(), key_arg.as_str(), "--cert-poll-seconds=1"];
    let replicas = [release.replica(&balancer, "replica-a", &extra), release.replica(&balancer, "replica-b", &extra)];
    for r in &replicas {
        r.ready(Duration::from_secs(30)).await;
    }
    common::deployment::wait_judged(&admin, Duration::from_secs(30)).await;

    let load = Load::start(&admin, 4);
    let counts = async || {
        let mut counts = Vec::new();
        for r in &replicas {
            counts.push(loaded(r.endpoint.health).await);
        }
        counts
    };
    // Each replica has loaded one more pair than `before`.
    let reloads = async |before: Vec<f64>| {
        for (r, n) in replicas.iter().zip(before) {
            let health = r.endpoint.health;
            eventually(Duration::from_secs(20), "the replica reloaded", async || loaded(health).await > n).await;
        }
    };
    // A serving renewal: a new key and certificate under the same CA; the caBundle stays.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = counts().await;
    let (leaf, key) = harness_guard::certs::issue_leaf(&ca1, &ca_key_pem, &names, Duration::from_secs(600)).unwrap();
    write_secret(&secrets, "harness-guard-tls", &leaf, &key, &ca1).await;
    project(&volume, 2, &[("tls.crt", &leaf), ("tls.key", &key), ("ca.crt", &ca1)]);
    reloads(before).await;

    // The CA renews with its key kept (rotationPolicy: Never): cainjector writes the renewed CA,
    // and the serving certificates it signed before still verify against it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ca2 = ca(&ca_key, Duration::from_secs(7200));
    assert_ne!(ca1, ca2);
    write_secret(&secrets, "harness-guard-ca", &ca2, &ca_key_pem, &ca2).await;
    inject(&admin, &ca2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // And the next serving certificate comes from the renewed CA.
    let before = counts().await;
    let (leaf, key) = harness_guard::certs::issue_leaf(&ca2, &ca_key_pem, &names, Duration::from_secs(600)).unwrap();
    write_secret(&secrets, "harness-guard-tls", &leaf, &key, &ca2).await;
    project(&volume, 3, &[("tls.crt", &leaf), ("tls.key", &key), ("ca.crt", &ca2)]);
    reloads(before).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcome = load.stop().await;
    let first: Vec<String> = outcome.failed.iter().take(3).map(|(_, m)| m.chars().take(300).collect()).collect();
    eprintln!("cert-manager renewals under load: {} calls, {} failed", outcome.calls, outcome.failed.len());
    assert!(outcome.calls > 100, "a steady load: {}", outcome.calls);
    assert!(outcome.failed.is_empty(), "{} failed calls, first: {first:#?}", outcome.failed.len());
}
