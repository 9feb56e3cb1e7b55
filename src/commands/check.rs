//! `harness-guard check -f PATH...`: the AgentHarnesses and sandbox pods of the input, against
//! the ModelConfigs, Secrets and ConfigMaps of the input, of `--state` directories and, with
//! `--cluster`, of the live cluster.

use std::io::Read;
use std::path::Path;

use super::{evaluate, policy, unusable};
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
    for file in &args.filename {
        let loaded = if file.as_os_str() == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => loader.load_text(Path::new("<stdin>"), &text, &mut subjects),
                Err(e) => return unusable(&format!("cannot read standard input: {e}")),
            }
        } else {
            loader.load_path(file, &mut subjects)
        };
        if let Err(e) = loaded {
            return unusable(&e.to_string());
        }
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
