//! The pull credentials of a namespace for imports: the docker-config Secrets its `default`
//! ServiceAccount lists in `imagePullSecrets` (what the namespace's Pods pull with), read by name.
//! OpenShift's import reads every docker-config Secret of the namespace; that needs `list` on
//! Secrets, which cluster-wide is every Secret of the cluster, so kiln reads only the ones a
//! namespace has named as pull secrets, and only where the namespace grants the controller
//! `get secrets` (the chart's secret-reader role; elsewhere imports are anonymous).

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::Api;
use serde_json::Value;

use crate::controller::context::{api_error, read_secret, secrets_not_granted, Error, SecretRead};
use crate::registry::auth;

/// The ServiceAccount whose `imagePullSecrets` imports use.
pub(crate) const PULL_SERVICE_ACCOUNT: &str = "default";

/// The merged docker config (`{"auths": …}`) of the namespace's pull secrets. A missing
/// ServiceAccount or Secret, or one that is not a docker config, contributes nothing.
pub(crate) async fn pull_config(client: &kube::Client, namespace: &str) -> Result<Value, Error> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let account = accounts
        .get_opt(PULL_SERVICE_ACCOUNT)
        .await
        .map_err(api_error(format!(
            "reading ServiceAccount {namespace}/{PULL_SERVICE_ACCOUNT}"
        )))?;
    let names: Vec<String> = account
        .and_then(|a| a.image_pull_secrets)
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .filter(|n| !n.is_empty())
        .collect();
    let mut configs = Vec::new();
    for name in names {
        let secret = match read_secret(client, namespace, &name).await? {
            SecretRead::Read(Some(secret)) => *secret,
            SecretRead::Read(None) => {
                tracing::debug!(namespace, secret = name, "pull secret missing");
                continue;
            }
            SecretRead::Forbidden => {
                tracing::warn!(
                    namespace,
                    secret = name,
                    "{}",
                    secrets_not_granted(namespace)
                );
                continue;
            }
        };
        match docker_config(&secret) {
            Some(config) => configs.push(config),
            None => tracing::debug!(namespace, secret = name, "not a docker-config secret"),
        }
    }
    Ok(auth::merge(&configs))
}

/// The docker config a Secret holds (`.dockerconfigjson`, or the legacy `.dockercfg`).
pub(crate) fn docker_config(secret: &Secret) -> Option<Value> {
    let data = secret.data.as_ref()?;
    [".dockerconfigjson", ".dockercfg"].iter().find_map(|key| {
        let bytes = data.get(*key)?;
        auth::normalize(std::str::from_utf8(&bytes.0).ok()?).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    #[test]
    fn docker_configs_from_secrets() {
        let secret = |key: &str, text: &str| Secret {
            data: Some(BTreeMap::from([(
                key.to_string(),
                ByteString(text.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        };
        let json = r#"{"auths":{"reg:5000":{"username":"u","password":"p"}}}"#;
        let legacy = r#"{"reg:5000":{"username":"u","password":"p"}}"#;
        for (s, found) in [
            (secret(".dockerconfigjson", json), true),
            (secret(".dockercfg", legacy), true),
            (secret("token", json), false),
            (secret(".dockerconfigjson", "not json"), false),
            (Secret::default(), false),
        ] {
            let config = docker_config(&s);
            assert_eq!(config.is_some(), found, "{s:?}");
            if let Some(c) = config {
                assert_eq!(
                    auth::credentials_for(&c, "reg:5000"),
                    Some(("u".into(), "p".into()))
                );
            }
        }
    }
}
