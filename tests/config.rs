//! Flags, their `HARNESS_GUARD_*` fallbacks, and the policy file: a bad file is refused with a
//! message naming the field.

mod common;

use common::server::serve_args;
use harness_guard::config::{Source, parse_policy};
use harness_guard::core::policy::{Action, Rule};
use harness_guard::server::router::parse_timeout;
use std::time::Duration;

#[test]
fn policy_files() {
    let policy =
        parse_policy("rules:\n  model-config-exists: warn\nsandbox:\n  overwrite: true\n  noProxyExtra: [a.example]\n")
            .unwrap();
    assert_eq!(policy.action(Rule::ModelConfigExists), Action::Warn);
    assert_eq!(policy.action(Rule::ModelSecretResolves), Action::Deny);
    assert!(policy.sandbox.overwrite);
    assert_eq!(policy.sandbox.containers, vec!["agent"], "unset fields keep their defaults");
    assert_eq!(parse_policy("# only a comment\n").unwrap(), Default::default());

    let refused = [
        ("rules:\n  model-config-exist: warn\n", "model-config-exist"),
        ("rules:\n  model-config-exists: block\n", "block"),
        ("sandbox:\n  proxyURL: http://x\n", "proxyURL"),
        ("sandbox:\n  proxyUrl: not a url\n", "sandbox.proxyUrl"),
        ("sandbox:\n  containers: []\n", "sandbox.containers"),
        ("sandbox:\n  namespaces: []\n", "sandbox.namespaces"),
        ("watch:\n  namespaces: team-a\n", "namespaces"),
        ("rulez: {}\n", "rulez"),
    ];
    for (text, field) in refused {
        let err = parse_policy(text).expect_err(text);
        assert!(err.to_string().contains(field), "{text:?}: {err}");
    }
}

#[tokio::test]
async fn a_bad_policy_file_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, "sandbox:\n  overwrite: maybe\n").unwrap();
    let args =
        serve_args(&["--config", path.to_str().unwrap(), "--dev-cert-dir", dir.path().join("c").to_str().unwrap()]);
    let err = harness_guard::app::start(args, std::future::pending()).await.err().expect("refused").to_string();
    assert!(err.contains("policy.yaml") && err.contains("overwrite"), "{err}");
}

#[test]
fn sources_and_defaults() {
    // Decided per place (a laptop, a pod), never from this test's own environment: CI may run in a pod.
    for pod in [false, true] {
        let default = if pod { Source::Cluster(None) } else { Source::Manifests("examples/cluster".into()) };
        assert_eq!(serve_args(&[]).source_in(pod), default, "in a pod: {pod}");
        assert_eq!(serve_args(&["--cluster"]).source_in(pod), Source::Cluster(None), "in a pod: {pod}");
        assert_eq!(serve_args(&["--kubeconfig", "/k"]).source_in(pod), Source::Cluster(Some("/k".into())));
        assert_eq!(serve_args(&["--manifests", "/m"]).source_in(pod), Source::Manifests("/m".into()));
    }
}

/// Without --kubeconfig, the client is configured as kubectl would: from KUBECONFIG.
#[test]
fn commands_find_the_kubeconfig_as_kubectl_does() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    // A cluster on a port nothing listens on: the command gets as far as calling it.
    let text = "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n";
    std::fs::write(&kubeconfig, text).unwrap();
    let run = |args: &[&str], env: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_harness-guard"));
        cmd.args(args)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("HARNESS_GUARD_KUBECONFIG")
            .env("HOME", dir.path());
        match env {
            Some(path) => cmd.env("KUBECONFIG", path),
            None => cmd.env_remove("KUBECONFIG"),
        };
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for args in [&["audit"][..], &["check", "-f", "examples/cluster", "--cluster"][..]] {
        let (code, stderr) = run(args, Some(&kubeconfig));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("127.0.0.1:9"), "{args:?} used the KUBECONFIG cluster: {stderr}");
        // No kubeconfig anywhere and not in a pod: a clear configuration error, exit 2.
        let (code, stderr) = run(args, None);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("cannot configure the Kubernetes client"), "{args:?}: {stderr}");
    }
}

#[test]
fn apiserver_timeouts() {
    assert_eq!(parse_timeout(Some("5s")), Duration::from_secs(5));
    assert_eq!(parse_timeout(Some("30s")), Duration::from_secs(30));
    assert_eq!(parse_timeout(Some("1500ms")), Duration::from_millis(1500));
    assert_eq!(parse_timeout(None), Duration::from_secs(10));
    assert_eq!(parse_timeout(Some("soon")), Duration::from_secs(10));
    assert_eq!(parse_timeout(Some("0s")), Duration::from_secs(10));
}

#[test]
fn flags_fall_back_to_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "rules: {nope: warn}\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness-guard"))
        .arg("serve")
        .env("HARNESS_GUARD_CONFIG", &policy)
        .env("HARNESS_GUARD_DEV_CERT_DIR", dir.path().join("certs"))
        .env("HARNESS_GUARD_LISTEN", "127.0.0.1:0")
        .env("HARNESS_GUARD_HEALTH_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("policy.yaml") && stderr.contains("nope"), "{stderr}");
}

#[test]
fn certs_command_writes_a_usable_pair() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness-guard"))
        .args(["certs", "--dns", "harness-guard.harness-guard.svc", "--dns", "127.0.0.1", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let loaded =
        harness_guard::serving::certificate::load_pair(&dir.path().join("tls.crt"), &dir.path().join("tls.key"))
            .unwrap();
    assert!(loaded.not_after > 0);
    for file in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("tls.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "private keys are owner-only");
}

/// Numeric flags that feed time arithmetic are bounded where they are parsed.
#[test]
fn lifetimes_out_of_range_are_refused_at_the_flag() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness-guard")).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) =
        run(&["certs", "--dns", "x", "--out", "/nonexistent/never-written", "--days", "18446744073709551615"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--days"), "{stderr}");
    for flag in ["--leaf-validity-seconds", "--ca-validity-seconds", "--renew-before-seconds", "--cert-check-seconds"] {
        let (code, stderr) = run(&["serve", flag, "0"]);
        assert_eq!(code, Some(2), "{flag}: {stderr}");
        assert!(stderr.contains(flag), "{flag}: {stderr}");
    }
}

/// Self-signed lifetimes under which every check would issue anew stop the server at start,
/// before it touches the cluster (the kubeconfig points at a port nothing listens on).
#[tokio::test]
async fn self_signed_lifetimes_that_reissue_every_pass_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    )
    .unwrap();
    let start = |extra: &[&str]| {
        let mut argv = vec!["--kubeconfig", kubeconfig.to_str().unwrap(), "--self-signed-secret", "tls"];
        argv.extend_from_slice(extra);
        harness_guard::app::start(serve_args(&argv), std::future::pending())
    };
    let err = start(&["--leaf-validity-seconds", "60", "--renew-before-seconds", "60"]).await.err().unwrap();
    assert!(err.to_string().contains("--renew-before-seconds (60) must be less than"), "{err}");
    let err = start(&["--leaf-validity-seconds", "60", "--renew-before-seconds", "30", "--ca-validity-seconds", "90"])
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("--ca-validity-seconds (90) must be more than"), "{err}");
}
