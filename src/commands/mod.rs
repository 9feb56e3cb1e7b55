//! The one-shot commands: `check` (before apply, for CI) and `audit` (what runs now), which
//! evaluate with the same pure functions, messages and policy as the webhook; `explain` (one
//! harness's chain, link by link); and `selftest` (`helm test`), which asks the installed webhook.

pub mod check;
pub mod explain;
pub mod selftest;

use crate::cluster::client;
use crate::cluster::list::Listed;
use crate::cluster::manifests::{Loader, Objects};
use crate::cluster::view::View;
use crate::config::{OutputFormat, load_policy};
use crate::core::audit::{Report, audit_harness, audit_pod, audit_unreadable};
use crate::core::finding::ObjectRef;
use crate::core::policy::{Policy, WatchPolicy};
use crate::core::sandbox::is_sandbox_pod;
use crate::core::view::Digester;
use crate::report;

/// Reads the policy file, if any; a bad one is unusable input.
fn policy(path: Option<&std::path::Path>) -> Result<Policy, String> {
    path.map(load_policy).transpose().map(Option::unwrap_or_default).map_err(|e| e.to_string())
}

/// Reads the manifests of `files` (files or directories; `-` is standard input) into `objects`.
fn load_inputs(loader: &Loader<'_>, files: &[std::path::PathBuf], objects: &mut Objects) -> Result<(), String> {
    use std::io::Read;
    for file in files {
        if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read standard input: {e}"))?;
            loader.load_text(std::path::Path::new("<stdin>"), &text, objects)
        } else {
            loader.load_path(file, objects)
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Evaluates `subjects` (harnesses and pods) against a view holding `context` in the policy's
/// watch scope (as the webhook's view would), reports what could not be read, prints the
/// reports, and returns the exit code.
fn evaluate(
    subjects: &Objects,
    context: Objects,
    unreadable: &[(ObjectRef, String)],
    digester: Digester,
    policy: &Policy,
    output: OutputFormat,
) -> i32 {
    let (view, feeds) = View::new(&policy.watch, digester);
    context.feed(feeds);
    let mut reports: Vec<Report> = subjects.harnesses().iter().map(|h| audit_harness(h, &view, policy)).collect();
    reports.extend(unreadable.iter().map(|(object, error)| audit_unreadable(object, error, policy)));
    for (meta, spec) in &subjects.pods {
        if is_sandbox_pod(meta, meta.namespace.as_deref().unwrap_or(""), &policy.sandbox) {
            reports.push(audit_pod(meta, spec, &view, policy));
        }
    }
    reports.sort_by(|a, b| (a.kind, &a.object).cmp(&(b.kind, &b.object)));
    match output {
        OutputFormat::Table => print!("{}", report::table(&reports)),
        OutputFormat::Json => println!("{}", report::json(&reports)),
        OutputFormat::Junit => print!("{}", report::junit(&reports, &subjects.origins)),
        OutputFormat::Sarif => print!("{}", report::sarif(&reports, &subjects.origins)),
        OutputFormat::Yaml => match report::patched_pods(&subjects.pods, &reports) {
            Ok(yaml) => {
                print!("{yaml}");
                eprint!("{}", report::table(&reports));
            }
            Err(e) => return unusable(&e),
        },
    }
    report::exit_code(&reports)
}

/// `harness-guard audit`: every AgentHarness of the live cluster, against the cluster.
pub async fn audit(args: crate::config::AuditArgs) -> i32 {
    let policy = match policy(args.config.as_deref()) {
        Ok(p) => p,
        Err(e) => return unusable(&e),
    };
    let digester = Digester::random();
    let listed = match list_cluster(args.kubeconfig, &policy.watch, &digester).await {
        Ok(listed) => listed,
        Err(e) => return unusable(&e),
    };
    let mut subjects = Objects::default();
    subjects.add(listed.objects.harnesses().to_vec(), Vec::new(), Vec::new(), Vec::new());
    evaluate(&subjects, listed.objects, &listed.unreadable, digester, &policy, args.output)
}

/// Lists the live cluster of `kubeconfig`, or of the configuration kubectl would use, in `scope`.
async fn list_cluster(
    kubeconfig: Option<std::path::PathBuf>,
    scope: &WatchPolicy,
    digester: &Digester,
) -> Result<Listed, String> {
    let config = client::config(kubeconfig).await.map_err(|e| e.to_string())?;
    let url = config.cluster_url.to_string();
    let client = client::client_for(config).map_err(|e| e.to_string())?;
    crate::cluster::list::list_all(&client, scope, digester)
        .await
        .map_err(|e| format!("cannot list the cluster at {url}: {e}"))
}

fn unusable(message: &str) -> i32 {
    eprintln!("harness-guard: {message}");
    report::EXIT_UNUSABLE
}
