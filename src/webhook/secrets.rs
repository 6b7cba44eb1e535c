//! Webhook secrets: the inline `secret`, or key `WebHookSecretKey` of the Secret named by
//! `secretReference`, read through a small cache.
//!
//! Only the Secrets that triggers reference are fetched, by name (`get`), and kept for a short
//! time (30 s; a missing Secret or key for 5 s). A watch on Secrets would need `list` and
//! `watch` on every Secret of the cluster and keep them all in memory; a `get` by name needs
//! only `get`, which the controller's role already has, and holds nothing it was not asked for.
//! The price is that a rotated secret takes effect up to 30 s later. Concurrent requests for an
//! uncached Secret wait for one fetch; a failed fetch keeps serving the last value it had.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use crate::api::build_config::WebHookTrigger;

/// The key of a webhook Secret that holds the secret (OpenShift's name).
pub const SECRET_KEY: &str = "WebHookSecretKey";

/// How long a fetched secret is used before it is fetched again.
const TTL: Duration = Duration::from_secs(30);
/// How long a missing Secret or key is remembered as missing.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

type Key = (String, String);

#[derive(Default)]
struct Entry {
    value: Option<Arc<[u8]>>,
    fetched: Option<Instant>,
}

/// Referenced webhook Secrets, fetched by name and cached.
pub(crate) struct SecretCache {
    client: kube::Client,
    entries: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Entry>>>>,
}

impl SecretCache {
    /// An empty cache reading through `client`.
    pub(crate) fn new(client: kube::Client) -> Self {
        SecretCache {
            client,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The secret of `trigger` in `namespace`: None when it has none or its Secret (or key) is
    /// missing.
    pub(crate) async fn resolve(
        &self,
        namespace: &str,
        trigger: &WebHookTrigger,
    ) -> Option<Arc<[u8]>> {
        if let Some(reference) = &trigger.secret_reference {
            return self.get(namespace, &reference.name).await;
        }
        trigger
            .secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| Arc::from(s.as_bytes()))
    }

    async fn get(&self, namespace: &str, name: &str) -> Option<Arc<[u8]>> {
        // The name goes into the request path as written: one no object can have names nothing.
        if let Err(why) = crate::api::path_names::object(namespace, name) {
            tracing::warn!(namespace, secret = name, "webhook Secret not read: {why}");
            return None;
        }
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries
                .entry((namespace.to_string(), name.to_string()))
                .or_default()
                .clone()
        };
        let mut entry = slot.lock().await;
        let ttl = if entry.value.is_some() {
            TTL
        } else {
            NEGATIVE_TTL
        };
        if entry.fetched.is_some_and(|at| at.elapsed() < ttl) {
            return entry.value.clone();
        }
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match secrets.get_opt(name).await {
            Ok(secret) => {
                let value = secret
                    .and_then(|s| s.data?.remove(SECRET_KEY))
                    .map(|bytes| Arc::from(bytes.0))
                    .filter(|v: &Arc<[u8]>| !v.is_empty());
                if value.is_none() {
                    tracing::warn!(
                        namespace,
                        secret = name,
                        "webhook Secret missing or without key {SECRET_KEY}"
                    );
                }
                entry.value = value;
                entry.fetched = Some(Instant::now());
            }
            Err(err) => {
                // Keep the last value; try again on the next request.
                tracing::warn!(namespace, secret = name, %err, "cannot read webhook Secret");
            }
        }
        entry.value.clone()
    }
}
