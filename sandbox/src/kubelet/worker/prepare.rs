//! Before containers start: fetching referenced Secrets and ConfigMaps, requesting projected
//! ServiceAccount tokens, writing volumes.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::Api;

use super::containers::cannot_run;
use super::{waiting, Worker, CONFIG_RETRY};
use crate::kubelet::claims;
use crate::kubelet::env::{references, ObjectData, Objects};
use crate::kubelet::error::{Error, Result};
use crate::kubelet::plan::HostVolume;
use crate::kubelet::status::State;
use crate::kubelet::volumes::{forced_read_only, materialize, volume_content};

impl Worker {
    /// Fetches referenced objects and writes volumes, retrying while something is missing.
    pub(super) async fn prepare(&self) -> Option<(Objects, BTreeMap<String, HostVolume>)> {
        loop {
            if self.stopped() {
                return None;
            }
            match self.try_prepare().await {
                Ok(ready) => return Some(ready),
                Err(e) => {
                    let message = e.to_string();
                    tracing::info!(pod = %self.name, error = %message, "volumes not ready");
                    // An unsupported volume never becomes ready: nothing can start.
                    let fatal = matches!(e, Error::Unsupported(_) | Error::Io { .. });
                    let mut guard = self.record.lock().await;
                    let record = &mut *guard;
                    for c in record.init.iter_mut().chain(record.main.iter_mut()) {
                        if matches!(c.state, State::Waiting { .. }) {
                            c.state = if fatal {
                                State::Terminated(cannot_run(message.clone()))
                            } else {
                                waiting("ContainerCreating", message.clone())
                            };
                        }
                    }
                    if fatal {
                        drop(guard);
                        self.publish().await;
                        return None;
                    }
                    drop(guard);
                    self.publish().await;
                    self.pause(CONFIG_RETRY).await;
                }
            }
        }
    }

    async fn try_prepare(&self) -> Result<(Objects, BTreeMap<String, HostVolume>)> {
        let objects = self.fetch_objects().await?;
        let dir = self.pod_dir.join("volumes");
        let mut volumes = BTreeMap::new();
        let spec = self.pod.spec.clone().unwrap_or_default();
        for v in spec.volumes.iter().flatten() {
            let content = volume_content(&self.pod, v, &objects)?;
            let path = materialize(&dir, &v.name, &content)?;
            let forced_read_only = forced_read_only(v);
            volumes.insert(
                v.name.clone(),
                HostVolume {
                    path,
                    forced_read_only,
                    persistent: v.persistent_volume_claim.is_some(),
                },
            );
        }
        Ok((objects, volumes))
    }

    pub(super) async fn fetch_objects(&self) -> Result<Objects> {
        let refs = references(&self.pod);
        let client = &self.shared.client;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &self.namespace);
        let mut objects = Objects::default();
        for name in &refs.secrets {
            if let Some(s) = secrets.get_opt(name).await? {
                let data: ObjectData = s
                    .data
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                objects.secrets.insert(name.clone(), data);
            }
        }
        for name in &refs.config_maps {
            if let Some(m) = maps.get_opt(name).await? {
                let mut data: ObjectData = m
                    .data
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                data.extend(m.binary_data.into_iter().flatten().map(|(k, v)| (k, v.0)));
                objects.config_maps.insert(name.clone(), data);
            }
        }
        objects.tokens = self.request_tokens().await?;
        let root = claims::claims_root(&self.shared.config.root_dir);
        let spec = self.pod.spec.clone().unwrap_or_default();
        for claim in spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
        {
            let name = &claim.claim_name;
            let dir = claims::bind(client, &root, &self.namespace, name).await?;
            objects.claims.insert(name.clone(), dir);
        }
        Ok(objects)
    }

    /// A token per `serviceAccountToken` projection, from the TokenRequest API for the Pod's
    /// ServiceAccount and bound to the Pod, with the projection's audience and lifetime (as the
    /// kubelet does; it also refreshes them at 80 % of their lifetime, which the sandbox does not:
    /// its Pods live shorter than the shortest token, 10 minutes).
    async fn request_tokens(&self) -> Result<BTreeMap<(String, String), String>> {
        let mut tokens = BTreeMap::new();
        let spec = self.pod.spec.clone().unwrap_or_default();
        let account = spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let accounts: Api<ServiceAccount> =
            Api::namespaced(self.shared.client.clone(), &self.namespace);
        for volume in spec.volumes.iter().flatten() {
            let sources = volume
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten());
            for projection in sources.filter_map(|s| s.service_account_token.as_ref()) {
                let request = TokenRequest {
                    spec: TokenRequestSpec {
                        audiences: projection.audience.clone().into_iter().collect(),
                        expiration_seconds: Some(projection.expiration_seconds.unwrap_or(3600)),
                        bound_object_ref: Some(BoundObjectReference {
                            api_version: Some("v1".into()),
                            kind: Some("Pod".into()),
                            name: self.pod.metadata.name.clone(),
                            uid: self.pod.metadata.uid.clone(),
                        }),
                    },
                    ..TokenRequest::default()
                };
                let issued = accounts
                    .create_token_request(&account, &PostParams::default(), &request)
                    .await?;
                let token = issued.status.map(|s| s.token).unwrap_or_default();
                tokens.insert((volume.name.clone(), projection.path.clone()), token);
            }
        }
        Ok(tokens)
    }
}
