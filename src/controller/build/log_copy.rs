//! Keeps a finished build's log after its Pod goes: reads the clone and build containers' logs
//! (streamed through a head-and-tail cap, so memory stays bounded whatever their size) and
//! stores them in the Build's log ConfigMap ([`crate::api::build_log`]).
//!
//! Best effort where the world says no: a container that never started (400), a Pod already gone
//! (404) or a refused request (403, 422) costs the copy, never the build's transition; a server
//! or network error fails the reconcile, which retries. A copy stored by an earlier attempt (409)
//! is kept.

use futures::AsyncReadExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, LogParams, PostParams};
use kube::ResourceExt;

use super::super::context::{api_error, Context, Error};
use crate::api::build_log::{self, Capped, HEAD_BYTES, TAIL_BYTES};
use crate::api::contract::{BUILD_CONTAINER, CLONE_CONTAINER};
use crate::api::Build;
use crate::naming;

/// How much of a log one read takes (one buffer serves both containers).
const READ_CHUNK: usize = 16 * 1024;

/// Whether a failed request is worth retrying (the server or the network failed).
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}

/// Reads the build Pod's logs and stores them for `build`; see the module documentation.
pub(crate) async fn keep(ctx: &Context, build: &Build) -> Result<(), Error> {
    let namespace = build.namespace().unwrap_or_default();
    let pod_name = naming::pod_name(&build.name_any());
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut capped = Capped::new(HEAD_BYTES, TAIL_BYTES);
    let mut chunk = vec![0_u8; READ_CHUNK];
    for container in [CLONE_CONTAINER, BUILD_CONTAINER] {
        let params = LogParams {
            container: Some(container.to_string()),
            ..LogParams::default()
        };
        let mut stream = match pods.log_stream(&pod_name, &params).await {
            Ok(stream) => stream,
            Err(e) if transient(&e) => {
                return Err(api_error(format!(
                    "reading the {container} log of {pod_name}"
                ))(e))
            }
            Err(e) => {
                tracing::debug!(pod = pod_name, container, error = %e, "no log to keep");
                continue;
            }
        };
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => capped.push(&chunk[..n]),
                Err(e) => {
                    return Err(Error::Api {
                        action: format!("reading the {container} log of {pod_name}"),
                        source: kube::Error::ReadEvents(e),
                    })
                }
            }
        }
    }
    if capped.total() == 0 {
        return Ok(());
    }
    let Some(cm) = build_log::config_map(build, capped) else {
        return Ok(());
    };
    let name = cm.name_any();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.create(&PostParams::default(), &cm).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) if transient(&e) => {
            Err(api_error(format!("storing the log in ConfigMap {name}"))(e))
        }
        Err(e) => {
            tracing::warn!(configmap = name, error = %e, "could not keep the build log");
            Ok(())
        }
    }
}
