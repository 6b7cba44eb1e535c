//! Why a build Pod is still Pending (pure): read from the Pod's own conditions and container
//! states, as `kubectl describe pod` shows them, once it has been Pending longer than allowed.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

/// The message a Build carries once its Pod has been Pending for longer than `timeout`: how long,
/// and the Pod's own reason and message (`Unschedulable`, an image pull error, a refused
/// container config), or `None` while the Pod is younger than that.
pub(crate) fn pending_message(pod: &Pod, now: Timestamp, timeout: Duration) -> Option<String> {
    let created = pod.metadata.creation_timestamp.as_ref()?.0;
    let pending: Duration = now.duration_since(created).try_into().ok()?;
    if pending < timeout {
        return None;
    }
    let status = pod.status.as_ref();
    let scheduling = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .map(|c| (c.reason.clone(), c.message.clone()));
    let waiting = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
        .find(|w| {
            w.reason
                .as_deref()
                .is_some_and(|r| r != "PodInitializing" && r != "ContainerCreating")
        })
        .map(|w| (w.reason.clone(), w.message.clone()));
    let why = match scheduling.or(waiting) {
        Some((reason, message)) => format!(
            "{}: {}",
            reason.unwrap_or_else(|| "Pending".into()),
            message.unwrap_or_else(|| "no message".into())
        ),
        None => "the Pod reports no reason".into(),
    };
    Some(format!(
        "The build Pod has been Pending for more than {}s: {why}",
        timeout.as_secs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x-1-build", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn the_pods_own_reason_after_the_timeout() {
        let timeout = Duration::from_secs(300);
        let at = |s: i64| {
            "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap()
                + k8s_openapi::jiff::SignedDuration::from_secs(s)
        };
        let unschedulable = pod(serde_json::json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/3 nodes are available: 3 Insufficient memory."}]}));
        let pulling = pod(serde_json::json!({"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "initContainerStatuses": [{"name": "clone", "image": "kiln", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"kiln\""}}}]}));
        let creating = pod(serde_json::json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "clone", "image": "kiln", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        let cases = [
            ("young", &unschedulable, 299, None),
            (
                "unschedulable",
                &unschedulable,
                300,
                Some("The build Pod has been Pending for more than 300s: Unschedulable: 0/3 nodes are available: 3 Insufficient memory."),
            ),
            (
                "image pull",
                &pulling,
                600,
                Some("The build Pod has been Pending for more than 300s: ImagePullBackOff: Back-off pulling image \"kiln\""),
            ),
            (
                "nothing reported",
                &creating,
                301,
                Some("The build Pod has been Pending for more than 300s: the Pod reports no reason"),
            ),
        ];
        for (what, pod, seconds, want) in cases {
            assert_eq!(
                pending_message(pod, at(seconds), timeout).as_deref(),
                want,
                "{what}"
            );
        }
    }
}
