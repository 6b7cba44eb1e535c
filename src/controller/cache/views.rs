//! What the controller's caches keep of build Pods and finished Builds.
//!
//! The controller caches one Pod and one Build per build, so their size sets its memory:
//! - a full `Pod` costs about 6 KiB even without its spec (k8s-openapi's structs are large
//!   inline), so the cache holds a [`BuildPod`] view instead (about a quarter of that) and
//!   rebuilds a `Pod` with the same fields when a reconcile needs one;
//! - a finished Build is only read for its number, request id, owner, phase and status (history
//!   pruning, run policy, trigger bookkeeping), so [`slim_build`] drops the rest. No write is
//!   ever based on a slimmed spec: a finished Build's spec is never written again, and a status
//!   write (the status subresource) takes only the status from the object it sends.

use std::borrow::Cow;

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::core::NamespaceResourceScope;
use serde::Deserialize;

use crate::api::build::BuildSpec;
use crate::api::Build;
use crate::naming;

/// The annotations a finished Build keeps in the cache (the trigger images it recorded, until
/// the controller has written them to the BuildConfig, among them).
const FINISHED_ANNOTATIONS: [&str; 4] = [
    naming::BUILD_NUMBER_ANNOTATION,
    naming::REQUEST_ANNOTATION,
    naming::BUILD_CONFIG_ANNOTATION,
    naming::TRIGGER_IMAGES_ANNOTATION,
];

/// Drops what no reconcile reads: managedFields always; for a finished Build (terminal phase,
/// never left) also its labels, other annotations and spec (keeping `spec.cancel`).
pub(crate) fn slim_build(build: &mut Build) {
    build.metadata.managed_fields = None;
    if !build.status.as_ref().is_some_and(|s| s.phase.is_terminal()) {
        return;
    }
    build.metadata.labels = None;
    if let Some(annotations) = build.metadata.annotations.as_mut() {
        annotations.retain(|k, _| FINISHED_ANNOTATIONS.contains(&k.as_str()));
    }
    build.spec = BuildSpec {
        cancel: build.spec.cancel,
        ..BuildSpec::default()
    };
}

/// A build Pod as the controller's cache holds it (deserialized from the same watch).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct BuildPod {
    /// Identity, owner references and deletion state (labels and annotations are dropped).
    pub(crate) metadata: ObjectMeta,
    /// The part of the status the phase machine reads.
    pub(crate) status: Option<BuildPodStatus>,
}

/// `PodStatus`, reduced to what decides a Build's phase.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BuildPodStatus {
    /// Pending, Running, Succeeded, Failed or Unknown.
    pub(crate) phase: Option<String>,
    /// Why the Pod is in this phase (for example `Evicted`).
    pub(crate) reason: Option<String>,
    /// A human-readable explanation.
    pub(crate) message: Option<String>,
    /// When the kubelet acknowledged the Pod.
    pub(crate) start_time: Option<Time>,
    /// The `clone` init container.
    pub(crate) init_container_statuses: Option<Vec<ContainerStateView>>,
    /// The `build` container.
    pub(crate) container_statuses: Option<Vec<ContainerStateView>>,
    /// Only a failed `PodScheduled` condition is kept (why a Pending Pod waits).
    pub(crate) conditions: Option<Vec<PodCondition>>,
}

/// A container's name and state (the state holds the exit code and termination message).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub(crate) struct ContainerStateView {
    /// The container's name.
    pub(crate) name: String,
    /// Waiting, running or terminated.
    pub(crate) state: Option<ContainerState>,
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
    pub(crate) fn slim(&mut self) {
        self.metadata.labels = None;
        self.metadata.annotations = None;
        self.metadata.managed_fields = None;
        if let Some(status) = self.status.as_mut() {
            if let Some(conditions) = status.conditions.as_mut() {
                conditions.retain(|c| c.type_ == "PodScheduled" && c.status == "False");
            }
            if status.conditions.as_ref().is_some_and(Vec::is_empty) {
                status.conditions = None;
            }
        }
    }

    /// The Pod with the cached fields, for the phase machine.
    pub(crate) fn to_pod(&self) -> Pod {
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
                conditions: s.conditions.clone(),
                ..PodStatus::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BuildPhase;
    use serde_json::json;

    fn build(phase: &str) -> Build {
        serde_json::from_value(json!({
            "apiVersion": "build.kiln.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": "app-1", "namespace": "ns", "resourceVersion": "9",
                "labels": {naming::BUILD_CONFIG_LABEL: "app", naming::START_POLICY_LABEL: "Serial"},
                "annotations": {naming::BUILD_NUMBER_ANNOTATION: "1", naming::REQUEST_ANNOTATION: "r",
                    naming::BUILD_CONFIG_ANNOTATION: "app", naming::TRIGGER_IMAGES_ANNOTATION: "[]",
                    "note": "a long user annotation"},
                "managedFields": [{"manager": "kubectl", "operation": "Update"}],
                "ownerReferences": [{"apiVersion": "build.kiln.dev/v1alpha1", "kind": "BuildConfig",
                    "name": "app", "uid": "u", "controller": true}]},
            "spec": {"source": {"git": {"uri": "https://example.com/app.git"}},
                "strategy": {"type": "Docker"}, "cancel": true,
                "triggeredBy": [{"message": "Manually triggered"}]},
            "status": {"phase": phase, "completionTimestamp": "2026-01-02T03:04:05Z", "duration": 5}
        }))
        .unwrap()
    }

    #[test]
    fn finished_builds_keep_identity_bookkeeping_and_status_only() {
        let mut finished = build("Complete");
        let before = finished.clone();
        slim_build(&mut finished);
        assert_eq!(finished.metadata.managed_fields, None);
        assert_eq!(finished.metadata.labels, None);
        let kept: Vec<&String> = finished
            .metadata
            .annotations
            .iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert_eq!(
            finished.metadata.owner_references,
            before.metadata.owner_references
        );
        assert_eq!(
            finished.metadata.resource_version,
            before.metadata.resource_version
        );
        assert_eq!(finished.status, before.status, "status is whole");
        assert_eq!(finished.spec.cancel, Some(true));
        assert!(finished.spec.common.source.is_none() && finished.spec.triggered_by.is_empty());
        assert_eq!(crate::api::build_number(&finished), Some(1));
    }

    #[test]
    fn active_builds_lose_only_managed_fields() {
        for phase in [BuildPhase::New, BuildPhase::Pending, BuildPhase::Running] {
            let mut active = build(phase.as_str());
            let mut expected = active.clone();
            expected.metadata.managed_fields = None;
            slim_build(&mut active);
            assert_eq!(active, expected, "{phase:?}");
        }
    }

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
