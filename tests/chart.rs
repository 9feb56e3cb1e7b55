//! The Helm chart, rendered and linted by the real Helm engine (helm-python-sdk, Helm v4's
//! library; no helm binary), then checked here: every rendered object survives a round trip
//! through its k8s-openapi type (a misspelled field shows up as a difference), and the webhook
//! rules, selectors, self-exclusion and RBAC verbs are what the chart promises; and a real
//! kube-apiserver, with the cert-manager and prometheus-operator CRDs installed, accepts every
//! rendered object of every case (server-side apply, dry run).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::chart::find;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

struct Rendered {
    lint: BTreeMap<String, Value>,
    cases: BTreeMap<String, Case>,
    mistyped: BTreeMap<String, Option<String>>,
    /// Template refusals (`fail`, `required`) by case: the message, or None when it rendered.
    refused: BTreeMap<String, Option<String>>,
}

struct Case {
    schema_error: Option<String>,
    objects: Vec<Value>,
}

fn render() -> Rendered {
    let out = Command::new(common::chart::python())
        .arg(repo("tests/chart/render.py"))
        .arg(repo("charts/harness-guard"))
        .output()
        .expect("render.py runs");
    assert!(out.status.success(), "render.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut cases = BTreeMap::new();
    for (name, case) in doc["cases"].as_object().unwrap() {
        let mut objects = Vec::new();
        for (path, text) in case["manifests"].as_object().unwrap() {
            if path.ends_with("NOTES.txt") {
                continue;
            }
            let docs: Vec<Value> = serde_saphyr::from_multiple(text.as_str().unwrap())
                .unwrap_or_else(|e| panic!("{name}: {path} is not YAML: {e}"));
            objects.extend(docs.into_iter().filter(|d| !d.is_null()));
        }
        cases.insert(name.clone(), Case { schema_error: case["schema_error"].as_str().map(String::from), objects });
    }
    Rendered {
        lint: serde_json::from_value(doc["lint"].clone()).unwrap(),
        cases,
        mistyped: serde_json::from_value(doc["mistyped"].clone()).unwrap(),
        refused: serde_json::from_value(doc["refused"].clone()).unwrap(),
    }
}

/// Paths where `a` and `b` differ.
fn diff(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()).collect::<std::collections::BTreeSet<_>>() {
                diff(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), format!("{path}.{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff(p, q, format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: rendered {a} / typed {b}")),
        _ => {}
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).unwrap();
    let mut out = Vec::new();
    diff(obj, &back, String::new(), &mut out);
    if out.is_empty() { Ok(()) } else { Err(out.join("\n")) }
}

