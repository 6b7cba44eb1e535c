//! Preparing and starting one container with the configured runtime: host processes, or
//! runc after the image is pulled (with the Pod's `imagePullSecrets`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Secret};
use kube::Api;

use super::Worker;
use crate::kubelet::config::Runtime;
use crate::kubelet::env::{resolve_env, Objects};
use crate::kubelet::error::{Error, Result};
use crate::kubelet::logs::ContainerKey;
use crate::kubelet::plan::{container_plan, ContainerPlan, HostVolume};
use crate::kubelet::runc::auth::{credentials_for, Credential};
use crate::kubelet::runc::process::RuncContainer;
use crate::kubelet::runc::rootfs::release;
use crate::kubelet::runc::{NotReady, Request};
use crate::kubelet::runtime::{spawn, start, Killer, Running};
use crate::kubelet::script::ContainerDirs;
use crate::kubelet::stdin::ContainerStdin;

/// A container ready to start.
pub(super) enum Launch {
    /// A host-process container.
    Host(ContainerPlan),
    /// A runc container, and its image's id.
    Runc(ContainerPlan, RuncContainer, String),
}

impl Launch {
    /// The image id and container id the status reports (runc only).
    pub(super) fn ids(&self) -> Option<(String, String)> {
        match self {
            Launch::Host(_) => None,
            Launch::Runc(_, c, image_id) => Some((image_id.clone(), format!("runc://{}", c.id))),
        }
    }

    /// What runs.
    pub(super) fn plan(&self) -> &ContainerPlan {
        match self {
            Launch::Host(plan) | Launch::Runc(plan, _, _) => plan,
        }
    }
}

impl Worker {
    /// Resolves the environment and prepares the container for the kubelet's runtime.
    pub(super) async fn prepare_container(
        &self,
        kind: &str,
        container: &Container,
        objects: &Objects,
        volumes: &BTreeMap<String, HostVolume>,
        dirs: &ContainerDirs,
    ) -> std::result::Result<Launch, NotReady> {
        let env = resolve_env(&self.pod, container, objects)?;
        match &self.shared.config.runtime {
            Runtime::Host => {
                let images = &self.shared.config.image_map;
                let plan = container_plan(&self.pod, container, env, volumes, images)?;
                Ok(Launch::Host(plan))
            }
            Runtime::Runc(runtime) => {
                let credentials = self.pull_credentials(container).await;
                let prepared = runtime
                    .prepare(Request {
                        pod: &self.pod,
                        container,
                        env,
                        volumes,
                        dirs,
                        credentials,
                        kind,
                    })
                    .await?;
                Ok(Launch::Runc(
                    prepared.plan,
                    prepared.container,
                    prepared.image_id,
                ))
            }
        }
    }

    /// Starts a prepared container.
    pub(super) fn start_container(
        &self,
        launch: Launch,
        dirs: &ContainerDirs,
        key: ContainerKey,
        stdin: ContainerStdin,
    ) -> Result<Running> {
        let sink = self.shared.sink.clone();
        match launch {
            Launch::Host(plan) => start(&plan, dirs, &self.name, sink, key, stdin),
            Launch::Runc(plan, container, _) => {
                let command = container.run_command();
                let root = container.root.clone();
                let running = spawn(
                    command,
                    &plan.name,
                    dirs,
                    sink,
                    key,
                    Killer::Runc(container),
                    stdin,
                );
                match running {
                    Ok(running) => Ok(running),
                    Err(e) => {
                        release(&root);
                        Err(Error::Unsupported(e.to_string()))
                    }
                }
            }
        }
    }

    /// Credentials of the Pod's `imagePullSecrets` for the container's image; a missing
    /// Secret is skipped (the kubelet logs it and pulls without it).
    async fn pull_credentials(&self, container: &Container) -> Vec<Credential> {
        let image = container.image.as_deref().unwrap_or("");
        let Ok(reference) = image.parse::<oci_client::Reference>() else {
            return Vec::new();
        };
        let secrets: Api<Secret> = Api::namespaced(self.shared.client.clone(), &self.namespace);
        let names = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for name in names {
            match secrets.get_opt(&name.name).await {
                Ok(Some(secret)) => {
                    let data: BTreeMap<String, Vec<u8>> = secret
                        .data
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k, v.0))
                        .collect();
                    out.extend(credentials_for(
                        &data,
                        reference.resolve_registry(),
                        reference.repository(),
                    ));
                }
                Ok(None) => tracing::warn!(
                    pod = %self.name, secret = %name.name,
                    "imagePullSecrets: secret not found; pulling without it"
                ),
                Err(e) => tracing::warn!(pod = %self.name, error = %e, "imagePullSecrets"),
            }
        }
        out
    }
}
