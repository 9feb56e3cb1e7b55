//! `harness-guard selftest`: asks the installed webhook, through the apiserver, to judge an
//! AgentHarness whose ModelConfig does not exist, as a server dry run (nothing is stored). The
//! refusal proves the whole path: the webhook configuration, the Service, the certificate, a
//! ready replica and its view. `helm test` runs it in a Pod of the chart's.

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::core::names::{AGENT_HARNESS_KIND, KAGENT_GROUP, KAGENT_VERSION};
use crate::report::{EXIT_DENIED, EXIT_OK, EXIT_UNUSABLE};

/// The name of the dry-run harness, and of the ModelConfig it names (which must not exist).
pub const HARNESS: &str = "harness-guard-selftest";
/// The ModelConfig the dry-run harness names.
pub const MISSING_MODEL_CONFIG: &str = "harness-guard-selftest-missing-model-config";

/// What the apiserver answered the dry-run create.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Admitted: no webhook refused it.
    Admitted,
    /// Refused or failed, with the HTTP code and the apiserver's message.
    Refused {
        /// HTTP status.
        code: u16,
        /// The apiserver's message.
        message: String,
    },
    /// No answer (connection, TLS, credentials).
    Unreachable(String),
}

/// The exit code and the line to print for an answer, for a harness sent to `namespace`.
pub fn judge(answer: &Answer, namespace: &str) -> (i32, String) {
    match answer {
        Answer::Refused { code: 403, message }
            if message.contains("admission webhook") && message.contains(MISSING_MODEL_CONFIG) =>
        {
            (
                EXIT_OK,
                format!(
                    "ok: harness-guard judged a server dry-run AgentHarness {namespace}/{HARNESS} and refused it: {message}"
                ),
            )
        }
        Answer::Admitted => (
            EXIT_DENIED,
            format!(
                "FAIL: a server dry-run AgentHarness {namespace}/{HARNESS} naming a missing ModelConfig was admitted: \
                 harness-guard did not judge it. Check that the harness webhook matches {namespace} (its \
                 namespaceSelector follows watch.namespaces) and that rule model-config-exists is deny."
            ),
        ),
        Answer::Refused { message, .. } if message.contains("failed calling webhook") => (
            EXIT_DENIED,
            format!("FAIL: the apiserver could not call harness-guard: {message}. See docs/operations.md section 1."),
        ),
        Answer::Refused { code, message } if message.contains("admission webhook") => (
            EXIT_DENIED,
            format!("FAIL: refused by a webhook, but not for the missing ModelConfig (HTTP {code}): {message}"),
        ),
        Answer::Refused { code, message } => {
            (EXIT_UNUSABLE, format!("cannot run the test: the apiserver answered HTTP {code}: {message}"))
        }
        Answer::Unreachable(error) => (EXIT_UNUSABLE, format!("cannot run the test: {error}")),
    }
}

/// Runs the test and returns the exit code.
pub async fn run(args: crate::config::SelftestArgs) -> i32 {
    let answer = ask(args.kubeconfig, &args.namespace).await;
    let (code, line) = judge(&answer, &args.namespace);
    if code == EXIT_OK {
        println!("{line}");
    } else {
        eprintln!("harness-guard selftest: {line}");
    }
    code
}

async fn ask(kubeconfig: Option<std::path::PathBuf>, namespace: &str) -> Answer {
    let client = match crate::cluster::client::client(kubeconfig).await {
        Ok(client) => client,
        Err(e) => return Answer::Unreachable(e.to_string()),
    };
    let gvk = GroupVersionKind::gvk(KAGENT_GROUP, KAGENT_VERSION, AGENT_HARNESS_KIND);
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, namespace, &ApiResource::from_gvk_with_plural(&gvk, "agentharnesses"));
    let harness: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": format!("{KAGENT_GROUP}/{KAGENT_VERSION}"),
        "kind": AGENT_HARNESS_KIND,
        "metadata": {"name": HARNESS, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "harness-guard-selftest"}},
        "spec": {"backend": "openclaw", "modelConfigRef": MISSING_MODEL_CONFIG},
    }))
    .expect("a literal object");
    match api.create(&PostParams { dry_run: true, ..PostParams::default() }, &harness).await {
        Ok(_) => Answer::Admitted,
        Err(kube::Error::Api(e)) => Answer::Refused { code: e.code, message: e.message },
        Err(e) => Answer::Unreachable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_harness_guards_refusal_of_the_missing_model_config_passes() {
        let refused = |code, message: &str| Answer::Refused { code, message: message.into() };
        let ours = format!(
            "admission webhook \"harnesses.harness-guard.dev\" denied the request: AgentHarness t/{HARNESS}: \
             spec.modelConfigRef \"{MISSING_MODEL_CONFIG}\" → ModelConfig t/{MISSING_MODEL_CONFIG} does not exist."
        );
        assert_eq!(judge(&refused(403, &ours), "t").0, EXIT_OK);
        assert_eq!(judge(&Answer::Admitted, "t").0, EXIT_DENIED);
        let down = "Internal error occurred: failed calling webhook \"harnesses.harness-guard.dev\": failed to call \
                    webhook: Post \"https://harness-guard.harness-guard.svc:443/validate?timeout=5s\": no endpoints";
        let (code, line) = judge(&refused(500, down), "t");
        assert_eq!(code, EXIT_DENIED);
        assert!(line.contains("could not call harness-guard"), "{line}");
        let other = "admission webhook \"other.example.com\" denied the request: no";
        assert_eq!(judge(&refused(403, other), "t").0, EXIT_DENIED);
        let rbac = "agentharnesses.kagent.dev is forbidden: User \"x\" cannot create resource";
        assert_eq!(judge(&refused(403, rbac), "t").0, EXIT_UNUSABLE);
        assert_eq!(judge(&Answer::Unreachable("connection refused".into()), "t").0, EXIT_UNUSABLE);
    }
}
