//! The URLs of a BuildConfig's webhook triggers, as `kiln start-build --list-webhooks` prints
//! them (pure; the secret is always shown as `<secret>`).

use super::provider::{Provider, REDACTED_SECRET};
use super::server::OPENSHIFT_PREFIX;
use crate::api::BuildConfig;

/// The base URL printed when none is configured.
pub const PLACEHOLDER_BASE: &str = "https://<kiln-webhooks-host>";

/// One webhook trigger's URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerUrls {
    /// The provider.
    pub provider: Provider,
    /// The OpenShift-shaped URL, secret redacted.
    pub with_secret: String,
    /// The URL without the secret (the provider's signature or token authenticates).
    pub signed: String,
}

/// The URLs of every webhook trigger of `bc`, under `base` (scheme and host, no trailing `/`).
pub fn trigger_urls(bc: &BuildConfig, base: &str) -> Vec<TriggerUrls> {
    let base = base.trim_end_matches('/');
    let namespace = bc.metadata.namespace.as_deref().unwrap_or("default");
    let name = bc.metadata.name.as_deref().unwrap_or_default();
    bc.spec
        .triggers
        .iter()
        .filter_map(|policy| {
            Provider::ALL
                .into_iter()
                .find(|p| p.trigger(policy).is_some())
        })
        .map(|provider| TriggerUrls {
            provider,
            with_secret: format!(
                "{base}{OPENSHIFT_PREFIX}/{namespace}/buildconfigs/{name}/webhooks/{REDACTED_SECRET}/{}",
                provider.segment()
            ),
            signed: format!("{base}/webhooks/{namespace}/{name}/{}", provider.segment()),
        })
        .collect()
}

/// The text `--list-webhooks` prints.
pub fn describe(bc: &BuildConfig, base: &str) -> String {
    let urls = trigger_urls(bc, base);
    if urls.is_empty() {
        return format!(
            "BuildConfig {} has no webhook triggers\n",
            bc.metadata.name.as_deref().unwrap_or_default()
        );
    }
    let mut out = String::new();
    for u in urls {
        out.push_str(&format!(
            "Webhook {}:\n\tURL:\t{}\n\tURL (signature or token only):\t{}\n",
            u.provider.segment(),
            u.with_secret,
            u.signed
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_each_trigger() {
        let doc = crate::yaml::read_documents(
            r#"
apiVersion: build.kiln.dev/v1alpha1
kind: BuildConfig
metadata: {name: app, namespace: demo}
spec:
  strategy: {type: Docker}
  triggers:
    - {type: GitHub, github: {secret: topsecret}}
    - {type: Generic, generic: {secretReference: {name: hook}}}
    - {type: ConfigChange}
"#,
        )
        .unwrap()
        .remove(0);
        let bc: BuildConfig = serde_json::from_value(doc).unwrap();
        let text = describe(&bc, "https://kiln.example.com/");
        assert_eq!(
            text,
            "Webhook github:\n\
             \tURL:\thttps://kiln.example.com/apis/build.kiln.dev/v1alpha1/namespaces/demo/buildconfigs/app/webhooks/<secret>/github\n\
             \tURL (signature or token only):\thttps://kiln.example.com/webhooks/demo/app/github\n\
             Webhook generic:\n\
             \tURL:\thttps://kiln.example.com/apis/build.kiln.dev/v1alpha1/namespaces/demo/buildconfigs/app/webhooks/<secret>/generic\n\
             \tURL (signature or token only):\thttps://kiln.example.com/webhooks/demo/app/generic\n"
        );
        assert!(!text.contains("topsecret"));
        let mut none = bc.clone();
        none.spec.triggers.truncate(0);
        assert_eq!(
            describe(&none, PLACEHOLDER_BASE),
            "BuildConfig app has no webhook triggers\n"
        );
    }
}
