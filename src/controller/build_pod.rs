//! What the controller caches of a build Pod: the few fields the phase machine reads.
//!
//! A full `Pod` costs about 6 KiB in memory even without its spec (k8s-openapi's structs are
//! large inline); the controller keeps one per build, so its cache holds this view instead
//! (about a quarter of that) and rebuilds a `Pod` with the same fields when a reconcile needs one.

use std::borrow::Cow;

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::core::NamespaceResourceScope;
use serde::Deserialize;

/// A build Pod as the controller's cache holds it (deserialized from the same watch).
#[derive(Clone, Debug, Deserialize)]
pub struct BuildPod {
    /// Identity, owner references and deletion state (labels and annotations are dropped).
    pub metadata: ObjectMeta,
    /// The part of the status the phase machine reads.
    pub status: Option<BuildPodStatus>,
}

/// `PodStatus`, reduced to what decides a Build's phase.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuildPodStatus {
    /// Pending, Running, Succeeded, Failed or Unknown.
    pub phase: Option<String>,
    /// Why the Pod is in this phase (for example `Evicted`).
    pub reason: Option<String>,
    /// A human-readable explanation.
    pub message: Option<String>,
    /// When the kubelet acknowledged the Pod.
    pub start_time: Option<Time>,
    /// The `clone` init container.
    pub init_container_statuses: Option<Vec<ContainerStateView>>,
    /// The `build` container.
    pub container_statuses: Option<Vec<ContainerStateView>>,
}

/// A container's name and state (the state holds the exit code and termination message).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ContainerStateView {
    /// The container's name.
    pub name: String,
    /// Waiting, running or terminated.
    pub state: Option<ContainerState>,
}

impl kube::Resource for BuildPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl BuildPod {
    /// Drops the metadata no reconcile reads (labels, annotations, managedFields).
    pub fn slim(&mut self) {
        self.metadata.labels = None;
        self.metadata.annotations = None;
        self.metadata.managed_fields = None;
    }

    /// The Pod with the cached fields, for the phase machine.
    pub fn to_pod(&self) -> Pod {
        let containers = |views: &Option<Vec<ContainerStateView>>| {
            views.as_ref().map(|views| {
                views
                    .iter()
                    .map(|v| ContainerStatus {
                        name: v.name.clone(),
                        state: v.state.clone(),
                        ..ContainerStatus::default()
                    })
                    .collect()
            })
        };
        Pod {
            metadata: self.metadata.clone(),
            spec: None,
            status: self.status.as_ref().map(|s| PodStatus {
                phase: s.phase.clone(),
                reason: s.reason.clone(),
                message: s.message.clone(),
                start_time: s.start_time.clone(),
                init_container_statuses: containers(&s.init_container_statuses),
                container_statuses: containers(&s.container_statuses),
                ..PodStatus::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_view_keeps_what_the_phase_machine_reads() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "app-1-build", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                "deletionTimestamp": "2026-01-02T03:04:05Z",
                "labels": {"build.kiln.dev/build.name": "app-1"}, "annotations": {"a": "b"},
                "ownerReferences": [{"apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
                    "name": "app-1", "uid": "b", "controller": true}]},
            "spec": {"containers": [{"name": "build", "image": "kiln"}]},
            "status": {"phase": "Failed", "reason": "Evicted", "message": "low on memory",
                "startTime": "2026-01-02T03:00:00Z", "hostIP": "10.0.0.1", "qosClass": "Burstable",
                "initContainerStatuses": [{"name": "clone", "image": "kiln", "imageID": "x", "ready": false,
                    "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
                "containerStatuses": [{"name": "build", "image": "kiln", "imageID": "x", "ready": false,
                    "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error",
                        "message": "{\"reason\":\"PushImageToRegistryFailed\"}"}}}]}
        });
        let full: Pod = serde_json::from_value(pod.clone()).unwrap();
        let mut view: BuildPod = serde_json::from_value(pod).unwrap();
        view.slim();
        let rebuilt = view.to_pod();
        assert_eq!(
            rebuilt.metadata.owner_references,
            full.metadata.owner_references
        );
        assert_eq!(
            rebuilt.metadata.deletion_timestamp,
            full.metadata.deletion_timestamp
        );
        assert_eq!(rebuilt.metadata.labels, None);
        let (a, b) = (rebuilt.status.unwrap(), full.status.unwrap());
        assert_eq!(
            (a.phase, a.reason, a.message),
            (b.phase, b.reason, b.message)
        );
        assert_eq!(a.start_time, b.start_time);
        let states = |s: Option<Vec<ContainerStatus>>| {
            s.unwrap_or_default()
                .into_iter()
                .map(|c| (c.name, c.state))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            states(a.init_container_statuses),
            states(b.init_container_statuses)
        );
        assert_eq!(states(a.container_statuses), states(b.container_statuses));
    }
}
