//! `harness-guard check -f PATH...`: the AgentHarnesses and sandbox pods of the input, against
//! the ModelConfigs, Secrets and ConfigMaps of the input, of `--state` directories and, with
//! `--cluster`, of the live cluster.

use super::{evaluate, load_inputs, policy, unusable};
use crate::cluster::manifests::{Loader, Objects};
use crate::config::CheckArgs;
use crate::core::view::Digester;

/// Runs the check; returns the exit code (0 nothing denied, 1 denied, 2 unusable input).
pub async fn run(args: CheckArgs) -> i32 {
    let policy = match policy(args.config.as_deref()) {
        Ok(p) => p,
        Err(e) => return unusable(&e),
    };
    let digester = Digester::random();
    let loader = Loader::new(&digester).default_namespace(args.namespace.clone());
    let mut subjects = Objects::default();
    if let Err(e) = load_inputs(&loader, &args.filename, &mut subjects) {
        return unusable(&e);
    }
    let mut context = Objects::default();
    let mut unreadable = Vec::new();
    for dir in &args.state {
        if let Err(e) = loader.load_path(dir, &mut context) {
            return unusable(&e.to_string());
        }
    }
    if args.cluster {
        match super::list_cluster(args.kubeconfig.clone(), &policy.watch, &digester).await {
            Ok(live) => {
                context.extend(live.objects);
                unreadable = live.unreadable;
            }
            Err(e) => return unusable(&e),
        }
    }
    // The input itself is context too: a harness and its ModelConfig usually come together.
    context.extend(subjects.clone());
    evaluate(&subjects, context, &unreadable, digester, &policy, args.output)
}