// Objects with no k8s-openapi type: small local structs that refuse unknown fields.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Typed<S> {
    api_version: String,
    kind: String,
    metadata: Meta,
    spec: S,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    self_signed: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca: Option<CaIssuer>,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaIssuer {
    secret_name: String,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    duration: String,
    renew_before: String,
    #[serde(default, rename = "isCA", skip_serializing_if = "Option::is_none")]
    is_ca: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    common_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dns_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key: Option<PrivateKey>,
    issuer_ref: IssuerRef,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrivateKey {
    algorithm: String,
    size: u32,
    rotation_policy: String,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerRef {
    name: String,
    kind: String,
    group: String,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceMonitorSpec {
    selector: Selector,
    endpoints: Vec<Endpoint>,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    match_labels: BTreeMap<String, String>,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    port: String,
    path: String,
    interval: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relabelings: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_relabelings: Option<Vec<Value>>,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusRuleSpec {
    groups: Vec<RuleGroup>,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<AlertRule>,
}
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    for_: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn check_type(obj: &Value) -> Result<(), String> {
    match obj["kind"].as_str().unwrap_or_default() {
        "ServiceAccount" => round_trip::<ServiceAccount>(obj),
        "ConfigMap" => round_trip::<ConfigMap>(obj),
        "Secret" => round_trip::<Secret>(obj),
        "Service" => round_trip::<Service>(obj),
        "Deployment" => round_trip::<Deployment>(obj),
        "Pod" => round_trip::<k8s_openapi::api::core::v1::Pod>(obj),
        "PodDisruptionBudget" => round_trip::<PodDisruptionBudget>(obj),
        "ClusterRole" => round_trip::<ClusterRole>(obj),
        "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(obj),
        "Role" => round_trip::<Role>(obj),
        "RoleBinding" => round_trip::<RoleBinding>(obj),
        "ValidatingWebhookConfiguration" => round_trip::<ValidatingWebhookConfiguration>(obj),
        "MutatingWebhookConfiguration" => round_trip::<MutatingWebhookConfiguration>(obj),
        "NetworkPolicy" => round_trip::<NetworkPolicy>(obj),
        "Issuer" => round_trip::<Typed<IssuerSpec>>(obj),
        "Certificate" => round_trip::<Typed<CertificateSpec>>(obj),
        "ServiceMonitor" => round_trip::<Typed<ServiceMonitorSpec>>(obj),
        "PrometheusRule" => round_trip::<Typed<PrometheusRuleSpec>>(obj),
        other => Err(format!("no type to check kind {other}")),
    }
}

fn all<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(obj["rules"].clone()).unwrap()
}

fn check_webhook_common(w: &Value, name: &str) {
    assert_eq!(w["sideEffects"], "None", "{name}");
    assert_eq!(w["admissionReviewVersions"], serde_json::json!(["v1"]), "{name}");
    assert!(w["timeoutSeconds"].as_i64().is_some_and(|t| (1..=30).contains(&t)), "{name}");
    assert!(matches!(w["failurePolicy"].as_str(), Some("Fail" | "Ignore")), "{name}");
    // Never its own namespace or kube-system: both in the selector and in a match condition.
    let selector = w["namespaceSelector"]["matchExpressions"].to_string();
    assert!(
        selector.contains("\"NotIn\"")
            && selector.contains("\"harness-guard\"")
            && selector.contains("\"kube-system\""),
        "{name}: {selector}"
    );
    let condition = w["matchConditions"][0]["expression"].as_str().unwrap();
    assert!(
        condition.contains("\"harness-guard\"") && condition.contains("\"kube-system\"") && condition.starts_with("!("),
        "{name}: {condition}"
    );
    assert_eq!(w["clientConfig"]["service"]["name"], "harness-guard", "{name}");
    assert_eq!(w["clientConfig"]["service"]["namespace"], "harness-guard", "{name}");
}

/// The pod webhooks' selectors and rules: pod CREATE for both; the validating one also judges
/// `pods/ephemeralcontainers` UPDATE (`kubectl debug`), the mutating one never patches it.
fn check_pod_selectors(w: &Value, name: &str, sandbox: &[&str], validating: bool) {
    assert_eq!(
        w["objectSelector"]["matchExpressions"][0],
        serde_json::json!({"key": "agents.x-k8s.io/sandbox-name-hash", "operator": "Exists"}),
        "{name}"
    );
    let ns = &w["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(ns["operator"], "In", "{name}");
    assert_eq!(ns["values"], serde_json::json!(sandbox), "{name}");
    let mut rules = vec![
        serde_json::json!({"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"], "scope": "Namespaced"}),
    ];
    if validating {
        rules.push(serde_json::json!({"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/ephemeralcontainers"], "operations": ["UPDATE"], "scope": "Namespaced"}));
    }
    assert_eq!(w["rules"], Value::Array(rules), "{name}");
}

/// The schema's list of rule names is the server's: a rule the chart refuses could not be set.
#[test]
fn schema_knows_every_rule() {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(repo("charts/harness-guard/values.schema.json")).unwrap()).unwrap();
    let listed = &schema["properties"]["policy"]["properties"]["rules"]["propertyNames"]["enum"];
    let rules: Vec<&str> = harness_guard::core::policy::Rule::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(listed, &serde_json::json!(rules));
}

#[test]
fn chart_lints_renders_and_holds_its_promises() {
    let rendered = render();
    for (case, report) in &rendered.lint {
        assert_eq!(report["errors"], serde_json::json!([]), "lint errors in {case}");
        let serious: Vec<_> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64().unwrap_or(3) >= 2)
            .collect();
        assert!(serious.is_empty(), "lint findings of warning severity or above in {case}: {serious:?}");
    }
    // Each mistyped value is refused, and the refusal names where the mistake is.
    let names = [
        ("top-level typo", "replicaCont"),
        ("unknown mode", "/certs/mode"),
        ("failure policy case", "/webhooks/harnesses/failurePolicy"),
        ("unknown rule", "model-config-exist"),
        ("bad action", "/policy/rules/key-in-env"),
        ("nested typo", "proxyURL"),
        ("timeout too long", "/webhooks/timeoutSeconds"),
        ("no sandbox namespace", "/policy/sandbox/namespaces"),
        ("digest without algorithm", "/image/digest"),
        ("scrape timeout unit", "/serviceMonitor/scrapeTimeout"),
        ("probe path", "httpGet"),
    ];
    let cases: std::collections::BTreeSet<&str> = rendered.mistyped.keys().map(String::as_str).collect();
    assert_eq!(
        cases,
        names.iter().map(|(case, _)| *case).collect(),
        "a mistyped case without its key, or one too many"
    );
    for (typo, key) in names {
        let verdict = rendered.mistyped[typo].as_deref();
        assert!(verdict.is_some_and(|v| v.contains(key)), "{typo}: refusal must name {key:?}: {verdict:?}");
    }
    // Each pair of values a schema cannot compare is refused by the templates, naming both keys.
    let refusals = [
        ("renew before the leaf ends", ["renewBeforeDays (30)", "validityDays (30)"]),
        ("CA shorter than a leaf's span", ["caValidityDays (395)", "validityDays + renewBeforeDays (395)"]),
        ("existing account without a name", ["serviceAccount.name is required", "create=false"]),
        ("Fail on every Secret", ["failurePolicy=Fail", "watch.labelSelector or watch.namespaces"]),
        ("set-based selector", ["watch.labelSelector term", "equality-based"]),
        ("test in the release namespace", ["tests.namespace (harness-guard)", "release namespace"]),
        ("test outside the watched namespaces", ["tests.namespace (default)", "watch.namespaces [team-a]"]),
        ("test without the harness webhook", ["webhooks.harnesses.enabled", "tests.enabled=false"]),
    ];
    assert_eq!(rendered.refused.len(), refusals.len());
    for (case, needles) in refusals {
        let message = rendered.refused[case].as_deref().unwrap_or_else(|| panic!("{case}: rendered"));
        assert!(needles.iter().all(|n| message.contains(n)), "{case}: {message}");
    }
    assert_eq!(rendered.cases.len(), 7);
    for (name, case) in &rendered.cases {
        assert!(case.schema_error.is_none(), "{name}: {:?}", case.schema_error);
        let mut failures = Vec::new();
        for obj in &case.objects {
            if let Err(e) = check_type(obj) {
                failures.push(format!("{} {}: {e}", obj["kind"], obj["metadata"]["name"]));
            }
        }
        assert!(failures.is_empty(), "{name}: objects that do not round-trip:\n{}", failures.join("\n"));
        check_case(name, &case.objects);
        check_platform_values(name, &case.objects);
        check_monitoring(name, &case.objects);
        check_helm_test(name, &case.objects);
    }
}

