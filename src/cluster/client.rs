//! The Kubernetes client, configured as kubectl configures itself, and the Deployment this process
//! runs as, looked up as the owner of what it creates.

use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// No Kubernetes client could be configured; the source says why.
#[derive(Debug, thiserror::Error)]
#[error("cannot configure the Kubernetes client: {0}")]
pub struct ClientError(#[source] Box<dyn std::error::Error + Send + Sync>);

fn fail(e: impl std::error::Error + Send + Sync + 'static) -> ClientError {
    ClientError(Box::new(e))
}

/// The configuration for `kubeconfig`, or, without one, the one kubectl would use: `KUBECONFIG`,
/// then `~/.kube/config` (current context), then the in-cluster configuration.
pub async fn config(kubeconfig: Option<PathBuf>) -> Result<kube::Config, ClientError> {
    Ok(match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(&path).map_err(fail)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(fail)?
        }
        None => kube::Config::infer().await.map_err(fail)?,
    })
}

/// A client for [`config`].
pub async fn client(kubeconfig: Option<PathBuf>) -> Result<kube::Client, ClientError> {
    kube::Client::try_from(config(kubeconfig).await?).map_err(fail)
}

/// A client for `config` (kept, e.g. to name its cluster in errors).
pub fn client_for(config: kube::Config) -> Result<kube::Client, ClientError> {
    kube::Client::try_from(config).map_err(fail)
}

/// The Deployment `name` of `namespace` as an owner (no controller, no blocking): what deleting
/// it (`helm uninstall`, a GitOps prune) should delete with it. `None`, with a warning, when it
/// cannot be read.
pub async fn deployment_owner(client: &kube::Client, namespace: &str, name: &str) -> Option<OwnerReference> {
    use k8s_openapi::api::apps::v1::Deployment;
    match kube::Api::<Deployment>::namespaced(client.clone(), namespace).get(name).await {
        Ok(deployment) => Some(OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: name.into(),
            uid: deployment.metadata.uid?,
            ..Default::default()
        }),
        Err(error) => {
            tracing::warn!(%error, deployment = %name, "cannot read the owner Deployment: the TLS Secret and the Lease will outlive an uninstall");
            None
        }
    }
}
