//! Sending an upload to a build: wait until the build Pod's `clone` container runs, attach to its
//! stdin through the Pod's `attach` subresource with the user's own credentials, and stream the
//! producer's chunks into it; end of input is the end of the clone's input (`stdinOnce`).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::pack::{ChannelWriter, Input, CHUNK};
use super::Error;
use crate::api::contract::CLONE_CONTAINER;
use crate::api::Build;

/// Chunks buffered between the producer and the connection (so at most 1 MiB in flight here).
const CHANNEL_CHUNKS: usize = 16;
/// How often the build's Pod is looked at while waiting for its clone step.
const POLL: Duration = Duration::from_millis(250);
/// How long to wait for the server's final word once the input is sent.
const STATUS_WAIT: Duration = Duration::from_secs(120);

/// Where the build stands for the upload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Not started yet (queued behind other builds, or its Pod not created or not running yet).
    Waiting,
    /// The clone container runs: attach now.
    Ready,
    /// The build ended, or its clone step did, before anything was sent.
    Over(String),
}

/// Decides from the Build's phase and its Pod whether to attach (pure).
pub(crate) fn stage(build_phase: Option<&str>, pod: Option<&Pod>) -> Stage {
    if let Some(phase @ ("Complete" | "Failed" | "Error" | "Cancelled")) = build_phase {
        return Stage::Over(format!(
            "the build ended ({phase}) before its input was sent"
        ));
    }
    let Some(status) = pod.and_then(|p| p.status.as_ref()) else {
        return Stage::Waiting;
    };
    let clone = status
        .init_container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == CLONE_CONTAINER);
    match clone.and_then(|c| c.state.as_ref()) {
        Some(s) if s.running.is_some() => Stage::Ready,
        Some(s) if s.terminated.is_some() => {
            Stage::Over("the build's clone step ended before its input was sent".to_string())
        }
        _ => Stage::Waiting,
    }
}

/// Waits for the build's clone step, then streams `input` into it; returns the bytes sent.
pub(crate) async fn send(
    client: &kube::Client,
    build: &Build,
    input: &Input,
) -> Result<u64, Error> {
    let namespace = build.metadata.namespace.clone().unwrap_or_default();
    let name = build.metadata.name.clone().unwrap_or_default();
    let pod_name = crate::naming::pod_name(&name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let builds: Api<Build> = Api::namespaced(client.clone(), &namespace);
    loop {
        let pod = pods.get_opt(&pod_name).await.map_err(Error::Kube)?;
        let phase = if pod.is_none() {
            let b = builds.get_opt(&name).await.map_err(Error::Kube)?;
            b.and_then(|b| b.status).map(|s| s.phase.as_str())
        } else {
            None
        };
        match stage(phase, pod.as_ref()) {
            Stage::Ready => break,
            Stage::Over(why) => return Err(Error::Upload(why)),
            Stage::Waiting => tokio::time::sleep(POLL).await,
        }
    }
    let params = AttachParams::default()
        .container(CLONE_CONTAINER)
        .stdin(true)
        .stdout(false)
        .stderr(false)
        .max_stdin_buf_size(CHUNK);
    let mut attached = pods.attach(&pod_name, &params).await.map_err(Error::Kube)?;
    let mut stdin = attached
        .stdin()
        .ok_or_else(|| Error::Upload("the attach session has no stdin".into()))?;
    let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(CHANNEL_CHUNKS);
    let producer = {
        let input = input.clone();
        tokio::task::spawn_blocking(move || input.produce(ChannelWriter::new(sender)))
    };
    let mut sent = 0u64;
    let mut failure = None;
    while let Some(chunk) = receiver.recv().await {
        if let Err(e) = stdin.write_all(&chunk).await {
            failure = Some(format!("sending the input: {e}"));
            break;
        }
        sent += chunk.len() as u64;
    }
    drop(receiver); // a producer still writing fails at once
    let produced = producer
        .await
        .map_err(|e| Error::Upload(format!("the producer stopped: {e}")))?;
    if let Some(why) = failure {
        attached.abort();
        return Err(Error::Upload(why));
    }
    if let Err(e) = produced {
        // Abandon the session without an end of input: the build reads a cut stream and fails.
        attached.abort();
        return Err(e);
    }
    stdin
        .shutdown()
        .await
        .map_err(|e| Error::Upload(format!("ending the input: {e}")))?;
    let status = attached
        .take_status()
        .ok_or_else(|| Error::Upload("no status from the attach session".into()))?;
    let status = tokio::time::timeout(STATUS_WAIT, status)
        .await
        .map_err(|_| Error::Upload(format!("no answer within {STATUS_WAIT:?} after the input")))?;
    match status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(sent),
        Some(s) => Err(Error::Upload(format!(
            "the cluster ended the upload: {}",
            s.message.unwrap_or_else(|| "no message".into())
        ))),
        // The connection closed without a status: the input was sent and closed.
        None => Ok(sent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(clone_state: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "b-1-build"},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "clone", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                 "state": clone_state}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn when_to_attach_table() {
        let running = pod(json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}}));
        let waiting = pod(json!({"waiting": {"reason": "PodInitializing"}}));
        let ended = pod(json!({"terminated": {"exitCode": 1}}));
        assert_eq!(stage(None, None), Stage::Waiting);
        assert_eq!(stage(Some("New"), None), Stage::Waiting);
        assert_eq!(stage(Some("Pending"), Some(&waiting)), Stage::Waiting);
        assert_eq!(stage(None, Some(&running)), Stage::Ready);
        assert!(matches!(stage(None, Some(&ended)), Stage::Over(_)));
        for phase in ["Complete", "Failed", "Error", "Cancelled"] {
            let Stage::Over(why) = stage(Some(phase), None) else {
                panic!("{phase} is over");
            };
            assert!(why.contains(phase), "{why}");
        }
        let no_status = Pod::default();
        assert_eq!(stage(None, Some(&no_status)), Stage::Waiting);
    }
}