/// The `helm test` hook: a Pod of the chart's own image running `selftest` against a namespace
/// the harness webhook judges, under an account that may create AgentHarnesses there only.
fn check_helm_test(case: &str, objects: &[Value]) {
    use clap::Parser;
    let ns = if case == "namespaced" { "team-b" } else { "default" };
    let pod = find(objects, "Pod", "harness-guard-test").unwrap_or_else(|| panic!("{case}: a test Pod"));
    assert_eq!(pod["metadata"]["annotations"]["helm.sh/hook"], "test", "{case}");
    assert_eq!(pod["metadata"]["namespace"], "harness-guard", "{case}");
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(spec["serviceAccountName"], "harness-guard-test");
    let deploy = find(objects, "Deployment", "harness-guard").unwrap();
    let c = &spec["containers"][0];
    assert_eq!(c["image"], deploy["spec"]["template"]["spec"]["containers"][0]["image"], "{case}: the chart's image");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{case}");
    let args: Vec<String> = serde_json::from_value(c["args"].clone()).unwrap();
    let cli = harness_guard::config::Cli::try_parse_from(std::iter::once("harness-guard".to_string()).chain(args))
        .unwrap_or_else(|e| panic!("{case}: the test's arguments do not parse: {e}"));
    let harness_guard::config::Command::Selftest(test) = cli.command else { panic!("{case}: not selftest") };
    assert_eq!(test.namespace, ns, "{case}");
    // Every test object is a hook, so `helm install` creates none of them.
    let tests: Vec<&Value> = objects.iter().filter(|o| o["metadata"]["name"] == "harness-guard-test").collect();
    assert_eq!(tests.len(), 4, "{case}: ServiceAccount, Role, RoleBinding, Pod");
    assert!(tests.iter().all(|o| o["metadata"]["annotations"]["helm.sh/hook"] == "test"), "{case}");
    let role = find(objects, "Role", "harness-guard-test").unwrap();
    assert_eq!(role["metadata"]["namespace"], ns, "{case}");
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": ["kagent.dev"], "resources": ["agentharnesses"], "verbs": ["create"]}]),
        "{case}"
    );
    let binding = find(objects, "RoleBinding", "harness-guard-test").unwrap();
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "harness-guard-test", "namespace": "harness-guard"}])
    );
}

/// The sample names harness-guard's /metrics exposes, read from its own registry's exposition:
/// counters as `_total`, histograms as `_bucket`/`_sum`/`_count`, gauges as they are. A labelled
/// family shows only once it has a series, so each is recorded once.
fn exported_metrics() -> std::collections::BTreeSet<String> {
    let metrics = harness_guard::telemetry::Metrics::new();
    metrics.request("validate", "AgentHarness", "CREATE", "denied", 0.001);
    metrics.finding("key-in-env", "literal", "deny");
    metrics.unhandled("Deployment");
    metrics.cert_check("ok");
    metrics.watch_error("Secret");
    metrics.invalid_object("ModelConfig");
    metrics.set_objects("Secret", 1);
    metrics.set_violations(&[("key-in-env", 1)].into());
    let text = metrics.encode();
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').unwrap();
        match kind {
            "counter" => drop(names.insert(format!("{name}_total"))),
            "histogram" => names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}"))),
            _ => drop(names.insert(name.to_string())),
        }
    }
    names
}

/// The `harness_guard_*` metric names a PromQL expression uses.
fn metrics_in(expr: &str) -> Vec<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("harness_guard_"))
        .collect()
}

/// PrometheusRule and Grafana dashboard: off by default; when on, every alert and every panel
/// query names only metrics the server exports (a renamed metric fails here, not in a dark panel).
fn check_monitoring(case: &str, objects: &[Value]) {
    let rule = find(objects, "PrometheusRule", "harness-guard");
    let dashboard = find(objects, "ConfigMap", "harness-guard-dashboard");
    if case != "extras" {
        assert!(rule.is_none() && dashboard.is_none(), "{case}: off by default");
        return;
    }
    let exported = exported_metrics();
    assert!(exported.contains("harness_guard_admission_requests_total"), "{exported:?}");
    let check = |what: &str, expr: &str| {
        let used = metrics_in(expr);
        assert!(!used.is_empty(), "{what} names no harness-guard metric: {expr}");
        for m in used {
            assert!(exported.contains(m), "{what} uses {m}, which the server does not export: {expr}");
        }
    };
    let rule = rule.expect("PrometheusRule");
    assert_eq!(rule["metadata"]["labels"]["release"], "prom");
    let alerts = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    let names: Vec<&str> = alerts.iter().map(|a| a["alert"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "HarnessGuardCertificateExpiringSoon",
            "HarnessGuardWatchErrors",
            "HarnessGuardAdmissionErrors",
            "HarnessGuardViolations"
        ]
    );
    for a in alerts {
        check(a["alert"].as_str().unwrap(), a["expr"].as_str().unwrap());
    }
    let expiry = alerts[0]["expr"].as_str().unwrap();
    assert!(expiry.contains(&(7 * 86_400).to_string()), "7 days by default: {expiry}");

    let dashboard = dashboard.expect("dashboard ConfigMap");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1", "the sidecar's label");
    assert_eq!(dashboard["metadata"]["annotations"]["grafana_folder"], "Platform");
    let json: Value =
        serde_json::from_str(dashboard["data"]["harness-guard.json"].as_str().unwrap()).expect("the dashboard is JSON");
    assert_eq!(json["uid"], "harness-guard");
    let mut queries = 0;
    for panel in json["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            check(title, t["expr"].as_str().unwrap());
            queries += 1;
        }
    }
    let variables = json["templating"]["list"].as_array().unwrap();
    for v in variables.iter().filter(|v| v["type"] == "query") {
        check("a dashboard variable", v["query"].as_str().unwrap());
    }
    assert!(queries >= 10, "{queries}");
    let all_exprs = json.to_string();
    for needed in [
        "harness_guard_admission_duration_seconds_bucket",
        "harness_guard_findings_total",
        "harness_guard_view_objects",
    ] {
        assert!(all_exprs.contains(needed), "the dashboard shows {needed}");
    }
    let monitor = find(objects, "ServiceMonitor", "harness-guard").unwrap();
    assert_eq!(monitor["spec"]["endpoints"][0]["scrapeTimeout"], "10s");
    assert_eq!(monitor["spec"]["endpoints"][0]["metricRelabelings"][0]["action"], "drop");
}

