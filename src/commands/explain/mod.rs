//! `harness-guard explain NAMESPACE/NAME`: one AgentHarness's credential chain, link by link,
//! read-only. Live, it reads just the objects the chain needs with the caller's own permissions
//! ([`live`]); with `-f` it explains the harnesses of manifests against `--state` offline. Either
//! way the judgement is `core::explain`'s, over the same view and policy as the webhook.

mod live;
mod render;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{load_inputs, policy, unusable};
use crate::cluster::manifests::{Loader, Objects};
use crate::cluster::view::View;
use crate::config::{ExplainArgs, ExplainFormat};
use crate::core::explain::{Explanation, Observed, explain};
use crate::core::policy::Policy;
use crate::core::sandbox::is_sandbox_pod;
use crate::core::view::Digester;
use crate::report::{EXIT_DENIED, EXIT_OK};

/// Runs `explain`; returns the exit code (0 no link broken, 1 a link broken, 2 unusable input).
pub async fn run(args: ExplainArgs) -> i32 {
    let policy = match policy(args.config.as_deref()) {
        Ok(p) => p,
        Err(e) => return unusable(&e),
    };
    let target = match args.harness.as_deref().map(parse_target).transpose() {
        Ok(target) => target,
        Err(e) => return unusable(&e),
    };
    let explained = match (&target, args.filename.is_empty()) {
        (_, false) => offline(&args, target.as_ref(), &policy),
        (Some((ns, name)), true) => live::explain_live(args.kubeconfig.clone(), ns, name, &policy).await,
        (None, true) => Err("name an AgentHarness as NAMESPACE/NAME, or give manifests with -f".to_string()),
    };
    let explanations = match explained {
        Ok(explanations) => explanations,
        Err(e) => return unusable(&e),
    };
    match args.output {
        ExplainFormat::Table => print!("{}", render::table(&explanations, render::colour())),
        ExplainFormat::Json => println!("{}", render::json(&explanations)),
    }
    if explanations.iter().any(Explanation::broken) { EXIT_DENIED } else { EXIT_OK }
}

/// `NAMESPACE/NAME`.
fn parse_target(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => Err(format!("{text:?} is not NAMESPACE/NAME")),
    }
}

/// The harnesses of the `-f` input (or the one named), against the input and `--state`.
fn offline(args: &ExplainArgs, target: Option<&(String, String)>, policy: &Policy) -> Result<Vec<Explanation>, String> {
    let digester = Digester::random();
    let loader = Loader::new(&digester).default_namespace("default");
    let mut subjects = Objects::default();
    load_inputs(&loader, &args.filename, &mut subjects)?;
    let mut context = Objects::default();
    for dir in &args.state {
        loader.load_path(dir, &mut context).map_err(|e| e.to_string())?;
    }
    context.extend(subjects.clone());
    let harnesses: Vec<_> = match target {
        Some((ns, name)) => {
            let named =
                context.harnesses().iter().find(|h| h.namespace() == ns && h.metadata.name.as_ref() == Some(name));
            vec![named.cloned().ok_or_else(|| format!("no AgentHarness {ns}/{name} in the input or --state"))?]
        }
        None if subjects.harnesses().is_empty() => return Err("the input holds no AgentHarness".to_string()),
        None => subjects.harnesses().to_vec(),
    };
    // Pods count as looked for only when the input has sandbox pods at all.
    let pods: Vec<(ObjectMeta, PodSpec)> = context.pods.clone();
    let sandbox = |(meta, _): &(ObjectMeta, PodSpec)| {
        is_sandbox_pod(meta, meta.namespace.as_deref().unwrap_or(""), &policy.sandbox)
    };
    let pods = pods.iter().any(sandbox).then_some(pods);
    let (view, feeds) = View::new(&policy.watch, digester);
    context.feed(feeds);
    let observed = Observed { pods, ..Default::default() };
    Ok(harnesses.iter().map(|h| explain(h, &view, policy, &observed)).collect())
}