/// The values platform teams set on every chart (the `platform` case sets them all; the others
/// must render the defaults), and the container's arguments as the binary's own parser reads them.
fn check_platform_values(case: &str, objects: &[Value]) {
    use clap::Parser;
    let platform = case == "platform";
    let deploy = find(objects, "Deployment", "harness-guard").unwrap();
    let template = &deploy["spec"]["template"];
    let pod = &template["spec"];
    let c = &pod["containers"][0];
    let args: Vec<String> = serde_json::from_value(c["args"].clone()).unwrap();
    let args_text = args.join(" ");
    let cli = harness_guard::config::Cli::try_parse_from(std::iter::once("harness-guard".to_string()).chain(args))
        .unwrap_or_else(|e| panic!("{case}: the chart's arguments do not parse: {e}"));
    let harness_guard::config::Command::Serve(serve) = cli.command else { panic!("{case}: not serve") };
    assert_eq!(serve.handshake_timeout_seconds, if platform { 4 } else { 10 }, "{case}: extraArgs");
    // The Lease the Role names, in every certificate mode (it elects the audit's writer too).
    assert!(args_text.contains("--lease=harness-guard"), "{case}: {args_text}");
    assert_eq!(serve.openreports, !platform, "{case}: openreports.enabled");
    assert_eq!(serve.self_signed.owner_deployment.as_deref(), Some("harness-guard"), "{case}: uninstall cleans up");
    // The certificate writer is told of exactly the configurations the values render (#14 fault 1).
    let writer = &serve.self_signed;
    if writer.secret.is_some() {
        let rendered = |kind: &str| find(objects, kind, "harness-guard").is_some();
        assert_eq!(writer.validating_webhook.is_some(), rendered("ValidatingWebhookConfiguration"), "{case}");
        assert_eq!(writer.mutating_webhook.is_some(), rendered("MutatingWebhookConfiguration"), "{case}");
    }
    let image = c["image"].as_str().unwrap();
    let pulls: Vec<&str> = pod["imagePullSecrets"]
        .as_array()
        .map(|a| a.iter().map(|s| s["name"].as_str().unwrap()).collect())
        .unwrap_or_default();
    let env: Vec<&str> = c["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    let anti = &pod["affinity"]["podAntiAffinity"];
    let service = find(objects, "Service", "harness-guard").unwrap();
    if platform {
        assert_eq!(image, format!("mirror.example.com/harness-guard/harness-guard@sha256:{}", "ab".repeat(32)));
        assert_eq!(pulls, ["regcred", "chart-only"], "global's first, each once");
        assert_eq!(pod["priorityClassName"], "system-cluster-critical");
        assert_eq!(template["metadata"]["labels"]["team"], "platform");
        assert!(deploy["spec"]["selector"]["matchLabels"].get("team").is_none(), "the selector never changes");
        assert_eq!(env.last(), Some(&"HTTPS_PROXY"));
        assert_eq!(c["livenessProbe"]["periodSeconds"], 20);
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "the path stays the chart's");
        assert_eq!(c["readinessProbe"]["periodSeconds"], 5, "unset probes keep their defaults");
        assert_eq!(service["metadata"]["annotations"]["example.com/owner"], "platform");
        assert_eq!(
            (&pod["hostNetwork"], &pod["dnsPolicy"]),
            (&Value::Bool(true), &Value::from("ClusterFirstWithHostNet"))
        );
        assert!(anti["requiredDuringSchedulingIgnoredDuringExecution"].is_array(), "host ports clash: {anti}");
        let pdb = find(objects, "PodDisruptionBudget", "harness-guard").unwrap();
        assert_eq!(pdb["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow");
    } else {
        assert_eq!(image, "ghcr.io/harness-guard/harness-guard:0.1.0", "{case}");
        assert!(pulls.is_empty() && pod.get("priorityClassName").is_none(), "{case}");
        assert!(pod.get("hostNetwork").is_none() && pod.get("dnsPolicy").is_none(), "{case}");
        assert!(anti["preferredDuringSchedulingIgnoredDuringExecution"].is_array(), "{case}");
        assert!(service["metadata"].get("annotations").is_none(), "{case}");
        assert_eq!(c["livenessProbe"]["periodSeconds"], 10, "{case}");
    }
}

fn check_case(case: &str, objects: &[Value]) {
    let sandbox: Vec<&str> = if case == "extras" { vec!["openshell", "sandboxes"] } else { vec!["openshell"] };
    // Deployment: restricted security, probes, the policy checksum, the certificate mode.
    let deploy = find(objects, "Deployment", "harness-guard").expect("deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{case}");
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{case}");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{case}");
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false, "{case}");
    assert_eq!(c["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]), "{case}");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{case}");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{case}");
    assert!(
        deploy["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            .as_str()
            .is_some_and(|s| s.len() == 64),
        "{case}"
    );
    assert!(pod["affinity"]["podAntiAffinity"].is_object() && pod["topologySpreadConstraints"].is_array(), "{case}");
    let args = c["args"].to_string();
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().all(|m| m.get("subPath").is_none()), "{case}: subPath mounts never update");
    match case {
        "cert-manager" | "provided" => {
            assert!(args.contains("--tls-cert-file=/etc/harness-guard/tls/tls.crt"), "{case}: {args}");
            let secret = if case == "provided" { "my-tls" } else { "harness-guard-tls" };
            let vol = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "tls").unwrap();
            assert_eq!(vol["secret"]["secretName"], secret, "{case}");
            assert!(find(objects, "Secret", "harness-guard-tls").is_none(), "{case}: the chart creates no TLS Secret");
        }
        _ => {
            assert!(args.contains("--self-signed-secret=harness-guard-tls"), "{case}: {args}");
            // #14 fault 3: no key material and no looked-up state in any render. The Lease holder
            // creates the Secret and owns it, so `helm template | kubectl apply`, Argo CD, Flux and
            // `helm rollback` have nothing to blank, and no release revision stores the CA key.
            assert!(find(objects, "Secret", "harness-guard-tls").is_none(), "{case}: the process creates the Secret");
        }
    }
    assert!(objects.iter().all(|o| o["kind"] != "Secret"), "{case}: the chart renders no Secret at all");
    let templates = repo("charts/harness-guard/templates");
    let files = std::fs::read_dir(&templates).unwrap().chain(std::fs::read_dir(templates.join("tests")).unwrap());
    for entry in files {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.contains("lookup \""), "no template renders what it looked up in the cluster");
    }
    // The policy file the chart writes is one the binary accepts.
    let config = find(objects, "ConfigMap", "harness-guard").unwrap();
    let policy = harness_guard::config::parse_policy(config["data"]["policy.yaml"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{case}: the chart's policy file is refused: {e}"));
    assert_eq!(policy.sandbox.namespaces, sandbox, "{case}");
    // PDB with more than one replica only.
    assert_eq!(find(objects, "PodDisruptionBudget", "harness-guard").is_some(), case != "extras", "{case}");

    // Webhooks.
    let validating = find(objects, "ValidatingWebhookConfiguration", "harness-guard").expect("validating");
    let webhooks = validating["webhooks"].as_array().unwrap();
    for w in webhooks {
        check_webhook_common(w, &format!("{case}/{}", w["name"]));
    }
    let harnesses = webhooks.iter().find(|w| w["name"] == "harnesses.harness-guard.dev").unwrap();
    assert_eq!(
        harnesses["rules"],
        serde_json::json!([{"apiGroups": ["kagent.dev"], "apiVersions": ["v1alpha2"], "resources": ["agentharnesses"], "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}]),
        "{case}"
    );
    assert_eq!(harnesses["failurePolicy"], if case == "extras" { "Ignore" } else { "Fail" }, "{case}");
    // The harness webhook judges only the watched namespaces (where it holds a view), and skips
    // deletes in progress and spec-unchanged UPDATEs (#14 fault 5).
    let first = &harnesses["namespaceSelector"]["matchExpressions"][0];
    if case == "namespaced" {
        assert_eq!(
            (&first["operator"], &first["values"]),
            (&Value::from("In"), &serde_json::json!(["team-a", "team-b"]))
        );
    } else {
        assert_eq!(first["operator"], "NotIn", "{case}: every namespace but the protected ones");
    }
    let conditions: Vec<&str> =
        harnesses["matchConditions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(conditions, ["not-own-or-kube-system", "not-being-deleted", "spec-changed"], "{case}");
    let pods = webhooks.iter().find(|w| w["name"] == "pods.harness-guard.dev").unwrap();
    check_pod_selectors(pods, case, &sandbox, true);
    // The reference guards: ModelConfigs in one entry, Secrets and ConfigMaps in another scoped
    // by watch.labelSelector as an objectSelector, as the view watches them (#14 fault 5).
    let refs = webhooks.iter().find(|w| w["name"] == "references.harness-guard.dev");
    let data = webhooks.iter().find(|w| w["name"] == "references-data.harness-guard.dev");
    if case == "references" {
        let resources = |w: &Value| -> Vec<String> {
            w["rules"].as_array().unwrap().iter().map(|r| r["resources"][0].as_str().unwrap().to_string()).collect()
        };
        let (refs, data) = (refs.expect("ModelConfig guard"), data.expect("Secret/ConfigMap guard"));
        assert_eq!(resources(refs), ["modelconfigs"]);
        assert_eq!(resources(data), ["secrets", "configmaps"]);
        for w in [refs, data] {
            assert_eq!(w["failurePolicy"], "Ignore", "{case}");
            let ops = w["rules"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["operations"] == serde_json::json!(["UPDATE", "DELETE"]));
            assert!(ops, "{case}");
        }
        assert!(refs.get("objectSelector").is_none(), "ModelConfigs are watched unlabelled");
        assert_eq!(
            data["objectSelector"]["matchExpressions"],
            serde_json::json!([
                {"key": "harness-guard.dev/watch", "operator": "In", "values": ["true"]},
                {"key": "tier", "operator": "NotIn", "values": ["test"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ])
        );
    } else {
        assert!(refs.is_none() && data.is_none(), "{case}: the reference guard is off by default");
    }
    let mutating = find(objects, "MutatingWebhookConfiguration", "harness-guard");
    if case == "extras" {
        assert!(mutating.is_none(), "{case}: podMutation disabled");
    } else {
        let w = &mutating.expect("mutating")["webhooks"][0];
        check_webhook_common(w, case);
        check_pod_selectors(w, case, &sandbox, false);
        assert_eq!(w["reinvocationPolicy"], "IfNeeded", "{case}");
        assert_eq!(w["clientConfig"]["service"]["path"], "/mutate", "{case}");
    }
    // Certificates reach the webhooks.
    let ca = |w: &Value| w["clientConfig"]["caBundle"].as_str().map(String::from);
    match case {
        "provided" => assert!(webhooks.iter().all(|w| ca(w).as_deref() == Some("LS0tLS1CRUdJTg==")), "{case}"),
        "cert-manager" => {
            // #14 fault 4: the standard chain. The selfSigned Issuer signs only the CA; the CA
            // Issuer signs the serving certificate; the CA (which outlives serving renewals, and
            // renews with its key kept) is what gets injected.
            for config in [Some(validating), find(objects, "MutatingWebhookConfiguration", "harness-guard")] {
                let config = config.expect("both configurations");
                assert_eq!(
                    config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                    "harness-guard/harness-guard-ca"
                );
            }
            let ca = find(objects, "Certificate", "harness-guard-ca").expect("CA Certificate");
            assert_eq!(ca["spec"]["isCA"], true);
            assert_eq!(ca["spec"]["issuerRef"]["name"], "harness-guard-selfsigned");
            assert_eq!(ca["spec"]["privateKey"]["rotationPolicy"], "Never", "a renewed CA keeps its key");
            let self_signed = find(objects, "Issuer", "harness-guard-selfsigned").expect("selfSigned Issuer");
            assert!(self_signed["spec"]["selfSigned"].is_object());
            let ca_issuer = find(objects, "Issuer", "harness-guard-ca").expect("CA Issuer");
            assert_eq!(ca_issuer["spec"]["ca"]["secretName"], ca["spec"]["secretName"]);
            let cert = find(objects, "Certificate", "harness-guard").expect("Certificate");
            assert!(cert["spec"]["dnsNames"].to_string().contains("harness-guard.harness-guard.svc"));
            assert_eq!(
                cert["spec"]["issuerRef"]["name"], "harness-guard-ca",
                "the serving certificate comes from the CA"
            );
            assert!(cert["spec"].get("isCA").is_none());
        }
        _ => assert!(webhooks.iter().all(|w| ca(w).is_none()), "{case}: self-signed writes the caBundle at run time"),
    }

    // RBAC: read-only on the four kinds, events to write, and only its own objects by name.
    let read_rules = |o: &Value| rules_of(o);
    let reads: Vec<&Value> = if case == "namespaced" {
        let roles: Vec<&Value> =
            all(objects, "Role").into_iter().filter(|r| r["metadata"]["name"] == "harness-guard-read").collect();
        let ns: Vec<&str> = roles.iter().map(|r| r["metadata"]["namespace"].as_str().unwrap()).collect();
        assert_eq!(ns, ["team-a", "team-b"], "{case}: namespaced Roles");
        assert!(find(objects, "ClusterRole", "harness-guard-read").is_none(), "{case}");
        roles
    } else {
        vec![find(objects, "ClusterRole", "harness-guard-read").expect("read ClusterRole")]
    };
    let (mut reports_granted, mut pools_granted) = (false, false);
    for role in reads {
        for rule in read_rules(role) {
            let resources = rule.resources.clone().unwrap_or_default();
            let expected: &[&str] = match resources.as_slice() {
                [r] if r == "events" => &["create", "patch", "list"],
                // Its own OpenReports (#17 §1), written server-side and removed with the last harness.
                [r] if r == "reports" => &["get", "list", "create", "patch", "delete"],
                _ => &["get", "list", "watch"],
            };
            assert_eq!(rule.verbs, expected, "{case}: {resources:?}");
            reports_granted |=
                resources == ["reports"] && rule.api_groups.as_deref() == Some(&["openreports.io".into()]);
            pools_granted |= resources == ["workerpools"] && rule.api_groups.as_deref() == Some(&["ate.dev".into()]);
            assert!(rule.resource_names.is_none());
            assert!(resources.iter().all(|r| {
                [
                    "agentharnesses",
                    "modelconfigs",
                    "secrets",
                    "configmaps",
                    "events",
                    "externalsecrets",
                    "sealedsecrets",
                    "workerpools",
                    "reports",
                ]
                .contains(&r.as_str())
            }));
        }
    }
    // The WorkerPool watch (rule worker-pool) can list what it watches; the Reports are granted
    // exactly when they are written.
    assert!(pools_granted, "{case}: WorkerPools readable");
    assert_eq!(reports_granted, case != "platform", "{case}: openreports.enabled grants Reports");
    let own = find(objects, "Role", "harness-guard-self").expect("own Role");
    for rule in rules_of(own) {
        let names = rule.resource_names.clone();
        match (rule.resources.as_deref().unwrap_or_default(), rule.verbs.as_slice()) {
            ([r], [v]) if r == "leases" && v == "create" => assert!(names.is_none()),
            ([r], _) if r == "leases" => assert_eq!(names, Some(vec!["harness-guard".to_string()])),
            ([r], [v]) if r == "deployments" && v == "get" => {
                assert_eq!(names, Some(vec!["harness-guard".to_string()]), "{case}: its own Deployment only")
            }
            ([r], [v]) if r == "secrets" && v == "create" => {
                assert!(case != "cert-manager" && case != "provided", "{case}: no Secret write outside self-signed");
                assert!(names.is_none(), "create cannot be limited by name");
                assert_eq!(own["metadata"]["namespace"], "harness-guard", "{case}: the release namespace only");
            }
            ([r], _) if r == "secrets" => {
                assert!(case != "cert-manager" && case != "provided", "{case}: no Secret write outside self-signed");
                assert_eq!(names, Some(vec!["harness-guard-tls".to_string()]));
                assert_eq!(rule.verbs, ["get", "update"]);
            }
            other => panic!("{case}: unexpected rule {other:?}"),
        }
    }
    let webhook_role = find(objects, "ClusterRole", "harness-guard-webhooks");
    if matches!(case, "cert-manager" | "provided") {
        assert!(webhook_role.is_none(), "{case}");
    } else {
        let rule = &rules_of(webhook_role.expect("webhook ClusterRole"))[0];
        assert_eq!(rule.resource_names, Some(vec!["harness-guard".to_string()]));
        // list and watch by name (a field selector on metadata.name): a replaced configuration
        // gets its caBundle back at once.
        assert_eq!(rule.verbs, ["get", "list", "watch", "patch"]);
    }
    for obj in objects {
        let rules = obj.get("rules").and_then(|r| r.as_array()).cloned().unwrap_or_default();
        assert!(
            !rules.iter().any(|r| r.to_string().contains("\"*\"")),
            "{case}: wildcard in {}",
            obj["metadata"]["name"]
        );
    }
    if case == "extras" {
        assert!(find(objects, "ServiceMonitor", "harness-guard").is_some());
        assert!(find(objects, "NetworkPolicy", "harness-guard").is_some());
    } else {
        assert!(find(objects, "ServiceMonitor", "harness-guard").is_none(), "{case}: off by default");
        assert!(find(objects, "NetworkPolicy", "harness-guard").is_none(), "{case}: off by default");
    }
}

/// Every object of every rendered case, server-side applied as a dry run to a real kube-apiserver
/// with the cert-manager and prometheus-operator CRDs installed: its own schema validation (and
/// the CRDs' OpenAPI schemas) accept them all.
#[tokio::test]
async fn a_real_apiserver_accepts_every_rendered_object() {
    let Some(plane) = common::envtest::shared() else { return };
    let client = plane.client().await;
    let crds = repo("../shared/domain/crds");
    let mut files = Vec::new();
    for dir in ["cert-manager", "prometheus-operator"] {
        for entry in std::fs::read_dir(crds.join(dir)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    common::envtest::install_crds(&client, &files).await;
    for ns in ["harness-guard", "team-a", "team-b"] {
        common::envtest::namespace(&client, ns).await;
    }
    let rendered = render();
    let mut refused = Vec::new();
    let mut applied = 0;
    for (case, rendered) in &rendered.cases {
        let failures = common::envtest::apply(&client, &rendered.objects, "harness-guard", true).await;
        applied += rendered.objects.len() - failures.len();
        refused.extend(failures.into_iter().map(|f| format!("{case}: {f}")));
    }
    assert!(refused.is_empty(), "the apiserver refused:\n{}", refused.join("\n"));
    assert!(applied > 70, "{applied} objects applied");
}

/// #14 fault 5 on a real kube-apiserver: the chart's harness webhook registered as rendered, with
/// `failurePolicy: Fail` and harness-guard down (its Service does not exist). Writes that
/// harness-guard would allow anyway never wait for it: kagent removing its finalizer from a harness
/// being deleted, and an UPDATE that leaves the spec as it was. A spec change is still refused:
/// nothing unchecked gets in.
#[tokio::test]
async fn with_harness_guard_down_cleanup_still_goes_through() {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration as Config;
    use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
    use kube::discovery::ApiResource;
    let Some(plane) = common::envtest::shared() else { return };
    let client = plane.client().await;
    common::envtest::kagent_crds(&client).await;
    let ns = "team-down";
    common::envtest::namespace(&client, ns).await;
    let resource = ApiResource {
        group: "kagent.dev".into(),
        version: "v1alpha2".into(),
        api_version: "kagent.dev/v1alpha2".into(),
        kind: "AgentHarness".into(),
        plural: "agentharnesses".into(),
    };
    let harnesses: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let harness: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "kagent.dev/v1alpha2", "kind": "AgentHarness",
        "metadata": {"name": "coder", "namespace": ns, "finalizers": ["kagent.dev/finalizer"]},
        "spec": {"backend": "openclaw", "modelConfigRef": "gpt"}}))
    .unwrap();
    harnesses.create(&PostParams::default(), &harness).await.unwrap();

    // Register the rendered configuration, only its harness webhook, under a name of this test's.
    let rendered = render();
    let mut config: Config = serde_json::from_value(
        find(&rendered.cases["self-signed"].objects, "ValidatingWebhookConfiguration", "harness-guard")
            .unwrap()
            .clone(),
    )
    .unwrap();
    config.metadata.name = Some("harness-guard-down-test".into());
    config.webhooks.as_mut().unwrap().retain(|w| w.name == "harnesses.harness-guard.dev");
    assert_eq!(config.webhooks.as_ref().unwrap()[0].failure_policy.as_deref(), Some("Fail"));
    let configs: Api<Config> = Api::all(client.clone());
    configs.create(&PostParams::default(), &config).await.unwrap();

    // The webhook is in force: a spec change is refused because harness-guard cannot be reached.
    // (The apiserver may take a moment to load the new configuration.)
    let mut refused = None;
    for attempt in 0..100 {
        // A different spec each attempt: each is a change the webhook must see.
        let change = serde_json::json!({"spec": {"description": format!("changed {attempt}")}});
        match harnesses.patch("coder", &PatchParams::default(), &Patch::Merge(&change)).await {
            Err(kube::Error::Api(e)) => {
                refused = Some(e.message);
                break;
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let refused = refused.expect("the harness webhook never came into force");
    assert!(refused.contains("harnesses.harness-guard.dev"), "{refused}");

    // Metadata only (spec unchanged): goes through.
    let label = serde_json::json!({"metadata": {"labels": {"team": "down"}}});
    harnesses.patch("coder", &PatchParams::default(), &Patch::Merge(&label)).await.expect("a label while down");
    // Delete, then remove the finalizer as kagent would: goes through, and the harness is gone.
    harnesses.delete("coder", &DeleteParams::default()).await.unwrap();
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    harnesses
        .patch("coder", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .expect("finalizer removal while down");
    assert!(harnesses.get_opt("coder").await.unwrap().is_none(), "the harness is gone");
    configs.delete("harness-guard-down-test", &DeleteParams::default()).await.unwrap();
}

/// #14 fault 6 on a real kube-apiserver: the TLS Secret is gone (deleted, or never applied by a
/// GitOps tool); a replica running as the chart's ServiceAccount, with exactly the chart's RBAC
/// (token from the TokenRequest API), recreates it and turns ready.
#[tokio::test]
async fn the_charts_service_account_recreates_a_lost_tls_secret() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::Api;
    let Some(plane) = common::envtest::shared() else { return };
    let client = plane.client().await;
    common::envtest::kagent_crds(&client).await;
    let ns = "harness-guard";
    common::envtest::namespace(&client, ns).await;
    // The chart's identity and RBAC, applied for real; no TLS Secret.
    let rendered = render();
    let kinds = ["ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"];
    let identity: Vec<Value> = rendered.cases["self-signed"]
        .objects
        .iter()
        .filter(|o| kinds.contains(&o["kind"].as_str().unwrap()))
        .cloned()
        .collect();
    assert_eq!(common::envtest::apply(&client, &identity, ns, false).await, Vec::<String>::new());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    assert!(secrets.get_opt("harness-guard-tls").await.unwrap().is_none());

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = plane.service_account_kubeconfig(&client, ns, "harness-guard", dir.path()).await;
    let argv = common::envtest::replica_args(&kubeconfig, ns, "harness-guard");
    let args = common::server::serve_args(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    let server = common::server::TestServer::start(args).await;
    server.wait_ready(std::time::Duration::from_secs(30)).await;
    let secret = secrets.get("harness-guard-tls").await.expect("recreated by the chart's ServiceAccount");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    drop(server);
}

/// The values table of `charts/harness-guard/README.md`, made helm-docs style from the `# --`
/// comments of `values.yaml`: one row per documented key, its type and default read from the
/// parsed values.
fn values_table(text: &str) -> String {
    let values: Value = serde_saphyr::from_str(text).unwrap();
    let mut rows = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut doc: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(comment) = trimmed.strip_prefix('#') {
            let comment = comment.trim();
            match (comment.strip_prefix("-- "), &mut doc) {
                (Some(start), _) => doc = Some(start.to_string()),
                (None, Some(d)) => {
                    d.push(' ');
                    d.push_str(comment);
                }
                (None, None) => {}
            }
            continue;
        }
        let Some((key, _)) = trimmed.split_once(':') else { continue };
        if trimmed.starts_with('-') || key.is_empty() || key.contains(' ') {
            continue;
        }
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key.to_string()));
        if let Some(description) = doc.take() {
            let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
            let default = path.iter().fold(&values, |v, k| &v[*k]);
            let kind = match default {
                Value::Null => "null",
                Value::Bool(_) => "bool",
                Value::Number(n) if n.is_i64() || n.is_u64() => "int",
                Value::Number(_) => "float",
                Value::String(_) => "string",
                Value::Array(_) => "list",
                Value::Object(_) => "object",
            };
            let cell = |s: String| s.replace('|', "\\|");
            rows.push(format!(
                "| `{}` | {kind} | `{}` | {} |",
                path.join("."),
                cell(default.to_string()),
                cell(description)
            ));
        }
    }
    format!(
        "# harness-guard chart\n\nThe admission webhook for kagent AgentHarnesses and OpenShell sandbox pods; see the \
         project's [README](../../README.md).\n\n```sh\nhelm install harness-guard charts/harness-guard -n harness-guard \
         --create-namespace\n```\n\n## Values\n\nGenerated from the `# --` comments of `values.yaml` by \
         `tests/chart.rs` (`UPDATE_GOLDEN=1 cargo test --test chart` rewrites it). `values.schema.json` refuses \
         unknown keys.\n\n| Key | Type | Default | Description |\n|---|---|---|---|\n{}\n",
        rows.join("\n")
    )
}

/// The chart's README documents every value as `values.yaml` does today: stale, it fails here.
#[test]
fn the_values_readme_is_current() {
    let values = std::fs::read_to_string(repo("charts/harness-guard/values.yaml")).unwrap();
    let table = values_table(&values);
    let path = repo("charts/harness-guard/README.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &table).unwrap();
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(current == table, "charts/harness-guard/README.md is stale: UPDATE_GOLDEN=1 cargo test --test chart");
    for key in ["global.imageRegistry", "image.digest", "prometheusRule.enabled", "dashboard.labels", "probes"] {
        assert!(table.contains(&format!("| `{key}` |")), "{key} is documented");
    }
}
